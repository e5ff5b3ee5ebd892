//! Reads that cannot be left to the upstream as the client wrote them,
//! because Redis would compare ciphertext: sealcache rewords them on the way
//! up and finishes the reply itself, over the opened members, as
//! redis-server does over plaintext.
//!
//! - SSCAN/ZSCAN `MATCH`: left out upstream and applied to the opened
//!   members, after the upstream has picked them (as Redis filters after it
//!   picks), so cursors keep their meaning; `COUNT` goes up unchanged.
//! - Equal scores: members of equal score come from the upstream in
//!   ciphertext order. Replies that hold them in sorted-set order (ranges,
//!   ZUNION/ZINTER/ZDIFF, pops, ZRANDMEMBER's whole set, ZSCAN of a small
//!   set) are asked `WITHSCORES` when the client did not ask, their
//!   equal-score runs put in plaintext order, and the scores the client did
//!   not ask for taken out again.
//! - Geo searches: members at the same position (equal geohash) are ordered
//!   the same way, with `WITHHASH` asked for and taken out again.
//!
//! [`form`] is computed from the client's arguments both when the command is
//! written upstream ([`Form::upstream_args`]) and when its reply is opened
//! ([`Form::before_opening`], [`Form::arrange`]), so the two always agree.

use bytes::Bytes;

use super::reply::scan_reply;
use crate::commands::{Syntax, ValueRule};
use crate::protocol::Frame;
use crate::protocol::reply::text_of;
use crate::semantics::geo::{GeoOptions, geo_options};
use crate::semantics::glob;
use crate::semantics::scan::scan_match;
use crate::semantics::zset::{
    self, Direction, RANDOM_COUNT_WITH_SCORES_MAX, RangeKind, order_ties,
};

