//! Self-tests of the harness in `support/`: redis-server over TLS with a
//! password, restart on the same port, the client helpers (redis crate,
//! redis-cli, raw TLS) and the proxy guard's configuration and fail-fast paths.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::AsyncCommands;

use crate::support::endpoint::exchange;
use crate::support::{Certs, RedisServer, Sealcache, SealcacheBuilder, random_password};

fn redis_with_rcgen_certs() -> RedisServer {
    let certs = Certs::generate_with_rcgen();
    RedisServer::start_tls(&certs, &random_password(32))
}

#[tokio::test]
async fn redis_server_serves_tls_clients_with_the_test_ca_and_password() {
    let redis = redis_with_rcgen_certs();

    let mut con = redis.client().await;
    let () = con.set("harness:key", "value").await.unwrap();
    let value: String = con.get("harness:key").await.unwrap();
    assert_eq!(value, "value");

    assert_eq!(redis.redis_cli(&["PING"]), "PONG");
    assert_eq!(redis.redis_cli(&["GET", "harness:key"]), "value");
    let noauth = redis
        .endpoint()
        .without_auth()
        .redis_cli(&["GET", "harness:key"]);
    assert!(noauth.starts_with("NOAUTH"), "{noauth}");

    let wrong = redis
        .endpoint()
        .with_auth("default", "not-the-password")
        .try_client()
        .await;
    assert!(wrong.is_err(), "a wrong password must be refused");
}

#[tokio::test]
async fn redis_server_speaks_resp3_to_resp3_endpoints() {
    let redis = redis_with_rcgen_certs();
    let mut con = redis.endpoint().resp3().client().await;
    let hello: redis::Value = redis::cmd("HELLO")
        .arg(3)
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(matches!(hello, redis::Value::Map(_)), "{hello:?}");
}

#[tokio::test]
async fn redis_server_restarts_on_the_same_port() {
    let mut redis = redis_with_rcgen_certs();
    let port = redis.port();
    let mut con = redis.client().await;
    let () = con.set("before", "restart").await.unwrap();

    redis.stop();
    assert!(!redis.is_running());
    let err = redis.endpoint().try_client().await;
    assert!(
        err.is_err(),
        "nothing should listen on {port} while stopped"
    );
    let err = con.get::<_, Option<String>>("before").await;
    assert!(err.is_err(), "a connection to a killed server must fail");

    redis.restart();
    assert!(redis.is_running());
    assert_eq!(redis.port(), port);
    let mut con = redis.client().await;
    let gone: Option<String> = con.get("before").await.unwrap();
    assert_eq!(gone, None, "nothing is persisted across restarts");
}

#[tokio::test]
async fn raw_tls_stream_exchanges_bytes_with_redis_server() {
    let redis = redis_with_rcgen_certs();
    let mut stream = redis.endpoint().raw_tls().await;
    let request = format!(
        "PING\r\nAUTH default {}\r\n*1\r\n$4\r\nPING\r\nQUIT\r\n",
        redis.password()
    );
    let reply = exchange(&mut stream, request.as_bytes(), Duration::from_secs(10)).await;
    assert!(reply.closed, "QUIT closes the connection: {reply:?}");
    assert_eq!(
        reply.text(),
        "-NOAUTH Authentication required.\r\n+OK\r\n+PONG\r\n+OK\r\n"
    );
}

/// The certificates the tests use come from `sealcache certs generate` and
/// must work for redis-server's TLS port.
#[tokio::test]
async fn certificates_from_the_binary_work_for_redis_server() {
    let certs = Certs::generate();
    let redis = RedisServer::start_tls(&certs, &random_password(32));
    assert_eq!(redis.redis_cli(&["PING"]), "PONG");
    let mut con = redis.client().await;
    let pong: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
    assert_eq!(pong, "PONG");
}

/// Just enough of YAML to inspect the file the harness writes.
#[derive(Debug, serde::Deserialize, PartialEq)]
#[serde(untagged)]
enum Yaml {
    Map(BTreeMap<String, Yaml>),
    Seq(Vec<Yaml>),
    Bool(bool),
    Int(i64),
    Str(String),
    Null(()),
}

