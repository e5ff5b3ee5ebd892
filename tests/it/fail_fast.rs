//! Fail-fast configuration: every unsafe setting is refused by the real binary
//! with exit code 78 and a message naming the setting, why, and the fix.
//!
//! Each case runs `check-config`; `serve_refuses_every_case` runs the same
//! cases through `serve --config` (they share `config::load`). Every run uses
//! a cleared environment and a temporary directory with certificates made by
//! `sealcache certs generate`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_sealcache");
const EXIT_CONFIG: i32 = 78;
/// A client password that meets the production floor.
const STRONG_PASSWORD: &str = "Vq3-xT9_kLm2Rw7zBn4Yc8Jd1Hs6Gp5Ue0Af";
/// How long `serve` may take to refuse a configuration before we call it a failure.
const SERVE_DEADLINE: Duration = Duration::from_secs(20);

/// One scenario: a directory with certificates and a master key, a config
/// (JSON, which is YAML) and the environment the binary sees.
struct Case {
    dir: tempfile::TempDir,
    config: Value,
    env: Vec<(String, String)>,
    extra_args: Vec<String>,
}

impl Case {
    fn new() -> Case {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(BIN)
            .args(["certs", "generate", "--out"])
            .arg(dir.path().join("certs"))
            .args(["--hosts", "localhost,127.0.0.1"])
            .output()
            .unwrap();
        assert!(out.status.success(), "certs generate: {out:?}");
        let case = Case {
            dir,
            config: json!({
                "auth": { "users": [ { "name": "default", "password_env": "CLIENT_PW" } ] },
                "upstream": { "ca_file": "certs/ca.crt" },
            }),
            env: vec![("CLIENT_PW".into(), STRONG_PASSWORD.into())],
            extra_args: Vec::new(),
        };
        case.write(
            "master.key",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
            0o600,
        );
        case
    }