/// How a read goes upstream and how its opened reply is finished.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Form {
    /// As the client sent it; the reply needs nothing beyond opening.
    AsSent,
    /// SSCAN/ZSCAN: the `MATCH` options (at these indices) left out upstream,
    /// `pattern` applied to the opened members; ZSCAN's equal scores ordered.
    Scan {
        pattern: Option<Bytes>,
        match_at: Vec<usize>,
        scored: bool,
    },
    /// Members with scores, in sorted-set order.
    Scored(Scored),
    /// ZMPOP/BZMPOP: `[key, [[member, score] …]]`.
    MultiPop(Direction),
    /// A geo search answered with members.
    Geo {
        options: GeoOptions,
        /// `WITHHASH` was added upstream: take the hashes out again.
        hash_added: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Scored {
    /// `WITHSCORES` was added upstream: take the scores out again.
    pub(super) added: bool,
    pub(super) direction: Direction,
    /// ZRANDMEMBER: only a reply in score order (`direction`) is the whole
    /// set in order (a smaller count picks members at random).
    only_if_sorted: bool,
    /// ZRANDMEMBER: a count larger than Redis takes with WITHSCORES, sent
    /// as the largest it takes (both ask for the whole set).
    cap_count: bool,
}

impl Scored {
    /// Whether the equal-score runs of a reply with these scores are put in
    /// order: always, except ZRANDMEMBER's reply that is not the whole set
    /// in score order (then its members were picked at random).
    pub(super) fn orders_ties(&self, mut scores: impl Iterator<Item = f64>) -> bool {
        if !self.only_if_sorted {
            return true;
        }
        let Some(mut before) = scores.next() else {
            return true;
        };
        scores.all(|next| {
            let ordered = match self.direction {
                Direction::Ascending => before <= next,
                Direction::Descending => before >= next,
            };
            before = next;
            ordered
        })
    }

    fn new(client_scores: bool, direction: Direction) -> Scored {
        Scored {
            added: !client_scores,
            direction,
            only_if_sorted: false,
            cap_count: false,
        }
    }
}

/// The form of a command of rule `rule` with the client's `args` (its
/// name first, which says its row of the table and so its [`Syntax`]).
pub(super) fn form(rule: ValueRule, args: &[Bytes]) -> Form {
    let syntax = super::syntax_of(args);
    match rule {
        ValueRule::SetScan | ValueRule::ZScan => {
            let scored = rule == ValueRule::ZScan;
            match scan_match(args, 3, false) {
                // Without a pattern (none, or a lone `*` last) the upstream
                // filters nothing either: the command goes up as sent.
                Some(m) if m.pattern.is_some() => Form::Scan {
                    pattern: m.pattern,
                    match_at: m.at,
                    scored,
                },
                Some(_) if scored => Form::Scan {
                    pattern: None,
                    match_at: Vec::new(),
                    scored,
                },
                _ => Form::AsSent,
            }
        }
        ValueRule::MemberReply | ValueRule::GeoSearch => member_reply_form(syntax, args),
        ValueRule::ZMultiPop => match syntax {
            Syntax::ZMultiPop { numkeys_at } => {
                zset::multi_pop_direction(numkeys_at, args).map_or(Form::AsSent, Form::MultiPop)
            }
            _ => Form::AsSent,
        },
        _ => Form::AsSent,
    }
}

fn member_reply_form(syntax: Syntax, args: &[Bytes]) -> Form {
    use Direction::*;
    let scored = match syntax {
        Syntax::ZRange(range) => zset::range_options(range, args)
            .filter(|o| o.kind != RangeKind::Lex)
            .map(|o| Scored::new(o.withscores, o.direction)),
        Syntax::ZCombine { weighted } => {
            zset::combine_withscores(weighted, args).map(|ws| Scored::new(ws, Ascending))
        }
        // With a count: nested [member, score] pairs (without, one member).
        Syntax::ZPop(direction) if args.len() == 3 => Some(Scored::new(true, direction)),
        // A positive count of 2 or more may return the whole set, walked
        // from its end (a count of 1 or a negative one picks at random).
        Syntax::ZRandMember => zset::random_count(args)
            .filter(|(count, _)| *count >= 2)
            .map(|(count, withscores)| Scored {
                only_if_sorted: true,
                cap_count: !withscores && count > RANDOM_COUNT_WITH_SCORES_MAX,
                ..Scored::new(withscores, Descending)
            }),
        Syntax::Geo(geo) => {
            return match geo_options(geo, args) {
                Some(options) if !options.store => Form::Geo {
                    options,
                    hash_added: !options.withhash,
                },
                _ => Form::AsSent,
            };
        }
        _ => None,
    };
    scored.map_or(Form::AsSent, Form::Scored)
}

impl Form {
    /// The arguments the upstream gets instead of the client's, or `None`
    /// when they go up as sent.
    pub(super) fn upstream_args(&self, args: &[Bytes]) -> Option<Vec<Bytes>> {
        match self {
            Form::Scan { match_at, .. } if !match_at.is_empty() => Some(
                args.iter()
                    .enumerate()
                    .filter(|(i, _)| !match_at.iter().any(|m| *i == *m || *i == m + 1))
                    .map(|(_, a)| a.clone())
                    .collect(),
            ),
            Form::Scored(s) if s.added => {
                let mut out = args.to_vec();
                if s.cap_count {
                    out[2] = Bytes::from(RANDOM_COUNT_WITH_SCORES_MAX.to_string());
                }
                out.push(Bytes::from_static(b"WITHSCORES"));
                Some(out)
            }
            Form::Geo {
                hash_added: true, ..
            } => {
                let mut out = args.to_vec();
                out.push(Bytes::from_static(b"WITHHASH"));
                Some(out)
            }
            _ => None,
        }
    }

    /// Before the members are opened: an upstream speaking RESP2 answers
    /// scored replies flat (`[m, s, m, s]`); pair them up as RESP3 does, so
    /// the opener sees one shape.
    pub(super) fn before_opening(&self, frame: Frame) -> Frame {
        match (self, frame) {
            (
                Form::Scored(_),
                Frame::Array {
                    data, attributes, ..
                },
            ) if data
                .first()
                .is_some_and(|f| !matches!(f, Frame::Array { .. })) =>
            {
                let mut pairs = Vec::with_capacity(data.len() / 2);
                let mut items = data.into_iter();
                while let (Some(member), Some(score)) = (items.next(), items.next()) {
                    pairs.push(crate::protocol::reply::array(vec![member, score]));
                }
                Frame::Array {
                    data: pairs,
                    attributes,
                }
            }
            (_, frame) => frame,
        }
    }

    /// After the members are opened: the reply as redis-server gives it over
    /// plaintext (filtered, equal scores ordered, added fields taken out).
    pub(super) fn arrange(&self, frame: Frame) -> Frame {
        match self {
            Form::AsSent => frame,
            Form::Scan {
                pattern, scored, ..
            } => scan_reply(frame, |items| {
                let step = if *scored { 2 } else { 1 };
                let mut kept = filter_chunks(items, step, pattern.as_deref());
                if *scored {
                    order_flat_pairs(&mut kept, Direction::Ascending);
                }
                kept
            }),
            Form::Scored(s) => match frame {
                Frame::Array { data, attributes } => Frame::Array {
                    data: order_scored(data, s),
                    attributes,
                },
                other => other,
            },
            Form::MultiPop(direction) => match frame {
                Frame::Array {
                    mut data,
                    attributes,
                } if data.len() == 2 => {
                    if let Frame::Array { data: items, .. } = &mut data[1] {
                        order_ties(items, pair_score, member_of, *direction);
                    }
                    Frame::Array { data, attributes }
                }
                other => other,
            },
            Form::Geo {
                options,
                hash_added,
            } => match frame {
                Frame::Array {
                    mut data,
                    attributes,
                } => {
                    let at = options.hash_index();
                    if options.nested() || *hash_added {
                        order_ties(
                            &mut data,
                            |i| geohash(i, at),
                            member_of,
                            Direction::Ascending,
                        );
                    }
                    if *hash_added {
                        data = data.into_iter().map(|i| without_hash(i, at)).collect();
                    }
                    Frame::Array { data, attributes }
                }
                other => other,
            },
        }
    }
}

/// Keeps the chunks of `step` items whose first item matches `pattern` (all
/// of them without a pattern).
fn filter_chunks(items: Vec<Frame>, step: usize, pattern: Option<&[u8]>) -> Vec<Frame> {
    let Some(pattern) = pattern else {
        return items;
    };
    let mut kept = Vec::with_capacity(items.len());
    let mut it = items.into_iter().peekable();
    while let Some(first) = it.next() {
        let keep = text_of(&first).is_some_and(|m| glob::matches(pattern, m));
        let rest: Vec<Frame> = (1..step).filter_map(|_| it.next()).collect();
        if keep {
            kept.push(first);
            kept.extend(rest);
        }
    }
    kept
}

/// Orders the equal-score runs of a flat `[member, score, …]` list.
fn order_flat_pairs(items: &mut Vec<Frame>, direction: Direction) {
    let mut pairs: Vec<(Frame, Frame)> = Vec::with_capacity(items.len() / 2);
    let mut it = std::mem::take(items).into_iter();
    while let (Some(m), Some(s)) = (it.next(), it.next()) {
        pairs.push((m, s));
    }
    order_ties(
        &mut pairs,
        |(_, s)| score(s),
        |(m, _)| text_of(m).unwrap_or_default(),
        direction,
    );
    *items = pairs.into_iter().flat_map(|(m, s)| [m, s]).collect();
}

/// Orders `[member, score]` pairs and takes the scores out if sealcache added them.
fn order_scored(mut items: Vec<Frame>, s: &Scored) -> Vec<Frame> {
    if s.orders_ties(items.iter().map(pair_score)) {
        order_ties(&mut items, pair_score, member_of, s.direction);
    }
    if s.added {
        items = items
            .into_iter()
            .map(|pair| match pair {
                Frame::Array { mut data, .. } if !data.is_empty() => data.swap_remove(0),
                other => other,
            })
            .collect();
    }
    items
}

/// A score as the upstream sends it: a RESP3 double, or text from RESP2
/// (and in SCAN replies). Anything else compares unequal to everything.
pub(super) fn score(frame: &Frame) -> f64 {
    match frame {
        Frame::Double { data, .. } => *data,
        Frame::Number { data, .. } => *data as f64,
        other => text_of(other)
            .and_then(|t| std::str::from_utf8(t).ok())
            .and_then(|t| t.parse().ok())
            .unwrap_or(f64::NAN),
    }
}

fn pair_score(pair: &Frame) -> f64 {
    match pair {
        Frame::Array { data, .. } if data.len() == 2 => score(&data[1]),
        _ => f64::NAN,
    }
}

/// The plaintext member of an item: the item itself, or the first element
/// of an array item.
fn member_of(item: &Frame) -> &[u8] {
    match item {
        Frame::Array { data, .. } => data.first().and_then(text_of).unwrap_or_default(),
        other => text_of(other).unwrap_or_default(),
    }
}

/// The geohash of a nested geo result (52 bits: exact as an `f64`); NaN,
/// unequal to any hash, when the item is not what was asked for.
fn geohash(item: &Frame, at: usize) -> f64 {
    match item {
        Frame::Array { data, .. } => match data.get(at) {
            Some(Frame::Number { data, .. }) => *data as f64,
            _ => f64::NAN,
        },
        _ => f64::NAN,
    }
}

/// A nested geo result without the hash sealcache asked for; a bare member
/// when nothing else was asked.
fn without_hash(item: Frame, at: usize) -> Frame {
    match item {
        Frame::Array {
            mut data,
            attributes,
        } if data.len() > at => {
            data.remove(at);
            if data.len() == 1 {
                data.pop().expect("one element")
            } else {
                Frame::Array { data, attributes }
            }
        }
        other => other,
    }
}
