//! Layering, origins and full loads against generated certificates. The
//! environment is always a map: no test touches the process environment.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use secrecy::ExposeSecret;
use serde_json::Value;

use super::layers::{self, Layered};
use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn args_for(path: &Path) -> ConfigArgs {
    ConfigArgs {
        config: Some(path.to_path_buf()),
        ..ConfigArgs::default()
    }
}

/// A temporary directory with certificates, a master key and a config file.
struct Fixture {
    dir: tempfile::TempDir,
}

/// A valid hash made with tiny parameters so the tests stay fast.
fn cheap_hash() -> String {
    use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
    let salt = argon2::password_hash::SaltString::from_b64("c29tZXNhbHRzb21lc2FsdA").unwrap();
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(8, 1, 1, None).unwrap(),
    )
    .hash_password(b"a password of some length", &salt)
    .unwrap()
    .to_string()
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        crate::cli::certs::generate(
            &dir.path().join("certs"),
            &["localhost".into(), "127.0.0.1".into()],
            false,
        )
        .unwrap();
        let key = dir.path().join("master.key");
        fs::write(&key, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        Fixture { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `sealcache.yaml`: a valid base plus `extra` top-level YAML.
    fn config(&self, extra: &str) -> PathBuf {
        let text = format!(
            "auth:\n  users:\n    - name: default\n      password_hash: '{}'\nupstream:\n  ca_file: certs/ca.crt\n{extra}",
            cheap_hash()
        );
        let path = self.path("sealcache.yaml");
        fs::write(&path, text).unwrap();
        path
    }

    fn raw_config(&self, text: &str) -> PathBuf {
        let path = self.path("sealcache.yaml");
        fs::write(&path, text).unwrap();
        path
    }
}

fn layer(args: &ConfigArgs, env: &HashMap<String, String>) -> Layered {
    layers::layer(args, env).unwrap()
}

#[test]
fn defaults_apply_without_overrides() {
    let f = Fixture::new();
    let path = f.raw_config("");
    let l = layer(&args_for(&path), &env(&[]));
    assert_eq!(l.raw.upstream.pool_size, defaults::UPSTREAM_POOL_SIZE);
    assert_eq!(l.raw.listen.tcp.as_deref(), Some(defaults::LISTEN_TCP));
    assert_eq!(l.raw.profile, Profile::Development);
    assert_eq!(l.origin("upstream.pool_size"), Origin::Default);
}

#[test]
fn file_then_env_then_flags() {
    let f = Fixture::new();
    let path = f.raw_config(
        "upstream:\n  pool_size: 2\n  max_pinned: 9\nlisten:\n  tcp: \"127.0.0.1:7000\"\nlogging:\n  level: warn\n",
    );
    let e = env(&[
        ("SEALCACHE_UPSTREAM__POOL_SIZE", "8"),
        ("SEALCACHE_LOGGING__LEVEL", "debug"),
    ]);
    let mut args = args_for(&path);
    args.log_level = Some("trace".into());
    let l = layer(&args, &e);
    // File beats default, env beats file, flag beats env.
    assert_eq!(l.raw.upstream.max_pinned, 9);
    assert_eq!(l.raw.upstream.pool_size, 8);
    assert_eq!(l.raw.logging.level, "trace");
    assert_eq!(l.raw.listen.tcp.as_deref(), Some("127.0.0.1:7000"));
    assert_eq!(l.origin("upstream.max_pinned"), Origin::File(path.clone()));
    assert_eq!(
        l.origin("upstream.pool_size"),
        Origin::Env("SEALCACHE_UPSTREAM__POOL_SIZE".into())
    );
    assert_eq!(l.origin("logging.level"), Origin::Flag("log-level"));
}

#[test]
fn env_values_are_typed_by_the_setting() {
    let f = Fixture::new();
    let path = f.raw_config("tls:\n  client_ca_file: certs/ca.crt\n");
    let e = env(&[
        // Text settings keep the text: "1.3" must not become the float 1.3 → "1.3" by luck.
        ("SEALCACHE_TLS__MIN_VERSION", "1.3"),
        ("SEALCACHE_LISTEN__UNIX_MODE", "0600"),
        ("SEALCACHE_ENCRYPTION__NAMESPACE", "no"),
        // Empty unsets a nullable setting.
        ("SEALCACHE_TLS__CLIENT_CA_FILE", ""),
        ("SEALCACHE_UPSTREAM__VERIFY_CERTIFICATES", "false"),
        (
            "SEALCACHE_AUTH__USERS",
            "[{name: app, password_env: APP_PW}]",
        ),
    ]);
    let l = layer(&args_for(&path), &e);
    assert_eq!(l.raw.tls.min_version, "1.3");
    assert_eq!(l.raw.listen.unix_mode, "0600");
    assert_eq!(l.raw.encryption.namespace, "no");
    assert_eq!(l.raw.tls.client_ca_file, None);
    assert!(!l.raw.upstream.verify_certificates);
    assert_eq!(l.raw.auth.users.len(), 1);
    assert_eq!(l.raw.auth.users[0].password_env.as_deref(), Some("APP_PW"));
}

#[test]
fn yaml_scalars_that_look_like_numbers_stay_text() {
    let f = Fixture::new();
    let path = f.raw_config("tls:\n  min_version: 1.3\nlisten:\n  unix_mode: 0600\n");
    let l = layer(&args_for(&path), &env(&[]));
    assert_eq!(l.raw.tls.min_version, "1.3");
    assert_eq!(l.raw.listen.unix_mode, "0600");
}

#[test]
fn an_empty_section_changes_nothing() {
    let f = Fixture::new();
    let path = f.raw_config("listen:\n  # tcp: \"0.0.0.0:6380\"\nupstream:\n");
    let l = layer(&args_for(&path), &env(&[]));
    assert_eq!(l.raw.listen.tcp.as_deref(), Some(defaults::LISTEN_TCP));
    assert_eq!(l.raw.upstream.pool_size, defaults::UPSTREAM_POOL_SIZE);
}

#[test]
fn reserved_variables_are_not_keys() {
    let f = Fixture::new();
    let path = f.raw_config("");
    let e = env(&[
        ("SEALCACHE_MASTER_KEY", "x"),
        ("SEALCACHE_CONFIG", "/nonexistent"),
        ("SEALCACHE_ENV", "production"),
        ("OTHER_THING", "1"),
    ]);
    // --config wins over SEALCACHE_CONFIG, so the missing path is not consulted.
    let l = layer(&args_for(&path), &e);
    assert_eq!(l.raw.profile, Profile::Production);
}

#[test]
fn profile_flag_beats_sealcache_env() {
    let f = Fixture::new();
    let path = f.raw_config("profile: production\n");
    let mut args = args_for(&path);
    args.profile = Some("development".into());
    let l = layer(&args, &env(&[("SEALCACHE_ENV", "production")]));
    assert_eq!(l.raw.profile, Profile::Development);
}

#[test]
fn conflicting_profile_variables_are_an_error() {
    let f = Fixture::new();
    let path = f.raw_config("");
    let e = env(&[
        ("SEALCACHE_ENV", "production"),
        ("SEALCACHE_PROFILE", "development"),
    ]);
    let err = layers::layer(&args_for(&path), &e).err().unwrap();
    assert!(matches!(err, ConfigError::ProfileConflict { .. }), "{err}");
}

#[test]
fn unknown_env_key_is_an_error_with_a_suggestion() {
    let f = Fixture::new();
    let path = f.raw_config("");
    let err = layers::layer(
        &args_for(&path),
        &env(&[("SEALCACHE_UPSTREAM__POOL_SIZ", "3")]),
    )
    .err()
    .unwrap();
    match &err {
        ConfigError::UnknownKey {
            key,
            origin,
            suggestion,
        } => {
            assert_eq!(key, "upstream.pool_siz");
            assert_eq!(origin, &Origin::Env("SEALCACHE_UPSTREAM__POOL_SIZ".into()));
            assert_eq!(suggestion.as_deref(), Some("upstream.pool_size"));
        }
        other => panic!("unexpected {other}"),
    }
    // A leaf cannot be descended into.
    assert!(
        layers::layer(
            &args_for(&path),
            &env(&[("SEALCACHE_UPSTREAM__URL__HOST", "x")])
        )
        .is_err()
    );
}

#[test]
fn unknown_yaml_keys_are_errors_at_any_depth() {
    let f = Fixture::new();
    for (text, key) in [
        ("listn:\n  tcp: x\n", "listn"),
        ("tls:\n  certfile: a\n", "tls.certfile"),
        (
            "auth:\n  users:\n    - name: a\n      pasword_env: X\n",
            "auth.users[].pasword_env",
        ),
    ] {
        let path = f.raw_config(text);
        let err = layers::layer(&args_for(&path), &env(&[])).err().unwrap();
        match err {
            ConfigError::UnknownKey { key: k, .. } => assert_eq!(k, key),
            other => panic!("{text}: unexpected {other}"),
        }
    }
}

#[test]
fn type_errors_name_the_key_and_origin_without_echoing_text() {
    let f = Fixture::new();
    let path = f.raw_config("");
    let err = layers::layer(
        &args_for(&path),
        &env(&[("SEALCACHE_LIMITS__MAX_CLIENTS", "hunter2hunter2")]),
    )
    .err()
    .unwrap();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "limits.max_clients (from environment variable SEALCACHE_LIMITS__MAX_CLIENTS)"
        ),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");

    let path = f.raw_config("upstream:\n  verify_certificates: maybe\n");
    let err = layers::layer(&args_for(&path), &env(&[])).err().unwrap();
    assert!(
        err.to_string().starts_with("upstream.verify_certificates"),
        "{err}"
    );
}

