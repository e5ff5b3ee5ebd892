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
