//! The invariant audit, read straight from the tables (tests, the benchmark
//! and the oversell gauge use it), its one-statement count for the
//! operator's monitor, and the readiness probe.

use crate::{repo_error, PgStore};
use async_trait::async_trait;
use booking_domain::*;
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Integer, Timestamptz};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;

const COUNTS: &str = "\
SELECT count(*) AS total,
       count(*) FILTER (WHERE s.status = 'AVAILABLE') AS available,
       count(*) FILTER (WHERE s.status = 'HELD') AS held,
       count(*) FILTER (WHERE s.status = 'RESERVED') AS reserved,
       (SELECT total_seats FROM concert_schedules WHERE id = $1) AS capacity,
       (SELECT count(*) FROM reservations r
         WHERE r.schedule_id = $1 AND r.status IN ('PENDING', 'CONFIRMED')) AS active_reservations
  FROM seats s WHERE s.schedule_id = $1";

/// Seats in more than one active reservation: an oversell.
const DOUBLE_BOOKED: &str = "\
SELECT rs.seat_id AS id
  FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id
 WHERE r.schedule_id = $1 AND r.status IN ('PENDING', 'CONFIRMED')
 GROUP BY rs.seat_id HAVING count(*) > 1 ORDER BY 1";

/// Seats whose status, or whose link's `active` flag, disagrees with the
/// reservation that owns them.
const MISMATCHES: &str = "\
WITH owner AS (
  SELECT rs.seat_id, r.status, rs.active
    FROM reservation_seats rs JOIN reservations r ON r.id = rs.reservation_id
   WHERE r.schedule_id = $1 AND (r.status IN ('PENDING', 'CONFIRMED') OR rs.active))
SELECT DISTINCT s.id AS id
  FROM seats s LEFT JOIN owner o ON o.seat_id = s.id
 WHERE s.schedule_id = $1
   -- COALESCE: a HELD or RESERVED seat with no owner at all compares as
   -- NULL, which NOT would drop; it is a mismatch.
   AND NOT COALESCE(   (s.status = 'AVAILABLE' AND o.seat_id IS NULL)
                    OR (s.status = 'HELD' AND o.status = 'PENDING' AND o.active)
                    OR (s.status = 'RESERVED' AND o.status = 'CONFIRMED' AND o.active),
                    false)
 ORDER BY 1";

const EMPTY_RESERVATIONS: &str = "\
SELECT r.id AS id FROM reservations r
 WHERE r.schedule_id = $1 AND r.status IN ('PENDING', 'CONFIRMED')
   AND NOT EXISTS (SELECT 1 FROM reservation_seats rs WHERE rs.reservation_id = r.id)
 ORDER BY 1";

/// The monitor's read: the counts of the queries above and the holds made
/// since $2, in one statement (one snapshot). `owner` is MISMATCHES' own;
/// a seat sold twice is a seat two active owners claim, as in DOUBLE_BOOKED.
const WATCH: &str = "\
WITH seat AS (SELECT id, status FROM seats WHERE schedule_id = $1),
owner AS (
  SELECT rs.seat_id, r.status, rs.active
    FROM reservations r JOIN reservation_seats rs ON rs.reservation_id = r.id
   WHERE r.schedule_id = $1 AND (r.status IN ('PENDING', 'CONFIRMED') OR rs.active))
SELECT c.total, c.available, c.held, c.reserved, h.holds, d.double_booked, m.mismatches
  FROM (SELECT count(*) AS total,
               count(*) FILTER (WHERE status = 'AVAILABLE') AS available,
               count(*) FILTER (WHERE status = 'HELD') AS held,
               count(*) FILTER (WHERE status = 'RESERVED') AS reserved
          FROM seat) c,
       (SELECT count(*) AS holds FROM reservations
         WHERE schedule_id = $1 AND created_at >= $2) h,
       (SELECT count(*) AS double_booked FROM (
          SELECT seat_id FROM owner WHERE status IN ('PENDING', 'CONFIRMED')
           GROUP BY seat_id HAVING count(*) > 1) twice) d,
       (SELECT count(DISTINCT s.id) AS mismatches
          FROM seat s LEFT JOIN owner o ON o.seat_id = s.id
         WHERE NOT COALESCE(   (s.status = 'AVAILABLE' AND o.seat_id IS NULL)
                            OR (s.status = 'HELD' AND o.status = 'PENDING' AND o.active)
                            OR (s.status = 'RESERVED' AND o.status = 'CONFIRMED' AND o.active),
                            false)) m";

