//! Turns the merged raw settings into a [`Config`], refusing anything unsafe.
//! Every problem is one sentence: the setting (and file), why it is unsafe, and
//! `Fix: …`. Independent problems are all reported at once.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;

use super::defaults as d;
use super::layers::Layered;
use super::model::*;
use super::raw::{RawMemoryBackend, RawUpstream, RawUser};
use super::upstream_url::{self, Endpoint};
use super::{ENV_MASTER_KEY, EnvSource};
use crate::tls::{self, TlsError};

/// What a readable private key would let another local user do, per setting.
const WHY_TLS_KEY: &str = "anyone on this host could impersonate the proxy";
const WHY_UPSTREAM_KEY: &str =
    "anyone on this host could authenticate to the upstream Redis as the proxy";
const WHY_MASTER_KEY: &str = "anyone on this host could decrypt every cached value";
const WHY_UPSTREAM_PASSWORD: &str =
    "anyone on this host could use the upstream Redis directly, bypassing the proxy";

struct Checker<'a> {
    layered: &'a Layered,
    env: &'a dyn EnvSource,
    profile: Profile,
    problems: Vec<String>,
}

pub(super) fn build(layered: &Layered, env: &dyn EnvSource) -> Result<Config, Vec<String>> {
    let raw = &layered.raw;
    let mut c = Checker {
        layered,
        env,
        profile: raw.profile,
        problems: Vec::new(),
    };
    let listen = c.listen();
    let tls = c.tls();
    let auth = c.auth();
    let limits = c.limits();
    let backends = c.backends();
    let encryption = c.encryption();
    let logging = c.logging();
    let admin = c.admin(listen.as_ref());
    let allowed_admin_commands = c.admin_commands();

    match (listen, tls, auth, backends, encryption, logging, admin) {
        (
            Some(listen),
            Some(tls),
            Some(auth),
            Some((backends, routes)),
            Some(encryption),
            Some(logging),
            Some(admin),
        ) if c.problems.is_empty() => Ok(Config {
            profile: c.profile,
            listen,
            tls,
            auth,
            limits,
            backends,
            routes,
            encryption,
            logging,
            admin,
            allowed_admin_commands,
        }),
        _ => Err(c.problems),
    }
}

