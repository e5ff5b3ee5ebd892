use bytes::Bytes;

use super::*;
use crate::commands::Command;
use crate::crypto::is_envelope;
use crate::keys::{KeyRing, MasterKey};
use crate::protocol::reply::{array, bulk, int, map, null};
use crate::semantics::words;

fn crypt(on_failure: DecryptFailure) -> ValueCrypt {
    let keyring = KeyRing::from_master(&MasterKey::from_bytes(&[7; 32]));
    ValueCrypt::new(Sealer::new(&keyring), "test", on_failure)
}

fn cmd(words: &[&str]) -> Command {
    Command::parse(
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect(),
    )
    .unwrap()
}

fn sealed(c: &ValueCrypt, words: &[&str]) -> (Command, Option<OpenPlan>) {
    let mut command = cmd(words);
    let rule = match words[0] {
        "SET" => ValueRule::StringSet,
        "GET" => ValueRule::StringGet,
        "HSET" => ValueRule::HashSet,
        "HGETALL" => ValueRule::HashGetAll,
        "SADD" | "SISMEMBER" => ValueRule::MembersFrom(2),
        "SMEMBERS" => ValueRule::MemberReply,
        "RPUSH" => ValueRule::ListPush,
        "ZADD" => ValueRule::ZAdd,
        "ZRANGE" => ValueRule::MemberReply,
        "HRANDFIELD" => ValueRule::HashRandField,
        "XREAD" => ValueRule::XRead,
        "XADD" => ValueRule::XAdd,
        "SSCAN" => ValueRule::SetScan,
        "ZSCAN" => ValueRule::ZScan,
        "ZUNION" | "ZRANDMEMBER" | "GEORADIUS" => ValueRule::MemberReply,
        "GEOSEARCH" => ValueRule::GeoSearch,
        "ZRANGESTORE" => ValueRule::RangeStore,
        other => panic!("no rule for {other} in this test"),
    };
    let prepared = prepare(rule, &mut command).unwrap();
    let plan = prepared.reply_has_values.then(|| OpenPlan {
        rule,
        args: command.args.clone(),
        db: 0,
        proto: Protocol::Resp3,
    });
    if prepared.outgoing == Outgoing::Sealed {
        command.args = upstream_args(c, rule, &command.args);
    }
    (command, plan)
}

/// What the upstream receives for `args`: sealed by the encoder, read back
/// with the request decoder.
fn upstream_args(c: &ValueCrypt, rule: ValueRule, args: &[Bytes]) -> Vec<Bytes> {
    use tokio_util::codec::Decoder as _;
    let mut out = BytesMut::from(&b"prefix"[..]);
    c.encode_sealed(rule, args, &mut out).unwrap();
    let mut wire = out.split_off(6);
    assert_eq!(
        &out[..],
        b"prefix",
        "appends without touching what is there"
    );
    let decoded = crate::protocol::request::RequestCodec::new(1 << 29, 1 << 20)
        .decode(&mut wire)
        .unwrap()
        .expect("one whole command");
    assert!(wire.is_empty(), "exactly one command");
    decoded.args
}

#[test]
fn set_seals_the_value_and_get_opens_it() {
    let c = crypt(DecryptFailure::Miss);
    let (set, plan) = sealed(&c, &["SET", "k", "secret", "EX", "10"]);
    assert!(plan.is_none());
    assert!(is_envelope(&set.args[2]));
    assert_eq!(set.args[3].as_ref(), b"EX");
    let (_, plan) = sealed(&c, &["GET", "k"]);
    let opened = c.open_reply(&plan.unwrap(), bulk(set.args[2].clone()));
    assert_eq!(opened.frame, bulk("secret"));
    assert!(opened.failures.is_empty());
}

#[test]
fn a_value_copied_to_another_key_is_a_miss_or_an_error() {
    let c = crypt(DecryptFailure::Miss);
    let (set, _) = sealed(&c, &["SET", "a", "secret"]);
    let (_, plan) = sealed(&c, &["GET", "b"]);
    let opened = c.open_reply(plan.as_ref().unwrap(), bulk(set.args[2].clone()));
    assert_eq!(opened.frame, null());
    assert_eq!(opened.failures.len(), 1);
    let strict = crypt(DecryptFailure::Error);
    let opened = strict.open_reply(plan.as_ref().unwrap(), bulk(set.args[2].clone()));
    assert!(
        crate::protocol::reply::error_text(&opened.frame)
            .unwrap()
            .contains("failed to decrypt")
    );
}