impl Yaml {
    fn get(&self, path: &str) -> &Yaml {
        path.split('.')
            .fold(self, |node, key| match (node, key.parse::<usize>()) {
                (Yaml::Seq(items), Ok(i)) => &items[i],
                (Yaml::Map(map), _) => map
                    .get(key)
                    .unwrap_or_else(|| panic!("no key {key:?} in {map:?}")),
                _ => panic!("cannot index {node:?} with {key:?}"),
            })
    }

    fn str(&self, path: &str) -> &str {
        match self.get(path) {
            Yaml::Str(s) => s,
            other => panic!("{path} is {other:?}, not a string"),
        }
    }
}

#[test]
fn sealcache_builder_writes_the_configuration_it_was_given() {
    let certs = Certs::generate_with_rcgen();
    let redis = RedisServer::start_tls(&certs, &random_password(32));
    let exited = Sealcache::builder(&redis)
        .user("app", &random_password(20))
        .mutual_tls()
        .unix_socket()
        .set("upstream.pool_size", "2")
        .set("limits.max_bulk_len", "1024")
        .unset("encryption.master_key_file")
        .master_key_in_env()
        .yaml("allowed_admin_commands: [FLUSHDB]")
        .run_until_exit("check-config");

    let doc: Yaml = serde_saphyr::from_str(&exited.config)
        .unwrap_or_else(|e| panic!("harness wrote invalid YAML: {e}\n{}", exited.config));
    assert_eq!(doc.str("profile"), "development");
    assert!(doc.str("listen.tcp").starts_with("127.0.0.1:"));
    assert!(doc.str("listen.unix").ends_with("sealcache.sock"));
    assert_eq!(
        doc.str("tls.cert_file"),
        certs.server_cert().to_str().unwrap()
    );
    assert_eq!(
        doc.str("tls.client_ca_file"),
        certs.ca_cert().to_str().unwrap()
    );
    assert_eq!(doc.str("auth.users.0.name"), "default");
    assert_eq!(doc.str("auth.users.0.password_env"), "IT_PASSWORD_0");
    assert_eq!(doc.str("auth.users.1.name"), "app");
    assert_eq!(doc.str("upstream.url"), redis.url());
    assert!(
        doc.str("upstream.password_file")
            .ends_with("upstream.password")
    );
    assert_eq!(doc.get("upstream.pool_size"), &Yaml::Int(2));
    assert_eq!(doc.get("limits.max_bulk_len"), &Yaml::Int(1024));
    assert_eq!(
        doc.get("allowed_admin_commands.0"),
        &Yaml::Str("FLUSHDB".into())
    );
    assert!(
        !exited.config.contains("master_key_file"),
        "{}",
        exited.config
    );
    assert!(
        !exited.config.contains(redis.password()),
        "passwords never go into the file"
    );
}

#[test]
fn sealcache_builder_hashes_passwords_when_asked() {
    let certs = Certs::generate_with_rcgen();
    let password = random_password(24);
    let exited = SealcacheBuilder::new(&certs)
        .password(&password)
        .hashed_passwords()
        .run_until_exit("check-config");
    let doc: Yaml = serde_saphyr::from_str(&exited.config).unwrap();
    let hash = doc.str("auth.users.0.password_hash");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), &PasswordHash::new(hash).unwrap())
        .expect("the hash verifies the password");
}

#[test]
fn sealcache_run_until_exit_reports_a_configuration_error() {
    let certs = Certs::generate_with_rcgen();
    let exited = SealcacheBuilder::new(&certs)
        .yaml("no_such_setting: true")
        .run_until_exit("serve");
    assert_ne!(exited.code, Some(0), "an unknown key must stop the proxy");
    assert!(exited.code.is_some(), "it exits, it is not killed");
}

#[test]
#[should_panic(expected = "sealcache exited during startup")]
fn sealcache_start_fails_fast_when_the_process_exits() {
    let certs = Certs::generate_with_rcgen();
    let _proxy = SealcacheBuilder::new(&certs)
        .yaml("no_such_setting: true")
        .start();
}
