//! The ports: what the domain needs from the outside world. Adapters in other
//! crates implement them; `api` picks which ones at start-up.

use crate::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// A seat-locking strategy: hold these seats of this schedule for this user,
/// all or none. On success a PENDING reservation, its seats (HELD) and its
/// outbox event exist, committed together.
#[async_trait]
pub trait SeatLock: Send + Sync {
    /// The strategy's name as used in config, metrics and headers.
    fn strategy(&self) -> &'static str;

    async fn hold_seats(&self, request: &HoldRequest) -> Result<Reservation, HoldError>;

    /// Told after a reservation ended (cancelled or expired) and its seats
    /// are AVAILABLE again in the store, so a strategy that keeps state
    /// outside the database (the Redis stock) can follow. Must be idempotent
    /// per reservation: the seat-release consumer calls it again after a
    /// failure, and a record may be delivered twice.
    async fn seats_released(&self, _reservation: &Reservation) -> Result<(), RepoError> {
        Ok(())
    }

    /// Strategy-specific running totals for metrics, e.g. `("retries", n)`.
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}

/// A store's answer to an insert that a uniqueness rule may refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted<T> {
    New(T),
    Duplicate,
}

/// A store's answer to a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Gone,
    NotFound,
    /// Reservations refer to it: it stays.
    InUse,
}

#[async_trait]
pub trait UserRepository: Send + Sync {
    /// `Duplicate` when the e-mail is taken.
    async fn insert_user(&self, user: &NewUser) -> Result<Inserted<User>, RepoError>;
    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, RepoError>;
    async fn find_user(&self, id: UserId) -> Result<Option<User>, RepoError>;
    async fn set_role(&self, id: UserId, role: Role) -> Result<(), RepoError>;
}

#[async_trait]
pub trait CatalogRepository: Send + Sync {
    async fn list_concerts(&self) -> Result<Vec<Concert>, RepoError>;
    async fn find_concert(&self, id: ConcertId) -> Result<Option<Concert>, RepoError>;
    async fn insert_concert(&self, details: &ConcertDetails) -> Result<Concert, RepoError>;
    async fn update_concert(
        &self,
        id: ConcertId,
        details: &ConcertDetails,
    ) -> Result<Option<Concert>, RepoError>;
    /// `InUse` when one of its schedules has reservations.
    async fn delete_concert(&self, id: ConcertId) -> Result<Deleted, RepoError>;

    async fn list_schedules(&self, concert: ConcertId) -> Result<Vec<Schedule>, RepoError>;
    async fn find_schedule(&self, id: ScheduleId) -> Result<Option<Schedule>, RepoError>;
    /// Creates the schedule and every seat of `grid` in one transaction;
    /// `None` when the concert does not exist.
    async fn insert_schedule(
        &self,
        concert: ConcertId,
        starts_at: DateTime<Utc>,
        grid: &SeatGrid,
        sale: &SaleSettings,
    ) -> Result<Option<Schedule>, RepoError>;
    async fn update_schedule(
        &self,
        id: ScheduleId,
        change: &ScheduleChange,
    ) -> Result<Option<Schedule>, RepoError>;
    /// `InUse` when it has reservations.
    async fn delete_schedule(&self, id: ScheduleId) -> Result<Deleted, RepoError>;

    /// The seat map, ordered by id.
    async fn list_seats(&self, schedule: ScheduleId) -> Result<Vec<Seat>, RepoError>;
    /// A schedule's layout and statuses, read together (one connection);
    /// `None` when the schedule does not exist.
    async fn find_seat_map(&self, schedule: ScheduleId) -> Result<Option<SeatMap>, RepoError>;
    /// The statuses alone, ordered by seat id, for a reader that keeps the
    /// layout (one query). `None` when the schedule does not exist: a
    /// schedule has at least one seat (`SeatGrid::parse`), so no seats
    /// means no schedule.
    async fn seat_statuses(&self, schedule: ScheduleId) -> Result<Option<SeatStatuses>, RepoError>;
    /// How many seats are free, held and sold, in one query; `None` when
    /// the schedule does not exist. Cheap enough for every waiting-room tick.
    async fn seat_counts(&self, schedule: ScheduleId) -> Result<Option<SeatCounts>, RepoError>;
}

