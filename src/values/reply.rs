//! Opening the values inside upstream replies, shape by shape. Error replies
//! pass unchanged. A value that fails to open becomes nil where the reply is
//! positional (GET, MGET, HMGET) and is left out where it is a collection
//! (LRANGE, SMEMBERS, HGETALL…), unless `on_decrypt_failure: error`.
//!
//! The upstream is not trusted: that is why values are sealed. Where a sealed
//! value belongs, only an envelope that opens or nil is accepted; anything
//! else (a simple string, an integer, a map…) is a failure like a bad tag.
//! So is a reply of the wrong shape (a bulk where an array belongs, an array
//! of the wrong length): it is replaced by the shape's empty answer.

use bytes::Bytes;

use super::{Failure, Location, OpenPlan, ValueCrypt};
use crate::commands::keys::key_args;
use crate::commands::{Syntax, ValueRule};
use crate::config::DecryptFailure;
use crate::crypto::OpenError;
use crate::protocol::reply::{array, bulk, error, int, text_of};
use crate::protocol::{Frame, Protocol};
use crate::semantics::geo::geo_options;

/// Why a value in a reply is not returned.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FailureReason {
    /// An envelope that does not open.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Something other than an envelope or nil where a sealed value belongs.
    #[error("the upstream sent {found} where a sealed value belongs")]
    NotSealed { found: &'static str },
    /// A reply not shaped as the command's replies are.
    #[error("the upstream's reply is {found} where {expected} belongs")]
    Shape {
        found: &'static str,
        expected: &'static str,
    },
}

/// Why a reply's shape is refused, for replies walked outside the opener.
pub(super) fn shape_reason(found: &Frame, expected: &'static str) -> FailureReason {
    FailureReason::Shape {
        found: crate::protocol::reply::kind_name(found),
        expected,
    }
}

/// A reply with its values opened.
pub struct Opened {
    pub frame: Frame,
    pub failures: Vec<Failure>,
}

struct Opener<'a> {
    crypt: &'a ValueCrypt,
    failures: Vec<Failure>,
}

