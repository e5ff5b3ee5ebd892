//! `sealcache init`: certificates, a client password, an upstream password, a
//! master key and a config file — everything `sealcache serve` needs.
//!
//! Secrets come from the OS random number generator and are written 0600 into
//! a 0700 directory; the config holds only the client password's argon2id
//! hash. Nothing is overwritten without `--force`, and the written config is
//! loaded back through the same validation `serve` uses before we report success.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use clap::Args;
use rand::TryRngCore;
use zeroize::Zeroizing;

use super::ConfigArgs;
use super::certs::{self, CertsError, SECRET_FILE_MODE};
use crate::config::{self, Profile};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to create everything in.
    #[arg(long)]
    pub dir: PathBuf,
    /// Upstream Redis URL (rediss://HOST:PORT).
    #[arg(long)]
    pub upstream: Option<String>,
    /// development or production.
    #[arg(long, default_value = "development")]
    pub profile: String,
    /// Extra SANs for the server certificate, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "localhost,127.0.0.1")]
    pub hosts: Vec<String>,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

pub const CONFIG_FILE: &str = "sealcache.yaml";
pub const CLIENT_PASSWORD_FILE: &str = "client.password";
pub const UPSTREAM_PASSWORD_FILE: &str = "upstream.password";
pub const MASTER_KEY_FILE: &str = "master.key";
pub const CERTS_DIR: &str = "certs";
/// The client user `init` creates; `AUTH <password>` alone means this user.
pub const CLIENT_USER: &str = "default";
pub const DEFAULT_UPSTREAM: &str = "rediss://127.0.0.1:6379";

/// Random bytes per generated password: 32 bytes → 43 URL-safe characters (256 bits).
const PASSWORD_BYTES: usize = 32;
/// The master key: 256 bits for AES-256.
const MASTER_KEY_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("--profile must be development or production, not `{0}`")]
    Profile(String),
    #[error(
        "--upstream {0}. Fix: pass rediss://HOST:PORT (the upstream password goes into upstream.password, not the URL)"
    )]
    Upstream(&'static str),
    #[error("{0}")]
    Certs(#[from] CertsError),
    #[error("cannot get random bytes from the OS: {0}")]
    Random(std::io::Error),
    #[error("cannot hash the client password: {0}")]
    Hash(#[from] super::hash_password::HashError),
    #[error(
        "the configuration written to {path} does not validate ({source}); this is a bug in `sealcache init`"
    )]
    SelfCheck {
        path: PathBuf,
        source: config::ConfigError,
    },
}

/// What `init` wrote.
#[derive(Debug)]
pub struct InitOutput {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub client_password: PathBuf,
    pub upstream_password: PathBuf,
    pub master_key: PathBuf,
    pub certs: certs::GeneratedCerts,
    pub upstream: url::Url,
}

pub fn run(args: InitArgs) -> ExitCode {
    match init(&args) {
        Ok(out) => {
            print_next_steps(&out);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(super::EXIT_FAILURE)
        }
    }
}

pub fn init(args: &InitArgs) -> Result<InitOutput, InitError> {
    let profile = match args.profile.as_str() {
        "development" => Profile::Development,
        "production" => Profile::Production,
        other => return Err(InitError::Profile(other.to_string())),
    };
    let upstream = parse_upstream(args.upstream.as_deref().unwrap_or(DEFAULT_UPSTREAM))?;
    let upstream_host = upstream.host_str().expect("checked").to_string();
    let upstream_host = upstream_host.trim_matches(['[', ']']).to_string();

    // The development setup runs redis-server with the same server certificate,
    // so it must also be valid for the upstream's host.
    let mut hosts = args.hosts.clone();
    if !hosts.iter().any(|h| h == &upstream_host) {
        hosts.push(upstream_host);
    }

    let dir = std::path::absolute(&args.dir).unwrap_or_else(|_| args.dir.clone());
    let certs_dir = dir.join(CERTS_DIR);
    let out_files = [
        dir.join(CONFIG_FILE),
        dir.join(CLIENT_PASSWORD_FILE),
        dir.join(UPSTREAM_PASSWORD_FILE),
        dir.join(MASTER_KEY_FILE),
    ];
    let cert_files = [
        certs::CA_CERT,
        certs::CA_KEY,
        certs::SERVER_CERT,
        certs::SERVER_KEY,
        certs::CLIENT_CERT,
        certs::CLIENT_KEY,
    ]
    .map(|f| certs_dir.join(f));
    let all: Vec<&Path> = out_files
        .iter()
        .chain(cert_files.iter())
        .map(PathBuf::as_path)
        .collect();
    // Check everything first: a refusal must leave the directory as it was.
    certs::refuse_existing(&all, args.force)?;

    certs::create_private_dir(&dir)?;
    let generated = certs::generate(&certs_dir, &hosts, args.force)?;

    let client_password = random_password()?;
    let upstream_password = random_password()?;
    let master_key = random_master_key()?;
    let hash = super::hash_password::hash_password(&client_password)?;

    let [config_path, client_path, upstream_path, master_path] = out_files;
    write_secret(&client_path, &format!("{}\n", *client_password), args.force)?;
    write_secret(
        &upstream_path,
        &format!("{}\n", *upstream_password),
        args.force,
    )?;
    write_secret(&master_path, &master_key, args.force)?;
    write_secret(
        &config_path,
        &config_yaml(profile, &upstream, &hash),
        args.force,
    )?;

    // An empty environment: the operator's SEALCACHE_* variables must not make
    // a correct file look wrong (or a wrong one right).
    let check = ConfigArgs {
        config: Some(config_path.clone()),
        ..ConfigArgs::default()
    };
    config::load(&check, &HashMap::new()).map_err(|source| InitError::SelfCheck {
        path: config_path.clone(),
        source,
    })?;

    Ok(InitOutput {
        dir,
        config: config_path,
        client_password: client_path,
        upstream_password: upstream_path,
        master_key: master_path,
        certs: generated,
        upstream,
    })
}