#[test]
fn config_file_discovery() {
    let f = Fixture::new();
    let path = f.raw_config("upstream:\n  pool_size: 3\n");
    // SEALCACHE_CONFIG is used when --config is absent.
    let l = layer(
        &ConfigArgs::default(),
        &env(&[("SEALCACHE_CONFIG", path.to_str().unwrap())]),
    );
    assert_eq!(l.raw.upstream.pool_size, 3);
    // An explicit path that does not exist is an error, not a silent fallback.
    let missing = f.path("nope.yaml");
    let err = layers::layer(&args_for(&missing), &env(&[])).err().unwrap();
    assert!(matches!(err, ConfigError::FileNotFound { .. }), "{err}");
    let err = layers::layer(
        &ConfigArgs::default(),
        &env(&[("SEALCACHE_CONFIG", missing.to_str().unwrap())]),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("SEALCACHE_CONFIG"), "{err}");
}

#[test]
fn relative_paths_follow_their_origin() {
    let f = Fixture::new();
    let path = f.raw_config("tls:\n  cert_file: certs/server.crt\n");
    let l = layer(
        &args_for(&path),
        &env(&[("SEALCACHE_TLS__KEY_FILE", "k/server.key")]),
    );
    assert_eq!(
        l.resolve("tls.cert_file", "certs/server.crt"),
        f.path("certs/server.crt")
    );
    // Defaults are relative to the file too (master.key next to sealcache.yaml).
    assert_eq!(
        l.resolve("encryption.master_key_file", "master.key"),
        f.path("master.key")
    );
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(
        l.resolve("tls.key_file", "k/server.key"),
        cwd.join("k/server.key")
    );
    assert_eq!(l.resolve("tls.key_file", "/abs/x"), PathBuf::from("/abs/x"));
}

