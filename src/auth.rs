//! Client authentication: users from configuration (argon2id hashes or
//! passwords from the environment), constant-time comparison, and a growing
//! delay after failures per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::Sha256;
use subtle::ConstantTimeEq;
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
        };
        for user in &config.users {
            let stored = match &user.credential {
                Credential::Argon2Hash(phc) => Stored::Argon2(phc.clone()),
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
    /// argon2 verification runs off the async runtime.
    pub async fn verify(&self, user: &str, password: &[u8]) -> bool {
        let given = self.digest(user, password);
        match self.users.get(user) {
            None => {
                // Same work as a wrong password for a known user.
                let _ = given.ct_eq(&[0u8; 32]);
                false
            }
            Some(Stored::Digest(expected)) => bool::from(given.ct_eq(expected)),
            Some(Stored::Argon2(phc)) => {
                if let Some(known) = self.verified.lock().expect("auth lock").get(user)
                    && bool::from(given.ct_eq(known))
                {
                    return true;
                }
                let phc = phc.clone();
                let password = Zeroizing::new(password.to_vec());
                let ok = tokio::task::spawn_blocking(move || {
                    PasswordHash::new(&phc)
                        .map(|hash| Argon2::default().verify_password(&password, &hash).is_ok())
                        .unwrap_or(false)
                })
                .await
                .unwrap_or(false);
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