impl Checker<'_> {
    fn problem(&mut self, message: impl Into<String>) {
        self.problems.push(message.into());
    }

    /// `key (value)` when the value is worth showing, with its origin when not the file.
    fn label(&self, key: &str, shown: Option<&str>) -> String {
        let mut out = key.to_string();
        if let Some(shown) = shown {
            out.push_str(&format!(" ({shown})"));
        }
        match self.layered.origin(key) {
            super::Origin::Env(name) => out.push_str(&format!(" [from {name}]")),
            super::Origin::Flag(name) => out.push_str(&format!(" [from --{name}]")),
            _ => {}
        }
        out
    }

    fn resolve(&self, key: &str, value: &str) -> PathBuf {
        self.layered.resolve(key, value)
    }

    fn profile_name(&self) -> &'static str {
        match self.profile {
            Profile::Development => "development",
            Profile::Production => "production",
        }
    }

    fn listen(&mut self) -> Option<ListenConfig> {
        let raw = &self.layered.raw.listen;
        let mut ok = true;
        let tcp = match &raw.tcp {
            None => None,
            Some(text) => match parse_listen_addr(text) {
                Some(addr) => Some(addr),
                None => {
                    ok = false;
                    let label = self.label("listen.tcp", Some(text));
                    self.problem(format!(
                        "{label} is not an IP address and port. Fix: write it as 127.0.0.1:6380 (or [::1]:6380, or 0.0.0.0:6380 to listen on every interface)"
                    ));
                    None
                }
            },
        };
        let unix = raw.unix.as_ref().map(|p| self.resolve("listen.unix", p));
        if let Some(path) = &unix
            && let Some(parent) = path.parent()
            && !parent.is_dir()
        {
            ok = false;
            let label = self.label("listen.unix", Some(&path.display().to_string()));
            self.problem(format!(
                "{label}: the directory {} does not exist, so the socket cannot be created. Fix: create it (mkdir -p {}) or choose another path",
                parent.display(),
                parent.display()
            ));
        }
        if raw.tcp.is_none() && raw.unix.is_none() {
            ok = false;
            self.problem(
                "listen.tcp and listen.unix are both null: there is nothing to listen on. Fix: set listen.tcp (e.g. \"127.0.0.1:6380\") or listen.unix (a socket path)",
            );
        }
        let unix_mode = match parse_mode(&raw.unix_mode) {
            Some(mode) if mode & !d::MAX_UNIX_MODE != 0 => {
                ok = false;
                let label = self.label("listen.unix_mode", Some(&raw.unix_mode));
                self.problem(format!(
                    "{label} is looser than 0660: users outside the socket's owner and group could connect. Fix: set listen.unix_mode to \"0660\" or stricter (\"0600\")"
                ));
                0
            }
            Some(mode) => mode,
            None => {
                ok = false;
                let label = self.label("listen.unix_mode", Some(&raw.unix_mode));
                self.problem(format!(
                    "{label} is not an octal file mode. Fix: write it quoted with a leading zero, e.g. \"0660\" or \"0600\""
                ));
                0
            }
        };
        ok.then_some(ListenConfig {
            tcp,
            unix,
            unix_mode,
        })
    }

    fn tls(&mut self) -> Option<ServerTlsConfig> {
        let raw = &self.layered.raw.tls;
        let problems_before = self.problems.len();
        let min_version = self.tls_version("tls.min_version", &raw.min_version);
        if raw.handshake_timeout_ms == 0 {
            self.problem(
                "tls.handshake_timeout_ms is 0: a client could hold a connection open forever without finishing the handshake. Fix: set it to a positive number of milliseconds (default 10000)",
            );
        }
        let cert_file = self.required_tls_file("tls.cert_file", raw.cert_file.as_deref());
        let key_file = self.required_tls_file("tls.key_file", raw.key_file.as_deref());
        if let Some(cert) = &cert_file {
            self.check_certs("tls.cert_file", cert, "clients could not verify the proxy");
        }
        if let Some(key) = &key_file {
            self.check_private_key("tls.key_file", key, WHY_TLS_KEY);
        }
        let client_ca_file = raw
            .client_ca_file
            .as_ref()
            .map(|p| self.resolve("tls.client_ca_file", p));
        if let Some(ca) = &client_ca_file {
            self.check_certs(
                "tls.client_ca_file",
                ca,
                "client certificates could not be verified",
            );
        }
        let (Some(cert_file), Some(key_file), Some(min_version)) =
            (cert_file, key_file, min_version)
        else {
            return None;
        };
        let config = ServerTlsConfig {
            cert_file,
            key_file,
            client_ca_file,
            min_version,
            handshake_timeout: Duration::from_millis(raw.handshake_timeout_ms),
        };
        if self.problems.len() == problems_before {
            // Catches what the file checks cannot: a key that does not belong to the certificate.
            if let Err(e) = tls::server_config(&config, self.profile) {
                self.problem(format!("tls: {e}: clients could not complete a handshake"));
            }
        }
        (self.problems.len() == problems_before).then_some(config)
    }

    fn tls_version(&mut self, key: &str, text: &str) -> Option<TlsVersion> {
        let version = match text.trim() {
            "1.2" => TlsVersion::Tls12,
            "1.3" => TlsVersion::Tls13,
            _ => {
                let label = self.label(key, Some(text));
                self.problem(format!(
                    "{label} is not a TLS version sealcache supports. Fix: set {key} to \"1.3\" (or \"1.2\" in development)"
                ));
                return None;
            }
        };
        if self.profile == Profile::Production && version < TlsVersion::Tls13 {
            let label = self.label(key, Some(text));
            self.problem(format!(
                "{label} is below 1.3 in the production profile: TLS 1.2 allows weaker cipher suites and handshakes that production must not accept. Fix: set {key}: \"1.3\""
            ));
            return None;
        }
        Some(version)
    }

    fn required_tls_file(&mut self, key: &str, value: Option<&str>) -> Option<PathBuf> {
        match value {
            Some(v) => Some(self.resolve(key, v)),
            None => {
                let label = self.label(key, None);
                self.problem(format!(
                    "no TLS certificate or key configured: {label} is not set, and sealcache never listens without TLS. Fix: set tls.cert_file and tls.key_file (create them with `sealcache certs generate --out certs`, or run `sealcache init`)"
                ));
                None
            }
        }
    }

    fn check_certs(&mut self, key: &str, path: &Path, why: &str) {
        if let Err(e) = tls::load_certs(path) {
            self.file_problem(key, path, &e, why);
        }
    }

    /// Permissions first: a readable key is a problem even if it also fails to parse.
    fn check_private_key(&mut self, key: &str, path: &Path, why: &str) {
        if let Err(e) = tls::check_private_key_permissions(path) {
            self.file_problem(key, path, &e, why);
            if !matches!(e, TlsError::KeyPermissions { .. }) {
                return;
            }
        }
        if let Err(e) = tls::load_private_key(path) {
            self.file_problem(key, path, &e, why);
        }
    }

    /// Words a file error as `key (path) <what>: <why>. Fix: <how>`.
    fn file_problem(&mut self, key: &str, path: &Path, e: &TlsError, why: &str) {
        let label = self.label(key, Some(&path.display().to_string()));
        let p = path.display();
        let message = match e {
            TlsError::NotFound { .. } => format!(
                "{label} does not exist. Fix: correct the path, or create the file (certificates: `sealcache certs generate --out DIR`)"
            ),
            TlsError::Read { source, .. } => format!(
                "{label} cannot be read ({source}). Fix: make it readable by the user sealcache runs as (owner only for keys: chmod 600 {p})"
            ),
            TlsError::KeyPermissions { mode, .. } => {
                let access = if mode & 0o044 != 0 {
                    "readable"
                } else {
                    "accessible"
                };
                format!(
                    "{label} is {access} by group or others (mode {mode:04o}): {why}. Fix: chmod 600 {p}"
                )
            }
            TlsError::NoCertificates { .. } => format!(
                "{label} is malformed: it contains no PEM certificate, so {why}. Fix: point {key} at a PEM file with -----BEGIN CERTIFICATE----- blocks"
            ),
            TlsError::NoPrivateKey { .. } => format!(
                "{label} is malformed: it contains no PEM private key. Fix: point {key} at a PEM file with a PEM \"BEGIN PRIVATE KEY\" block"
            ),
            TlsError::MalformedPem { detail, .. } => format!(
                "{label} is malformed PEM ({detail}). Fix: replace it with an intact PEM file (regenerate with `sealcache certs generate --force` if it was made by sealcache)"
            ),
            TlsError::BadCertificate { source, .. } => format!(
                "{label} is malformed: a certificate in it cannot be parsed ({source}), so {why}. Fix: replace it with a valid PEM certificate"
            ),
            TlsError::BadPrivateKey { source, .. } => format!(
                "{label} is malformed: the private key cannot be used ({source}). Fix: use an RSA, ECDSA or Ed25519 key in PEM"
            ),
            other => format!("{label}: {other}"),
        };
        self.problem(message);
    }

    fn auth(&mut self) -> Option<AuthConfig> {
        let raw = &self.layered.raw.auth;
        let before = self.problems.len();
        if raw.users.is_empty() {
            self.problem(
                "auth.users is empty: no client authentication is configured, so anyone who can reach the listener could read and write every cached value. Fix: add a user, e.g. auth.users: [{name: default, password_hash: \"<output of `sealcache hash-password`>\"}] (`sealcache init` writes one)",
            );
        }
        let mut users = Vec::new();
        for (i, user) in raw.users.iter().enumerate() {
            if let Some(u) = self.user(i, user) {
                users.push(u);
            }
        }
        let mut names: Vec<&str> = raw.users.iter().map(|u| u.name.as_str()).collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|w| w[0] == w[1]) {
            self.problem(format!(
                "auth.users lists the user `{}` twice: which password applies would be ambiguous. Fix: keep one entry per name",
                pair[0]
            ));
        }
        if raw.failure_delay_ms > raw.max_failure_delay_ms {
            self.problem(format!(
                "auth.failure_delay_ms ({}) is larger than auth.max_failure_delay_ms ({}): the throttle could never grow. Fix: make max_failure_delay_ms at least failure_delay_ms",
                raw.failure_delay_ms, raw.max_failure_delay_ms
            ));
        }
        (self.problems.len() == before).then_some(AuthConfig {
            users,
            failure_delay: Duration::from_millis(raw.failure_delay_ms),
            max_failure_delay: Duration::from_millis(raw.max_failure_delay_ms),
        })
    }

    fn user(&mut self, i: usize, user: &RawUser) -> Option<User> {
        let key = format!("auth.users[{i}]");
        let name = user.name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            self.problem(format!(
                "{key}.name is empty or contains spaces: clients could not name this user in AUTH. Fix: use a name like `default` or `app`"
            ));
            return None;
        }
        let who = format!("{key} (user `{name}`)");
        let credential = match (&user.password_hash, &user.password_env) {
            (Some(_), Some(_)) => {
                self.problem(format!(
                    "{who} sets both password_hash and password_env: which one applies would be ambiguous. Fix: keep one of them"
                ));
                return None;
            }
            (None, None) => {
                self.problem(format!(
                    "{who} has neither password_hash nor password_env: the user would have no password. Fix: set password_hash (from `sealcache hash-password`) or password_env (a variable holding the password)"
                ));
                return None;
            }
            (Some(hash), None) => {
                if let Err(why) = check_argon2_hash(hash) {
                    self.problem(format!(
                        "{who}.password_hash is not a valid argon2id hash ({why}): nobody could log in as this user, or a weaker scheme would be trusted. Fix: generate one with `printf '%s' \"$PASSWORD\" | sealcache hash-password`"
                    ));
                    return None;
                }
                Credential::Argon2Hash(hash.clone())
            }
            (None, Some(var)) => {
                let Some(password) = self.env.var(var).filter(|p| !p.is_empty()) else {
                    self.problem(format!(
                        "{who}.password_env names the environment variable {var}, which is not set or empty: the user would have no password. Fix: export {var} before starting sealcache, or use password_hash"
                    ));
                    return None;
                };
                if let Err(why) = password_strength(&password, self.profile) {
                    let profile = self.profile_name();
                    self.problem(format!(
                        "{who}: the password in {var} {why} for the {profile} profile: a weak password can be guessed. Fix: use a long random password, e.g. `openssl rand -base64 33`"
                    ));
                    return None;
                }
                Credential::Password(SecretString::from(password))
            }
        };
        Some(User {
            name: name.to_string(),
            credential,
        })
    }

    fn limits(&mut self) -> Limits {
        let raw = &self.layered.raw.limits;
        for (key, value, why) in [
            (
                "limits.max_clients",
                raw.max_clients,
                "no client could ever connect",
            ),
            (
                "limits.max_bulk_len",
                raw.max_bulk_len,
                "no value could ever be sent",
            ),
            (
                "limits.max_multibulk_len",
                raw.max_multibulk_len,
                "no command could ever be sent",
            ),
        ] {
            if value == 0 {
                self.problem(format!(
                    "{key} is 0: {why}. Fix: set it to a positive number (see docs/sealcache.example.yaml for the default)"
                ));
            }
        }
        if raw.max_transaction_bytes == 0 {
            self.problem(
                "limits.max_transaction_bytes is 0: no command could be queued after MULTI. Fix: set it to a positive number of bytes (default 268435456, 256 MiB)",
            );
        }
        if raw.max_dedicated_per_client == 0 {
            self.problem(
                "limits.max_dedicated_per_client is 0: no client could run MULTI, an emulated command (INCR, APPEND…) or a blocking command. Fix: set it to a positive number (default 4)",
            );
        }
        for (key, limit) in [
            ("limits.output_buffer", &raw.output_buffer),
            ("limits.pubsub_output_buffer", &raw.pubsub_output_buffer),
        ] {
            if limit.hard_bytes > 0 && limit.soft_bytes > limit.hard_bytes {
                self.problem(format!(
                    "{key}.soft_bytes ({}) is above {key}.hard_bytes ({}): the soft limit would never apply. Fix: make the soft limit the smaller one (or 0 to disable it)",
                    limit.soft_bytes, limit.hard_bytes
                ));
            }
        }
        if raw.shutdown_timeout_ms == 0 {
            self.problem(
                "limits.shutdown_timeout_ms is 0: at SIGTERM every command in flight would be abandoned and its client would get no reply. Fix: set it to a positive number of milliseconds (default 10000)",
            );
        }
        if raw.auth_timeout_secs == 0 {
            self.problem(
                "limits.auth_timeout_secs is 0: unauthenticated clients could stay connected forever. Fix: set it to a positive number of seconds (default 10)",
            );
        }
        Limits {
            max_clients: raw.max_clients,
            max_bulk_len: raw.max_bulk_len,
            max_multibulk_len: raw.max_multibulk_len,
            idle_timeout: Duration::from_secs(raw.idle_timeout_secs),
            auth_timeout: Duration::from_secs(raw.auth_timeout_secs),
            worker_threads: match raw.worker_threads {
                0 => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
                n => n,
            },
            output_buffer: OutputBufferLimit {
                hard_bytes: raw.output_buffer.hard_bytes,
                soft_bytes: raw.output_buffer.soft_bytes,
                soft_time: Duration::from_secs(raw.output_buffer.soft_secs),
            },
            max_dedicated_per_client: raw.max_dedicated_per_client,
            max_transaction_bytes: raw.max_transaction_bytes,
            max_pinned_per_user: raw.max_pinned_per_user,
            max_blocking_per_user: raw.max_blocking_per_user,
            pubsub_output_buffer: OutputBufferLimit {
                hard_bytes: raw.pubsub_output_buffer.hard_bytes,
                soft_bytes: raw.pubsub_output_buffer.soft_bytes,
                soft_time: Duration::from_secs(raw.pubsub_output_buffer.soft_secs),
            },
            shutdown_timeout: Duration::from_millis(raw.shutdown_timeout_ms),
            rate_limit: self.rate_limit(),
        }
    }

    /// `limits.rate_limit`: off while `commands_per_sec` is 0.
    fn rate_limit(&mut self) -> Option<RateLimit> {
        let raw = &self.layered.raw.limits.rate_limit;
        let Some(commands_per_sec) = NonZeroU32::new(raw.commands_per_sec) else {
            if raw.burst > 0 {
                self.problem(format!(
                    "limits.rate_limit.burst is {} but limits.rate_limit.commands_per_sec is 0 (no rate limit): the burst would never apply. Fix: set commands_per_sec too, or remove burst",
                    raw.burst
                ));
            }
            return None;
        };
        let burst = NonZeroU32::new(raw.burst).unwrap_or(commands_per_sec);
        Some(RateLimit {
            commands_per_sec,
            burst,
        })
    }

    /// The backends and routes: `backends:` and `routes:`, or the `upstream:`
    /// shorthand (one Redis backend named `main` on the default route).
    fn backends(&mut self) -> Option<(Vec<BackendConfig>, Vec<RouteConfig>)> {
        let raw = &self.layered.raw;
        if raw.backends.is_empty() {
            if !raw.routes.is_empty() {
                self.problem(
                    "routes are set but backends are not: a route names a backend. Fix: define the backends under backends: (or remove routes: and use the upstream: shorthand)",
                );
                return None;
            }
            let upstream = raw.upstream.clone();
            let redis = self.redis_backend("upstream", &upstream)?;
            return Some((
                vec![BackendConfig {
                    name: d::SHORTHAND_BACKEND.into(),
                    settings: BackendSettings::Redis(Box::new(redis)),
                }],
                vec![RouteConfig {
                    prefix: String::new(),
                    backend: 0,
                    fallback: None,
                }],
            ));
        }
        if let Some(key) = self.layered.set_keys_under("upstream").first() {
            self.problem(format!(
                "{} is set, and so is backends: — upstream: is the shorthand for one Redis backend, so one of them would be ignored. Fix: move the upstream settings into a backend of type redis (named main, say) and remove upstream:",
                self.label(key, None)
            ));
            return None;
        }
        let before = self.problems.len();
        let mut backends = Vec::new();
        for (name, settings) in raw.backends.clone() {
            if let Some(settings) = self.backend(&name, settings) {
                backends.push(BackendConfig { name, settings });
            }
        }
        let routes = self.routes(&backends);
        (self.problems.len() == before).then_some((backends, routes?))
    }

    /// One entry of `backends:`, checked against its type's settings.
    fn backend(&mut self, name: &str, value: serde_json::Value) -> Option<BackendSettings> {
        let p = format!("backends.{name}");
        let serde_json::Value::Object(mut fields) = value else {
            self.problem(format!(
                "{p} is not a map of settings. Fix: write it as {{type: redis, url: …}} or {{type: memory, max_memory: 256MiB}}"
            ));
            return None;
        };
        if !valid_backend_name(name) {
            self.problem(format!(
                "{p}: backend names are letters, digits, '-' and '_' (they appear in INFO, logs and environment variables). Fix: rename it"
            ));
            return None;
        }
        let kind = fields.remove("type");
        let merged = |defaults: serde_json::Value,
                      fields: serde_json::Map<String, serde_json::Value>| {
            let mut tree = defaults;
            if let serde_json::Value::Object(map) = &mut tree {
                map.extend(fields);
            }
            tree
        };
        match kind.as_ref().and_then(|k| k.as_str()) {
            Some("redis") => {
                let defaults = serde_json::to_value(super::raw::RawConfig::default().upstream)
                    .expect("defaults serialize");
                match serde_json::from_value::<RawUpstream>(merged(defaults, fields)) {
                    Ok(raw) => self
                        .redis_backend(&p, &raw)
                        .map(|r| BackendSettings::Redis(Box::new(r))),
                    Err(e) => {
                        self.problem(format!(
                            "{p} (type redis): {}. Fix: a redis backend takes the settings of upstream: (url, password_file, ca_file, pool_size…)",
                            super::layers::hide_values(&e.to_string())
                        ));
                        None
                    }
                }
            }
            Some("memory") => {
                let defaults =
                    serde_json::to_value(RawMemoryBackend::default()).expect("defaults serialize");
                match serde_json::from_value::<RawMemoryBackend>(merged(defaults, fields)) {
                    Ok(raw) => self.memory_backend(&p, &raw).map(BackendSettings::Memory),
                    Err(e) => {
                        self.problem(format!(
                            "{p} (type memory): {}. Fix: a memory backend takes max_memory, databases and command_timeout_ms",
                            super::layers::hide_values(&e.to_string())
                        ));
                        None
                    }
                }
            }
            Some("dynamodb") => {
                let defaults = serde_json::to_value(super::dynamodb::RawDynamoBackend::default())
                    .expect("defaults serialize");
                match serde_json::from_value::<super::dynamodb::RawDynamoBackend>(merged(
                    defaults, fields,
                )) {
                    Ok(raw) => match super::dynamodb::validate(name, &raw) {
                        Ok(config) => Some(BackendSettings::DynamoDb(Box::new(config))),
                        Err(problems) => {
                            for problem in problems {
                                self.problem(problem);
                            }
                            None
                        }
                    },
                    Err(e) => {
                        self.problem(format!(
                            "{p} (type dynamodb): {}. Fix: a dynamodb backend takes table, region, endpoint_url, create_table, billing_mode, read_capacity, write_capacity, kms_key_id, consistent_reads, request_timeout_ms and max_attempts",
                            super::layers::hide_values(&e.to_string())
                        ));
                        None
                    }
                }
            }
            Some(other) => {
                self.problem(format!(
                    "{p}.type is {other:?}, which is not a backend type. Fix: use redis, memory or dynamodb"
                ));
                None
            }
            None => {
                self.problem(format!(
                    "{p} has no type. Fix: add type: redis (with url: …), type: memory or type: dynamodb (with table: …)"
                ));
                None
            }
        }
    }

    fn memory_backend(&mut self, p: &str, raw: &RawMemoryBackend) -> Option<MemoryBackendConfig> {
        let before = self.problems.len();
        let max_memory = match parse_size(&raw.max_memory) {
            Some(bytes) if bytes >= d::MIN_MEMORY_MAX => Some(bytes),
            Some(_) => {
                self.problem(format!(
                    "{p}.max_memory ({}) is below {} bytes: the store could not hold even a few keys. Fix: give it at least 1MiB",
                    raw.max_memory,
                    d::MIN_MEMORY_MAX
                ));
                None
            }
            None => {
                self.problem(format!(
                    "{p}.max_memory ({:?}) is not a size. Fix: write it as bytes (1048576) or with a unit: 256MiB, 1GiB, 500MB",
                    raw.max_memory
                ));
                None
            }
        };
        if raw.databases == 0 || raw.databases > d::MAX_DATABASES {
            self.problem(format!(
                "{p}.databases ({}) is out of range. Fix: set it between 1 and {} (Redis's default is 16)",
                raw.databases,
                d::MAX_DATABASES
            ));
        }
        if raw.command_timeout_ms == 0 {
            self.problem(format!(
                "{p}.command_timeout_ms is 0: every command would time out at once. Fix: set it to a positive number of milliseconds"
            ));
        }
        (self.problems.len() == before).then(|| MemoryBackendConfig {
            max_memory: max_memory.expect("checked"),
            databases: raw.databases,
            command_timeout: Duration::from_millis(raw.command_timeout_ms),
        })
    }

    /// `routes:`: each names a known backend, one is the default (`""`), no
    /// prefix repeats or hides behind an earlier one, and every backend is used.
    fn routes(&mut self, backends: &[BackendConfig]) -> Option<Vec<RouteConfig>> {
        let raw = self.layered.raw.routes.clone();
        if raw.is_empty() {
            self.problem(
                "backends are set but routes are not, so no key would reach them. Fix: add routes:, ending with {prefix: \"\", backend: <name>} for every other key",
            );
            return None;
        }
        let before = self.problems.len();
        let mut skipped = false;
        let mut routes = Vec::new();
        for (i, route) in raw.iter().enumerate() {
            match backends.iter().position(|b| b.name == route.backend) {
                Some(backend) => routes.push(RouteConfig {
                    prefix: route.prefix.clone(),
                    backend,
                    fallback: self.fallback(i, route, backends),
                }),
                // Defined but invalid: its own problem is reported already,
                // and the routes are not checked further.
                None if self.layered.raw.backends.contains_key(&route.backend) => skipped = true,
                None => {
                    let known: Vec<&str> = self
                        .layered
                        .raw
                        .backends
                        .keys()
                        .map(String::as_str)
                        .collect();
                    self.problem(format!(
                        "routes[{i}] (prefix {:?}) names the backend {:?}, which is not defined. Fix: use one of: {}",
                        route.prefix,
                        route.backend,
                        known.join(", ")
                    ));
                }
            }
        }
        if skipped || self.problems.len() != before {
            return None;
        }
        let table = routes
            .iter()
            .map(|r| crate::backend::router::Route {
                prefix: bytes::Bytes::from(r.prefix.clone()),
                backend: r.backend,
            })
            .collect();
        if let Err(e) = crate::backend::router::Router::new(table) {
            self.problem(format!("routes: {e}"));
            return None;
        }
        self.fallbacks_apart(&routes, backends);
        for (index, backend) in backends.iter().enumerate() {
            let serves = |r: &RouteConfig| {
                r.backend == index || r.fallback.is_some_and(|f| f.backend == index)
            };
            if !routes.iter().any(serves) {
                self.problem(format!(
                    "backends.{} is not used by any route. Fix: route a prefix to it, or remove it",
                    backend.name
                ));
            }
        }
        (self.problems.len() == before).then_some(routes)
    }

    /// A route's `fallback`, `journal_max_entries` and `breaker`: the
    /// fallback must be a memory backend, and the other two need one.
    fn fallback(
        &mut self,
        i: usize,
        route: &super::raw::RawRoute,
        backends: &[BackendConfig],
    ) -> Option<FallbackConfig> {
        let p = format!("routes[{i}] (prefix {:?})", route.prefix);
        let Some(name) = &route.fallback else {
            if route.journal_max_entries.is_some() || route.breaker.is_some() {
                self.problem(format!(
                    "{p} sets journal_max_entries or breaker without fallback, so they would do nothing. Fix: add fallback: <a memory backend>, or remove them"
                ));
            }
            return None;
        };
        let memory: Vec<&str> = backends
            .iter()
            .filter(|b| matches!(b.settings, BackendSettings::Memory(_)))
            .map(|b| b.name.as_str())
            .collect();
        let Some(index) = backends.iter().position(|b| &b.name == name) else {
            self.problem(format!(
                "{p} names the fallback {name:?}, which is not defined. Fix: define a memory backend (e.g. scratch: {{type: memory, max_memory: 256MiB}}) and name it{}",
                if memory.is_empty() { String::new() } else { format!("; memory backends: {}", memory.join(", ")) }
            ));
            return None;
        };
        let before = self.problems.len();
        let kind = backends[index].settings.kind();
        if kind != "memory" {
            self.problem(format!(
                "{p} has the fallback {name:?}, a {kind} backend: a fallback must be a memory backend (type: memory), which serves the route from this process while its backend is unreachable. Fix: name a memory backend{}",
                if memory.is_empty() { " (define one, e.g. scratch: {type: memory, max_memory: 256MiB})".to_string() } else { format!(": {}", memory.join(", ")) }
            ));
        }
        if let Some(own) = backends.iter().find(|b| b.name == route.backend)
            && matches!(own.settings, BackendSettings::Memory(_))
        {
            self.problem(format!(
                "{p} has a fallback, but its backend {:?} is a memory backend, which is never unreachable. Fix: remove fallback: (and journal_max_entries, breaker)",
                own.name
            ));
        }
        let journal_max_entries = route
            .journal_max_entries
            .unwrap_or(d::ROUTE_JOURNAL_MAX_ENTRIES);
        if journal_max_entries == 0 || journal_max_entries > d::MAX_JOURNAL_ENTRIES {
            self.problem(format!(
                "{p}.journal_max_entries ({journal_max_entries}) is out of range: the journal keeps the writes accepted during an outage until they are replayed. Fix: set it between 1 and {} (default {})",
                d::MAX_JOURNAL_ENTRIES,
                d::ROUTE_JOURNAL_MAX_ENTRIES
            ));
        }
        let breaker = route.breaker.clone().unwrap_or_default();
        for (key, value) in [
            ("failures", breaker.failures as u64),
            ("window_ms", breaker.window_ms),
            ("probe_interval_ms", breaker.probe_interval_ms),
        ] {
            if value == 0 {
                self.problem(format!(
                    "{p}.breaker.{key} is 0. Fix: set it to a positive number (defaults: failures {}, window_ms {}, probe_interval_ms {})",
                    d::BREAKER_FAILURES,
                    d::BREAKER_WINDOW_MS,
                    d::BREAKER_PROBE_INTERVAL_MS
                ));
            }
        }
        (self.problems.len() == before).then_some(FallbackConfig {
            backend: index,
            journal_max_entries,
            breaker: BreakerConfig {
                failures: breaker.failures,
                window: Duration::from_millis(breaker.window_ms),
                probe_interval: Duration::from_millis(breaker.probe_interval_ms),
            },
        })
    }

    /// A fallback store belongs to one backend: it is emptied when that
    /// backend returns, and the routes of one backend share its circuit.
    fn fallbacks_apart(&mut self, routes: &[RouteConfig], backends: &[BackendConfig]) {
        let name = |i: usize| backends[i].name.as_str();
        for (i, route) in routes.iter().enumerate() {
            let Some(fallback) = route.fallback else {
                continue;
            };
            if let Some((j, _)) = routes
                .iter()
                .enumerate()
                .find(|(_, r)| r.backend == fallback.backend)
            {
                self.problem(format!(
                    "backends.{} is the fallback of routes[{i}] and the backend of routes[{j}]: a fallback is emptied when its backend returns, which would erase routes[{j}]'s keys. Fix: give the fallback a memory backend of its own",
                    name(fallback.backend)
                ));
            }
        }
        for (i, a) in routes.iter().enumerate() {
            for (j, b) in routes.iter().enumerate().skip(i + 1) {
                if a.backend == b.backend && a.fallback != b.fallback {
                    self.problem(format!(
                        "routes[{i}] and routes[{j}] share the backend {:?} but not its fallback settings (fallback, journal_max_entries, breaker): a backend has one circuit breaker and one journal. Fix: give both routes the same settings",
                        name(a.backend)
                    ));
                } else if let (Some(fa), Some(fb)) = (a.fallback, b.fallback)
                    && a.backend != b.backend
                    && fa.backend == fb.backend
                {
                    self.problem(format!(
                        "backends.{} is the fallback of two backends ({:?} and {:?}): each recovery empties it. Fix: give each backend a memory fallback of its own",
                        name(fa.backend),
                        name(a.backend),
                        name(b.backend)
                    ));
                }
            }
        }
    }

    /// A Redis backend's settings, under `p` (`upstream` for the shorthand,
    /// `backends.<name>` otherwise).
    fn redis_backend(&mut self, p: &str, raw: &RawUpstream) -> Option<UpstreamConfig> {
        let before = self.problems.len();

        let min_tls_version =
            self.tls_version(&format!("{p}.min_tls_version"), &raw.min_tls_version);
        if !raw.verify_certificates && self.profile == Profile::Production {
            let label = self.label(&format!("{p}.verify_certificates"), Some("false"));
            self.problem(format!(
                "{label} in the production profile: without certificate verification anyone who can intercept the connection can impersonate Redis and read every command. Fix: set {p}.verify_certificates: true (and {p}.ca_file if the upstream uses a private CA)"
            ));
        }
        for (key, value, default) in [
            (
                format!("{p}.pool_size"),
                raw.pool_size,
                d::UPSTREAM_POOL_SIZE,
            ),
            (
                format!("{p}.max_pinned"),
                raw.max_pinned,
                d::UPSTREAM_MAX_PINNED,
            ),
            (
                format!("{p}.max_blocking"),
                raw.max_blocking,
                d::UPSTREAM_MAX_BLOCKING,
            ),
        ] {
            if value == 0 {
                self.problem(format!(
                    "{key} is 0: no command could reach the upstream. Fix: set it to at least 1 (default {default})"
                ));
            }
        }
        if raw.pool_size > d::MAX_POOL_SIZE {
            self.problem(format!(
                "{p}.pool_size ({}) is above {}: pipelined connections are multiplexed, a handful is enough. Fix: set it between 1 and {}",
                raw.pool_size,
                d::MAX_POOL_SIZE,
                d::MAX_POOL_SIZE
            ));
        }
        for (key, value) in [
            (format!("{p}.connect_timeout_ms"), raw.connect_timeout_ms),
            (format!("{p}.command_timeout_ms"), raw.command_timeout_ms),
        ] {
            if value == 0 {
                self.problem(format!(
                    "{key} is 0: every upstream operation would time out immediately. Fix: set it to a positive number of milliseconds"
                ));
            }
        }

        self.reply_limits(p, raw);

        let url_label = self.label(&format!("{p}.url"), None);
        let parsed = match upstream_url::parse(&raw.url) {
            Ok(p) => Some(p),
            Err(e) => {
                self.problem(format!(
                    "{url_label} {e}. Fix: write it as rediss://[user[:password]@]host:port[/db]"
                ));
                None
            }
        };

        let target = parsed.as_ref().and_then(|u| match &u.endpoint {
            Endpoint::Tls { host, port } => {
                let server_name = raw.server_name.clone().unwrap_or_else(|| host.clone());
                if tls::upstream_server_name(&server_name).is_none() {
                    let label = self.label(&format!("{p}.server_name"), Some(&server_name));
                    self.problem(format!(
                        "{label} is not a valid DNS name or IP address, so the upstream certificate could not be checked. Fix: set {p}.server_name to the name in the upstream's certificate"
                    ));
                    return None;
                }
                Some(UpstreamTarget::Tls {
                    host: host.clone(),
                    port: *port,
                    server_name,
                })
            }
            Endpoint::PlainTcp { host, port } => {
                if !raw.allow_plaintext_upstream {
                    self.problem(format!(
                        "{url_label} is a plaintext redis:// URL: commands, keys and the upstream password would cross the network unencrypted. Fix: use rediss:// (TLS); for a Redis on this host only, you may set {p}.allow_plaintext_upstream: true"
                    ));
                    None
                } else if !upstream_url::is_loopback(host) {
                    self.problem(format!(
                        "{url_label} is a plaintext redis:// URL to {host}, which is not a loopback address: allow_plaintext_upstream only permits 127.0.0.0/8, ::1, localhost or a Unix socket, because anything else crosses a network unencrypted. Fix: use rediss:// for {host}"
                    ));
                    None
                } else {
                    Some(UpstreamTarget::PlainTcp {
                        host: host.clone(),
                        port: *port,
                    })
                }
            }
            Endpoint::Unix { path } => {
                if !raw.allow_plaintext_upstream {
                    self.problem(format!(
                        "{url_label} is a unix:// socket, which carries commands unencrypted. Fix: set {p}.allow_plaintext_upstream: true to accept that for a local socket, or use rediss://"
                    ));
                    None
                } else {
                    Some(UpstreamTarget::Unix { path: path.clone() })
                }
            }
        });

        let password =
            self.upstream_password(p, raw, parsed.as_ref().and_then(|u| u.password.clone()));
        let username = raw
            .username
            .clone()
            .or_else(|| parsed.as_ref().and_then(|u| u.username.clone()));

        let ca_file = raw
            .ca_file
            .as_ref()
            .map(|f| self.resolve(&format!("{p}.ca_file"), f));
        if let Some(ca) = &ca_file {
            self.check_certs(
                &format!("{p}.ca_file"),
                ca,
                "the upstream's certificate could not be verified",
            );
        }
        let client_cert_file = raw
            .client_cert_file
            .as_ref()
            .map(|f| self.resolve(&format!("{p}.client_cert_file"), f));
        let client_key_file = raw
            .client_key_file
            .as_ref()
            .map(|f| self.resolve(&format!("{p}.client_key_file"), f));
        match (&client_cert_file, &client_key_file) {
            (Some(cert), Some(key)) => {
                self.check_certs(
                    &format!("{p}.client_cert_file"),
                    cert,
                    "the upstream could not verify the proxy",
                );
                self.check_private_key(&format!("{p}.client_key_file"), key, WHY_UPSTREAM_KEY);
            }
            (None, None) => {}
            _ => self.problem(format!(
                "{p}.client_cert_file and {p}.client_key_file must be set together: a client certificate is useless without its key. Fix: set both, or neither"
            )),
        }

        let (Some(target), Some(min_tls_version), Some(parsed)) = (target, min_tls_version, parsed)
        else {
            return None;
        };
        let config = UpstreamConfig {
            target,
            username,
            password,
            db: parsed.db,
            ca_file,
            client_cert_file,
            client_key_file,
            verify_certificates: raw.verify_certificates,
            min_tls_version,
            pool_size: raw.pool_size,
            max_pinned: raw.max_pinned,
            max_blocking: raw.max_blocking,
            acquire_timeout: Duration::from_millis(raw.acquire_timeout_ms),
            connect_timeout: Duration::from_millis(raw.connect_timeout_ms),
            command_timeout: Duration::from_millis(raw.command_timeout_ms),
            max_reply_len: raw.max_reply_len,
            max_reply_depth: raw.max_reply_depth,
            max_reply_elements: raw.max_reply_elements,
        };
        if self.problems.len() == before
            && matches!(config.target, UpstreamTarget::Tls { .. })
            && let Err(e) = tls::upstream_client_config(&config, self.profile)
        {
            self.problem(format!(
                "upstream TLS: {e}: sealcache could not connect to the upstream"
            ));
        }
        (self.problems.len() == before).then_some(config)
    }

    /// `upstream.max_reply_*`: the handshake's own reply must fit, and the
    /// depth is capped because decoding a nesting level takes stack.
    fn reply_limits(&mut self, p: &str, raw: &RawUpstream) {
        for (key, value, min, max, why) in [
            (
                format!("{p}.max_reply_len"),
                raw.max_reply_len,
                d::MIN_REPLY_LEN,
                usize::MAX,
                "bytes",
            ),
            (
                format!("{p}.max_reply_depth"),
                raw.max_reply_depth,
                d::MIN_REPLY_DEPTH,
                d::MAX_REPLY_DEPTH,
                "nested aggregates",
            ),
            (
                format!("{p}.max_reply_elements"),
                raw.max_reply_elements,
                d::MIN_REPLY_ELEMENTS,
                usize::MAX,
                "elements",
            ),
        ] {
            if value < min || value > max {
                let label = self.label(&key, Some(&value.to_string()));
                let range = if max == usize::MAX {
                    format!("at least {min}")
                } else {
                    format!("between {min} and {max}")
                };
                self.problem(format!(
                    "{label} is out of range: Redis's own replies (HELLO, COMMAND DOCS, XREAD…) would be refused, or a hostile upstream could exhaust the stack. Fix: set it {range} {why}"
                ));
            }
        }
    }

    /// One password source at most: URL userinfo, `password_env` or `password_file`.
    fn upstream_password(
        &mut self,
        p: &str,
        raw: &RawUpstream,
        from_url: Option<SecretString>,
    ) -> Option<SecretString> {
        let sources = [
            from_url.is_some().then(|| "the URL".to_string()),
            raw.password_env
                .is_some()
                .then_some(format!("{p}.password_env")),
            raw.password_file
                .is_some()
                .then_some(format!("{p}.password_file")),
        ];
        let set: Vec<String> = sources.into_iter().flatten().collect();
        if set.len() > 1 {
            self.problem(format!(
                "the upstream password is set in more than one place ({}): which one applies would be ambiguous. Fix: keep exactly one",
                set.join(", ")
            ));
            return None;
        }
        if let Some(var) = &raw.password_env {
            return match self.env.var(var).filter(|p| !p.is_empty()) {
                Some(p) => Some(SecretString::from(p)),
                None => {
                    self.problem(format!(
                        "{p}.password_env names the environment variable {var}, which is not set or empty. Fix: export {var} before starting sealcache, or remove {p}.password_env"
                    ));
                    None
                }
            };
        }
        if let Some(file) = &raw.password_file {
            let path = self.resolve(&format!("{p}.password_file"), file);
            if let Err(e) = tls::check_private_key_permissions(&path) {
                self.file_problem(
                    &format!("{p}.password_file"),
                    &path,
                    &e,
                    WHY_UPSTREAM_PASSWORD,
                );
                return None;
            }
            return match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let text = zeroize::Zeroizing::new(text);
                    // One line: the trailing newline editors and `echo` add is not part of it.
                    let password = text.trim_end_matches(['\n', '\r']);
                    if password.is_empty() {
                        let label = self.label(
                            &format!("{p}.password_file"),
                            Some(&path.display().to_string()),
                        );
                        self.problem(format!(
                            "{label} is empty. Fix: write the upstream password into it (one line)"
                        ));
                        None
                    } else {
                        Some(SecretString::from(password.to_string()))
                    }
                }
                Err(e) => {
                    let e = match e.kind() {
                        std::io::ErrorKind::NotFound => TlsError::NotFound { path: path.clone() },
                        _ => TlsError::Read {
                            path: path.clone(),
                            source: e,
                        },
                    };
                    self.file_problem(
                        &format!("{p}.password_file"),
                        &path,
                        &e,
                        WHY_UPSTREAM_PASSWORD,
                    );
                    None
                }
            };
        }
        from_url
    }

    fn encryption(&mut self) -> Option<EncryptionConfig> {
        let raw = &self.layered.raw.encryption;
        let before = self.problems.len();
        let master_key_file = raw
            .master_key_file
            .as_ref()
            .map(|p| self.resolve("encryption.master_key_file", p));
        let env_key = self
            .env
            .var(ENV_MASTER_KEY)
            .filter(|k| !k.is_empty())
            .map(zeroize::Zeroizing::new);
        let from_env = env_key.is_some();
        // Decoded here too, so check-config and serve refuse a malformed key alike.
        if let Some(value) = &env_key
            && let Err(e) = crate::keys::MasterKey::from_base64(value)
        {
            self.problem(format!(
                "{ENV_MASTER_KEY} is not a usable master key: {e}. Fix: set it to the standard base64 of 32 random bytes (e.g. `head -c 32 /dev/urandom | base64`)"
            ));
        }
        if from_env {
            // The variable wins, but a leftover key file must still not be world-readable.
            if let Some(path) = &master_key_file
                && path.exists()
                && let Err(e) = tls::check_private_key_permissions(path)
            {
                self.file_problem("encryption.master_key_file", path, &e, WHY_MASTER_KEY);
            }
        } else {
            match &master_key_file {
                None => self.problem(format!(
                    "no master key configured: encryption.master_key_file is null and {ENV_MASTER_KEY} is not set, and sealcache never stores values unencrypted. Fix: set encryption.master_key_file to a 0600 file holding base64 of 32 random bytes (`sealcache init` creates one), or set {ENV_MASTER_KEY}"
                )),
                Some(path) => self.check_master_key_file(path),
            }
        }
        if raw.namespace.trim().is_empty() {
            self.problem(
                "encryption.namespace is empty: ciphertexts are bound to it. Fix: set a short name, e.g. `default`",
            );
        }
        (self.problems.len() == before).then_some(EncryptionConfig {
            master_key_file,
            namespace: raw.namespace.clone(),
            on_decrypt_failure: raw.on_decrypt_failure,
        })
    }

    fn check_master_key_file(&mut self, path: &Path) {
        let key = "encryption.master_key_file";
        if let Err(e) = tls::check_private_key_permissions(path) {
            let e = match e {
                TlsError::NotFound { path } => {
                    let label = self.label(key, Some(&path.display().to_string()));
                    self.problem(format!(
                        "{label} does not exist: without the master key no value can be encrypted. Fix: create it (`sealcache init` does, or `head -c 32 /dev/urandom | base64 > {p} && chmod 600 {p}`), or set {ENV_MASTER_KEY}",
                        p = path.display()
                    ));
                    return;
                }
                other => other,
            };
            self.file_problem(key, path, &e, WHY_MASTER_KEY);
            return;
        }
        match std::fs::read(path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => {
                let label = self.label(key, Some(&path.display().to_string()));
                self.problem(format!(
                    "{label} is empty: without the master key no value can be encrypted. Fix: write base64 of 32 random bytes into it"
                ));
            }
            Ok(mut bytes) => {
                zeroize::Zeroize::zeroize(&mut bytes);
                if let Err(e) = crate::keys::MasterKey::from_file(path) {
                    let label = self.label(key, Some(&path.display().to_string()));
                    self.problem(format!(
                        "{label} does not hold a usable master key: {e}. Fix: write the standard base64 of 32 random bytes into it (`sealcache init` does)"
                    ));
                }
            }
            Err(e) => self.file_problem(
                key,
                path,
                &TlsError::Read {
                    path: path.into(),
                    source: e,
                },
                WHY_MASTER_KEY,
            ),
        }
    }

    fn logging(&mut self) -> Option<LoggingConfig> {
        let raw = &self.layered.raw.logging;
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&raw.level) {
            let label = self.label("logging.level", Some(&raw.level));
            self.problem(format!(
                "{label} is not a valid log filter ({e}). Fix: use a level (error, warn, info, debug, trace) or a directive like sealcache=debug"
            ));
            return None;
        }
        Some(LoggingConfig {
            format: raw.format,
            level: raw.level.clone(),
        })
    }

    /// The admin HTTP listener: an address (or null), loopback in production
    /// unless `admin.allow_non_loopback` says otherwise.
    fn admin(&mut self, listen: Option<&ListenConfig>) -> Option<AdminConfig> {
        let raw = &self.layered.raw.admin;
        let allow_non_loopback = raw.allow_non_loopback;
        let Some(text) = &raw.listen else {
            return Some(AdminConfig {
                listen: None,
                allow_non_loopback,
            });
        };
        let Some(addr) = parse_listen_addr(text) else {
            let label = self.label("admin.listen", Some(text));
            self.problem(format!(
                "{label} is not an IP address and port. Fix: write it as 127.0.0.1:9380 (or [::1]:9380), or null to turn the admin listener off"
            ));
            return None;
        };
        let before = self.problems.len();
        if !addr.ip().is_loopback() && self.profile == Profile::Production && !allow_non_loopback {
            let label = self.label("admin.listen", Some(text));
            self.problem(format!(
                "{label} is not a loopback address in the production profile: /healthz and /readyz answer anyone who can reach them, over plain HTTP without authentication, and /readyz describes the listeners, routes and backends. Fix: keep admin.listen on 127.0.0.1 (or [::1]) and let the orchestrator probe it locally, or set admin.allow_non_loopback: true if only trusted hosts can reach that address"
            ));
        }
        if let Some(tcp) = listen.and_then(|l| l.tcp)
            && tcp.port() == addr.port()
            && addr.port() != 0
            && (tcp.ip() == addr.ip() || tcp.ip().is_unspecified() || addr.ip().is_unspecified())
        {
            let label = self.label("admin.listen", Some(text));
            self.problem(format!(
                "{label} uses the same address as listen.tcp ({tcp}): both listeners cannot bind it. Fix: give admin.listen another port (default 127.0.0.1:9380)"
            ));
        }
        (self.problems.len() == before).then_some(AdminConfig {
            listen: Some(addr),
            allow_non_loopback,
        })
    }

    fn admin_commands(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for name in &self.layered.raw.allowed_admin_commands {
            let normalized = name.trim().to_ascii_uppercase().replace(' ', "|");
            let (cmd, sub) = match normalized.split_once('|') {
                Some((c, s)) => (c, Some(s.as_bytes())),
                None => (normalized.as_str(), None),
            };
            match crate::commands::lookup(cmd.as_bytes(), sub) {
                None => self.problem(format!(
                    "allowed_admin_commands lists `{name}`, which is not a Redis command sealcache knows. Fix: correct the name (subcommands as CONFIG|SET)"
                )),
                Some(spec) if spec.policy != crate::commands::Policy::Admin => self.problem(format!(
                    "allowed_admin_commands lists `{name}`, which is not an administrative command (it is never blocked), so listing it suggests a mistake. Fix: remove it"
                )),
                Some(spec) => out.push(spec.name.to_string()),
            }
        }
        out
    }
}