#[test]
fn hash_values_are_bound_to_their_field() {
    let c = crypt(DecryptFailure::Miss);
    let (hset, _) = sealed(&c, &["HSET", "h", "f1", "v1", "f2", "v2"]);
    assert_eq!(hset.args[2].as_ref(), b"f1");
    let (_, plan) = sealed(&c, &["HGETALL", "h"]);
    // f2's value stored under f1: left out; f1's own value opens.
    let reply = map(vec![
        (bulk("f1"), bulk(hset.args[3].clone())),
        (bulk("f2"), bulk(hset.args[3].clone())),
    ]);
    let opened = c.open_reply(&plan.unwrap(), reply);
    assert_eq!(opened.frame, map(vec![(bulk("f1"), bulk("v1"))]));
    assert_eq!(opened.failures.len(), 1);
}

#[test]
fn members_are_deterministic_and_list_elements_are_not() {
    let c = crypt(DecryptFailure::Miss);
    let (a, _) = sealed(&c, &["SADD", "s1", "m"]);
    let (b, _) = sealed(&c, &["SISMEMBER", "s2", "m"]);
    assert_eq!(a.args[2], b.args[2]);
    let (l1, _) = sealed(&c, &["RPUSH", "l", "x", "x"]);
    assert_ne!(l1.args[2], l1.args[3]);
    let (_, plan) = sealed(&c, &["SMEMBERS", "s1"]);
    let opened = c.open_reply(&plan.unwrap(), array(vec![bulk(a.args[2].clone())]));
    assert_eq!(opened.frame, array(vec![bulk("m")]));
}

#[test]
fn zadd_and_xadd_skip_their_options() {
    let c = crypt(DecryptFailure::Miss);
    let (z, _) = sealed(&c, &["ZADD", "z", "NX", "CH", "1.5", "m1", "2", "m2"]);
    assert_eq!(z.args[4].as_ref(), b"1.5");
    assert!(is_envelope(&z.args[5]) && is_envelope(&z.args[7]));
    assert_eq!(z.args[6].as_ref(), b"2");
    let (x, _) = sealed(&c, &["XADD", "s", "MAXLEN", "~", "100", "*", "f", "v"]);
    assert_eq!(x.args[5].as_ref(), b"*");
    assert_eq!(x.args[6].as_ref(), b"f");
    assert!(is_envelope(&x.args[7]));
}

#[test]
fn errors_pass_through_unchanged() {
    let c = crypt(DecryptFailure::Error);
    let (_, plan) = sealed(&c, &["GET", "k"]);
    let err = crate::protocol::reply::error(
        "WRONGTYPE Operation against a key holding the wrong kind of value",
    );
    assert_eq!(c.open_reply(&plan.unwrap(), err.clone()).frame, err);
}

#[test]
fn zrange_bylex_is_rejected() {
    let mut command = cmd(&["ZRANGE", "z", "[a", "[b", "BYLEX"]);
    let err = prepare(ValueRule::MemberReply, &mut command).unwrap_err();
    assert!(err.to_string().contains("not available on encrypted data"));
}