impl Opener<'_> {
    fn fail(&mut self, key: &[u8], location: Location, reason: impl Into<FailureReason>) {
        self.failures.push(Failure {
            key: Bytes::copy_from_slice(key),
            location,
            reason: reason.into(),
        });
    }

    /// Records a reply (or part of one) of the wrong shape; `miss` takes its place.
    fn forged(&mut self, key: &[u8], found: &Frame, expected: &'static str, miss: Frame) -> Frame {
        let found = crate::protocol::reply::kind_name(found);
        self.fail(
            key,
            Location::Value {
                stored: Bytes::new(),
            },
            FailureReason::Shape { found, expected },
        );
        miss
    }

    /// A bulk value opened with `open`; nil stays nil; `None` when it failed
    /// or is not a bulk string at all.
    fn value(
        &mut self,
        frame: Frame,
        key: &[u8],
        location: impl FnOnce(&Bytes) -> Location,
        open: impl FnOnce(&ValueCrypt, &[u8]) -> Result<Vec<u8>, OpenError>,
    ) -> Option<Frame> {
        match frame {
            Frame::BlobString { data, .. } => match open(self.crypt, &data) {
                Ok(plain) => Some(bulk(plain)),
                Err(reason) => {
                    let location = location(&data);
                    self.fail(key, location, reason);
                    None
                }
            },
            Frame::Null => Some(Frame::Null),
            other => {
                let found = crate::protocol::reply::kind_name(&other);
                self.fail(
                    key,
                    location(&Bytes::new()),
                    FailureReason::NotSealed { found },
                );
                None
            }
        }
    }

    fn string(&mut self, frame: Frame, key: &[u8]) -> Option<Frame> {
        self.value(
            frame,
            key,
            |stored| Location::Value {
                stored: stored.clone(),
            },
            |c, d| c.open_value(key, d),
        )
    }

    fn hash_value(&mut self, frame: Frame, key: &[u8], field: &[u8]) -> Option<Frame> {
        let f = Bytes::copy_from_slice(field);
        self.value(
            frame,
            key,
            |stored| Location::HashField {
                field: f,
                stored: stored.clone(),
            },
            |c, d| c.open_hash_value(key, field, d),
        )
    }

    fn list_element(&mut self, frame: Frame, key: &[u8]) -> Option<Frame> {
        self.value(
            frame,
            key,
            |raw| Location::ListElement(raw.clone()),
            |c, d| c.open_list_element(d),
        )
    }

    fn member(&mut self, frame: Frame, key: &[u8], sorted: bool) -> Option<Frame> {
        self.value(
            frame,
            key,
            |raw| {
                if sorted {
                    Location::SortedSetMember(raw.clone())
                } else {
                    Location::SetMember(raw.clone())
                }
            },
            |c, d| c.open_member(d),
        )
    }

    /// A list value or an array of them (nil positions kept, failures dropped).
    fn list_values(&mut self, frame: Frame, key: &[u8]) -> Frame {
        match frame {
            Frame::Array { data, attributes } => Frame::Array {
                data: data
                    .into_iter()
                    .filter_map(|v| self.list_element(v, key))
                    .collect(),
                attributes,
            },
            other => self.list_element(other, key).unwrap_or(Frame::Null),
        }
    }

    /// A member, or an array of members / [member, score…] tuples (sorted
    /// sets and geo only: the rest of a tuple is scores and coordinates).
    fn members(&mut self, frame: Frame, key: &[u8], sorted: bool) -> Frame {
        let element = |this: &mut Self, item: Frame| -> Option<Frame> {
            match item {
                Frame::Array {
                    mut data,
                    attributes,
                } if sorted && !data.is_empty() => {
                    let first = data.remove(0);
                    let opened = this.member(first, key, sorted)?;
                    data.insert(0, opened);
                    Some(Frame::Array { data, attributes })
                }
                other => this.member(other, key, sorted),
            }
        };
        match frame {
            Frame::Array { data, attributes } => Frame::Array {
                data: data.into_iter().filter_map(|i| element(self, i)).collect(),
                attributes,
            },
            Frame::Set { data, attributes } => Frame::Set {
                data: data.into_iter().filter_map(|i| element(self, i)).collect(),
                attributes,
            },
            other => element(self, other).unwrap_or(Frame::Null),
        }
    }

    /// `[field, value, field, value…]` as in HSCAN, HRANDFIELD (RESP2 shape).
    fn flat_hash_pairs(&mut self, items: Vec<Frame>, key: &[u8]) -> Vec<Frame> {
        self.field_value_pairs(items, |o, value, name| o.hash_value(value, key, name))
    }

    /// `[field, value…]` with each value opened by `open(value, field name)`;
    /// pairs whose value does not open are left out.
    fn field_value_pairs(
        &mut self,
        items: Vec<Frame>,
        mut open: impl FnMut(&mut Self, Frame, &[u8]) -> Option<Frame>,
    ) -> Vec<Frame> {
        let mut out = Vec::with_capacity(items.len());
        let mut it = items.into_iter();
        while let (Some(field), Some(value)) = (it.next(), it.next()) {
            let name = text_of(&field)
                .map(Bytes::copy_from_slice)
                .unwrap_or_default();
            if let Some(v) = open(self, value, &name) {
                out.push(field);
                out.push(v);
            }
        }
        out
    }

    /// One stream entry `[id, [field, value…]]` of stream `key` (the fields
    /// are nil for an entry deleted while pending); `None` when it is not shaped so.
    fn entry(&mut self, entry: Frame, key: &[u8]) -> Option<Frame> {
        let (mut data, attributes) = match entry {
            // An entry deleted meanwhile (XCLAIM on Redis 6, an empty stream's first-entry).
            Frame::Null => return Some(Frame::Null),
            Frame::Array { data, attributes }
                if data.len() == 2
                    && text_of(&data[0]).is_some()
                    && matches!(data[1], Frame::Array { .. } | Frame::Null) =>
            {
                (data, attributes)
            }
            other => {
                self.forged(key, &other, "a stream entry [id, fields]", Frame::Null);
                return None;
            }
        };
        let fields = data.pop().expect("two elements");
        let id = data[0].clone();
        let id_text = text_of(&id).map(Bytes::copy_from_slice).unwrap_or_default();
        let fields = match fields {
            Frame::Array {
                data: items,
                attributes,
            } => {
                let out = self.field_value_pairs(items, |o, value, name| {
                    let id = id_text.clone();
                    o.value(
                        value,
                        key,
                        |stored| Location::StreamEntry {
                            id,
                            stored: stored.clone(),
                        },
                        |c, d| c.open_stream_value(key, name, d),
                    )
                });
                Frame::Array {
                    data: out,
                    attributes,
                }
            }
            other => other,
        };
        data.push(fields);
        Some(Frame::Array { data, attributes })
    }

    /// `[key, x…]` replies of pops across keys (BLPOP, LMPOP, BZPOPMIN, ZMPOP):
    /// element 1 opened with the key it came from; the whole reply is nil if it does not open.
    fn keyed(
        &mut self,
        frame: Frame,
        len: usize,
        open: impl FnOnce(&mut Self, Frame, &[u8]) -> Option<Frame>,
    ) -> Frame {
        match frame {
            Frame::Array {
                mut data,
                attributes,
            } if data.len() == len && text_of(&data[0]).is_some() => {
                let key = text_of(&data[0])
                    .map(Bytes::copy_from_slice)
                    .unwrap_or_default();
                let item = std::mem::replace(&mut data[1], Frame::Null);
                match open(self, item, &key) {
                    Some(opened) => {
                        data[1] = opened;
                        Frame::Array { data, attributes }
                    }
                    None => Frame::Null,
                }
            }
            Frame::Null => Frame::Null,
            other => self.forged(b"", &other, "a [key, …] array or nil", Frame::Null),
        }
    }

    /// An array of stream entries; entries not shaped as entries are left out.
    fn entries(&mut self, frame: Frame, key: &[u8]) -> Frame {
        match frame {
            Frame::Array { data, attributes } => Frame::Array {
                data: data
                    .into_iter()
                    .filter_map(|e| self.entry(e, key))
                    .collect(),
                attributes,
            },
            other => self.forged(key, &other, "an array of stream entries", array(vec![])),
        }
    }

    /// The elements popped by LMPOP/BLMPOP: an array, never a lone value.
    fn list_array(&mut self, frame: Frame, key: &[u8]) -> Option<Frame> {
        match frame {
            Frame::Array { .. } => Some(self.list_values(frame, key)),
            other => {
                self.forged(key, &other, "an array of list elements", Frame::Null);
                None
            }
        }
    }

    /// The members popped by ZMPOP/BZMPOP: an array of [member, score] pairs.
    fn member_array(&mut self, frame: Frame, key: &[u8]) -> Option<Frame> {
        match frame {
            Frame::Array { .. } => Some(self.members(frame, key, true)),
            other => {
                self.forged(key, &other, "an array of members", Frame::Null);
                None
            }
        }
    }
}