#[test]
fn example_file_matches_the_schema_and_defaults() {
    let text = include_str!("../../docs/sealcache.example.yaml");
    let example = layers::parse_yaml(text).unwrap();
    let schema = layers::schema();
    fn leaves(v: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(v, &p, out);
                }
            }
            other => out.push((prefix.to_string(), other.clone())),
        }
    }
    let (mut ex, mut de) = (Vec::new(), Vec::new());
    leaves(&example, "", &mut ex);
    leaves(&schema, "", &mut de);
    let ex_keys: Vec<&String> = ex.iter().map(|(k, _)| k).collect();
    let de_keys: Vec<&String> = de.iter().map(|(k, _)| k).collect();
    assert_eq!(
        ex_keys, de_keys,
        "the example must list every key, in order"
    );
    for ((key, example_value), (_, default_value)) in ex.iter().zip(&de) {
        if key == "auth.users" {
            continue; // The example shows a user; the default has none (and fails validation).
        }
        // The example may spell text settings as YAML numbers (e.g. "1.2").
        let same = example_value == default_value
            || example_value.to_string().trim_matches('"')
                == default_value.to_string().trim_matches('"');
        assert!(
            same,
            "{key}: example {example_value} vs default {default_value}"
        );
    }
}

/// The example's commented `backends:` and `routes:`, uncommented: they load
/// as written, their memory and dynamodb backends and their fallback route
/// show every key of their kind with its default, and the environment
/// overrides the example names reach those backends.
#[test]
fn example_backends_and_routes_load_with_every_key_and_default() {
    let text = include_str!("../../docs/sealcache.example.yaml");
    let block: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "# backends:")
        .take_while(|l| !l.starts_with("# Environment:"))
        .map(|l| {
            l.strip_prefix("# ")
                .unwrap_or_else(|| panic!("not commented: {l}"))
        })
        .collect();
    assert!(
        block.len() > 10,
        "no commented backends: block in the example"
    );
    let block = block.join("\n") + "\n";

    // Every key of a memory and a dynamodb backend, and of a route with a
    // fallback, with its default.
    let example = layers::parse_yaml(&block).unwrap();
    let without_type = |v: &Value| {
        let mut map = v.as_object().unwrap().clone();
        assert!(map.remove("type").is_some());
        Value::Object(map)
    };
    assert_eq!(
        without_type(&example["backends"]["scratch"]),
        serde_json::to_value(raw::RawMemoryBackend::default()).unwrap()
    );
    assert_eq!(
        without_type(&example["backends"]["shared"]),
        serde_json::to_value(dynamodb::RawDynamoBackend::default()).unwrap()
    );
    let route = example["routes"].as_array().unwrap().last().unwrap();
    let keys: Vec<&str> = route
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), raw::ROUTE_KEYS.len());
    assert!(raw::ROUTE_KEYS.iter().all(|k| keys.contains(k)), "{keys:?}");
    assert_eq!(
        route["journal_max_entries"],
        defaults::ROUTE_JOURNAL_MAX_ENTRIES
    );
    assert_eq!(
        route["breaker"],
        serde_json::to_value(raw::RawBreaker::default()).unwrap()
    );

    // As a configuration file, it passes every check of check-config.
    let f = Fixture::new();
    fs::write(f.path("upstream.password"), "upstream-secret\n").unwrap();
    fs::set_permissions(
        f.path("upstream.password"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let path = f.raw_config(&format!(
        "auth:\n  users:\n    - name: default\n      password_hash: '{}'\n{block}",
        cheap_hash()
    ));
    let c = load(&args_for(&path), &env(&[])).unwrap();
    let kinds: Vec<(&str, &str)> = c
        .backends
        .iter()
        .map(|b| (b.name.as_str(), b.settings.kind()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("main", "redis"),
            ("scratch", "memory"),
            ("shared", "dynamodb"),
            ("spare", "memory")
        ]
    );
    let prefixes: Vec<&str> = c.routes.iter().map(|r| r.prefix.as_str()).collect();
    assert_eq!(prefixes, ["tmp:", "session:", ""]);
    let fallback = c.routes[2].fallback.expect("the default route's fallback");
    assert_eq!(c.backends[fallback.backend].name, "spare");

    // The environment reaches named backends (names lower-cased), key by key
    // or a whole map at a time.
    let e = env(&[
        ("SEALCACHE_BACKENDS__MAIN__URL", "rediss://localhost:6391/2"),
        ("SEALCACHE_BACKENDS__SCRATCH__MAX_MEMORY", "64MiB"),
        (
            "SEALCACHE_BACKENDS__SHARED",
            "{table: other-table, region: eu-west-1}",
        ),
    ]);
    let c = load(&args_for(&path), &e).unwrap();
    let BackendSettings::Redis(main) = &c.backends[0].settings else {
        panic!("main is a redis backend");
    };
    assert_eq!(
        main.target,
        UpstreamTarget::Tls {
            host: "localhost".into(),
            port: 6391,
            server_name: "localhost".into()
        }
    );
    assert_eq!(main.db, 2);
    let BackendSettings::Memory(scratch) = &c.backends[1].settings else {
        panic!("scratch is a memory backend");
    };
    assert_eq!(scratch.max_memory, 64 << 20);
    let BackendSettings::DynamoDb(shared) = &c.backends[2].settings else {
        panic!("shared is a dynamodb backend");
    };
    assert_eq!(
        (shared.table.as_str(), shared.region.as_deref()),
        ("other-table", Some("eu-west-1"))
    );
    assert!(shared.consistent_reads, "keys left out keep the file's");

    // Key by key for a DynamoDB backend too, numbers included.
    let e = env(&[
        ("SEALCACHE_BACKENDS__SHARED__TABLE", "per-key-table"),
        ("SEALCACHE_BACKENDS__SHARED__REGION", "eu-central-1"),
        ("SEALCACHE_BACKENDS__SHARED__MAX_ATTEMPTS", "7"),
        ("SEALCACHE_BACKENDS__SHARED__CONSISTENT_READS", "false"),
        ("SEALCACHE_BACKENDS__SHARED__BILLING_MODE", "provisioned"),
        ("SEALCACHE_BACKENDS__SHARED__READ_CAPACITY", "11"),
        ("SEALCACHE_BACKENDS__SHARED__WRITE_CAPACITY", "12"),
    ]);
    let c = load(&args_for(&path), &e).unwrap();
    let BackendSettings::DynamoDb(shared) = &c.backends[2].settings else {
        panic!("shared is a dynamodb backend");
    };
    assert_eq!(shared.table, "per-key-table");
    assert_eq!(shared.region.as_deref(), Some("eu-central-1"));
    assert_eq!(shared.max_attempts, 7);
    assert!(!shared.consistent_reads);
    assert!(matches!(
        shared.billing_mode,
        crate::config::dynamodb::BillingMode::Provisioned {
            read_capacity: 11,
            write_capacity: 12
        }
    ));
}

#[test]
fn pubsub_output_buffer_limits_layer_key_by_key() {
    let f = Fixture::new();
    let path = f.config("limits:\n  pubsub_output_buffer: {soft_bytes: 0}\n");
    let e = env(&[(
        "SEALCACHE_LIMITS__PUBSUB_OUTPUT_BUFFER__HARD_BYTES",
        "1048576",
    )]);
    let c = load(&args_for(&path), &e).unwrap();
    assert_eq!(
        c.limits.pubsub_output_buffer,
        OutputBufferLimit {
            hard_bytes: 1024 * 1024,
            soft_bytes: 0,
            soft_time: std::time::Duration::from_secs(defaults::PUBSUB_OUTPUT_BUFFER_SOFT_SECS),
        }
    );
}

#[test]
fn full_load_produces_the_model() {
    let f = Fixture::new();
    fs::write(f.path("up.pw"), "upstream-secret\n").unwrap();
    fs::set_permissions(f.path("up.pw"), fs::Permissions::from_mode(0o600)).unwrap();
    let path = f.config(
        "  url: rediss://app@localhost:6390/2\n  password_file: up.pw\n  pool_size: 2\nlimits:\n  idle_timeout_secs: 0\n",
    );
    let e = env(&[("SEALCACHE_TLS__HANDSHAKE_TIMEOUT_MS", "1500")]);
    let c = load(&args_for(&path), &e).unwrap();
    assert_eq!(
        main_upstream(&c).target,
        UpstreamTarget::Tls {
            host: "localhost".into(),
            port: 6390,
            server_name: "localhost".into()
        }
    );
    assert_eq!(main_upstream(&c).username.as_deref(), Some("app"));
    assert_eq!(
        main_upstream(&c).password.as_ref().unwrap().expose_secret(),
        "upstream-secret"
    );
    assert_eq!(main_upstream(&c).db, 2);
    assert_eq!(main_upstream(&c).pool_size, 2);
    assert_eq!(
        main_upstream(&c).ca_file.as_deref(),
        Some(f.path("certs/ca.crt").as_path())
    );
    assert_eq!(c.tls.cert_file, f.path("certs/server.crt"));
    assert_eq!(
        c.tls.handshake_timeout,
        std::time::Duration::from_millis(1500)
    );
    assert_eq!(c.limits.idle_timeout, std::time::Duration::ZERO);
    assert_eq!(c.listen.tcp, Some("127.0.0.1:6380".parse().unwrap()));
    assert_eq!(c.listen.unix_mode, 0o660);
    assert_eq!(c.encryption.master_key_file, Some(f.path("master.key")));
    assert!(matches!(
        c.auth.users[0].credential,
        Credential::Argon2Hash(_)
    ));
    assert!(warnings(&c).is_empty());
}

#[test]
fn rendering_redacts_every_secret() {
    let f = Fixture::new();
    let path = f.config("  url: rediss://app:url-secret-1234@localhost:6390/0\n");
    let hash = cheap_hash();
    let e = env(&[
        (
            "SEALCACHE_AUTH__USERS",
            &format!(
                "[{{name: default, password_hash: '{hash}'}}, {{name: app, password_env: APP_PW}}]"
            ),
        ),
        ("APP_PW", "env-secret-abcdefgh-12345"),
    ]);
    let c = load(&args_for(&path), &e).unwrap();
    let out = render_redacted(&c);
    for secret in [
        "url-secret-1234",
        "env-secret-abcdefgh-12345",
        &hash,
        "$argon2id",
    ] {
        assert!(!out.contains(secret), "{secret} leaked:\n{out}");
    }
    assert_eq!(out.matches(REDACTED).count(), 3, "{out}");
    assert!(out.contains("url: rediss://localhost:6390/0"), "{out}");
    // The rendering is YAML with the file's top-level keys; the upstream:
    // shorthand shows as the backend it stands for.
    let parsed = layers::parse_yaml(&out).unwrap();
    assert_eq!(
        parsed["backends"]["main"]["pool_size"],
        super::defaults::UPSTREAM_POOL_SIZE
    );
    assert_eq!(parsed["backends"]["main"]["type"], "redis");
    assert_eq!(parsed["routes"][0]["prefix"], "");
    assert_eq!(parsed["routes"][0]["backend"], "main");
    assert_eq!(parsed["listen"]["unix_mode"], "0660");
}

#[test]
fn plaintext_loopback_is_allowed_with_a_warning() {
    let f = Fixture::new();
    let path = f.config("  url: redis://127.0.0.1:6379\n  allow_plaintext_upstream: true\n");
    let c = load(&args_for(&path), &env(&[])).unwrap();
    assert!(matches!(
        main_upstream(&c).target,
        UpstreamTarget::PlainTcp { .. }
    ));
    let w = warnings(&c);
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("PLAINTEXT"), "{w:?}");
}

