//! The admin HTTP listener (`admin.listen`, loopback by default): `GET
//! /healthz` and `GET /readyz`, and nothing else. Plain HTTP/1.1 on hyper.
//!
//! It must never stall the proxy: it runs in its own task, serves at most
//! [`MAX_CONNECTIONS`] connections at once (more are closed unanswered), one
//! request per connection within [`CONNECTION_TIMEOUT`], and never reads a
//! request body. Its answers are computed from counters and flags, without
//! waiting on a backend. They carry no secret: addresses, prefixes, backend
//! names and states only.
//!
//! [`Readiness`] is the `/readyz` document; [`Readiness::of`] fills it from the
//! running proxy, one [`RouteReadiness`] per route.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::backend::fallback::CircuitState;
use crate::server::Listening;
use crate::session::Context;

/// Admin connections served at once; probes and scrapers need a handful.
pub const MAX_CONNECTIONS: usize = 16;
/// How long a client may take to send its request line and headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one admin connection may last, whatever it does.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// hyper's smallest read buffer: an admin request is a line and a few headers.
const MAX_REQUEST_BYTES: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(
        "cannot listen on {addr} (admin.listen): {source}. Is another process (another sealcache?) using the port? Choose another with admin.listen, or set admin.listen: null to turn the admin listener off"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The bound admin listener; nothing is served until [`AdminServer::spawn`].
pub struct AdminServer {
    listener: TcpListener,
    addr: SocketAddr,
}

impl AdminServer {
    pub async fn bind(addr: SocketAddr) -> Result<AdminServer, AdminError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| AdminError::Bind { addr, source })?;
        let addr = listener.local_addr().unwrap_or(addr);
        Ok(AdminServer { listener, addr })
    }

    /// The bound address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves in a task of its own until the process ends.
    pub fn spawn(self, ctx: Arc<Context>, listening: Arc<Listening>) {
        tokio::spawn(self.run(ctx, listening));
    }

    async fn run(self, ctx: Arc<Context>, listening: Arc<Listening>) {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors…: neither end the loop nor spin.
                    tracing::warn!(error = %e, "admin listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::debug!(admin.client = %peer, limit = MAX_CONNECTIONS, "admin listener busy; closing the connection");
                continue;
            };
            let (ctx, listening) = (ctx.clone(), listening.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let answer = answer(&request, &ctx, &listening);
                    async move { Ok::<_, Infallible>(answer) }
                });
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .keep_alive(false)
                    .max_buf_size(MAX_REQUEST_BYTES)
                    .serve_connection(TokioIo::new(stream), service);
                match tokio::time::timeout(CONNECTION_TIMEOUT, connection).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::debug!(admin.client = %peer, error = %e, "admin connection failed")
                    }
                    Err(_) => tracing::debug!(admin.client = %peer, "admin connection timed out"),
                }
                drop(slot);
            });
        }
    }
}

/// The whole of the admin API.
fn answer(
    request: &Request<Incoming>,
    ctx: &Context,
    listening: &Listening,
) -> Response<Full<Bytes>> {
    let endpoint = match request.uri().path() {
        "/healthz" => Endpoint::Healthz,
        "/readyz" => Endpoint::Readyz,
        _ => {
            return text(
                StatusCode::NOT_FOUND,
                "not found: the admin listener serves GET /healthz and GET /readyz\n",
            );
        }
    };
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET and HEAD are served here\n",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    // A GET has no body; one that comes with a body is not read, only refused.
    if !request.body().is_end_stream() {
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request bodies are not accepted\n",
        );
    }
    match endpoint {
        Endpoint::Healthz => json(
            StatusCode::OK,
            &Health {
                status: "alive",
                uptime_secs: ctx.started.elapsed().as_secs(),
            },
        ),
        Endpoint::Readyz => {
            let readiness = Readiness::of(ctx, listening);
            let status = if readiness.ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            json(status, &readiness)
        }
    }
}

enum Endpoint {
    Healthz,
    Readyz,
}

/// `/healthz`: answered by the runtime that serves the clients, so an answer
/// means the process and its runtime are alive.
#[derive(Serialize)]
struct Health {
    status: &'static str,
    uptime_secs: u64,
}

/// `/readyz`: ready when every listener accepts and every route can serve.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub listeners: Vec<ListenerReadiness>,
    pub routes: Vec<RouteReadiness>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ListenerReadiness {
    /// `tls` or `unix`.
    pub kind: &'static str,
    pub address: String,
    /// False before the accept loops start and from the start of shutdown.
    pub accepting: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteReadiness {
    /// The key prefix; `""` is the default route.
    pub prefix: String,
    /// The backend's name in the configuration.
    pub backend: String,
    /// The backend's kind: `redis`, `memory`, `dynamodb`.
    pub kind: &'static str,
    /// Whether the backend has a working connection now.
    pub connected: bool,
    pub circuit: Circuit,
    /// The memory backend that serves the route while its circuit is open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// A route's circuit breaker state: always closed without a fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Circuit {
    Closed,
    Open,
    HalfOpen,
}

impl RouteReadiness {
    /// Whether the route can serve its keys now: from its backend, or —
    /// when it has a fallback — from there, whatever the backend's state.
    pub fn usable(&self) -> bool {
        self.fallback.is_some() || (self.connected && self.circuit != Circuit::Open)
    }
}

impl Readiness {
    /// Reads the running proxy's state; never waits on a backend.
    pub fn of(ctx: &Context, listening: &Listening) -> Readiness {
        let accepting = listening.accepting();
        let mut listeners = Vec::new();
        if let Some(addr) = listening.tcp {
            listeners.push(ListenerReadiness {
                kind: "tls",
                address: addr.to_string(),
                accepting,
            });
        }
        if let Some(path) = &listening.unix {
            listeners.push(ListenerReadiness {
                kind: "unix",
                address: path.display().to_string(),
                accepting,
            });
        }
        let routes = routes(ctx);
        let ready =
            listeners.iter().all(|l| l.accepting) && routes.iter().all(RouteReadiness::usable);
        Readiness {
            ready,
            listeners,
            routes,
        }
    }
}

/// One entry per route, most specific prefix first.
fn routes(ctx: &Context) -> Vec<RouteReadiness> {
    ctx.router
        .routes()
        .iter()
        .map(|route| {
            let backend = &ctx.backends[route.backend];
            let circuit = backend.circuit();
            RouteReadiness {
                prefix: String::from_utf8_lossy(&route.prefix).into_owned(),
                backend: backend.name().to_string(),
                kind: backend.kind().as_str(),
                connected: backend.is_ready(),
                circuit: match circuit.as_ref().map(|c| c.state) {
                    None | Some(CircuitState::Closed) => Circuit::Closed,
                    Some(CircuitState::Open) => Circuit::Open,
                    Some(CircuitState::HalfOpen) => Circuit::HalfOpen,
                },
                fallback: circuit.map(|c| c.fallback),
            }
        })
        .collect()
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    respond(
        status,
        "text/plain; charset=utf-8",
        Bytes::from_static(body.as_bytes()),
    )
}

fn json(status: StatusCode, body: &impl Serialize) -> Response<Full<Bytes>> {
    let mut bytes = serde_json::to_vec(body).expect("admin documents serialize");
    bytes.push(b'\n');
    respond(status, "application/json", Bytes::from(bytes))
}

fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Health answers describe this instant; no cache may keep them.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
