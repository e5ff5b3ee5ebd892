//! The [`Sealer`]: the API the proxy uses to seal and open values and
//! members, over a keyring of expanded ciphers, with per-key usage counts.

use std::fmt;

use bytes::BytesMut;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::context::{AdBuf, MemberContext, ValueContext};
use super::deterministic::MemberCipher;
use super::envelope::{self, MAX_PLAINTEXT_LEN, NONCE_LEN, OpenError, SealError, Version};
use super::randomized::{self, ValueCipher};
use crate::keys::{DataKeys, KeyId, KeyRing};

/// Randomized seals per data key after which sealcache warns. NIST SP 800-38D
/// §8.3 caps one key at 2^32 random-nonce encryptions; the count is per
/// process while every sidecar sharing the key spends the same budget, so
/// warn at a quarter of it.
pub const NONCE_WARN_THRESHOLD: u64 = 1 << 30;

/// How much one data key has been used by this process (for INFO/metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUsage {
    pub key_id: KeyId,
    pub primary: bool,
    /// Randomized (AES-256-GCM) seals: these spend the random-nonce budget.
    pub value_seals: u64,
    /// Deterministic (AES-256-GCM-SIV) member seals.
    pub member_seals: u64,
}

impl KeyUsage {
    /// True once the key has sealed [`NONCE_WARN_THRESHOLD`] values: rotate it.
    pub fn nonce_budget_warning(&self) -> bool {
        self.value_seals >= NONCE_WARN_THRESHOLD
    }
}

/// Seals and opens envelopes. Cheap to clone (one `Arc`); share one per
/// process so the usage counts cover every connection.
#[derive(Clone)]
pub struct Sealer {
    inner: Arc<Inner>,
}

struct Inner {
    /// Index of the primary key in `slots`.
    primary: usize,
    slots: Vec<KeySlot>,
}

/// The expanded ciphers of one key id and its counters.
struct KeySlot {
    id: KeyId,
    values: ValueCipher,
    members: MemberCipher,
    value_seals: AtomicU64,
    member_seals: AtomicU64,
}

impl KeySlot {
    fn new(keys: &DataKeys) -> KeySlot {
        KeySlot {
            id: keys.id(),
            values: ValueCipher::new(keys.value_key()),
            members: MemberCipher::new(keys),
            value_seals: AtomicU64::new(0),
            member_seals: AtomicU64::new(0),
        }
    }

    fn count_value_seal(&self) {
        let n = self.value_seals.fetch_add(1, Ordering::Relaxed) + 1;
        // Equality, not >=: exactly one thread sees this count, so the warning
        // is logged once without another flag.
        if n == NONCE_WARN_THRESHOLD {
            tracing::warn!(
                key.id = %self.id,
                key.value_seals = n,
                "data key {} has sealed {n} values with random nonces; NIST SP 800-38D allows \
                 2^32 per key across all sidecars: rotate the data key",
                self.id
            );
        }
    }
}

impl Sealer {
    /// Expands every key of the keyring. The keyring may be dropped afterwards
    /// (its raw key bytes are wiped).
    pub fn new(keyring: &KeyRing) -> Sealer {
        let slots: Vec<KeySlot> = keyring.iter().map(KeySlot::new).collect();
        let primary = slots
            .iter()
            .position(|s| s.id == keyring.primary_id())
            .unwrap_or(0);
        Sealer {
            inner: Arc::new(Inner { primary, slots }),
        }
    }

    /// Seals a value under the primary key with a fresh random nonce.
    pub fn seal(&self, ctx: &ValueContext<'_>, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut out = BytesMut::new();
        self.seal_into(ctx, plaintext, &mut out)?;
        Ok(out.into())
    }

    /// Like [`Self::seal`], appending the envelope to `out` (left as it was
    /// on failure): the proxy seals values straight into the upstream
    /// connection's output buffer.
    pub fn seal_into(
        &self,
        ctx: &ValueContext<'_>,
        plaintext: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), SealError> {
        self.seal_with_nonce(ctx, plaintext, &randomized::random_nonce(), out)
    }

    /// [`Self::seal_into`] with a chosen nonce, for test vectors only: reusing
    /// a nonce under one key breaks GCM.
    pub(crate) fn seal_with_nonce(
        &self,
        ctx: &ValueContext<'_>,
        plaintext: &[u8],
        nonce: &[u8; NONCE_LEN],
        out: &mut BytesMut,
    ) -> Result<(), SealError> {
        check_len(plaintext)?;
        let slot = self.primary();
        let header = envelope::header(Version::Gcm, slot.id);
        let mut ad = AdBuf::new();
        ctx.associated_data_into(&header, &mut ad)?;
        slot.values
            .seal_into(&header, ad.as_slice(), nonce, plaintext, out)?;
        slot.count_value_seal();
        Ok(())
    }

