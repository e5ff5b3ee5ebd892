//! The direct encoder against the general path (open the frame, then encode
//! it), on random replies to every many-value read: well-formed ones, which
//! must take the direct path, and hostile ones (values that do not open,
//! nils, wrong types, attributes, odd and wrong lengths, the wrong aggregate).

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use redis_protocol::resp3::types::BytesAttributes;

use crate::backend::Reply;
use crate::commands::{Command, Policy};
use crate::config::DecryptFailure;
use crate::crypto::{Sealer, ValueContext};
use crate::keys::{KeyRing, MasterKey};
use crate::protocol::reply::{NullStyle, array, bulk, double_text, int, map, simple};
use crate::protocol::{Frame, Protocol};
use crate::values::{OpenPlan, ValueCrypt, prepare};

fn crypt(on_failure: DecryptFailure) -> ValueCrypt {
    let keyring = KeyRing::from_master(&MasterKey::from_bytes(&[7; 32]));
    ValueCrypt::new(Sealer::new(&keyring), "test", on_failure)
}

/// One value in a reply, as the upstream sends it.
#[derive(Debug, Clone)]
enum Item {
    /// Sealed for its place in the reply.
    Good(Vec<u8>),
    Nil,
    /// Sealed for another key, field or kind of value.
    Misbound(Vec<u8>),
    /// Bytes that are no envelope.
    Garbage(Vec<u8>),
    Simple,
    Number,
}

impl Item {
    fn good(&self) -> bool {
        matches!(self, Item::Good(_))
    }
}

/// Short plaintexts from a small alphabet, so equal members (and equal
/// scores) are common.
fn plaintext() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'c')], 0..3)
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        24 => plaintext().prop_map(Item::Good),
        1 => Just(Item::Nil),
        1 => plaintext().prop_map(Item::Misbound),
        1 => proptest::collection::vec(any::<u8>(), 0..60).prop_map(Item::Garbage),
        1 => Just(Item::Simple),
        1 => Just(Item::Number),
    ]
}

/// Where a value sits: what its envelope is bound to (key `k` unless named).
enum Place {
    String(String),
    Hash(String),
    List,
    Stream(String),
    Member,
}

fn seal(c: &ValueCrypt, place: &Place, item: &Item) -> Frame {
    let ns: &[u8] = &c.namespace;
    let sealed = |place: &Place, p: &[u8]| -> Frame {
        let ctx = match place {
            Place::String(key) => ValueContext::string(ns, key.as_bytes()),
            Place::Hash(field) => ValueContext::hash(ns, b"k", field.as_bytes()),
            Place::List => ValueContext::list(ns, b""),
            Place::Stream(field) => ValueContext::stream(ns, b"k", field.as_bytes()),
            Place::Member => return bulk(c.seal_member(p).unwrap()),
        };
        bulk(c.seal_in(ctx, p).unwrap())
    };
    match item {
        Item::Good(p) => sealed(place, p),
        Item::Misbound(p) => {
            let other = match place {
                Place::String(_) => Place::String("other".into()),
                Place::Hash(_) => Place::Hash("other".into()),
                Place::List | Place::Member => Place::String("k".into()),
                Place::Stream(_) => Place::Stream("other".into()),
            };
            sealed(&other, p)
        }
        Item::Nil => Frame::Null,
        Item::Garbage(bytes) => bulk(bytes.clone()),
        Item::Simple => simple("OK"),
        Item::Number => int(1),
    }
}

/// The replies a random case is built from.
#[derive(Debug, Clone)]
struct Case {
    command: usize,
    items: Vec<Item>,
    /// Scores in halves (0, 0.5, 1): ties are common.
    scores: Vec<u8>,
    flags: u8,
    /// Replaces the whole reply with something else.
    whole: Option<u8>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        0..COMMANDS.len(),
        proptest::collection::vec(item(), 0..9),
        proptest::collection::vec(0u8..3, 9),
        any::<u8>(),
        proptest::option::weighted(0.1, 0u8..6),
    )
        .prop_map(|(command, items, scores, flags, whole)| Case {
            command,
            items,
            scores,
            flags,
            whole,
        })
}