#[test]
fn resp2_clients_get_redis_resp2_shapes() {
    let c = crypt(DecryptFailure::Miss);
    let (z, _) = sealed(&c, &["ZADD", "z", "1", "m1", "2", "m2"]);
    let (_, plan) = sealed(&c, &["ZRANGE", "z", "0", "-1", "WITHSCORES"]);
    let mut plan = plan.unwrap();
    let double = |d| Frame::Double {
        data: d,
        attributes: None,
    };
    let reply = || {
        array(vec![
            array(vec![bulk(z.args[3].clone()), double(1.0)]),
            array(vec![bulk(z.args[5].clone()), double(2.0)]),
        ])
    };
    let nested = array(vec![
        array(vec![bulk("m1"), double(1.0)]),
        array(vec![bulk("m2"), double(2.0)]),
    ]);
    assert_eq!(c.open_reply(&plan, reply()).frame, nested);
    plan.proto = Protocol::Resp2;
    assert_eq!(
        c.open_reply(&plan, reply()).frame,
        array(vec![bulk("m1"), double(1.0), bulk("m2"), double(2.0)])
    );

    let (h, _) = sealed(&c, &["HSET", "h", "f", "v"]);
    let (_, plan) = sealed(&c, &["HRANDFIELD", "h", "1", "WITHVALUES"]);
    let mut plan = plan.unwrap();
    plan.proto = Protocol::Resp2;
    let reply = array(vec![array(vec![bulk("f"), bulk(h.args[3].clone())])]);
    assert_eq!(
        c.open_reply(&plan, reply).frame,
        array(vec![bulk("f"), bulk("v")])
    );

    let (x, _) = sealed(&c, &["XADD", "s", "1-1", "f", "v"]);
    let (_, plan) = sealed(&c, &["XREAD", "STREAMS", "s", "0"]);
    let mut plan = plan.unwrap();
    plan.proto = Protocol::Resp2;
    let entries = || {
        array(vec![array(vec![
            bulk("1-1"),
            array(vec![bulk("f"), bulk(x.args[4].clone())]),
        ])])
    };
    let opened = array(vec![array(vec![
        bulk("1-1"),
        array(vec![bulk("f"), bulk("v")]),
    ])]);
    assert_eq!(
        c.open_reply(&plan, map(vec![(bulk("s"), entries())])).frame,
        array(vec![array(vec![bulk("s"), opened])])
    );
}

#[test]
fn single_values_decrypt_straight_into_the_output_or_leave_it_untouched() {
    let c = crypt(DecryptFailure::Miss);
    let (set, _) = sealed(&c, &["SET", "k", "hello"]);
    let (_, plan) = sealed(&c, &["GET", "k"]);
    let plan = plan.unwrap();
    let mut out = bytes::BytesMut::from(&b"+OK\r\n"[..]);
    assert!(c.encode_opened(
        &plan,
        &bulk(set.args[2].clone()),
        Protocol::Resp3,
        NullStyle::Bulk,
        &mut out
    ));
    assert_eq!(&out[..], b"+OK\r\n$5\r\nhello\r\n");
    // Sealed for another key: nothing written, the general path decides.
    let (other, _) = sealed(&c, &["SET", "other", "hello"]);
    let before = out.clone();
    assert!(!c.encode_opened(
        &plan,
        &bulk(other.args[2].clone()),
        Protocol::Resp3,
        NullStyle::Bulk,
        &mut out
    ));
    assert_eq!(out, before);
    assert!(!c.encode_opened(&plan, &null(), Protocol::Resp3, NullStyle::Bulk, &mut out));
    assert_eq!(
        c.failure_count(),
        0,
        "the general path counts failures, once"
    );
}

fn double(d: f64) -> Frame {
    Frame::Double {
        data: d,
        attributes: None,
    }
}

#[test]
fn scan_match_goes_upstream_without_the_pattern_and_filters_the_opened_members() {
    let c = crypt(DecryptFailure::Miss);
    let (up, plan) = sealed(
        &c,
        &["SSCAN", "s", "7", "MATCH", "x", "COUNT", "5", "match", "a*"],
    );
    assert_eq!(
        up.args,
        words("SSCAN s 7 COUNT 5"),
        "COUNT and the cursor stay"
    );
    let plan = plan.unwrap();
    assert_eq!(plan.args.len(), 9, "the plan keeps the client's pattern");
    let member = |m: &str| bulk(c.seal_member(m.as_bytes()).unwrap());
    let reply = array(vec![
        bulk("12"),
        array(vec![member("a1"), member("b"), member("ab"), member("xa")]),
    ]);
    assert_eq!(
        c.open_reply(&plan, reply).frame,
        array(vec![bulk("12"), array(vec![bulk("a1"), bulk("ab")])])
    );
    // Nothing to change: the command goes up as sent.
    let mut plain = cmd(&["SSCAN", "s", "0", "MATCH", "*"]);
    let prepared = prepare(ValueRule::SetScan, &mut plain).unwrap();
    assert_eq!(prepared.outgoing, Outgoing::Unchanged);
}

