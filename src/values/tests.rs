use bytes::Bytes;

use super::*;
use crate::commands::Command;
use crate::crypto::is_envelope;
use crate::keys::{KeyRing, MasterKey};
use crate::protocol::reply::{array, bulk, map, null};

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
    assert!(c.encode_single_value(&plan, &bulk(set.args[2].clone()), &mut out));
    assert_eq!(&out[..], b"+OK\r\n$5\r\nhello\r\n");
    // Sealed for another key: nothing written, the general path decides.
    let (other, _) = sealed(&c, &["SET", "other", "hello"]);
    let before = out.clone();
    assert!(!c.encode_single_value(&plan, &bulk(other.args[2].clone()), &mut out));
    assert_eq!(out, before);
    assert!(!c.encode_single_value(&plan, &null(), &mut out));
    assert_eq!(
        c.failure_count(),
        0,
        "the general path counts failures, once"
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
            assert!(
                opened.failures[0].delete_command().is_none(),
                "never deleted"
            );
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
