//! One buyer of the sale: arrives, enters the waiting room, waits on its
//! event stream, and when admitted holds seats and pays for them at once.
//! Every wait also watches the run's stop signal, so the deadline ends the
//! buyer wherever it is and it still reports what it saw.

use super::api::{self, Endpoint, Failure, FailureKind, HoldAnswer, Instance, RoomAnswer};
use super::events::{QueueState, SaleEvent};
use super::history::{History, Line};
use super::seats::SeatPool;
use crate::frames::FrameReader;
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use reqwest::Client;
use serde::Serialize;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Transport failures of an enter are retried this often (entering again
/// keeps the first place).
const ENTER_RETRIES: u32 = 2;
/// A 5xx or a broken connection on a payment is retried this often, with
/// the same `Idempotency-Key`.
const PAY_TRIES: u32 = 3;
/// Heartbeats come every 15 s: a stream silent this long is dead.
const STREAM_IDLE: Duration = Duration::from_secs(45);
/// A cut stream is reopened after this, as `EventSource` would.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// The two clocks of a run: `Instant` for waits, the wall clock for the
/// server's timestamps (one machine, one clock).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub start: Instant,
    pub start_wall: chrono::DateTime<chrono::Utc>,
}

impl Clock {
    pub fn now() -> Self {
        Self {
            start: Instant::now(),
            start_wall: chrono::Utc::now(),
        }
    }

    /// Seconds since the start of the run.
    pub fn secs(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    pub fn wall_secs(&self, at: chrono::DateTime<chrono::Utc>) -> f64 {
        (at - self.start_wall)
            .num_microseconds()
            .map_or(f64::MAX, |us| us as f64 / 1e6)
    }

    /// The `Instant` of a moment `secs` after the start (never before it).
    pub fn instant(&self, secs: f64) -> Instant {
        self.start + Duration::from_secs_f64(secs.max(0.0))
    }
}

/// Live counts for the progress lines.
#[derive(Debug, Default)]
pub struct Progress {
    pub arrived: AtomicUsize,
    pub streaming: AtomicUsize,
    pub admitted: AtomicUsize,
    pub seats_sold: AtomicUsize,
    pub sold_out: AtomicUsize,
}

/// How the stream is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StreamAuthMode {
    /// `POST /api/queue/stream-ticket`, then `?ticket=` (what a browser does).
    Ticket,
    /// `Authorization: Bearer` on the stream (the server before stream tickets).
    Bearer,
}

/// What every buyer shares.
#[derive(Debug)]
pub struct Sale {
    pub client: Client,
    pub instances: Vec<Instance>,
    pub schedule: i64,
    pub stream_auth: StreamAuthMode,
    pub think: Duration,
    pub hold_attempts: u32,
    pub reconnects: u32,
    pub seats: SeatPool,
    pub clock: Clock,
    pub progress: Progress,
    pub stop: watch::Receiver<bool>,
    /// Makes the `Idempotency-Key`s of this run its own.
    pub run_tag: String,
    /// Every hold and payment sent, with its answer.
    pub history: History,
}

/// One synthetic user.
#[derive(Debug)]
pub struct Buyer {
    pub index: usize,
    /// Its user id (the JWT's subject), for the history.
    pub user: Option<i64>,
    pub jwt: String,
    /// When it arrives, in seconds since the start of the run.
    pub arrives_at: f64,
    /// How many seats it wants (1 to 4, the per-buyer limit).
    pub wants: usize,
    pub rng: StdRng,
}