/// Backend names appear in INFO fields, logs and `SEALCACHE_BACKENDS__<NAME>__…`.
fn valid_backend_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A size: bytes, or a number with a unit (`KiB`, `MiB`, `GiB`, `TiB`, or
/// `KB`, `MB`, `GB`, `TB` in powers of ten; `B` and case are optional).
pub(super) fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return None,
    };
    number.checked_mul(multiplier)
}

/// `127.0.0.1:6380`, `[::1]:6380`, or `localhost:6380` (read as 127.0.0.1).
fn parse_listen_addr(text: &str) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse() {
        return Some(addr);
    }
    let port = text.strip_prefix("localhost:")?.parse().ok()?;
    Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
}

/// Octal text: "0660", "660" or "0o660".
fn parse_mode(text: &str) -> Option<u32> {
    let digits = text.trim().trim_start_matches("0o");
    if digits.is_empty() || digits.len() > 4 {
        return None;
    }
    u32::from_str_radix(digits, 8).ok().filter(|m| *m <= 0o777)
}

/// Checks a PHC string without verifying anything against it: argon2id, valid
/// parameters, a salt and a hash.
pub fn check_argon2_hash(phc: &str) -> Result<(), String> {
    let hash = argon2::PasswordHash::new(phc).map_err(|e| e.to_string())?;
    if hash.algorithm != argon2::Algorithm::Argon2id.ident() {
        return Err(format!("algorithm is {}, not argon2id", hash.algorithm));
    }
    argon2::Params::try_from(&hash).map_err(|e| e.to_string())?;
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err("salt or hash missing".into());
    }
    Ok(())
}