fn parse_upstream(text: &str) -> Result<url::Url, InitError> {
    let url = url::Url::parse(text).map_err(|_| InitError::Upstream("is not a valid URL"))?;
    if url.scheme() != "rediss" {
        return Err(InitError::Upstream(
            "must use rediss:// (TLS); init never writes a plaintext upstream",
        ));
    }
    if url.password().is_some() {
        return Err(InitError::Upstream("must not contain a password"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(InitError::Upstream("has no host"));
    }
    Ok(url)
}

/// Fills `buf` from the OS random number generator (getrandom), never a userspace PRNG.
pub fn fill_random(buf: &mut [u8]) -> std::io::Result<()> {
    rand::rngs::OsRng
        .try_fill_bytes(buf)
        .map_err(std::io::Error::other)
}

/// A URL-safe random password that passes the production floor (43 characters;
/// redrawn in the rare case one lacks a character class).
pub fn random_password() -> Result<Zeroizing<String>, InitError> {
    loop {
        let mut bytes = Zeroizing::new([0u8; PASSWORD_BYTES]);
        fill_random(bytes.as_mut()).map_err(InitError::Random)?;
        let password = Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_ref()));
        if config::password_strength(&password, Profile::Production).is_ok() {
            return Ok(password);
        }
    }
}

/// Standard base64 (with padding) of 32 random bytes, then a newline.
fn random_master_key() -> Result<Zeroizing<String>, InitError> {
    let mut bytes = Zeroizing::new([0u8; MASTER_KEY_BYTES]);
    fill_random(bytes.as_mut()).map_err(InitError::Random)?;
    Ok(Zeroizing::new(format!(
        "{}\n",
        STANDARD.encode(bytes.as_ref())
    )))
}

fn write_secret(path: &Path, contents: &str, force: bool) -> Result<(), InitError> {
    Ok(certs::write_file(
        path,
        contents.as_bytes(),
        SECRET_FILE_MODE,
        force,
    )?)
}

fn config_yaml(profile: Profile, upstream: &url::Url, password_hash: &str) -> String {
    let (profile_name, tls_version) = match profile {
        Profile::Development => ("development", "1.2"),
        Profile::Production => ("production", "1.3"),
    };
    let url = upstream.as_str();
    format!(
        r#"# Written by `sealcache init`. Every key and its default: docs/sealcache.example.yaml.
# Relative paths are relative to this file's directory.
profile: {profile_name}
listen:
  tcp: "127.0.0.1:6380"
tls:
  cert_file: {certs}/server.crt
  key_file: {certs}/server.key
  client_ca_file: null          # {certs}/ca.crt to require client certificates ({certs}/client.crt)
  min_version: "{tls_version}"
auth:
  users:
    - name: {user}
      password_hash: '{password_hash}'   # the password is in {client_pw}
upstream:
  url: "{url}"
  password_file: {upstream_pw}
  ca_file: {certs}/ca.crt
  min_tls_version: "{tls_version}"
encryption:
  master_key_file: {master}
"#,
        certs = CERTS_DIR,
        user = CLIENT_USER,
        client_pw = CLIENT_PASSWORD_FILE,
        upstream_pw = UPSTREAM_PASSWORD_FILE,
        master = MASTER_KEY_FILE,
    )
}

/// Paths only: the passwords themselves are never printed.
fn print_next_steps(out: &InitOutput) {
    let dir = out.dir.display();
    let c = &out.certs;
    let port = out.upstream.port().unwrap_or(6379);
    println!("sealcache initialised in {dir}:");
    println!("  config:            {}", out.config.display());
    println!("  client password:   {}", out.client_password.display());
    println!("  upstream password: {}", out.upstream_password.display());
    println!("  master key:        {}", out.master_key.display());
    println!("  certificates:      {}", c.dir.display());
    println!();
    println!("Start a TLS-only Redis with these certificates (development):");
    println!(
        "  redis-server --port 0 --tls-port {port} --bind 127.0.0.1 --tls-cert-file {} --tls-key-file {} --tls-ca-cert-file {} --tls-auth-clients no --requirepass \"$(cat {})\"",
        c.server_cert.display(),
        c.server_key.display(),
        c.ca_cert.display(),
        out.upstream_password.display()
    );
    println!("Start the proxy:");
    println!("  sealcache serve --config {}", out.config.display());
    println!("Connect with redis-cli:");
    println!(
        "  redis-cli --tls --cacert {} -h 127.0.0.1 -p 6380 --user {CLIENT_USER} --pass \"$(cat {})\"",
        c.ca_cert.display(),
        out.client_password.display()
    );
}
