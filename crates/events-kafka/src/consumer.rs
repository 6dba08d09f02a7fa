//! The consuming side: one loop per (topic, group) that hands each record
//! to its handler, retries with backoff, sends a poison record to
//! `<topic>.DLT`, and commits an offset only after one of the two.

use crate::*;

/// How often a consumer records its lag.
const LAG_EVERY: Duration = Duration::from_secs(5);

pub(crate) struct ConsumerLoop {
    pub(crate) bus: KafkaEventBus,
    pub(crate) consumer: Arc<StreamConsumer>,
    pub(crate) group: String,
    pub(crate) handler: Arc<dyn EventHandler>,
    pub(crate) stopped: watch::Receiver<bool>,
}

/// A record as the domain sees it, or why it cannot be one (a poison record).
fn event_of(message: &BorrowedMessage<'_>, prefix: &str) -> Result<OutboxEvent, BoxError> {
    let header = |name: &str| {
        message.headers().and_then(|h| {
            h.iter()
                .find(|header| header.key == name)
                .and_then(|header| header.value)
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(str::to_owned)
        })
    };
    let id = header(EVENT_ID)
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or("the record has no numeric event-id header")?;
    let payload = serde_json::from_slice(message.payload().unwrap_or_default())
        .map_err(|e| format!("the payload is not JSON: {e}"))?;
    let created_at = header("created-at")
        .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
        .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
    Ok(OutboxEvent {
        id,
        topic: message
            .topic()
            .strip_prefix(prefix)
            .unwrap_or(message.topic())
            .to_owned(),
        key: message
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default(),
        payload,
        created_at,
        published_at: None,
        request_id: header(REQUEST_ID),
    })
}

/// Every `LAG_EVERY`, records how far the consumer trails each topic it
/// reads: the log's high watermark minus the consumer's position.
async fn measure_lag(
    consumer: Arc<StreamConsumer>,
    stats: Arc<KafkaStats>,
    group: String,
    mut stopped: watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(LAG_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stopped.changed() => return,
        }
        let consumer = Arc::clone(&consumer);
        // The watermark request blocks: a blocking thread, not the runtime.
        let measured = tokio::task::spawn_blocking(move || {
            let mut behind: std::collections::BTreeMap<String, i64> = Default::default();
            let Ok(positions) = consumer.position() else {
                return behind;
            };
            for element in positions.elements() {
                // No position yet (nothing fetched): nothing to say.
                let Some(at) = element.offset().to_raw().filter(|o| *o >= 0) else {
                    continue;
                };
                let Ok((_, high)) = consumer.fetch_watermarks(
                    element.topic(),
                    element.partition(),
                    Duration::from_secs(1),
                ) else {
                    continue;
                };
                *behind.entry(element.topic().to_owned()).or_default() += (high - at).max(0);
            }
            behind
        })
        .await;
        let Ok(behind) = measured else { continue };
        let mut lags = stats.lags.lock().unwrap_or_else(PoisonError::into_inner);
        for (topic, records) in behind {
            lags.insert((topic, group.clone()), records);
        }
    }
}

impl ConsumerLoop {
    pub(crate) async fn run(mut self) {
        // Measured beside the loop: a consumer stuck on a record still
        // reports how far behind it is.
        tokio::spawn(measure_lag(
            Arc::clone(&self.consumer),
            Arc::clone(&self.bus.stats),
            self.group.clone(),
            self.stopped.clone(),
        ));
        loop {
            let message = tokio::select! {
                m = self.consumer.recv() => m,
                _ = self.stopped.changed() => return,
            };
            let message = match message {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(group = %self.group, error = %e, "kafka receive failed");
                    tokio::time::sleep(self.bus.settings.backoff).await;
                    continue;
                }
            };
            self.bus.stats.consumed.fetch_add(1, Ordering::Relaxed);
            if let Err(error) = self.handle_with_retries(&message).await {
                self.dead_letter(&message, &error).await;
            }
            // Handled, or safely in the DLT: only now does the offset move.
            if let Err(e) = self.consumer.commit_message(&message, CommitMode::Async) {
                tracing::warn!(group = %self.group, error = %e, "offset commit failed; the record may come again");
            }
        }
    }

    /// Ok once the handler succeeded; the last error after every attempt failed.
    async fn handle_with_retries(&self, message: &BorrowedMessage<'_>) -> Result<(), String> {
        let attempts = self.bus.settings.attempts.max(1);
        let mut pause = self.bus.settings.backoff;
        let mut last = String::new();
        for attempt in 1..=attempts {
            let outcome = match event_of(message, &self.bus.settings.prefix) {
                Ok(event) => {
                    let span = tracing::info_span!(
                        "consume",
                        group = %self.group,
                        event_id = event.id,
                        request_id = event.request_id.as_deref().unwrap_or("-"),
                    );
                    self.handler.handle(&event).instrument(span).await
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => return Ok(()),
                Err(e) => {
                    last = e.to_string();
                    tracing::warn!(group = %self.group, attempt, error = %last, "event handler failed");
                    if attempt < attempts {
                        self.bus.stats.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(pause).await;
                        pause *= 2;
                    }
                }
            }
        }
        Err(last)
    }

    /// Produces the record to `<topic>.DLT`, retrying until the broker has
    /// it: its offset must not be committed before.
    async fn dead_letter(&self, message: &BorrowedMessage<'_>, error: &str) {
        let topic = dead_letter_topic(message.topic());
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        let attempts = self.bus.settings.attempts.max(1).to_string();
        // Every original header rides along, so a replay can restore the
        // record as it was (event id, request id, creation time).
        let headers = original_headers(message)
            .insert(Header {
                key: "original-topic",
                value: Some(message.topic()),
            })
            .insert(Header {
                key: "original-partition",
                value: Some(partition.as_str()),
            })
            .insert(Header {
                key: "original-offset",
                value: Some(offset.as_str()),
            })
            .insert(Header {
                key: "error",
                value: Some(error),
            })
            .insert(Header {
                key: "attempts",
                value: Some(attempts.as_str()),
            });
        let key = key_of(message);
        let payload = message.payload().unwrap_or_default();
        let mut pause = self.bus.settings.backoff;
        loop {
            match self.bus.send(&topic, &key, payload, headers.clone()).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(%topic, error = %e, "dead-letter publish failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
        self.bus.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%topic, %offset, error, "record moved to the dead-letter topic");
    }
}
