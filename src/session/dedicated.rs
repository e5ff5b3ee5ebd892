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
use crate::backend::redis::pinned::pool_name;
use crate::backend::redis::{PinnedLease, Purpose};
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
    lease: PinnedLease,
    _user: Option<OwnedSemaphorePermit>,
    _client: ClientHold,
}

impl Deref for Dedicated {
    type Target = PinnedLease;
    fn deref(&self) -> &PinnedLease {
        &self.lease
    }
}

impl DerefMut for Dedicated {
    fn deref_mut(&mut self) -> &mut PinnedLease {
        &mut self.lease
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

impl Session {
    /// A dedicated connection from `purpose`'s budget, within this client's
    /// and its user's shares.
    pub(super) async fn dedicated(&mut self, purpose: Purpose) -> Result<Dedicated, ProxyError> {
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
        let pool = self.ctx.backend.pinned();
        let deadline = Instant::now() + pool.wait();
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
                            pool: pool_name(purpose),
                            key,
                            waited: pool.wait(),
                        });
                    }
                }
            }
            None => None,
        };
        let lease = pool.acquire(purpose, deadline).await?;
        Ok(Dedicated {
            lease,
            _user: user,
            _client: client,
        })
    }
}
