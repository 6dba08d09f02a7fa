//! The redis strategy's Redis state outside the hold path: loading a
//! schedule's stock and seat marks from the database, resyncing them (when
//! a refusal disagrees with the stock, and periodically), and giving an
//! ended reservation's seats back (the seat-release consumer).
//!
//! The state is a hint derived from the database, never a second source of
//! truth: whatever drifts (a dead instance's stock, a lost give-back, marks
//! missed while the broker was down, a value set by hand) is set right by
//! the next resync, which no human has to start.

use crate::{held_mark, millis, redis_down, RedisSeatLock};
use booking_domain::*;
use booking_store_postgres::repo_error;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use std::sync::atomic::Ordering;

const SEAT_IDS: &str = "SELECT id FROM seats WHERE schedule_id = $1 ORDER BY id";

/// The ids of one slice of a schedule's seats: after `$2`, at most `$3`.
const SEAT_IDS_AFTER: &str = "\
SELECT id FROM seats WHERE schedule_id = $1 AND id > $2 ORDER BY id LIMIT $3";

/// A schedule's seats `$2 < id <= $3`, and the reservation that has each,
/// if any: all of them for a full resync, a slice for the periodic one.
const SEATS_OF_SCHEDULE_BETWEEN: &str = "\
SELECT s.id, s.status, rs.reservation_id FROM seats s
  LEFT JOIN reservation_seats rs ON rs.seat_id = s.id AND rs.active
 WHERE s.schedule_id = $1 AND s.id > $2 AND s.id <= $3
 ORDER BY s.id";

/// Up to this many seats a full recount stalls Redis for about 10 ms: the
/// periodic resync recounts such a schedule whenever its count disagrees.
const FULL_RECOUNT_MAX: i64 = 10_000;

/// Seats per slice of the periodic resync: one script over this many keys
/// keeps Redis busy for about a millisecond.
const SLICE: i64 = 1000;

const SCHEDULE_EXISTS: &str = "SELECT id FROM concert_schedules WHERE id = $1";

const ALL_SCHEDULES: &str = "SELECT id FROM concert_schedules ORDER BY id";

/// How long a reservation's "given back" marker lasts: longer than a
/// cancellation record can be redelivered (Kafka keeps records 7 days by
/// default).
const RELEASED_MARKER_MS: u64 = 8 * 24 * 3600 * 1000;

#[derive(QueryableByName)]
struct SeatHolder {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    reservation_id: Option<i64>,
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// How `sync_stock.lua` treats a stock that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyncMode {
    /// Leave it: another request loaded the schedule first.
    Load,
    /// Rebuild it from the database.
    Resync,
}

