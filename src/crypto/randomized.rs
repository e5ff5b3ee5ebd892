//! Randomized AES-256-GCM for values: a fresh random 96-bit nonce per seal.
//!
//! The AEAD is ring's: same algorithm and bytes as RustCrypto's `aes-gcm`
//! (a test checks), about four times faster here (docs/envelope.md).

use bytes::BytesMut;
use rand::RngCore as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};
use zeroize::Zeroize as _;

use super::envelope::{self, HEADER_LEN, NONCE_LEN, OpenError, Parsed, SealError};
use crate::keys::DataKey;

/// A nonce from the thread-local CSPRNG (ChaCha12, seeded and periodically
/// reseeded from the OS): a getrandom syscall per value would cost more than
/// encrypting 1 KiB.
pub(crate) fn random_nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    nonce
}

/// The expanded AES-256-GCM key of one data key.
pub(crate) struct ValueCipher(LessSafeKey);

impl ValueCipher {
    pub(crate) fn new(key: &DataKey) -> ValueCipher {
        // Infallible: the key is exactly 32 bytes, the length AES-256 wants.
        let unbound = UnboundKey::new(&AES_256_GCM, key.expose())
            .unwrap_or_else(|_| unreachable!("AES-256 key is 32 bytes"));
        ValueCipher(LessSafeKey::new(unbound))
    }

    /// Appends the envelope of `plaintext` to `out`, sealed with `nonce`,
    /// which the caller guarantees is fresh. On failure `out` is as it was.
    pub(crate) fn seal_into(
        &self,
        header: &[u8; HEADER_LEN],
        ad: &[u8],
        nonce: &[u8; NONCE_LEN],
        plaintext: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), SealError> {
        envelope::seal_into(out, header, nonce, plaintext, |body| {
            let tag = self
                .0
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(*nonce),
                    Aad::from(ad),
                    body,
                )
                .ok()?;
            tag.as_ref().try_into().ok()
        })
    }

    /// Decrypts straight onto the end of `out` (one copy, no allocation of
    /// its own); on failure `out` is wiped back to its length before the call.
    pub(crate) fn open_into(
        &self,
        parsed: &Parsed<'_>,
        ad: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), OpenError> {
        let start = out.len();
        out.extend_from_slice(parsed.ciphertext);
        let opened = self.0.open_in_place_separate_tag(
            Nonce::assume_unique_for_key(parsed.nonce),
            Aad::from(ad),
            Tag::from(parsed.tag),
            &mut out[start..],
            0..,
        );
        if opened.is_err() {
            out[start..].zeroize();
            out.truncate(start);
            return Err(OpenError::BadTag);
        }
        Ok(())
    }

    pub(crate) fn open(&self, parsed: &Parsed<'_>, ad: &[u8]) -> Result<Vec<u8>, OpenError> {
        let mut buf = parsed.ciphertext.to_vec();
        let opened = self.0.open_in_place_separate_tag(
            Nonce::assume_unique_for_key(parsed.nonce),
            Aad::from(ad),
            Tag::from(parsed.tag),
            &mut buf,
            0..,
        );
        if opened.is_err() {
            // ring already zeroes on failure; this keeps that true whatever
            // ring does in a later version.
            buf.zeroize();
            return Err(OpenError::BadTag);
        }
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{DataKeys, MasterKey};
    use aes_gcm::aead::{Aead as _, Payload};
    use aes_gcm::{Aes256Gcm, KeyInit as _};

    #[test]
    fn nonces_are_fresh() {
        let a: Vec<_> = (0..1000).map(|_| random_nonce()).collect();
        let mut b = a.clone();
        b.sort();
        b.dedup();
        assert_eq!(a.len(), b.len());
    }

    /// ring and RustCrypto aes-gcm agree byte for byte, so the format does
    /// not depend on which library seals it.
    #[test]
    fn ring_matches_rustcrypto_aes_gcm() {
        let keys = DataKeys::from_master(&MasterKey::from_bytes(&[3; 32]));
        let cipher = ValueCipher::new(keys.value_key());
        let rc = Aes256Gcm::new(keys.value_key().expose().into());
        let header = envelope::header(envelope::Version::Gcm, keys.id());
        for len in [0usize, 1, 15, 16, 17, 100, 1024, 4099] {
            let pt: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let ad = b"associated data";
            let nonce = [len as u8; NONCE_LEN];
            let mut env = BytesMut::new();
            cipher
                .seal_into(&header, ad, &nonce, &pt, &mut env)
                .unwrap();
            let theirs = rc
                .encrypt((&nonce).into(), Payload { msg: &pt, aad: ad })
                .unwrap();
            assert_eq!(
                &env[envelope::CIPHERTEXT_OFFSET..],
                &theirs[..],
                "len {len}"
            );
            let parsed = envelope::parse(&env).unwrap();
            assert_eq!(cipher.open(&parsed, ad).unwrap(), pt);
        }
    }
}