#[test]
fn master_key_from_environment_needs_no_file() {
    let f = Fixture::new();
    let path = f.config("encryption:\n  master_key_file: null\n");
    let err = load(&args_for(&path), &env(&[])).err().unwrap();
    assert!(
        err.to_string().contains("no master key configured"),
        "{err}"
    );
    load(
        &args_for(&path),
        &env(&[(
            "SEALCACHE_MASTER_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )]),
    )
    .unwrap();

    // With the variable set, a leftover key file must still be private.
    let path = f.config("");
    let with_var = env(&[(
        "SEALCACHE_MASTER_KEY",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    )]);
    load(&args_for(&path), &with_var).unwrap();
    fs::set_permissions(f.path("master.key"), fs::Permissions::from_mode(0o644)).unwrap();
    let err = load(&args_for(&path), &with_var).err().unwrap();
    assert!(err.to_string().contains("mode 0644"), "{err}");
}

#[test]
fn independent_problems_are_reported_together() {
    let f = Fixture::new();
    let path = f.raw_config(
        "auth:\n  users: []\nlimits:\n  max_clients: 0\nupstream:\n  pool_size: 0\n  ca_file: certs/ca.crt\n",
    );
    let err = load(&args_for(&path), &env(&[])).err().unwrap();
    let problems = err.problems();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(
        err.to_string()
            .starts_with("3 problems in the configuration:")
    );
}

#[test]
fn reply_limits_are_bounded_both_ways() {
    let f = Fixture::new();
    let path = f.config("");
    let vars = env(&[
        ("SEALCACHE_UPSTREAM__MAX_REPLY_LEN", "100"),
        ("SEALCACHE_UPSTREAM__MAX_REPLY_DEPTH", "100000"),
        ("SEALCACHE_UPSTREAM__MAX_REPLY_ELEMENTS", "0"),
    ]);
    let err = load(&args_for(&path), &vars).err().unwrap();
    let text = err.to_string();
    for key in [
        "upstream.max_reply_len (100)",
        "upstream.max_reply_depth (100000)",
        "upstream.max_reply_elements (0)",
    ] {
        assert!(text.contains(key), "{key} missing in:\n{text}");
    }
    assert!(text.contains("between 8 and 128"), "{text}");
    let vars = env(&[("SEALCACHE_UPSTREAM__MAX_REPLY_DEPTH", "12")]);
    let config = load(&args_for(&path), &vars).unwrap();
    assert_eq!(main_upstream(&config).max_reply_depth, 12);
    assert_eq!(
        main_upstream(&config).max_reply_len,
        defaults::UPSTREAM_MAX_REPLY_LEN
    );
}

/// The `main` backend's settings (the `upstream:` shorthand's).
fn main_upstream(config: &Config) -> &UpstreamConfig {
    match &config.backends[0].settings {
        BackendSettings::Redis(upstream) => upstream,
        other => panic!("a redis backend expected, got {}", other.kind()),
    }
}

#[test]
fn admin_listener_defaults_to_loopback_and_null_turns_it_off() {
    let f = Fixture::new();
    let c = load(&args_for(&f.config("")), &env(&[])).unwrap();
    assert_eq!(
        c.admin.listen,
        Some(defaults::ADMIN_LISTEN.parse().unwrap())
    );
    assert_eq!(c.limits.shutdown_timeout.as_millis(), 10_000);
    let off = load(
        &args_for(&f.config("")),
        &env(&[("SEALCACHE_ADMIN__LISTEN", "")]),
    )
    .unwrap();
    assert_eq!(off.admin.listen, None);
    let off = load(&args_for(&f.config("admin:\n  listen: null\n")), &env(&[])).unwrap();
    assert_eq!(off.admin.listen, None);
}

#[test]
fn admin_listener_refusals() {
    let f = Fixture::new();
    let problems = |extra: &str| {
        load(&args_for(&f.config(extra)), &env(&[]))
            .err()
            .map(|e| e.problems().join("\n"))
            .unwrap_or_default()
    };
    let production = "profile: production\ntls:\n  min_version: \"1.3\"\n";
    assert!(
        problems(&format!("{production}admin:\n  listen: \"0.0.0.0:9380\"\n")).contains(
            "admin.listen (0.0.0.0:9380) is not a loopback address in the production profile"
        )
    );
    assert!(
        !problems(&format!(
            "{production}admin:\n  listen: \"0.0.0.0:9380\"\n  allow_non_loopback: true\n"
        ))
        .contains("admin.listen")
    );
    // Development allows it, with a warning at every start.
    let c = load(
        &args_for(&f.config("admin:\n  listen: \"0.0.0.0:9380\"\n")),
        &env(&[]),
    )
    .unwrap();
    assert!(
        warnings(&c)
            .iter()
            .any(|w| w.contains("admin.listen 0.0.0.0:9380"))
    );
    assert!(
        problems("admin:\n  listen: \"127.0.0.1:6380\"\n").contains("same address as listen.tcp")
    );
    assert!(
        problems("admin:\n  listen: \"localhost\"\n")
            .contains("admin.listen (localhost) is not an IP address")
    );
    assert!(
        problems("limits:\n  shutdown_timeout_ms: 0\n").contains("limits.shutdown_timeout_ms is 0")
    );
}

/// A valid file with named backends (`main` redis, `scratch` and `spare`
/// memory) and the given `routes:` block.
fn with_routes(f: &Fixture, routes: &str) -> PathBuf {
    f.raw_config(&format!(
        "auth:\n  users:\n    - name: default\n      password_hash: '{}'\nbackends:\n  main: {{type: redis, url: \"rediss://localhost:6390/0\", ca_file: certs/ca.crt}}\n  other: {{type: redis, url: \"rediss://localhost:6391/0\", ca_file: certs/ca.crt}}\n  scratch: {{type: memory, max_memory: 8MiB}}\n  spare: {{type: memory}}\n{routes}",
        cheap_hash()
    ))
}

#[test]
fn a_route_fallback_loads_with_defaults_renders_and_layers() {
    let f = Fixture::new();
    let path = with_routes(
        &f,
        "routes:\n  - {prefix: \"o:\", backend: other, fallback: spare}\n  - prefix: \"\"\n    backend: main\n    fallback: scratch\n    journal_max_entries: 100000\n    breaker: {failures: 5, window_ms: 2000, probe_interval_ms: 500}\n",
    );
    let c = load(&args_for(&path), &env(&[])).unwrap();
    let name = |i: usize| c.backends[i].name.as_str();
    let route = &c.routes[1];
    let fallback = route.fallback.expect("the default route has a fallback");
    assert_eq!(name(fallback.backend), "scratch");
    assert_eq!(fallback.journal_max_entries, 100_000);
    assert_eq!(
        fallback.breaker,
        BreakerConfig {
            failures: 5,
            window: std::time::Duration::from_millis(2000),
            probe_interval: std::time::Duration::from_millis(500),
        }
    );
    // Left out: the defaults.
    let other = c.routes[0].fallback.unwrap();
    assert_eq!(name(other.backend), "spare");
    assert_eq!(
        other.journal_max_entries,
        defaults::ROUTE_JOURNAL_MAX_ENTRIES
    );
    assert_eq!(other.breaker.failures, defaults::BREAKER_FAILURES);
    assert_eq!(
        other.breaker.probe_interval.as_millis() as u64,
        defaults::BREAKER_PROBE_INTERVAL_MS
    );

    let parsed = layers::parse_yaml(&render_redacted(&c)).unwrap();
    assert_eq!(parsed["routes"][1]["fallback"], "scratch");
    assert_eq!(parsed["routes"][1]["journal_max_entries"], 100_000);
    assert_eq!(parsed["routes"][1]["breaker"]["window_ms"], 2000);
    assert_eq!(parsed["routes"][0]["fallback"], "spare");

    // The environment replaces routes: as it replaces any list.
    let e = env(&[(
        "SEALCACHE_ROUTES",
        "[{prefix: \"o:\", backend: other, fallback: spare}, {prefix: \"\", backend: main, fallback: scratch, journal_max_entries: 7, breaker: {failures: 2}}]",
    )]);
    let c = load(&args_for(&path), &e).unwrap();
    let fallback = c.routes[1].fallback.unwrap();
    assert_eq!(fallback.journal_max_entries, 7);
    assert_eq!(fallback.breaker.failures, 2);
    assert_eq!(
        fallback.breaker.window.as_millis() as u64,
        defaults::BREAKER_WINDOW_MS
    );
    // No fallback: none rendered.
    let plain = load(&args_for(&f.config("")), &env(&[])).unwrap();
    assert!(plain.routes[0].fallback.is_none());
    assert!(!render_redacted(&plain).contains("fallback"));
}

#[test]
fn check_config_refuses_a_fallback_that_cannot_work() {
    let f = Fixture::new();
    let problems = |routes: &str| {
        load(&args_for(&with_routes(&f, routes)), &env(&[]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let both = |main: &str, other: &str| {
        format!(
            "routes:\n  - {{prefix: \"t:\", backend: scratch}}\n  - {{prefix: \"o:\", backend: other{other}}}\n  - {{prefix: \"\", backend: main{main}}}\n"
        )
    };
    let cases = [
        (
            both(", fallback: other", ""),
            "has the fallback \"other\", a redis backend: a fallback must be a memory backend",
        ),
        (
            both(", fallback: nowhere", ""),
            "names the fallback \"nowhere\", which is not defined",
        ),
        (
            both(", fallback: spare", ", journal_max_entries: 10"),
            "sets journal_max_entries or breaker without fallback",
        ),
        (
            both(", fallback: spare, breaker: {failures: 0}", ""),
            "breaker.failures is 0",
        ),
        (
            both(", fallback: spare, journal_max_entries: 0", ""),
            "journal_max_entries (0) is out of range",
        ),
        (
            both(", fallback: scratch", ""),
            "backends.scratch is the fallback of routes[2] and the backend of routes[0]",
        ),
        (
            both(", fallback: spare", ", fallback: spare"),
            "backends.spare is the fallback of two backends",
        ),
        (
            "routes:\n  - {prefix: \"t:\", backend: scratch, fallback: spare}\n  - {prefix: \"o:\", backend: other}\n  - {prefix: \"\", backend: main}\n".to_string(),
            "its backend \"scratch\" is a memory backend, which is never unreachable",
        ),
        (
            "routes:\n  - {prefix: \"t:\", backend: scratch}\n  - {prefix: \"o:\", backend: main}\n  - {prefix: \"x:\", backend: other}\n  - {prefix: \"\", backend: main, fallback: spare}\n".to_string(),
            "routes[1] and routes[3] share the backend \"main\" but not its fallback settings",
        ),
        (
            both(", fallback: spare, breaker: {failures: 1, windows_ms: 5}", ""),
            "windows_ms",
        ),
    ];
    for (routes, expected) in cases {
        let got = problems(&routes);
        assert!(
            got.contains(expected),
            "{routes}\nexpected {expected:?} in:\n{got}"
        );
    }
    // A memory backend that only serves as a fallback counts as used.
    assert_eq!(problems(&both(", fallback: spare", "")), "");
}

#[test]
fn the_rate_limit_is_off_by_default_and_burst_defaults_to_the_rate() {
    let f = Fixture::new();
    let load_with = |extra: &str| load(&args_for(&f.config(extra)), &env(&[]));
    assert_eq!(load_with("").unwrap().limits.rate_limit, None);
    let limit = load_with("limits:\n  rate_limit: {commands_per_sec: 50}\n")
        .unwrap()
        .limits
        .rate_limit
        .expect("a rate limit");
    assert_eq!((limit.commands_per_sec.get(), limit.burst.get()), (50, 50));
    let limit = load_with("limits:\n  rate_limit: {commands_per_sec: 50, burst: 5}\n")
        .unwrap()
        .limits
        .rate_limit
        .unwrap();
    assert_eq!(limit.burst.get(), 5);
    let problems = load_with("limits:\n  rate_limit: {burst: 5}\n")
        .err()
        .map(|e| e.problems().join("\n"))
        .unwrap_or_default();
    assert!(
        problems
            .contains("limits.rate_limit.burst is 5 but limits.rate_limit.commands_per_sec is 0"),
        "{problems}"
    );
}

#[test]
fn an_invalid_backend_is_one_problem_not_also_its_routes() {
    let f = Fixture::new();
    let path = f.raw_config(&format!(
        "auth:\n  users:\n    - name: default\n      password_hash: '{}'\nbackends:\n  main: {{type: memory, max_memory: 1KiB}}\nroutes:\n  - {{prefix: \"\", backend: main}}\n",
        cheap_hash()
    ));
    let err = load(&args_for(&path), &env(&[])).unwrap_err().to_string();
    assert!(err.contains("backends.main.max_memory (1KiB)"), "{err}");
    assert!(!err.contains("routes["), "{err}");
    assert!(!err.contains("default route"), "{err}");
}