fn is_error(frame: &Frame) -> bool {
    matches!(frame, Frame::SimpleError { .. } | Frame::BlobError { .. })
}

pub(super) fn open(crypt: &ValueCrypt, plan: &OpenPlan, frame: Frame) -> Opened {
    if is_error(&frame) {
        return Opened {
            frame,
            failures: Vec::new(),
        };
    }
    let mut o = Opener {
        crypt,
        failures: Vec::new(),
    };
    let args = &plan.args;
    let key: &[u8] = args.get(1).map(|k| k.as_ref()).unwrap_or_default();
    let form = super::reads::form(plan.rule, args);
    let frame = form.before_opening(frame);
    if let Some((expected, miss)) = misshapen(plan, &frame) {
        let miss = o.forged(first_key(plan), &frame, expected, miss);
        return finish(crypt, o, miss);
    }
    let mut frame = frame;
    if without_values(plan, &mut o, &mut frame) {
        return finish(crypt, o, frame);
    }
    let frame = match plan.rule {
        ValueRule::StringSet | ValueRule::StringSwap | ValueRule::StringGet => {
            o.string(frame, key).unwrap_or(Frame::Null)
        }
        ValueRule::MGet => match frame {
            Frame::Array { data, attributes } => Frame::Array {
                data: data
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let k = args.get(i + 1).map(|k| k.as_ref()).unwrap_or_default();
                        o.string(v, k).unwrap_or(Frame::Null)
                    })
                    .collect(),
                attributes,
            },
            other => other,
        },
        ValueRule::HashGet => {
            let field = args.get(2).cloned().unwrap_or_default();
            o.hash_value(frame, key, &field).unwrap_or(Frame::Null)
        }
        ValueRule::HashMGet => match frame {
            Frame::Array { data, attributes } => Frame::Array {
                data: data
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let field = args.get(i + 2).cloned().unwrap_or_default();
                        o.hash_value(v, key, &field).unwrap_or(Frame::Null)
                    })
                    .collect(),
                attributes,
            },
            other => other,
        },
        ValueRule::HashGetAll | ValueRule::HashVals => {
            let values_only = plan.rule == ValueRule::HashVals;
            let pairs: Vec<(Frame, Frame)> = match frame {
                Frame::Map { data, .. } => data.into_iter().collect(),
                Frame::Array { data, .. } => {
                    let mut it = data.into_iter();
                    std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect()
                }
                other => return finish(crypt, o, other),
            };
            let mut opened = Vec::with_capacity(pairs.len());
            for (field, value) in pairs {
                let name = text_of(&field)
                    .map(Bytes::copy_from_slice)
                    .unwrap_or_default();
                if let Some(v) = o.hash_value(value, key, &name) {
                    opened.push((field, v));
                }
            }
            if values_only {
                array(opened.into_iter().map(|(_, v)| v).collect())
            } else {
                crate::protocol::reply::map(opened)
            }
        }
        ValueRule::HashRandField => match frame {
            // RESP3: [[field, value], …]; RESP2: [field, value, …].
            Frame::Array { data, attributes }
                if data
                    .first()
                    .is_some_and(|f| matches!(f, Frame::Array { .. })) =>
            {
                let data = data
                    .into_iter()
                    .filter_map(|pair| match pair {
                        Frame::Array { data, attributes } if data.len() == 2 => {
                            let opened = o.flat_hash_pairs(data, key);
                            (!opened.is_empty()).then_some(Frame::Array {
                                data: opened,
                                attributes,
                            })
                        }
                        other => {
                            o.forged(key, &other, "a [field, value] pair", Frame::Null);
                            None
                        }
                    })
                    .collect();
                Frame::Array { data, attributes }
            }
            Frame::Array { data, attributes } => Frame::Array {
                data: o.flat_hash_pairs(data, key),
                attributes,
            },
            other => other,
        },
        ValueRule::HashScan => scan_reply(frame, |items| o.flat_hash_pairs(items, key)),
        ValueRule::ListReply => o.list_values(frame, key),
        ValueRule::ListKeyedPop => o.keyed(frame, 2, |o, v, k| o.list_element(v, k)),
        ValueRule::ListMultiPop => o.keyed(frame, 2, |o, v, k| o.list_array(v, k)),
        ValueRule::MemberReply | ValueRule::GeoSearch => {
            let sorted = !super::syntax_of(args).set();
            o.members(frame, key, sorted)
        }
        ValueRule::SetScan => {
            scan_reply(frame, |items| match o.members(array(items), key, false) {
                Frame::Array { data, .. } => data,
                _ => Vec::new(),
            })
        }
        ValueRule::ZScan => scan_reply(frame, |items| {
            let mut out = Vec::with_capacity(items.len());
            let mut it = items.into_iter();
            while let (Some(member), Some(score)) = (it.next(), it.next()) {
                if let Some(m) = o.member(member, key, true) {
                    out.push(m);
                    out.push(score);
                }
            }
            out
        }),
        ValueRule::ZKeyedPop => o.keyed(frame, 3, |o, m, k| o.member(m, k, true)),
        ValueRule::ZMultiPop => o.keyed(frame, 2, |o, m, k| o.member_array(m, k)),
        ValueRule::XEntries => o.entries(frame, key),
        ValueRule::XRead => match frame {
            Frame::Map { data, attributes } => Frame::Map {
                data: data
                    .into_iter()
                    .map(|(k, entries)| {
                        let stream = text_of(&k).map(Bytes::copy_from_slice).unwrap_or_default();
                        (k, o.entries(entries, &stream))
                    })
                    .collect(),
                attributes,
            },
            Frame::Array { data, attributes } => Frame::Array {
                data: data
                    .into_iter()
                    .filter_map(|pair| match pair {
                        Frame::Array {
                            mut data,
                            attributes,
                        } if data.len() == 2 => {
                            let stream = text_of(&data[0])
                                .map(Bytes::copy_from_slice)
                                .unwrap_or_default();
                            let entries = data.pop().expect("two elements");
                            data.push(o.entries(entries, &stream));
                            Some(Frame::Array { data, attributes })
                        }
                        other => {
                            o.forged(key, &other, "a [stream, entries] pair", Frame::Null);
                            None
                        }
                    })
                    .collect(),
                attributes,
            },
            other => other,
        },
        ValueRule::XAutoClaim => match frame {
            Frame::Array {
                mut data,
                attributes,
            } if data.len() >= 2 => {
                let entries = std::mem::replace(&mut data[1], Frame::Null);
                data[1] = o.entries(entries, key);
                Frame::Array { data, attributes }
            }
            other => other,
        },
        ValueRule::XInfoStream => {
            let stream = args.get(2).cloned().unwrap_or_default();
            match frame {
                Frame::Map { data, attributes } => Frame::Map {
                    data: data
                        .into_iter()
                        .map(|(k, v)| {
                            let v = match text_of(&k) {
                                Some(b"first-entry" | b"last-entry") => {
                                    o.entry(v, &stream).unwrap_or(Frame::Null)
                                }
                                Some(b"entries") => o.entries(v, &stream),
                                _ => v,
                            };
                            (k, v)
                        })
                        .collect(),
                    attributes,
                },
                other => other,
            }
        }
        // Rules whose replies carry no values.
        ValueRule::StringValueAt(_)
        | ValueRule::MSet
        | ValueRule::HashSet
        | ValueRule::ListPush
        | ValueRule::ListSet
        | ValueRule::MembersFrom(_)
        | ValueRule::MemberAt(_)
        | ValueRule::GeoDist
        | ValueRule::ZAdd
        | ValueRule::GeoAdd
        | ValueRule::XAdd
        | ValueRule::Publish
        | ValueRule::RangeStore => frame,
    };
    let frame = form.arrange(frame);
    let frame = match plan.proto {
        Protocol::Resp2 => resp2_shape(plan, frame),
        Protocol::Resp3 => frame,
    };
    finish(crypt, o, frame)
}

