//! `sealcache certs generate`: a CA, a server and a client certificate (rcgen),
//! usable by sealcache's listener, its upstream connection and redis-server.
//!
//! Keys are ECDSA P-256 (PKCS#8 PEM), written 0600 into a 0700 directory.
//! Nothing is overwritten without `--force`, and existing files are checked
//! before anything is written, so a refusal leaves the directory untouched.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use time::{Duration, OffsetDateTime};

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Write ca.crt/ca.key, server.crt/server.key and client.crt/client.key.
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Output directory (created 0700).
    #[arg(long)]
    pub out: PathBuf,
    /// Subject alternative names for the server certificate, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "localhost,127.0.0.1")]
    pub hosts: Vec<String>,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

pub const CA_CERT: &str = "ca.crt";
pub const CA_KEY: &str = "ca.key";
pub const SERVER_CERT: &str = "server.crt";
pub const SERVER_KEY: &str = "server.key";
pub const CLIENT_CERT: &str = "client.crt";
pub const CLIENT_KEY: &str = "client.key";

/// Mode of the output directory: only the owner may list or enter it.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every private key and secret file.
pub const SECRET_FILE_MODE: u32 = 0o600;
/// Certificates are public, but live in a 0700 directory anyway.
pub const CERT_FILE_MODE: u32 = 0o644;

/// The CA outlives the leaves so that re-issuing leaves does not need a new trust anchor.
const CA_VALIDITY_DAYS: i64 = 3650;
const LEAF_VALIDITY_DAYS: i64 = 825;
/// Backdating absorbs clock skew between the machine that issues and the one that verifies.
const BACKDATE_DAYS: i64 = 1;
const CA_COMMON_NAME: &str = "sealcache CA";
const CLIENT_COMMON_NAME: &str = "sealcache client";

#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("no hosts given. Fix: pass --hosts, e.g. --hosts localhost,127.0.0.1")]
    NoHosts,
    #[error("`{0}` is neither a DNS name nor an IP address. Fix: correct --hosts")]
    BadHost(String),
    #[error(
        "refusing to overwrite existing {}: {}. Fix: pass --force to replace them, or choose another directory",
        if .0.len() == 1 { "file" } else { "files" },
        .0.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    Exists(Vec<PathBuf>),
    #[error("cannot create {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
}

/// Paths of everything [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct GeneratedCerts {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl GeneratedCerts {
    fn in_dir(dir: &Path) -> Self {
        GeneratedCerts {
            dir: dir.to_path_buf(),
            ca_cert: dir.join(CA_CERT),
            ca_key: dir.join(CA_KEY),
            server_cert: dir.join(SERVER_CERT),
            server_key: dir.join(SERVER_KEY),
            client_cert: dir.join(CLIENT_CERT),
            client_key: dir.join(CLIENT_KEY),
        }
    }

    pub fn files(&self) -> [&Path; 6] {
        [
            &self.ca_cert,
            &self.ca_key,
            &self.server_cert,
            &self.server_key,
            &self.client_cert,
            &self.client_key,
        ]
    }
}