#[test]
fn zscan_filters_pairs_and_orders_equal_scores() {
    let c = crypt(DecryptFailure::Miss);
    let (up, plan) = sealed(&c, &["ZSCAN", "z", "0", "MATCH", "a?"]);
    assert_eq!(up.args, words("ZSCAN z 0"));
    let member = |m: &str| bulk(c.seal_member(m.as_bytes()).unwrap());
    let reply = array(vec![
        bulk("0"),
        array(vec![
            member("a3"),
            bulk("1"),
            member("bb"),
            bulk("1"),
            member("a1"),
            bulk("1"),
            member("a2"),
            bulk("0.5"),
        ]),
    ]);
    assert_eq!(
        c.open_reply(&plan.unwrap(), reply).frame,
        array(vec![
            bulk("0"),
            array(vec![
                bulk("a1"),
                bulk("1"),
                bulk("a3"),
                bulk("1"),
                bulk("a2"),
                bulk("0.5")
            ])
        ])
    );
}

#[test]
fn zrange_asks_for_scores_orders_equal_ones_by_plaintext_and_drops_them_again() {
    let c = crypt(DecryptFailure::Miss);
    let (up, plan) = sealed(&c, &["ZRANGE", "z", "0", "-1"]);
    assert_eq!(up.args, words("ZRANGE z 0 -1 WITHSCORES"));
    let mut plan = plan.unwrap();
    let member = |m: &str| bulk(c.seal_member(m.as_bytes()).unwrap());
    let pair = |m: &str, s| array(vec![member(m), double(s)]);
    let nested = || {
        array(vec![
            pair("b", 0.0),
            pair("a", 0.0),
            pair("c", 0.0),
            pair("0", 1.0),
        ])
    };
    let in_order = array(vec![bulk("a"), bulk("b"), bulk("c"), bulk("0")]);
    assert_eq!(c.open_reply(&plan, nested()).frame, in_order);
    plan.proto = Protocol::Resp2;
    assert_eq!(c.open_reply(&plan, nested()).frame, in_order);
    // An upstream speaking RESP2 answers flat, with scores as text.
    let flat = array(vec![
        member("b"),
        bulk("0"),
        member("a"),
        bulk("0"),
        member("c"),
        bulk("0"),
        member("0"),
        bulk("1"),
    ]);
    assert_eq!(c.open_reply(&plan, flat).frame, in_order);

    let (up, _) = sealed(
        &c,
        &[
            "ZRANGE",
            "z",
            "(1",
            "5",
            "BYSCORE",
            "REV",
            "LIMIT",
            "0",
            "2",
            "WITHSCORES",
        ],
    );
    assert_eq!(
        up.args.len(),
        10,
        "the client asked for scores: nothing added"
    );
    // What Redis would refuse goes up as sent, so its error is Redis's.
    let (up, _) = sealed(&c, &["ZRANGE", "z", "0", "-1", "LIMIT", "0"]);
    assert_eq!(up.args, words("ZRANGE z 0 -1 LIMIT 0"));
}

#[test]
fn zunion_and_zrandmember_ask_for_scores_when_they_are_not_asked() {
    let c = crypt(DecryptFailure::Miss);
    let (up, _) = sealed(&c, &["ZUNION", "2", "a", "b", "AGGREGATE", "MIN"]);
    assert_eq!(up.args, words("ZUNION 2 a b AGGREGATE MIN WITHSCORES"));
    let (up, _) = sealed(&c, &["ZUNION", "2", "a", "b", "WEIGHTS", "1"]);
    assert_eq!(up.args, words("ZUNION 2 a b WEIGHTS 1"));
    // A count too large for WITHSCORES still asks for the whole set.
    let (up, plan) = sealed(&c, &["ZRANDMEMBER", "z", "9223372036854775807"]);
    assert_eq!(
        up.args,
        words("ZRANDMEMBER z 4611686018427387903 WITHSCORES")
    );
    // The whole set comes walked from its end; a random pick is left as it is.
    let plan = plan.unwrap();
    let member = |m: &str| bulk(c.seal_member(m.as_bytes()).unwrap());
    let pair = |m: &str, s| array(vec![member(m), double(s)]);
    let whole = array(vec![pair("x", 2.0), pair("a", 1.0), pair("b", 1.0)]);
    assert_eq!(
        c.open_reply(&plan, whole).frame,
        array(vec![bulk("x"), bulk("b"), bulk("a")])
    );
    let random = array(vec![pair("a", 1.0), pair("x", 2.0), pair("b", 1.0)]);
    assert_eq!(
        c.open_reply(&plan, random).frame,
        array(vec![bulk("a"), bulk("x"), bulk("b")])
    );
    let (up, _) = sealed(&c, &["ZRANDMEMBER", "z", "-5"]);
    assert_eq!(up.args, words("ZRANDMEMBER z -5"));
}

