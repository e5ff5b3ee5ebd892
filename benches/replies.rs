//! Opening many-value replies for the client: LRANGE of 100 and 600
//! elements (3 bytes each, redis-benchmark's default value size) and
//! ZRANGE … WITHSCORES of 100 members, through the general path (open into
//! a new frame, then encode it) and straight into the output buffer
//! (`ValueCrypt::encode_opened`), for a RESP2 client as redis-benchmark is.
//!
//! `cargo bench --bench replies`; numbers are recorded in README (Benchmarks).

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sealcache::backend::Reply;
use sealcache::commands::ValueRule;
use sealcache::config::DecryptFailure;
use sealcache::crypto::{MemberContext, Sealer, ValueContext};
use sealcache::keys::{KeyRing, MasterKey};
use sealcache::protocol::reply::NullStyle;
use sealcache::protocol::{Frame, Protocol};
use sealcache::values::{OpenPlan, ValueCrypt};

const NAMESPACE: &str = "default";

fn sealer() -> Sealer {
    Sealer::new(&KeyRing::from_master(&MasterKey::from_bytes(&[7; 32])))
}

fn bulk(data: impl Into<Bytes>) -> Frame {
    Frame::BlobString {
        data: data.into(),
        attributes: None,
    }
}

fn array(data: Vec<Frame>) -> Frame {
    Frame::Array {
        data,
        attributes: None,
    }
}

fn plan(rule: ValueRule, words: &str) -> OpenPlan {
    OpenPlan {
        rule,
        args: words
            .split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect(),
        db: 0,
        proto: Protocol::Resp2,
    }
}

/// LRANGE mylist 0 N-1 of elements `xxx`, as the upstream sends it.
fn list_reply(sealer: &Sealer, n: usize) -> Frame {
    let ctx = ValueContext::list(NAMESPACE.as_bytes(), b"");
    array(
        (0..n)
            .map(|_| bulk(sealer.seal(&ctx, b"xxx").unwrap()))
            .collect(),
    )
}

/// ZRANGE z 0 -1 WITHSCORES of `n` members, scores as a RESP3 upstream sends them.
fn scored_reply(sealer: &Sealer, n: usize) -> Frame {
    let ctx = MemberContext::set_member(NAMESPACE.as_bytes());
    array(
        (0..n)
            .map(|i| {
                let member = bulk(
                    sealer
                        .seal_member(&ctx, format!("m{i}").as_bytes())
                        .unwrap(),
                );
                let score = Frame::Double {
                    data: (i / 4) as f64,
                    attributes: None,
                };
                array(vec![member, score])
            })
            .collect(),
    )
}

fn open(c: &mut Criterion) {
    let crypt = ValueCrypt::new(sealer(), NAMESPACE, DecryptFailure::Miss);
    let cases = [
        (
            "LRANGE/100",
            plan(ValueRule::ListReply, "LRANGE mylist 0 99"),
            list_reply(crypt.sealer(), 100),
            100,
        ),
        (
            "LRANGE/600",
            plan(ValueRule::ListReply, "LRANGE mylist 0 599"),
            list_reply(crypt.sealer(), 600),
            600,
        ),
        (
            "ZRANGE WITHSCORES/100",
            plan(ValueRule::MemberReply, "ZRANGE z 0 -1 WITHSCORES"),
            scored_reply(crypt.sealer(), 100),
            100,
        ),
    ];
    let mut group = c.benchmark_group("open reply");
    for (name, plan, frame, n) in &cases {
        group.throughput(Throughput::Elements(*n));
        let mut out = BytesMut::with_capacity(64 * 1024);
        group.bench_with_input(BenchmarkId::new("general", name), frame, |b, frame| {
            b.iter(|| {
                out.clear();
                let opened = crypt.open_reply(plan, black_box(frame.clone()));
                Reply::new(opened.frame).encode(&mut out, Protocol::Resp2, NullStyle::Bulk);
            })
        });
        group.bench_with_input(BenchmarkId::new("direct", name), frame, |b, frame| {
            b.iter(|| {
                out.clear();
                assert!(crypt.encode_opened(
                    plan,
                    black_box(frame),
                    Protocol::Resp2,
                    NullStyle::Bulk,
                    &mut out
                ));
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = open
}
criterion_main!(benches);