/// The key a failure of the whole reply is logged under: the first key the
/// command names, as its key specifications find it.
fn first_key(plan: &OpenPlan) -> &[u8] {
    let args = &plan.args;
    let at = crate::commands::row_of(args)
        .and_then(|spec| key_args(&spec.keys, args).first().map(|k| k.index))
        .unwrap_or(1);
    args.get(at).map(|k| k.as_ref()).unwrap_or_default()
}

/// GEORADIUS[BYMEMBER] … STORE/STOREDIST: the reply is a count, not members.
fn stores(plan: &OpenPlan) -> bool {
    match super::syntax_of(&plan.args) {
        Syntax::Geo(geo) => geo_options(geo, &plan.args).is_some_and(|o| o.store),
        _ => false,
    }
}

/// When a rule's reply is not shaped as it may be as a whole: what was
/// expected, and the miss answer. Rules whose reply is one value leave the
/// check to the value itself.
pub(super) fn misshapen(plan: &OpenPlan, frame: &Frame) -> Option<(&'static str, Frame)> {
    let args = &plan.args;
    let syntax = super::syntax_of(args);
    let len = match frame {
        Frame::Array { data, .. } => Some(data.len()),
        _ => None,
    };
    let nil = matches!(frame, Frame::Null);
    let expect = |ok: bool, expected: &'static str, miss: Frame| (!ok).then_some((expected, miss));
    match plan.rule {
        ValueRule::MGet | ValueRule::HashMGet => {
            let skip = if plan.rule == ValueRule::MGet { 1 } else { 2 };
            let n = args.len().saturating_sub(skip);
            expect(
                len == Some(n),
                "an array of one value per key or field",
                array(vec![Frame::Null; n]),
            )
        }
        ValueRule::HashGetAll | ValueRule::HashVals => {
            let miss = if plan.rule == ValueRule::HashVals {
                array(vec![])
            } else {
                crate::protocol::reply::map(vec![])
            };
            let ok = matches!(frame, Frame::Map { .. }) || len.is_some_and(|n| n % 2 == 0);
            expect(ok, "a map of fields and values", miss)
        }
        ValueRule::HashRandField => expect(len.is_some(), "an array", array(vec![])),
        // XRANGE/XREVRANGE … COUNT 0: Redis's null array.
        ValueRule::XEntries => expect(len.is_some() || nil, "an array", array(vec![])),
        ValueRule::HashScan | ValueRule::SetScan | ValueRule::ZScan => {
            let ok = matches!(frame, Frame::Array { data, .. }
                if data.len() == 2 && text_of(&data[0]).is_some() && matches!(data[1], Frame::Array { .. }));
            expect(
                ok,
                "a [cursor, elements] array",
                array(vec![bulk("0"), array(vec![])]),
            )
        }
        ValueRule::ListReply => {
            let counted = syntax == Syntax::ListPop && args.len() > 2;
            if syntax == Syntax::ListRange {
                expect(len.is_some(), "an array", array(vec![]))
            } else if counted {
                expect(nil || len.is_some(), "an array or nil", Frame::Null)
            } else {
                None
            }
        }
        ValueRule::ListKeyedPop | ValueRule::ListMultiPop | ValueRule::ZMultiPop => expect(
            nil || len == Some(2),
            "a [key, …] array or nil",
            Frame::Null,
        ),
        ValueRule::ZKeyedPop => expect(
            nil || len == Some(3),
            "a [key, member, score] array or nil",
            Frame::Null,
        ),
        ValueRule::MemberReply | ValueRule::GeoSearch => {
            let one = args.len() == 2;
            if stores(plan) {
                expect(matches!(frame, Frame::Number { .. }), "an integer", int(0))
            } else if one && matches!(syntax, Syntax::SetPick | Syntax::ZRandMember) {
                None
            } else if one && matches!(syntax, Syntax::ZPop(_)) {
                expect(
                    matches!(len, Some(0 | 2)),
                    "a [member, score] array",
                    array(vec![]),
                )
            } else {
                let ok = len.is_some() || matches!(frame, Frame::Set { .. });
                expect(ok, "an array of members", array(vec![]))
            }
        }
        ValueRule::XRead => expect(
            nil || len.is_some() || matches!(frame, Frame::Map { .. }),
            "a map of streams or nil",
            Frame::Null,
        ),
        ValueRule::XAutoClaim => {
            let ok = matches!(frame, Frame::Array { data, .. }
                if data.len() >= 2 && text_of(&data[0]).is_some() && matches!(data[1], Frame::Array { .. }));
            expect(
                ok,
                "a [cursor, entries, deleted] array",
                array(vec![bulk("0-0"), array(vec![]), array(vec![])]),
            )
        }
        ValueRule::XInfoStream => expect(matches!(frame, Frame::Map { .. }), "a map", Frame::Null),
        _ => None,
    }
}

