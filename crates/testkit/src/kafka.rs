//! A Kafka broker for tests: `KAFKA_BROKERS` when set (the native tansu
//! broker: `just infra-up` starts one), else an Apache Kafka container where
//! a Docker engine runs. Each `TestKafka` has its own topic and group prefix.
//! With neither, the test fails and says how to provide one.

use testcontainers_modules::kafka::apache::Kafka;
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use testcontainers_modules::testcontainers::ContainerAsync;

const HOW_TO_PROVIDE: &str = "\
Tests need a Kafka broker. Either
  - set KAFKA_BROKERS, e.g. KAFKA_BROKERS=127.0.0.1:9092
    (`just infra-up` or deploy/local/up installs and starts the Kafka-compatible
    broker tansu natively; `just test` does both), or
  - run a Docker engine, and the tests start an Apache Kafka container themselves.";

pub struct TestKafka {
    brokers: String,
    prefix: String,
    _container: Option<ContainerAsync<Kafka>>,
}

impl std::fmt::Debug for TestKafka {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKafka")
            .field("brokers", &self.brokers)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl TestKafka {
    pub async fn new() -> TestKafka {
        let (brokers, container) = match std::env::var("KAFKA_BROKERS") {
            Ok(b) if !b.trim().is_empty() => (b, None),
            _ => {
                let container = Kafka::default().start().await.unwrap_or_else(|e| {
                    panic!("KAFKA_BROKERS is not set and no Kafka container could be started ({e}).\n{HOW_TO_PROVIDE}")
                });
                let port = container
                    .get_host_port_ipv4(testcontainers_modules::kafka::apache::KAFKA_PORT)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("Kafka container has no port ({e}).\n{HOW_TO_PROVIDE}")
                    });
                (format!("127.0.0.1:{port}"), Some(container))
            }
        };
        let host = brokers.split(',').next().unwrap_or_default().to_owned();
        if tokio::net::TcpStream::connect(&host).await.is_err() {
            panic!("no Kafka broker answers at {brokers}.\n{HOW_TO_PROVIDE}");
        }
        let prefix = format!("t{}.", uuid::Uuid::new_v4().simple());
        TestKafka {
            brokers,
            prefix,
            _container: container,
        }
    }

    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    /// Prepend to every topic and group this test uses.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}
