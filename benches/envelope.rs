//! Envelope cost: seal and open at 100 B, 1 KiB, 16 KiB and 1 MiB, the 1 KiB
//! seal+open round trip (target: under 2 µs), deterministic members, and the
//! raw AEADs behind the choice of ring over RustCrypto aes-gcm.
//!
//! `cargo bench --bench envelope`; numbers are recorded in docs/envelope.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sealcache::crypto::{MemberContext, Sealer, ValueContext};
use sealcache::keys::{KeyRing, MasterKey};

const SIZES: [(usize, &str); 4] = [
    (100, "100B"),
    (1024, "1KiB"),
    (16 * 1024, "16KiB"),
    (1024 * 1024, "1MiB"),
];

fn sealer() -> Sealer {
    Sealer::new(&KeyRing::from_master(&MasterKey::from_bytes(&[7; 32])))
}

/// A typical context: short namespace, a realistic key, a hash field.
fn ctx() -> ValueContext<'static> {
    ValueContext::hash(
        b"default",
        b"session:8f14e45fceea167a5a36dedd4bea2543",
        b"payload",
    )
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn seal_and_open(c: &mut Criterion) {
    let s = sealer();
    let ctx = ctx();

    let mut group = c.benchmark_group("seal");
    for (len, name) in SIZES {
        let pt = plaintext(len);
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &pt, |b, pt| {
            b.iter(|| s.seal(&ctx, black_box(pt)).unwrap())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("open");
    for (len, name) in SIZES {
        let env = s.seal(&ctx, &plaintext(len)).unwrap();
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &env, |b, env| {
            b.iter(|| s.open(&ctx, black_box(env)).unwrap())
        });
    }
    group.finish();

    let pt = plaintext(1024);
    c.bench_function("seal+open/1KiB", |b| {
        b.iter(|| {
            let env = s.seal(&ctx, black_box(&pt)).unwrap();
            s.open(&ctx, &env).unwrap()
        })
    });
}

fn members(c: &mut Criterion) {
    let s = sealer();
    let ctx = MemberContext::set_member(b"default");
    let pt = plaintext(100);
    let env = s.seal_member(&ctx, &pt).unwrap();
    let mut group = c.benchmark_group("member");
    group.throughput(Throughput::Bytes(100));
    group.bench_function("seal/100B", |b| {
        b.iter(|| s.seal_member(&ctx, black_box(&pt)).unwrap())
    });
    group.bench_function("open/100B", |b| {
        b.iter(|| s.open_member(&ctx, black_box(&env)).unwrap())
    });
    group.finish();
}

/// The raw AEADs (no envelope, no allocation): why values use ring.
fn aead_backends(c: &mut Criterion) {
    use aes_gcm::aead::AeadInPlace as _;
    use aes_gcm::{Aes256Gcm, KeyInit as _};
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

    let key = [7u8; 32];
    let nonce = [1u8; 12];
    let ad = [3u8; 60];
    let mut buf = plaintext(1024);

    let mut group = c.benchmark_group("aead seal+open 1KiB");
    group.throughput(Throughput::Bytes(1024));
    let ring_key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
    group.bench_function("ring", |b| {
        b.iter(|| {
            let tag = ring_key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&ad),
                    &mut buf,
                )
                .unwrap();
            ring_key
                .open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&ad),
                    tag,
                    &mut buf,
                    0..,
                )
                .unwrap();
        })
    });
    let rc = Aes256Gcm::new((&key).into());
    group.bench_function("rustcrypto aes-gcm 0.10", |b| {
        b.iter(|| {
            let tag = rc
                .encrypt_in_place_detached((&nonce).into(), &ad, &mut buf)
                .unwrap();
            rc.decrypt_in_place_detached((&nonce).into(), &ad, &mut buf, &tag)
                .unwrap();
        })
    });
    group.finish();
}

/// A list element of redis-benchmark's size (3 bytes), opened onto the end
/// of an output buffer as LRANGE does, and the raw AEAD call under it.
fn small_elements(c: &mut Criterion) {
    use bytes::BytesMut;
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

    let s = sealer();
    let ctx = ValueContext::list(b"default", b"");
    let env = s.seal(&ctx, b"xxx").unwrap();
    let mut group = c.benchmark_group("list element 3B");
    let mut out = BytesMut::with_capacity(1 << 16);
    group.bench_function("open_into", |b| {
        b.iter(|| {
            if out.len() > 60_000 {
                out.clear();
            }
            s.open_into(&ctx, black_box(&env), &mut out).unwrap()
        })
    });
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7; 32]).unwrap());
    let ad = [3u8; 40];
    let mut buf = *b"xxx";
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key([1; 12]),
            Aad::from(&ad),
            &mut buf,
        )
        .unwrap();
    group.bench_function("ring open alone", |b| {
        b.iter(|| {
            let mut pt = black_box(buf);
            key.open_in_place_separate_tag(
                Nonce::assume_unique_for_key([1; 12]),
                Aad::from(&ad),
                tag,
                &mut pt,
                0..,
            )
            .unwrap();
            pt
        })
    });
    {
        use aes_gcm::aead::AeadInPlace as _;
        use aes_gcm::{Aes256Gcm, KeyInit as _};
        let rc = Aes256Gcm::new((&[7u8; 32]).into());
        let rc_tag: [u8; 16] = tag.as_ref().try_into().unwrap();
        group.bench_function("rustcrypto aes-gcm open alone", |b| {
            b.iter(|| {
                let mut pt = black_box(buf);
                rc.decrypt_in_place_detached((&[1u8; 12]).into(), &ad, &mut pt, (&rc_tag).into())
                    .unwrap();
                pt
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
    targets = seal_and_open, members, aead_backends, small_elements
}
criterion_main!(benches);
