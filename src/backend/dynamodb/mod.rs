//! The DynamoDB store: runs Redis commands with redis-server 7.0's replies on
//! a DynamoDB table that many sidecars share. Values are opaque bytes
//! (sealcache stores envelopes here and never decrypts in the store).
//!
//! - [`DynamoStore::open`] creates or checks the table and its TTL setting.
//! - [`DynamoStore::execute`] runs one command ([`SUPPORTED`] lists them)
//!   and returns its RESP3 reply.
//! - [`DynamoStore::update`] is the atomic read-modify-write primitive for
//!   commands sealcache computes on plaintext (INCR on sealed values,
//!   APPEND, HINCRBYFLOAT, RENAME re-sealing…): read, compute, write on the
//!   condition that nothing changed, retried on conflict.
//!
//! How keys map onto items, what each command costs and where replies can
//! differ from Redis are in docs/dynamodb.md.
//!
//! Module map: `item` (key schema and item encoding), `io` (every DynamoDB
//! call, batches and retries), `tx` (one command as an optimistic
//! transaction), `rmw` (the public read-modify-write primitive), `contract`
//! (the same in the backend contract's terms), `table` (lifecycle),
//! `client` (SDK set-up, request counts), `commands` (the supported
//! commands and dispatch) and one file per data type.

mod backend;
mod client;
mod commands;
mod contract;
mod error;
#[cfg(test)]
mod fake;
mod hash;
mod io;
mod item;
mod keys;
mod list;
mod rmw;
mod scan;
mod set;
mod strings;
mod table;
mod tx;
mod zset;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::ConfigLoader;
use aws_sdk_dynamodb::Client;
use bytes::Bytes;

pub use crate::config::dynamodb::{BillingMode, DynamoConfig};
pub use backend::DynamoBackend;
pub use client::{Op as DynamoOp, RequestCounts, default_loader};
pub use commands::{DynamoCommand, SUPPORTED, lookup};
pub use contract::supports;
pub use error::{DynamoError, Target};
pub use item::Kind as KeyType;
pub use rmw::{
    Change, Decision, Entry, EntryValue, Found, KeyFound, Read, Snapshot, TtlUpdate, WrongType,
};

use crate::protocol::Frame;

/// A DynamoDB table serving Redis commands.
pub struct DynamoStore {
    client: Client,
    table: String,
    at: Target,
    consistent_reads: bool,
    /// How long a command keeps retrying lost races before it gives up.
    conflict_budget: Duration,
    counts: RequestCounts,
    cursors: Mutex<scan::Cursors>,
    /// Whether the last command reached the table (readiness): a request
    /// that failed after the SDK's retries clears it, any success sets it.
    reachable: AtomicBool,
    /// For creating the table again if it goes away ([`Self::recreated`]).
    config: DynamoConfig,
    /// One lane at a time checks and recreates a missing table.
    recreating: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("at", &self.at)
            .finish_non_exhaustive()
    }
}

impl DynamoStore {
    /// Connects with the standard AWS credential chain, then creates or
    /// checks the table (waiting until it is ACTIVE) and its TTL setting.
    pub async fn open(config: DynamoConfig) -> Result<Arc<DynamoStore>, DynamoError> {
        Self::open_with(config, default_loader()).await
    }

    /// [`open`](Self::open) with an SDK configuration loader of the caller's
    /// (tests give static credentials); region, endpoint, HTTP client,
    /// retries and timeouts come from `config`.
    pub async fn open_with(
        config: DynamoConfig,
        loader: ConfigLoader,
    ) -> Result<Arc<DynamoStore>, DynamoError> {
        let client = client::build(&config, loader).await;
        let at = Target {
            backend: config.name.clone(),
            table: config.table.clone(),
        };
        let store = DynamoStore {
            client,
            table: config.table.clone(),
            at,
            consistent_reads: config.consistent_reads,
            conflict_budget: client::operation_budget(&config),
            counts: RequestCounts::default(),
            cursors: Mutex::new(scan::Cursors::default()),
            reachable: AtomicBool::new(true),
            config,
            recreating: tokio::sync::Mutex::new(()),
        };
        store.lifecycle().ensure().await?;
        Ok(Arc::new(store))
    }

