//! Opening one upstream connection: TCP/Unix, TLS, then `HELLO 3` with AUTH
//! (falling back to RESP2 and `AUTH` for servers without HELLO) and SELECT.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use redis_protocol::resp2::types::BorrowedFrame;
use rustls_pki_types::ServerName;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsConnector;

use super::decode::{UpstreamDecoder, decode_reply};
use crate::config::{UpstreamConfig, UpstreamTarget};
use crate::protocol::reply::{error_text, text_of};
use crate::protocol::scan::ReplyLimits;
use crate::protocol::{Frame, Protocol};

/// Any byte stream to the upstream.
pub trait UpstreamIo: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> UpstreamIo for T {}
pub type BoxStream = Box<dyn UpstreamIo>;

/// What the handshake learned about the server, and how to read its replies.
#[derive(Debug, Clone)]
pub struct Handshake {
    pub protocol: Protocol,
    pub version: Option<String>,
    /// `upstream.max_reply_*`, for every reader of this connection.
    pub limits: ReplyLimits,
}

/// Opens authenticated connections to one upstream.
pub struct Connector {
    target: UpstreamTarget,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    username: Option<String>,
    password: Option<SecretString>,
    pub(crate) db: u32,
    connect_timeout: Duration,
    limits: ReplyLimits,
    label: String,
}

impl Connector {
    pub fn new(
        config: &UpstreamConfig,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<Self, String> {
        let tls = match (&config.target, tls) {
            (UpstreamTarget::Tls { server_name, .. }, Some(tls)) => {
                let name = ServerName::try_from(server_name.clone()).map_err(|e| {
                    format!("invalid upstream TLS server name {server_name:?}: {e}")
                })?;
                Some((TlsConnector::from(tls), name))
            }
            (UpstreamTarget::Tls { .. }, None) => {
                return Err("a rediss:// upstream needs a TLS client configuration".into());
            }
            _ => None,
        };
        Ok(Connector {
            label: label(&config.target),
            target: config.target.clone(),
            tls,
            username: config.username.clone(),
            password: config.password.clone(),
            db: config.db,
            connect_timeout: config.connect_timeout,
            limits: ReplyLimits {
                max_len: config.max_reply_len,
                max_depth: config.max_reply_depth,
                max_elements: config.max_reply_elements,
            },
        })
    }

    /// `host:port` or the socket path, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Connects, negotiates the protocol and authenticates, within the connect timeout.
    pub async fn connect(&self) -> Result<(BoxStream, Handshake), String> {
        match tokio::time::timeout(self.connect_timeout, self.connect_inner()).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "no connection within {}ms (upstream.connect_timeout_ms)",
                self.connect_timeout.as_millis()
            )),
        }
    }

    async fn connect_inner(&self) -> Result<(BoxStream, Handshake), String> {
        let mut stream: BoxStream = match &self.target {
            UpstreamTarget::Tls { host, port, .. } | UpstreamTarget::PlainTcp { host, port } => {
                let tcp = TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = tcp.set_nodelay(true);
                match &self.tls {
                    Some((connector, name)) => Box::new(
                        connector
                            .connect(name.clone(), tcp)
                            .await
                            .map_err(|e| format!("TLS handshake failed: {e}"))?,
                    ),
                    None => Box::new(tcp),
                }
            }
            UpstreamTarget::Unix { path } => {
                Box::new(UnixStream::connect(path).await.map_err(|e| e.to_string())?)
            }
        };
        let handshake = self.handshake(&mut stream).await?;
        Ok((stream, handshake))
    }

    async fn handshake(&self, stream: &mut BoxStream) -> Result<Handshake, String> {
        let mut buf = BytesMut::with_capacity(4096);
        let mut hello: Vec<Bytes> = vec!["HELLO".into(), "3".into()];
        if let Some(password) = &self.password {
            hello.push("AUTH".into());
            hello.push(
                self.username
                    .clone()
                    .unwrap_or_else(|| "default".into())
                    .into(),
            );
            hello.push(Bytes::copy_from_slice(password.expose_secret().as_bytes()));
        }
        hello.extend(["SETNAME".into(), "sealcache".into()]);
        let limits = self.limits;
        let reply = round_trip(stream, &mut buf, &hello, Protocol::Resp3, limits).await?;
        let handshake = match error_text(&reply) {
            None => Handshake {
                protocol: Protocol::Resp3,
                version: hello_version(&reply),
                limits,
            },
            Some(err) if err.starts_with("NOPROTO") || err.contains("unknown command") => {
                // Redis < 6: RESP2 and plain AUTH.
                if let Some(password) = &self.password {
                    let mut auth: Vec<Bytes> = vec!["AUTH".into()];
                    if let Some(user) = &self.username {
                        auth.push(user.clone().into());
                    }
                    auth.push(Bytes::copy_from_slice(password.expose_secret().as_bytes()));
                    let reply =
                        round_trip(stream, &mut buf, &auth, Protocol::Resp2, limits).await?;
                    if let Some(err) = error_text(&reply) {
                        return Err(auth_error(&err));
                    }
                }
                Handshake {
                    protocol: Protocol::Resp2,
                    version: None,
                    limits,
                }
            }
            Some(err) => return Err(auth_error(&err)),
        };
        if self.db != 0 {
            let select = vec!["SELECT".into(), self.db.to_string().into()];
            let reply = round_trip(stream, &mut buf, &select, handshake.protocol, limits).await?;
            if let Some(err) = error_text(&reply) {
                return Err(format!(
                    "SELECT {} failed: {err} (check the /db part of upstream.url)",
                    self.db
                ));
            }
        }
        Ok(handshake)
    }
}

