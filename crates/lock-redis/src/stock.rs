//! The stock counter of the redis strategy outside the hold path: loading
//! it from the database the first time, giving seats back (a failed hold,
//! an ended reservation, once per reservation) and reconciling it with the
//! database. The stock is advisory: it can only make a hold fail early.

use crate::{redis_down, RedisSeatLock};
use booking_domain::*;
use booking_store_postgres::repo_error;
use diesel::sql_types::{BigInt, Bool};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;

/// What the stock of one schedule is, from the database.
const AVAILABLE_SEATS: &str = "\
SELECT EXISTS (SELECT 1 FROM concert_schedules WHERE id = $1) AS known,
       (SELECT count(*) FROM seats WHERE schedule_id = $1 AND status = 'AVAILABLE') AS available";

const AVAILABLE_SEATS_PER_SCHEDULE: &str = "\
SELECT c.id AS schedule_id, count(s.id) FILTER (WHERE s.status = 'AVAILABLE') AS available
  FROM concert_schedules c LEFT JOIN seats s ON s.schedule_id = c.id
 GROUP BY c.id";

/// How long a reservation's "given back" marker lasts: longer than a
/// cancellation record can be redelivered (Kafka keeps records 7 days by
/// default).
const RELEASED_MARKER_MS: u64 = 8 * 24 * 3600 * 1000;

#[derive(QueryableByName)]
struct Availability {
    #[diesel(sql_type = Bool)]
    known: bool,
    #[diesel(sql_type = BigInt)]
    available: i64,
}

#[derive(QueryableByName)]
struct ScheduleAvailability {
    #[diesel(sql_type = BigInt)]
    schedule_id: i64,
    #[diesel(sql_type = BigInt)]
    available: i64,
}

impl RedisSeatLock {
    /// Sets a missing stock from the database (`SET NX`: never overwrites).
    pub(crate) async fn load_stock(&self, schedule: ScheduleId) -> Result<(), HoldError> {
        let available = self
            .available_in_db(schedule)
            .await?
            .ok_or(HoldError::ScheduleNotFound)?;
        let mut conn = self.redis().await?;
        redis::cmd("SET")
            .arg(self.keys(schedule).stock())
            .arg(available)
            .arg("NX")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| HoldError::Repo(redis_down(e)))
    }

    async fn available_in_db(&self, schedule: ScheduleId) -> Result<Option<i64>, RepoError> {
        let mut conn = self.store.conn().await?;
        let row: Availability = diesel::sql_query(AVAILABLE_SEATS)
            .bind::<BigInt, _>(schedule.0)
            .get_result(&mut conn)
            .await
            .map_err(repo_error)?;
        Ok(row.known.then_some(row.available))
    }

    /// Gives `n` back to the stock (failure paths, cancellations). Best
    /// effort: a lost give-back only makes the stock too low, which the next
    /// reconciliation corrects.
    pub async fn return_stock(&self, schedule: ScheduleId, n: usize) {
        let key = self.keys(schedule).stock();
        let result = async {
            let mut conn = self.redis().await?;
            self.scripts
                .return_stock
                .key(&key)
                .arg(n)
                .invoke_async::<i64>(&mut conn)
                .await
                .map_err(redis_down)
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(%schedule, n, error = %e, "could not give stock back; reconcile will");
        }
    }

    /// Gives an ended reservation's seats back to the stock, once however
    /// often it is called: true if this call gave them back.
    pub async fn release_stock(&self, reservation: &Reservation) -> Result<bool, RepoError> {
        let keys = self.keys(reservation.schedule_id);
        let mut conn = self.redis().await?;
        let given: i64 = self
            .scripts
            .release_stock
            .key(keys.stock())
            .key(keys.released(reservation.id))
            .arg(reservation.seat_ids.len())
            .arg(RELEASED_MARKER_MS)
            .invoke_async(&mut conn)
            .await
            .map_err(redis_down)?;
        Ok(given == 1)
    }

    /// Sets one schedule's stock to its AVAILABLE seats in the database.
    pub async fn reconcile_stock(&self, schedule: ScheduleId) -> Result<i64, RepoError> {
        let available = self.available_in_db(schedule).await?.unwrap_or(0);
        let mut conn = self.redis().await?;
        redis::cmd("SET")
            .arg(self.keys(schedule).stock())
            .arg(available)
            .query_async::<()>(&mut conn)
            .await
            .map_err(redis_down)?;
        Ok(available)
    }

    /// Reconciles every schedule's stock with the database; returns how many.
    /// Run at start-up and by `booking reconcile-stock`.
    pub async fn reconcile_all_stock(&self) -> Result<usize, RepoError> {
        let mut conn = self.store.conn().await?;
        let rows: Vec<ScheduleAvailability> = diesel::sql_query(AVAILABLE_SEATS_PER_SCHEDULE)
            .load(&mut conn)
            .await
            .map_err(repo_error)?;
        drop(conn);
        let mut redis = self.redis().await?;
        let mut pipe = redis::pipe();
        for row in &rows {
            pipe.cmd("SET")
                .arg(self.keys(ScheduleId(row.schedule_id)).stock())
                .arg(row.available)
                .ignore();
        }
        pipe.query_async::<()>(&mut redis)
            .await
            .map_err(redis_down)?;
        Ok(rows.len())
    }
}