    /// Like [`Sealer::open`], appending the plaintext to `out` (which is left
    /// as it was when the envelope does not open).
    pub fn open_into(
        &self,
        ctx: &ValueContext<'_>,
        envelope: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), OpenError> {
        let parsed = envelope::parse(envelope)?;
        expect_version(Version::Gcm, parsed.version)?;
        let slot = self.slot(parsed.key_id)?;
        let mut ad = AdBuf::new();
        ctx.associated_data_into(&parsed.header, &mut ad)?;
        slot.values.open_into(&parsed, ad.as_slice(), out)
    }

    /// Opens a value envelope sealed for exactly this context.
    pub fn open(&self, ctx: &ValueContext<'_>, envelope: &[u8]) -> Result<Vec<u8>, OpenError> {
        let parsed = envelope::parse(envelope)?;
        expect_version(Version::Gcm, parsed.version)?;
        let slot = self.slot(parsed.key_id)?;
        let mut ad = AdBuf::new();
        ctx.associated_data_into(&parsed.header, &mut ad)?;
        slot.values.open(&parsed, ad.as_slice())
    }

    /// Seals a set/sorted-set member (or hash field name) deterministically:
    /// equal plaintexts in one namespace give equal envelopes.
    pub fn seal_member(
        &self,
        ctx: &MemberContext<'_>,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, SealError> {
        let mut out = BytesMut::new();
        self.seal_member_into(ctx, plaintext, &mut out)?;
        Ok(out.into())
    }

