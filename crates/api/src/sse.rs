//! Live waiting-room streams over Server-Sent Events.
//!
//! The hub holds this instance's streams, grouped by schedule. It has no
//! timer and reads nothing per stream: the sale ticker (`jobs::run_sales`)
//! hands it each admission tick's `SaleUpdate`, from which every stream's
//! status follows (position = ticket - head + 1), and the passes handed out
//! by any instance since the last tick. A stream gets a `position` frame
//! when its status changed, `admitted` with its pass, or `sold-out`; the
//! last two end it. Streams with the same status share one encoded frame.
//!
//! When a tick shows a new epoch, the room's state was lost (Redis restarted
//! empty): before telling its streams anything, the hub puts their places
//! back (old tickets, one script for all of them), so they keep their place
//! instead of being told `left`.

use crate::dto::{AdmittedEvent, LeftEvent, QueueStatusResponse, SoldOutEvent};
use booking_domain::{
    Admissions, EntryToken, KnownPlace, Pass, QueueStatus, SaleTick, SaleUpdate, ScheduleId,
    StreamStart, UserId,
};
use chrono::SecondsFormat;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc;

/// Bytes of one SSE frame.
pub type Frame = actix_web::web::Bytes;

/// A slow client's updates are dropped rather than buffered without bound.
const CHANNEL_FRAMES: usize = 8;

/// One event: its name and its `data` (a documented schema, see
/// `STREAM_EVENTS`).
fn frame(event: &str, data: &impl serde::Serialize) -> Frame {
    // These types always serialise; an empty object would still parse.
    let data = serde_json::to_string(data).unwrap_or_else(|_| "{}".into());
    Frame::from(format!("event: {event}\ndata: {data}\n\n"))
}

pub fn position_frame(schedule: ScheduleId, status: &QueueStatus) -> Frame {
    frame("position", &QueueStatusResponse::new(schedule, status))
}

/// The pass; `pass` is `None` when the stream learned of it later than
/// the tick that handed it out (no time or ticket then).
pub fn admitted_frame(token: &EntryToken, pass: Option<&Pass>) -> Frame {
    let event = AdmittedEvent {
        token: token.token.clone(),
        expires_at: token.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        admitted_at: pass.map(|p| p.admitted_at.to_rfc3339_opts(SecondsFormat::Millis, true)),
        ticket: pass.map(|p| p.ticket),
    };
    frame("admitted", &event)
}

pub fn sold_out_frame(schedule: ScheduleId) -> Frame {
    frame(
        "sold-out",
        &SoldOutEvent {
            schedule_id: schedule.0,
        },
    )
}

fn left_frame() -> Frame {
    frame("left", &LeftEvent {})
}

const HEARTBEAT: &[u8] = b": heartbeat\n\n";

struct Subscriber {
    user: UserId,
    /// The place in line; `None` until the pre-queue is drawn.
    ticket: Option<u64>,
    tx: mpsc::Sender<Frame>,
    last: Option<QueueStatus>,
    /// A pass the client's full channel could not take yet.
    pass: Option<Pass>,
}

#[derive(Debug, Clone, Copy)]
pub struct HubSettings {
    pub heartbeat: Duration,
}

struct Inner {
    admissions: Admissions,
    settings: HubSettings,
    schedules: Mutex<HashMap<ScheduleId, Vec<Subscriber>>>,
    /// The epoch of each room's state at the last tick.
    epochs: Mutex<HashMap<ScheduleId, String>>,
    closed: std::sync::atomic::AtomicBool,
}

/// The SSE connections of this instance, grouped by schedule.
#[derive(Clone)]
pub struct QueueHub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for QueueHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueHub")
            .field("connections", &self.connections())
            .finish()
    }
}

fn send(sub: &mut Subscriber, frame: Frame) -> Result<(), mpsc::error::TrySendError<Frame>> {
    sub.tx.try_send(frame)
}

