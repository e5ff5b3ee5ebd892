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

mod reply;

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::commands::{Command, ValueRule};
use crate::config::DecryptFailure;
use crate::crypto::{MemberContext, OpenError, Sealer, ValueContext};
use crate::error::ProxyError;
use crate::protocol::{Frame, Protocol};

pub use reply::Opened;

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

/// A value that did not open, for logging, metrics and `on_decrypt_failure: delete`.
#[derive(Debug, Clone)]
pub struct Failure {
    pub key: Bytes,
    pub location: Location,
    pub reason: OpenError,
}

/// Where in the key the failed value sits (what `delete` removes).
#[derive(Debug, Clone)]
pub enum Location {
    /// The whole string value.
    Value,
    HashField(Bytes),
    /// A list element, set/sorted-set member or stream entry, by its stored bytes or id.
    ListElement(Bytes),
    SetMember(Bytes),
    SortedSetMember(Bytes),
    StreamEntry(Bytes),
    PubSubMessage,
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

    /// List elements are bound to the namespace, not the key, so moves between lists keep them readable.
    pub fn seal_list_element(&self, value: &[u8]) -> Result<Bytes, ProxyError> {
        self.seal_in(ValueContext::list(&self.namespace, b""), value)
    }

    pub fn open_list_element(&self, envelope: &[u8]) -> Result<Vec<u8>, OpenError> {
        self.open_in(ValueContext::list(&self.namespace, b""), envelope)
    }

    pub fn seal_stream_value(
        &self,
        key: &[u8],
        field: &[u8],
        value: &[u8],
    ) -> Result<Bytes, ProxyError> {
        self.seal_in(ValueContext::stream(&self.namespace, key, field), value)
    }

    pub fn open_stream_value(
        &self,
        key: &[u8],
        field: &[u8],
        envelope: &[u8],
    ) -> Result<Vec<u8>, OpenError> {
        self.open_in(ValueContext::stream(&self.namespace, key, field), envelope)
    }

