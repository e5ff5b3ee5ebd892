//! Value encryption at the command level: seals the values among a command's
//! arguments before it goes upstream, and opens the values in its reply, as
//! the command table's [`ValueRule`] describes. Keys, field names, scores and
//! other metadata pass unchanged.
//!
//! Values (strings, hash values, stream values, Pub/Sub payloads) are
//! randomized AES-256-GCM envelopes bound to namespace, key and field. List
//! elements are bound to the namespace (so LMOVE/BLMOVE can move them).
//! Set, sorted-set, geo and HyperLogLog members are deterministic
//! AES-256-GCM-SIV envelopes bound to the namespace, so equality works.

mod encode;
mod reads;
mod reply;

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};

use crate::commands::{Command, Syntax, ValueRule};
use crate::config::DecryptFailure;
use crate::crypto::{MemberContext, OpenError, Sealer, ValueContext};
use crate::error::ProxyError;
use crate::logging::Untrusted;
use crate::protocol::reply::NullStyle;
use crate::protocol::{Frame, Protocol, wire};
use crate::semantics::geo::geo_options;
use crate::semantics::zset::{RangeKind, range_options};

pub use reply::{FailureReason, Opened};

/// Seals arguments and opens replies for one namespace.
pub struct ValueCrypt {
    sealer: Sealer,
    namespace: Bytes,
    on_failure: DecryptFailure,
    failures: AtomicU64,
}

/// What the reply of a sealed command needs to be opened: the rule and the
/// command's original arguments (keys and fields give the contexts).
#[derive(Debug, Clone)]
pub struct OpenPlan {
    pub rule: ValueRule,
    pub args: Vec<Bytes>,
    /// Database of the command, for `on_decrypt_failure: delete`.
    pub db: u32,
    /// The client's protocol when the command was sent: some replies have a
    /// different shape in RESP2 (see `reply::resp2_shape`).
    pub proto: Protocol,
}

/// The [`Syntax`] column of the command `args` names (its name first).
fn syntax_of(args: &[Bytes]) -> Syntax {
    crate::commands::row_of(args).map_or(Syntax::Plain, |spec| spec.extras.syntax)
}

/// A value that did not open, for logging, metrics and `on_decrypt_failure: delete`.
#[derive(Debug, Clone)]
pub struct Failure {
    pub key: Bytes,
    pub location: Location,
    pub reason: FailureReason,
}

/// Where in the key the failed value sits, with the bytes that failed (what
/// `delete` compares with before it removes anything).
#[derive(Debug, Clone)]
pub enum Location {
    /// The whole string value.
    Value {
        stored: Bytes,
    },
    HashField {
        field: Bytes,
        stored: Bytes,
    },
    /// A list element, set/sorted-set member, by its stored bytes.
    ListElement(Bytes),
    SetMember(Bytes),
    SortedSetMember(Bytes),
    /// A stream entry by its id, with the value that failed.
    StreamEntry {
        id: Bytes,
        stored: Bytes,
    },
    PubSubMessage,
}

/// How `on_decrypt_failure: delete` removes a value that did not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleanup {
    /// A command that removes exactly the stored bytes (LREM, SREM, ZREM):
    /// whatever else was written since cannot be hit.
    Exact(Vec<Bytes>),
    /// A removal from `key` that must first find the failed bytes still there.
    IfUnchanged { key: Bytes, check: Check },
}

/// `delete` runs only if `read` still answers the bytes that failed
/// (`stored`), checked under WATCH of the key so nothing newer is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub read: Vec<Bytes>,
    pub stored: Bytes,
    pub delete: Vec<Bytes>,
}

impl Check {
    /// Whether `reply` (to `read`) still holds the failed bytes: the bulk
    /// itself, or a value inside a stream entry.
    pub fn holds(&self, reply: &Frame) -> bool {
        fn holds(reply: &Frame, stored: &[u8]) -> bool {
            match reply {
                Frame::BlobString { data, .. } => data.as_ref() == stored,
                Frame::Array { data, .. } => data.iter().any(|f| holds(f, stored)),
                _ => false,
            }
        }
        holds(reply, &self.stored)
    }
}

fn sealing_failed(e: impl std::fmt::Display) -> ProxyError {
    ProxyError::Unsupported(format!("cannot encrypt the value: {e}"))
}

