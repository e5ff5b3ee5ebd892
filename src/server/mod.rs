//! Listeners and the accept loop: TLS over TCP (there is no plaintext TCP
//! listener) and an optional Unix socket. Accepting is cheap; the TLS
//! handshake (with a deadline), the client limit and the session run in the
//! connection's own task.

use std::future::Future;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio_rustls::TlsAcceptor;

use crate::session::{self, Context, Peer};

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error(
        "cannot listen on {addr} (listen.tcp): {source}. Is another process using the port? Choose another with --listen or listen.tcp"
    )]
    Tcp {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot create the Unix socket {path} (listen.unix): {source}")]
    Unix {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} exists and is not a socket; refusing to replace it (listen.unix)")]
    NotASocket { path: PathBuf },
}

pub struct Server {
    ctx: Arc<Context>,
    tls: TlsAcceptor,
    tcp: Option<TcpListener>,
    unix: Option<(UnixListener, PathBuf)>,
}

impl Server {
    /// Binds every configured listener; nothing is served until [`Server::run`].
    pub async fn bind(
        ctx: Arc<Context>,
        tls: Arc<rustls::ServerConfig>,
    ) -> Result<Server, ListenError> {
        let listen = &ctx.config.listen;
        let tcp = match listen.tcp {
            Some(addr) => {
                Some(
                    TcpListener::bind(addr)
                        .await
                        .map_err(|source| ListenError::Tcp {
                            addr: addr.to_string(),
                            source,
                        })?,
                )
            }
            None => None,
        };
        let unix = match &listen.unix {
            Some(path) => Some((bind_unix(path, listen.unix_mode)?, path.clone())),
            None => None,
        };
        Ok(Server {
            ctx,
            tls: TlsAcceptor::from(tls),
            tcp,
            unix,
        })
    }

    /// The bound TCP address (useful when configured with port 0).
    pub fn tcp_addr(&self) -> Option<std::net::SocketAddr> {
        self.tcp.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Accepts clients until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Server {
            ctx,
            tls,
            tcp,
            unix,
        } = self;
        let unix_path = unix.as_ref().map(|(_, p)| p.clone());
        let tcp_loop = async {
            let Some(listener) = tcp else {
                return std::future::pending().await;
            };
            let local = listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            loop {
                match listener.accept().await {
                    Ok((stream, addr)) => {
                        let _ = stream.set_nodelay(true);
                        let peer = Peer {
                            addr: Some(addr),
                            local: local.clone(),
                        };
                        tokio::spawn(serve_tls(stream, tls.clone(), ctx.clone(), peer));
                    }
                    Err(e) => accept_error(e).await,
                }
            }
        };
        let unix_loop = async {
            let Some((listener, path)) = unix else {
                return std::future::pending().await;
            };
            let local = path.display().to_string();
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let peer = Peer {
                            addr: None,
                            local: local.clone(),
                        };
                        tokio::spawn(serve_client(stream, ctx.clone(), peer));
                    }
                    Err(e) => accept_error(e).await,
                }
            }
        };
        tokio::select! {
            _ = tcp_loop => {}
            _ = unix_loop => {}
            _ = shutdown => tracing::info!("shutting down"),
        }
        if let Some(path) = unix_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Accept errors (out of file descriptors…) must not end the loop or spin it.
async fn accept_error(e: std::io::Error) {
    tracing::warn!(error = %e, "accept failed");
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
}

fn bind_unix(path: &Path, mode: u32) -> Result<UnixListener, ListenError> {
    let unix_err = |source| ListenError::Unix {
        path: path.to_path_buf(),
        source,
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(ListenError::NotASocket {
                path: path.to_path_buf(),
            });
        }
        std::fs::remove_file(path).map_err(unix_err)?;
    }
    let listener = UnixListener::bind(path).map_err(unix_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(unix_err)?;
    Ok(listener)
}

async fn serve_tls(stream: tokio::net::TcpStream, tls: TlsAcceptor, ctx: Arc<Context>, peer: Peer) {
    let deadline = ctx.config.tls.handshake_timeout;
    match tokio::time::timeout(deadline, tls.accept(stream)).await {
        Ok(Ok(stream)) => serve_client(stream, ctx, peer).await,
        Ok(Err(e)) => {
            tracing::info!(client.addr = %peer.describe(), error = %e, "TLS handshake failed")
        }
        Err(_) => tracing::info!(client.addr = %peer.describe(), "TLS handshake timed out"),
    }
}

/// Counts the client while it is connected.
struct ClientGuard(Arc<Context>);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0
            .stats
            .connected_clients
            .fetch_sub(1, Ordering::AcqRel);
    }
}

async fn serve_client<S>(mut stream: S, ctx: Arc<Context>, peer: Peer)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static,
{
    let connected = ctx.stats.connected_clients.fetch_add(1, Ordering::AcqRel) + 1;
    let guard = ClientGuard(ctx.clone());
    if connected > ctx.config.limits.max_clients {
        ctx.stats
            .rejected_connections
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(client.addr = %peer.describe(), limit = ctx.config.limits.max_clients, "too many clients; refusing");
        let _ = stream
            .write_all(b"-ERR max number of clients reached\r\n")
            .await;
        let _ = stream.shutdown().await;
        return;
    }
    ctx.stats.total_connections.fetch_add(1, Ordering::Relaxed);
    session::run(stream, ctx, peer).await;
    drop(guard);
}