    /// The production profile with its TLS floor met, so one more change is the only problem.
    fn production() -> Case {
        let mut c = Case::new();
        c.set("profile", json!("production"));
        c.set("tls.min_version", json!("1.3"));
        c.set("upstream.min_tls_version", json!("1.3"));
        c
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Sets a dotted key in the config, creating sections as needed.
    fn set(&mut self, key: &str, value: Value) {
        let mut node = &mut self.config;
        let parts: Vec<&str> = key.split('.').collect();
        for part in &parts[..parts.len() - 1] {
            node = node
                .as_object_mut()
                .unwrap()
                .entry(part.to_string())
                .or_insert_with(|| json!({}));
        }
        node.as_object_mut()
            .unwrap()
            .insert(parts[parts.len() - 1].to_string(), value);
    }

    fn env(&mut self, name: &str, value: &str) {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.into(), value.into()));
    }

    fn write(&self, name: &str, contents: &str, mode: u32) -> PathBuf {
        let path = self.path(name);
        let _ = fs::remove_file(&path);
        fs::write(&path, contents).unwrap();
        self.chmod(name, mode);
        path
    }

    fn chmod(&self, name: &str, mode: u32) {
        fs::set_permissions(self.path(name), fs::Permissions::from_mode(mode)).unwrap();
    }

    fn config_path(&self) -> PathBuf {
        let path = self.path("sealcache.yaml");
        fs::write(&path, serde_json::to_string_pretty(&self.config).unwrap()).unwrap();
        path
    }

    fn command(&self, subcommand: &str) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg(subcommand);
        if !self.extra_args.iter().any(|a| a == "--config") {
            cmd.arg("--config").arg(self.config_path());
        }
        cmd.args(&self.extra_args)
            // Nothing from the developer's environment (SEALCACHE_*) may leak in.
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.dir.path());
        cmd
    }

    fn check_config(&self) -> Output {
        self.command("check-config").output().unwrap()
    }

    /// Runs `serve`; a configuration it accepts would make it run forever, so a
    /// deadline turns that into a test failure instead of a hang.
    fn serve(&self) -> Output {
        let mut child = self
            .command("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        loop {
            if child.try_wait().unwrap().is_some() {
                return child.wait_with_output().unwrap();
            }
            if start.elapsed() > SERVE_DEADLINE {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "serve did not exit within {SERVE_DEADLINE:?}: it accepted the configuration\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_refused(what: &str, out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(EXIT_CONFIG),
        "{what}: expected exit {EXIT_CONFIG}, got {:?}\nstderr: {err}",
        out.status
    );
    assert!(
        err.starts_with("error: "),
        "{what}: stderr must start with `error: `: {err}"
    );
    for needle in needles {
        assert!(err.contains(needle), "{what}: missing `{needle}` in: {err}");
    }
    assert!(
        !err.contains(STRONG_PASSWORD),
        "{what}: the password leaked: {err}"
    );
}

fn assert_accepted(case: &Case) -> Output {
    let out = case.check_config();
    assert!(
        out.status.success(),
        "expected the configuration to be accepted: {}",
        stderr(&out)
    );
    out
}

type Prepare = fn() -> Case;

/// Declares each refusal once: a `check-config` test per case, and the table
/// `serve_refuses_every_case` walks.
macro_rules! refusals {
    ($($name:ident: $prepare:expr => [$($needle:expr),* $(,)?];)*) => {
        $(
            #[test]
            fn $name() {
                let case = ($prepare as Prepare)();
                assert_refused(
                    concat!("check-config ", stringify!($name)),
                    &case.check_config(),
                    &[$($needle),*],
                );
            }
        )*
        const REFUSALS: &[(&str, Prepare, &[&str])] = &[
            $((stringify!($name), $prepare, &[$($needle),*]),)*
        ];
    };
}

refusals! {
    no_tls_certificate: || {
        let mut c = Case::new();
        c.set("tls.cert_file", Value::Null);
        c
    } => ["no TLS certificate or key configured", "tls.cert_file", "Fix:"];

    no_tls_key: || {
        let mut c = Case::new();
        c.set("tls.key_file", Value::Null);
        c
    } => ["no TLS certificate or key configured", "tls.key_file", "Fix:"];

    tls_certificate_missing: || {
        let mut c = Case::new();
        c.set("tls.cert_file", json!("certs/nope.crt"));
        c
    } => ["tls.cert_file", "nope.crt", "does not exist", "Fix:"];

    tls_certificate_unreadable: || {
        // A directory where a file should be: unreadable even for root, unlike mode 000.
        let mut c = Case::new();
        fs::create_dir(c.path("dir.crt")).unwrap();
        c.set("tls.cert_file", json!("dir.crt"));
        c
    } => ["tls.cert_file", "dir.crt", "cannot be read", "Fix:"];

    tls_certificate_not_pem: || {
        let mut c = Case::new();
        c.write("bad.crt", "this is not a certificate\n", 0o644);
        c.set("tls.cert_file", json!("bad.crt"));
        c
    } => ["tls.cert_file", "malformed", "no PEM certificate", "Fix:"];

    tls_certificate_truncated: || {
        let mut c = Case::new();
        let pem = fs::read_to_string(c.path("certs/server.crt")).unwrap();
        c.write("cut.crt", &pem[..pem.len() / 2], 0o644);
        c.set("tls.cert_file", json!("cut.crt"));
        c
    } => ["tls.cert_file", "malformed PEM", "Fix:"];

    tls_certificate_garbage_der: || {
        let mut c = Case::new();
        c.write("der.crt", "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE-----\n", 0o644);
        c.set("tls.cert_file", json!("der.crt"));
        c
    } => ["tls.cert_file", "malformed", "cannot be parsed"];

    tls_key_not_pem: || {
        let mut c = Case::new();
        c.write("bad.key", "not a key\n", 0o600);
        c.set("tls.key_file", json!("bad.key"));
        c
    } => ["tls.key_file", "malformed", "no PEM private key", "Fix:"];

    tls_key_bad_base64: || {
        let mut c = Case::new();
        // Assembled so no tracked file carries a literal private-key header.
        let label = ["PRIVATE", "KEY"].join(" ");
        let pem = format!("-----BEGIN {label}-----\n!!!!not base64!!!!\n-----END {label}-----\n");
        c.write("b64.key", &pem, 0o600);
        c.set("tls.key_file", json!("b64.key"));
        c
    } => ["tls.key_file", "malformed"];

    tls_key_does_not_match_certificate: || {
        let mut c = Case::new();
        c.set("tls.key_file", json!("certs/client.key"));
        c
    } => ["does not match the private key", "client.key"];

    tls_key_readable_by_others: || {
        let c = Case::new();
        c.chmod("certs/server.key", 0o644);
        c
    } => [
        "tls.key_file (",
        "server.key) is readable by group or others (mode 0644): anyone on this host could impersonate the proxy. Fix: chmod 600 ",
    ];

    tls_key_readable_by_group: || {
        let c = Case::new();
        c.chmod("certs/server.key", 0o640);
        c
    } => ["tls.key_file", "mode 0640", "chmod 600"];

    upstream_client_key_readable: || {
        let mut c = Case::new();
        c.set("upstream.client_cert_file", json!("certs/client.crt"));
        c.set("upstream.client_key_file", json!("certs/client.key"));
        c.chmod("certs/client.key", 0o640);
        c
    } => ["upstream.client_key_file", "readable by group or others (mode 0640)", "chmod 600"];

    upstream_client_cert_without_key: || {
        let mut c = Case::new();
        c.set("upstream.client_cert_file", json!("certs/client.crt"));
        c
    } => ["upstream.client_cert_file and upstream.client_key_file must be set together"];

    master_key_readable: || {
        let c = Case::new();
        c.chmod("master.key", 0o644);
        c
    } => ["encryption.master_key_file", "mode 0644", "decrypt every cached value", "chmod 600"];

    master_key_file_missing: || {
        let c = Case::new();
        fs::remove_file(c.path("master.key")).unwrap();
        c
    } => ["encryption.master_key_file", "does not exist", "SEALCACHE_MASTER_KEY"];

    no_master_key: || {
        let mut c = Case::new();
        c.set("encryption.master_key_file", Value::Null);
        c
    } => ["no master key configured", "SEALCACHE_MASTER_KEY", "Fix:"];

    master_key_file_malformed: || {
        let c = Case::new();
        c.write("master.key", "not base64 at all!\n", 0o600);
        c
    } => ["encryption.master_key_file", "does not hold a usable master key", "base64 of 32 random bytes"];

    master_key_env_malformed: || {
        let mut c = Case::new();
        c.env("SEALCACHE_MASTER_KEY", "c2hvcnQ=");
        c
    } => ["SEALCACHE_MASTER_KEY is not a usable master key", "32"];

    upstream_password_file_readable: || {
        let mut c = Case::new();
        c.write("upstream.password", "pw\n", 0o644);
        c.set("upstream.password_file", json!("upstream.password"));
        c
    } => ["upstream.password_file", "readable by group or others (mode 0644)", "chmod 600"];

    upstream_password_set_twice: || {
        let mut c = Case::new();
        c.write("upstream.password", "pw\n", 0o600);
        c.set("upstream.password_file", json!("upstream.password"));
        c.set("upstream.url", json!("rediss://:pw2@127.0.0.1:6379"));
        c
    } => ["upstream password is set in more than one place", "upstream.password_file"];

    no_client_authentication: || {
        let mut c = Case::new();
        c.set("auth.users", json!([]));
        c
    } => ["auth.users is empty", "no client authentication", "Fix:", "hash-password"];

    short_password_in_development: || {
        let mut c = Case::new();
        c.env("CLIENT_PW", "fifteen-chars-x");
        c
    } => ["auth.users[0]", "CLIENT_PW", "15 characters", "at least 16", "development"];

    short_password_in_production: || {
        let mut c = Case::production();
        c.env("CLIENT_PW", "Strong-But-Short-Passw0rd");
        c
    } => ["auth.users[0]", "at least 32", "production"];

    low_variety_password_in_production: || {
        let mut c = Case::production();
        c.env("CLIENT_PW", "abcdefghijklmnopqrstuvwxyzabcdefghij");
        c
    } => ["auth.users[0]", "low variety", "production"];

    repetitive_password_in_production: || {
        let mut c = Case::production();
        c.env("CLIENT_PW", &"aB3-".repeat(10));
        c
    } => ["low variety", "distinct characters"];

    password_env_not_set: || {
        let mut c = Case::new();
        c.set("auth.users", json!([{ "name": "app", "password_env": "APP_PW_UNSET" }]));
        c
    } => ["auth.users[0]", "APP_PW_UNSET", "not set"];

    invalid_argon2_hash: || {
        let mut c = Case::new();
        c.set("auth.users", json!([{ "name": "default", "password_hash": "$argon2id$v=19$m=19456,t=2,p=1$..." }]));
        c
    } => ["auth.users[0]", "password_hash is not a valid argon2id hash", "sealcache hash-password"];

    plaintext_upstream: || {
        let mut c = Case::new();
        c.set("upstream.url", json!("redis://127.0.0.1:6379"));
        c
    } => ["upstream.url", "plaintext redis:// URL", "Fix: use rediss://"];

    plaintext_override_to_remote_host: || {
        let mut c = Case::new();
        c.set("upstream.url", json!("redis://10.1.2.3:6379"));
        c.set("upstream.allow_plaintext_upstream", json!(true));
        c
    } => ["upstream.url", "10.1.2.3", "not a loopback address"];

    unix_upstream_without_override: || {
        let mut c = Case::new();
        c.set("upstream.url", json!("unix:///run/redis.sock"));
        c
    } => ["upstream.url", "unix://", "allow_plaintext_upstream"];

    unsupported_upstream_scheme: || {
        let mut c = Case::new();
        c.set("upstream.url", json!("http://user:hunter2@127.0.0.1:6379"));
        c
    } => ["upstream.url", "unsupported scheme `http:`"];

    unknown_yaml_key: || {
        let mut c = Case::new();
        c.set("upstream.pool_sise", json!(3));
        c
    } => ["unknown configuration key `upstream.pool_sise`", "did you mean `upstream.pool_size`", "sealcache.yaml"];

    unknown_top_level_key: || {
        let mut c = Case::new();
        c.set("tsl", json!({ "cert_file": "x" }));
        c
    } => ["unknown configuration key `tsl`", "did you mean `tls`"];

    unknown_env_key: || {
        let mut c = Case::new();
        c.env("SEALCACHE_UPSTREAM__POOL_SIZ", "3");
        c
    } => ["unknown configuration key `upstream.pool_siz`", "SEALCACHE_UPSTREAM__POOL_SIZ", "upstream.pool_size"];

    env_key_with_single_underscore: || {
        let mut c = Case::new();
        c.env("SEALCACHE_UPSTREAM_POOL_SIZE", "3");
        c
    } => ["SEALCACHE_UPSTREAM_POOL_SIZE", "did you mean `upstream.pool_size`", "__"];

    env_value_of_wrong_type: || {
        let mut c = Case::new();
        c.env("SEALCACHE_UPSTREAM__POOL_SIZE", "lots");
        c
    } => ["upstream.pool_size", "SEALCACHE_UPSTREAM__POOL_SIZE", "invalid value"];

    production_tls_12: || {
        let mut c = Case::production();
        c.set("tls.min_version", json!("1.2"));
        c
    } => ["tls.min_version", "below 1.3 in the production profile", "Fix: set tls.min_version: \"1.3\""];

    production_upstream_tls_12: || {
        let mut c = Case::production();
        c.set("upstream.min_tls_version", json!("1.2"));
        c
    } => ["upstream.min_tls_version", "below 1.3 in the production profile"];

    production_without_upstream_verification: || {
        let mut c = Case::production();
        c.set("upstream.verify_certificates", json!(false));
        c
    } => ["upstream.verify_certificates", "production profile", "impersonate Redis"];

    production_from_sealcache_env: || {
        // No `profile:` in the file: SEALCACHE_ENV alone raises the floor.
        let mut c = Case::new();
        c.env("SEALCACHE_ENV", "production");
        c
    } => ["tls.min_version", "production profile"];

    unix_socket_mode_too_loose: || {
        let mut c = Case::new();
        c.set("listen.unix", json!("proxy.sock"));
        c.set("listen.unix_mode", json!("0666"));
        c
    } => ["listen.unix_mode (0666)", "looser than 0660"];

    nothing_to_listen_on: || {
        let mut c = Case::new();
        c.set("listen.tcp", Value::Null);
        c
    } => ["nothing to listen on"];

    pool_size_zero: || {
        let mut c = Case::new();
        c.set("upstream.pool_size", json!(0));
        c
    } => ["upstream.pool_size is 0"];

    max_clients_zero: || {
        let mut c = Case::new();
        c.set("limits.max_clients", json!(0));
        c
    } => ["limits.max_clients is 0"];

    max_pinned_zero: || {
        let mut c = Case::new();
        c.set("upstream.max_pinned", json!(0));
        c
    } => ["upstream.max_pinned is 0"];

    max_blocking_zero: || {
        let mut c = Case::new();
        c.set("upstream.max_blocking", json!(0));
        c
    } => ["upstream.max_blocking is 0"];

    max_dedicated_per_client_zero: || {
        let mut c = Case::new();
        c.set("limits.max_dedicated_per_client", json!(0));
        c
    } => ["limits.max_dedicated_per_client is 0"];

    output_soft_limit_above_hard: || {
        let mut c = Case::new();
        c.set("limits.output_buffer.soft_bytes", json!(2048));
        c.set("limits.output_buffer.hard_bytes", json!(1024));
        c
    } => ["limits.output_buffer.soft_bytes (2048) is above limits.output_buffer.hard_bytes (1024)"];

    bad_log_level: || {
        let mut c = Case::new();
        c.set("logging.level", json!("sealcache=loud"));
        c
    } => ["logging.level", "not a valid log filter"];

    unknown_admin_command: || {
        let mut c = Case::new();
        c.set("allowed_admin_commands", json!(["FLUSHALLL"]));
        c
    } => ["allowed_admin_commands", "FLUSHALLL"];

    config_file_missing: || {
        let mut c = Case::new();
        c.extra_args = vec!["--config".into(), "does-not-exist.yaml".into()];
        c
    } => ["does-not-exist.yaml", "does not exist"];
}

/// `serve` must refuse exactly what `check-config` refuses, with the same message.
#[test]
fn serve_refuses_every_case() {
    for (name, prepare, needles) in REFUSALS {
        let case = prepare();
        let served = case.serve();
        assert_refused(&format!("serve {name}"), &served, needles);
        assert_eq!(
            stderr(&served),
            stderr(&case.check_config()),
            "serve {name}: the message differs from check-config's"
        );
    }
}

#[test]
fn refusals_exit_before_listening() {
    // The listener's default port must not be opened by a refused configuration:
    // a refusal returns fast, well under any handshake or connect timeout.
    let mut c = Case::new();
    c.set("auth.users", json!([]));
    let start = Instant::now();
    let out = c.check_config();
    assert_refused("no users", &out, &["auth.users"]);
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn valid_configuration_is_printed_with_secrets_redacted() {
    let mut c = Case::new();
    c.write("upstream.password", "upstream-pw-1234567890\n", 0o600);
    c.set("upstream.password_file", json!("upstream.password"));
    let out = assert_accepted(&c);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("<redacted>"), "{text}");
    assert!(text.contains("cert_file: "), "{text}");
    for secret in [STRONG_PASSWORD, "upstream-pw-1234567890"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
        assert!(!stderr(&out).contains(secret));
    }
}

#[test]
fn url_password_is_redacted() {
    let mut c = Case::new();
    c.set(
        "upstream.url",
        json!("rediss://app:url-pw-0987654321@127.0.0.1:6379/1"),
    );
    let out = assert_accepted(&c);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("url-pw-0987654321"), "{text}");
    assert!(text.contains("username: app"), "{text}");
}

