//! Where a value lives, encoded as the AEAD associated data that binds its
//! ciphertext there: a value copied to another key, field, type or namespace
//! fails authentication instead of decrypting.
//!
//! Encoding (docs/envelope.md): `header | lp(domain) | kind | lp(namespace) |
//! lp(key) [| lp(field)]` where `lp(x) = u32 BE length || x`. Every variable
//! part is length-prefixed and the kind byte fixes how many parts follow, so
//! two different contexts never encode to the same bytes.

use super::envelope::{HEADER_LEN, OpenError, SealError};

/// Domain tags: the same namespace/key bytes mean different things for a
/// randomized value and a deterministic member.
pub(crate) const VALUE_DOMAIN: &[u8] = b"sealcache/value";
pub(crate) const MEMBER_DOMAIN: &[u8] = b"sealcache/member";

/// The Redis data type a value belongs to, with the sub-location for types
/// whose values are addressed by a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind<'a> {
    /// A string value (SET/GET…).
    String,
    /// A hash value, bound to its field name (HSET key field value).
    Hash { field: &'a [u8] },
    /// A list element (not bound to its index: LINSERT/LPOP move elements).
    List,
    /// A stream entry's value, bound to its field name (not the entry id,
    /// which XADD * assigns after sealing).
    Stream { field: &'a [u8] },
    /// A Pub/Sub payload; the context's `key` is the channel.
    PubSub,
}

impl ValueKind<'_> {
    fn tag(&self) -> u8 {
        match self {
            ValueKind::String => 0x01,
            ValueKind::Hash { .. } => 0x02,
            ValueKind::List => 0x03,
            ValueKind::Stream { .. } => 0x04,
            ValueKind::PubSub => 0x05,
        }
    }

    fn field(&self) -> Option<&[u8]> {
        match self {
            ValueKind::Hash { field } | ValueKind::Stream { field } => Some(field),
            ValueKind::String | ValueKind::List | ValueKind::PubSub => None,
        }
    }
}

/// Where a randomized value lives: namespace, Redis key (or Pub/Sub channel)
/// and data type (with field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueContext<'a> {
    pub namespace: &'a [u8],
    /// The Redis key; for [`ValueKind::PubSub`] the channel name.
    pub key: &'a [u8],
    pub kind: ValueKind<'a>,
}

impl<'a> ValueContext<'a> {
    pub fn string(namespace: &'a [u8], key: &'a [u8]) -> Self {
        ValueContext {
            namespace,
            key,
            kind: ValueKind::String,
        }
    }

    pub fn hash(namespace: &'a [u8], key: &'a [u8], field: &'a [u8]) -> Self {
        ValueContext {
            namespace,
            key,
            kind: ValueKind::Hash { field },
        }
    }

    pub fn list(namespace: &'a [u8], key: &'a [u8]) -> Self {
        ValueContext {
            namespace,
            key,
            kind: ValueKind::List,
        }
    }

    pub fn stream(namespace: &'a [u8], key: &'a [u8], field: &'a [u8]) -> Self {
        ValueContext {
            namespace,
            key,
            kind: ValueKind::Stream { field },
        }
    }

    pub fn pubsub(namespace: &'a [u8], channel: &'a [u8]) -> Self {
        ValueContext {
            namespace,
            key: channel,
            kind: ValueKind::PubSub,
        }
    }

    /// Writes the associated data for an envelope with `header` into `ad`,
    /// replacing what it held.
    pub(crate) fn associated_data_into(
        &self,
        header: &[u8; HEADER_LEN],
        ad: &mut AdBuf,
    ) -> Result<(), TooLong> {
        let field = self.kind.field();
        let len = HEADER_LEN
            + lp_len(VALUE_DOMAIN)?
            + 1
            + lp_len(self.namespace)?
            + lp_len(self.key)?
            + field.map_or(Ok(0), lp_len)?;
        let mut w = Writer(ad.sized(len));
        w.put(header);
        w.put_lp(VALUE_DOMAIN);
        w.put(&[self.kind.tag()]);
        w.put_lp(self.namespace);
        w.put_lp(self.key);
        if let Some(field) = field {
            w.put_lp(field);
        }
        debug_assert!(w.0.is_empty());
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn associated_data(&self, header: &[u8; HEADER_LEN]) -> Result<AdBuf, TooLong> {
        let mut ad = AdBuf::new();
        self.associated_data_into(header, &mut ad)?;
        Ok(ad)
    }
}

/// Which deterministic family a member belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    /// Members of sets and sorted sets. One kind for both because ZUNION,
    /// ZINTER and ZDIFF accept plain sets as inputs.
    SetMember,
    /// Hash field names, when configured to be encrypted.
    HashField,
}

