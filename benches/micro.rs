//! Micro-benchmarks of the pure parts: the canonical encoding and id, one chain step,
//! ed25519 sign and verify, sealing and opening a push, parsing and encoding a box
//! line. `cargo bench --bench micro` (criterion; results in target/criterion).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use dshare::chain;
use dshare::identity::Identity;
use dshare::mbox::{encode_line, parse_line};
use dshare::message::{self, Draft, Message};
use dshare::seal::Keyring;
use dshare::secret::Secret;
use dshare::signature;

/// A body of about 150 bytes, like the messages in BENCHMARKS.md.
const BODY: &str = "backup of db-3 finished at 02:14 UTC: 41.7 GiB in 12m03s, \
                    checksum ok, retention 30 days; next run scheduled for 02:00 UTC tomorrow.";

fn sample(key: &Identity) -> Message {
    Message::sign(
        &Draft {
            author: key.author(),
            seq: 42,
            prev: Some(dshare::hex::Hex([7; 32])),
            clock: 1234,
            ts: 1_796_031_234_552,
            body: BODY,
        },
        key,
    )
}

fn pure(c: &mut Criterion) {
    let key = Identity::generate();
    let m = sample(&key);
    let draft = m.draft();
    let bytes = message::canonical(&draft);

    c.bench_function("canonical encoding", |b| {
        b.iter(|| message::canonical(black_box(&draft)));
    });
    c.bench_function("canonical encoding + id (SHA-256)", |b| {
        b.iter(|| message::sha256(&message::canonical(black_box(&draft))));
    });
    c.bench_function("chain step", |b| {
        b.iter(|| chain::step(black_box(&chain::GENESIS), black_box(&m.id)));
    });
    c.bench_function("ed25519 sign (canonical bytes)", |b| {
        b.iter(|| key.sign(black_box(&bytes)));
    });
    c.bench_function("ed25519 verify, one signature (ZIP 215)", |b| {
        b.iter(|| signature::verify(black_box(&m.author), black_box(&bytes), black_box(&m.sig)));
    });
    c.bench_function("Message::sign (encode, id, sign)", |b| {
        b.iter(|| Message::sign(black_box(&draft), &key));
    });
    c.bench_function("Message::check (encode, id, verify)", |b| {
        b.iter(|| black_box(&m).check());
    });
    let batch: Vec<Message> = (0..64).map(|_| m.clone()).collect();
    let others: Vec<Message> = (0..64)
        .map(|_| {
            let key = Identity::generate();
            Message::sign(
                &Draft {
                    author: key.author(),
                    ..draft.clone()
                },
                &key,
            )
        })
        .collect();
    let mut g = c.benchmark_group("batch of 64");
    g.throughput(Throughput::Elements(64));
    g.bench_function("verify_batch, one author (one thread)", |b| {
        let items: Vec<signature::Item<'_>> = batch
            .iter()
            .map(|m| (&m.author, bytes.as_slice(), &m.sig))
            .collect();
        b.iter(|| signature::verify_batch(black_box(&items)));
    });
    g.bench_function("check_run, 64 authors (one thread)", |b| {
        b.iter(|| message::check_run(black_box(&others), message::ClockCap::Enforce));
    });
    g.bench_function("check_all (parallel over cores)", |b| {
        b.iter(|| message::check_all(black_box(&batch)));
    });
    g.finish();

    let line = encode_line(&chain::step(&chain::GENESIS, &m.id), &m);
    let mut g = c.benchmark_group("box line");
    g.throughput(Throughput::Bytes(line.len() as u64 + 1));
    g.bench_function("encode", |b| {
        b.iter(|| encode_line(black_box(&chain::GENESIS), black_box(&m)));
    });
    g.bench_function("parse (with canonical re-check)", |b| {
        b.iter(|| parse_line(black_box(&line)).expect("a good line"));
    });
    g.finish();

    let ring = Keyring::new(&Secret::random());
    let push = serde_json::to_vec(&serde_json::json!({ "messages": [&m] })).expect("json");
    let sealed = ring.seal(b"dshare/1 req /v1/push", &push, 1_000_000);
    let mut g = c.benchmark_group("seal one-message push");
    g.throughput(Throughput::Bytes(push.len() as u64));
    g.bench_function("seal", |b| {
        b.iter(|| ring.seal(b"dshare/1 req /v1/push", black_box(&push), 1_000_000));
    });
    g.bench_function("open", |b| {
        b.iter(|| {
            ring.open(b"dshare/1 req /v1/push", black_box(&sealed), 1_000_000)
                .expect("opens")
        });
    });
    g.finish();
}

criterion_group!(benches, pure);
criterion_main!(benches);
