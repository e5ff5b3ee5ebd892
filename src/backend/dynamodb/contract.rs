//! The store in the backend contract's terms (`backend::rmw`): the atomic
//! read-modify-write of emulated commands as `Backend::read_modify_write`
//! runs it, failures as `ProxyError`, and the command table's column.

use super::DynamoStore;
use super::commands::lookup;
use super::error::DynamoError;
use super::item::Kind;
use super::rmw::{Change, Decision, Entry, EntryValue, Found, KeyFound, Read, TtlUpdate};
use crate::backend::rmw::{self, KeySnapshot, KeyType, KeyValue, Snapshot, Write};
use crate::error::ProxyError;
use crate::semantics::errors;

/// Whether the store runs the command `name` (a command table row's name;
/// subcommands by their container).
pub fn supports(name: &str) -> bool {
    lookup(name.split('|').next().unwrap_or(name).as_bytes()).is_some()
}

impl DynamoError {
    /// The failure as the session answers it: Redis's own replies as they
    /// are, the store's failures after `ERR sealcache: `.
    /// DynamoDB out of reach (after the SDK's retries) is the backend being
    /// unavailable, as for any backend, with the table and the call named.
    pub fn into_proxy(self) -> ProxyError {
        match self {
            DynamoError::Reply { reply } => ProxyError::Redis(reply),
            DynamoError::Request {
                at,
                operation,
                reason,
            } => ProxyError::UpstreamUnavailable {
                upstream: at.backend,
                reason: format!("table '{}': {operation} failed: {reason}", at.table),
            },
            other => ProxyError::Unsupported(other.to_string()),
        }
    }
}

fn kind_of(kind: Kind) -> KeyType {
    match kind {
        Kind::String => KeyType::String,
        Kind::Hash => KeyType::Hash,
        Kind::Set => KeyType::Set,
        Kind::ZSet => KeyType::ZSet,
        Kind::List => KeyType::List,
    }
}

fn read_of(read: &rmw::Read) -> Read {
    match read {
        rmw::Read::String(key) => Read::String(key.clone()),
        rmw::Read::HashField { key, field } => Read::HashField {
            key: key.clone(),
            field: field.clone(),
        },
        rmw::Read::Key(key) => Read::Key(key.clone()),
        rmw::Read::Exists { key, db } => Read::Exists {
            key: key.clone(),
            db: *db,
        },
        rmw::Read::Command { args, .. } => Read::Command(args.clone()),
    }
}

fn wrong_type() -> ProxyError {
    ProxyError::Redis(errors::WRONGTYPE.into())
}

/// What the store found, as the contract's snapshots (WRONGTYPE ends the operation).
fn snapshot_of(found: &Found, now: i64) -> Result<Snapshot, ProxyError> {
    Ok(match found {
        Found::String(value) => Snapshot::String(value.clone().map_err(|_| wrong_type())?),
        Found::HashField(value) => Snapshot::HashField(value.clone().map_err(|_| wrong_type())?),
        Found::Key(None) => Snapshot::Key(KeySnapshot {
            kind: KeyType::None,
            ttl_ms: None,
            value: KeyValue::None,
        }),
        Found::Key(Some(KeyFound {
            kind,
            expire_at,
            value,
        })) => Snapshot::Key(KeySnapshot {
            kind: kind_of(*kind),
            ttl_ms: expire_at.map(|at| (at - now).max(0)),
            value: match value {
                Some(EntryValue::String(v)) => KeyValue::String(v.clone()),
                Some(EntryValue::Hash(pairs)) => KeyValue::Hash(pairs.clone()),
                _ => KeyValue::None,
            },
        }),
        Found::Exists(exists) => Snapshot::Exists(*exists),
        Found::Reply(frame) => Snapshot::Reply(frame.clone()),
    })
}

fn change_of(write: Write, now: i64) -> Change {
    match write {
        Write::SetString {
            key,
            value,
            keep_ttl,
        } => Change::SetString {
            key,
            value,
            ttl: if keep_ttl {
                TtlUpdate::Keep
            } else {
                TtlUpdate::Clear
            },
        },
        Write::HashSet { key, field, value } => Change::HashSet { key, field, value },
        Write::HashDelete { key, field } => Change::HashDelete { key, field },
        Write::Delete { key, db } => Change::Delete { key, db },
        Write::PutKey {
            key,
            db,
            value,
            ttl_ms,
        } => {
            let value = match value {
                KeyValue::None => return Change::Delete { key, db },
                KeyValue::String(v) => EntryValue::String(v),
                KeyValue::Hash(pairs) => EntryValue::Hash(pairs),
            };
            Change::Put {
                key,
                db,
                entry: Entry {
                    value,
                    expire_at: ttl_ms.filter(|ms| *ms > 0).map(|ms| now + ms),
                },
            }
        }
        Write::Native(args) => Change::Native(args),
    }
}

impl DynamoStore {
    /// `Backend::read_modify_write` for the DynamoDB backend: `op`'s reads,
    /// its decision, its writes applied atomically on the condition that
    /// nothing it read changed — decided again after a lost race, until
    /// `op`'s deadline.
    pub async fn read_modify_write(
        &self,
        db: u32,
        op: &mut dyn rmw::Rmw,
    ) -> Result<(), ProxyError> {
        let reads: Vec<Read> = op.reads().iter().map(read_of).collect();
        let deadline = op.deadline();
        // The writes of the decision that was applied (the last one).
        let mut written = 0;
        let mut decide = |snapshot: &super::Snapshot| {
            let now = snapshot.now_ms();
            let found: Result<Vec<Snapshot>, ProxyError> = snapshot
                .found()
                .iter()
                .map(|f| snapshot_of(f, now))
                .collect();
            match found.and_then(|found| op.decide(found)) {
                Ok(writes) => {
                    written = writes.len();
                    Decision::Write(
                        writes.into_iter().map(|w| change_of(w, now)).collect(),
                        Ok(()),
                    )
                }
                Err(e) => Decision::Keep(Err(e)),
            }
        };
        let mut outcome = self.update(db, &reads, Some(deadline), &mut decide).await;
        // A table found gone and created again: decide again on the new one.
        if let Err(e) = &outcome
            && self.recreated(e).await
        {
            outcome = self.update(db, &reads, Some(deadline), &mut decide).await;
        }
        match outcome {
            Ok(result) => {
                self.note(Ok(()));
                result?;
                // Each write is one conditional item change: it answers OK.
                op.committed(vec![crate::protocol::reply::ok(); written])
            }
            Err(e) => {
                self.note(Err(&e));
                Err(e.into_proxy())
            }
        }
    }
}
