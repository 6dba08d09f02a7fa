//! Row types and their conversion to domain entities. A row whose text
//! column holds an unknown status is a corrupt database: reported, not hidden.

use crate::schema::*;
use booking_domain::*;
use chrono::{DateTime, Utc};
use diesel::prelude::*;

pub(crate) fn corrupt(what: &str, value: &str) -> RepoError {
    RepoError::unexpected(format!("unknown {what} '{value}' in the database"))
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = users)]
pub(crate) struct UserRow {
    id: i64,
    email: String,
    nickname: String,
    password_hash: String,
    role: String,
}

impl TryFrom<UserRow> for User {
    type Error = RepoError;
    fn try_from(r: UserRow) -> Result<Self, RepoError> {
        Ok(User {
            id: UserId(r.id),
            role: Role::parse(&r.role).ok_or_else(|| corrupt("role", &r.role))?,
            email: r.email,
            nickname: r.nickname,
            password_hash: r.password_hash,
        })
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = concerts)]
pub(crate) struct ConcertRow {
    id: i64,
    title: String,
    artist: String,
    venue: String,
    description: String,
}

impl From<ConcertRow> for Concert {
    fn from(r: ConcertRow) -> Self {
        Concert {
            id: ConcertId(r.id),
            title: r.title,
            artist: r.artist,
            venue: r.venue,
            description: r.description,
        }
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = concert_schedules)]
pub(crate) struct ScheduleRow {
    id: i64,
    concert_id: i64,
    starts_at: DateTime<Utc>,
    total_seats: i32,
    sales_open_at: Option<DateTime<Utc>>,
    max_seats_per_buyer: i32,
}

impl ScheduleRow {
    pub(crate) fn id(&self) -> i64 {
        self.id
    }

    /// `available` is counted from the seats, not stored.
    pub(crate) fn into_domain(self, available: i32) -> Schedule {
        Schedule {
            id: ScheduleId(self.id),
            concert_id: ConcertId(self.concert_id),
            starts_at: self.starts_at,
            total_seats: self.total_seats,
            available_seats: available,
            sales_open_at: self.sales_open_at,
            max_seats_per_buyer: self.max_seats_per_buyer,
        }
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = seats)]
pub(crate) struct SeatRow {
    id: i64,
    schedule_id: i64,
    section: String,
    row_number: i32,
    seat_number: i32,
    price: i64,
    status: String,
    version: i64,
}

impl TryFrom<SeatRow> for Seat {
    type Error = RepoError;
    fn try_from(r: SeatRow) -> Result<Self, RepoError> {
        Ok(Seat {
            id: SeatId(r.id),
            schedule_id: ScheduleId(r.schedule_id),
            status: SeatStatus::parse(&r.status)
                .ok_or_else(|| corrupt("seat status", &r.status))?,
            section: r.section,
            row: r.row_number,
            number: r.seat_number,
            price: r.price,
            version: r.version,
        })
    }
}

/// A reservation row; its seats are loaded separately.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = reservations)]
pub struct ReservationRow {
    pub id: i64,
    pub user_id: i64,
    pub schedule_id: i64,
    pub status: String,
    pub total_amount: i64,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl ReservationRow {
    pub fn into_domain(self, seat_ids: Vec<SeatId>) -> Result<Reservation, RepoError> {
        Ok(Reservation {
            id: ReservationId(self.id),
            user_id: UserId(self.user_id),
            schedule_id: ScheduleId(self.schedule_id),
            status: ReservationStatus::parse(&self.status)
                .ok_or_else(|| corrupt("reservation status", &self.status))?,
            seat_ids,
            total_amount: self.total_amount,
            expires_at: self.expires_at,
            created_at: self.created_at,
        })
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = payments)]
pub(crate) struct PaymentRow {
    id: i64,
    reservation_id: i64,
    user_id: i64,
    amount: i64,
    status: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<PaymentRow> for Payment {
    type Error = RepoError;
    fn try_from(r: PaymentRow) -> Result<Self, RepoError> {
        Ok(Payment {
            id: PaymentId(r.id),
            reservation_id: ReservationId(r.reservation_id),
            user_id: UserId(r.user_id),
            amount: r.amount,
            status: PaymentStatus::parse(&r.status)
                .ok_or_else(|| corrupt("payment status", &r.status))?,
            created_at: r.created_at,
        })
    }
}

#[derive(Debug, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = outbox)]
pub(crate) struct OutboxRow {
    id: i64,
    topic: String,
    key: String,
    payload: serde_json::Value,
    headers: serde_json::Value,
    created_at: DateTime<Utc>,
    published_at: Option<DateTime<Utc>>,
}

impl OutboxRow {
    pub(crate) fn id(&self) -> i64 {
        self.id
    }
}

impl From<OutboxRow> for OutboxEvent {
    fn from(r: OutboxRow) -> Self {
        OutboxEvent {
            id: r.id,
            topic: r.topic,
            key: r.key,
            payload: r.payload,
            created_at: r.created_at,
            published_at: r.published_at,
            request_id: r
                .headers
                .get("request-id")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
        }
    }
}
