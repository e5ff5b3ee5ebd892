//! Opening the values inside upstream replies, shape by shape. Error replies
//! pass unchanged. A value that fails to open becomes nil where the reply is
//! positional (GET, MGET, HMGET) and is left out where it is a collection
//! (LRANGE, SMEMBERS, HGETALL…), unless `on_decrypt_failure: error`.

use bytes::Bytes;

use super::{Failure, Location, OpenPlan, ValueCrypt};
use crate::commands::ValueRule;
use crate::config::DecryptFailure;
use crate::crypto::OpenError;
use crate::protocol::reply::{array, bulk, error, text_of};
use crate::protocol::{Frame, Protocol};

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
    fn fail(&mut self, key: &[u8], location: Location, reason: OpenError) {
        self.failures.push(Failure {
            key: Bytes::copy_from_slice(key),
            location,
            reason,
        });
    }

    /// A bulk value opened with `open`; nil stays nil; `None` when it failed.
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
            other => Some(other),
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

    /// A member, or an array of members / [member, score…] tuples.
    fn members(&mut self, frame: Frame, key: &[u8], sorted: bool) -> Frame {
        let element = |this: &mut Self, item: Frame| -> Option<Frame> {
            match item {
                Frame::Array {
                    mut data,
                    attributes,
                } if !data.is_empty() => {
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

    /// One stream entry `[id, [field, value…]]` of stream `key`.
    fn entry(&mut self, entry: Frame, key: &[u8]) -> Frame {
        let Frame::Array {
            mut data,
            attributes,
        } = entry
        else {
            return entry;
        };
        if data.len() != 2 {
            return Frame::Array { data, attributes };
        }
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
        Frame::Array { data, attributes }
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
            } if data.len() == len => {
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
            other => other,
        }
    }

    fn entries(&mut self, frame: Frame, key: &[u8]) -> Frame {
        match frame {
            Frame::Array { data, attributes } => Frame::Array {
                data: data.into_iter().map(|e| self.entry(e, key)).collect(),
                attributes,
            },
            other => other,
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
                        Frame::Array { data, attributes } => {
                            let opened = o.flat_hash_pairs(data, key);
                            (!opened.is_empty()).then_some(Frame::Array {
                                data: opened,
                                attributes,
                            })
                        }
                        other => Some(other),
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
        ValueRule::ListMultiPop => o.keyed(frame, 2, |o, v, k| Some(o.list_values(v, k))),
        ValueRule::MemberReply | ValueRule::GeoSearch => {
            let sorted = !matches!(plan.args.first().map(|a| a.to_ascii_uppercase()), Some(n) if n.starts_with(b"S"));
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
        ValueRule::ZMultiPop => o.keyed(frame, 2, |o, m, k| Some(o.members(m, k, true))),
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
                    .map(|pair| match pair {
                        Frame::Array {
                            mut data,
                            attributes,
                        } if data.len() == 2 => {
                            let stream = text_of(&data[0])
                                .map(Bytes::copy_from_slice)
                                .unwrap_or_default();
                            let entries = data.pop().expect("two elements");
                            data.push(o.entries(entries, &stream));
                            Frame::Array { data, attributes }
                        }
                        other => other,
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
                                Some(b"first-entry" | b"last-entry") => o.entry(v, &stream),
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

/// Replies Redis shapes differently for RESP2 clients, beyond what the
/// encoder's generic RESP3 → RESP2 rendering does: `[member, score]` and
/// `[field, value]` pairs are flattened into one array (ZRANGE … WITHSCORES,
/// ZUNION, ZPOPMIN with a count, HRANDFIELD … WITHVALUES), and XREAD's map of
/// streams is an array of `[stream, entries]` pairs, not a flat list.
fn resp2_shape(plan: &OpenPlan, frame: Frame) -> Frame {
    let sorted_set = plan
        .args
        .first()
        .is_some_and(|name| name.first().is_some_and(|c| c.eq_ignore_ascii_case(&b'Z')));
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
    let Some(channel) = data
        .get(channel_at)
        .and_then(text_of)
        .map(Bytes::copy_from_slice)
    else {
        return true;
    };
    let Some(payload) = data.get(payload_at).and_then(text_of) else {
        return true;
    };
    match crypt.open_message(&channel, payload) {
        Ok(plain) => {
            data[payload_at] = bulk(plain);
            true
        }
        Err(reason) => {
            crypt
                .failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(channel = %String::from_utf8_lossy(&channel), %reason, "Pub/Sub message failed to decrypt; dropped");
            false
        }
    }
}