impl ValueCrypt {
    pub fn new(sealer: Sealer, namespace: &str, on_failure: DecryptFailure) -> Self {
        ValueCrypt {
            sealer,
            namespace: Bytes::copy_from_slice(namespace.as_bytes()),
            on_failure,
            failures: AtomicU64::new(0),
        }
    }

    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    pub fn on_failure(&self) -> DecryptFailure {
        self.on_failure
    }

    pub fn failure_count(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Opens an envelope sealed for `ctx`; every value kind goes through here.
    fn open_in(&self, ctx: ValueContext<'_>, envelope: &[u8]) -> Result<Vec<u8>, OpenError> {
        self.sealer.open(&ctx, envelope)
    }

    /// Seals `value` for `ctx`; every value kind goes through here.
    fn seal_in(&self, ctx: ValueContext<'_>, value: &[u8]) -> Result<Bytes, ProxyError> {
        self.sealer
            .seal(&ctx, value)
            .map(Bytes::from)
            .map_err(sealing_failed)
    }

    pub fn seal_value(&self, key: &[u8], value: &[u8]) -> Result<Bytes, ProxyError> {
        self.seal_in(ValueContext::string(&self.namespace, key), value)
    }

    pub fn open_value(&self, key: &[u8], envelope: &[u8]) -> Result<Vec<u8>, OpenError> {
        self.open_in(ValueContext::string(&self.namespace, key), envelope)
    }

    pub fn seal_hash_value(
        &self,
        key: &[u8],
        field: &[u8],
        value: &[u8],
    ) -> Result<Bytes, ProxyError> {
        self.seal_in(ValueContext::hash(&self.namespace, key, field), value)
    }

    pub fn open_hash_value(
        &self,
        key: &[u8],
        field: &[u8],
        envelope: &[u8],
    ) -> Result<Vec<u8>, OpenError> {
        self.open_in(ValueContext::hash(&self.namespace, key, field), envelope)
    }

    pub fn open_list_element(&self, envelope: &[u8]) -> Result<Vec<u8>, OpenError> {
        self.open_in(ValueContext::list(&self.namespace, b""), envelope)
    }

    pub fn open_stream_value(
        &self,
        key: &[u8],
        field: &[u8],
        envelope: &[u8],
    ) -> Result<Vec<u8>, OpenError> {
        self.open_in(ValueContext::stream(&self.namespace, key, field), envelope)
    }

    pub fn open_message(&self, channel: &[u8], envelope: &[u8]) -> Result<Vec<u8>, OpenError> {
        self.open_in(ValueContext::pubsub(&self.namespace, channel), envelope)
    }

    pub fn seal_member(&self, member: &[u8]) -> Result<Bytes, ProxyError> {
        self.sealer
            .seal_member(&MemberContext::set_member(&self.namespace), member)
            .map(Bytes::from)
            .map_err(sealing_failed)
    }

    pub fn open_member(&self, envelope: &[u8]) -> Result<Vec<u8>, OpenError> {
        self.sealer
            .open_member(&MemberContext::set_member(&self.namespace), envelope)
    }

    /// Appends `args` to `out` as a RESP array with the values among them
    /// (per `rule`, see [`value_slots`]) sealed in place: each envelope is
    /// written once, straight into the buffer that goes upstream. On error
    /// `out` is left as it was.
    pub fn encode_sealed(
        &self,
        rule: ValueRule,
        args: &[Bytes],
        out: &mut BytesMut,
    ) -> Result<(), ProxyError> {
        let start = out.len();
        let reworded = reads::form(rule, args).upstream_args(args);
        let args = reworded.as_deref().unwrap_or(args);
        let slots = value_slots(rule, args);
        wire::put_length(out, b'*', args.len());
        for (i, arg) in args.iter().enumerate() {
            let Some(kind) = slots.and_then(|s| s.kind_at(i)) else {
                wire::put_bulk(out, arg);
                continue;
            };
            wire::put_length(out, b'$', arg.len() + crate::crypto::OVERHEAD);
            let sealed = match kind {
                SlotKind::Member => self.sealer.seal_member_into(
                    &MemberContext::set_member(&self.namespace),
                    arg,
                    out,
                ),
                kind => self
                    .sealer
                    .seal_into(&self.slot_context(kind, args, i), arg, out),
            };
            if let Err(e) = sealed {
                out.truncate(start);
                return Err(sealing_failed(e));
            }
            out.extend_from_slice(b"\r\n");
        }
        Ok(())
    }

    /// What the randomized value at `args[i]` is bound to.
    fn slot_context<'a>(&'a self, kind: SlotKind, args: &'a [Bytes], i: usize) -> ValueContext<'a> {
        let ns = &self.namespace;
        match kind {
            SlotKind::String => ValueContext::string(ns, &args[1]),
            SlotKind::StringOfKeyBefore => ValueContext::string(ns, &args[i - 1]),
            SlotKind::HashValue => ValueContext::hash(ns, &args[1], &args[i - 1]),
            SlotKind::ListElement => ValueContext::list(ns, b""),
            SlotKind::StreamValue => ValueContext::stream(ns, &args[1], &args[i - 1]),
            SlotKind::Message => ValueContext::pubsub(ns, &args[1]),
            SlotKind::Member => unreachable!("members are sealed deterministically"),
        }
    }

    /// The common replies (one value, MGET, HGETALL, LRANGE, SMEMBERS,
    /// ZRANGE, XRANGE…) opened straight into `out`, encoded for `proto`
    /// with `nulls`, without building a frame per element (see `encode`).
    /// `false` leaves `out` untouched: the caller then takes the general
    /// path, which also handles values that do not open.
    pub fn encode_opened(
        &self,
        plan: &OpenPlan,
        frame: &Frame,
        proto: Protocol,
        nulls: NullStyle,
        out: &mut BytesMut,
    ) -> bool {
        encode::encode(self, plan, frame, proto, nulls, out)
    }

    /// Opens the values in `frame` as `plan` says. Values that fail to open
    /// are handled per `on_decrypt_failure` and returned for logging/cleanup.
    pub fn open_reply(&self, plan: &OpenPlan, frame: Frame) -> Opened {
        let opened = reply::open(self, plan, frame);
        for failure in &opened.failures {
            self.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                key = %Untrusted(&failure.key),
                location = %failure.location_label(),
                reason = %failure.reason,
                "value failed to decrypt"
            );
        }
        opened
    }

