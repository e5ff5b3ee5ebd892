//! Test certificates: a CA, a server certificate for `localhost,127.0.0.1` and a
//! client certificate, in a tempdir that lives as long as any clone of [`Certs`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use tempfile::TempDir;

/// Server certificate names: clients connect to 127.0.0.1, which needs an IP SAN.
pub const HOSTS: &str = "localhost,127.0.0.1";

/// A directory holding `ca.crt`, `ca.key`, `server.crt`, `server.key`,
/// `client.crt`, `client.key` (keys 0600). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Certs {
    dir: Arc<TempDir>,
}

impl Certs {
    /// Fresh certificates from `sealcache certs generate` (what every test should use).
    pub fn generate() -> Certs {
        let dir = tempfile::Builder::new()
            .prefix("sealcache-certs-")
            .tempdir()
            .expect("create certificate tempdir");
        generate_with_binary(&dir.path().join("certs"));
        Certs { dir: Arc::new(dir) }
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().join("certs")
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.dir().join("ca.crt")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir().join("ca.key")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.dir().join("server.crt")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir().join("server.key")
    }
    pub fn client_cert(&self) -> PathBuf {
        self.dir().join("client.crt")
    }
    pub fn client_key(&self) -> PathBuf {
        self.dir().join("client.key")
    }

    /// `ca.crt` as PEM bytes (for `redis::TlsCertificates::root_cert`).
    pub fn ca_pem(&self) -> Vec<u8> {
        read(&self.ca_cert())
    }
    pub fn client_cert_pem(&self) -> Vec<u8> {
        read(&self.client_cert())
    }
    pub fn client_key_pem(&self) -> Vec<u8> {
        read(&self.client_key())
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// What `sealcache certs generate` writes.
pub const CERT_FILES: [&str; 6] = [
    "ca.crt",
    "ca.key",
    "server.crt",
    "server.key",
    "client.crt",
    "client.key",
];

/// Runs `sealcache certs generate --out OUT --hosts localhost,127.0.0.1`: the
/// tests use the real binary's certificates, so they also prove those work for
/// redis-server and for the proxy's listener (issue 2, criteria 2 and 13).
pub fn generate_with_binary(out: &Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_sealcache"))
        .args(["certs", "generate", "--hosts", HOSTS, "--out"])
        .arg(out)
        .output()
        .expect("run `sealcache certs generate`");
    assert!(
        output.status.success(),
        "`sealcache certs generate --out {}` failed ({}):\n{}{}",
        out.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for name in CERT_FILES {
        assert!(
            out.join(name).is_file(),
            "`sealcache certs generate` did not write {name} in {}",
            out.display()
        );
    }
}

/// The same files made with rcgen in-process. Kept for harness self-tests and
/// for tests that need certificates from an unrelated CA (a client certificate
/// the proxy must refuse).
pub fn generate_with_rcgen(out: &Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };

    std::fs::create_dir_all(out).expect("create certificate directory");
    set_mode(out, 0o700);

    let ca_key = KeyPair::generate().expect("generate CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "sealcache test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign CA");
    let issuer = Issuer::new(ca_params, &ca_key);

    let leaf = |names: Vec<String>, cn: &str, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().expect("generate leaf key");
        let mut params = CertificateParams::new(names).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &issuer).expect("sign leaf");
        (cert.pem(), key.serialize_pem())
    };
    let hosts: Vec<String> = HOSTS.split(',').map(str::to_owned).collect();
    let (server_crt, server_key) = leaf(hosts, "localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let (client_crt, client_key) = leaf(
        Vec::new(),
        "sealcache test client",
        ExtendedKeyUsagePurpose::ClientAuth,
    );

    write(out, "ca.crt", ca_cert.pem().as_bytes(), 0o644);
    write(out, "ca.key", ca_key.serialize_pem().as_bytes(), 0o600);
    write(out, "server.crt", server_crt.as_bytes(), 0o644);
    write(out, "server.key", server_key.as_bytes(), 0o600);
    write(out, "client.crt", client_crt.as_bytes(), 0o644);
    write(out, "client.key", client_key.as_bytes(), 0o600);
}

impl Certs {
    /// Certificates from an unrelated CA, made in-process (not by the binary).
    pub fn generate_with_rcgen() -> Certs {
        let dir = tempfile::Builder::new()
            .prefix("sealcache-certs-")
            .tempdir()
            .expect("create certificate tempdir");
        generate_with_rcgen(&dir.path().join("certs"));
        Certs { dir: Arc::new(dir) }
    }
}

/// Writes a file with `mode` set before any content lands in it.
pub fn write(dir: &Path, name: &str, contents: &[u8], mode: u32) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    file.write_all(contents)
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    set_mode(&path, mode);
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}