impl QueueHub {
    pub fn new(admissions: Admissions, settings: HubSettings) -> Self {
        let inner = Inner {
            admissions,
            settings,
            schedules: Mutex::new(HashMap::new()),
            epochs: Mutex::new(HashMap::new()),
            closed: std::sync::atomic::AtomicBool::new(false),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    pub fn heartbeat_every(&self) -> Duration {
        self.inner.settings.heartbeat
    }

    /// Open connections, all schedules.
    pub fn connections(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }

    /// Schedules with a stream open here: the ticker visits them even when
    /// their room has just closed, so the streams hear the end.
    pub fn schedules(&self) -> Vec<ScheduleId> {
        self.lock().keys().copied().collect()
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
        start: StreamStart,
    ) -> mpsc::Receiver<Frame> {
        let (tx, rx) = mpsc::channel(CHANNEL_FRAMES);
        let (status, ticket) = match start {
            StreamStart::Admitted(token) => {
                let _ = tx.try_send(admitted_frame(&token, None));
                return rx;
            }
            StreamStart::Waiting { status, ticket } => (status, ticket),
        };
        let _ = tx.try_send(position_frame(schedule, &status));
        if self.inner.closed.load(std::sync::atomic::Ordering::Relaxed) {
            return rx;
        }
        self.lock().entry(schedule).or_default().push(Subscriber {
            user,
            ticket,
            tx,
            last: Some(status),
            pass: None,
        });
        rx
    }

    /// Ends every stream (server shutdown): each client sees its stream close.
    pub fn shutdown(&self) {
        self.inner
            .closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.lock().clear();
    }

    /// A comment line to every stream; drops the ones whose client left.
    pub fn heartbeat(&self) {
        let mut schedules = self.lock();
        for subscribers in schedules.values_mut() {
            subscribers.retain(|sub| {
                !matches!(
                    sub.tx.try_send(Frame::from_static(HEARTBEAT)),
                    Err(mpsc::error::TrySendError::Closed(_))
                )
            });
        }
        schedules.retain(|_, subscribers| !subscribers.is_empty());
    }

    /// Tells the schedule's streams what the tick changed for them.
    pub async fn publish(&self, schedule: ScheduleId, update: &SaleUpdate) {
        let healed;
        let update = match self.lost_epoch(schedule, update) {
            None => update,
            Some(lost) => match self.put_places_back(schedule, update).await {
                Some(after) => {
                    healed = after;
                    &healed
                }
                None => {
                    // Told nothing this tick: the next one tries again.
                    self.epochs().insert(schedule, lost);
                    return;
                }
            },
        };
        // After the draw, streams from the pre-queue learn their ticket
        // first, so their first frame after the opening has their place.
        if update.tick.sale.opened {
            let undrawn = self.undrawn(schedule);
            if !undrawn.is_empty() {
                self.learn_tickets(schedule, &undrawn).await;
            }
        }
        for user in self.deliver(schedule, update) {
            self.settle_lost(schedule, user).await;
        }
    }

    fn epochs(&self) -> std::sync::MutexGuard<'_, HashMap<ScheduleId, String>> {
        self.inner
            .epochs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers the update's epoch; returns the one it replaced when the
    /// room's state was lost since the last tick (and the sale goes on).
    fn lost_epoch(&self, schedule: ScheduleId, update: &SaleUpdate) -> Option<String> {
        let previous = self.epochs().insert(schedule, update.tick.epoch.clone())?;
        (previous != update.tick.epoch && !update.sold_out()).then_some(previous)
    }

    /// Puts this instance's streams back in the room with the places they
    /// knew; returns the update with the line as it is now, or `None` when
    /// Redis did not answer.
    async fn put_places_back(
        &self,
        schedule: ScheduleId,
        update: &SaleUpdate,
    ) -> Option<SaleUpdate> {
        let places: Vec<KnownPlace> = self
            .lock()
            .get(&schedule)
            .map(|subs| {
                subs.iter()
                    .map(|s| KnownPlace {
                        user: s.user,
                        ticket: s.ticket,
                    })
                    .collect()
            })
            .unwrap_or_default();
        if places.is_empty() {
            return Some(update.clone());
        }
        let restored = match self
            .inner
            .admissions
            .restore_places(schedule, &places)
            .await
        {
            Ok(restored) => restored,
            Err(e) => {
                tracing::warn!(%schedule, error = %e, "places not put back; next tick retries");
                return None;
            }
        };
        tracing::warn!(%schedule, streams = places.len(), "waiting room state was lost; places put back");
        let tickets: HashMap<UserId, u64> = places
            .iter()
            .zip(&restored.tickets)
            .filter_map(|(place, ticket)| Some((place.user, (*ticket)?)))
            .collect();
        if let Some(subscribers) = self.lock().get_mut(&schedule) {
            for sub in subscribers.iter_mut() {
                // A user who entered again meanwhile keeps that place.
                if let Some(ticket) = tickets.get(&sub.user) {
                    sub.ticket = Some(*ticket);
                }
            }
        }
        Some(SaleUpdate {
            tick: SaleTick {
                head: restored.head,
                ..update.tick.clone()
            },
            ..update.clone()
        })
    }

    fn undrawn(&self, schedule: ScheduleId) -> Vec<UserId> {
        self.lock()
            .get(&schedule)
            .map(|subs| {
                subs.iter()
                    .filter(|s| s.ticket.is_none())
                    .map(|s| s.user)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sends what it can without a round trip; returns the users who left
    /// the line without a pass this instance saw (joined after the tick that
    /// admitted them).
    fn deliver(&self, schedule: ScheduleId, update: &SaleUpdate) -> Vec<UserId> {
        let mut schedules = self.lock();
        let Some(subscribers) = schedules.get_mut(&schedule) else {
            return Vec::new();
        };
        if update.sold_out() {
            let frame = sold_out_frame(schedule);
            for sub in subscribers.iter() {
                let _ = sub.tx.try_send(frame.clone());
            }
            schedules.remove(&schedule);
            return Vec::new();
        }
        let passes: HashMap<UserId, &Pass> =
            update.tick.admitted.iter().map(|p| (p.user, p)).collect();
        let mut frames: HashMap<QueueStatus, Frame> = HashMap::new();
        let mut lost = Vec::new();
        subscribers.retain_mut(|sub| {
            let pass = sub
                .pass
                .take()
                .or_else(|| passes.get(&sub.user).map(|p| (*p).clone()));
            if let Some(pass) = pass {
                return match send(sub, admitted_frame(&pass.token, Some(&pass))) {
                    Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => false,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        sub.pass = Some(pass);
                        true
                    }
                };
            }
            let Some(status) = update.status_of(sub.ticket) else {
                lost.push(sub.user);
                return true;
            };
            if sub.last == Some(status) {
                return true;
            }
            let frame = frames
                .entry(status)
                .or_insert_with(|| position_frame(schedule, &status))
                .clone();
            match send(sub, frame) {
                Ok(()) => {
                    sub.last = Some(status);
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
                // A slow client: it gets the news next tick.
                Err(mpsc::error::TrySendError::Full(_)) => true,
            }
        });
        lost
    }

    async fn learn_tickets(&self, schedule: ScheduleId, users: &[UserId]) {
        let tickets = match self.inner.admissions.tickets(schedule, users).await {
            Ok(tickets) => tickets,
            Err(e) => {
                tracing::warn!(%schedule, error = %e, "drawn tickets unavailable; next tick retries");
                return;
            }
        };
        let drawn: HashMap<UserId, u64> = users
            .iter()
            .zip(tickets)
            .filter_map(|(user, ticket)| Some((*user, ticket?)))
            .collect();
        if let Some(subscribers) = self.lock().get_mut(&schedule) {
            for sub in subscribers.iter_mut().filter(|s| s.ticket.is_none()) {
                sub.ticket = drawn.get(&sub.user).copied();
            }
        }
    }

    /// A stream whose user left the line unseen: the pass if they have one,
    /// else `left`.
    async fn settle_lost(&self, schedule: ScheduleId, user: UserId) {
        let frame = match self.inner.admissions.pass_of(user, schedule).await {
            Ok(Some(token)) => admitted_frame(&token, None),
            Ok(None) => left_frame(),
            Err(e) => {
                tracing::warn!(%schedule, %user, error = %e, "pass unavailable; next tick retries");
                return;
            }
        };
        let mut schedules = self.lock();
        if let Some(subscribers) = schedules.get_mut(&schedule) {
            subscribers.retain(|sub| {
                if sub.user != user {
                    return true;
                }
                let ended = sub.tx.try_send(frame.clone());
                matches!(ended, Err(mpsc::error::TrySendError::Full(_)))
            });
        }
    }
}