    pub fn seal_message(&self, channel: &[u8], message: &[u8]) -> Result<Bytes, ProxyError> {
        self.seal_in(ValueContext::pubsub(&self.namespace, channel), message)
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

    /// Replaces the values among `cmd`'s arguments with envelopes. Returns
    /// what opening the reply needs, or `None` when the reply holds no values.
    pub fn seal_command(
        &self,
        rule: ValueRule,
        cmd: &mut Command,
    ) -> Result<Option<OpenPlan>, ProxyError> {
        let reply_has_values = self.seal_args(rule, cmd)?;
        Ok(reply_has_values.then(|| OpenPlan {
            rule,
            args: cmd.args.clone(),
            db: 0,
            proto: Protocol::Resp3,
        }))
    }

    /// Seals the values among `cmd`'s arguments in place (keys, fields and
    /// options are untouched). Returns whether the reply holds values to open.
    pub fn seal_args(&self, rule: ValueRule, cmd: &mut Command) -> Result<bool, ProxyError> {
        let args = &mut cmd.args;
        let len = args.len();
        let reply_has_values = match rule {
            ValueRule::StringSet => {
                args[2] = self.seal_value(&args[1], &args[2])?;
                args[3..].iter().any(|a| a.eq_ignore_ascii_case(b"GET"))
            }
            ValueRule::StringValueAt(i) => {
                let i = i as usize;
                args[i] = self.seal_value(&args[1], &args[i])?;
                false
            }
            ValueRule::StringSwap => {
                args[2] = self.seal_value(&args[1], &args[2])?;
                true
            }
            ValueRule::MSet => {
                for i in (1..len.saturating_sub(1)).step_by(2) {
                    args[i + 1] = self.seal_value(&args[i], &args[i + 1])?;
                }
                false
            }
            ValueRule::HashSet => {
                for i in (2..len.saturating_sub(1)).step_by(2) {
                    args[i + 1] = self.seal_hash_value(&args[1], &args[i], &args[i + 1])?;
                }
                false
            }
            ValueRule::HashVals => {
                // Values are bound to their fields: fetch both, answer with the values.
                args[0] = Bytes::from_static(b"HGETALL");
                true
            }
            ValueRule::ListPush => {
                for arg in args.iter_mut().skip(2) {
                    *arg = self.seal_list_element(arg)?;
                }
                false
            }
            ValueRule::ListSet => {
                args[3] = self.seal_list_element(&args[3])?;
                false
            }
            ValueRule::MembersFrom(i) => {
                for arg in args.iter_mut().skip(i as usize) {
                    *arg = self.seal_member(arg)?;
                }
                false
            }
            ValueRule::MemberAt(i) => {
                let i = i as usize;
                args[i] = self.seal_member(&args[i])?;
                false
            }
            ValueRule::GeoDist => {
                args[2] = self.seal_member(&args[2])?;
                args[3] = self.seal_member(&args[3])?;
                false
            }
            ValueRule::GeoSearch => {
                if cmd.spec.name.starts_with("GEORADIUSBYMEMBER") {
                    args[2] = self.seal_member(&args[2])?;
                } else if let Some(i) = args
                    .iter()
                    .position(|a| a.eq_ignore_ascii_case(b"FROMMEMBER"))
                    && i + 1 < args.len()
                {
                    args[i + 1] = self.seal_member(&args[i + 1])?;
                }
                !cmd.spec.name.ends_with("STORE")
            }
            ValueRule::ZAdd => {
                let mut i = 2;
                while i < len && is_one_of(&args[i], &["NX", "XX", "GT", "LT", "CH", "INCR"]) {
                    i += 1;
                }
                for m in (i + 1..len).step_by(2) {
                    args[m] = self.seal_member(&args[m])?;
                }
                false
            }
            ValueRule::GeoAdd => {
                let mut i = 2;
                while i < len && is_one_of(&args[i], &["NX", "XX", "CH"]) {
                    i += 1;
                }
                for m in (i + 2..len).step_by(3) {
                    args[m] = self.seal_member(&args[m])?;
                }
                false
            }
            ValueRule::XAdd => {
                let id = xadd_id_position(args);
                for f in (id + 1..len.saturating_sub(1)).step_by(2) {
                    args[f + 1] = self.seal_stream_value(&args[1], &args[f], &args[f + 1])?;
                }
                false
            }
            ValueRule::Publish => {
                args[2] = self.seal_message(&args[1], &args[2])?;
                false
            }
            ValueRule::MemberReply => {
                if cmd.spec.name.starts_with("ZRANGE")
                    && args.iter().any(|a| a.eq_ignore_ascii_case(b"BYLEX"))
                {
                    return Err(ProxyError::Rejected {
                        command: "ZRANGE … BYLEX".into(),
                        reason: "members are ciphertext upstream, so their lexicographic order is meaningless".into(),
                    });
                }
                true
            }
            ValueRule::HashRandField => args
                .iter()
                .skip(3)
                .any(|a| a.eq_ignore_ascii_case(b"WITHVALUES")),
            ValueRule::StringGet
            | ValueRule::MGet
            | ValueRule::HashGet
            | ValueRule::HashMGet
            | ValueRule::HashGetAll
            | ValueRule::HashScan
            | ValueRule::ListReply
            | ValueRule::ListKeyedPop
            | ValueRule::ListMultiPop
            | ValueRule::SetScan
            | ValueRule::ZScan
            | ValueRule::ZKeyedPop
            | ValueRule::ZMultiPop
            | ValueRule::XEntries
            | ValueRule::XRead
            | ValueRule::XAutoClaim
            | ValueRule::XInfoStream => true,
        };
        Ok(reply_has_values)
    }

    /// The common case of a reply that is one value (GET, HGET, GETSET…):
    /// decrypts it straight into `out` as a bulk string, without building a
    /// frame. `false` leaves `out` untouched: the caller then takes the general
    /// path, which also handles values that do not open.
    pub fn encode_single_value(
        &self,
        plan: &OpenPlan,
        frame: &Frame,
        out: &mut bytes::BytesMut,
    ) -> bool {
        let Frame::BlobString {
            data: envelope,
            attributes: None,
        } = frame
        else {
            return false;
        };
        let key: &[u8] = match plan.args.get(1) {
            Some(key) => key,
            None => return false,
        };
        let field;
        let ctx = match plan.rule {
            ValueRule::StringGet | ValueRule::StringSwap | ValueRule::StringSet => {
                ValueContext::string(&self.namespace, key)
            }
            ValueRule::HashGet => {
                field = plan.args.get(2).cloned().unwrap_or_default();
                ValueContext::hash(&self.namespace, key, &field)
            }
            _ => return false,
        };
        let Some(len) = envelope.len().checked_sub(crate::crypto::OVERHEAD) else {
            return false;
        };
        let start = out.len();
        use std::fmt::Write as _;
        let _ = write!(out, "${len}\r\n");
        if self.sealer.open_into(&ctx, envelope, out).is_err() {
            out.truncate(start);
            return false;
        }
        out.extend_from_slice(b"\r\n");
        true
    }

    /// Opens the values in `frame` as `plan` says. Values that fail to open
    /// are handled per `on_decrypt_failure` and returned for logging/cleanup.
    pub fn open_reply(&self, plan: &OpenPlan, frame: Frame) -> Opened {
        let opened = reply::open(self, plan, frame);
        for failure in &opened.failures {
            self.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                key = %String::from_utf8_lossy(&failure.key),
                location = ?failure.location_label(),
                reason = %failure.reason,
                "value failed to decrypt"
            );
        }
        opened
    }

    /// Opens the payload of a Pub/Sub message push in place; `false` when it does not open.
    pub fn open_push(&self, frame: &mut Frame) -> bool {
        reply::open_push(self, frame)
    }
}

impl Failure {
    /// A log-safe label: the hash field name, or the kind of location (never stored bytes).
    fn location_label(&self) -> String {
        match &self.location {
            Location::Value => "value".into(),
            Location::HashField(f) => format!("field {}", String::from_utf8_lossy(f)),
            Location::ListElement(_) => "list element".into(),
            Location::SetMember(_) => "set member".into(),
            Location::SortedSetMember(_) => "sorted-set member".into(),
            Location::StreamEntry(id) => format!("stream entry {}", String::from_utf8_lossy(id)),
            Location::PubSubMessage => "message".into(),
        }
    }

    /// The command that removes the undecryptable value (`on_decrypt_failure: delete`).
    pub fn delete_command(&self) -> Option<Vec<Bytes>> {
        let word = |w: &'static str| Bytes::from_static(w.as_bytes());
        let key = self.key.clone();
        Some(match &self.location {
            Location::Value => vec![word("DEL"), key],
            Location::HashField(f) => vec![word("HDEL"), key, f.clone()],
            Location::ListElement(raw) => vec![word("LREM"), key, word("1"), raw.clone()],
            Location::SetMember(raw) => vec![word("SREM"), key, raw.clone()],
            Location::SortedSetMember(raw) => vec![word("ZREM"), key, raw.clone()],
            Location::StreamEntry(id) => vec![word("XDEL"), key, id.clone()],
            Location::PubSubMessage => return None,
        })
    }
}

/// Whether [`ValueCrypt::seal_command`] changes the arguments for `rule`
/// (otherwise the client's own bytes can be forwarded as they are).
pub fn rewrites_arguments(rule: ValueRule) -> bool {
    !matches!(
        rule,
        ValueRule::StringGet
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
    )
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
