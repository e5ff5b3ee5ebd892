//! A hostile upstream: a small TLS RESP server that completes sealcache's
//! handshake like Redis 7 and then answers every command from a script the
//! test supplies — forged types, replies redis-protocol cannot represent,
//! garbage, huge or deeply nested replies, delays, closed connections.
//!
//! Lifecycle: [`HostileUpstream::start`] binds a free loopback port and serves
//! on a runtime of its own (a thread), so it answers even while the test's
//! thread blocks (e.g. in `Sealcache::start`). Drop stops it.
//!
//! ```ignore
//! let certs = Certs::generate();
//! let upstream = HostileUpstream::start(&certs, Script::table(
//!     [("GET", Answer::raw(":42\r\n"))],
//!     Answer::raw("+OK\r\n"),
//! ));
//! let proxy = upstream.proxy().start();
//! ```
//!
//! `HELLO` is answered with a RESP3 map (any `AUTH` is accepted) and
//! `SELECT` with `+OK`; every other command goes to the script, whose
//! [`Answer`] is a list of steps run in order: bytes to write (as they are,
//! or one chunk repeated without buffering the whole), pauses, a close.
//! Commands pipelined on one connection are answered in order, as Redis does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sealcache::protocol::request::RequestCodec;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::FramedRead;

use super::endpoint::HOST;
use super::{Certs, SealcacheBuilder};

/// What Redis 7 answers `HELLO 3`: what sealcache's handshake reads.
const HELLO_REPLY: &[u8] = b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:1\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n";

/// One thing the server does while answering a command.
#[derive(Debug, Clone)]
pub enum Step {
    /// Write these bytes.
    Write(Vec<u8>),
    /// Write `chunk` `count` times (huge replies without holding them whole).
    Repeat { chunk: Vec<u8>, count: u64 },
    /// Wait before the next step (and every later reply on the connection).
    Sleep(Duration),
    /// Close the connection (after flushing what was written).
    Close,
}

/// How the server answers one command: its steps, in order. No steps: no answer.
#[derive(Debug, Clone, Default)]
pub struct Answer(pub Vec<Step>);

impl Answer {
    /// Exactly these bytes (a valid reply, several, half of one, garbage…).
    pub fn raw(bytes: impl AsRef<[u8]>) -> Answer {
        Answer(vec![Step::Write(bytes.as_ref().to_vec())])
    }

    /// Nothing at all: the command is never answered.
    pub fn silence() -> Answer {
        Answer::default()
    }

    /// The connection closes instead of answering.
    pub fn close() -> Answer {
        Answer(vec![Step::Close])
    }

    /// The same answer after a pause.
    pub fn after(delay: Duration, answer: Answer) -> Answer {
        let mut steps = vec![Step::Sleep(delay)];
        steps.extend(answer.0);
        Answer(steps)
    }

    /// Another step after these.
    pub fn then(mut self, step: Step) -> Answer {
        self.0.push(step);
        self
    }
}

/// A function from a command's arguments (name first) to its answer.
type AnswerFn = dyn Fn(&[Bytes]) -> Answer + Send + Sync;

/// Decides the answer to each command.
#[derive(Clone)]
pub struct Script(Arc<AnswerFn>);

impl Script {
    pub fn new(answer: impl Fn(&[Bytes]) -> Answer + Send + Sync + 'static) -> Script {
        Script(Arc::new(answer))
    }

    /// The answer to one command.
    pub fn answer(&self, args: &[Bytes]) -> Answer {
        (self.0)(args)
    }

    /// Answers by command name (case-insensitive), `default` for the rest.
    pub fn table<'a>(
        entries: impl IntoIterator<Item = (&'a str, Answer)>,
        default: Answer,
    ) -> Script {
        let table: HashMap<String, Answer> = entries
            .into_iter()
            .map(|(name, answer)| (name.to_ascii_uppercase(), answer))
            .collect();
        Script::new(move |args| {
            let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
            table.get(&name).cloned().unwrap_or_else(|| default.clone())
        })
    }
}

/// What the server has seen, for assertions.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    /// Reply bytes written, all connections together.
    written: AtomicU64,
    commands: Mutex<Vec<Vec<Bytes>>>,
}

