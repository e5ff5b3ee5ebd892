//! The test vectors of docs/envelope.md: fixed master key, nonce and context →
//! exact bytes. If a test here fails, the stored format changed: old data
//! would no longer open. The same values were reproduced independently with
//! pyca/cryptography (the script is in docs/envelope.md).

use super::context::{MemberContext, ValueContext};
use super::envelope::Version;
use super::{OpenError, Sealer};
use crate::keys::{DataKeys, KeyRing, MasterKey};

/// Master key: bytes 00 01 02 … 1f (base64 `AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=`).
const MASTER_KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_ID: &str = "ca828b58";
const VALUE_KEY: &str = "6850c44322fc16bed8dc5a827333786fda394180a5f6faaa24fedcedfa1b4cf0";
const MEMBER_KEY: &str = "24fbc8e0ef2012eafe2260d2fd796f2a5ef4595eb7c4c17d6a9e565f52fe030f";
const MEMBER_NONCE_KEY: &str = "fd4e1d413a6d1be6424d78c74eb5d2b853cb4b2c1f371cc68cee664704144845";

/// The nonce injected into every randomized vector: a0 a1 … ab.
const NONCE: [u8; 12] = [
    0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab,
];

/// (context, plaintext, associated data, envelope) for randomized values.
fn value_vectors() -> [(
    ValueContext<'static>,
    &'static [u8],
    &'static str,
    &'static str,
); 3] {
    [
        (
            ValueContext::string(b"default", b"user:1"),
            b"hello world",
            "f5ea1c01ca828b580000000f7365616c63616368652f76616c7565010000000764656661756c74\
             00000006757365723a31",
            "f5ea1c01ca828b58a0a1a2a3a4a5a6a7a8a9aaab51a160580a41f86fbfbbf99e7dd9fe28dedfa6\
             ab104c64759ab192",
        ),
        (
            ValueContext::hash(b"default", b"user:1", b"email"),
            b"a@example.com",
            "f5ea1c01ca828b580000000f7365616c63616368652f76616c7565020000000764656661756c74\
             00000006757365723a3100000005656d61696c",
            "f5ea1c01ca828b58a0a1a2a3a4a5a6a7a8a9aaab5884694c040cff6ca8f9fe1b04bec3a00c9ee5\
             b389c64566aff2afc56d",
        ),
        (
            ValueContext::string(b"default", b"empty"),
            b"",
            "f5ea1c01ca828b580000000f7365616c63616368652f76616c7565010000000764656661756c74\
             00000005656d707479",
            "f5ea1c01ca828b58a0a1a2a3a4a5a6a7a8a9aaab78de936a51685dc8535d0f27810951a3",
        ),
    ]
}

/// Set member "alice" in namespace "default".
const MEMBER_AD: &str =
    "f5ea1c02ca828b58000000107365616c63616368652f6d656d626572110000000764656661756c74";
const MEMBER_NONCE: &str = "dde364862a8e7cf0625983bd";
const MEMBER_ENVELOPE: &str =
    "f5ea1c02ca828b58dde364862a8e7cf0625983bd78e760d11c214aa7910bf13b188e33727186a0993f";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn sealer() -> Sealer {
    Sealer::new(&KeyRing::from_master(
        &MasterKey::from_base64(MASTER_KEY_B64).unwrap(),
    ))
}

#[test]
fn master_key_is_bytes_0_to_31() {
    let key = MasterKey::from_base64(MASTER_KEY_B64).unwrap();
    assert_eq!(key.expose(), &std::array::from_fn(|i| i as u8));
}

#[test]
fn derived_keys() {
    let keys = DataKeys::from_master(&MasterKey::from_base64(MASTER_KEY_B64).unwrap());
    assert_eq!(keys.id().to_string(), KEY_ID);
    assert_eq!(hex(keys.value_key().expose()), VALUE_KEY);
    assert_eq!(hex(keys.member_key().expose()), MEMBER_KEY);
    assert_eq!(hex(keys.member_nonce_key().expose()), MEMBER_NONCE_KEY);
}

#[test]
fn value_vectors_seal_to_the_documented_bytes() {
    let s = sealer();
    assert_eq!(s.primary_key_id().to_string(), KEY_ID);
    for (ctx, plaintext, ad, envelope) in value_vectors() {
        let header = super::envelope::header(Version::Gcm, s.primary_key_id());
        assert_eq!(hex(ctx.associated_data(&header).unwrap().as_slice()), ad);
        let mut sealed = bytes::BytesMut::new();
        s.seal_with_nonce(&ctx, plaintext, &NONCE, &mut sealed)
            .unwrap();
        assert_eq!(hex(&sealed), envelope, "{ctx:?}");
    }
}

#[test]
fn documented_value_bytes_open() {
    let s = sealer();
    for (ctx, plaintext, _, envelope) in value_vectors() {
        assert_eq!(s.open(&ctx, &unhex(envelope)).unwrap(), plaintext);
    }
    // The hash vector, read as another field of the same hash, does not open.
    let (_, _, _, hash_envelope) = value_vectors()[1];
    assert_eq!(
        s.open(
            &ValueContext::hash(b"default", b"user:1", b"name"),
            &unhex(hash_envelope)
        ),
        Err(OpenError::BadTag)
    );
}

#[test]
fn member_vector() {
    let s = sealer();
    let ctx = MemberContext::set_member(b"default");
    let header = super::envelope::header(Version::GcmSiv, s.primary_key_id());
    let ad = ctx.associated_data(&header).unwrap();
    assert_eq!(hex(ad.as_slice()), MEMBER_AD);
    let sealed = s.seal_member(&ctx, b"alice").unwrap();
    assert_eq!(hex(&sealed[8..20]), MEMBER_NONCE);
    assert_eq!(hex(&sealed), MEMBER_ENVELOPE);
    assert_eq!(
        s.open_member(&ctx, &unhex(MEMBER_ENVELOPE)).unwrap(),
        b"alice"
    );
}
