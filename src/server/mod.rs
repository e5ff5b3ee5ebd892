//! Listeners and the accept loop: TLS over TCP (there is no plaintext TCP
//! listener for clients) and an optional Unix socket. Accepting is cheap; the TLS
//! handshake (with a deadline), the client limit and the session run in the
//! connection's own task.
//!
//! Graceful shutdown: when the shutdown signal resolves, the listeners close
//! at once (new connections are refused), every session is drained (it reads
//! no further command and delivers the replies owed), and the server waits
//! up to `limits.shutdown_timeout_ms` for them; then sessions still owing
//! replies are aborted and counted.

use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use crate::session::{self, Context, Peer, Shutdown};

mod fds;
pub use fds::raise_open_file_limit;

/// After the deadline, how long aborted sessions get to count what they owed
/// and close; anything still running then ends with the process.
const ABORT_GRACE: Duration = Duration::from_millis(250);

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
    listening: Arc<Listening>,
}

/// The client listeners as `/readyz` reports them.
#[derive(Debug)]
pub struct Listening {
    /// The bound TLS address (the real port when configured with port 0).
    pub tcp: Option<SocketAddr>,
    pub unix: Option<PathBuf>,
    accepting: AtomicBool,
}

impl Listening {
    /// True while the accept loops run: from [`Server::run`] until shutdown.
    pub fn accepting(&self) -> bool {
        self.accepting.load(Ordering::Acquire)
    }
}

/// What a graceful shutdown did, as logged at its end.
#[derive(Debug, Clone)]
pub struct ShutdownReport {
    /// Client connections open when the shutdown began; all are closed.
    pub connections_closed: usize,
    /// Replies still owed at the deadline: commands read but never answered.
    pub commands_abandoned: u64,
    /// Connections still busy after the deadline (and [`ABORT_GRACE`]); they
    /// end with the process.
    pub connections_cut: usize,
    /// Whether every session finished before the deadline.
    pub drained: bool,
    pub elapsed: Duration,
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
        let listening = Arc::new(Listening {
            tcp: tcp.as_ref().and_then(|l| l.local_addr().ok()),
            unix: unix.as_ref().map(|(_, path)| path.clone()),
            accepting: AtomicBool::new(false),
        });
        Ok(Server {
            ctx,
            tls: TlsAcceptor::from(tls),
            tcp,
            unix,
            listening,
        })
    }

    /// The bound TCP address (useful when configured with port 0).
    pub fn tcp_addr(&self) -> Option<std::net::SocketAddr> {
        self.listening.tcp
    }

    /// The listeners' state, for the admin listener.
    pub fn listening(&self) -> Arc<Listening> {
        self.listening.clone()
    }

    /// Accepts clients until `shutdown` resolves, then shuts down gracefully
    /// (see the module documentation) and reports what that did.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> ShutdownReport {
        let Server {
            ctx,
            tls,
            tcp,
            unix,
            listening,
        } = self;
        let connections = TaskTracker::new();
        let stop = Shutdown::new();
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
                        connections.spawn(serve_tls(
                            stream,
                            tls.clone(),
                            ctx.clone(),
                            peer,
                            stop.clone(),
                        ));
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
                        connections.spawn(serve_client(stream, ctx.clone(), peer, stop.clone()));
                    }
                    Err(e) => accept_error(e).await,
                }
            }
        };
        listening.accepting.store(true, Ordering::Release);
        // The loops own the listeners: when this returns they are dropped, so
        // from here on new connections are refused.
        tokio::select! {
            _ = tcp_loop => {}
            _ = unix_loop => {}
            _ = shutdown => {}
        }
        listening.accepting.store(false, Ordering::Release);
        if let Some(path) = unix_path {
            let _ = std::fs::remove_file(path);
        }
        drain(&connections, &stop, ctx.config.limits.shutdown_timeout).await
    }
}

/// Drains every connection within `deadline`, then aborts the rest.
async fn drain(connections: &TaskTracker, stop: &Shutdown, deadline: Duration) -> ShutdownReport {
    let started = Instant::now();
    let open = connections.len();
    tracing::info!(
        connections = open,
        deadline_ms = deadline.as_millis() as u64,
        "shutdown started: no longer accepting connections; finishing the commands already started"
    );
    stop.drain();
    connections.close();
    let drained = tokio::time::timeout(deadline, connections.wait())
        .await
        .is_ok();
    if !drained {
        stop.abort();
        let _ = tokio::time::timeout(ABORT_GRACE, connections.wait()).await;
    }
    let report = ShutdownReport {
        connections_closed: open,
        commands_abandoned: stop.abandoned(),
        connections_cut: connections.len(),
        drained,
        elapsed: started.elapsed(),
    };
    let elapsed_ms = report.elapsed.as_millis() as u64;
    if drained {
        tracing::info!(
            connections_closed = report.connections_closed,
            commands_abandoned = 0,
            elapsed_ms,
            "shutdown complete: every command started was answered"
        );
    } else {
        tracing::warn!(
            connections_closed = report.connections_closed,
            commands_abandoned = report.commands_abandoned,
            connections_cut = report.connections_cut,
            elapsed_ms,
            "shutdown complete at the deadline (limits.shutdown_timeout_ms): commands still in flight were abandoned"
        );
    }
    report
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

async fn serve_tls(
    stream: tokio::net::TcpStream,
    tls: TlsAcceptor,
    ctx: Arc<Context>,
    peer: Peer,
    stop: Shutdown,
) {
    let deadline = ctx.config.tls.handshake_timeout;
    // Boxed: the handshake's state (a whole TLS connection) is needed only
    // until it completes, not for as long as the client stays.
    let handshake = tokio::select! {
        handshake = tokio::time::timeout(deadline, Box::pin(tls.accept(stream))) => handshake,
        // A client still shaking hands at shutdown has sent no command yet.
        () = stop.draining() => return,
    };
    match handshake {
        // Boxed: the session's futures then each hold a pointer, not a copy
        // of the 1.2 KiB TLS stream.
        Ok(Ok(stream)) => serve_client(Box::new(stream), ctx, peer, stop).await,
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

async fn serve_client<S>(mut stream: S, ctx: Arc<Context>, peer: Peer, stop: Shutdown)
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
    session::run(stream, ctx, peer, stop).await;
    drop(guard);
}
