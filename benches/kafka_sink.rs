//! The Kafka sink against a bare librdkafka producer loop, same broker,
//! same settings, same pre-encoded records. Needs a broker:
//!
//!   DIVOLTE_BENCH_BROKER=127.0.0.1:9092 cargo bench --bench kafka_sink
//!
//! (`benches/kafka.sh` starts tansu and runs it three times.) Without the
//! variable it prints a note and does nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use divolte::avro::{default_schema, encode_record, Datum};
use divolte::batch::{Batch, SinkMessage};
use divolte::config::KafkaMode;
use divolte::metrics::SinkMetrics;
use divolte::plan::{KafkaPlan, Properties};
use divolte::sink::kafka::{spawn, KafkaLane};
use divolte::sink::DrainDeadline;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const RECORDS: usize = 200_000;

fn records() -> Vec<(String, Vec<u8>)> {
    let layout = default_schema();
    (0..RECORDS)
        .map(|i| {
            let party = format!("0:i1t84hgy:party{:06}", i % 5000);
            let location = format!("https://shop.example.com/category/shoes/{i}");
            let mut values: Vec<Option<Datum>> = vec![None; layout.fields.len()];
            values[0] = Some(Datum::Boolean(false));
            values[1] = Some(Datum::Boolean(false));
            values[2] = Some(Datum::Boolean(false));
            values[3] = Some(Datum::Long(1_700_000_000_000 + i as i64));
            values[4] = Some(Datum::Long(1_700_000_000_000 + i as i64));
            values[5] = Some(Datum::String("192.0.2.7"));
            values[7] = Some(Datum::String(&location));
            values[12] = Some(Datum::String(&party));
            let mut out = Vec::new();
            encode_record(&layout, &values, &mut out).unwrap();
            (party.clone(), out)
        })
        .collect()
}

/// The collector's producer properties (its defaults plus the broker).
fn properties(broker: &str) -> Vec<(String, String)> {
    let toml = format!("[global.kafka.producer]\n\"bootstrap.servers\" = \"{broker}\"\n");
    let config = divolte::config::from_toml_with_env(&toml, |_| None).unwrap();
    divolte::config::kafka::producer_properties(&config.global.kafka.producer).unwrap()
}

fn bare(broker: &str, topic: &str, data: &[(String, Vec<u8>)]) -> f64 {
    let mut config = rdkafka::ClientConfig::new();
    for (k, v) in properties(broker) {
        config.set(k, v);
    }
    let producer: BaseProducer = config.create().unwrap();
    let start = Instant::now();
    for (key, value) in data {
        let mut record = BaseRecord::<[u8], [u8]>::to(topic).key(key.as_bytes()).payload(value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    producer.poll(Duration::from_millis(10));
                    record = back;
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    data.len() as f64 / start.elapsed().as_secs_f64()
}

fn sink(broker: &str, topic: &str, data: &[(String, Vec<u8>)]) -> f64 {
    let (tx, rx) = crossbeam_channel::unbounded();
    let metrics = Arc::new(SinkMetrics::new(1));
    let deadline = Arc::new(DrainDeadline::default());
    let lane = KafkaLane {
        sink: "bench".into(),
        lane: 0,
        lanes: 1,
        kafka: KafkaPlan {
            topic: topic.into(),
            mode: KafkaMode::Naked,
            confluent_id: None,
            properties: Properties(properties(broker)),
            spool: None,
        },
        json: None,
    };
    let start = Instant::now();
    let thread = spawn(lane, rx, metrics.clone(), deadline.clone()).unwrap();
    for chunk in data.chunks(256) {
        let mut batch = Batch::default();
        for (key, value) in chunk {
            batch.push(key, value, 1_700_000_000_000);
        }
        metrics.queued[0].fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
        tx.send(SinkMessage::Records(batch)).unwrap();
    }
    deadline.start(Instant::now() + Duration::from_secs(60));
    tx.send(SinkMessage::Drain).unwrap();
    thread.join().unwrap();
    let rate = data.len() as f64 / start.elapsed().as_secs_f64();
    assert_eq!(metrics.delivered.load(std::sync::atomic::Ordering::Relaxed), data.len() as u64);
    rate
}

fn main() {
    let Ok(broker) = std::env::var("DIVOLTE_BENCH_BROKER") else {
        println!("kafka_sink: set DIVOLTE_BENCH_BROKER (see benches/kafka.sh); skipped");
        return;
    };
    let topic = std::env::var("DIVOLTE_BENCH_TOPIC").unwrap_or_else(|_| "bench".into());
    let data = records();
    let bare_rate = bare(&broker, &topic, &data);
    let sink_rate = sink(&broker, &topic, &data);
    println!(
        "kafka: bare producer {bare_rate:.0} records/s, sink {sink_rate:.0} records/s, ratio {:.3}",
        sink_rate / bare_rate
    );
}