pub fn run(cmd: CertsCommand) -> ExitCode {
    match cmd {
        CertsCommand::Generate(args) => match generate(&args.out, &args.hosts, args.force) {
            Ok(out) => {
                println!(
                    "wrote a CA, a server certificate (SANs: {}) and a client certificate to {}:",
                    args.hosts.join(", "),
                    out.dir.display()
                );
                for file in out.files() {
                    println!("  {}", file.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(super::EXIT_FAILURE)
            }
        },
    }
}

/// Writes a CA, a server certificate for `hosts` (IP addresses become IP SANs)
/// and a client certificate (clientAuth) into `out`.
pub fn generate(out: &Path, hosts: &[String], force: bool) -> Result<GeneratedCerts, CertsError> {
    let hosts: Vec<String> = hosts
        .iter()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .collect();
    if hosts.is_empty() {
        return Err(CertsError::NoHosts);
    }
    // rcgen accepts any ASCII as a DNS name; a SAN no client can match is a
    // mistake worth stopping for, so check with the same rules clients use.
    if let Some(bad) = hosts
        .iter()
        .find(|h| rustls::pki_types::ServerName::try_from(h.as_str()).is_err())
    {
        return Err(CertsError::BadHost(bad.clone()));
    }
    let paths = GeneratedCerts::in_dir(out);
    refuse_existing(&paths.files(), force)?;
    create_private_dir(out)?;

    let now = OffsetDateTime::now_utc();
    let not_before = now - Duration::days(BACKDATE_DAYS);

    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name = name(CA_COMMON_NAME);
    // A path length of 0: this CA signs leaves only, never another CA.
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = not_before;
    ca.not_after = now + Duration::days(CA_VALIDITY_DAYS);
    ca.serial_number = Some(serial()?);
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let server_key = KeyPair::generate()?;
    let mut server = CertificateParams::new(hosts.clone())?;
    server.distinguished_name = name(&hosts[0]);
    // ECDSA keys only sign (ECDHE does the key exchange): no keyEncipherment.
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // clientAuth too: redis-server presents its server certificate when it
    // connects out (replication, cluster bus) unless given a separate one.
    server.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    leaf_common(&mut server, not_before, now)?;
    let server_cert = server.signed_by(&server_key, &issuer)?;

    let client_key = KeyPair::generate()?;
    let mut client = CertificateParams::new(Vec::<String>::new())?;
    client.distinguished_name = name(CLIENT_COMMON_NAME);
    client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    leaf_common(&mut client, not_before, now)?;
    let client_cert = client.signed_by(&client_key, &issuer)?;

    let ca_key_pem = zeroize::Zeroizing::new(issuer.key().serialize_pem());
    let server_key_pem = zeroize::Zeroizing::new(server_key.serialize_pem());
    let client_key_pem = zeroize::Zeroizing::new(client_key.serialize_pem());
    write_file(
        &paths.ca_key,
        ca_key_pem.as_bytes(),
        SECRET_FILE_MODE,
        force,
    )?;
    write_file(
        &paths.ca_cert,
        ca_cert.pem().as_bytes(),
        CERT_FILE_MODE,
        force,
    )?;
    write_file(
        &paths.server_key,
        server_key_pem.as_bytes(),
        SECRET_FILE_MODE,
        force,
    )?;
    write_file(
        &paths.server_cert,
        server_cert.pem().as_bytes(),
        CERT_FILE_MODE,
        force,
    )?;
    write_file(
        &paths.client_key,
        client_key_pem.as_bytes(),
        SECRET_FILE_MODE,
        force,
    )?;
    write_file(
        &paths.client_cert,
        client_cert.pem().as_bytes(),
        CERT_FILE_MODE,
        force,
    )?;
    Ok(paths)
}

fn leaf_common(
    params: &mut CertificateParams,
    not_before: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(), CertsError> {
    params.is_ca = IsCa::ExplicitNoCa;
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before;
    params.not_after = now + Duration::days(LEAF_VALIDITY_DAYS);
    params.serial_number = Some(serial()?);
    Ok(())
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "sealcache");
    dn.push(DnType::CommonName, common_name);
    dn
}

/// 128 random bits, high bit clear so the DER integer stays positive.
fn serial() -> Result<SerialNumber, CertsError> {
    let mut bytes = [0u8; 16];
    super::init::fill_random(&mut bytes).map_err(|source| CertsError::Io {
        path: PathBuf::from("<OS random number generator>"),
        source,
    })?;
    bytes[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&bytes))
}

/// Fails listing every file that exists, unless `force`.
pub(crate) fn refuse_existing(files: &[&Path], force: bool) -> Result<(), CertsError> {
    if force {
        return Ok(());
    }
    let existing: Vec<PathBuf> = files
        .iter()
        .filter(|p| p.symlink_metadata().is_ok())
        .map(|p| p.to_path_buf())
        .collect();
    if existing.is_empty() {
        Ok(())
    } else {
        Err(CertsError::Exists(existing))
    }
}

/// Creates `dir` (and parents) and makes it 0700, tightening it if it existed.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), CertsError> {
    let io = |source| CertsError::Io {
        path: dir.to_path_buf(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(io)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE)).map_err(io)
}

/// Writes a file created with `mode` from the start, so a secret is never
/// briefly readable by others. With `force` an existing file is replaced.
pub(crate) fn write_file(
    path: &Path,
    contents: &[u8],
    mode: u32,
    force: bool,
) -> Result<(), CertsError> {
    let io = |source| CertsError::Io {
        path: path.to_path_buf(),
        source,
    };
    if force {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    // The umask may have removed bits from `mode`; set it exactly.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}