/// The commands, `WITHSCORES`/`REV`/`MATCH` added by flags where marked.
const COMMANDS: &[&str] = &[
    "GET k",
    "HGET k f0",
    "MGET",
    "HMGET k",
    "HGETALL k",
    "HVALS k",
    "LRANGE k 0 -1",
    "LPOP k 3",
    "RPOP k",
    "SMEMBERS k",
    "SPOP k 3",
    "SRANDMEMBER k",
    "SINTER k k2",
    "ZRANGE k 0 -1",
    "ZPOPMIN k",
    "ZPOPMAX k 3",
    "ZRANDMEMBER k 5",
    "ZUNION 2 k k2",
    "XRANGE k - +",
    "XREVRANGE k + -",
    "HSCAN k 0",
    "SSCAN k 0",
    "ZSCAN k 0",
    "HRANDFIELD k 3 WITHVALUES",
    "GETDEL k",
    "LINDEX k 0",
];

impl Case {
    fn flag(&self, bit: u8) -> bool {
        self.flags & (1 << bit) != 0
    }

    fn score(&self, i: usize) -> f64 {
        f64::from(self.scores[i % self.scores.len()]) / 2.0
    }

    /// The client's command words and the upstream's reply.
    fn build(&self, c: &ValueCrypt) -> (Vec<String>, Frame) {
        let mut words: Vec<String> = COMMANDS[self.command]
            .split(' ')
            .map(str::to_owned)
            .collect();
        let items = &self.items;
        let n = items.len();
        let field = |i: usize| format!("f{i}");
        let seal_all = |place: Place| -> Vec<Frame> {
            items.iter().map(|item| seal(c, &place, item)).collect()
        };
        let first = items.first().cloned().unwrap_or(Item::Good(b"v".to_vec()));
        let scored = |c: &ValueCrypt, members: &[Item], nested: bool| -> Frame {
            let mut out = Vec::new();
            for (i, m) in members.iter().enumerate() {
                let member = seal(c, &Place::Member, m);
                if nested {
                    let score = Frame::Double {
                        data: self.score(i),
                        attributes: None,
                    };
                    out.push(array(vec![member, score]));
                } else {
                    out.push(member);
                    out.push(bulk(double_text(self.score(i))));
                }
            }
            // A RESP2 upstream's flat reply of odd length.
            if !nested && self.flag(5) {
                out.pop();
            }
            array(out)
        };
        let reply = match words[0].as_str() {
            "GET" | "GETDEL" => seal(c, &Place::String("k".into()), &first),
            "HGET" => seal(c, &Place::Hash("f0".into()), &first),
            "MGET" | "HMGET" => {
                let mget = words[0] == "MGET";
                let mut values = Vec::new();
                for i in 0..n.max(1) {
                    let item = items.get(i).unwrap_or(&first);
                    let (word, place) = if mget {
                        (format!("k{i}"), Place::String(format!("k{i}")))
                    } else {
                        (field(i), Place::Hash(field(i)))
                    };
                    words.push(word);
                    values.push(seal(c, &place, item));
                }
                if self.flag(5) {
                    values.pop();
                }
                array(values)
            }
            "HGETALL" | "HVALS" | "HSCAN" | "HRANDFIELD" => {
                // Repeated field names, now and then.
                let name = |i: usize| if self.flag(4) { field(i % 2) } else { field(i) };
                let mut pairs = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let f = name(i);
                    pairs.push((bulk(f.clone()), seal(c, &Place::Hash(f), item)));
                }
                let flat = || {
                    let mut flat: Vec<Frame> = pairs
                        .iter()
                        .flat_map(|(f, v)| [f.clone(), v.clone()])
                        .collect();
                    if self.flag(5) {
                        flat.pop();
                    }
                    array(flat)
                };
                match words[0].as_str() {
                    "HSCAN" => array(vec![bulk("0"), flat()]),
                    "HRANDFIELD" => array(
                        pairs
                            .iter()
                            .map(|(f, v)| array(vec![f.clone(), v.clone()]))
                            .collect(),
                    ),
                    _ if self.flag(0) => flat(),
                    _ => map(pairs.clone()),
                }
            }
            "LRANGE" | "LPOP" => array(seal_all(Place::List)),
            "RPOP" | "LINDEX" => seal(c, &Place::List, &first),
            "SMEMBERS" | "SINTER" | "SPOP" => {
                let members = seal_all(Place::Member);
                if self.flag(0) {
                    Frame::Set {
                        data: members.into_iter().collect(),
                        attributes: None,
                    }
                } else {
                    array(members)
                }
            }
            "SRANDMEMBER" => seal(c, &Place::Member, &first),
            "SSCAN" => {
                if self.flag(1) {
                    words.extend(["MATCH".into(), "a*".into()]);
                }
                array(vec![bulk("0"), array(seal_all(Place::Member))])
            }
            "ZSCAN" => array(vec![bulk("0"), scored(c, items, false)]),
            "ZRANGE" | "ZPOPMAX" | "ZRANDMEMBER" | "ZUNION" => {
                if self.flag(1) && words[0] != "ZPOPMAX" {
                    words.push("WITHSCORES".into());
                }
                if self.flag(2) && words[0] == "ZRANGE" {
                    words.push("REV".into());
                }
                // The upstream answers with scores whether asked or added.
                scored(c, items, self.flag(3))
            }
            "ZPOPMIN" => match items.first() {
                None => array(vec![]),
                Some(m) => array(vec![
                    seal(c, &Place::Member, m),
                    Frame::Double {
                        data: self.score(0),
                        attributes: None,
                    },
                ]),
            },
            "XRANGE" | "XREVRANGE" => {
                let entries = items
                    .chunks(2)
                    .enumerate()
                    .map(|(i, chunk)| {
                        let mut fields = Vec::new();
                        for (j, item) in chunk.iter().enumerate() {
                            fields.push(bulk(field(j)));
                            fields.push(seal(c, &Place::Stream(field(j)), item));
                        }
                        array(vec![bulk(format!("{i}-0")), array(fields)])
                    })
                    .collect();
                array(entries)
            }
            other => panic!("no reply for {other}"),
        };
        let reply = match self.whole {
            None => reply,
            Some(0) => Frame::Null,
            Some(1) => crate::protocol::reply::error("ERR no"),
            Some(2) => bulk("not an array"),
            Some(3) => int(3),
            Some(4) => array(vec![]),
            Some(_) => match reply {
                Frame::Array { data, .. } => {
                    let mut attributes = BytesAttributes::default();
                    attributes.insert(bulk("a"), int(1));
                    Frame::Array {
                        data,
                        attributes: Some(attributes),
                    }
                }
                other => other,
            },
        };
        (words, reply)
    }

    /// A reply sealcache must answer without the general path.
    fn well_formed(&self, words: &[String]) -> bool {
        // ZSCAN, HRANDFIELD and SSCAN … MATCH are left to the general path.
        let general = matches!(words[0].as_str(), "ZSCAN" | "HRANDFIELD")
            || (words[0] == "SSCAN" && words.len() > 3);
        // Odd or short arrays, and a flat HGETALL repeating a field.
        let structural = self.flag(5) || (self.flag(4) && self.flag(0));
        !general && self.whole.is_none() && self.items.iter().all(Item::good) && !structural
    }
}

