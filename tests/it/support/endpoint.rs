//! How a test reaches a server (redis-server or the proxy): `redis` crate
//! clients over TLS trusting the test CA, `redis-cli --tls`, and raw byte streams
//! for protocol-garbage tests. An [`Endpoint`] is a value: derive variants with
//! the `with_*`/`without_*` methods (other credentials, no AUTH, RESP3, a client
//! certificate).

use std::fmt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, ClientTlsConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo,
    ProtocolVersion, RedisConnectionInfo, RedisResult, TlsCertificates,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{Certs, spawn_error};

/// Host every test server binds to; the test certificates carry it as an IP SAN.
pub const HOST: &str = "127.0.0.1";
/// Generous reply deadline for `redis` crate connections (its default is 0.5 s,
/// too short for debug builds on two shared cores). Blocking-command tests that
/// wait longer should build their own config.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// TLS over TCP on 127.0.0.1.
    Tls(u16),
    /// A Unix socket (plain RESP; the socket's permissions are the protection).
    Unix(PathBuf),
}

/// One way to reach a server: address, trust anchors, credentials, protocol.
#[derive(Clone)]
pub struct Endpoint {
    address: Address,
    certs: Certs,
    username: Option<String>,
    password: Option<String>,
    /// Whose `client.crt`/`client.key` to present (mutual TLS).
    client_cert: Option<Certs>,
    resp3: bool,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("address", &self.address)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("client_cert", &self.client_cert.is_some())
            .field("resp3", &self.resp3)
            .finish()
    }
}

impl Endpoint {
    /// TLS on 127.0.0.1:`port`, trusting `certs`' CA, no credentials.
    pub fn tls(port: u16, certs: &Certs) -> Endpoint {
        Endpoint {
            address: Address::Tls(port),
            certs: certs.clone(),
            username: None,
            password: None,
            client_cert: None,
            resp3: false,
        }
    }

    /// A Unix socket, no credentials.
    pub fn unix(path: impl Into<PathBuf>, certs: &Certs) -> Endpoint {
        Endpoint {
            address: Address::Unix(path.into()),
            ..Endpoint::tls(0, certs)
        }
    }

    /// Authenticate as `user` (`AUTH user password`, or `HELLO … AUTH` with RESP3).
    #[must_use]
    pub fn with_auth(mut self, user: &str, password: &str) -> Endpoint {
        self.username = Some(user.to_owned());
        self.password = Some(password.to_owned());
        self
    }

    /// Authenticate with a password only (`AUTH password`, user `default`).
    #[must_use]
    pub fn with_password(mut self, password: &str) -> Endpoint {
        self.username = None;
        self.password = Some(password.to_owned());
        self
    }

    /// Connect without authenticating (for NOAUTH tests).
    #[must_use]
    pub fn without_auth(mut self) -> Endpoint {
        self.username = None;
        self.password = None;
        self
    }

    /// Present `certs`' client certificate (mutual TLS).
    #[must_use]
    pub fn with_client_cert(mut self, certs: &Certs) -> Endpoint {
        self.client_cert = Some(certs.clone());
        self
    }

    #[must_use]
    pub fn without_client_cert(mut self) -> Endpoint {
        self.client_cert = None;
        self
    }

    /// Speak RESP3 (`HELLO 3` on connect).
    #[must_use]
    pub fn resp3(mut self) -> Endpoint {
        self.resp3 = true;
        self
    }

    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The TCP port; panics for a Unix-socket endpoint.
    pub fn port(&self) -> u16 {
        match &self.address {
            Address::Tls(port) => *port,
            Address::Unix(path) => panic!("endpoint is a Unix socket ({})", path.display()),
        }
    }

    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    pub fn certs(&self) -> &Certs {
        &self.certs
    }

    /// `rediss://127.0.0.1:PORT` (no credentials in it).
    pub fn url(&self) -> String {
        format!("rediss://{HOST}:{}", self.port())
    }

    // ---- redis crate -------------------------------------------------------