/// Replies of value-reading commands that, with these arguments, hold no
/// value (GEORADIUS … STORE, XCLAIM … JUSTID, XRANGE … COUNT 0's null) or
/// only one beside a score (ZPOPMIN without a count).
pub(super) fn valueless(plan: &OpenPlan, frame: &Frame) -> bool {
    let justid = || {
        plan.args
            .iter()
            .skip(2)
            .any(|a| a.eq_ignore_ascii_case(b"JUSTID"))
    };
    match plan.rule {
        ValueRule::MemberReply | ValueRule::GeoSearch if stores(plan) => true,
        ValueRule::XEntries | ValueRule::XAutoClaim if justid() => true,
        ValueRule::XEntries if matches!(frame, Frame::Null) => true,
        ValueRule::MemberReply => lone_pop(plan),
        _ => false,
    }
}

/// ZPOPMIN/ZPOPMAX without a count: a flat `[member, score]`.
pub(super) fn lone_pop(plan: &OpenPlan) -> bool {
    plan.args.len() == 2 && matches!(super::syntax_of(&plan.args), Syntax::ZPop(_))
}

/// The [`valueless`] replies: `true` when `frame`, opened if need be, is the
/// reply to return; `false` leaves it to the general walk.
fn without_values(plan: &OpenPlan, o: &mut Opener<'_>, frame: &mut Frame) -> bool {
    if !valueless(plan, frame) {
        return false;
    }
    if plan.rule == ValueRule::MemberReply && lone_pop(plan) {
        let key: &[u8] = plan.args.get(1).map(|k| k.as_ref()).unwrap_or_default();
        // A flat [member, score]: the score is no value.
        let Frame::Array { data, .. } = frame else {
            return true;
        };
        let mut items = std::mem::take(data).into_iter();
        if let (Some(member), Some(score)) = (items.next(), items.next())
            && let Some(member) = o.member(member, key, true)
        {
            *data = vec![member, score];
        }
    }
    true
}

