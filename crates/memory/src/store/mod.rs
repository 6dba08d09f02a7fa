//! `MemoryStore`: every table of the database in one struct behind one mutex,
//! and the user and catalogue repositories over it.
//!
//! Each port method takes the lock once, checks everything, then writes: the
//! in-memory equivalent of one database transaction. The lock is a
//! `std::sync::Mutex` and is never held across an `.await`.

use async_trait::async_trait;
use booking_domain::{
    CatalogRepository, Concert, ConcertDetails, ConcertId, Deleted, Email, IdempotencyKey,
    Inserted, NewOutboxEvent, NewUser, OutboxEvent, Payment, PaymentId, Readiness, RepoError,
    Reservation, ReservationId, Role, SaleSettings, Schedule, ScheduleChange, ScheduleId, Seat,
    SeatCounts, SeatGrid, SeatId, SeatMap, SeatStatus, SeatStatuses, User, UserId, UserRepository,
};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// All adapters' storage. Cloning is cheap and shares the same tables, like
/// two connections to one database.
///
/// Implements `UserRepository`, `CatalogRepository`, `ReservationRepository`,
/// `OutboxRepository`, `JobLeaseRepository`, `InvariantAudit` and `Readiness`;
/// `MemorySeatLock` holds seats in it.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    tables: Arc<Mutex<Tables>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Locks every table: the start of a "transaction".
    pub(crate) fn tables(&self) -> Result<MutexGuard<'_, Tables>, RepoError> {
        // A poisoned lock means a writer panicked half-way; unlike a database
        // we cannot roll back, so refuse rather than serve torn state.
        self.tables
            .lock()
            .map_err(|_| RepoError::unexpected("memory store lock poisoned by a panic"))
    }
}

/// Next id of each table; ids start at 1 like a `BIGSERIAL`.
#[derive(Debug, Default)]
pub(crate) struct Sequences {
    user: i64,
    concert: i64,
    schedule: i64,
    seat: i64,
    reservation: i64,
    payment: i64,
    outbox: i64,
}

fn next(counter: &mut i64) -> i64 {
    *counter += 1;
    *counter
}

/// The unique `(user_id, idempotency_key)` index of a table.
pub(crate) type KeyIndex<Id> = HashMap<(UserId, IdempotencyKey), Id>;

#[derive(Debug, Clone)]
pub(crate) struct LeaseRow {
    pub locked_until: DateTime<Utc>,
    pub locked_by: String,
}

/// The tables. `BTreeMap`s keyed by id keep "ORDER BY id" for free.
#[derive(Debug, Default)]
pub(crate) struct Tables {
    seq: Sequences,
    pub users: BTreeMap<UserId, User>,
    pub concerts: BTreeMap<ConcertId, Concert>,
    pub schedules: BTreeMap<ScheduleId, Schedule>,
    pub seats: BTreeMap<SeatId, Seat>,
    pub reservations: BTreeMap<ReservationId, Reservation>,
    pub reservation_keys: KeyIndex<ReservationId>,
    pub payments: BTreeMap<PaymentId, Payment>,
    pub payment_keys: KeyIndex<PaymentId>,
    pub outbox: BTreeMap<i64, OutboxEvent>,
    /// Outbox id -> (relay, claimed until).
    pub outbox_claims: HashMap<i64, (String, DateTime<Utc>)>,
    /// (consumer, event id) -> when it was marked.
    pub processed: std::collections::HashMap<(String, String), DateTime<Utc>>,
    pub leases: HashMap<String, LeaseRow>,
    /// Seats each user has of each schedule in PENDING and CONFIRMED
    /// reservations: the database's `buyer_seats`.
    pub buyer_seats: HashMap<(ScheduleId, UserId), i32>,
}

impl Tables {
    pub fn next_reservation_id(&mut self) -> ReservationId {
        ReservationId(next(&mut self.seq.reservation))
    }

    pub fn next_payment_id(&mut self) -> PaymentId {
        PaymentId(next(&mut self.seq.payment))
    }

    /// Appends an outbox row in the same "transaction" as the change it reports.
    pub fn push_outbox(&mut self, event: NewOutboxEvent, now: DateTime<Utc>) {
        let id = next(&mut self.seq.outbox);
        let request_id = event.request_id.map(|r| r.as_str().to_owned());
        self.outbox.insert(
            id,
            OutboxEvent {
                id,
                topic: event.topic.to_owned(),
                key: event.key,
                payload: event.payload,
                created_at: now,
                published_at: None,
                request_id,
            },
        );
    }