    pub fn connection_info(&self) -> ConnectionInfo {
        let addr = match &self.address {
            Address::Tls(port) => ConnectionAddr::TcpTls {
                host: HOST.to_owned(),
                port: *port,
                insecure: false,
                tls_params: None,
            },
            Address::Unix(path) => ConnectionAddr::Unix(path.clone()),
        };
        let mut settings = RedisConnectionInfo::default().set_protocol(if self.resp3 {
            ProtocolVersion::RESP3
        } else {
            ProtocolVersion::RESP2
        });
        if let Some(user) = &self.username {
            settings = settings.set_username(user);
        }
        if let Some(password) = &self.password {
            settings = settings.set_password(password);
        }
        addr.into_connection_info()
            .expect("connection info")
            .set_redis_settings(settings)
    }

    /// A `redis::Client` for this endpoint (TLS trusting the test CA).
    pub fn redis_client(&self) -> redis::Client {
        let info = self.connection_info();
        match &self.address {
            Address::Tls(_) => redis::Client::build_with_tls(
                info,
                TlsCertificates {
                    client_tls: self.client_cert.as_ref().map(|certs| ClientTlsConfig {
                        client_cert: certs.client_cert_pem(),
                        client_key: certs.client_key_pem(),
                    }),
                    root_cert: Some(self.certs.ca_pem()),
                },
            ),
            Address::Unix(_) => redis::Client::open(info),
        }
        .expect("build redis client")
    }

