//! The stored format, and the only code that knows its layout:
//! `magic(3) | version(1) | key id(4) | nonce(12) | ciphertext | tag(16)`.
//!
//! Decoding is strict and total: any input yields either a parsed envelope or
//! a typed [`OpenError`], never a panic.

use bytes::BytesMut;
use zeroize::Zeroize as _;

use crate::keys::KeyId;

/// First bytes of every envelope. 0xF5 never occurs in UTF-8, so no text
/// value can start with it; together with a known version byte, 32 bits of a
/// binary value would have to match by chance.
pub const MAGIC: [u8; 3] = [0xF5, 0xEA, 0x1C];
pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
/// magic | version | key id.
pub const HEADER_LEN: usize = MAGIC.len() + 1 + KeyId::LEN;
/// Where the ciphertext starts.
pub const CIPHERTEXT_OFFSET: usize = HEADER_LEN + NONCE_LEN;
/// Bytes an envelope adds to its plaintext (36).
pub const OVERHEAD: usize = CIPHERTEXT_OFFSET + TAG_LEN;
/// Longest plaintext either AEAD accepts (GCM: 2^39 - 256 bits).
pub const MAX_PLAINTEXT_LEN: u64 = (1 << 36) - 32;

/// The version byte names the format and the AEAD, so a reader never guesses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Randomized AES-256-GCM, random 96-bit nonce: values.
    Gcm = 0x01,
    /// Deterministic AES-256-GCM-SIV, nonce derived from the plaintext:
    /// set and sorted-set members.
    GcmSiv = 0x02,
}

impl Version {
    pub fn from_byte(byte: u8) -> Option<Version> {
        match byte {
            0x01 => Some(Version::Gcm),
            0x02 => Some(Version::GcmSiv),
            _ => None,
        }
    }
}

/// Why an envelope did not open. None of these ever returns (part of) a
/// plaintext; all are "treat as a miss" to the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("not a sealcache envelope (magic bytes missing): plaintext written around the proxy?")]
    BadMagic,
    #[error("envelope truncated: {len} bytes, at least {OVERHEAD} needed")]
    TooShort { len: usize },
    #[error("unknown envelope version {0:#04x}: written by a newer sealcache?")]
    UnknownVersion(u8),
    #[error("envelope is a {found:?} envelope where a {expected:?} one was expected")]
    WrongMode { expected: Version, found: Version },
    #[error("envelope sealed under unknown key id {0}: wrong or lost master key")]
    UnknownKeyId(KeyId),
    #[error(
        "envelope failed authentication: tampered with, truncated, or moved to another key, \
         field or namespace"
    )]
    BadTag,
    #[error("member envelope authenticates but its nonce is not the derived one")]
    NonCanonical,
    #[error("key, field or namespace longer than 4 GiB cannot be encoded")]
    ContextTooLong,
}

/// Why a value could not be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("value of {len} bytes exceeds the AES-GCM limit of {MAX_PLAINTEXT_LEN} bytes")]
    TooLong { len: usize },
    #[error("key, field or namespace longer than 4 GiB cannot be encoded")]
    ContextTooLong,
}

/// True when `bytes` starts like an envelope this version of sealcache knows:
/// magic and a known version byte. Does not authenticate anything.
pub fn is_envelope(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
        && bytes
            .get(MAGIC.len())
            .is_some_and(|&v| Version::from_byte(v).is_some())
}

/// The header bytes of an envelope: also the first bytes of its associated data.
pub(crate) fn header(version: Version, key_id: KeyId) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..MAGIC.len()].copy_from_slice(&MAGIC);
    h[MAGIC.len()] = version as u8;
    h[MAGIC.len() + 1..].copy_from_slice(&key_id.to_bytes());
    h
}

/// Appends the envelope of `plaintext` to `out`: header and nonce, then the
/// plaintext, which `encrypt` turns into ciphertext in place (returning the
/// tag), then the tag. A value is thus sealed straight into the buffer that
/// carries it (a connection's output buffer, say). When `encrypt` fails, `out`
/// is wiped back to what it was.
pub(crate) fn seal_into(
    out: &mut BytesMut,
    header: &[u8; HEADER_LEN],
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
    encrypt: impl FnOnce(&mut [u8]) -> Option<[u8; TAG_LEN]>,
) -> Result<(), SealError> {
    let start = out.len();
    out.reserve(OVERHEAD + plaintext.len());
    out.extend_from_slice(header);
    out.extend_from_slice(nonce);
    let body = out.len();
    out.extend_from_slice(plaintext);
    match encrypt(&mut out[body..]) {
        Some(tag) => {
            out.extend_from_slice(&tag);
            Ok(())
        }
        None => {
            out[start..].zeroize();
            out.truncate(start);
            Err(SealError::TooLong {
                len: plaintext.len(),
            })
        }
    }
}

/// A syntactically valid envelope, borrowed from the input.
#[derive(Debug)]
pub(crate) struct Parsed<'a> {
    pub header: [u8; HEADER_LEN],
    pub version: Version,
    pub key_id: KeyId,
    pub nonce: [u8; NONCE_LEN],
    pub ciphertext: &'a [u8],
    pub tag: [u8; TAG_LEN],
}