#[test]
fn geo_searches_ask_for_hashes_to_order_members_at_one_position() {
    let c = crypt(DecryptFailure::Miss);
    let (up, plan) = sealed(&c, &["GEORADIUS", "g", "1", "2", "10", "km", "WITHDIST"]);
    assert_eq!(up.args, words("GEORADIUS g 1 2 10 km WITHDIST WITHHASH"));
    let member = |m: &str| bulk(c.seal_member(m.as_bytes()).unwrap());
    let hit = |m: &str, hash| array(vec![member(m), bulk("0.1"), int(hash)]);
    let reply = array(vec![hit("q", 7), hit("p", 7), hit("a", 9)]);
    let opened = |m: &'static str| array(vec![bulk(m), bulk("0.1")]);
    assert_eq!(
        c.open_reply(&plan.unwrap(), reply).frame,
        array(vec![opened("p"), opened("q"), opened("a")])
    );
    let (up, plan) = sealed(
        &c,
        &["GEOSEARCH", "g", "FROMMEMBER", "m", "BYRADIUS", "1", "km"],
    );
    assert!(is_envelope(&up.args[3]));
    assert_eq!(up.args[7].as_ref(), b"WITHHASH");
    // A key named FROMMEMBER is a key: the member is the one after the option.
    let (up, _) = sealed(
        &c,
        &[
            "GEOSEARCH",
            "FROMMEMBER",
            "FROMMEMBER",
            "m",
            "BYRADIUS",
            "1",
            "km",
        ],
    );
    assert_eq!(up.args[2].as_ref(), b"FROMMEMBER");
    assert!(is_envelope(&up.args[3]));
    let reply = array(vec![
        array(vec![member("q"), int(7)]),
        array(vec![member("p"), int(7)]),
    ]);
    assert_eq!(
        c.open_reply(&plan.unwrap(), reply).frame,
        array(vec![bulk("p"), bulk("q")])
    );
    // STORE answers a count: nothing to open, nothing added.
    let (up, plan) = sealed(&c, &["GEORADIUS", "g", "1", "2", "10", "km", "STORE", "d"]);
    assert!(plan.is_none());
    assert_eq!(up.args.len(), 8);
}

#[test]
fn lexicographic_ranges_are_refused_wherever_they_hide() {
    for line in [
        "ZRANGESTORE d z [a (b BYLEX",
        "ZRANGESTORE d z (b [a REV bylex LIMIT 0 1",
        "ZRANGE z [a (b BYLEX",
    ] {
        let mut command = Command::parse(words(line)).unwrap();
        let crate::commands::Policy::Encrypt(rule) = command.spec.policy else {
            panic!("{line}: not an encrypting command");
        };
        let err = prepare(rule, &mut command).unwrap_err();
        assert!(
            err.to_string()
                .contains("BYLEX is not available on encrypted data"),
            "{line}: {err}"
        );
    }
    let mut by_rank = Command::parse(words("ZRANGESTORE bylex z 0 -1")).unwrap();
    let prepared = prepare(ValueRule::RangeStore, &mut by_rank).unwrap();
    assert!(!prepared.reply_has_values);
}

#[test]
fn delete_mode_removes_only_the_bytes_that_failed() {
    let failure = |location| Failure {
        key: Bytes::from_static(b"k"),
        location,
        reason: FailureReason::Open(OpenError::BadMagic),
    };
    let stored = Bytes::from_static(b"sealed");
    let Some(Cleanup::IfUnchanged { key, check }) = failure(Location::Value {
        stored: stored.clone(),
    })
    .cleanup() else {
        panic!("a string value is deleted only if unchanged");
    };
    assert_eq!(key.as_ref(), b"k");
    assert_eq!(
        (&check.read, &check.delete),
        (&words("GET k"), &words("DEL k"))
    );
    assert!(check.holds(&bulk("sealed")));
    assert!(!check.holds(&bulk("newer")));
    assert!(!check.holds(&null()));
    let Some(Cleanup::IfUnchanged { check, .. }) = failure(Location::StreamEntry {
        id: Bytes::from_static(b"1-1"),
        stored: stored.clone(),
    })
    .cleanup() else {
        panic!("a stream id can be reused by a new stream");
    };
    assert_eq!(check.read, words("XRANGE k 1-1 1-1"));
    let entry = array(vec![array(vec![
        bulk("1-1"),
        array(vec![bulk("f"), bulk("sealed")]),
    ])]);
    assert!(check.holds(&entry));
    assert!(!check.holds(&array(vec![])));
    assert_eq!(
        failure(Location::SetMember(stored.clone())).cleanup(),
        Some(Cleanup::Exact(words("SREM k sealed")))
    );
}