    /// The seats of `schedule`, ordered by id.
    pub fn seats_of(&self, schedule: ScheduleId) -> impl Iterator<Item = &Seat> + '_ {
        self.seats
            .values()
            .filter(move |s| s.schedule_id == schedule)
    }

    /// Moves the given seats from `from` to `to`, bumping their version, and
    /// returns how many moved. Seats in another state are left alone.
    pub fn move_seats(&mut self, ids: &[SeatId], from: SeatStatus, to: SeatStatus) -> i32 {
        let mut moved = 0;
        for id in ids {
            if let Some(seat) = self.seats.get_mut(id) {
                if seat.status == from {
                    seat.status = to;
                    seat.version += 1;
                    moved += 1;
                }
            }
        }
        moved
    }

    /// Whether any reservation, in any state, refers to one of `schedules`:
    /// the foreign key that makes such a delete fail in the database.
    fn has_reservations(&self, schedules: &[ScheduleId]) -> bool {
        self.reservations
            .values()
            .any(|r| schedules.contains(&r.schedule_id))
    }

    fn delete_schedules(&mut self, schedules: &[ScheduleId]) {
        self.seats
            .retain(|_, seat| !schedules.contains(&seat.schedule_id));
        self.schedules.retain(|id, _| !schedules.contains(id));
    }
}

#[async_trait]
impl UserRepository for MemoryStore {
    async fn insert_user(&self, user: &NewUser) -> Result<Inserted<User>, RepoError> {
        let mut t = self.tables()?;
        // `Email` is already normalised, so equality is the unique index.
        if t.users.values().any(|u| u.email == user.email.as_str()) {
            return Ok(Inserted::Duplicate);
        }
        let stored = User {
            id: UserId(next(&mut t.seq.user)),
            email: user.email.as_str().to_owned(),
            nickname: user.nickname.as_str().to_owned(),
            password_hash: user.password_hash.clone(),
            role: user.role,
        };
        t.users.insert(stored.id, stored.clone());
        Ok(Inserted::New(stored))
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, RepoError> {
        let t = self.tables()?;
        Ok(t.users
            .values()
            .find(|u| u.email == email.as_str())
            .cloned())
    }

    async fn find_user(&self, id: UserId) -> Result<Option<User>, RepoError> {
        Ok(self.tables()?.users.get(&id).cloned())
    }

    async fn set_role(&self, id: UserId, role: Role) -> Result<(), RepoError> {
        if let Some(user) = self.tables()?.users.get_mut(&id) {
            user.role = role;
        }
        Ok(())
    }
}

fn concert_from(id: ConcertId, details: &ConcertDetails) -> Concert {
    Concert {
        id,
        title: details.title.clone(),
        artist: details.artist.clone(),
        venue: details.venue.clone(),
        description: details.description.clone(),
    }
}

#[async_trait]
impl CatalogRepository for MemoryStore {
    async fn list_concerts(&self) -> Result<Vec<Concert>, RepoError> {
        Ok(self.tables()?.concerts.values().cloned().collect())
    }

    async fn find_concert(&self, id: ConcertId) -> Result<Option<Concert>, RepoError> {
        Ok(self.tables()?.concerts.get(&id).cloned())
    }

    async fn insert_concert(&self, details: &ConcertDetails) -> Result<Concert, RepoError> {
        let mut t = self.tables()?;
        let concert = concert_from(ConcertId(next(&mut t.seq.concert)), details);
        t.concerts.insert(concert.id, concert.clone());
        Ok(concert)
    }

    async fn update_concert(
        &self,
        id: ConcertId,
        details: &ConcertDetails,
    ) -> Result<Option<Concert>, RepoError> {
        let mut t = self.tables()?;
        Ok(t.concerts.get_mut(&id).map(|concert| {
            *concert = concert_from(id, details);
            concert.clone()
        }))
    }

    async fn delete_concert(&self, id: ConcertId) -> Result<Deleted, RepoError> {
        let mut t = self.tables()?;
        if !t.concerts.contains_key(&id) {
            return Ok(Deleted::NotFound);
        }
        let schedules: Vec<ScheduleId> = t
            .schedules
            .values()
            .filter(|s| s.concert_id == id)
            .map(|s| s.id)
            .collect();
        if t.has_reservations(&schedules) {
            return Ok(Deleted::InUse);
        }
        t.delete_schedules(&schedules);
        t.concerts.remove(&id);
        Ok(Deleted::Gone)
    }