#[async_trait]
pub trait ReservationRepository: Send + Sync {
    async fn find_reservation(&self, id: ReservationId) -> Result<Option<Reservation>, RepoError>;
    async fn find_reservation_by_key(
        &self,
        user: UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<Reservation>, RepoError>;
    /// Newest first.
    async fn list_reservations(&self, user: UserId) -> Result<Vec<Reservation>, RepoError>;

    /// PENDING -> CANCELLED, its seats back to AVAILABLE, and the
    /// `reservation.cancelled` outbox row (carrying `request_id`), in one
    /// transaction.
    async fn cancel_reservation(
        &self,
        id: ReservationId,
        now: DateTime<Utc>,
        request_id: Option<&RequestId>,
    ) -> Result<Transition<Reservation>, RepoError>;

    /// PENDING (and not overdue) -> CONFIRMED, its seats RESERVED, the
    /// payment row and the `reservation.completed` outbox row, in one
    /// transaction. `KeyReused` when the payment's idempotency key is taken.
    async fn confirm_with_payment(
        &self,
        payment: &PaymentRequest,
    ) -> Result<Transition<Payment>, RepoError>;

    /// Ends up to `limit` PENDING reservations whose hold ran out as EXPIRED,
    /// each like a cancel (seats AVAILABLE, `reservation.cancelled` outbox
    /// row, one transaction). Rows another expirer is working on are
    /// skipped, so each reservation expires exactly once.
    async fn expire_overdue_holds(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Reservation>, RepoError>;

    async fn find_payment(&self, id: PaymentId) -> Result<Option<Payment>, RepoError>;
    async fn find_payment_by_key(
        &self,
        user: UserId,
        key: &IdempotencyKey,
    ) -> Result<Option<Payment>, RepoError>;
}

/// The transactional outbox, read by the relay.
#[async_trait]
pub trait OutboxRepository: Send + Sync {
    /// Claims up to `limit` unpublished rows, oldest first, for `owner` until
    /// `until`: rows claimed by a live claim of another relay are skipped,
    /// so two relays never publish the same row while both run; a relay
    /// that dies loses its claim at `until` and another publishes again
    /// (at-least-once).
    async fn claim_unpublished(
        &self,
        owner: &str,
        limit: i64,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<OutboxEvent>, RepoError>;
    async fn mark_published(&self, ids: &[i64], at: DateTime<Utc>) -> Result<(), RepoError>;
    /// Gives claimed rows back at once (the broker refused them).
    async fn release_claims(&self, owner: &str, ids: &[i64]) -> Result<(), RepoError>;
    /// Unpublished rows and the age of the oldest.
    async fn backlog(&self, now: DateTime<Utc>) -> Result<OutboxBacklog, RepoError>;
    /// Deletes up to `limit` rows published before `before`; returns how
    /// many. Unpublished rows are never deleted.
    async fn prune_published(&self, before: DateTime<Utc>, limit: i64) -> Result<u64, RepoError>;
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxBacklog {
    pub unpublished: i64,
    pub oldest_age: Option<chrono::Duration>,
}

/// Consumer idempotency: which events a consumer has already handled.
#[async_trait]
pub trait ProcessedEvents: Send + Sync {
    /// Records that `consumer` handled `event_id`; false if it already had.
    async fn mark_processed(&self, consumer: &str, event_id: &str) -> Result<bool, RepoError>;
    /// Deletes up to `limit` marks written before `before`; returns how many.
    async fn prune_processed(&self, before: DateTime<Utc>, limit: i64) -> Result<u64, RepoError>;
}

/// ShedLock-style named leases: one row per job, taken with a conditional
/// update, so exactly one instance runs a periodic job at a time.
#[async_trait]
pub trait JobLeaseRepository: Send + Sync {
    /// True if `owner` now holds `name` until `until`: it was free, expired,
    /// or already `owner`'s.
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, RepoError>;
    async fn release(&self, name: &str, owner: &str) -> Result<(), RepoError>;
}

/// Publishes domain events and delivers them to subscribed handlers.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Returns once the broker has `event`.
    async fn publish(&self, event: &OutboxEvent) -> Result<(), RepoError>;

    /// Publishes `events` and tells what became of each, in their order:
    /// `Ok` once the broker has it. Events of one topic and key are sent,
    /// and kept by the broker, in slice order; a refused one leaves a gap
    /// (a later event of its key may still be delivered). After a refusal
    /// the bus may stop: an event past the last outcome was not sent.
    ///
    /// The default sends one at a time, waiting for each delivery, and
    /// stops at the first refusal. A bus that can have many records in
    /// flight (Kafka) sends them all first and then waits for them.
    async fn publish_batch(&self, events: &[OutboxEvent]) -> Vec<Result<(), RepoError>> {
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            let outcome = self.publish(event).await;
            let refused = outcome.is_err();
            outcomes.push(outcome);
            if refused {
                break;
            }
        }
        outcomes
    }

    /// Delivers every later event of `topic` to `handler`, once per `group`.
    async fn subscribe(
        &self,
        topic: &str,
        group: &str,
        handler: Arc<dyn EventHandler>,
    ) -> Result<(), RepoError>;

    /// Running totals of the bus's consumers for metrics, e.g.
    /// `("consumer_retries", n)`.
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// Each consumer's lag: records in the log it has not handled yet, as
    /// of its last measurement. Empty for a bus that delivers in-process.
    fn consumer_lags(&self) -> Vec<ConsumerLag> {
        Vec::new()
    }

    /// How often each consumer had to recover its place in a log, as
    /// running totals. Empty for a bus that delivers in-process.
    fn consumer_recoveries(&self) -> Vec<ConsumerRecoveries> {
        Vec::new()
    }
}

/// How far one consumer (group) trails one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerLag {
    pub topic: String,
    pub group: String,
    pub records: i64,
}

/// What one consumer (group) of one topic did to keep its place in the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerRecoveries {
    pub topic: String,
    pub group: String,
    /// Starts again from the log's beginning: the group's position was past
    /// the end of a log that came back shorter, or the topic vanished.
    pub offset_resets: u64,
    /// Records the broker skipped (delivered a later one first) that the
    /// consumer went back for.
    pub gaps: u64,
    /// Rejoins of the group because a partition with records to handle had
    /// no reader for seconds.
    pub rejoins: u64,
}