/// Splits an envelope into its parts, checking in layout order so the error
/// names the first thing that is wrong.
pub(crate) fn parse(bytes: &[u8]) -> Result<Parsed<'_>, OpenError> {
    let len = bytes.len();
    let magic_len = MAGIC.len().min(len);
    if bytes[..magic_len] != MAGIC[..magic_len] {
        return Err(OpenError::BadMagic);
    }
    let Some((header, rest)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        // A header prefix: still say what is wrong with the part we have.
        if let Some(&v) = bytes.get(MAGIC.len()) {
            Version::from_byte(v).ok_or(OpenError::UnknownVersion(v))?;
        }
        return Err(OpenError::TooShort { len });
    };
    let version_byte = header[MAGIC.len()];
    let version =
        Version::from_byte(version_byte).ok_or(OpenError::UnknownVersion(version_byte))?;
    let mut id = [0u8; KeyId::LEN];
    id.copy_from_slice(&header[MAGIC.len() + 1..]);
    if len < OVERHEAD {
        return Err(OpenError::TooShort { len });
    }
    // Both splits succeed once len >= OVERHEAD; the `else`s keep this total.
    let Some((nonce, body)) = rest.split_first_chunk::<NONCE_LEN>() else {
        return Err(OpenError::TooShort { len });
    };
    let Some((ciphertext, tag)) = body.split_last_chunk::<TAG_LEN>() else {
        return Err(OpenError::TooShort { len });
    };
    Ok(Parsed {
        header: *header,
        version,
        key_id: KeyId::from_bytes(id),
        nonce: *nonce,
        ciphertext,
        tag: *tag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn seal_into_appends_and_a_failed_seal_leaves_the_buffer_as_it_was() {
        let h = header(Version::Gcm, KeyId::from_bytes([1, 2, 3, 4]));
        let mut out = BytesMut::from(&b"before"[..]);
        seal_into(&mut out, &h, &[7; NONCE_LEN], b"secret", |body| {
            body.reverse();
            Some([9; TAG_LEN])
        })
        .unwrap();
        assert_eq!(&out[..6], b"before");
        let parsed = parse(&out[6..]).unwrap();
        assert_eq!(parsed.ciphertext, b"terces");
        assert_eq!(parsed.tag, [9; TAG_LEN]);

        let len = out.len();
        let mut seen = Vec::new();
        let failed = seal_into(&mut out, &h, &[7; NONCE_LEN], b"secret", |body| {
            seen.extend_from_slice(body);
            None
        });
        assert!(failed.is_err());
        assert_eq!(seen, b"secret", "the plaintext was in place for the cipher");
        assert_eq!(out.len(), len);
        assert!(!out.windows(6).any(|w| w == b"secret"));
    }

    fn valid(ct_len: usize) -> Vec<u8> {
        let mut v = header(Version::Gcm, KeyId::from_bytes([1, 2, 3, 4])).to_vec();
        v.extend_from_slice(&[0xAA; NONCE_LEN]);
        v.extend(std::iter::repeat_n(0xBB, ct_len));
        v.extend_from_slice(&[0xCC; TAG_LEN]);
        v
    }

    #[test]
    fn layout_constants() {
        assert_eq!(HEADER_LEN, 8);
        assert_eq!(CIPHERTEXT_OFFSET, 20);
        assert_eq!(OVERHEAD, 36);
    }

    #[test]
    fn parses_parts_at_documented_offsets() {
        let v = valid(5);
        let p = parse(&v).unwrap();
        assert_eq!(p.version, Version::Gcm);
        assert_eq!(p.key_id, KeyId::from_bytes([1, 2, 3, 4]));
        assert_eq!(p.nonce, [0xAA; 12]);
        assert_eq!(p.ciphertext, &[0xBB; 5]);
        assert_eq!(p.tag, [0xCC; 16]);
        assert_eq!(&p.header[..], &v[..8]);
        assert!(parse(&valid(0)).unwrap().ciphertext.is_empty());
    }

    #[test]
    fn errors_name_the_first_problem() {
        assert_eq!(parse(b"").unwrap_err(), OpenError::TooShort { len: 0 });
        assert_eq!(
            parse(&MAGIC[..2]).unwrap_err(),
            OpenError::TooShort { len: 2 }
        );
        assert_eq!(parse(b"hello").unwrap_err(), OpenError::BadMagic);
        assert_eq!(parse(b"\xF5").unwrap_err(), OpenError::TooShort { len: 1 });
        assert_eq!(
            parse(b"\xF5\xEA\x1C\x07").unwrap_err(),
            OpenError::UnknownVersion(7)
        );
        let v = valid(3);
        for cut in 0..OVERHEAD {
            assert_eq!(
                parse(&v[..cut]).unwrap_err(),
                OpenError::TooShort { len: cut }
            );
        }
        let mut v = valid(0);
        v[3] = 0x00;
        assert_eq!(parse(&v).unwrap_err(), OpenError::UnknownVersion(0));
    }

    #[test]
    fn is_envelope_checks_magic_and_version() {
        assert!(is_envelope(&valid(0)));
        assert!(is_envelope(&header(
            Version::GcmSiv,
            KeyId::from_bytes([0; 4])
        )));
        assert!(!is_envelope(b""));
        assert!(!is_envelope(&MAGIC));
        assert!(!is_envelope(b"\xF5\xEA\x1C\x09"));
        assert!(!is_envelope(b"plain value"));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = parse(&bytes);
            let _ = is_envelope(&bytes);
        }

        #[test]
        fn parse_never_panics_after_magic(tail in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut bytes = MAGIC.to_vec();
            bytes.extend(tail);
            if let Ok(p) = parse(&bytes) {
                prop_assert_eq!(p.ciphertext.len() + OVERHEAD, bytes.len());
            }
        }
    }
}
