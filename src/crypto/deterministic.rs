//! Deterministic AES-256-GCM-SIV for set and sorted-set members: the nonce is
//! `HMAC-SHA256(member nonce key, associated data || plaintext)[..12]`, so
//! equal members in one namespace seal to equal bytes and nothing else leaks.
//!
//! GCM-SIV stays secure when a (nonce, message) pair repeats, which is exactly
//! what deterministic sealing does; plain GCM would leak the XOR of
//! plaintexts and lose authenticity on any other repeated nonce.

use aes_gcm_siv::aead::AeadInPlace as _;
use aes_gcm_siv::{Aes256GcmSiv, KeyInit as _};
use bytes::BytesMut;
use ring::hmac;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroize as _;

use super::envelope::{self, HEADER_LEN, NONCE_LEN, OpenError, Parsed, SealError};
use crate::keys::DataKeys;

/// The expanded keys of one data key for member envelopes.
pub(crate) struct MemberCipher {
    aead: Aes256GcmSiv,
    nonce_key: hmac::Key,
}

impl MemberCipher {
    pub(crate) fn new(keys: &DataKeys) -> MemberCipher {
        MemberCipher {
            aead: Aes256GcmSiv::new(keys.member_key().expose().into()),
            nonce_key: hmac::Key::new(hmac::HMAC_SHA256, keys.member_nonce_key().expose()),
        }
    }

    /// The synthetic nonce. `ad` is self-delimiting (fixed header, then
    /// length-prefixed parts), so `ad || plaintext` is unambiguous.
    pub(crate) fn nonce(&self, ad: &[u8], plaintext: &[u8]) -> [u8; NONCE_LEN] {
        let mut mac = hmac::Context::with_key(&self.nonce_key);
        mac.update(ad);
        mac.update(plaintext);
        let tag = mac.sign();
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&tag.as_ref()[..NONCE_LEN]);
        nonce
    }

    /// Appends the envelope of `plaintext` to `out`; on failure `out` is as it was.
    pub(crate) fn seal_into(
        &self,
        header: &[u8; HEADER_LEN],
        ad: &[u8],
        plaintext: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), SealError> {
        self.seal_with_nonce(header, ad, &self.nonce(ad, plaintext), plaintext, out)
    }

    /// Seals with an arbitrary nonce: only [`Self::seal_into`] and tests (which
    /// build non-canonical envelopes on purpose) call this.
    pub(crate) fn seal_with_nonce(
        &self,
        header: &[u8; HEADER_LEN],
        ad: &[u8],
        nonce: &[u8; NONCE_LEN],
        plaintext: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), SealError> {
        envelope::seal_into(out, header, nonce, plaintext, |body| {
            let tag = self
                .aead
                .encrypt_in_place_detached(nonce.into(), ad, body)
                .ok()?;
            Some(tag.into())
        })
    }

    #[cfg(test)]
    pub(crate) fn open(&self, parsed: &Parsed<'_>, ad: &[u8]) -> Result<Vec<u8>, OpenError> {
        let mut buf = parsed.ciphertext.to_vec();
        self.open_in_place(parsed, ad, &mut buf)?;
        Ok(buf)
    }

    /// Like [`Self::open`], appending the plaintext to `out` (left as it was
    /// when the envelope does not open).
    pub(crate) fn open_into(
        &self,
        parsed: &Parsed<'_>,
        ad: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), OpenError> {
        let start = out.len();
        out.extend_from_slice(parsed.ciphertext);
        let opened = self.open_in_place(parsed, ad, &mut out[start..]);
        if opened.is_err() {
            out.truncate(start);
        }
        opened
    }

    /// Decrypts `buf` (the ciphertext) in place; on failure it is wiped.
    fn open_in_place(
        &self,
        parsed: &Parsed<'_>,
        ad: &[u8],
        buf: &mut [u8],
    ) -> Result<(), OpenError> {
        if self
            .aead
            .decrypt_in_place_detached((&parsed.nonce).into(), ad, buf, (&parsed.tag).into())
            .is_err()
        {
            // SIV decrypts before it can verify: wipe the unauthenticated bytes.
            buf.zeroize();
            return Err(OpenError::BadTag);
        }
        // Only a key holder can produce an envelope that authenticates, but one
        // with a non-derived nonce would silently break member equality
        // (SISMEMBER would never find it): refuse it.
        let expected = self.nonce(ad, buf);
        if !bool::from(expected.ct_eq(&parsed.nonce)) {
            buf.zeroize();
            return Err(OpenError::NonCanonical);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::MasterKey;

    fn seal(c: &MemberCipher, h: &[u8; HEADER_LEN], ad: &[u8], pt: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        c.seal_into(h, ad, pt, &mut out).unwrap();
        out
    }

    fn cipher() -> (MemberCipher, [u8; HEADER_LEN]) {
        let keys = DataKeys::from_master(&MasterKey::from_bytes(&[5; 32]));
        (
            MemberCipher::new(&keys),
            envelope::header(envelope::Version::GcmSiv, keys.id()),
        )
    }

    #[test]
    fn equal_inputs_equal_outputs_and_nothing_else() {
        let (c, h) = cipher();
        let a = seal(&c, &h, b"ad", b"alice");
        assert_eq!(a, seal(&c, &h, b"ad", b"alice"));
        assert_ne!(a, seal(&c, &h, b"ad", b"alicf"));
        assert_ne!(a, seal(&c, &h, b"AD", b"alice"));
        assert_eq!(
            c.open(&envelope::parse(&a).unwrap(), b"ad").unwrap(),
            b"alice"
        );
    }

    #[test]
    fn non_canonical_nonce_is_refused() {
        let (c, h) = cipher();
        let mut env = BytesMut::new();
        c.seal_with_nonce(&h, b"ad", &[0; NONCE_LEN], b"bob", &mut env)
            .unwrap();
        assert_eq!(
            c.open(&envelope::parse(&env).unwrap(), b"ad"),
            Err(OpenError::NonCanonical)
        );
    }
}
