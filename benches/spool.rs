//! The Kafka sink's disk spool: how fast a flush thread can put records on
//! disk while the broker is away (appends of 300-byte records, one fdatasync
//! per batch of 256, as the lane delivers them), and read them back for a
//! replay.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use divolte::sink::kafka::spool::Spool;

const BATCH: usize = 256;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let value = vec![7u8; 300];
    let key = b"0:i1t84hgy:5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG";
    let mut g = c.benchmark_group("spool");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut spool = Spool::open(dir.path().join("append"), u64::MAX).unwrap();
    g.bench_function("append_batch_of_256_and_fdatasync", |b| {
        b.iter(|| {
            for i in 0..BATCH {
                assert!(spool.append(key, &value, Some(i as i64)).unwrap());
            }
            spool.commit().unwrap();
        })
    });
    let mut replay = Spool::open(dir.path().join("replay"), u64::MAX).unwrap();
    for i in 0..10_000 {
        replay.append(key, &value, Some(i)).unwrap();
    }
    replay.commit().unwrap();
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("read_a_segment_of_10000", |b| {
        b.iter(|| black_box(replay.oldest().unwrap().unwrap().0.len()));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