/// What the client gets through the general path.
fn general(c: &ValueCrypt, plan: &OpenPlan, reply: &Frame, nulls: NullStyle) -> BytesMut {
    let opened = c.open_reply(plan, reply.clone());
    let mut out = BytesMut::new();
    Reply::new(opened.frame).encode(&mut out, plan.proto, nulls);
    out
}

fn plan_of(words: &[String], proto: Protocol) -> OpenPlan {
    let mut cmd = Command::parse(
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect(),
    )
    .unwrap();
    let Policy::Encrypt(rule) = cmd.spec.policy else {
        panic!("{} does not open values", words[0]);
    };
    let prepared = prepare(rule, &mut cmd).unwrap();
    assert!(prepared.reply_has_values, "{words:?}");
    OpenPlan {
        rule,
        args: cmd.args,
        db: 0,
        proto,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_direct_encoder_writes_what_the_general_path_writes(case in case()) {
        let modes = [DecryptFailure::Miss, DecryptFailure::Error, DecryptFailure::Delete];
        let crypts = modes.map(crypt);
        let (words, reply) = case.build(&crypts[0]);
        for c in &crypts {
            for proto in [Protocol::Resp2, Protocol::Resp3] {
                let plan = plan_of(&words, proto);
                for nulls in [NullStyle::Bulk, NullStyle::ArrayAtTop, NullStyle::ArrayInElements] {
                    let expected = general(c, &plan, &reply, nulls);
                    let failures = c.failure_count();
                    let mut out = BytesMut::from(&b"+earlier\r\n"[..]);
                    let direct = c.encode_opened(&plan, &reply, proto, nulls, &mut out);
                    prop_assert_eq!(c.failure_count(), failures, "the direct path counts nothing");
                    if direct {
                        prop_assert_eq!(
                            String::from_utf8_lossy(&out[10..]),
                            String::from_utf8_lossy(&expected),
                            "{:?} {:?} {:?}", words, proto, nulls
                        );
                    } else {
                        prop_assert_eq!(&out[..], b"+earlier\r\n", "left as it was");
                        prop_assert!(
                            !(case.well_formed(&words) && nulls != NullStyle::ArrayInElements),
                            "a well-formed reply to {:?} took the general path", words
                        );
                    }
                }
            }
        }
    }
}