/// Replies Redis shapes differently for RESP2 clients, beyond what the
/// encoder's generic RESP3 → RESP2 rendering does: `[member, score]` and
/// `[field, value]` pairs are flattened into one array (ZRANGE … WITHSCORES,
/// ZUNION, ZPOPMIN with a count, HRANDFIELD … WITHVALUES), and XREAD's map of
/// streams is an array of `[stream, entries]` pairs, not a flat list.
fn resp2_shape(plan: &OpenPlan, frame: Frame) -> Frame {
    let sorted_set = super::syntax_of(&plan.args).sorted_set();
    match (plan.rule, frame) {
        (ValueRule::MemberReply, Frame::Array { data, attributes }) if sorted_set => Frame::Array {
            data: flatten_pairs(data),
            attributes,
        },
        (ValueRule::HashRandField, Frame::Array { data, attributes }) => Frame::Array {
            data: flatten_pairs(data),
            attributes,
        },
        (ValueRule::XRead, Frame::Map { data, attributes }) => Frame::Array {
            data: data
                .into_iter()
                .map(|(stream, entries)| array(vec![stream, entries]))
                .collect(),
            attributes,
        },
        (_, frame) => frame,
    }
}

/// `[[a, b], [c, d]]` → `[a, b, c, d]`; elements that are not arrays stay.
fn flatten_pairs(items: Vec<Frame>) -> Vec<Frame> {
    let mut out = Vec::with_capacity(items.len() * 2);
    for item in items {
        match item {
            Frame::Array { data, .. } => out.extend(data),
            other => out.push(other),
        }
    }
    out
}

