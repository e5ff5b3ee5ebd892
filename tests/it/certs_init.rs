//! `sealcache certs generate` and `sealcache init`: file modes, refusal to
//! overwrite, SANs, and that the results work where they are used — sealcache's
//! own TLS configs, a real redis-server, and `check-config`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{ServerName, UnixTime};
use sealcache::config::{Profile, ServerTlsConfig, TlsVersion, UpstreamConfig, UpstreamTarget};

use crate::support::certs::CERT_FILES;
use crate::support::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_sealcache");
const REDIS_READY_DEADLINE: Duration = Duration::from_secs(15);

fn sealcache(args: &[&str]) -> Output {
    Command::new(BIN).args(args).env_clear().output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn generate(out: &Path, hosts: &str, force: bool) -> Output {
    let mut args = vec![
        "certs",
        "generate",
        "--out",
        out.to_str().unwrap(),
        "--hosts",
        hosts,
    ];
    if force {
        args.push("--force");
    }
    sealcache(&args)
}

#[test]
fn certs_are_written_with_private_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("certs");
    let run = generate(&out, "localhost,127.0.0.1", false);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert_eq!(mode(&out), 0o700);
    for f in CERT_FILES {
        let path = out.join(f);
        assert!(path.is_file(), "{f} missing");
        if f.ends_with(".key") {
            assert_eq!(mode(&path), 0o600, "{f}");
            assert!(fs::read_to_string(&path).unwrap().contains("PRIVATE KEY"));
        } else {
            assert!(
                fs::read_to_string(&path)
                    .unwrap()
                    .starts_with("-----BEGIN CERTIFICATE-----")
            );
        }
    }
    // No key material on stdout.
    assert!(!text(&run.stdout).contains("PRIVATE KEY"));
}

#[test]
fn an_existing_directory_is_tightened_to_0700() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("certs");
    fs::create_dir(&out).unwrap();
    fs::set_permissions(&out, fs::Permissions::from_mode(0o755)).unwrap();
    assert!(generate(&out, "localhost", false).status.success());
    assert_eq!(mode(&out), 0o700);
}

#[test]
fn certs_are_not_overwritten_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("certs");
    assert!(
        generate(&out, "localhost,127.0.0.1", false)
            .status
            .success()
    );
    let before: Vec<Vec<u8>> = CERT_FILES
        .iter()
        .map(|f| fs::read(out.join(f)).unwrap())
        .collect();

    let again = generate(&out, "localhost,127.0.0.1", false);
    assert!(!again.status.success());
    let err = text(&again.stderr);
    assert!(err.starts_with("error: refusing to overwrite"), "{err}");
    assert!(err.contains("--force"), "{err}");
    let after: Vec<Vec<u8>> = CERT_FILES
        .iter()
        .map(|f| fs::read(out.join(f)).unwrap())
        .collect();
    assert_eq!(before, after, "a refusal must leave every file untouched");

    // One existing file is enough to refuse.
    let other = tmp.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("server.key"), "mine").unwrap();
    assert!(!generate(&other, "localhost", false).status.success());
    assert_eq!(
        fs::read_to_string(other.join("server.key")).unwrap(),
        "mine"
    );
    assert!(!other.join("ca.crt").exists());

    let forced = generate(&out, "localhost,127.0.0.1", true);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert_ne!(fs::read(out.join("ca.key")).unwrap(), before[1]);
    assert_eq!(mode(&out.join("ca.key")), 0o600);
}

#[test]
fn bad_hosts_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let run = generate(&tmp.path().join("c"), "not a host name!", false);
    assert!(!run.status.success());
    assert!(text(&run.stderr).contains("not a host name!"));
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca: &Path) -> Arc<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in sealcache::tls::load_certs(ca).unwrap() {
        roots.add(cert).unwrap();
    }
    Arc::new(roots)
}

