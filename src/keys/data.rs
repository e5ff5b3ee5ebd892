//! Data keys: the per-purpose subkeys derived from one root key with
//! HKDF-SHA256, and the key id derived the same way.
//!
//! One subkey per purpose so no key is ever used by two algorithms: a key that
//! both encrypts with AES-GCM and keys an HMAC would void both security proofs.

use std::fmt;

use hkdf::Hkdf;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

use super::{KeyId, MasterKey};

/// HKDF `info` strings (docs/envelope.md). Changing one changes every key:
/// they are part of the stored format.
pub(crate) const INFO_KEY_ID: &[u8] = b"sealcache/v1/key-id";
pub(crate) const INFO_VALUE_KEY: &[u8] = b"sealcache/v1/value-key/aes-256-gcm";
pub(crate) const INFO_MEMBER_KEY: &[u8] = b"sealcache/v1/member-key/aes-256-gcm-siv";
pub(crate) const INFO_MEMBER_NONCE_KEY: &[u8] = b"sealcache/v1/member-nonce-key/hmac-sha256";

/// One 256-bit subkey. Boxed and wiped on drop; `Debug` is redacted.
pub struct DataKey(SecretBox<[u8; DataKey::LEN]>);

impl DataKey {
    pub const LEN: usize = 32;

    pub(crate) fn expose(&self) -> &[u8; DataKey::LEN] {
        self.0.expose_secret()
    }

    fn expand(hkdf: &Hkdf<Sha256>, info: &[u8]) -> DataKey {
        DataKey(SecretBox::init_with_mut(|k: &mut [u8; DataKey::LEN]| {
            // Infallible: HKDF-SHA256 can expand up to 255 * 32 bytes.
            let _ = hkdf.expand(info, k);
        }))
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// The keys of one key id: randomized value encryption (AES-256-GCM),
/// deterministic member encryption (AES-256-GCM-SIV) and the key of the PRF
/// that derives deterministic nonces.
pub struct DataKeys {
    id: KeyId,
    value: DataKey,
    member: DataKey,
    member_nonce: DataKey,
}

impl DataKeys {
    /// Derives all keys, and the key id, from the master key. Today the master
    /// key is the one root key; with a keyset (later) each data-encryption key
    /// will be a root of its own.
    pub fn from_master(master: &MasterKey) -> DataKeys {
        let hkdf = root_hkdf(master.expose());
        DataKeys {
            id: derive_key_id(&hkdf),
            value: DataKey::expand(&hkdf, INFO_VALUE_KEY),
            member: DataKey::expand(&hkdf, INFO_MEMBER_KEY),
            member_nonce: DataKey::expand(&hkdf, INFO_MEMBER_NONCE_KEY),
        }
    }

    pub fn id(&self) -> KeyId {
        self.id
    }

    /// AES-256-GCM key for randomized value envelopes.
    pub fn value_key(&self) -> &DataKey {
        &self.value
    }

    /// AES-256-GCM-SIV key for deterministic member envelopes.
    pub fn member_key(&self) -> &DataKey {
        &self.member
    }

    /// HMAC-SHA256 key deriving the synthetic nonce of member envelopes.
    pub fn member_nonce_key(&self) -> &DataKey {
        &self.member_nonce
    }
}

impl fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKeys")
            .field("id", &self.id)
            .field("keys", &"<redacted>")
            .finish()
    }
}

/// HKDF-Extract with no salt: the root key is already uniformly random, so
/// RFC 5869 §3.1 allows the all-zero default salt.
fn root_hkdf(root: &[u8; 32]) -> Hkdf<Sha256> {
    Hkdf::<Sha256>::new(None, root)
}

/// A key id is a PRF output of the root key, so envelopes written under a
/// different master key are told apart ("unknown key id") without trial
/// decryption, and the id reveals nothing about the key.
fn derive_key_id(hkdf: &Hkdf<Sha256>) -> KeyId {
    let mut id = [0u8; KeyId::LEN];
    let _ = hkdf.expand(INFO_KEY_ID, &mut id);
    KeyId::from_bytes(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn counting_master() -> MasterKey {
        MasterKey::from_bytes(&std::array::from_fn(|i| i as u8))
    }

    #[test]
    fn every_purpose_gets_a_distinct_key() {
        let keys = DataKeys::from_master(&counting_master());
        let all = [
            keys.value_key().expose(),
            keys.member_key().expose(),
            keys.member_nonce_key().expose(),
        ];
        for (i, a) in all.iter().enumerate() {
            assert_ne!(
                *a,
                counting_master().expose(),
                "subkey equals the master key"
            );
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn different_masters_give_different_ids() {
        let a = DataKeys::from_master(&counting_master());
        let b = DataKeys::from_master(&MasterKey::from_bytes(&[0x42; 32]));
        assert_ne!(a.id(), b.id());
        assert_ne!(a.value_key().expose(), b.value_key().expose());
    }

    #[test]
    fn debug_is_redacted() {
        let keys = DataKeys::from_master(&counting_master());
        let printed = format!("{keys:?} {:?}", keys.value_key());
        assert!(printed.contains("<redacted>"), "{printed}");
        assert!(
            !printed.contains(&hex(&keys.value_key().expose()[..4])),
            "{printed}"
        );
    }
}