impl MemberKind {
    fn tag(self) -> u8 {
        match self {
            MemberKind::SetMember => 0x11,
            MemberKind::HashField => 0x12,
        }
    }
}

/// Where a deterministic member lives: bound to the namespace, deliberately
/// not to the key, so equal members in different keys stay equal (SINTER,
/// SMOVE, ZUNIONSTORE compare and move ciphertexts across keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberContext<'a> {
    pub namespace: &'a [u8],
    pub kind: MemberKind,
}

impl<'a> MemberContext<'a> {
    pub fn set_member(namespace: &'a [u8]) -> Self {
        MemberContext {
            namespace,
            kind: MemberKind::SetMember,
        }
    }

    pub fn hash_field(namespace: &'a [u8]) -> Self {
        MemberContext {
            namespace,
            kind: MemberKind::HashField,
        }
    }

    /// Like [`ValueContext::associated_data_into`], for a member.
    pub(crate) fn associated_data_into(
        &self,
        header: &[u8; HEADER_LEN],
        ad: &mut AdBuf,
    ) -> Result<(), TooLong> {
        let len = HEADER_LEN + lp_len(MEMBER_DOMAIN)? + 1 + lp_len(self.namespace)?;
        let mut w = Writer(ad.sized(len));
        w.put(header);
        w.put_lp(MEMBER_DOMAIN);
        w.put(&[self.kind.tag()]);
        w.put_lp(self.namespace);
        debug_assert!(w.0.is_empty());
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn associated_data(&self, header: &[u8; HEADER_LEN]) -> Result<AdBuf, TooLong> {
        let mut ad = AdBuf::new();
        self.associated_data_into(header, &mut ad)?;
        Ok(ad)
    }
}

/// A context part longer than a u32 length prefix can describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLong;

impl From<TooLong> for SealError {
    fn from(_: TooLong) -> Self {
        SealError::ContextTooLong
    }
}

impl From<TooLong> for OpenError {
    fn from(_: TooLong) -> Self {
        OpenError::ContextTooLong
    }
}

fn lp_len(part: &[u8]) -> Result<usize, TooLong> {
    u32::try_from(part.len()).map_err(|_| TooLong)?;
    Ok(4 + part.len())
}

/// Writes into an exactly sized buffer; sizes were computed (and checked to
/// fit a u32) by the caller, so writes never run out of room.
struct Writer<'b>(&'b mut [u8]);

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let (head, tail) = std::mem::take(&mut self.0).split_at_mut(bytes.len());
        head.copy_from_slice(bytes);
        self.0 = tail;
    }

    fn put_lp(&mut self, part: &[u8]) {
        // Checked by lp_len before the buffer was sized.
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        self.put(&len.to_be_bytes());
        self.put(part);
    }
}

/// Associated-data bytes, filled in place by `associated_data_into` (never
/// moved out of a return value: on the hot path of many-value replies that
/// copy cost more than writing the bytes): on the stack for typical keys, so
/// sealing or opening a value allocates nothing for it; on the heap for long
/// keys.
pub(crate) struct AdBuf {
    inline: [u8; AdBuf::INLINE],
    heap: Vec<u8>,
    len: usize,
}

impl AdBuf {
    /// Covers header, domain, namespace and a key plus field of ~90 bytes together.
    const INLINE: usize = 160;

    pub(crate) fn new() -> AdBuf {
        AdBuf {
            inline: [0; AdBuf::INLINE],
            heap: Vec::new(),
            len: 0,
        }
    }