/// Criterion 2 of issue 7: where a sealed value belongs, only an envelope
/// that opens or nil is returned; forged types and shapes are failures.
mod forged_replies {
    use super::*;
    use crate::protocol::reply::{error_text, int};

    fn simple(s: &'static str) -> Frame {
        crate::protocol::reply::simple(s)
    }

    fn double(d: f64) -> Frame {
        Frame::Double {
            data: d,
            attributes: None,
        }
    }

    fn plan(words: &[&str], rule: ValueRule) -> OpenPlan {
        OpenPlan {
            rule,
            args: words
                .iter()
                .map(|w| Bytes::copy_from_slice(w.as_bytes()))
                .collect(),
            db: 0,
            proto: Protocol::Resp3,
        }
    }

    #[test]
    fn a_forged_leaf_is_a_miss_or_an_error_never_the_forged_bytes() {
        let forged = [
            simple("PLAINTEXT-INJECTED"),
            int(42),
            double(1.5),
            map(vec![(bulk("PLAINTEXT-INJECTED"), bulk("x"))]),
            array(vec![bulk("PLAINTEXT-INJECTED")]),
        ];
        let get = plan(&["GET", "k"], ValueRule::StringGet);
        for frame in forged {
            let c = crypt(DecryptFailure::Miss);
            let opened = c.open_reply(&get, frame.clone());
            assert_eq!(opened.frame, null(), "{frame:?}");
            assert_eq!(c.failure_count(), 1);
            assert!(opened.failures[0].cleanup().is_none(), "never deleted");
            let strict = crypt(DecryptFailure::Error);
            let text = error_text(&strict.open_reply(&get, frame).frame).unwrap();
            assert!(text.contains("'k'") && text.contains("where a sealed value belongs"));
            assert!(!text.contains("INJECTED"), "{text}");
        }
    }

    #[test]
    fn collections_leave_forged_elements_out() {
        let c = crypt(DecryptFailure::Miss);
        let (sadd, _) = sealed(&c, &["SADD", "s", "m"]);
        let member = bulk(sadd.args[2].clone());
        let smembers = plan(&["SMEMBERS", "s"], ValueRule::MemberReply);
        let reply = Frame::Set {
            data: [member, int(7), simple("x")].into_iter().collect(),
            attributes: None,
        };
        let Frame::Set { data, .. } = c.open_reply(&smembers, reply).frame else {
            panic!("a set");
        };
        assert_eq!(data.into_iter().collect::<Vec<_>>(), vec![bulk("m")]);
        assert_eq!(c.failure_count(), 2);

        let hgetall = plan(&["HGETALL", "h"], ValueRule::HashGetAll);
        let opened = c.open_reply(&hgetall, map(vec![(bulk("f"), int(1))]));
        assert_eq!(opened.frame, map(vec![]));
    }

    #[test]
    fn a_reply_of_the_wrong_shape_is_replaced_by_an_empty_one() {
        let c = crypt(DecryptFailure::Miss);
        let (rpush, _) = sealed(&c, &["RPUSH", "l", "x"]);
        let element = bulk(rpush.args[2].clone());
        // A list element that opens, where LRANGE's array belongs.
        let lrange = plan(&["LRANGE", "l", "0", "-1"], ValueRule::ListReply);
        assert_eq!(c.open_reply(&lrange, element.clone()).frame, array(vec![]));
        // MGET answered with one value for two keys.
        let (set, _) = sealed(&c, &["SET", "a", "v"]);
        let mget = plan(&["MGET", "a", "b"], ValueRule::MGet);
        let opened = c.open_reply(&mget, array(vec![bulk(set.args[2].clone())]));
        assert_eq!(opened.frame, array(vec![null(), null()]));
        let hscan = plan(&["HSCAN", "h", "0"], ValueRule::HashScan);
        assert_eq!(
            c.open_reply(&hscan, int(3)).frame,
            array(vec![bulk("0"), array(vec![])])
        );
        let blpop = plan(&["BLPOP", "l", "0"], ValueRule::ListKeyedPop);
        assert_eq!(c.open_reply(&blpop, element).frame, null());
        assert_eq!(c.failure_count(), 4);
        let strict = crypt(DecryptFailure::Error);
        let text = error_text(&strict.open_reply(&lrange, int(1)).frame).unwrap();
        assert!(text.contains("an integer where an array belongs"), "{text}");
    }