#[async_trait]
pub trait EventHandler: Send + Sync {
    async fn handle(&self, event: &OutboxEvent) -> Result<(), BoxError>;
}

/// The size of one schedule's waiting room and admission window (metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub waiting: u64,
    /// Admitted users holding a slot: an unused pass, or a live hold.
    pub active: u64,
}

/// The waiting room of a sale: a pre-queue drawn at the opening, a line in
/// drawn-then-arrival order, admission by a tick that hands out passes
/// (entry tokens) at a rate and under caps, passes consumed by one
/// successful hold, and the seat-hold markers.
///
/// A user's slot is taken from admission until their pass expires unused,
/// or, once used, until their hold is paid, cancelled or expires.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Enters the room, idempotently: entering again keeps one's place.
    /// Before `opens_at` the user joins the pre-queue; after it the draw is
    /// made first if nobody has made it yet. Once the sale is sold out
    /// nobody enters (`sale.sold_out`, `place` as it was).
    async fn enter(
        &self,
        schedule: ScheduleId,
        user: UserId,
        opens_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<RoomView, RepoError>;

    /// One user's place and the room, read in one atomic step.
    async fn view(
        &self,
        schedule: ScheduleId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<RoomView, RepoError>;

    /// The tickets of many users of one schedule (`None`: not in line), in
    /// one round trip: a stream learns its user's drawn place once.
    async fn tickets(
        &self,
        schedule: ScheduleId,
        users: &[UserId],
    ) -> Result<Vec<Option<u64>>, RepoError>;

    /// One admission step for one schedule, atomic, safe from any number of
    /// instances at once: draws the pre-queue when the opening has come,
    /// records a sell-out, then hands out passes (each a token living
    /// `token_ttl`) in line order as far as `plan` allows; returns what it
    /// saw and the passes any instance handed out after `cursor` (`None`:
    /// start from about now). A constant number of round trips, however
    /// many wait.
    async fn tick(
        &self,
        schedule: ScheduleId,
        plan: &AdmissionPlan,
        cursor: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<SaleTick, RepoError>;

    /// Puts places back after the room's state was lost (a new
    /// `SaleTick::epoch`), atomically, in one round trip for all of them. A
    /// user who has a place now (entered again meanwhile, or admitted)
    /// keeps it. A ticket goes back as it was, so places put back by several
    /// instances merge into the old order (a ticket may then be shared with
    /// someone who entered again meanwhile); the ticket counter is raised to
    /// at least the highest ticket put back, so later entrants stay behind
    /// them. A place without a ticket goes back into the pre-queue, or to
    /// the end of the line once the room is open.
    async fn restore(
        &self,
        schedule: ScheduleId,
        places: &[KnownPlace],
    ) -> Result<RestoredPlaces, RepoError>;

    /// Schedules whose room is in use and not sold out (the ticker's list).
    async fn open_rooms(&self) -> Result<Vec<ScheduleId>, RepoError>;

    /// The recorded draw of the schedule's pre-queue, once made.
    async fn draw_record(&self, schedule: ScheduleId) -> Result<Option<DrawRecord>, RepoError>;

    /// Reserves the token for one reservation attempt, atomically: false if
    /// it is not this user's live token for this schedule, or another
    /// attempt holds it right now.
    async fn claim_token(
        &self,
        schedule: ScheduleId,
        user: UserId,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError>;

    /// The attempt failed: the token is usable again (until its expiry).
    async fn restore_token(
        &self,
        schedule: ScheduleId,
        user: UserId,
        token: &str,
    ) -> Result<(), RepoError>;

    /// The attempt succeeded: the token is used for good (`Place::Holding`),
    /// and the user's slot stays taken until `until` (the hold's expiry) or
    /// `free_slot`.
    async fn consume_token(
        &self,
        schedule: ScheduleId,
        user: UserId,
        token: &str,
        until: DateTime<Utc>,
    ) -> Result<(), RepoError>;

    /// The user is done (paid, cancelled, or nothing was left to hold):
    /// their slot and unused pass go.
    async fn free_slot(&self, schedule: ScheduleId, user: UserId) -> Result<(), RepoError>;

    async fn stats(
        &self,
        schedule: ScheduleId,
        now: DateTime<Utc>,
    ) -> Result<QueueStats, RepoError>;

    /// The room's sale state and its passes and holds, read in one step
    /// (the operator's monitor); all zero for a room nobody entered.
    async fn overview(
        &self,
        schedule: ScheduleId,
        now: DateTime<Utc>,
    ) -> Result<RoomOverview, RepoError>;

    /// Marks the seats held by `reservation` until `until` (`hold:` keys).
    async fn mark_held(
        &self,
        schedule: ScheduleId,
        seats: &[SeatId],
        reservation: ReservationId,
        until: DateTime<Utc>,
    ) -> Result<(), RepoError>;

    /// Removes the markers `reservation` still owns (payment or cancel): a
    /// seat marked since by another hold keeps its marker.
    async fn clear_held(
        &self,
        schedule: ScheduleId,
        seats: &[SeatId],
        reservation: ReservationId,
    ) -> Result<(), RepoError>;

    /// The seats of the schedule with a live hold marker.
    async fn held_seats(&self, schedule: ScheduleId) -> Result<Vec<SeatId>, RepoError>;
}

/// Readiness of the stores behind the API.
#[async_trait]
pub trait Readiness: Send + Sync {
    async fn check_ready(&self) -> Result<(), RepoError>;
}

/// How busy a store's connection pool is, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolUsage {
    pub size: usize,
    pub available: usize,
    pub waiting: usize,
}

/// A store with a connection pool.
pub trait PoolStats: Send + Sync {
    fn pool_usage(&self) -> PoolUsage;
}

/// Password hashing is slow on purpose; implementations keep it off the
/// async threads.
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    async fn hash(&self, password: &Password) -> Result<String, BoxError>;
    /// Verifies against `hash`, or against a dummy hash when there is no user,
    /// so the time taken does not reveal which e-mails exist.
    async fn verify(&self, password: &Password, hash: Option<&str>) -> bool;
}

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
