//! Fair shares of the dedicated upstream connections. A command that needs one
//! passes three gates: the client connection's own cap
//! (`limits.max_dedicated_per_client`, checked at once: waiting on itself
//! would be pointless), its user's share (`limits.max_pinned_per_user` /
//! `max_blocking_per_user`), then the backend's budget. The last two are lines
//! served first come, first served, up to one deadline
//! (`upstream.acquire_timeout_ms`).

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::Session;
use crate::backend::{Connection, Purpose};
use crate::config::Config;
use crate::error::ProxyError;

/// The per-user shares, made once from the configured users.
pub struct Shares {
    per_client: usize,
    users: HashMap<String, UserShares>,
}

struct UserShares {
    pinned: Option<Arc<Semaphore>>,
    blocking: Option<Arc<Semaphore>>,
}

impl Shares {
    pub fn new(config: &Config) -> Self {
        let limits = &config.limits;
        let share = |n: usize| (n > 0).then(|| Arc::new(Semaphore::new(n)));
        Shares {
            per_client: limits.max_dedicated_per_client,
            users: config
                .auth
                .users
                .iter()
                .map(|u| {
                    let shares = UserShares {
                        pinned: share(limits.max_pinned_per_user),
                        blocking: share(limits.max_blocking_per_user),
                    };
                    (u.name.clone(), shares)
                })
                .collect(),
        }
    }

    fn of(&self, user: &str, purpose: Purpose) -> Option<&Arc<Semaphore>> {
        let shares = self.users.get(user)?;
        match purpose {
            Purpose::Pinned => shares.pinned.as_ref(),
            Purpose::Blocking => shares.blocking.as_ref(),
        }
    }
}

/// A dedicated connection with the shares it takes; dropping it returns the
/// connection first, then the user's and the client's places.
pub struct Dedicated {
    lease: Box<dyn Connection>,
    /// Index of the backend it belongs to.
    backend: usize,
    _user: Option<OwnedSemaphorePermit>,
    _client: ClientHold,
}

impl Dedicated {
    pub fn backend(&self) -> usize {
        self.backend
    }
}

impl Deref for Dedicated {
    type Target = dyn Connection;
    fn deref(&self) -> &(dyn Connection + 'static) {
        self.lease.as_ref()
    }
}

impl DerefMut for Dedicated {
    fn deref_mut(&mut self) -> &mut (dyn Connection + 'static) {
        self.lease.as_mut()
    }
}

/// One of the client connection's places, given back on drop (leases of
/// blocking commands are dropped by the writer task).
struct ClientHold(Arc<AtomicUsize>);

impl Drop for ClientHold {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The client's and its user's places for one connection of their own,
/// held while the connection (or a read-modify-write) is in use.
pub struct Hold {
    _user: Option<OwnedSemaphorePermit>,
    _client: ClientHold,
}

impl Session {
    /// A dedicated connection from `purpose`'s budget, within this client's
    /// and its user's shares.
    pub(super) async fn dedicated(
        &mut self,
        backend: usize,
        purpose: Purpose,
    ) -> Result<Dedicated, ProxyError> {
        let pool = self.ctx.backends[backend].clone();
        let deadline = Instant::now() + pool.acquire_timeout();
        let hold = self.hold(purpose, pool.acquire_timeout()).await?;
        let lease = pool.connection(purpose, deadline).await?;
        Ok(Dedicated {
            lease,
            backend,
            _user: hold._user,
            _client: hold._client,
        })
    }

    /// Takes this client's and its user's places for one connection of
    /// their own (checked for every dedicated connection and for every
    /// read-modify-write an emulated command runs).
    pub(super) async fn hold(
        &self,
        purpose: Purpose,
        wait: std::time::Duration,
    ) -> Result<Hold, ProxyError> {
        let shares = &self.ctx.shares;
        let limit = shares.per_client;
        if self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_err()
        {
            return Err(ProxyError::ClientDedicatedLimit { limit });
        }
        let client = ClientHold(self.held.clone());
        let deadline = Instant::now() + wait;
        let user = match self
            .user
            .as_deref()
            .and_then(|u| Some((u, shares.of(u, purpose)?)))
        {
            Some((name, share)) => {
                match tokio::time::timeout_at(deadline, share.clone().acquire_owned()).await {
                    Ok(Ok(permit)) => Some(permit),
                    _ => {
                        let (limit, key) = match purpose {
                            Purpose::Pinned => (
                                self.ctx.config.limits.max_pinned_per_user,
                                "limits.max_pinned_per_user",
                            ),
                            Purpose::Blocking => (
                                self.ctx.config.limits.max_blocking_per_user,
                                "limits.max_blocking_per_user",
                            ),
                        };
                        return Err(ProxyError::UserDedicatedBusy {
                            user: name.to_string(),
                            limit,
                            pool: purpose.pool_name(),
                            key,
                            waited: wait,
                        });
                    }
                }
            }
            None => None,
        };
        Ok(Hold {
            _user: user,
            _client: client,
        })
    }
}