    /// Connection settings with the harness's generous timeouts.
    pub fn async_config() -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
    }

    /// An authenticated multiplexed connection; panics if it cannot connect.
    pub async fn client(&self) -> MultiplexedConnection {
        self.try_client()
            .await
            .unwrap_or_else(|e| panic!("connect to {:?}: {e}", self.address))
    }

    /// Like [`Endpoint::client`] but returns the error (WRONGPASS, TLS refusal…).
    pub async fn try_client(&self) -> RedisResult<MultiplexedConnection> {
        self.redis_client()
            .get_multiplexed_async_connection_with_config(&Self::async_config())
            .await
    }

    /// A blocking connection (also what readiness checks use).
    pub fn sync_client(&self) -> redis::Connection {
        self.try_sync_client()
            .unwrap_or_else(|e| panic!("connect to {:?}: {e}", self.address))
    }

    pub fn try_sync_client(&self) -> RedisResult<redis::Connection> {
        self.try_sync_client_with_timeout(CONNECT_TIMEOUT, RESPONSE_TIMEOUT)
    }

    /// A blocking connection with explicit deadlines (readiness probes use
    /// short ones, so a port that never answers cannot stall them).
    pub fn try_sync_client_with_timeout(
        &self,
        connect: Duration,
        response: Duration,
    ) -> RedisResult<redis::Connection> {
        let con = self.redis_client().get_connection_with_timeout(connect)?;
        con.set_read_timeout(Some(response))?;
        con.set_write_timeout(Some(response))?;
        Ok(con)
    }

    // ---- redis-cli ---------------------------------------------------------

    /// `redis-cli` pointed at this endpoint (TLS, CA, client cert, user; the
    /// password travels in `REDISCLI_AUTH`, not argv). Add arguments and run.
    pub fn redis_cli_command(&self) -> Command {
        let mut cmd = Command::new("redis-cli");
        match &self.address {
            Address::Tls(port) => {
                cmd.arg("--tls")
                    .arg("--cacert")
                    .arg(self.certs.ca_cert())
                    .args(["-h", HOST, "-p", &port.to_string()]);
                if let Some(certs) = &self.client_cert {
                    cmd.arg("--cert")
                        .arg(certs.client_cert())
                        .arg("--key")
                        .arg(certs.client_key());
                }
            }
            Address::Unix(path) => {
                cmd.arg("-s").arg(path);
            }
        }
        if self.resp3 {
            cmd.arg("-3");
        }
        if let Some(user) = &self.username {
            cmd.args(["--user", user]);
        }
        match &self.password {
            Some(password) => cmd.env("REDISCLI_AUTH", password),
            None => cmd.env_remove("REDISCLI_AUTH"),
        };
        cmd.arg("--no-auth-warning");
        cmd
    }

    /// Runs `redis-cli … ARGS` and returns its output.
    pub fn redis_cli_output(&self, args: &[&str]) -> Output {
        self.redis_cli_command()
            .args(args)
            .output()
            .unwrap_or_else(|e| spawn_error("redis-cli", e))
    }

    /// Runs `redis-cli … ARGS` and returns stdout without the trailing newline.
    /// Error replies are on stdout too (`ERR …`, `NOAUTH …`).
    pub fn redis_cli(&self, args: &[&str]) -> String {
        let output = self.redis_cli_output(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !stderr.trim().is_empty() {
            eprintln!("redis-cli {args:?} stderr: {stderr}");
        }
        String::from_utf8_lossy(&output.stdout)
            .trim_end_matches('\n')
            .to_owned()
    }

    // ---- raw bytes ---------------------------------------------------------

    /// A rustls client config trusting the test CA (with the client
    /// certificate when one is set).
    pub fn rustls_config(&self) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(self.certs.ca_cert()).expect("read ca.crt") {
            roots
                .add(cert.expect("parse ca.crt"))
                .expect("trust ca.crt");
        }
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        match &self.client_cert {
            Some(certs) => {
                let chain = CertificateDer::pem_file_iter(certs.client_cert())
                    .expect("read client.crt")
                    .collect::<Result<Vec<_>, _>>()
                    .expect("parse client.crt");
                let key = PrivateKeyDer::from_pem_file(certs.client_key()).expect("client.key");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client certificate")
            }
            None => builder.with_no_client_auth(),
        }
    }

    /// A TLS stream (handshake done) for sending raw bytes; panics on failure.
    pub async fn raw_tls(&self) -> TlsStream<TcpStream> {
        self.try_raw_tls()
            .await
            .unwrap_or_else(|e| panic!("TLS connect to {:?}: {e}", self.address))
    }

    /// Like [`Endpoint::raw_tls`] but returns the I/O error (handshake refused…).
    pub async fn try_raw_tls(&self) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect((HOST, self.port())).await?;
        tcp.set_nodelay(true)?;
        let connector = TlsConnector::from(Arc::new(self.rustls_config()));
        let name = ServerName::try_from(HOST).expect("server name").to_owned();
        tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake"))?
    }

    /// A raw byte stream: TLS for a TCP endpoint, plain for a Unix socket.
    pub async fn raw(&self) -> Box<dyn RawStream> {
        match &self.address {
            Address::Tls(_) => Box::new(self.raw_tls().await),
            Address::Unix(path) => Box::new(
                UnixStream::connect(path)
                    .await
                    .unwrap_or_else(|e| panic!("connect to {}: {e}", path.display())),
            ),
        }
    }
}

/// Any byte stream a raw test can write to and read from.
pub trait RawStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> RawStream for T {}

/// What came back after [`exchange`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawReply {
    pub bytes: Vec<u8>,
    /// The server closed the connection (EOF or reset) before the wait ended.
    pub closed: bool,
}

impl RawReply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Writes `request`, then reads until the server closes the connection or
/// `wait` passes. Use a short `wait` when the connection should stay open.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin + ?Sized>(
    stream: &mut S,
    request: &[u8],
    wait: Duration,
) -> RawReply {
    let mut reply = RawReply {
        bytes: Vec::new(),
        closed: false,
    };
    if stream.write_all(request).await.is_err() || stream.flush().await.is_err() {
        reply.closed = true;
        return reply;
    }
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_elapsed) => return reply,
            Ok(Ok(0)) | Ok(Err(_)) => {
                reply.closed = true;
                return reply;
            }
            Ok(Ok(n)) => reply.bytes.extend_from_slice(&buf[..n]),
        }
    }
}
