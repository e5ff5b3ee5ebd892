//! Key material: the master key and where it comes from, the per-purpose data
//! keys derived from it (HKDF-SHA256), key ids, and the keyring that maps a key
//! id found in an envelope to the keys that open it.
//!
//! Invariants: every key byte lives in a zeroizing buffer, no `Debug` or error
//! message ever contains key bytes, and a key id is derived from (never equal
//! to) key material, so it is safe to store in every envelope.

mod data;
mod keyring;
mod master;

pub use data::{DataKey, DataKeys};
pub use keyring::KeyRing;
pub use master::{KeyError, KeyOrigin, MASTER_KEY_ENV, MasterKey};

use std::fmt;

/// The 4-byte identifier of a set of data keys, written into every envelope so
/// a reader knows which keys open it (and, after rotation, which are old).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; KeyId::LEN]);

impl KeyId {
    /// Size of a key id in an envelope.
    pub const LEN: usize = 4;

    pub const fn from_bytes(bytes: [u8; KeyId::LEN]) -> KeyId {
        KeyId(bytes)
    }

    pub const fn to_bytes(self) -> [u8; KeyId::LEN] {
        self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_id_prints_as_hex() {
        let id = KeyId::from_bytes([0x01, 0xab, 0x00, 0xff]);
        assert_eq!(id.to_string(), "01ab00ff");
        assert_eq!(format!("{id:?}"), "KeyId(01ab00ff)");
    }
}