    /// Stands in for a reply that cannot be the answer to `command` and that
    /// holds values to open (EXEC's array of the wrong length): counted and
    /// logged as a decrypt failure, answered with an error whatever
    /// `on_decrypt_failure` says, since no value in it can be placed.
    pub fn forged_reply(&self, command: &str, found: &Frame, expected: &'static str) -> Frame {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let reason = reply::shape_reason(found, expected);
        tracing::warn!(command, %reason, "upstream reply cannot be opened");
        crate::protocol::reply::error(format!("ERR sealcache: {reason}"))
    }

    /// Opens the payload of a Pub/Sub message push in place; `false` when it does not open.
    pub fn open_push(&self, frame: &mut Frame) -> bool {
        reply::open_push(self, frame)
    }
}

impl crate::backend::SealOnWrite for ValueCrypt {
    fn encode_sealed(
        &self,
        rule: ValueRule,
        args: &[Bytes],
        out: &mut BytesMut,
    ) -> Result<(), ProxyError> {
        ValueCrypt::encode_sealed(self, rule, args, out)
    }

    /// As [`ValueCrypt::encode_sealed`] writes them: reads sealcache
    /// finishes itself reworded too, or the reply would not be the one the
    /// plan opens (a ZRANGE without the scores it orders by).
    fn seal_args(&self, rule: ValueRule, args: &[Bytes]) -> Result<Vec<Bytes>, ProxyError> {
        // Reworded as `encode_sealed` words it: the reply plan expects that reply.
        let reworded = reads::form(rule, args).upstream_args(args);
        let args = reworded.as_deref().unwrap_or(args);
        let slots = value_slots(rule, args);
        args.iter()
            .enumerate()
            .map(|(i, arg)| match slots.and_then(|s| s.kind_at(i)) {
                None => Ok(arg.clone()),
                Some(SlotKind::Member) => self.seal_member(arg),
                Some(kind) => self.seal_in(self.slot_context(kind, args, i), arg),
            })
            .collect()
    }
}

/// Where a string or hash value lives: what its envelope is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    String(Bytes),
    Hash { key: Bytes, field: Bytes },
}

