//! The JSON shapes of the HTTP API (camelCase), with their OpenAPI schemas.

mod queue;

pub use queue::*;

use booking_domain::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignUpRequest {
    #[schema(example = "fan@example.com")]
    pub email: String,
    /// 8 to 128 characters.
    #[schema(example = "correct horse battery")]
    pub password: String,
    #[schema(example = "fan")]
    pub nickname: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogInRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    pub token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserResponse {
    pub id: i64,
    pub email: String,
    pub nickname: String,
    #[schema(value_type = String, example = "USER")]
    pub role: Role,
}

impl From<User> for UserResponse {
    fn from(u: User) -> Self {
        Self {
            id: u.id.0,
            email: u.email,
            nickname: u.nickname,
            role: u.role,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConcertResponse {
    pub id: i64,
    pub title: String,
    pub artist: String,
    pub venue: String,
    pub description: String,
}

impl From<Concert> for ConcertResponse {
    fn from(c: Concert) -> Self {
        Self {
            id: c.id.0,
            title: c.title,
            artist: c.artist,
            venue: c.venue,
            description: c.description,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleResponse {
    pub id: i64,
    pub concert_id: i64,
    pub starts_at: DateTime<Utc>,
    pub total_seats: i32,
    pub available_seats: i32,
    /// When the sale opens; null: it is open.
    #[schema(required = true)]
    pub sales_open_at: Option<DateTime<Utc>>,
    /// The most seats one user may have of this schedule at once (held and bought).
    #[schema(example = 4)]
    pub max_seats_per_buyer: i32,
}

impl From<Schedule> for ScheduleResponse {
    fn from(s: Schedule) -> Self {
        Self {
            id: s.id.0,
            concert_id: s.concert_id.0,
            starts_at: s.starts_at,
            total_seats: s.total_seats,
            available_seats: s.available_seats,
            sales_open_at: s.sales_open_at,
            max_seats_per_buyer: s.max_seats_per_buyer,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatResponse {
    pub id: i64,
    pub section: String,
    pub row: i32,
    pub number: i32,
    pub price: i64,
    /// AVAILABLE, HELD or RESERVED.
    #[schema(value_type = String, example = "AVAILABLE")]
    pub status: SeatStatus,
    /// False once the seat is held or sold: it cannot be booked now.
    pub available: bool,
}

/// The whole seat map: layout and statuses in one body, as it always was.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatMapResponse {
    pub concert_id: i64,
    pub schedule_id: i64,
    pub total_seats: i32,
    pub available_seats: i32,
    pub seats: Vec<SeatResponse>,
}

impl SeatMapResponse {
    /// `statuses` are `layout`'s, position by position.
    pub fn new(layout: &SeatLayout, statuses: &SeatStatuses) -> Self {
        Self {
            concert_id: layout.concert.0,
            schedule_id: layout.schedule.0,
            total_seats: layout.total_seats,
            available_seats: statuses.available(),
            seats: layout
                .seats
                .iter()
                .zip(&statuses.0)
                .map(|(s, status)| SeatResponse {
                    id: s.id.0,
                    section: s.section.clone(),
                    row: s.row,
                    number: s.number,
                    price: s.price,
                    status: *status,
                    available: *status == SeatStatus::Available,
                })
                .collect(),
        }
    }
}

/// A seat's place and price, without its status.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatPlaceResponse {
    pub id: i64,
    pub section: String,
    pub row: i32,
    pub number: i32,
    pub price: i64,
}

/// Where a schedule's seats are and what they cost, ordered by seat id. It
/// does not change while the schedule exists; the statuses come apart, from
/// `.../seats/statuses`, position by position in this order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeatLayoutResponse {
    pub concert_id: i64,
    pub schedule_id: i64,
    pub total_seats: i32,
    pub seats: Vec<SeatPlaceResponse>,
}

impl SeatLayoutResponse {
    pub fn new(layout: &SeatLayout) -> Self {
        Self {
            concert_id: layout.concert.0,
            schedule_id: layout.schedule.0,
            total_seats: layout.total_seats,
            seats: layout
                .seats
                .iter()
                .map(|s| SeatPlaceResponse {
                    id: s.id.0,
                    section: s.section.clone(),
                    row: s.row,
                    number: s.number,
                    price: s.price,
                })
                .collect(),
        }
    }
}

/// The one encoding of [`SeatStatusesResponse::statuses`].
pub const STATUS_ENCODING: &str = "2bit-le";

/// Every seat's status in 2 bits, for clients that poll: 250 bytes (336 in
/// base64) for 1,000 seats instead of ~90 KB.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "concertId": 1,
    "scheduleId": 1,
    "totalSeats": 10,
    "availableSeats": 8,
    "encoding": "2bit-le",
    "statuses": "EAIA"
}))]
pub struct SeatStatusesResponse {
    pub concert_id: i64,
    pub schedule_id: i64,
    /// How many seats `statuses` encodes: the layout's seat count.
    pub total_seats: i32,
    pub available_seats: i32,
    /// Always `2bit-le` (a new encoding would get a new name).
    #[schema(example = "2bit-le")]
    pub encoding: &'static str,
    /// Base64 (RFC 4648, standard alphabet, padded) of `ceil(totalSeats / 4)`
    /// bytes. Seat `i` (0-based, in seat id order: the order of the layout
    /// and of the full map) is `(byte[i / 4] >> (2 * (i % 4))) & 3`:
    /// `0` AVAILABLE, `1` HELD, `2` RESERVED (`3` is not used). Unused
    /// trailing bits are 0. The example encodes seats 1 to 10 with seat 3
    /// HELD, seat 5 RESERVED and the others AVAILABLE.
    #[schema(example = "EAIA")]
    pub statuses: String,
}

impl SeatStatusesResponse {
    /// `statuses` are `layout`'s, position by position.
    pub fn new(layout: &SeatLayout, statuses: &SeatStatuses) -> Self {
        use base64::Engine as _;
        Self {
            concert_id: layout.concert.0,
            schedule_id: layout.schedule.0,
            total_seats: layout.total_seats,
            available_seats: statuses.available(),
            encoding: STATUS_ENCODING,
            statuses: base64::engine::general_purpose::STANDARD.encode(pack_statuses(statuses)),
        }
    }
}

/// The status code of the compact form.
fn status_code(status: SeatStatus) -> u8 {
    match status {
        SeatStatus::Available => 0,
        SeatStatus::Held => 1,
        SeatStatus::Reserved => 2,
    }
}

/// Four seats per byte, the first seat in the lowest two bits.
pub fn pack_statuses(statuses: &SeatStatuses) -> Vec<u8> {
    let mut bytes = vec![0u8; statuses.len().div_ceil(4)];
    for (i, status) in statuses.0.iter().enumerate() {
        bytes[i / 4] |= status_code(*status) << (2 * (i % 4));
    }
    bytes
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HoldSeatsRequest {
    pub schedule_id: i64,
    /// 1 to 4 distinct seats of that schedule; all are held or none.
    #[schema(example = json!([101, 102]))]
    pub seat_ids: Vec<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservationResponse {
    pub id: i64,
    pub schedule_id: i64,
    /// PENDING, CONFIRMED, CANCELLED or EXPIRED.
    #[schema(value_type = String, example = "PENDING")]
    pub status: ReservationStatus,
    pub seat_ids: Vec<i64>,
    pub total_amount: i64,
    /// A PENDING hold must be paid before this instant.
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl From<Reservation> for ReservationResponse {
    fn from(r: Reservation) -> Self {
        Self {
            id: r.id.0,
            schedule_id: r.schedule_id.0,
            status: r.status,
            seat_ids: r.seat_ids.iter().map(|s| s.0).collect(),
            total_amount: r.total_amount,
            expires_at: r.expires_at,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequestBody {
    pub reservation_id: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentResponse {
    pub id: i64,
    pub reservation_id: i64,
    pub amount: i64,
    #[schema(value_type = String, example = "COMPLETED")]
    pub status: PaymentStatus,
    /// A payment exists only for a CONFIRMED reservation.
    #[schema(value_type = String, example = "CONFIRMED")]
    pub reservation_status: ReservationStatus,
    pub created_at: DateTime<Utc>,
}

impl From<Payment> for PaymentResponse {
    fn from(p: Payment) -> Self {
        Self {
            id: p.id.0,
            reservation_id: p.reservation_id.0,
            amount: p.amount,
            status: p.status,
            reservation_status: ReservationStatus::Confirmed,
            created_at: p.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConcertRequest {
    pub title: String,
    pub artist: String,
    pub venue: String,
    #[serde(default)]
    pub description: String,
}

impl ConcertRequest {
    pub fn parse(&self) -> Result<ConcertDetails, String> {
        ConcertDetails::parse(&self.title, &self.artist, &self.venue, &self.description)
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SectionRequest {
    #[schema(example = "A")]
    pub name: String,
    #[schema(example = 10)]
    pub rows: i32,
    #[schema(example = 20)]
    pub seats_per_row: i32,
    /// In the smallest currency unit.
    #[schema(example = 15000)]
    pub price: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateScheduleRequest {
    pub starts_at: DateTime<Utc>,
    /// The seat grid generated for this schedule.
    pub sections: Vec<SectionRequest>,
    /// When the sale opens (RFC 3339); absent or null: at once.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime, nullable)]
    pub sales_open_at: Option<serde_json::Value>,
    /// The most seats one user may have of this schedule at once, held and
    /// bought together: 1 to 100; absent or null: 4.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 100, example = 4, nullable)]
    pub max_seats_per_buyer: Option<serde_json::Value>,
}

impl CreateScheduleRequest {
    pub fn grid(&self) -> Result<SeatGrid, String> {
        SeatGrid::parse(
            self.sections
                .iter()
                .map(|s| SectionSpec {
                    name: s.name.clone(),
                    rows: s.rows,
                    seats_per_row: s.seats_per_row,
                    price: s.price,
                })
                .collect(),
        )
    }

    /// The start; the error names the field.
    pub fn starts_at(&self) -> Result<DateTime<Utc>, String> {
        starts_at(self.starts_at)
    }

    /// The sale settings; the error names the field.
    pub fn sale(&self) -> Result<SaleSettings, String> {
        Ok(SaleSettings {
            sales_open_at: sales_open_at(&self.sales_open_at)?.flatten(),
            max_seats_per_buyer: max_seats_per_buyer(&self.max_seats_per_buyer)?
                .unwrap_or_default(),
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateScheduleRequest {
    pub starts_at: DateTime<Utc>,
    /// When the sale opens (RFC 3339); null: at once; absent: unchanged.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime, nullable)]
    pub sales_open_at: Option<serde_json::Value>,
    /// 1 to 100; absent or null: unchanged.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 100, example = 4, nullable)]
    pub max_seats_per_buyer: Option<serde_json::Value>,
}

impl UpdateScheduleRequest {
    /// The change; the error names the field.
    pub fn change(&self) -> Result<ScheduleChange, String> {
        Ok(ScheduleChange {
            starts_at: starts_at(self.starts_at)?,
            sales_open_at: sales_open_at(&self.sales_open_at)?,
            max_seats_per_buyer: max_seats_per_buyer(&self.max_seats_per_buyer)?,
        })
    }
}

/// Tells a field sent as `null` (`Some(Value::Null)`) from one left out
/// (`None`, with `#[serde(default)]`). The sale settings are read as JSON
/// values and parsed here, so a bad one is answered with its field's name
/// (serde's own message would give only a line and column).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// `startsAt` within the years RFC 3339 can write, 0000 to 9999, like
/// `salesOpenAt`: serde's chrono reads years up to ±262,143, which
/// PostgreSQL cannot store (its range is 4713 BC to 294276 AD).
fn starts_at(at: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    use chrono::Datelike;
    if (0..=9999).contains(&at.year()) {
        Ok(at)
    } else {
        Err(format!(
            "startsAt must be an RFC 3339 date-time with a year from 0000 to 9999, not {at}"
        ))
    }
}

/// `None`: not sent; `Some(None)`: null, open at once.
fn sales_open_at(raw: &Option<serde_json::Value>) -> Result<Option<Option<DateTime<Utc>>>, String> {
    match raw {
        None => Ok(None),
        Some(serde_json::Value::Null) => Ok(Some(None)),
        Some(serde_json::Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|at| Some(Some(at.with_timezone(&Utc))))
            .map_err(|e| format!("salesOpenAt must be an RFC 3339 date-time or null: {e}")),
        Some(other) => Err(format!(
            "salesOpenAt must be an RFC 3339 date-time or null, not {other}"
        )),
    }
}

/// `None`: not sent, or null.
fn max_seats_per_buyer(
    raw: &Option<serde_json::Value>,
) -> Result<Option<MaxSeatsPerBuyer>, String> {
    match raw {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => {
            let n = n.as_i64().unwrap_or(i64::MAX);
            MaxSeatsPerBuyer::parse(n).map(Some)
        }
        Some(other) => Err(format!(
            "maxSeatsPerBuyer must be a whole number between 1 and 100, not {other}"
        )),
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthResponse {
    #[schema(example = "UP")]
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<&'static str>,
    /// `postgres` or `memory`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<&'static str>,
    /// `enabled`, or `disabled` (raw-strategy benchmarks: no entry token needed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_room: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests;

/// One reading of a schedule's sale for the operator's monitor
/// (`GET /api/admin/schedules/{id}/monitor`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonitorResponse {
    pub schedule_id: i64,
    pub concert_id: i64,
    /// When this reading was taken; readings are shared for up to 500 ms.
    pub read_at: DateTime<Utc>,
    /// `before-opening`, `open`, `paused` (no seat free, some held) or `sold-out` (none free or held).
    #[schema(example = "open")]
    pub state: &'static str,
    /// When the sale opens; null: open at once.
    #[schema(required = true)]
    pub sales_open_at: Option<DateTime<Utc>>,
    pub total_seats: i64,
    /// RESERVED seats.
    pub sold: i64,
    /// HELD seats.
    pub held: i64,
    /// AVAILABLE seats.
    pub free: i64,
    /// Reservations made in the last 5 s, per second (whatever became of them).
    pub holds_per_sec: f64,
    /// `enabled`, or `disabled` (then the queue fields are null).
    #[schema(example = "enabled")]
    pub waiting_room: &'static str,
    /// In the pre-queue before the opening, in line after it.
    #[schema(required = true)]
    pub waiting: Option<u64>,
    /// Users holding a slot: an unused pass or a live hold.
    #[schema(required = true)]
    pub active: Option<u64>,
    /// Unused passes.
    #[schema(required = true)]
    pub passes: Option<u64>,
    /// Passes handed out per second, measured over the last 5 s.
    #[schema(required = true)]
    pub admission_rate: Option<f64>,
    pub oversell: OversellGuard,
}

/// The oversell guard, counted from the tables: both must be 0.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OversellGuard {
    /// Seats of the schedule in more than one active (PENDING or CONFIRMED) reservation.
    pub seats_sold_twice: i64,
    /// Seats whose status disagrees with their reservations (HELD or RESERVED without one, AVAILABLE with one, ...).
    pub status_mismatches: i64,
}

impl From<SaleSnapshot> for MonitorResponse {
    fn from(s: SaleSnapshot) -> Self {
        let room = s.room;
        Self {
            schedule_id: s.schedule.id.0,
            concert_id: s.schedule.concert_id.0,
            read_at: s.read_at,
            state: s.phase.as_str(),
            sales_open_at: s.schedule.sales_open_at,
            total_seats: s.seats.total_seats,
            sold: s.seats.seats.sold,
            held: s.seats.seats.held,
            free: s.seats.seats.available,
            holds_per_sec: s.holds_per_sec,
            waiting_room: if room.is_some() {
                "enabled"
            } else {
                "disabled"
            },
            waiting: room.map(|r| r.sale.waiting),
            active: room.map(|r| r.passes + r.holding),
            passes: room.map(|r| r.passes),
            admission_rate: room.map(|r| r.sale.admission_rate),
            oversell: OversellGuard {
                seats_sold_twice: s.seats.double_booked,
                status_mismatches: s.seats.status_mismatches,
            },
        }
    }
}