/// `on_decrypt_failure: error` turns any failure into an error reply.
fn finish(crypt: &ValueCrypt, o: Opener<'_>, frame: Frame) -> Opened {
    let failures = o.failures;
    if crypt.on_failure == DecryptFailure::Error
        && let Some(first) = failures.first()
    {
        let msg = format!(
            "ERR sealcache: a value at key '{}' failed to decrypt ({}); on_decrypt_failure is 'error'",
            String::from_utf8_lossy(&first.key),
            first.reason
        );
        return Opened {
            frame: error(msg),
            failures,
        };
    }
    Opened { frame, failures }
}

/// `[cursor, [items…]]` with the items rewritten.
pub(super) fn scan_reply(frame: Frame, rewrite: impl FnOnce(Vec<Frame>) -> Vec<Frame>) -> Frame {
    match frame {
        Frame::Array {
            mut data,
            attributes,
        } if data.len() == 2 => {
            if let Frame::Array {
                data: items,
                attributes: inner,
            } = data.pop().expect("two elements")
            {
                data.push(Frame::Array {
                    data: rewrite(items),
                    attributes: inner,
                });
            }
            Frame::Array { data, attributes }
        }
        other => other,
    }
}

/// Opens the payload of `message`/`pmessage`/`smessage` pushes in place.
pub(super) fn open_push(crypt: &ValueCrypt, frame: &mut Frame) -> bool {
    let (Frame::Push { data, .. } | Frame::Array { data, .. }) = frame else {
        return true;
    };
    let (channel_at, payload_at) = match data.first().and_then(text_of) {
        Some(b"message" | b"smessage") => (1, 2),
        Some(b"pmessage") => (2, 3),
        _ => return true,
    };
    let channel = data
        .get(channel_at)
        .and_then(text_of)
        .map(Bytes::copy_from_slice)
        .unwrap_or_default();
    let opened = match data.get(payload_at) {
        Some(Frame::BlobString { data: payload, .. }) => crypt
            .open_message(&channel, payload)
            .map_err(FailureReason::from),
        other => Err(FailureReason::NotSealed {
            found: other.map_or("nothing", crate::protocol::reply::kind_name),
        }),
    };
    match opened {
        Ok(plain) => {
            data[payload_at] = bulk(plain);
            true
        }
        Err(reason) => {
            crypt
                .failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(channel = %crate::logging::Untrusted(&channel), %reason, "Pub/Sub message failed to decrypt; dropped");
            false
        }
    }
}