    #[test]
    fn scores_counts_and_ids_are_not_values() {
        let c = crypt(DecryptFailure::Miss);
        let (z, _) = sealed(&c, &["ZADD", "z", "1", "m"]);
        let member = bulk(z.args[3].clone());
        let zpopmin = plan(&["ZPOPMIN", "z"], ValueRule::MemberReply);
        let opened = c.open_reply(&zpopmin, array(vec![member.clone(), double(1.0)]));
        assert_eq!(opened.frame, array(vec![bulk("m"), double(1.0)]));
        let zrange = plan(
            &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
            ValueRule::MemberReply,
        );
        let opened = c.open_reply(&zrange, array(vec![array(vec![member, double(1.0)])]));
        assert_eq!(
            opened.frame,
            array(vec![array(vec![bulk("m"), double(1.0)])])
        );
        let store = plan(
            &["GEORADIUS", "g", "0", "0", "1", "km", "STORE", "dst"],
            ValueRule::MemberReply,
        );
        assert_eq!(c.open_reply(&store, int(3)).frame, int(3));
        let justid = plan(
            &["XCLAIM", "s", "g", "c", "0", "1-1", "JUSTID"],
            ValueRule::XEntries,
        );
        let ids = array(vec![bulk("1-1")]);
        assert_eq!(c.open_reply(&justid, ids.clone()).frame, ids);
        // XRANGE … COUNT 0: Redis answers a null array, not entries.
        let xrange = plan(
            &["XRANGE", "s", "-", "+", "COUNT", "0"],
            ValueRule::XEntries,
        );
        assert_eq!(c.open_reply(&xrange, null()).frame, null());
        assert_eq!(c.failure_count(), 0);
        // The score of a set member is not a member.
        let smembers = plan(&["SMEMBERS", "s"], ValueRule::MemberReply);
        let opened = c.open_reply(&smembers, array(vec![array(vec![bulk("m")])]));
        assert_eq!(opened.frame, array(vec![]));
    }

    #[test]
    fn pubsub_payloads_must_be_envelopes() {
        let c = crypt(DecryptFailure::Miss);
        let mut push = Frame::Push {
            data: vec![bulk("message"), bulk("ch"), int(5)],
            attributes: None,
        };
        assert!(!c.open_push(&mut push));
        assert_eq!(c.failure_count(), 1);
    }
}

/// A storing backend (`SealOnWrite::seal_args`) gets the arguments a Redis
/// lane writes (`encode_sealed`): the same rewording (WITHSCORES added,
/// MATCH left out) and values sealed in the same places.
#[test]
fn seal_args_match_what_the_encoder_writes() {
    use crate::backend::SealOnWrite as _;
    let c = crypt(DecryptFailure::Miss);
    for (rule, words) in [
        (ValueRule::MemberReply, &["ZRANGE", "z", "0", "-1"][..]),
        (ValueRule::SetScan, &["SSCAN", "s", "0", "MATCH", "[xy]"]),
        (
            ValueRule::ZScan,
            &["ZSCAN", "z", "0", "MATCH", "a*", "COUNT", "5"],
        ),
        (ValueRule::StringSet, &["SET", "k", "v", "EX", "10"]),
        (ValueRule::MembersFrom(2), &["SADD", "s", "a", "b"]),
        (ValueRule::HashSet, &["HSET", "h", "f", "v"]),
    ] {
        let args = cmd(words).args;
        let encoded = upstream_args(&c, rule, &args);
        let stored = c.seal_args(rule, &args).unwrap();
        assert_eq!(stored.len(), encoded.len(), "{words:?}");
        for (i, (s, e)) in stored.iter().zip(&encoded).enumerate() {
            if is_envelope(e) {
                // Randomised values differ; deterministic members do not.
                assert!(is_envelope(s), "{words:?} argument {i}");
                if rule == ValueRule::MembersFrom(2) {
                    assert_eq!(s, e, "{words:?} argument {i}");
                }
            } else {
                assert_eq!(s, e, "{words:?} argument {i}");
            }
        }
    }
}
