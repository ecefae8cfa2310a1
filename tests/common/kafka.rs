//! A real Kafka-protocol broker (tansu) for the Kafka sink tests, and its
//! topics read back with a consumer.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{eventually, free_port};

/// One record read back from a topic.
pub struct Consumed {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub timestamp: Option<i64>,
    pub partition: i32,
}

/// A real Kafka-protocol broker (tansu, memory storage) on a free loopback port.
pub struct Broker {
    pub port: u16,
    child: Child,
    _log: tempfile::NamedTempFile,
}

impl Broker {
    pub fn start(topics: &[(&str, u32)]) -> Self {
        Self::start_on(free_port(), topics)
    }

    pub fn start_on(port: u16, topics: &[(&str, u32)]) -> Self {
        let url = format!("tcp://127.0.0.1:{port}");
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new("tansu")
            .args([
                "broker",
                "--storage-engine",
                "memory://tansu/",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("tansu is installed (tests/run-all.sh installs it)");
        let broker = Self { port, child, _log: log };
        eventually(Duration::from_secs(20), || TcpStream::connect(("127.0.0.1", port)).is_ok());
        for (topic, partitions) in topics {
            let status = Command::new("tansu")
                .args(["topic", "create", "--broker", &url, "--partitions", &partitions.to_string(), topic])
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "topic {topic} created");
        }
        broker
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker (its memory storage goes with it).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the broker; memory storage keeps its data.
    pub fn freeze(&self, frozen: bool) {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.child.id() as i32, if frozen { libc::SIGSTOP } else { libc::SIGCONT }) };
    }

    /// Every record of `topic` (key, value, timestamp, partition), reading
    /// until `expected` arrived or `limit` passed. A consumer that stops
    /// getting records from a partition (seen with tansu now and then, on
    /// older builds too) is replaced by a fresh one reading from the start
    /// every 5 seconds; the last reading is returned.
    pub fn consume(&self, topic: &str, expected: usize, limit: Duration) -> Vec<Consumed> {
        let deadline = Instant::now() + limit;
        loop {
            let window = deadline.saturating_duration_since(Instant::now()).min(Duration::from_secs(5));
            let read = self.consume_once(topic, expected, window);
            if read.len() >= expected || Instant::now() >= deadline {
                return read;
            }
        }
    }

    fn consume_once(&self, topic: &str, expected: usize, limit: Duration) -> Vec<Consumed> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        use rdkafka::{Message, Offset, TopicPartitionList};
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("group.id", format!("test-{}", free_port()))
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        // Every partition assigned directly and read from its start: no
        // consumer group to join, which a just-restarted broker can take
        // longer over than a test waits.
        let deadline = Instant::now() + limit;
        let partitions = loop {
            let found = consumer.fetch_metadata(Some(topic), Duration::from_secs(2)).ok().and_then(|m| {
                m.topics().iter().find(|t| t.name() == topic).map(|t| t.partitions().len()).filter(|&n| n > 0)
            });
            match found {
                Some(n) => break n,
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
                None => return Vec::new(),
            }
        };
        let mut assignment = TopicPartitionList::new();
        for partition in 0..partitions as i32 {
            assignment.add_partition_offset(topic, partition, Offset::Beginning).unwrap();
        }
        consumer.assign(&assignment).unwrap();
        let mut out = Vec::new();
        while out.len() < expected && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                out.push(Consumed {
                    key: m.key().unwrap_or_default().to_vec(),
                    value: m.payload().unwrap_or_default().to_vec(),
                    timestamp: m.timestamp().to_millis(),
                    partition: m.partition(),
                });
            }
        }
        out
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.freeze(false);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