    /// Like [`Self::seal_member`], appending the envelope to `out` (left as
    /// it was on failure).
    pub fn seal_member_into(
        &self,
        ctx: &MemberContext<'_>,
        plaintext: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), SealError> {
        check_len(plaintext)?;
        let slot = self.primary();
        let header = envelope::header(Version::GcmSiv, slot.id);
        let mut ad = AdBuf::new();
        ctx.associated_data_into(&header, &mut ad)?;
        slot.members
            .seal_into(&header, ad.as_slice(), plaintext, out)?;
        slot.member_seals.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Opens a member envelope.
    pub fn open_member(
        &self,
        ctx: &MemberContext<'_>,
        envelope: &[u8],
    ) -> Result<Vec<u8>, OpenError> {
        let mut out = BytesMut::new();
        self.open_member_into(ctx, envelope, &mut out)?;
        Ok(out.into())
    }

    /// Like [`Self::open_member`], appending the member to `out` (left as it
    /// was when the envelope does not open).
    pub fn open_member_into(
        &self,
        ctx: &MemberContext<'_>,
        envelope: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), OpenError> {
        let parsed = envelope::parse(envelope)?;
        expect_version(Version::GcmSiv, parsed.version)?;
        let slot = self.slot(parsed.key_id)?;
        let mut ad = AdBuf::new();
        ctx.associated_data_into(&parsed.header, &mut ad)?;
        slot.members.open_into(&parsed, ad.as_slice(), out)
    }

    /// The key id new envelopes are sealed under.
    pub fn primary_key_id(&self) -> KeyId {
        self.primary().id
    }

    /// Usage of every key, primary first.
    pub fn encryption_counts(&self) -> Vec<KeyUsage> {
        let primary = self.primary_key_id();
        let mut usage: Vec<KeyUsage> = self
            .inner
            .slots
            .iter()
            .map(|s| KeyUsage {
                key_id: s.id,
                primary: s.id == primary,
                value_seals: s.value_seals.load(Ordering::Relaxed),
                member_seals: s.member_seals.load(Ordering::Relaxed),
            })
            .collect();
        usage.sort_by_key(|u| !u.primary);
        usage
    }

    fn primary(&self) -> &KeySlot {
        &self.inner.slots[self.inner.primary]
    }

    fn slot(&self, id: KeyId) -> Result<&KeySlot, OpenError> {
        self.inner
            .slots
            .iter()
            .find(|s| s.id == id)
            .ok_or(OpenError::UnknownKeyId(id))
    }

    #[cfg(test)]
    pub(crate) fn set_value_seals(&self, n: u64) {
        self.primary().value_seals.store(n, Ordering::Relaxed);
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("primary", &self.primary_key_id())
            .field(
                "key_ids",
                &self.inner.slots.iter().map(|s| s.id).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn check_len(plaintext: &[u8]) -> Result<(), SealError> {
    if plaintext.len() as u64 > MAX_PLAINTEXT_LEN {
        return Err(SealError::TooLong {
            len: plaintext.len(),
        });
    }
    Ok(())
}

fn expect_version(expected: Version, found: Version) -> Result<(), OpenError> {
    if expected != found {
        return Err(OpenError::WrongMode { expected, found });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::envelope::{CIPHERTEXT_OFFSET, HEADER_LEN, OVERHEAD, TAG_LEN};
    use crate::keys::MasterKey;
    use proptest::prelude::*;

    const NS: &[u8] = b"default";

    fn sealer_for(byte: u8) -> Sealer {
        Sealer::new(&KeyRing::from_master(&MasterKey::from_bytes(&[byte; 32])))
    }

    fn sealer() -> Sealer {
        sealer_for(0x11)
    }

    #[test]
    fn round_trip_every_kind() {
        let s = sealer();
        let contexts = [
            ValueContext::string(NS, b"k"),
            ValueContext::hash(NS, b"k", b"f"),
            ValueContext::list(NS, b"k"),
            ValueContext::stream(NS, b"k", b"f"),
            ValueContext::pubsub(NS, b"chan"),
        ];
        for ctx in &contexts {
            for pt in [
                &b""[..],
                b"x",
                &[0u8; 1000][..],
                &(0..=255u8).collect::<Vec<_>>(),
            ] {
                let env = s.seal(ctx, pt).unwrap();
                assert_eq!(env.len(), pt.len() + OVERHEAD);
                assert!(envelope::is_envelope(&env));
                assert_eq!(s.open(ctx, &env).unwrap(), pt);
            }
        }
    }

    #[test]
    fn randomized_seals_differ() {
        let s = sealer();
        let ctx = ValueContext::string(NS, b"k");
        assert_ne!(
            s.seal(&ctx, b"same").unwrap(),
            s.seal(&ctx, b"same").unwrap()
        );
    }

    #[test]
    fn moved_values_do_not_open() {
        let s = sealer();
        let home = ValueContext::hash(NS, b"user:1", b"email");
        let env = s.seal(&home, b"a@example.com").unwrap();
        let elsewhere = [
            ValueContext::hash(NS, b"user:2", b"email"),
            ValueContext::hash(NS, b"user:1", b"name"),
            ValueContext::hash(b"other", b"user:1", b"email"),
            ValueContext::string(NS, b"user:1"),
            ValueContext::stream(NS, b"user:1", b"email"),
        ];
        for ctx in &elsewhere {
            assert_eq!(s.open(ctx, &env), Err(OpenError::BadTag), "{ctx:?}");
        }
        let env = s.seal(&ValueContext::pubsub(NS, b"news"), b"hi").unwrap();
        assert_eq!(
            s.open(&ValueContext::pubsub(NS, b"alerts"), &env),
            Err(OpenError::BadTag)
        );
    }

    #[test]
    fn other_master_key_is_an_unknown_key_id() {
        let (a, b) = (sealer_for(1), sealer_for(2));
        let ctx = ValueContext::string(NS, b"k");
        let env = a.seal(&ctx, b"v").unwrap();
        assert_eq!(
            b.open(&ctx, &env),
            Err(OpenError::UnknownKeyId(a.primary_key_id()))
        );
        let member = a.seal_member(&MemberContext::set_member(NS), b"m").unwrap();
        assert!(matches!(
            b.open_member(&MemberContext::set_member(NS), &member),
            Err(OpenError::UnknownKeyId(_))
        ));
    }

    #[test]
    fn old_keys_still_open_after_the_primary_moves() {
        let (old, new) = (
            MasterKey::from_bytes(&[1; 32]),
            MasterKey::from_bytes(&[2; 32]),
        );
        let ctx = ValueContext::string(NS, b"k");
        let env = Sealer::new(&KeyRing::from_master(&old))
            .seal(&ctx, b"v")
            .unwrap();
        let mut ring = KeyRing::from_master(&old);
        ring.insert(DataKeys::from_master(&new)).unwrap();
        let new_id = DataKeys::from_master(&new).id();
        ring.set_primary(new_id).unwrap();
        let s = Sealer::new(&ring);
        drop(ring);
        assert_eq!(s.open(&ctx, &env).unwrap(), b"v");
        let fresh = s.seal(&ctx, b"v").unwrap();
        assert_eq!(&fresh[4..8], &new_id.to_bytes());
        let usage = s.encryption_counts();
        assert_eq!(usage[0].key_id, new_id);
        assert!(usage[0].primary && !usage[1].primary);
        assert_eq!((usage[0].value_seals, usage[1].value_seals), (1, 0));
    }

    #[test]
    fn members_are_deterministic_per_namespace() {
        let s = sealer();
        let set = MemberContext::set_member(NS);
        let a = s.seal_member(&set, b"alice").unwrap();
        assert_eq!(a, s.seal_member(&set, b"alice").unwrap());
        assert_ne!(a, s.seal_member(&set, b"bob").unwrap());
        assert_ne!(
            a,
            s.seal_member(&MemberContext::set_member(b"other"), b"alice")
                .unwrap()
        );
        assert_ne!(
            a,
            s.seal_member(&MemberContext::hash_field(NS), b"alice")
                .unwrap()
        );
        assert_eq!(a[3], Version::GcmSiv as u8);
        assert_eq!(a.len(), 5 + OVERHEAD);
        assert_eq!(s.open_member(&set, &a).unwrap(), b"alice");
        assert_eq!(
            s.open_member(&MemberContext::set_member(b"other"), &a),
            Err(OpenError::BadTag)
        );
        assert_eq!(
            s.open_member(&set, &s.seal_member(&set, b"").unwrap())
                .unwrap(),
            b""
        );
    }

    #[test]
    fn modes_do_not_mix() {
        let s = sealer();
        let value = s.seal(&ValueContext::string(NS, b"k"), b"v").unwrap();
        let member = s.seal_member(&MemberContext::set_member(NS), b"v").unwrap();
        assert_eq!(
            s.open_member(&MemberContext::set_member(NS), &value),
            Err(OpenError::WrongMode {
                expected: Version::GcmSiv,
                found: Version::Gcm
            })
        );
        assert_eq!(
            s.open(&ValueContext::string(NS, b"k"), &member),
            Err(OpenError::WrongMode {
                expected: Version::Gcm,
                found: Version::GcmSiv
            })
        );
    }

    #[test]
    fn counts_seals_per_key() {
        let s = sealer();
        for _ in 0..3 {
            s.seal(&ValueContext::list(NS, b"l"), b"v").unwrap();
        }
        s.seal_member(&MemberContext::set_member(NS), b"m").unwrap();
        // Opens spend no nonce budget.
        let env = s.seal(&ValueContext::list(NS, b"l"), b"v").unwrap();
        s.open(&ValueContext::list(NS, b"l"), &env).unwrap();
        let clone = s.clone();
        let usage = clone.encryption_counts();
        assert_eq!(usage.len(), 1);
        assert_eq!((usage[0].value_seals, usage[0].member_seals), (4, 1));
        assert!(!usage[0].nonce_budget_warning());
    }

    /// A writer the test can read back: captures what tracing logs.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn warns_once_when_the_nonce_budget_threshold_is_crossed() {
        let s = sealer();
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        s.set_value_seals(NONCE_WARN_THRESHOLD - 2);
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..4 {
                s.seal(&ValueContext::string(NS, b"k"), b"v").unwrap();
            }
        });
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.matches("rotate the data key").count(), 1, "{text}");
        assert!(text.contains("WARN"), "{text}");
        assert!(text.contains(&s.primary_key_id().to_string()), "{text}");
        assert!(s.encryption_counts()[0].nonce_budget_warning());
    }

    #[test]
    fn debug_shows_ids_only() {
        let s = sealer();
        let printed = format!("{s:?}");
        assert!(
            printed.contains(&s.primary_key_id().to_string()),
            "{printed}"
        );
    }

    #[test]
    fn large_values_round_trip() {
        let s = sealer();
        let ctx = ValueContext::string(NS, b"big");
        let pt: Vec<u8> = (0..10 * 1024 * 1024)
            .map(|i: u32| (i % 251) as u8)
            .collect();
        let env = s.seal(&ctx, &pt).unwrap();
        assert_eq!(s.open(&ctx, &env).unwrap(), pt);
    }

    fn every_single_bit_flip_fails(env: &[u8], open: impl Fn(&[u8]) -> Result<Vec<u8>, OpenError>) {
        for bit in 0..env.len() * 8 {
            let mut bad = env.to_vec();
            bad[bit / 8] ^= 1 << (bit % 8);
            let err = open(&bad).expect_err("flipped envelope opened");
            let byte = bit / 8;
            let expected_kind = match byte {
                0..3 => matches!(err, OpenError::BadMagic),
                3 => matches!(err, OpenError::UnknownVersion(_)),
                4..HEADER_LEN => matches!(err, OpenError::UnknownKeyId(_)),
                _ => matches!(err, OpenError::BadTag),
            };
            assert!(expected_kind, "bit {bit}: {err:?}");
        }
    }

    #[test]
    fn every_single_bit_flip_of_a_value_is_detected() {
        let s = sealer();
        let ctx = ValueContext::hash(NS, b"k", b"f");
        let env = s.seal(&ctx, b"a short secret").unwrap();
        every_single_bit_flip_fails(&env, |b| s.open(&ctx, b));
    }

    #[test]
    fn every_single_bit_flip_of_a_member_is_detected() {
        let s = sealer();
        let ctx = MemberContext::set_member(NS);
        let env = s.seal_member(&ctx, b"member").unwrap();
        every_single_bit_flip_fails(&env, |b| s.open_member(&ctx, b));
    }

    #[test]
    fn truncation_and_extension_are_detected() {
        let s = sealer();
        let ctx = ValueContext::string(NS, b"k");
        let env = s.seal(&ctx, b"0123456789").unwrap();
        for cut in 0..env.len() {
            let err = s.open(&ctx, &env[..cut]).unwrap_err();
            if cut < OVERHEAD {
                assert_eq!(err, OpenError::TooShort { len: cut }, "cut {cut}");
            } else {
                assert_eq!(err, OpenError::BadTag, "cut {cut}");
            }
        }
        let mut longer = env.clone();
        longer.push(0);
        assert_eq!(s.open(&ctx, &longer), Err(OpenError::BadTag));
        // Swapping the tag for the last ciphertext bytes must not verify either.
        let mut swapped = env.clone();
        let n = swapped.len();
        swapped[CIPHERTEXT_OFFSET..n].rotate_left(TAG_LEN);
        assert_eq!(s.open(&ctx, &swapped), Err(OpenError::BadTag));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_open(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let s = sealer();
            let ctx = ValueContext::string(NS, b"k");
            prop_assert!(s.open(&ctx, &bytes).is_err());
            prop_assert!(s.open_member(&MemberContext::set_member(NS), &bytes).is_err());
        }

        /// Arbitrary bytes behind a valid header reach the AEAD and still fail.
        #[test]
        fn arbitrary_bodies_never_open(body in proptest::collection::vec(any::<u8>(), 0..200), member: bool) {
            let s = sealer();
            let version = if member { Version::GcmSiv } else { Version::Gcm };
            let mut bytes = envelope::header(version, s.primary_key_id()).to_vec();
            bytes.extend(body);
            if member {
                prop_assert!(s.open_member(&MemberContext::set_member(NS), &bytes).is_err());
            } else {
                prop_assert!(s.open(&ValueContext::string(NS, b"k"), &bytes).is_err());
            }
        }

        #[test]
        fn seal_open_round_trips(
            pt in proptest::collection::vec(any::<u8>(), 0..600),
            key in proptest::collection::vec(any::<u8>(), 0..300),
            field in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let s = sealer();
            let ctx = ValueContext::hash(NS, &key, &field);
            let env = s.seal(&ctx, &pt).unwrap();
            prop_assert_eq!(env.len(), pt.len() + OVERHEAD);
            prop_assert_eq!(s.open(&ctx, &env).unwrap(), pt.clone());
            let member = s.seal_member(&MemberContext::set_member(&key), &pt).unwrap();
            prop_assert_eq!(s.open_member(&MemberContext::set_member(&key), &member).unwrap(), pt);
        }

        #[test]
        fn random_bit_flips_never_open(
            pt in proptest::collection::vec(any::<u8>(), 0..300),
            flips in proptest::collection::vec(any::<proptest::sample::Index>(), 1..4),
        ) {
            let s = sealer();
            let ctx = ValueContext::string(NS, b"k");
            let env = s.seal(&ctx, &pt).unwrap();
            let mut bad = env.clone();
            for f in &flips {
                let bit = f.index(env.len() * 8);
                bad[bit / 8] ^= 1 << (bit % 8);
            }
            prop_assume!(bad != env);
            prop_assert!(s.open(&ctx, &bad).is_err());
        }
    }
}