fn auth_error(err: &str) -> String {
    if err.starts_with("WRONGPASS") || err.starts_with("NOAUTH") || err.contains("invalid password")
    {
        format!(
            "authentication to the upstream failed ({err}); check upstream.password_file/password_env and upstream.username"
        )
    } else {
        format!("handshake failed: {err}")
    }
}

fn label(target: &UpstreamTarget) -> String {
    match target {
        UpstreamTarget::Tls { host, port, .. } | UpstreamTarget::PlainTcp { host, port } => {
            format!("{host}:{port}")
        }
        UpstreamTarget::Unix { path } => path.display().to_string(),
    }
}

/// The `version` field of a HELLO reply.
fn hello_version(reply: &Frame) -> Option<String> {
    let Frame::Map { data, .. } = reply else {
        return None;
    };
    data.iter()
        .find(|(k, _)| text_of(k) == Some(b"version"))
        .and_then(|(_, v)| text_of(v))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Sends one command and reads its reply (handshake only; afterwards the
/// connection is pipelined).
async fn round_trip(
    stream: &mut BoxStream,
    buf: &mut BytesMut,
    args: &[Bytes],
    protocol: Protocol,
    limits: ReplyLimits,
) -> Result<Frame, String> {
    let mut out = BytesMut::new();
    encode_command(&mut out, args);
    stream.write_all(&out).await.map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())?;
    let mut decoder = UpstreamDecoder::with_limits(protocol, limits);
    loop {
        if let Some((frame, _)) = decode_reply(&mut decoder, buf)? {
            return Ok(frame);
        }
        if stream.read_buf(buf).await.map_err(|e| e.to_string())? == 0 {
            return Err("the upstream closed the connection during the handshake".into());
        }
    }
}

/// Encodes a command as a RESP array of bulk strings.
pub fn encode_command(out: &mut BytesMut, args: &[Bytes]) {
    // Borrowed frames: no reference-count traffic for the arguments, and no
    // allocation for the usual short commands.
    const SMALL: usize = 8;
    let encode = |items: &[BorrowedFrame<'_>], out: &mut BytesMut| {
        // A frame built from bulk strings always encodes.
        let _ = redis_protocol::resp2::encode::extend_encode_borrowed(
            out,
            &BorrowedFrame::Array(items),
            false,
        );
    };
    if args.len() <= SMALL {
        let items: [BorrowedFrame<'_>; SMALL] = std::array::from_fn(|i| {
            args.get(i)
                .map_or(BorrowedFrame::Null, |a| BorrowedFrame::BulkString(a))
        });
        encode(&items[..args.len()], out);
    } else {
        let items: Vec<BorrowedFrame<'_>> =
            args.iter().map(|a| BorrowedFrame::BulkString(a)).collect();
        encode(&items, out);
    }
}
