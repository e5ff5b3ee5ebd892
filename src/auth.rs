//! Client authentication: users from configuration (argon2id hashes or
//! passwords from the environment), constant-time comparison, and a growing
//! delay after failures per client address.
//!
//! Unauthenticated clients must not be able to exhaust the process: argon2
//! verifications run at most one per CPU at once (the rest wait their turn in
//! FIFO order), and a user name nobody has pays the same argon2 work as a
//! wrong password for a real user, so timing does not tell which users exist.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::config::{AuthConfig, Credential};

/// The user `AUTH <password>` authenticates as.
pub const DEFAULT_USER: &str = "default";
/// Failure records older than this are forgotten.
const FAILURE_MEMORY: Duration = Duration::from_secs(15 * 60);
/// Prune the failure table when it grows past this many addresses.
const FAILURE_TABLE_PRUNE_AT: usize = 10_000;

type Digest = [u8; 32];

enum Stored {
    /// PHC string; verified with argon2 (slow by design), then remembered as a digest.
    Argon2(String),
    Digest(Digest),
}

pub struct Authenticator {
    users: HashMap<String, Stored>,
    /// Random per process: digests of passwords never leave memory and mean nothing elsewhere.
    mac_key: Zeroizing<[u8; 32]>,
    /// Digests of passwords already verified against an argon2 hash, so
    /// reconnecting clients do not pay for argon2 each time.
    verified: Mutex<HashMap<String, Digest>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
    base_delay: Duration,
    max_delay: Duration,
    /// One argon2 verification per CPU at a time; the rest queue (FIFO).
    argon2_slots: Arc<Semaphore>,
    /// A configured argon2 hash that unknown user names, and wrong passwords
    /// of users with a plain password, are verified against (and always
    /// fail): every failure costs what an argon2 user's wrong password
    /// costs, so timing tells no user name apart.
    decoy: Option<String>,
    /// Argon2 verifications run so far.
    argon2_runs: std::sync::atomic::AtomicU64,
}

struct Failures {
    count: u32,
    last: Instant,
}

impl Authenticator {
    pub fn new(config: &AuthConfig) -> Self {
        let mut mac_key = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(mac_key.as_mut());
        let mut auth = Authenticator {
            users: HashMap::new(),
            mac_key,
            verified: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            base_delay: config.failure_delay,
            max_delay: config.max_failure_delay,
            argon2_slots: Arc::new(Semaphore::new(argon2_parallelism())),
            decoy: None,
            argon2_runs: std::sync::atomic::AtomicU64::new(0),
        };
        for user in &config.users {
            let stored = match &user.credential {
                Credential::Argon2Hash(phc) => {
                    auth.decoy.get_or_insert_with(|| phc.clone());
                    Stored::Argon2(phc.clone())
                }
                Credential::Password(p) => {
                    Stored::Digest(auth.digest(&user.name, p.expose_secret().as_bytes()))
                }
            };
            auth.users.insert(user.name.clone(), stored);
        }
        auth
    }

