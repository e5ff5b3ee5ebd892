//! Opening a reply straight into the client's output buffer. Single values
//! and the common many-value replies (MGET, HMGET, HGETALL, HVALS, LRANGE and
//! counted pops, set members, scored ranges and pops, stream entries, HSCAN
//! and SSCAN) are written byte for byte as the general path
//! ([`super::reply::open`], then the frame encoder) writes them, but each
//! value is decrypted in place in `out`: no frame, plaintext copy or array is
//! built per element.
//!
//! Only a reply whose every value opens is written here. Anything out of the
//! ordinary (a value that does not open, something other than an envelope
//! where one belongs, a nil at the top, attributes, a shape the rule does not
//! expect, a RESP2 null style that depends on depth) gives up, leaving `out`
//! as it was, and the general path answers: it alone counts, logs and handles
//! failures as `on_decrypt_failure` says. A property test compares the two
//! paths on random replies.

use std::collections::HashSet;
use std::ops::Range;

use bytes::BytesMut;

use super::reads::{Form, Scored, form, score};
use super::reply::{lone_pop, misshapen, valueless};
use super::{OpenPlan, ValueCrypt};
use crate::commands::ValueRule;
use crate::crypto::{MemberContext, OVERHEAD, ValueContext};
use crate::protocol::reply::NullStyle;
use crate::protocol::{Frame, Protocol, wire};
use crate::semantics::zset::order_ties;

/// `None`: give up, the general path answers.
type Written = Option<()>;

/// Writes `frame`, the reply to the command `plan` opens, to `out` for a
/// client speaking `proto` with `nulls`; `false` leaves `out` as it was.
pub(super) fn encode(
    crypt: &ValueCrypt,
    plan: &OpenPlan,
    frame: &Frame,
    proto: Protocol,
    nulls: NullStyle,
    out: &mut BytesMut,
) -> bool {
    // GEOPOS-style nulls differ by depth in RESP2; a plan made for another
    // protocol than the slot's shapes its reply for that one.
    if nulls == NullStyle::ArrayInElements || plan.proto != proto {
        return false;
    }
    let start = out.len();
    let written = Writer { crypt, proto, out }.reply(plan, frame);
    if written.is_none() {
        out.truncate(start);
    }
    written.is_some()
}

struct Writer<'a> {
    crypt: &'a ValueCrypt,
    proto: Protocol,
    out: &'a mut BytesMut,
}

/// What a value is bound to.
#[derive(Clone, Copy)]
enum Seal<'a> {
    Value(ValueContext<'a>),
    Member,
}

fn array(frame: &Frame) -> Option<&[Frame]> {
    match frame {
        Frame::Array {
            data,
            attributes: None,
        } => Some(data),
        _ => None,
    }
}

/// The bytes of a plain bulk string (a field name, an entry id, a cursor).
fn bulk(frame: &Frame) -> Option<&[u8]> {
    match frame {
        Frame::BlobString {
            data,
            attributes: None,
        } => Some(data),
        _ => None,
    }
}

