//! sealcache: a Redis-protocol sidecar proxy that terminates TLS,
//! authenticates clients, seals every value and stores it through the
//! backends its key-prefix routes name: Redis over TLS, DynamoDB, or memory.
//!
//! # Layout
//!
//! A request's path, in module order:
//!
//! - [`server`] — TLS/Unix listeners, the accept loop and limits, one task per
//!   client connection, shutdown.
//! - [`protocol`] — the RESP codec (redis-protocol with our size caps and
//!   inline commands), the upstream reply scanner (`upstream.max_reply_*`),
//!   one-line error replies and RESP3 → RESP2 reply conversion.
//! - [`session`] — per-client state: authentication, HELLO, SELECT, MULTI
//!   (and EXEC run by sealcache when emulated commands are queued), Pub/Sub;
//!   decides where each command runs; bounds what one client may hold
//!   (output buffer, pipeline window, dedicated connections).
//! - [`commands`] — the `Command` type and the command table (key
//!   specifications, dispatch and value policy per command), key extraction,
//!   and the COMMAND family answered from the table.
//! - [`crypto`] — the envelope format, value and member encryption (the
//!   `Sealer`), and the associated data binding a value to its key and field.
//! - [`keys`] — the master key, HKDF-derived data keys, key ids, the keyring.
//! - [`values`] — sealing a command's values and opening the values of its
//!   reply, as the command table's rule says; re-sealing for RENAME/COPY.
//! - [`backend`] — the contract (`docs/backends.md`): the `Backend` trait,
//!   `Request`, `Connection`, capabilities (`backend::capability`), the
//!   key-prefix router (`backend::router`), the atomic read-modify-write
//!   (`backend::rmw`) and the gate that runs it one key at a time,
//!   coalescing the commands that wait (`backend::gate`). One folder per
//!   store: `backend::redis` (pipelined lanes, pinned connections, the
//!   shared Pub/Sub hub, reconnects), `backend::memory` (in-process engine
//!   on moka), `backend::dynamodb` (Redis semantics on one DynamoDB table,
//!   conditional writes on a version attribute); and `backend::fallback`,
//!   the layer in front of a route's backend (circuit breaker, write
//!   journal, replay to the backend).
//! - [`error`] — the one place errors become RESP replies.
//! - [`semantics`] — pure Redis semantics over plaintext (numbers, expiry
//!   options, ranges, glob matching, the emulated commands' functions),
//!   shared by the session, the value layer and the backends.
//!
//! Around it: [`config`] (layered, validated configuration), [`tls`] (rustls
//! configs and PEM loading), [`auth`] (users, argon2id, throttling), [`cli`]
//! (one file per subcommand), [`logging`], [`admin`] (the HTTP health
//! endpoints `/healthz` and `/readyz`).
#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod backend;
pub mod cli;
pub mod commands;
pub mod config;
pub mod crypto;
pub mod error;
pub mod keys;
pub mod logging;
pub mod protocol;
pub mod semantics;
pub mod server;
pub mod session;
pub mod tls;
pub mod values;