impl Binding {
    pub fn key(&self) -> &Bytes {
        match self {
            Binding::String(key) | Binding::Hash { key, .. } => key,
        }
    }
}

impl ValueCrypt {
    fn context<'a>(&'a self, binding: &'a Binding) -> ValueContext<'a> {
        match binding {
            Binding::String(key) => ValueContext::string(&self.namespace, key),
            Binding::Hash { key, field } => ValueContext::hash(&self.namespace, key, field),
        }
    }

    /// Opens a string or hash value.
    pub fn open(&self, binding: &Binding, envelope: &[u8]) -> Result<Vec<u8>, OpenError> {
        self.open_in(self.context(binding), envelope)
    }

    /// Seals a string or hash value.
    pub fn seal(&self, binding: &Binding, value: &[u8]) -> Result<Bytes, ProxyError> {
        self.seal_in(self.context(binding), value)
    }

    /// The one re-sealing function: the value sealed for `from` becomes one
    /// sealed for `to` (another key or field: RENAME, COPY) under the
    /// primary key id (key rotation). A value that does not open is carried
    /// over as it is: it is no more readable under its new name than its old.
    pub fn reseal(
        &self,
        from: &Binding,
        to: &Binding,
        envelope: Bytes,
    ) -> Result<Bytes, ProxyError> {
        match self.open(from, &envelope) {
            Ok(plain) => self.seal(to, &plain),
            Err(_) => Ok(envelope),
        }
    }

    /// Counts a value that failed to open outside a reply walk (emulations).
    pub fn count_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }
}

impl Failure {
    /// A log-safe label: the hash field name, or the kind of location (never stored bytes).
    fn location_label(&self) -> String {
        match &self.location {
            Location::Value { .. } => "value".into(),
            Location::HashField { field, .. } => {
                format!("field {}", Untrusted(field))
            }
            Location::ListElement(_) => "list element".into(),
            Location::SetMember(_) => "set member".into(),
            Location::SortedSetMember(_) => "sorted-set member".into(),
            Location::StreamEntry { id, .. } => {
                format!("stream entry {}", String::from_utf8_lossy(id))
            }
            Location::PubSubMessage => "message".into(),
        }
    }

    /// How to remove the undecryptable value (`on_decrypt_failure: delete`).
    pub fn cleanup(&self) -> Option<Cleanup> {
        // A forged reply says nothing about what is stored: nothing to delete.
        if !matches!(self.reason, FailureReason::Open(_)) {
            return None;
        }
        let word = |w: &'static str| Bytes::from_static(w.as_bytes());
        let key = self.key.clone();
        let checked = |read: Vec<Bytes>, stored: &Bytes, delete: Vec<Bytes>| Cleanup::IfUnchanged {
            key: key.clone(),
            check: Check {
                read,
                stored: stored.clone(),
                delete,
            },
        };
        Some(match &self.location {
            Location::Value { stored } => checked(
                vec![word("GET"), key.clone()],
                stored,
                vec![word("DEL"), key.clone()],
            ),
            Location::HashField { field, stored } => checked(
                vec![word("HGET"), key.clone(), field.clone()],
                stored,
                vec![word("HDEL"), key.clone(), field.clone()],
            ),
            // A recreated stream can reuse an id: check the entry still holds the value.
            Location::StreamEntry { id, stored } => checked(
                vec![word("XRANGE"), key.clone(), id.clone(), id.clone()],
                stored,
                vec![word("XDEL"), key.clone(), id.clone()],
            ),
            Location::ListElement(raw) => {
                Cleanup::Exact(vec![word("LREM"), key, word("1"), raw.clone()])
            }
            Location::SetMember(raw) => Cleanup::Exact(vec![word("SREM"), key, raw.clone()]),
            Location::SortedSetMember(raw) => Cleanup::Exact(vec![word("ZREM"), key, raw.clone()]),
            Location::PubSubMessage => return None,
        })
    }
}

/// How a prepared command goes upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outgoing {
    /// Exactly as the client sent it.
    Unchanged,
    /// With changed arguments but no values to seal (HVALS asks for HGETALL).
    Rewritten,
    /// Written by [`ValueCrypt::encode_sealed`] as it goes: the values among
    /// its arguments sealed in place, and reads that sealcache finishes
    /// itself reworded (`MATCH` left out, `WITHSCORES`/`WITHHASH` added; see
    /// `reads`). The reply plan keeps the client's own arguments.
    Sealed,
}