#[test]
fn production_with_its_floor_met_is_accepted() {
    let c = Case::production();
    let out = assert_accepted(&c);
    assert!(String::from_utf8_lossy(&out.stdout).contains("profile: production"));
}

#[test]
fn plaintext_loopback_with_override_is_accepted_with_a_warning() {
    for url in [
        "redis://127.0.0.1:6379",
        "redis://localhost:6379",
        "redis://[::1]:6379",
    ] {
        let mut c = Case::new();
        c.set("upstream.url", json!(url));
        c.set("upstream.allow_plaintext_upstream", json!(true));
        let out = assert_accepted(&c);
        let err = stderr(&out);
        assert!(
            err.starts_with("warning: ") && err.contains("PLAINTEXT"),
            "{url}: {err}"
        );
    }
    let mut c = Case::new();
    c.set("upstream.url", json!("unix:///run/redis/redis.sock"));
    c.set("upstream.allow_plaintext_upstream", json!(true));
    assert!(stderr(&assert_accepted(&c)).contains("PLAINTEXT"));
}

#[test]
fn disabled_verification_in_development_is_accepted_with_a_warning() {
    let mut c = Case::new();
    c.set("upstream.verify_certificates", json!(false));
    let err = stderr(&assert_accepted(&c));
    assert!(err.contains("verify_certificates is false"), "{err}");
}