/// How a buyer's run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "reason")]
pub enum End {
    /// The deadline came before its arrival.
    NotArrived,
    Paid,
    /// Admitted, but the driver knew of no free seat to try.
    NoSeatLeft,
    /// Admitted, and the hold was answered "sold out".
    HoldSoldOut,
    /// Admitted, then stopped: refusals, failures, or the deadline.
    GaveUp(String),
    /// Told "sold out" before admission (stream, enter or stream ticket).
    SoldOut,
    /// The stream said `left`: no longer in the room.
    Left,
    /// Never got into the room, or lost its stream for good.
    Failed(String),
    /// Still waiting at the deadline.
    StillWaiting,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HoldTally {
    pub created: u32,
    pub seat_taken: u32,
    pub sold_out: u32,
    pub contention: u32,
    pub refused: u32,
    pub failed: u32,
}

/// Everything one buyer saw; times are seconds since the start of the run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub index: usize,
    pub instance: usize,
    pub wanted: usize,
    /// When the enter was sent.
    pub arrived_at: Option<f64>,
    /// When the enter was answered.
    pub entered_at: Option<f64>,
    /// Entered before the opening (`before-opening`): in the pre-queue.
    pub pre_queue: bool,
    /// The pre-queue's drawn place: the first position after the opening.
    pub drawn_position: Option<u64>,
    pub first_position: Option<u64>,
    pub streams_opened: u32,
    pub positions: u32,
    pub position_increases: u32,
    pub heartbeats: u32,
    pub other_events: u32,
    /// When the `admitted` event arrived.
    pub admitted_at: Option<f64>,
    /// Its `admittedAt`, on the same scale.
    pub server_admitted_at: Option<f64>,
    pub sold_out_at: Option<f64>,
    pub sold_out_via: Option<Endpoint>,
    pub left_at: Option<f64>,
    pub holds: HoldTally,
    pub hold_ms: Vec<f64>,
    /// Seats in its 201 hold (paid or not).
    pub seats_held: usize,
    pub paid_at: Option<f64>,
    pub seats_paid: usize,
    pub requests: u32,
    #[serde(skip)]
    pub failures: Vec<Failure>,
    pub end: End,
}

impl Outcome {
    pub(super) fn new(index: usize, instance: usize, wanted: usize) -> Self {
        Self {
            index,
            instance,
            wanted,
            arrived_at: None,
            entered_at: None,
            pre_queue: false,
            drawn_position: None,
            first_position: None,
            streams_opened: 0,
            positions: 0,
            position_increases: 0,
            heartbeats: 0,
            other_events: 0,
            admitted_at: None,
            server_admitted_at: None,
            sold_out_at: None,
            sold_out_via: None,
            left_at: None,
            holds: HoldTally::default(),
            hold_ms: Vec::new(),
            seats_held: 0,
            paid_at: None,
            seats_paid: 0,
            requests: 0,
            failures: Vec::new(),
            end: End::NotArrived,
        }
    }

    /// Admitted or told "sold out": the two answers a waiting user is owed.
    pub fn answered(&self) -> bool {
        self.admitted_at.is_some() || self.sold_out_at.is_some()
    }