/// What [`prepare`] decided for one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prepared {
    pub outgoing: Outgoing,
    /// The reply holds values to open.
    pub reply_has_values: bool,
}

/// Readies a command of policy `Encrypt(rule)` for the upstream: refuses what
/// cannot work on ciphertext, rewrites what must be asked differently, and
/// says whether its arguments hold values to seal and its reply values to open.
pub fn prepare(rule: ValueRule, cmd: &mut Command) -> Result<Prepared, ProxyError> {
    let name = cmd.spec.name;
    let syntax = cmd.spec.extras.syntax;
    let slots = value_slots(rule, &cmd.args);
    let reworded = reads::form(rule, &cmd.args)
        .upstream_args(&cmd.args)
        .is_some();
    let args = &mut cmd.args;
    let has_word_after =
        |from: usize, word: &[u8]| args.iter().skip(from).any(|a| a.eq_ignore_ascii_case(word));
    let reply_has_values = match rule {
        ValueRule::StringSet => has_word_after(3, b"GET"),
        ValueRule::HashRandField => has_word_after(3, b"WITHVALUES"),
        // STORE, STOREDIST and GEOSEARCHSTORE answer a count.
        ValueRule::GeoSearch | ValueRule::MemberReply if let Syntax::Geo(geo) = syntax => {
            geo_options(geo, args).map_or(!geo.stores, |o| !o.store)
        }
        ValueRule::MemberReply => {
            refuse_lex_range(name, syntax, args)?;
            true
        }
        ValueRule::RangeStore => {
            refuse_lex_range(name, syntax, args)?;
            false
        }
        ValueRule::HashVals => {
            // Values are bound to their fields: fetch both, answer with the values.
            args[0] = Bytes::from_static(b"HGETALL");
            return Ok(Prepared {
                outgoing: Outgoing::Rewritten,
                reply_has_values: true,
            });
        }
        ValueRule::StringSwap => true,
        // Otherwise a command either writes values (its reply has none) or reads them.
        _ => slots.is_none(),
    };
    let outgoing = if slots.is_some() || reworded {
        Outgoing::Sealed
    } else {
        Outgoing::Unchanged
    };
    Ok(Prepared {
        outgoing,
        reply_has_values,
    })
}

/// BYLEX ranges compare members, which the upstream holds as ciphertext.
fn refuse_lex_range(name: &str, syntax: Syntax, args: &[Bytes]) -> Result<(), ProxyError> {
    let Syntax::ZRange(range) = syntax else {
        return Ok(());
    };
    match range_options(range, args) {
        Some(o) if o.kind == RangeKind::Lex => Err(ProxyError::Rejected {
            command: format!("{name} … BYLEX"),
            reason: crate::commands::table::LEX_RANGE.into(),
        }),
        _ => Ok(()),
    }
}

/// What a value among a command's arguments is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotKind {
    /// A string value of the key `args[1]`.
    String,
    /// A string value of the key just before it (MSET key value …).
    StringOfKeyBefore,
    /// A hash value of `args[1]`, bound to the field just before it.
    HashValue,
    /// A list element, bound to the namespace.
    ListElement,
    /// A stream value of `args[1]`, bound to the field just before it.
    StreamValue,
    /// A Pub/Sub payload for the channel `args[1]`.
    Message,
    /// A set, sorted-set or geo member (deterministic).
    Member,
}

/// The arguments that are values: every index `start, start + step, …` below `end`.
#[derive(Debug, Clone, Copy)]
struct ValueSlots {
    start: usize,
    step: usize,
    end: usize,
    kind: SlotKind,
}

impl ValueSlots {
    fn one(i: usize, kind: SlotKind) -> Option<ValueSlots> {
        Some(ValueSlots {
            start: i,
            step: 1,
            end: i + 1,
            kind,
        })
    }

    fn every(start: usize, step: usize, end: usize, kind: SlotKind) -> Option<ValueSlots> {
        Some(ValueSlots {
            start,
            step,
            end,
            kind,
        })
    }

    fn kind_at(&self, i: usize) -> Option<SlotKind> {
        (i >= self.start && i < self.end && (i - self.start).is_multiple_of(self.step))
            .then_some(self.kind)
    }
}