#[test]
fn server_certificate_carries_every_host_as_a_san() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("certs");
    assert!(
        generate(&out, "localhost,127.0.0.1,::1,proxy.internal", false)
            .status
            .success()
    );
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        roots(&out.join("ca.crt")),
        provider(),
    )
    .build()
    .unwrap();
    let chain = sealcache::tls::load_certs(&out.join("server.crt")).unwrap();
    let verify = |name: &str| {
        use rustls::client::danger::ServerCertVerifier;
        verifier.verify_server_cert(
            &chain[0],
            &[],
            &ServerName::try_from(name.to_string()).unwrap(),
            &[],
            UnixTime::now(),
        )
    };
    // IP addresses must be IP SANs: clients connecting to 127.0.0.1 check exactly that.
    for name in ["localhost", "127.0.0.1", "::1", "proxy.internal"] {
        assert!(verify(name).is_ok(), "{name}: {:?}", verify(name).err());
    }
    for name in ["example.com", "127.0.0.2"] {
        assert!(verify(name).is_err(), "{name} must not verify");
    }
}

#[test]
fn client_certificate_is_for_client_authentication() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("certs");
    assert!(generate(&out, "localhost", false).status.success());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        roots(&out.join("ca.crt")),
        provider(),
    )
    .build()
    .unwrap();
    let client = sealcache::tls::load_certs(&out.join("client.crt")).unwrap();
    assert!(
        verifier
            .verify_client_cert(&client[0], &[], UnixTime::now())
            .is_ok()
    );
    // The client certificate is not a server certificate (no serverAuth).
    let server_verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        roots(&out.join("ca.crt")),
        provider(),
    )
    .build()
    .unwrap();
    use rustls::client::danger::ServerCertVerifier;
    assert!(
        server_verifier
            .verify_server_cert(
                &client[0],
                &[],
                &ServerName::try_from("localhost").unwrap(),
                &[],
                UnixTime::now()
            )
            .is_err()
    );
}

/// Drives a client and a server connection to the end of the handshake in memory.
fn handshake(
    client: Arc<rustls::ClientConfig>,
    server: Arc<rustls::ServerConfig>,
    name: &str,
) -> Result<rustls::ProtocolVersion, rustls::Error> {
    let mut c: rustls::Connection =
        rustls::ClientConnection::new(client, ServerName::try_from(name.to_string()).unwrap())?
            .into();
    let mut s: rustls::Connection = rustls::ServerConnection::new(server)?.into();
    fn pump(
        from: &mut rustls::Connection,
        to: &mut rustls::Connection,
    ) -> Result<(), rustls::Error> {
        let mut buf = Vec::new();
        while from.wants_write() {
            from.write_tls(&mut buf).unwrap();
        }
        let mut slice = &buf[..];
        while !slice.is_empty() {
            to.read_tls(&mut slice).unwrap();
            to.process_new_packets()?;
        }
        Ok(())
    }
    for _ in 0..10 {
        pump(&mut c, &mut s)?;
        pump(&mut s, &mut c)?;
        if !c.is_handshaking() && !s.is_handshaking() {
            // One more round so the server sees the client's last flight (client auth).
            pump(&mut c, &mut s)?;
            return Ok(c.protocol_version().unwrap());
        }
    }
    Err(rustls::Error::General("handshake did not finish".into()))
}

fn server_tls(dir: &Path, min: TlsVersion, mtls: bool) -> ServerTlsConfig {
    ServerTlsConfig {
        cert_file: dir.join("server.crt"),
        key_file: dir.join("server.key"),
        client_ca_file: mtls.then(|| dir.join("ca.crt")),
        min_version: min,
        handshake_timeout: Duration::from_secs(5),
    }
}

fn upstream(dir: &Path, min: TlsVersion, verify: bool, client_cert: bool) -> UpstreamConfig {
    UpstreamConfig {
        target: UpstreamTarget::Tls {
            host: "127.0.0.1".into(),
            port: 6379,
            server_name: "127.0.0.1".into(),
        },
        username: None,
        password: None,
        db: 0,
        ca_file: Some(dir.join("ca.crt")),
        client_cert_file: client_cert.then(|| dir.join("client.crt")),
        client_key_file: client_cert.then(|| dir.join("client.key")),
        verify_certificates: verify,
        min_tls_version: min,
        pool_size: 1,
        max_pinned: 1,
        max_blocking: 1,
        acquire_timeout: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(1),
        command_timeout: Duration::from_secs(1),
        max_reply_len: sealcache::config::defaults::UPSTREAM_MAX_REPLY_LEN,
        max_reply_depth: sealcache::config::defaults::UPSTREAM_MAX_REPLY_DEPTH,
        max_reply_elements: sealcache::config::defaults::UPSTREAM_MAX_REPLY_ELEMENTS,
    }
}