    fn lifecycle(&self) -> table::Lifecycle<'_> {
        table::Lifecycle {
            client: &self.client,
            config: &self.config,
            at: &self.at,
            counts: &self.counts,
        }
    }

    /// Whether a command that failed with `error` may run again because the
    /// table was gone and has been created again. A table deleted under a
    /// running sidecar (or DynamoDB Local restarted empty) would otherwise
    /// fail every command until sealcache restarts, and a fallback route's
    /// probe would never see its backend come back. Only with
    /// `create_table: true`, as at start; what the old table held is lost.
    pub(crate) async fn recreated(&self, error: &DynamoError) -> bool {
        if !self.config.create_table || !error.is_table_missing() {
            return false;
        }
        let _one = self.recreating.lock().await;
        match self.lifecycle().ensure().await {
            Ok(created) => {
                if created {
                    tracing::warn!(
                        backend = %self.at.backend,
                        table = %self.table,
                        "the DynamoDB table was gone (deleted, or DynamoDB restarted empty): created it again (create_table: true); what it held is lost"
                    );
                }
                true
            }
            Err(e) => {
                tracing::warn!(backend = %self.at.backend, error = %e, "the DynamoDB table is gone and could not be created again");
                false
            }
        }
    }

    /// Connects as [`open`](Self::open) does and checks that the table
    /// exists with sealcache's schema, changing nothing (`sealcache health`).
    pub async fn inspect(config: &DynamoConfig) -> Result<(), DynamoError> {
        let client = client::build(config, default_loader()).await;
        let at = Target {
            backend: config.name.clone(),
            table: config.table.clone(),
        };
        table::Lifecycle {
            client: &client,
            config,
            at: &at,
            counts: &RequestCounts::default(),
        }
        .inspect()
        .await
    }

    /// `dynamodb backend 'NAME' (table 'TABLE')`.
    pub fn target(&self) -> &Target {
        &self.at
    }

    /// Whether the last command reached DynamoDB.
    pub fn is_reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// Records how a command ended: only failures of the requests
    /// themselves (after the SDK's retries) make the table unreachable.
    pub(crate) fn note(&self, outcome: Result<(), &DynamoError>) {
        match outcome {
            Ok(()) => self.reachable.store(true, Ordering::Relaxed),
            Err(DynamoError::Request { .. }) => self.reachable.store(false, Ordering::Relaxed),
            Err(_) => {}
        }
    }

    /// DynamoDB requests made so far, per operation.
    pub fn requests(&self) -> &RequestCounts {
        &self.counts
    }

    /// Runs one command (`args[0]` is its name) in database `db`. Failures of
    /// DynamoDB itself are `-ERR sealcache: dynamodb backend '…' (table '…'): …`.
    pub async fn execute(&self, db: u32, args: &[Bytes]) -> Frame {
        self.run(db, args)
            .await
            .unwrap_or_else(|e| tx::failure_reply(&e))
    }

    /// [`execute`](Self::execute), with DynamoDB's own failures apart from
    /// the reply (the proxy answers them as its backend errors).
    /// A command that found the table gone runs again once it is recreated.
    pub async fn run(&self, db: u32, args: &[Bytes]) -> Result<Frame, DynamoError> {
        match commands::dispatch(self, db, args).await {
            Err(e) if self.recreated(&e).await => commands::dispatch(self, db, args).await,
            done => done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_send<T: Send>(_: &T) {}

    /// The proxy spawns these futures on its runtime: they must be `Send`.
    #[allow(dead_code, reason = "checked by the compiler, never run")]
    fn futures_are_send(
        store: &DynamoStore,
        args: &[Bytes],
        op: &mut dyn crate::backend::rmw::Rmw,
    ) {
        is_send(&store.read_modify_write(0, op));
        is_send(&store.execute(0, args));
        is_send(&store.update(0, &[Read::Key(Bytes::new())], None, |_| Decision::Keep(())));
        is_send(&DynamoStore::open(DynamoConfig::local(
            "d",
            "t",
            "http://127.0.0.1:1",
        )));
    }
}
