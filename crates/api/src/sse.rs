//! Live waiting-room positions over Server-Sent Events.
//!
//! One ticker per schedule per instance reads the standings of all of this
//! instance's connections for that schedule with one `Admissions::standings`
//! call a tick (one positions read in the queue), and sends each connection its position only when it changed
//! (so at most once a tick), a heartbeat comment every so often, and finally
//! the `admitted` event with the entry token, which ends the stream. No
//! timer or Redis round trip per connection.

use booking_domain::{Admissions, EntryToken, QueueView, ScheduleId, Standing, UserId};
use chrono::SecondsFormat;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Bytes of one SSE frame.
pub type Frame = actix_web::web::Bytes;

/// A slow client's updates are dropped rather than buffered without bound.
const CHANNEL_FRAMES: usize = 8;

pub fn position_frame(view: &QueueView) -> Frame {
    let data = json!({
        "position": view.position.position,
        "waiting": view.position.waiting,
        "estimatedWaitSecs": view.estimated_wait.num_seconds(),
    });
    Frame::from(format!("event: position\ndata: {data}\n\n"))
}

pub fn admitted_frame(token: &EntryToken) -> Frame {
    let data = json!({
        "token": token.token,
        "expiresAt": token.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
    });
    Frame::from(format!("event: admitted\ndata: {data}\n\n"))
}

fn left_frame() -> Frame {
    Frame::from_static(b"event: left\ndata: {}\n\n")
}

const HEARTBEAT: &[u8] = b": heartbeat\n\n";

struct Subscriber {
    user: UserId,
    tx: mpsc::Sender<Frame>,
    last: Option<QueueView>,
}

#[derive(Debug, Clone, Copy)]
pub struct HubSettings {
    pub tick: Duration,
    pub heartbeat: Duration,
}

struct Inner {
    admissions: Admissions,
    settings: HubSettings,
    schedules: Mutex<HashMap<ScheduleId, Vec<Subscriber>>>,
    shutdown: watch::Receiver<bool>,
}

/// The SSE connections of this instance, grouped by schedule.
#[derive(Clone)]
pub struct QueueHub {
    inner: Arc<Inner>,
    stop: Arc<watch::Sender<bool>>,
}

impl std::fmt::Debug for QueueHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueHub")
            .field("connections", &self.connections())
            .finish()
    }
}

impl QueueHub {
    pub fn new(admissions: Admissions, settings: HubSettings) -> Self {
        let (stop, shutdown) = watch::channel(false);
        let inner = Inner {
            admissions,
            settings,
            schedules: Mutex::new(HashMap::new()),
            shutdown,
        };
        Self {
            inner: Arc::new(inner),
            stop: Arc::new(stop),
        }
    }

    /// Open connections, all schedules.
    pub fn connections(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ScheduleId, Vec<Subscriber>>> {
        self.inner
            .schedules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A new stream for `user`, starting with where it stands now.
    pub fn subscribe(
        &self,
        schedule: ScheduleId,
        user: UserId,
        view: QueueView,
    ) -> mpsc::Receiver<Frame> {
        let (tx, rx) = mpsc::channel(CHANNEL_FRAMES);
        let _ = tx.try_send(position_frame(&view));
        if *self.inner.shutdown.borrow() {
            return rx;
        }
        let mut schedules = self.lock();
        let subscribers = schedules.entry(schedule).or_default();
        let start_ticker = subscribers.is_empty();
        subscribers.push(Subscriber {
            user,
            tx,
            last: Some(view),
        });
        drop(schedules);
        if start_ticker {
            let hub = self.clone();
            tokio::spawn(async move { hub.run_ticker(schedule).await });
        }
        rx
    }

    /// Ends every stream (server shutdown): each client sees its stream close.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
        self.lock().clear();
    }

    async fn run_ticker(&self, schedule: ScheduleId) {
        let settings = self.inner.settings;
        let mut interval = tokio::time::interval(settings.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut shutdown = self.inner.shutdown.clone();
        let mut last_heartbeat = Instant::now();
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.changed() => return,
            }
            // Only this ticker removes subscribers; others only append, so
            // the first `users.len()` entries stay the ones asked about.
            let users: Vec<UserId> = {
                let mut schedules = self.lock();
                let Some(subscribers) = schedules.get(&schedule) else {
                    return;
                };
                if subscribers.is_empty() {
                    schedules.remove(&schedule);
                    return;
                }
                subscribers.iter().map(|s| s.user).collect()
            };
            let heartbeat = last_heartbeat.elapsed() >= settings.heartbeat;
            if heartbeat {
                last_heartbeat = Instant::now();
            }
            match self.inner.admissions.standings(schedule, &users).await {
                Ok(standings) => self.deliver(schedule, &standings, heartbeat),
                Err(e) => {
                    tracing::warn!(%schedule, error = %e, "queue positions unavailable");
                    // Keep the streams alive; positions resume with Redis.
                    self.deliver(schedule, &[], heartbeat);
                }
            }
        }
    }

    /// Sends each subscriber what changed for it; `standings` is empty when
    /// they could not be read (only heartbeats then).
    fn deliver(&self, schedule: ScheduleId, standings: &[Standing], heartbeat: bool) {
        let mut schedules = self.lock();
        let Some(subscribers) = schedules.get_mut(&schedule) else {
            return;
        };
        let mut index = 0;
        subscribers.retain_mut(|sub| {
            // `None`: joined after the read, or the read failed.
            let read = standings.get(index);
            index += 1;
            let (frame, seen, ends) = match read {
                Some(Standing::Admitted(Some(token))) => (Some(admitted_frame(token)), None, true),
                // The token is in use or gone: nothing to send.
                Some(Standing::Admitted(None)) => (None, None, false),
                Some(Standing::Waiting(view)) if sub.last != Some(*view) => {
                    (Some(position_frame(view)), Some(*view), false)
                }
                Some(Standing::Gone) => (Some(left_frame()), None, true),
                _ => (None, None, false),
            };
            let Some(frame) = frame.or_else(|| heartbeat.then(|| Frame::from_static(HEARTBEAT)))
            else {
                return true;
            };
            match sub.tx.try_send(frame) {
                Ok(()) => {
                    sub.last = seen.or(sub.last);
                    !ends
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
                // A full channel (slow client): it gets the news next tick.
                Err(mpsc::error::TrySendError::Full(_)) => true,
            }
        });
    }
}