#[test]
fn generated_certs_work_with_sealcache_tls_configs() {
    use sealcache::tls::{server_config, upstream_client_config};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("certs");
    assert!(
        generate(&dir, "localhost,127.0.0.1", false)
            .status
            .success()
    );
    let dev = Profile::Development;
    let prod = Profile::Production;

    // Development: 1.2 and 1.3 both allowed, the highest negotiated.
    let server = server_config(&server_tls(&dir, TlsVersion::Tls12, false), dev).unwrap();
    let client =
        upstream_client_config(&upstream(&dir, TlsVersion::Tls12, true, false), dev).unwrap();
    assert_eq!(
        handshake(client, server.clone(), "127.0.0.1").unwrap(),
        rustls::ProtocolVersion::TLSv1_3
    );
    // A TLS 1.2-only client still connects in development...
    let tls12_only = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(roots(&dir.join("ca.crt")))
            .with_no_client_auth(),
    );
    assert_eq!(
        handshake(tls12_only.clone(), server, "localhost").unwrap(),
        rustls::ProtocolVersion::TLSv1_2
    );
    // ...but not in production, whatever min_version says.
    let prod_server = server_config(&server_tls(&dir, TlsVersion::Tls12, false), prod).unwrap();
    assert!(handshake(tls12_only.clone(), prod_server, "localhost").is_err());
    let tls13_server = server_config(&server_tls(&dir, TlsVersion::Tls13, false), dev).unwrap();
    assert!(handshake(tls12_only, tls13_server, "localhost").is_err());

    // Mutual TLS: a client without a certificate is refused; with client.crt it passes.
    let mtls = server_config(&server_tls(&dir, TlsVersion::Tls12, true), dev).unwrap();
    let anonymous =
        upstream_client_config(&upstream(&dir, TlsVersion::Tls12, true, false), dev).unwrap();
    assert!(handshake(anonymous, mtls.clone(), "127.0.0.1").is_err());
    let with_cert =
        upstream_client_config(&upstream(&dir, TlsVersion::Tls12, true, true), dev).unwrap();
    assert!(handshake(with_cert, mtls, "127.0.0.1").is_ok());

    // Certificate verification: a server from another CA is refused, unless
    // verification is off (development only).
    let other = tmp.path().join("other");
    assert!(
        generate(&other, "localhost,127.0.0.1", false)
            .status
            .success()
    );
    let foreign = server_config(&server_tls(&other, TlsVersion::Tls12, false), dev).unwrap();
    let verifying =
        upstream_client_config(&upstream(&dir, TlsVersion::Tls12, true, false), dev).unwrap();
    assert!(handshake(verifying, foreign.clone(), "127.0.0.1").is_err());
    let trusting =
        upstream_client_config(&upstream(&dir, TlsVersion::Tls12, false, false), dev).unwrap();
    assert!(handshake(trusting, foreign, "127.0.0.1").is_ok());
    assert!(matches!(
        upstream_client_config(&upstream(&dir, TlsVersion::Tls13, false, false), prod),
        Err(sealcache::tls::TlsError::VerificationRequired)
    ));
}