    /// The first `len` bytes, to be overwritten whole.
    fn sized(&mut self, len: usize) -> &mut [u8] {
        self.len = len;
        if len <= AdBuf::INLINE {
            &mut self.inline[..len]
        } else {
            self.heap.resize(len, 0);
            &mut self.heap[..len]
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        if self.len <= AdBuf::INLINE {
            &self.inline[..self.len]
        } else {
            &self.heap[..self.len]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H: [u8; HEADER_LEN] = [0xF5, 0xEA, 0x1C, 0x01, 1, 2, 3, 4];

    fn ad(ctx: &ValueContext<'_>) -> Vec<u8> {
        ctx.associated_data(&H).unwrap().as_slice().to_vec()
    }

    #[test]
    fn documented_encoding() {
        let got = ad(&ValueContext::hash(b"ns", b"k", b"f"));
        let mut want = H.to_vec();
        want.extend_from_slice(b"\x00\x00\x00\x0fsealcache/value");
        want.push(0x02);
        want.extend_from_slice(b"\x00\x00\x00\x02ns\x00\x00\x00\x01k\x00\x00\x00\x01f");
        assert_eq!(got, want);

        let got = MemberContext::set_member(b"ns")
            .associated_data(&H)
            .unwrap();
        let mut want = H.to_vec();
        want.extend_from_slice(b"\x00\x00\x00\x10sealcache/member\x11\x00\x00\x00\x02ns");
        assert_eq!(got.as_slice(), &want[..]);
    }

    #[test]
    fn shifting_bytes_between_parts_changes_the_encoding() {
        assert_ne!(
            ad(&ValueContext::string(b"ab", b"c")),
            ad(&ValueContext::string(b"a", b"bc"))
        );
        assert_ne!(
            ad(&ValueContext::hash(b"n", b"key", b"")),
            ad(&ValueContext::hash(b"n", b"ke", b"y"))
        );
        // Same bytes, different type.
        assert_ne!(
            ad(&ValueContext::string(b"n", b"k")),
            ad(&ValueContext::list(b"n", b"k"))
        );
        assert_ne!(
            ad(&ValueContext::hash(b"n", b"k", b"f")),
            ad(&ValueContext::stream(b"n", b"k", b"f"))
        );
        assert_ne!(
            ad(&ValueContext::string(b"n", b"k")),
            ad(&ValueContext::pubsub(b"n", b"k"))
        );
    }

    /// One buffer refilled for long and short contexts in turn holds what a
    /// fresh one would.
    #[test]
    fn a_reused_buffer_holds_only_the_latest_context() {
        let long = vec![b'k'; 500];
        let contexts = [
            ValueContext::hash(b"n", &long, b"f"),
            ValueContext::list(b"n", b""),
            ValueContext::string(b"ns", &long),
            ValueContext::string(b"ns", b"k"),
        ];
        let mut reused = AdBuf::new();
        for ctx in contexts.iter().chain(contexts.iter().rev()) {
            ctx.associated_data_into(&H, &mut reused).unwrap();
            assert_eq!(reused.as_slice(), &ad(ctx)[..]);
        }
    }

    #[test]
    fn long_keys_spill_to_the_heap() {
        let key = vec![b'k'; 10_000];
        let ad = ValueContext::string(b"n", &key)
            .associated_data(&H)
            .unwrap();
        assert_eq!(ad.heap.len(), ad.as_slice().len());
        assert_eq!(
            ad.as_slice().len(),
            HEADER_LEN + 4 + 15 + 1 + 4 + 1 + 4 + 10_000
        );
        assert!(ad.as_slice().ends_with(&key));
    }

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        // Small alphabet so generated contexts often share bytes.
        proptest::collection::vec(0u8..4, 0..6)
    }

    fn context() -> impl Strategy<Value = (Vec<u8>, Vec<u8>, u8, Vec<u8>)> {
        (bytes(), bytes(), 0u8..5, bytes())
    }

    fn build<'a>(c: &'a (Vec<u8>, Vec<u8>, u8, Vec<u8>)) -> ValueContext<'a> {
        let (ns, key, kind, field) = c;
        match kind {
            0 => ValueContext::string(ns, key),
            1 => ValueContext::hash(ns, key, field),
            2 => ValueContext::list(ns, key),
            3 => ValueContext::stream(ns, key, field),
            _ => ValueContext::pubsub(ns, key),
        }
    }

    proptest! {
        /// Injectivity: equal encodings only for equal contexts.
        #[test]
        fn distinct_contexts_encode_differently(a in context(), b in context()) {
            let (ca, cb) = (build(&a), build(&b));
            prop_assert_eq!(ad(&ca) == ad(&cb), ca == cb);
        }

        #[test]
        fn distinct_member_contexts_encode_differently(a in bytes(), b in bytes(), ka: bool, kb: bool) {
            let mk = |ns, hash: bool| if hash { MemberContext::hash_field(ns) } else { MemberContext::set_member(ns) };
            let (ca, cb) = (mk(&a, ka), mk(&b, kb));
            let (ea, eb) = (ca.associated_data(&H).unwrap(), cb.associated_data(&H).unwrap());
            prop_assert_eq!(ea.as_slice() == eb.as_slice(), ca == cb);
        }
    }
}