/// Which of `args` are values to seal under `rule` (`None`: none are).
/// Keys, fields, scores, ids and options are never values.
fn value_slots(rule: ValueRule, args: &[Bytes]) -> Option<ValueSlots> {
    let len = args.len();
    let after_flags = |words: &[&str]| {
        let mut i = 2;
        while i < len && is_one_of(&args[i], words) {
            i += 1;
        }
        i
    };
    match rule {
        ValueRule::StringSet | ValueRule::StringSwap => ValueSlots::one(2, SlotKind::String),
        ValueRule::StringValueAt(i) => ValueSlots::one(i as usize, SlotKind::String),
        ValueRule::MSet => ValueSlots::every(2, 2, len, SlotKind::StringOfKeyBefore),
        ValueRule::HashSet => ValueSlots::every(3, 2, len, SlotKind::HashValue),
        ValueRule::ListPush => ValueSlots::every(2, 1, len, SlotKind::ListElement),
        ValueRule::ListSet => ValueSlots::one(3, SlotKind::ListElement),
        ValueRule::MembersFrom(i) => ValueSlots::every(i as usize, 1, len, SlotKind::Member),
        ValueRule::MemberAt(i) => ValueSlots::one(i as usize, SlotKind::Member),
        ValueRule::GeoDist => ValueSlots::every(2, 1, 4, SlotKind::Member),
        ValueRule::GeoSearch => match syntax_of(args) {
            // GEORADIUSBYMEMBER key member …
            Syntax::Geo(geo) if !geo.search => ValueSlots::one(2, SlotKind::Member),
            // GEOSEARCH[STORE] … FROMMEMBER member, among the options (a
            // key may be called FROMMEMBER too).
            Syntax::Geo(geo) => {
                let from = args
                    .iter()
                    .skip(geo.base)
                    .position(|a| a.eq_ignore_ascii_case(b"FROMMEMBER"))?;
                ValueSlots::one(geo.base + from + 1, SlotKind::Member)
            }
            _ => None,
        },
        ValueRule::ZAdd => {
            let first_score = after_flags(&["NX", "XX", "GT", "LT", "CH", "INCR"]);
            ValueSlots::every(first_score + 1, 2, len, SlotKind::Member)
        }
        ValueRule::GeoAdd => {
            let first_longitude = after_flags(&["NX", "XX", "CH"]);
            ValueSlots::every(first_longitude + 2, 3, len, SlotKind::Member)
        }
        ValueRule::XAdd => {
            ValueSlots::every(xadd_id_position(args) + 2, 2, len, SlotKind::StreamValue)
        }
        ValueRule::Publish => ValueSlots::one(2, SlotKind::Message),
        ValueRule::HashVals
        | ValueRule::StringGet
        | ValueRule::MGet
        | ValueRule::HashGet
        | ValueRule::HashMGet
        | ValueRule::HashGetAll
        | ValueRule::HashRandField
        | ValueRule::HashScan
        | ValueRule::ListReply
        | ValueRule::ListKeyedPop
        | ValueRule::ListMultiPop
        | ValueRule::MemberReply
        | ValueRule::SetScan
        | ValueRule::ZScan
        | ValueRule::ZKeyedPop
        | ValueRule::ZMultiPop
        | ValueRule::XEntries
        | ValueRule::XRead
        | ValueRule::XAutoClaim
        | ValueRule::XInfoStream
        | ValueRule::RangeStore => None,
    }
}

fn is_one_of(arg: &[u8], words: &[&str]) -> bool {
    words.iter().any(|w| arg.eq_ignore_ascii_case(w.as_bytes()))
}

/// Index of the entry id in `XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] n [LIMIT c]] id field value …`.
fn xadd_id_position(args: &[Bytes]) -> usize {
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if a.eq_ignore_ascii_case(b"NOMKSTREAM") {
            i += 1;
        } else if is_one_of(a, &["MAXLEN", "MINID"]) {
            i += 1;
            if args
                .get(i)
                .is_some_and(|t| t.as_ref() == b"=" || t.as_ref() == b"~")
            {
                i += 1;
            }
            i += 1;
        } else if a.eq_ignore_ascii_case(b"LIMIT") {
            i += 2;
        } else {
            break;
        }
    }
    i
}

#[cfg(test)]
mod tests;