    fn digest(&self, user: &str, password: &[u8]) -> Digest {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.mac_key.as_ref())
            .expect("HMAC takes any key length");
        mac.update(user.as_bytes());
        mac.update(&[0]);
        mac.update(password);
        mac.finalize().into_bytes().into()
    }

    /// Whether `password` is right for `user`. Comparisons take constant time;
    /// argon2 verification runs off the async runtime, a bounded number at once.
    pub async fn verify(&self, user: &str, password: &[u8]) -> bool {
        let given = self.digest(user, password);
        match self.users.get(user) {
            None => {
                // Same work as a wrong password for a known user.
                let _ = given.ct_eq(&[0u8; 32]);
                self.decoy_verify(password).await;
                false
            }
            Some(Stored::Digest(expected)) => {
                let ok = bool::from(given.ct_eq(expected));
                if !ok {
                    self.decoy_verify(password).await;
                }
                ok
            }
            Some(Stored::Argon2(phc)) => {
                if let Some(known) = self.verified.lock().expect("auth lock").get(user)
                    && bool::from(given.ct_eq(known))
                {
                    return true;
                }
                let ok = self.argon2_verify(phc, password).await;
                if ok {
                    self.verified
                        .lock()
                        .expect("auth lock")
                        .insert(user.to_string(), given);
                }
                ok
            }
        }
    }

    /// The argon2 work of a failed attempt, when any user has an argon2 hash.
    async fn decoy_verify(&self, password: &[u8]) {
        if let Some(decoy) = &self.decoy {
            let _ = self.argon2_verify(decoy, password).await;
        }
    }

    /// Checks `password` against the PHC string `phc` on the blocking pool,
    /// waiting for one of the verification slots first.
    async fn argon2_verify(&self, phc: &str, password: &[u8]) -> bool {
        let Ok(_slot) = self.argon2_slots.acquire().await else {
            return false;
        };
        self.argon2_runs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let phc = phc.to_owned();
        let password = Zeroizing::new(password.to_vec());
        tokio::task::spawn_blocking(move || {
            PasswordHash::new(&phc)
                .map(|hash| Argon2::default().verify_password(&password, &hash).is_ok())
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false)
    }

    /// Argon2 verifications running now (for tests and INFO).
    pub fn argon2_in_progress(&self) -> usize {
        argon2_parallelism() - self.argon2_slots.available_permits()
    }

    /// Records a failed attempt from `addr` and returns how long to wait before answering.
    pub fn record_failure(&self, addr: Option<IpAddr>) -> Duration {
        let Some(addr) = addr else {
            return self.base_delay;
        };
        let now = Instant::now();
        let mut failures = self.failures.lock().expect("auth lock");
        if failures.len() > FAILURE_TABLE_PRUNE_AT {
            failures.retain(|_, f| now.duration_since(f.last) < FAILURE_MEMORY);
        }
        let entry = failures.entry(addr).or_insert(Failures {
            count: 0,
            last: now,
        });
        if now.duration_since(entry.last) >= FAILURE_MEMORY {
            entry.count = 0;
        }
        entry.count = entry.count.saturating_add(1);
        entry.last = now;
        let factor = 1u32
            .checked_shl(entry.count.saturating_sub(1).min(16))
            .unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// Forgets the failures of `addr` after a successful login.
    pub fn record_success(&self, addr: Option<IpAddr>) {
        if let Some(addr) = addr {
            self.failures.lock().expect("auth lock").remove(&addr);
        }
    }
}

/// How many argon2 verifications may run at once: one per CPU.
fn argon2_parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// An argon2id PHC string for `password`, with a random salt.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt =
        argon2::password_hash::SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

pub fn hash_password_from_stdin() -> std::process::ExitCode {
    let mut line = Zeroizing::new(String::new());
    if std::io::stdin().read_line(&mut line).is_err() {
        eprintln!("error: could not read a password from standard input");
        return std::process::ExitCode::FAILURE;
    }
    match hash_password(line.trim_end_matches(['\r', '\n'])) {
        Ok(hash) => {
            println!("{hash}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: hashing failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::User;
    use secrecy::SecretString;

    fn authenticator() -> Authenticator {
        Authenticator::new(&AuthConfig {
            users: vec![
                User {
                    name: "default".into(),
                    credential: Credential::Argon2Hash(hash_password("correct horse").unwrap()),
                },
                User {
                    name: "app".into(),
                    credential: Credential::Password(SecretString::from("battery staple 123")),
                },
            ],
            failure_delay: Duration::from_millis(100),
            max_failure_delay: Duration::from_millis(1000),
        })
    }

    #[tokio::test]
    async fn verifies_hashes_and_plain_passwords() {
        let auth = authenticator();
        assert!(auth.verify("default", b"correct horse").await);
        assert!(
            auth.verify("default", b"correct horse").await,
            "cached digest path"
        );
        assert!(!auth.verify("default", b"wrong").await);
        assert!(auth.verify("app", b"battery staple 123").await);
        assert!(!auth.verify("app", b"correct horse").await);
        assert!(!auth.verify("nobody", b"correct horse").await);
    }

    #[tokio::test]
    async fn unknown_users_cost_an_argon2_verification() {
        let auth = authenticator();
        let runs = || auth.argon2_runs.load(std::sync::atomic::Ordering::Relaxed);
        assert!(!auth.verify("default", b"wrong").await);
        assert_eq!(runs(), 1, "a wrong password for an argon2 user");
        assert!(!auth.verify("nobody", b"wrong").await);
        assert_eq!(runs(), 2, "an unknown user pays the same argon2 work");
        assert!(!auth.verify("nobody", b"correct horse").await);
        assert_eq!(runs(), 3, "a decoy verification never logs anyone in");
        assert!(!auth.verify("app", b"wrong").await);
        assert_eq!(
            runs(),
            4,
            "a plain-password user's wrong password pays it too, or timing tells such users from unknown names"
        );
        assert!(auth.verify("app", b"battery staple 123").await);
        assert_eq!(runs(), 4, "a right plain password needs no argon2");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn argon2_verifications_are_bounded() {
        let auth = Arc::new(authenticator());
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let auth = auth.clone();
            tasks.push(tokio::spawn(async move {
                auth.verify("default", b"wrong").await
            }));
        }
        let mut peak = 0;
        while !tasks.iter().all(|t| t.is_finished()) {
            peak = peak.max(auth.argon2_in_progress());
            tokio::task::yield_now().await;
        }
        for t in tasks {
            assert!(!t.await.unwrap());
        }
        assert!(peak >= 1 && peak <= argon2_parallelism(), "peak {peak}");
    }

    #[test]
    fn failure_delay_grows_per_address_and_resets() {
        let auth = authenticator();
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let delays: Vec<_> = (0..6)
            .map(|_| auth.record_failure(Some(a)).as_millis())
            .collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(auth.record_failure(Some(b)).as_millis(), 100);
        auth.record_success(Some(a));
        assert_eq!(auth.record_failure(Some(a)).as_millis(), 100);
    }
}