#[derive(QueryableByName)]
struct Watch {
    #[diesel(sql_type = BigInt)]
    total: i64,
    #[diesel(sql_type = BigInt)]
    available: i64,
    #[diesel(sql_type = BigInt)]
    held: i64,
    #[diesel(sql_type = BigInt)]
    reserved: i64,
    #[diesel(sql_type = BigInt)]
    holds: i64,
    #[diesel(sql_type = BigInt)]
    double_booked: i64,
    #[diesel(sql_type = BigInt)]
    mismatches: i64,
}

#[derive(QueryableByName)]
struct Counts {
    #[diesel(sql_type = BigInt)]
    total: i64,
    #[diesel(sql_type = BigInt)]
    available: i64,
    #[diesel(sql_type = BigInt)]
    held: i64,
    #[diesel(sql_type = BigInt)]
    reserved: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<Integer>)]
    capacity: Option<i32>,
    #[diesel(sql_type = BigInt)]
    active_reservations: i64,
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// The available count the catalogue serves (derived from the seats), so
/// the audit also checks the read path.
async fn reported_available(
    conn: &mut diesel_async::AsyncPgConnection,
    schedule: ScheduleId,
) -> Result<i64, RepoError> {
    use crate::schema::seats;
    use diesel::{ExpressionMethods, QueryDsl};
    seats::table
        .filter(seats::schedule_id.eq(schedule.0))
        .filter(seats::status.eq(SeatStatus::Available.as_str()))
        .count()
        .get_result(conn)
        .await
        .map_err(repo_error)
}

#[async_trait]
impl InvariantAudit for PgStore {
    async fn audit_schedule(&self, schedule: ScheduleId) -> Result<AuditReport, RepoError> {
        let mut conn = self.conn().await?;
        let ids = |sql: &'static str| diesel::sql_query(sql).bind::<BigInt, _>(schedule.0);
        let counts: Counts = ids(COUNTS)
            .get_result(&mut conn)
            .await
            .map_err(repo_error)?;
        let double: Vec<Id> = ids(DOUBLE_BOOKED)
            .load(&mut conn)
            .await
            .map_err(repo_error)?;
        let mismatches: Vec<Id> = ids(MISMATCHES).load(&mut conn).await.map_err(repo_error)?;
        let empty: Vec<Id> = ids(EMPTY_RESERVATIONS)
            .load(&mut conn)
            .await
            .map_err(repo_error)?;
        Ok(AuditReport {
            total_seats: counts.total,
            available: counts.available,
            held: counts.held,
            reserved: counts.reserved,
            capacity: counts.capacity.map(i64::from).unwrap_or_default(),
            reported_available: reported_available(&mut conn, schedule).await?,
            active_reservations: counts.active_reservations,
            double_booked_seats: double.into_iter().map(|r| SeatId(r.id)).collect(),
            status_mismatches: mismatches.into_iter().map(|r| SeatId(r.id)).collect(),
            empty_reservations: empty.into_iter().map(|r| ReservationId(r.id)).collect(),
        })
    }

    async fn watch_schedule(
        &self,
        schedule: ScheduleId,
        since: DateTime<Utc>,
    ) -> Result<Option<SeatWatch>, RepoError> {
        let mut conn = self.conn().await?;
        let watch: Watch = diesel::sql_query(WATCH)
            .bind::<BigInt, _>(schedule.0)
            .bind::<Timestamptz, _>(since)
            .get_result(&mut conn)
            .await
            .map_err(repo_error)?;
        // A schedule has at least one seat: no seats, no schedule.
        if watch.total == 0 {
            return Ok(None);
        }
        Ok(Some(SeatWatch {
            total_seats: watch.total,
            seats: SeatCounts {
                available: watch.available,
                held: watch.held,
                sold: watch.reserved,
            },
            holds_since: watch.holds,
            double_booked: watch.double_booked,
            status_mismatches: watch.mismatches,
        }))
    }
}

#[async_trait]
impl Readiness for PgStore {
    async fn check_ready(&self) -> Result<(), RepoError> {
        let mut conn = self.conn().await?;
        diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .await
            .map(drop)
            .map_err(repo_error)
    }
}