#[test]
fn master_key_from_the_environment_replaces_the_file() {
    let mut c = Case::new();
    c.set("encryption.master_key_file", Value::Null);
    c.env(
        "SEALCACHE_MASTER_KEY",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    );
    assert_accepted(&c);
}

#[test]
fn flags_override_the_file_and_environment() {
    let mut c = Case::new();
    c.env("SEALCACHE_LISTEN__TCP", "127.0.0.1:7001");
    c.extra_args = vec!["--listen".into(), "127.0.0.1:7002".into()];
    let out = assert_accepted(&c);
    assert!(String::from_utf8_lossy(&out.stdout).contains("tcp: 127.0.0.1:7002"));
    // And a bad flag is refused like a bad file value.
    c.extra_args = vec!["--upstream".into(), "redis://10.0.0.1:6379".into()];
    assert_refused(
        "--upstream",
        &c.check_config(),
        &["upstream.url", "--upstream", "plaintext"],
    );
}

#[test]
fn default_config_file_in_the_current_directory_is_used() {
    let c = Case::new();
    c.config_path(); // writes ./sealcache.yaml
    let out = Command::new(BIN)
        .arg("check-config")
        .env_clear()
        .envs(c.env.iter().map(|(k, v)| (k, v)))
        .current_dir(c.dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // And SEALCACHE_CONFIG names one from elsewhere.
    let other = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .env_clear()
        .envs(c.env.iter().map(|(k, v)| (k, v)))
        .env("SEALCACHE_CONFIG", c.path("sealcache.yaml"))
        .current_dir(other.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn refusal_messages_never_echo_secrets() {
    let mut c = Case::new();
    c.set(
        "upstream.url",
        json!("http://user:hunter2-secret@127.0.0.1:6379"),
    );
    let err = stderr(&c.check_config());
    assert!(!err.contains("hunter2-secret"), "{err}");
    let mut c = Case::new();
    c.env("SEALCACHE_LIMITS__MAX_CLIENTS", "hunter3-secret");
    let err = stderr(&c.check_config());
    assert!(
        err.contains("limits.max_clients") && !err.contains("hunter3-secret"),
        "{err}"
    );
}