/// A TLS-only redis-server on a free loopback port, killed on drop.
struct Redis {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Redis {
    fn start(certs: &Path, work: &Path, extra: &[&str]) -> Redis {
        let port = free_port();
        let log = work.join(format!("redis-{port}.log"));
        let child = Command::new("redis-server")
            .args(["--port", "0", "--bind", "127.0.0.1"])
            .args(["--tls-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(certs.join("server.crt"))
            .arg("--tls-key-file")
            .arg(certs.join("server.key"))
            .arg("--tls-ca-cert-file")
            .arg(certs.join("ca.crt"))
            .args(["--save", "", "--appendonly", "no", "--logfile"])
            .arg(&log)
            .arg("--dir")
            .arg(work)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        Redis { child, port, log }
    }

    fn cli(&self, certs: &Path, extra: &[&str]) -> Output {
        Command::new("redis-cli")
            .args(["--tls", "--cacert"])
            .arg(certs.join("ca.crt"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(extra)
            .arg("PING")
            .output()
            .expect("redis-cli must be installed")
    }

    /// Polls PING until it answers PONG or the deadline passes; never a fixed sleep.
    fn wait_ready(&mut self, certs: &Path, extra: &[&str]) {
        let start = Instant::now();
        loop {
            let out = self.cli(certs, extra);
            if text(&out.stdout).trim() == "PONG" {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("redis-server exited ({status}):\n{}", self.log_text());
            }
            if start.elapsed() > REDIS_READY_DEADLINE {
                panic!(
                    "redis-server did not answer PING over TLS within {REDIS_READY_DEADLINE:?}: {}\n{}\nlog:\n{}",
                    text(&out.stdout),
                    text(&out.stderr),
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Generated certificates in a temporary directory, and a redis-server using
/// them with `--tls-auth-clients AUTH_CLIENTS`.
fn redis_with_generated_certs(auth_clients: &str) -> (tempfile::TempDir, PathBuf, Redis) {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    assert!(
        generate(&certs, "localhost,127.0.0.1", false)
            .status
            .success()
    );
    let redis = Redis::start(&certs, tmp.path(), &["--tls-auth-clients", auth_clients]);
    (tmp, certs, redis)
}

#[test]
fn redis_server_accepts_the_generated_certificates() {
    let (_tmp, certs, mut redis) = redis_with_generated_certs("no");
    redis.wait_ready(&certs, &[]);
}

#[test]
fn redis_server_accepts_the_generated_client_certificate() {
    let (_tmp, certs, mut redis) = redis_with_generated_certs("yes");
    let cert = certs.join("client.crt");
    let key = certs.join("client.key");
    let with_cert = [
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    redis.wait_ready(&certs, &with_cert);
    // Mutual TLS is really on: without the client certificate there is no PONG.
    let out = redis.cli(&certs, &[]);
    assert_ne!(text(&out.stdout).trim(), "PONG");
}

fn init(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["init", "--dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    sealcache(&args)
}

fn check_config(config: &Path) -> Output {
    sealcache(&["check-config", "--config", config.to_str().unwrap()])
}

#[test]
fn init_creates_a_private_working_setup() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sc");
    let run = init(&dir, &[]);
    assert!(run.status.success(), "{}", text(&run.stderr));

    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("certs")), 0o700);
    for f in [
        "client.password",
        "upstream.password",
        "master.key",
        "certs/server.key",
        "certs/ca.key",
        "certs/client.key",
    ] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }

    let password = fs::read_to_string(dir.join("client.password")).unwrap();
    let password = password.trim_end();
    assert!(password.len() >= 32, "client password too short");
    assert!(
        password
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "not URL-safe"
    );
    let upstream_password = fs::read_to_string(dir.join("upstream.password")).unwrap();
    assert!(upstream_password.trim_end().len() >= 32);
    assert_ne!(password, upstream_password.trim_end());

    // The master key: standard base64 (padded) of 32 bytes and a newline.
    use base64::Engine;
    let key = fs::read_to_string(dir.join("master.key")).unwrap();
    assert!(key.ends_with('\n'));
    let raw = base64::engine::general_purpose::STANDARD
        .decode(key.trim_end())
        .unwrap();
    assert_eq!(raw.len(), 32);

    // The config holds only the argon2id hash, and it verifies the password file.
    let config = fs::read_to_string(dir.join("sealcache.yaml")).unwrap();
    assert!(!config.contains(password), "plain password in the config");
    assert!(config.contains("upstream.password"));
    assert!(config.contains("ca_file: certs/ca.crt"));
    assert!(config.contains("rediss://127.0.0.1:6379"));
    let phc = config
        .lines()
        .find_map(|l| l.trim().strip_prefix("password_hash: '"))
        .and_then(|l| l.split('\'').next())
        .expect("a password_hash line");
    use argon2::PasswordVerifier;
    let hash = argon2::PasswordHash::new(phc).unwrap();
    assert_eq!(hash.algorithm.as_str(), "argon2id");
    assert!(
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    );

    // The printed instructions: redis-cli with the CA and the password *file*, no secret.
    let stdout = text(&run.stdout);
    assert!(stdout.contains("redis-cli --tls --cacert"), "{stdout}");
    assert!(stdout.contains("-p 6380"), "{stdout}");
    assert!(stdout.contains("client.password"), "{stdout}");
    assert!(!stdout.contains(password), "the password was printed");
    assert!(
        !stdout.contains(upstream_password.trim_end()),
        "the upstream password was printed"
    );

    // check-config accepts it, from any directory.
    let check = check_config(&dir.join("sealcache.yaml"));
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(text(&check.stdout).contains("<redacted>"));
    assert!(!text(&check.stdout).contains(password));
}

#[test]
fn init_refuses_to_overwrite_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sc");
    assert!(init(&dir, &[]).status.success());
    let before = fs::read(dir.join("client.password")).unwrap();
    let ca_before = fs::read(dir.join("certs/ca.key")).unwrap();

    let again = init(&dir, &[]);
    assert!(!again.status.success());
    let err = text(&again.stderr);
    assert!(err.starts_with("error: refusing to overwrite"), "{err}");
    assert!(err.contains("--force"));
    assert_eq!(fs::read(dir.join("client.password")).unwrap(), before);
    assert_eq!(fs::read(dir.join("certs/ca.key")).unwrap(), ca_before);

    // A single pre-existing file (here only the config) is enough to refuse.
    let other = tmp.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("sealcache.yaml"), "# mine\n").unwrap();
    assert!(!init(&other, &[]).status.success());
    assert_eq!(
        fs::read_to_string(other.join("sealcache.yaml")).unwrap(),
        "# mine\n"
    );
    assert!(!other.join("certs").exists());

    let forced = init(&dir, &["--force"]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert_ne!(fs::read(dir.join("client.password")).unwrap(), before);
    assert!(check_config(&dir.join("sealcache.yaml")).status.success());
}

#[test]
fn init_production_writes_tls_13_and_passes_production_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sc");
    let run = init(
        &dir,
        &[
            "--profile",
            "production",
            "--upstream",
            "rediss://cache.internal:6390",
            "--hosts",
            "localhost,127.0.0.1",
        ],
    );
    assert!(run.status.success(), "{}", text(&run.stderr));
    let config = fs::read_to_string(dir.join("sealcache.yaml")).unwrap();
    assert!(config.contains("profile: production"));
    assert!(config.contains("min_version: \"1.3\""));
    assert!(config.contains("min_tls_version: \"1.3\""));
    assert!(config.contains("rediss://cache.internal:6390"));
    let check = check_config(&dir.join("sealcache.yaml"));
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(text(&check.stdout).contains("profile: production"));
}

#[test]
fn init_rejects_a_plaintext_upstream_or_unknown_profile() {
    let tmp = tempfile::tempdir().unwrap();
    let run = init(
        &tmp.path().join("a"),
        &["--upstream", "redis://127.0.0.1:6379"],
    );
    assert!(!run.status.success());
    assert!(text(&run.stderr).contains("rediss://"));
    let run = init(&tmp.path().join("b"), &["--profile", "prod"]);
    assert!(!run.status.success());
    assert!(text(&run.stderr).contains("development or production"));
}

#[test]
fn init_output_runs_against_a_real_redis() {
    // The development setup: redis-server with init's certificates and
    // upstream password, reached exactly as the config describes.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sc");
    assert!(init(&dir, &[]).status.success());
    let certs = dir.join("certs");
    let pw = fs::read_to_string(dir.join("upstream.password")).unwrap();
    let pw = pw.trim_end().to_string();
    let mut redis = Redis::start(
        &certs,
        tmp.path(),
        &["--tls-auth-clients", "no", "--requirepass", &pw],
    );
    redis.wait_ready(&certs, &["--no-auth-warning", "-a", &pw]);
    let denied = redis.cli(&certs, &[]);
    assert!(
        text(&denied.stdout).contains("NOAUTH"),
        "{}",
        text(&denied.stdout)
    );
}

#[test]
fn hash_password_prints_a_verifiable_argon2id_hash() {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a-long-enough-password-1234\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let phc = text(&out.stdout).trim().to_string();
    assert!(phc.starts_with("$argon2id$"), "{phc}");
    assert!(!phc.contains("a-long-enough-password-1234"));
    use argon2::PasswordVerifier;
    let hash = argon2::PasswordHash::new(&phc).unwrap();
    assert!(
        argon2::Argon2::default()
            .verify_password(b"a-long-enough-password-1234", &hash)
            .is_ok()
    );

    // Too short for any profile: refused.
    let mut child = Command::new(BIN)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"short\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).starts_with("error: "));
}