    /// Ordered by start time, then id.
    async fn list_schedules(&self, concert: ConcertId) -> Result<Vec<Schedule>, RepoError> {
        let t = self.tables()?;
        let mut schedules: Vec<Schedule> = t
            .schedules
            .values()
            .filter(|s| s.concert_id == concert)
            .cloned()
            .collect();
        schedules.sort_by_key(|s| (s.starts_at, s.id));
        Ok(schedules)
    }

    async fn find_schedule(&self, id: ScheduleId) -> Result<Option<Schedule>, RepoError> {
        Ok(self.tables()?.schedules.get(&id).cloned())
    }

    async fn insert_schedule(
        &self,
        concert: ConcertId,
        starts_at: DateTime<Utc>,
        grid: &SeatGrid,
        sale: &SaleSettings,
    ) -> Result<Option<Schedule>, RepoError> {
        let mut t = self.tables()?;
        if !t.concerts.contains_key(&concert) {
            return Ok(None);
        }
        let id = ScheduleId(next(&mut t.seq.schedule));
        let mut count: i32 = 0;
        for new_seat in grid.seats() {
            let seat = Seat {
                id: SeatId(next(&mut t.seq.seat)),
                schedule_id: id,
                section: new_seat.section,
                row: new_seat.row,
                number: new_seat.number,
                price: new_seat.price,
                status: SeatStatus::Available,
                version: 0,
            };
            t.seats.insert(seat.id, seat);
            count += 1;
        }
        let schedule = Schedule {
            id,
            concert_id: concert,
            starts_at,
            total_seats: count,
            available_seats: count,
            sales_open_at: sale.sales_open_at,
            max_seats_per_buyer: sale.max_seats_per_buyer.get(),
        };
        t.schedules.insert(id, schedule.clone());
        Ok(Some(schedule))
    }

    async fn update_schedule(
        &self,
        id: ScheduleId,
        change: &ScheduleChange,
    ) -> Result<Option<Schedule>, RepoError> {
        let mut t = self.tables()?;
        Ok(t.schedules.get_mut(&id).map(|schedule| {
            schedule.starts_at = change.starts_at;
            if let Some(opens) = change.sales_open_at {
                schedule.sales_open_at = opens;
            }
            if let Some(max) = change.max_seats_per_buyer {
                schedule.max_seats_per_buyer = max.get();
            }
            schedule.clone()
        }))
    }

    async fn delete_schedule(&self, id: ScheduleId) -> Result<Deleted, RepoError> {
        let mut t = self.tables()?;
        if !t.schedules.contains_key(&id) {
            return Ok(Deleted::NotFound);
        }
        if t.has_reservations(&[id]) {
            return Ok(Deleted::InUse);
        }
        t.delete_schedules(&[id]);
        Ok(Deleted::Gone)
    }

    async fn list_seats(&self, schedule: ScheduleId) -> Result<Vec<Seat>, RepoError> {
        let t = self.tables()?;
        Ok(t.seats_of(schedule).cloned().collect())
    }

    async fn find_seat_map(&self, id: ScheduleId) -> Result<Option<SeatMap>, RepoError> {
        let t = self.tables()?;
        Ok(t.schedules.get(&id).map(|schedule| {
            let seats = t.seats_of(id).cloned().collect();
            SeatMap::from_seats(id, schedule.concert_id, schedule.total_seats, seats)
        }))
    }

    async fn seat_statuses(&self, id: ScheduleId) -> Result<Option<SeatStatuses>, RepoError> {
        let t = self.tables()?;
        let statuses: Vec<SeatStatus> = t.seats_of(id).map(|s| s.status).collect();
        Ok((!statuses.is_empty()).then_some(SeatStatuses(statuses)))
    }

    async fn seat_counts(&self, id: ScheduleId) -> Result<Option<SeatCounts>, RepoError> {
        let t = self.tables()?;
        if !t.schedules.contains_key(&id) {
            return Ok(None);
        }
        let mut counts = SeatCounts::default();
        for seat in t.seats_of(id) {
            match seat.status {
                SeatStatus::Available => counts.available += 1,
                SeatStatus::Held => counts.held += 1,
                SeatStatus::Reserved => counts.sold += 1,
            }
        }
        Ok(Some(counts))
    }
}

#[async_trait]
impl Readiness for MemoryStore {
    /// Memory is always there.
    async fn check_ready(&self) -> Result<(), RepoError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