/// The profile's floor for client passwords. `Err` completes "the password …".
pub fn password_strength(password: &str, profile: Profile) -> Result<(), String> {
    let len = password.chars().count();
    let min = match profile {
        Profile::Development => d::MIN_PASSWORD_LEN_DEVELOPMENT,
        Profile::Production => d::MIN_PASSWORD_LEN_PRODUCTION,
    };
    if len < min {
        return Err(format!(
            "is {len} characters long; at least {min} are required"
        ));
    }
    if profile == Profile::Production {
        let classes = [
            password.chars().any(|c| c.is_lowercase()),
            password.chars().any(|c| c.is_uppercase()),
            password.chars().any(|c| c.is_ascii_digit()),
            password.chars().any(|c| !c.is_alphanumeric()),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if classes < d::MIN_PASSWORD_CLASSES_PRODUCTION {
            return Err(format!(
                "has low variety: it uses {classes} of the 4 character classes (lower case, upper case, digits, symbols); at least {} are required",
                d::MIN_PASSWORD_CLASSES_PRODUCTION
            ));
        }
        let mut distinct: Vec<char> = password.chars().collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < d::MIN_PASSWORD_DISTINCT_PRODUCTION {
            return Err(format!(
                "has low variety: only {} distinct characters; at least {} are required",
                distinct.len(),
                d::MIN_PASSWORD_DISTINCT_PRODUCTION
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0660"), Some(0o660));
        assert_eq!(parse_mode("600"), Some(0o600));
        assert_eq!(parse_mode("0o640"), Some(0o640));
        assert_eq!(parse_mode("0999"), None);
        assert_eq!(parse_mode("rw"), None);
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen_addr("localhost:7000"),
            Some("127.0.0.1:7000".parse().unwrap())
        );
        assert!(parse_listen_addr("[::1]:1").is_some());
        assert!(parse_listen_addr("example.com:1").is_none());
    }

    #[test]
    fn password_floors() {
        let dev = Profile::Development;
        let prod = Profile::Production;
        assert!(password_strength("fifteen-chars-x", dev).is_err());
        assert!(password_strength("sixteen-chars-xx", dev).is_ok());
        assert!(password_strength("sixteen-chars-xx", prod).is_err());
        // Long but one class only.
        assert!(
            password_strength("abcdefghijklmnopqrstuvwxyzabcdefgh", prod)
                .unwrap_err()
                .contains("low variety")
        );
        // Long, three classes, but few distinct characters.
        assert!(
            password_strength(&"aA1".repeat(12), prod)
                .unwrap_err()
                .contains("distinct")
        );
        assert!(password_strength("Xk3-9fQz_Lm2Rt7vBn4Wc8Jd1Hs6Gy5P", prod).is_ok());
    }

    #[test]
    fn argon2_hashes() {
        use argon2::PasswordHasher;
        let salt = argon2::password_hash::SaltString::from_b64("c29tZXNhbHRzb21lc2FsdA").unwrap();
        let good = argon2::Argon2::default()
            .hash_password(b"pw", &salt)
            .unwrap()
            .to_string();
        assert!(check_argon2_hash(&good).is_ok());
        assert!(check_argon2_hash("$argon2id$v=19$m=19456,t=2,p=1$...").is_err());
        assert!(check_argon2_hash("plaintext").is_err());
        let argon2i = good.replacen("argon2id", "argon2i", 1);
        assert!(
            check_argon2_hash(&argon2i)
                .unwrap_err()
                .contains("not argon2id")
        );
    }
}