    fn told_sold_out(&mut self, via: Endpoint, sale: &Sale) {
        if self.sold_out_at.is_none() {
            self.sold_out_at = Some(sale.clock.secs());
            self.sold_out_via = Some(via);
            sale.progress.sold_out.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `None` when the run was stopped first.
async fn or_stop<T>(stop: &mut watch::Receiver<bool>, work: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        biased;
        _ = stop.wait_for(|&s| s) => None,
        v = work => Some(v),
    }
}

/// Runs one buyer to its end.
pub async fn run(sale: &Sale, mut buyer: Buyer) -> Outcome {
    let instance = buyer.index % sale.instances.len();
    let mut outcome = Outcome::new(buyer.index, instance, buyer.wants);
    let mut stop = sale.stop.clone();
    outcome.end = journey(sale, &mut buyer, &mut outcome, &mut stop).await;
    outcome
}

async fn journey(
    sale: &Sale,
    buyer: &mut Buyer,
    o: &mut Outcome,
    stop: &mut watch::Receiver<bool>,
) -> End {
    let at = &sale.instances[o.instance];
    let due = sale.clock.instant(buyer.arrives_at);
    if or_stop(stop, tokio::time::sleep_until(due.into()))
        .await
        .is_none()
    {
        return End::NotArrived;
    }
    o.arrived_at = Some(sale.clock.secs());
    sale.progress.arrived.fetch_add(1, Ordering::Relaxed);

    let mut tries = 0;
    let status = loop {
        let Some(answer) = or_stop(
            stop,
            api::enter(&sale.client, at, &buyer.jwt, sale.schedule),
        )
        .await
        else {
            return End::StillWaiting;
        };
        o.requests += 1;
        match answer {
            Ok(RoomAnswer::Ok(status)) => break status,
            Ok(RoomAnswer::SoldOut) => {
                o.told_sold_out(Endpoint::Enter, sale);
                return End::SoldOut;
            }
            Err(f) => {
                let retry = f.retryable() && tries < ENTER_RETRIES;
                o.failures.push(f);
                if !retry {
                    return End::Failed("enter".into());
                }
                tries += 1;
                or_stop(stop, tokio::time::sleep(RETRY_PAUSE)).await;
            }
        }
    };
    o.entered_at = Some(sale.clock.secs());
    o.pre_queue = status.is_before_opening();
    o.first_position = status.position;
    o.drawn_position = status.drawn_position;
    if status.state == Some(QueueState::SoldOut) {
        o.told_sold_out(Endpoint::Enter, sale);
        return End::SoldOut;
    }

    let mut cuts = 0;
    let token = loop {
        match listen(sale, buyer, o, stop).await {
            Heard::Admitted(Some(token)) => break token,
            Heard::Admitted(None) => return End::GaveUp("admitted without a token".into()),
            Heard::SoldOut => return End::SoldOut,
            Heard::Left => return End::Left,
            Heard::Stopped => return End::StillWaiting,
            Heard::Cut if cuts >= sale.reconnects => return End::Failed("stream cut".into()),
            Heard::Cut => {
                cuts += 1;
                if or_stop(stop, tokio::time::sleep(RECONNECT_AFTER))
                    .await
                    .is_none()
                {
                    return End::StillWaiting;
                }
            }
        }
    };
    if !sale.think.is_zero()
        && or_stop(stop, tokio::time::sleep(sale.think))
            .await
            .is_none()
    {
        return End::GaveUp("deadline".into());
    }
    buy_seats(sale, buyer, o, stop, &token).await
}

/// What one stream ended with.
#[derive(Debug)]
enum Heard {
    Admitted(Option<String>),
    SoldOut,
    Left,
    Stopped,
    /// Ended or broke without a final event: reopen it.
    Cut,
}

/// Counts the streams open right now, whichever way the stream ends.
struct Streaming<'a>(&'a AtomicUsize);

impl<'a> Streaming<'a> {
    fn open(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Streaming<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn listen(
    sale: &Sale,
    buyer: &Buyer,
    o: &mut Outcome,
    stop: &mut watch::Receiver<bool>,
) -> Heard {
    let at = &sale.instances[o.instance];
    let auth = match sale.stream_auth {
        StreamAuthMode::Bearer => api::StreamAuth::Bearer(buyer.jwt.clone()),
        StreamAuthMode::Ticket => {
            let Some(answer) = or_stop(
                stop,
                api::stream_ticket(&sale.client, at, &buyer.jwt, sale.schedule),
            )
            .await
            else {
                return Heard::Stopped;
            };
            o.requests += 1;
            match answer {
                Ok(RoomAnswer::Ok(ticket)) => api::StreamAuth::Ticket(ticket),
                Ok(RoomAnswer::SoldOut) => {
                    o.told_sold_out(Endpoint::StreamTicket, sale);
                    return Heard::SoldOut;
                }
                Err(f) => {
                    o.failures.push(f);
                    return Heard::Cut;
                }
            }
        }
    };
    let Some(opened) = or_stop(
        stop,
        api::open_events(&sale.client, at, sale.schedule, &auth),
    )
    .await
    else {
        return Heard::Stopped;
    };
    o.requests += 1;
    let mut response = match opened {
        Ok(RoomAnswer::Ok(response)) => response,
        Ok(RoomAnswer::SoldOut) => {
            o.told_sold_out(Endpoint::Events, sale);
            return Heard::SoldOut;
        }
        Err(f) => {
            o.failures.push(f);
            return Heard::Cut;
        }
    };
    o.streams_opened += 1;
    let _open = Streaming::open(&sale.progress.streaming);
    let mut reader = FrameReader::default();
    let mut items = Vec::new();
    let mut last_position = None;
    loop {
        let read = tokio::select! {
            biased;
            _ = stop.wait_for(|&s| s) => return Heard::Stopped,
            r = tokio::time::timeout(STREAM_IDLE, response.chunk()) => r,
        };
        let cut = |why: String| Failure {
            endpoint: Endpoint::Events,
            kind: FailureKind::StreamCut(why),
        };
        let bytes = match read {
            Ok(Ok(Some(bytes))) => bytes,
            Ok(Ok(None)) => {
                o.failures.push(cut("ended without a final event".into()));
                return Heard::Cut;
            }
            Ok(Err(e)) => {
                o.failures.push(cut(crate::connection::root_cause(&e)));
                return Heard::Cut;
            }
            Err(_) => {
                o.failures
                    .push(cut(format!("silent for {} s", STREAM_IDLE.as_secs())));
                return Heard::Cut;
            }
        };
        if reader.feed(&bytes, &mut items).is_err() {
            o.failures.push(cut("a line longer than 64 KiB".into()));
            return Heard::Cut;
        }
        for item in items.drain(..) {
            match SaleEvent::from(item) {
                SaleEvent::Position(status) => {
                    o.positions += 1;
                    // Told by the status, even if no `sold-out` event follows.
                    if status.state == Some(QueueState::SoldOut) {
                        o.told_sold_out(Endpoint::Events, sale);
                        return Heard::SoldOut;
                    }
                    if status.drawn_position.is_some() {
                        o.drawn_position = status.drawn_position;
                    }
                    let Some(position) = status.position else {
                        continue;
                    };
                    // The spec: the first place after the opening is the drawn one.
                    if o.pre_queue && o.drawn_position.is_none() && !status.is_before_opening() {
                        o.drawn_position = Some(position);
                    }
                    o.first_position.get_or_insert(position);
                    if last_position.is_some_and(|last| position > last) {
                        o.position_increases += 1;
                    }
                    last_position = Some(position);
                }
                SaleEvent::Admitted {
                    token,
                    admitted_at,
                    drawn_position,
                } => {
                    if drawn_position.is_some() {
                        o.drawn_position = drawn_position;
                    }
                    o.admitted_at = Some(sale.clock.secs());
                    o.server_admitted_at = admitted_at.map(|t| sale.clock.wall_secs(t));
                    sale.progress.admitted.fetch_add(1, Ordering::Relaxed);
                    return Heard::Admitted(token);
                }
                SaleEvent::SoldOut => {
                    o.told_sold_out(Endpoint::Events, sale);
                    return Heard::SoldOut;
                }
                SaleEvent::Left => {
                    o.left_at = Some(sale.clock.secs());
                    return Heard::Left;
                }
                SaleEvent::Heartbeat => o.heartbeats += 1,
                SaleEvent::Other(_) => o.other_events += 1,
            }
        }
    }
}

/// Holds seats the driver believes free (others on `seat-taken`), then pays.
async fn buy_seats(
    sale: &Sale,
    buyer: &mut Buyer,
    o: &mut Outcome,
    stop: &mut watch::Receiver<bool>,
    token: &str,
) -> End {
    let at = &sale.instances[o.instance];
    let mut seats: Vec<i64> = Vec::new();
    // A new key for every answered attempt; a retry after no answer (or a
    // 5xx) keeps the key, so a hold that did happen is replayed, not doubled.
    let mut key_seq = 0;
    let mut attempts = 0;
    loop {
        if attempts >= sale.hold_attempts {
            sale.seats.give_back(&seats, &[]);
            return End::GaveUp(format!("{attempts} hold attempts"));
        }
        if seats.is_empty() {
            seats = sale.seats.take(buyer.wants, &mut buyer.rng);
            if seats.is_empty() {
                return End::NoSeatLeft;
            }
        }
        attempts += 1;
        let key = format!("{}-u{}-h{key_seq}", sale.run_tag, buyer.index);
        let request = api::HoldRequest {
            jwt: &buyer.jwt,
            queue_token: token,
            idempotency_key: &key,
            schedule: sale.schedule,
            seats: &seats,
        };
        let sent = Instant::now();
        let started = Utc::now();
        let Some(answer) = or_stop(stop, api::hold(&sale.client, at, &request)).await else {
            // Cut off unanswered: it may still have happened.
            sale.history.record(hold_line(buyer, &seats, started, None));
            sale.seats.give_back(&seats, &[]);
            return End::GaveUp("deadline".into());
        };
        sale.history
            .record(hold_line(buyer, &seats, started, Some(&answer)));
        o.requests += 1;
        o.hold_ms.push(sent.elapsed().as_secs_f64() * 1e3);
        if answer.is_ok() {
            key_seq += 1;
        }
        match answer {
            Ok(HoldAnswer::Held { reservation }) => {
                o.holds.created += 1;
                o.seats_held = seats.len();
                return pay(sale, buyer, o, stop, reservation, seats.len()).await;
            }
            Ok(HoldAnswer::SeatTaken { seats: taken }) => {
                o.holds.seat_taken += 1;
                // Without a list, none of them is trusted free any more.
                let taken = if taken.is_empty() { &seats } else { &taken };
                sale.seats.give_back(&seats, taken);
                seats.clear();
            }
            Ok(HoldAnswer::SoldOut) => {
                o.holds.sold_out += 1;
                sale.seats.give_back(&seats, &[]);
                o.told_sold_out(Endpoint::Hold, sale);
                return End::HoldSoldOut;
            }
            Ok(HoldAnswer::Contention { retry_after }) => {
                o.holds.contention += 1;
                if or_stop(stop, tokio::time::sleep(retry_after))
                    .await
                    .is_none()
                {
                    sale.seats.give_back(&seats, &[]);
                    return End::GaveUp("deadline".into());
                }
            }
            Ok(HoldAnswer::Refused { status, kind }) => {
                o.holds.refused += 1;
                sale.seats.give_back(&seats, &[]);
                let end = End::GaveUp(format!("hold: HTTP {status} {kind}"));
                o.failures.push(Failure {
                    endpoint: Endpoint::Hold,
                    kind: FailureKind::Unexpected(status, kind),
                });
                return end;
            }
            Err(f) => {
                o.holds.failed += 1;
                let retry = f.retryable();
                o.failures.push(f);
                if !retry {
                    sale.seats.give_back(&seats, &[]);
                    return End::GaveUp("hold failed".into());
                }
                or_stop(stop, tokio::time::sleep(RETRY_PAUSE)).await;
            }
        }
    }
}

async fn pay(
    sale: &Sale,
    buyer: &Buyer,
    o: &mut Outcome,
    stop: &mut watch::Receiver<bool>,
    reservation: i64,
    seats: usize,
) -> End {
    let at = &sale.instances[o.instance];
    let key = format!("{}-u{}-pay{reservation}", sale.run_tag, buyer.index);
    for _ in 0..PAY_TRIES {
        let started = Utc::now();
        let paid = or_stop(
            stop,
            api::pay(&sale.client, at, &buyer.jwt, &key, reservation),
        )
        .await;
        sale.history.record(Line {
            start: started,
            end: Utc::now(),
            user: buyer.user,
            op: "pay",
            seats: Vec::new(),
            reservation: Some(reservation),
            status: match &paid {
                Some(Ok(())) => 201,
                Some(Err(f)) => f.status(),
                None => 0,
            },
        });
        let Some(paid) = paid else {
            return End::GaveUp("deadline".into());
        };
        o.requests += 1;
        match paid {
            Ok(()) => {
                o.paid_at = Some(sale.clock.secs());
                o.seats_paid = seats;
                sale.progress.seats_sold.fetch_add(seats, Ordering::Relaxed);
                return End::Paid;
            }
            Err(f) => {
                let retry = f.retryable();
                o.failures.push(f);
                if !retry {
                    return End::GaveUp("payment refused".into());
                }
                or_stop(stop, tokio::time::sleep(RETRY_PAUSE)).await;
            }
        }
    }
    End::GaveUp("payment failed".into())
}

/// A hold as the history records it; `None`: no answer came.
fn hold_line(
    buyer: &Buyer,
    seats: &[i64],
    started: DateTime<Utc>,
    answer: Option<&Result<HoldAnswer, Failure>>,
) -> Line {
    let (status, reservation) = match answer {
        Some(Ok(HoldAnswer::Held { reservation })) => (201, Some(*reservation)),
        Some(Ok(HoldAnswer::SeatTaken { .. } | HoldAnswer::Contention { .. })) => (409, None),
        Some(Ok(HoldAnswer::SoldOut)) => (410, None),
        Some(Ok(HoldAnswer::Refused { status, .. })) => (*status, None),
        Some(Err(f)) => (f.status(), None),
        None => (0, None),
    };
    Line {
        start: started,
        end: Utc::now(),
        user: buyer.user,
        op: "hold",
        seats: seats.to_vec(),
        reservation,
        status,
    }
}