impl RedisSeatLock {
    /// Loads or resyncs one schedule from the database: every seat's mark,
    /// and the stock. Returns the stock, or `None` when `Load` found the
    /// schedule loaded already.
    async fn sync(&self, schedule: ScheduleId, how: SyncMode) -> Result<Option<i64>, HoldError> {
        let seats = self.seat_ids(schedule).await?;
        let mode = match how {
            SyncMode::Load => "load",
            SyncMode::Resync => "resync",
        };
        let answer = self.sync_seats(schedule, &seats, mode).await?;
        let [1, stock, before, _] = answer[..] else {
            return Ok(None);
        };
        self.counters.resyncs.fetch_add(1, Ordering::Relaxed);
        if before >= 0 && before != stock {
            self.counters.stock_repairs.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%schedule, before, stock, "redis stock repaired from the database");
        }
        Ok(Some(stock))
    }

    /// One run of `sync_stock.lua` in `mode` over `seats` (ascending: all of
    /// the schedule's, or a slice): what their keys hold, then what the
    /// database says of them, then the script with both.
    async fn sync_seats(
        &self,
        schedule: ScheduleId,
        seats: &[Id],
        mode: &str,
    ) -> Result<Vec<i64>, HoldError> {
        let keys = self.keys(schedule);
        let lock_keys: Vec<String> = seats.iter().map(|s| keys.lock(SeatId(s.id))).collect();
        // What each seat's key holds before the database is read: the
        // script leaves alone any key written since, by someone who knew more.
        let seen: Vec<Option<String>> = if lock_keys.is_empty() {
            Vec::new()
        } else {
            let mut conn = self.redis();
            redis::cmd("MGET")
                .arg(&lock_keys)
                .query_async(&mut conn)
                .await
                .map_err(redis_down)?
        };
        // No database connection is held across a Redis round trip.
        let holders: Vec<SeatHolder> = {
            let mut db = self.store.conn().await?;
            let (from, to) = match (seats.first(), seats.last()) {
                (Some(first), Some(last)) => (first.id - 1, last.id),
                _ => (0, 0),
            };
            diesel::sql_query(SEATS_OF_SCHEDULE_BETWEEN)
                .bind::<BigInt, _>(schedule.0)
                .bind::<BigInt, _>(from)
                .bind::<BigInt, _>(to)
                .load(&mut db)
                .await
                .map_err(repo_error)?
        };
        if holders.len() != seats.len() || holders.iter().zip(seats).any(|(h, s)| h.id != s.id) {
            // The seats changed in between (the schedule was deleted).
            return Err(HoldError::Contention);
        }
        let mut invocation = self.scripts.sync_stock.key(keys.stock());
        invocation.key(keys.synced());
        for key in &lock_keys {
            invocation.key(key);
        }
        invocation
            .arg(mode)
            .arg(millis(self.settings.state_lifetime))
            .arg(millis(self.settings.resync_every));
        for (seat, seen) in holders.iter().zip(seen) {
            invocation
                .arg(database_mark(seat))
                .arg(seen.unwrap_or_default());
        }
        let mut conn = self.redis();
        invocation
            .invoke_async(&mut conn)
            .await
            .map_err(redis_down)
            .map_err(HoldError::from)
    }

    /// The schedule's seats, ascending; `ScheduleNotFound` if it is unknown.
    async fn seat_ids(&self, schedule: ScheduleId) -> Result<Vec<Id>, HoldError> {
        let mut db = self.store.conn().await?;
        let seats: Vec<Id> = diesel::sql_query(SEAT_IDS)
            .bind::<BigInt, _>(schedule.0)
            .load(&mut db)
            .await
            .map_err(repo_error)?;
        if seats.is_empty() {
            let known: Vec<Id> = diesel::sql_query(SCHEDULE_EXISTS)
                .bind::<BigInt, _>(schedule.0)
                .load(&mut db)
                .await
                .map_err(repo_error)?;
            if known.is_empty() {
                return Err(HoldError::ScheduleNotFound);
            }
        }
        Ok(seats)
    }

    /// Loads or resyncs the schedule, unless another request (on any
    /// instance) started one within `resync_gap`: true if this call did.
    pub(crate) async fn resync_if_first(
        &self,
        schedule: ScheduleId,
        how: SyncMode,
    ) -> Result<bool, HoldError> {
        let first: bool = {
            let mut conn = self.redis();
            redis::cmd("SET")
                .arg(self.keys(schedule).syncing())
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(millis(self.settings.resync_gap))
                .query_async::<Option<String>>(&mut conn)
                .await
                .map_err(redis_down)?
                .is_some()
        };
        if first {
            self.sync(schedule, how).await?;
        }
        Ok(first)
    }

    /// The periodic resync, off the request's path, slice by slice.
    pub(crate) fn resync_in_background(&self, schedule: ScheduleId) {
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.patch(schedule).await {
                tracing::warn!(%schedule, error = %e, "periodic stock resync failed; the next one retries");
            }
        });
    }

    /// Sets every seat's mark right, `SLICE` seats per script, and moves the
    /// stock by what that freed or took (`sync_stock.lua`, `patch`). The
    /// slices also count their free seats; if the stock disagrees with that
    /// count, it drifted from the marks (a dead instance's locks expired with
    /// their stock, a value set by hand) and a full `sync` recounts it. The
    /// slices are counted at different moments, so a gap that the locks
    /// taken during the pass could explain is trusted only for a small
    /// schedule, where a full recount costs little.
    async fn patch(&self, schedule: ScheduleId) -> Result<(), HoldError> {
        let fence_before = self.fence(schedule).await?;
        let mut after = 0_i64;
        let mut moved = 0_i64;
        let (mut seats, mut free, mut stock) = (0_i64, 0_i64, 0_i64);
        loop {
            let ids: Vec<Id> = {
                let mut db = self.store.conn().await?;
                diesel::sql_query(SEAT_IDS_AFTER)
                    .bind::<BigInt, _>(schedule.0)
                    .bind::<BigInt, _>(after)
                    .bind::<BigInt, _>(SLICE)
                    .load(&mut db)
                    .await
                    .map_err(repo_error)?
            };
            let Some(last) = <[Id]>::last(&ids) else {
                break;
            };
            after = last.id;
            let answer = self.sync_seats(schedule, &ids, "patch").await?;
            let [1, now, before, slice_free] = answer[..] else {
                // Not loaded (expired or Redis restarted): the next hold loads it.
                return Ok(());
            };
            moved += now - before;
            stock = now;
            free += slice_free;
            seats += ids.len() as i64;
            if ids.len() < SLICE as usize {
                break;
            }
        }
        self.counters.resyncs.fetch_add(1, Ordering::Relaxed);
        if moved != 0 {
            self.counters.stock_repairs.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%schedule, moved, "redis seat marks repaired from the database");
        }
        // Each lock taken during the pass moves at most MAX seats twice (the
        // lock, then its release): more gap than that is drift.
        let locked = self.fence(schedule).await? - fence_before;
        let explained = locked * 2 * SeatIds::MAX as i64;
        let gap = (stock - free).abs();
        if gap > 0 && (seats <= FULL_RECOUNT_MAX || gap > explained) {
            tracing::info!(%schedule, stock, free, "redis stock drifted from the seat marks: recounting");
            self.sync(schedule, SyncMode::Resync).await?;
        }
        Ok(())
    }

    /// How many locks were ever taken on the schedule (`acquire_locks.lua`).
    async fn fence(&self, schedule: ScheduleId) -> Result<i64, HoldError> {
        let mut conn = self.redis();
        let fence: Option<i64> = redis::cmd("GET")
            .arg(self.keys(schedule).fence())
            .query_async(&mut conn)
            .await
            .map_err(redis_down)?;
        Ok(fence.unwrap_or_default())
    }

    /// Gives an ended reservation's seats back to the stock, once however
    /// often it is called: true if this call gave them back.
    pub async fn release_stock(&self, reservation: &Reservation) -> Result<bool, RepoError> {
        let keys = self.keys(reservation.schedule_id);
        let mut invocation = self.scripts.release_stock.key(keys.stock());
        invocation.key(keys.released(reservation.id));
        for seat in &reservation.seat_ids {
            invocation.key(keys.lock(*seat));
        }
        let mut conn = self.redis();
        let given: i64 = invocation
            .arg(held_mark(Some(reservation.id)))
            .arg(RELEASED_MARKER_MS)
            .invoke_async(&mut conn)
            .await
            .map_err(redis_down)?;
        Ok(given == 1)
    }

    /// Resyncs one schedule from the database now; returns its stock.
    pub async fn reconcile_stock(&self, schedule: ScheduleId) -> Result<i64, RepoError> {
        match self.sync(schedule, SyncMode::Resync).await {
            Ok(stock) => Ok(stock.unwrap_or_default()),
            Err(HoldError::Repo(e)) => Err(e),
            Err(e) => Err(RepoError::unexpected(e.to_string())),
        }
    }

    /// Resyncs every schedule; returns how many. Run at start-up and by
    /// `booking reconcile-stock`; the strategy does not need it to heal.
    pub async fn reconcile_all_stock(&self) -> Result<usize, RepoError> {
        let schedules: Vec<Id> = {
            let mut conn = self.store.conn().await?;
            diesel::sql_query(ALL_SCHEDULES)
                .load(&mut conn)
                .await
                .map_err(repo_error)?
        };
        for schedule in &schedules {
            self.reconcile_stock(ScheduleId(schedule.id)).await?;
        }
        Ok(schedules.len())
    }
}

/// What the database says of a seat, as its Redis key should hold it: ''
/// for AVAILABLE, else the held mark.
fn database_mark(seat: &SeatHolder) -> String {
    if seat.status == SeatStatus::Available.as_str() {
        String::new()
    } else {
        held_mark(seat.reservation_id.map(ReservationId))
    }
}