/// A running hostile upstream. Stopped on drop.
pub struct HostileUpstream {
    port: u16,
    certs: Certs,
    seen: Arc<Seen>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HostileUpstream {
    /// Serves TLS with `certs`' server certificate on a free loopback port.
    pub fn start(certs: &Certs, script: Script) -> HostileUpstream {
        let chain = CertificateDer::pem_file_iter(certs.server_cert())
            .expect("read server.crt")
            .collect::<Result<Vec<_>, _>>()
            .expect("parse server.crt");
        let key = PrivateKeyDer::from_pem_file(certs.server_key()).expect("read server.key");
        let tls = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server TLS config");
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let listener = std::net::TcpListener::bind((HOST, 0)).expect("bind the hostile upstream");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let port = listener.local_addr().expect("local_addr").port();
        let seen = Arc::new(Seen::default());
        let (stop, stopped) = oneshot::channel();
        let task_seen = seen.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("hostile upstream runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("tokio listener");
                let serve = async {
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else {
                            continue;
                        };
                        let _ = tcp.set_nodelay(true);
                        task_seen.connections.fetch_add(1, Ordering::SeqCst);
                        let (acceptor, script, seen) =
                            (acceptor.clone(), script.clone(), task_seen.clone());
                        tokio::spawn(async move {
                            if let Ok(tls) = acceptor.accept(tcp).await {
                                serve_connection(tls, script, seen).await;
                            }
                        });
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            });
            // Dropping the runtime ends every connection.
        });
        HostileUpstream {
            port,
            certs: certs.clone(),
            seen,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rediss://127.0.0.1:PORT`, for `SealcacheBuilder::upstream_url`.
    pub fn url(&self) -> String {
        format!("rediss://{HOST}:{}", self.port)
    }

    /// A proxy in front of this server, with the same certificates.
    pub fn proxy(&self) -> SealcacheBuilder {
        SealcacheBuilder::new(&self.certs).upstream_url(&self.url())
    }

    /// TCP connections accepted so far (a reconnect shows as one more).
    pub fn connections(&self) -> usize {
        self.seen.connections.load(Ordering::SeqCst)
    }

    /// Reply bytes written so far, all connections together.
    pub fn bytes_written(&self) -> u64 {
        self.seen.written.load(Ordering::SeqCst)
    }

    /// The commands the script answered so far, in arrival order.
    pub fn commands(&self) -> Vec<Vec<Bytes>> {
        self.seen.commands.lock().expect("commands lock").clone()
    }

    /// How many commands named `name` (case-insensitive) arrived so far.
    pub fn count(&self, name: &str) -> usize {
        self.commands()
            .iter()
            .filter(|args| args[0].eq_ignore_ascii_case(name.as_bytes()))
            .count()
    }
}

impl Drop for HostileUpstream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve_connection<S>(stream: S, script: Script, seen: Arc<Seen>)
where
    S: tokio::io::AsyncRead + AsyncWrite + Unpin,
{
    let (rd, mut wr) = tokio::io::split(stream);
    let mut requests = FramedRead::new(rd, RequestCodec::new(1 << 30, 1 << 20));
    while let Some(Ok(request)) = requests.next().await {
        let args = request.args;
        let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
        let answer = match name.as_str() {
            "HELLO" => Answer::raw(HELLO_REPLY),
            "SELECT" => Answer::raw("+OK\r\n"),
            _ => {
                seen.commands
                    .lock()
                    .expect("commands lock")
                    .push(args.clone());
                script.answer(&args)
            }
        };
        if !run(&mut wr, answer, &seen.written).await {
            return;
        }
    }
}

/// Runs an answer's steps, counting what it writes; `false` when the
/// connection is closed.
async fn run<W: AsyncWrite + Unpin>(wr: &mut W, answer: Answer, counted: &AtomicU64) -> bool {
    for step in answer.0 {
        let written = match step {
            Step::Write(bytes) => {
                counted.fetch_add(bytes.len() as u64, Ordering::SeqCst);
                wr.write_all(&bytes).await
            }
            Step::Repeat { chunk, count } => {
                let mut result = Ok(());
                for _ in 0..count {
                    result = wr.write_all(&chunk).await;
                    if result.is_err() {
                        break;
                    }
                    counted.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                }
                result
            }
            Step::Sleep(delay) => {
                let _ = wr.flush().await;
                tokio::time::sleep(delay).await;
                Ok(())
            }
            Step::Close => {
                let _ = wr.flush().await;
                let _ = wr.shutdown().await;
                return false;
            }
        };
        if written.is_err() {
            return false;
        }
    }
    wr.flush().await.is_ok()
}
