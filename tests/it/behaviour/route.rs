//! The routes under test: for each kind of backend, how to start a proxy
//! whose only route (`""`) is a backend of that kind, and what the command
//! table lets that kind serve.
//!
//! Plugging in another kind (DynamoDB) is one [`Route`] value with its
//! `launch` function, its entry in [`ROUTES`] and one `behaviour_tests!` line
//! in `mod.rs`. Its backend must serve FLUSHALL (each script starts from
//! empty databases) and INFO's `…blocked_clients:` line if it serves
//! blocking commands.

use std::any::Any;
use std::fmt;

use sealcache::backend::{BackendKind, Capabilities, Capability};
use sealcache::commands::CommandSpec;

use super::coverage::COVERED_GROUPS;
use crate::support::dynamodb::DynamoDbLocal;
use crate::support::{Certs, Endpoint, RedisServer, Sealcache, SealcacheBuilder, random_password};

/// Admin commands the suite's proxies allow: the scripts start from an
/// empty database and exercise FLUSHDB/FLUSHALL themselves.
pub const ALLOWED_ADMIN: &[&str] = &["FLUSHALL", "FLUSHDB"];

/// A proxy, and the servers it stores in (kept alive as long as it).
pub type Launched = (Sealcache, Vec<Box<dyn Any>>);

/// One kind of route the behaviour suite runs against.
#[derive(Clone, Copy)]
pub struct Route {
    /// As mismatches name it.
    pub name: &'static str,
    pub kind: BackendKind,
    /// The backend's configured name, as refusals quote it.
    pub backend: &'static str,
    /// What the backend declares (`Backend::capabilities`).
    pub capabilities: fn() -> Capabilities,
    /// Whether the backend runs a command at all (`Backend::serves`).
    pub serves: fn(&CommandSpec) -> bool,
    /// The redis-server command groups whose supported commands the
    /// coverage test requires a line for; `None`: every supported command.
    pub groups: Option<&'static [&'static str]>,
    /// Script lines this kind answers with a refusal of its own, where
    /// redis-server answers something sealcache cannot on that store (each
    /// documented under the kind's differences).
    pub refuses: &'static [(&'static str, &'static str)],
    /// Starts a proxy on this route.
    pub launch: fn(&Certs) -> Launched,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// Every route the coverage test checks.
pub const ROUTES: &[Route] = &[REDIS, MEMORY, DYNAMODB];

/// The `upstream:` shorthand: one Redis backend, `main`, on route `""`.
pub const REDIS: Route = Route {
    name: "Redis",
    kind: BackendKind::Redis,
    backend: "main",
    capabilities: all_but_scripts,
    serves: |spec| BackendKind::Redis.serves(spec),
    groups: Some(COVERED_GROUPS),
    refuses: &[],
    launch: |certs| {
        let upstream = RedisServer::start_tls(certs, &random_password(24));
        let proxy = allow_flush(Sealcache::builder(&upstream)).start();
        (proxy, vec![Box::new(upstream)])
    },
};

/// `backends: {scratch: {type: memory}}` and one route `""` to it.
pub const MEMORY: Route = Route {
    name: "Memory",
    kind: BackendKind::Memory,
    backend: "scratch",
    capabilities: all_but_scripts,
    serves: |spec| BackendKind::Memory.serves(spec),
    groups: None,
    refuses: &[],
    launch: |certs| {
        let proxy = allow_flush(SealcacheBuilder::new(certs))
            .unset("upstream.url")
            .unset("upstream.ca_file")
            .yaml(
                "backends:\n  scratch: {type: memory, max_memory: 64MiB}\n\
                 routes:\n  - {prefix: \"\", backend: scratch}\n",
            )
            .start();
        (proxy, Vec::new())
    },
};

/// `backends: {shared: {type: dynamodb}}` on a DynamoDB Local of its own,
/// and one route `""` to it.
pub const DYNAMODB: Route = Route {
    name: "DynamoDB",
    kind: BackendKind::DynamoDb,
    backend: "shared",
    capabilities: || BackendKind::DynamoDb.capabilities(),
    serves: |spec| BackendKind::DynamoDb.serves(spec),
    groups: None,
    // Its SCAN cursors are positions in the table kept by the sidecar that
    // issued them (docs/dynamodb.md): one it never issued is refused.
    refuses: &[(
        "SCAN -1 MATCH nothing COUNT 1000",
        "ERR sealcache: SCAN cursor 18446744073709551615 is unknown to this sidecar: the dynamodb backend keeps a cursor for 60 minutes in the sidecar that returned it; start again from 0",
    )],
    launch: |certs| {
        let local = DynamoDbLocal::start();
        let proxy = allow_flush(SealcacheBuilder::new(certs))
            .dynamodb_backend("shared", &local, "behaviour")
            .route("", "shared")
            .start();
        (proxy, vec![Box::new(local)])
    },
};

/// What the Redis and memory backends declare: scripts stay out (they would
/// run on ciphertext).
fn all_but_scripts() -> Capabilities {
    Capabilities::of(&[
        Capability::Transactions,
        Capability::Blocking,
        Capability::PubSub,
        Capability::Databases,
    ])
}

fn allow_flush(builder: SealcacheBuilder) -> SealcacheBuilder {
    builder.set(
        "allowed_admin_commands",
        &format!("[{}]", ALLOWED_ADMIN.join(", ")),
    )
}

impl Route {
    /// Starts the oracle (a redis-server of its own) and a proxy on this route.
    pub fn start(self) -> Fixture {
        let certs = Certs::generate();
        let oracle = RedisServer::start_tls(&certs, &random_password(24));
        let (proxy, _stores) = (self.launch)(&certs);
        Fixture {
            route: self,
            oracle,
            proxy,
            _stores,
        }
    }
}

/// A proxy on one route and the redis-server its replies are compared with.
pub struct Fixture {
    pub route: Route,
    /// Answers every script line directly: the reference.
    pub oracle: RedisServer,
    pub proxy: Sealcache,
    /// The route's store (never the oracle: their data must not meet).
    _stores: Vec<Box<dyn Any>>,
}

impl Fixture {
    pub fn proxy_endpoint(&self) -> Endpoint {
        self.proxy.endpoint()
    }

    pub fn oracle_endpoint(&self) -> Endpoint {
        self.oracle.endpoint()
    }
}