impl Writer<'_> {
    fn reply(&mut self, plan: &OpenPlan, frame: &Frame) -> Written {
        if matches!(frame, Frame::Null) || misshapen(plan, frame).is_some() {
            return None;
        }
        let args = &plan.args;
        let key: &[u8] = args.get(1).map_or(&[], |k| k);
        let ns: &[u8] = &self.crypt.namespace;
        let arg = |i: usize| -> &[u8] { args.get(i).map_or(&[], |a| a) };
        if valueless(plan, frame) {
            return match plan.rule {
                ValueRule::MemberReply if lone_pop(plan) => self.lone_pop(frame),
                _ => None,
            };
        }
        match plan.rule {
            ValueRule::StringGet | ValueRule::StringSet | ValueRule::StringSwap => {
                self.value(Seal::Value(ValueContext::string(ns, key)), frame)
            }
            ValueRule::HashGet => {
                self.value(Seal::Value(ValueContext::hash(ns, key, arg(2))), frame)
            }
            ValueRule::MGet => self.each(array(frame)?, |i| {
                Seal::Value(ValueContext::string(ns, arg(i + 1)))
            }),
            ValueRule::HashMGet => self.each(array(frame)?, |i| {
                Seal::Value(ValueContext::hash(ns, key, arg(i + 2)))
            }),
            ValueRule::HashGetAll | ValueRule::HashVals => {
                self.hash(frame, key, plan.rule == ValueRule::HashVals)
            }
            ValueRule::ListReply => match frame {
                Frame::Array { .. } => {
                    self.each(array(frame)?, |_| Seal::Value(ValueContext::list(ns, b"")))
                }
                single => self.value(Seal::Value(ValueContext::list(ns, b"")), single),
            },
            ValueRule::MemberReply => match form(plan.rule, args) {
                Form::AsSent if super::syntax_of(args).set() => self.set_members(frame),
                Form::Scored(scored) => self.scored(frame, &scored),
                _ => None,
            },
            ValueRule::XEntries => self.entries(frame, key),
            ValueRule::HashScan => {
                let items = self.scan(frame)?;
                self.field_values(items, |field| {
                    Seal::Value(ValueContext::hash(ns, key, field))
                })
            }
            ValueRule::SetScan if form(plan.rule, args) == Form::AsSent => {
                let items = self.scan(frame)?;
                self.each(items, |_| Seal::Member)
            }
            _ => None,
        }
    }

    /// One value, opened in place: a bulk string of the plaintext.
    fn value(&mut self, seal: Seal<'_>, frame: &Frame) -> Written {
        let envelope = bulk(frame)?;
        wire::put_length(self.out, b'$', envelope.len().checked_sub(OVERHEAD)?);
        self.open(seal, envelope)?;
        self.out.extend_from_slice(b"\r\n");
        Some(())
    }

    /// Appends the plaintext of `envelope`.
    fn open(&mut self, seal: Seal<'_>, envelope: &[u8]) -> Written {
        let sealer = &self.crypt.sealer;
        match seal {
            Seal::Value(ctx) => sealer.open_into(&ctx, envelope, self.out),
            Seal::Member => sealer.open_member_into(
                &MemberContext::set_member(&self.crypt.namespace),
                envelope,
                self.out,
            ),
        }
        .ok()
    }

    /// A value inside an aggregate, where nil stays nil (a missing key of MGET).
    fn element(&mut self, seal: Seal<'_>, frame: &Frame) -> Written {
        match frame {
            Frame::Null => {
                // Below the top, RESP2 nulls are null bulks (the encoder's
                // `NullStyle::Bulk`; `ArrayInElements` never comes here).
                self.out.extend_from_slice(match self.proto {
                    Protocol::Resp2 => b"$-1\r\n",
                    Protocol::Resp3 => b"_\r\n",
                });
                Some(())
            }
            value => self.value(seal, value),
        }
    }

    /// An array of values, the i-th bound as `seal(i)` says.
    fn each<'s>(&mut self, items: &[Frame], seal: impl Fn(usize) -> Seal<'s>) -> Written {
        wire::put_length(self.out, b'*', items.len());
        for (i, item) in items.iter().enumerate() {
            self.element(seal(i), item)?;
        }
        Some(())
    }

    /// `[field, value, …]` with the values bound to their fields.
    fn field_values<'s>(
        &mut self,
        items: &'s [Frame],
        seal: impl Fn(&'s [u8]) -> Seal<'s>,
    ) -> Written {
        // The general path leaves an odd last field out.
        if !items.len().is_multiple_of(2) {
            return None;
        }
        wire::put_length(self.out, b'*', items.len());
        for pair in items.chunks_exact(2) {
            let field = bulk(&pair[0])?;
            wire::put_bulk(self.out, field);
            self.element(seal(field), &pair[1])?;
        }
        Some(())
    }

    /// HGETALL (a map) or HVALS (its values) from the upstream's map, or from
    /// the flat array a RESP2 upstream sends.
    fn hash(&mut self, frame: &Frame, key: &[u8], values_only: bool) -> Written {
        let ns: &[u8] = &self.crypt.namespace;
        let mut pairs: Vec<(&Frame, &Frame)> = match frame {
            Frame::Map {
                data,
                attributes: None,
            } => data.iter().collect(),
            Frame::Array { .. } => {
                let items = array(frame)?;
                let pairs: Vec<_> = items.chunks_exact(2).map(|p| (&p[0], &p[1])).collect();
                // Built into a map, a repeated field would keep one value.
                let mut seen = HashSet::with_capacity(pairs.len());
                if !values_only && !pairs.iter().all(|(f, _)| seen.insert(*f)) {
                    return None;
                }
                pairs
            }
            _ => return None,
        };
        let (header, len) = match (values_only, self.proto) {
            (true, _) => (b'*', pairs.len()),
            (false, Protocol::Resp3) => (b'%', pairs.len()),
            (false, Protocol::Resp2) => (b'*', 2 * pairs.len()),
        };
        wire::put_length(self.out, header, len);
        for (field, value) in pairs.drain(..) {
            let name = bulk(field)?;
            if !values_only {
                wire::put_bulk(self.out, name);
            }
            self.element(Seal::Value(ValueContext::hash(ns, key, name)), value)?;
        }
        Some(())
    }

    /// SMEMBERS, SINTER, SPOP/SRANDMEMBER (with a count or without).
    fn set_members(&mut self, frame: &Frame) -> Written {
        match frame {
            Frame::Set {
                data,
                attributes: None,
            } => {
                let header = match self.proto {
                    Protocol::Resp3 => b'~',
                    Protocol::Resp2 => b'*',
                };
                wire::put_length(self.out, header, data.len());
                for item in data {
                    self.element(Seal::Member, item)?;
                }
                Some(())
            }
            Frame::Array { .. } => self.each(array(frame)?, |_| Seal::Member),
            single => self.value(Seal::Member, single),
        }
    }

    /// `[cursor, items]` of a scan: writes its header and cursor, returns the items.
    fn scan<'f>(&mut self, frame: &'f Frame) -> Option<&'f [Frame]> {
        let [cursor, items] = array(frame)? else {
            return None;
        };
        let cursor = bulk(cursor)?;
        wire::put_length(self.out, b'*', 2);
        wire::put_bulk(self.out, cursor);
        array(items)
    }

    /// A score, or anything beside a value, as the encoder writes it.
    fn leaf(&mut self, frame: &Frame) -> Written {
        match frame {
            Frame::BlobString {
                attributes: None, ..
            }
            | Frame::Double {
                attributes: None, ..
            } => {
                crate::protocol::reply::encode(self.out, frame, None, self.proto, NullStyle::Bulk);
                Some(())
            }
            _ => None,
        }
    }

    /// ZPOPMIN/ZPOPMAX without a count: `[member, score]` or `[]`.
    fn lone_pop(&mut self, frame: &Frame) -> Written {
        match array(frame)? {
            [] => wire::put_length(self.out, b'*', 0),
            [member, score] => {
                wire::put_length(self.out, b'*', 2);
                self.value(Seal::Member, member)?;
                self.leaf(score)?;
            }
            _ => return None,
        }
        Some(())
    }

    /// Sorted-set members in sorted-set order: `[member, score]` pairs (flat
    /// from a RESP2 upstream), their equal-score runs ordered by plaintext,
    /// written with their scores or, where sealcache asked for the scores
    /// only to order them, without.
    fn scored(&mut self, frame: &Frame, scored: &Scored) -> Written {
        let items = array(frame)?;
        let nested = matches!(items.first(), Some(Frame::Array { .. }));
        let mut pairs: Vec<(&Frame, &Frame)> = Vec::with_capacity(items.len());
        if nested {
            for item in items {
                let [member, score] = array(item)? else {
                    return None;
                };
                pairs.push((member, score));
            }
        } else {
            // The general path leaves an odd last member out.
            if !items.len().is_multiple_of(2) {
                return None;
            }
            pairs.extend(items.chunks_exact(2).map(|p| (&p[0], &p[1])));
        }
        // The members are opened before any is written: their order depends on them.
        let mut plain = BytesMut::new();
        let mut opened: Vec<(Range<usize>, f64, &Frame)> = Vec::with_capacity(pairs.len());
        for (member, score_frame) in pairs {
            let start = plain.len();
            let envelope = bulk(member)?;
            self.crypt
                .sealer
                .open_member_into(
                    &MemberContext::set_member(&self.crypt.namespace),
                    envelope,
                    &mut plain,
                )
                .ok()?;
            opened.push((start..plain.len(), score(score_frame), score_frame));
        }
        if scored.orders_ties(opened.iter().map(|(_, s, _)| *s)) {
            order_ties(
                &mut opened,
                |(_, s, _)| *s,
                |(range, _, _)| &plain[range.clone()],
                scored.direction,
            );
        }
        let with_scores = !scored.added;
        let len = match (with_scores, self.proto) {
            (true, Protocol::Resp2) => 2 * opened.len(),
            _ => opened.len(),
        };
        wire::put_length(self.out, b'*', len);
        for (range, _, score_frame) in &opened {
            if with_scores && self.proto == Protocol::Resp3 {
                wire::put_length(self.out, b'*', 2);
            }
            wire::put_bulk(self.out, &plain[range.clone()]);
            if with_scores {
                self.leaf(score_frame)?;
            }
        }
        Some(())
    }

    /// XRANGE/XREVRANGE (and XCLAIM): `[[id, [field, value, …]], …]`.
    fn entries(&mut self, frame: &Frame, key: &[u8]) -> Written {
        let ns: &[u8] = &self.crypt.namespace;
        let entries = array(frame)?;
        wire::put_length(self.out, b'*', entries.len());
        for entry in entries {
            let [id, fields] = array(entry)? else {
                return None;
            };
            wire::put_length(self.out, b'*', 2);
            wire::put_bulk(self.out, bulk(id)?);
            self.field_values(array(fields)?, |field| {
                Seal::Value(ValueContext::stream(ns, key, field))
            })?;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests;
