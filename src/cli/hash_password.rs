//! `sealcache hash-password`: reads one password line from stdin and prints its
//! argon2id PHC string for `auth.users[].password_hash`.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHasher};
use zeroize::Zeroizing;

use crate::config::{self, Profile};

/// 128-bit salts, the size the PHC string format recommends.
const SALT_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("cannot read the password from stdin: {0}")]
    Read(std::io::Error),
    #[error("no password on stdin. Fix: printf '%s' \"$PASSWORD\" | sealcache hash-password")]
    Empty,
    #[error(
        "the password {0}; sealcache would refuse it for every profile. Fix: use a long random password, e.g. `openssl rand -base64 33`"
    )]
    Weak(String),
    #[error("cannot get random bytes for the salt: {0}")]
    Random(std::io::Error),
    #[error("hashing failed: {0}")]
    Hash(argon2::password_hash::Error),
}

pub fn run() -> ExitCode {
    match read_and_hash() {
        Ok(phc) => {
            println!("{phc}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(super::EXIT_FAILURE)
        }
    }
}

fn read_and_hash() -> Result<String, HashError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!(
            "reading the password from stdin (it is echoed; prefer: printf '%s' \"$PASSWORD\" | sealcache hash-password)"
        );
    }
    let mut line = Zeroizing::new(String::new());
    stdin.lock().read_line(&mut line).map_err(HashError::Read)?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(HashError::Empty);
    }
    // A hash hides the password from later checks, so the floor is applied here.
    config::password_strength(password, Profile::Development).map_err(HashError::Weak)?;
    if let Err(why) = config::password_strength(password, Profile::Production) {
        eprintln!("warning: the password {why} for the production profile");
    }
    hash_password(password)
}

/// argon2id with the argon2 crate's defaults (m=19456 KiB, t=2, p=1, OWASP's
/// recommendation) and a salt from the OS random number generator.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let mut salt = [0u8; SALT_LEN];
    super::init::fill_random(&mut salt).map_err(HashError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(HashError::Hash)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(HashError::Hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{PasswordHash, PasswordVerifier};

    #[test]
    fn hashes_verify_and_are_salted() {
        let a = hash_password("correct horse battery staple").unwrap();
        let b = hash_password("correct horse battery staple").unwrap();
        assert!(a.starts_with("$argon2id$v=19$"));
        assert_ne!(a, b, "each hash has its own salt");
        config::check_argon2_hash(&a).unwrap();
        let parsed = PasswordHash::new(&a).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery staple", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong", &parsed)
                .is_err()
        );
    }
}
