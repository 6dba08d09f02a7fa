//! `SeatLock` strategy **redis**: a distributed lock in front of the
//! database, in four steps.
//!
//! 1. **Stock pre-check** (`reserve_stock.lua`): take n from the schedule's
//!    advisory stock, or refuse at once with `SoldOut`: no database work.
//! 2. **Lock set** (`acquire_locks.lua`): one script locks every requested
//!    seat in ascending order, all or none, each with a lease (`PX`), and
//!    stamps them with a fencing token from `INCR`.
//! 3. **Conditional write**: in one transaction, read the seats with their
//!    version, then claim each with `UPDATE ... WHERE version = ? AND status
//!    = 'AVAILABLE'` and write the reservation.
//! 4. **Release** (`release_locks.lua`): delete only the locks this request
//!    still owns (compare-and-delete), and give the stock back on every
//!    failure path (`return_stock.lua`).
//!
//! Why it cannot oversell, even when Redis is wrong: the lock only keeps
//! racers away from the database. If a lease runs out while its holder is
//! paused (GC, network, a slow disk), a second request may take the lock and
//! write; the first one's claim then names a version that no longer exists
//! and matches no row. The stock counter can only make a request fail early;
//! the database decides every success. One schedule's keys share the hash
//! tag `{s:<id>}`, so the scripts work on Redis Cluster.
//!
//! This file is the hold path; loading, giving back and reconciling the
//! stock outside it is in `stock.rs`.

use async_trait::async_trait;
use booking_domain::*;
use booking_store_postgres::holds::{refuse_unholdable, total_price, SeatSnapshot};
use booking_store_postgres::tx::{in_bounded_transaction, run_to_completion, TxError};
use booking_store_postgres::{hold_error, insert_pending_reservation, PgConn, PgStore};
use deadpool_redis::{Pool, PoolConfig, Runtime, Timeouts};
use diesel::sql_types::{Array, BigInt};
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use redis::Script;
use std::sync::Arc;
use std::time::Duration;

mod stock;

/// A plain read: the Redis lock, not a row lock, keeps racers apart.
const READ_SEATS: &str = "\
SELECT id, schedule_id, status, price, version FROM seats
 WHERE id = ANY($1)
 ORDER BY id";

/// Fenced by the version read under the lock: a stale lock holder's claim
/// matches no row once anyone else has written the seat.
const CLAIM_SEAT: &str = "\
UPDATE seats SET status = 'HELD', version = version + 1
 WHERE id = $1 AND version = $2 AND status = 'AVAILABLE'";

#[derive(Debug, Clone)]
pub struct RedisLockSettings {
    /// How long a seat lock lives if its holder never releases it (crash).
    /// Longer than a hold transaction takes; a holder that outlives it is
    /// refused by the database, not trusted.
    pub lease: Duration,
    /// Prepended to every key; lets tests (or tenants) share one Redis.
    pub key_prefix: String,
}

impl Default for RedisLockSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(5),
            key_prefix: String::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    #[error("invalid Redis configuration: {0}")]
    Config(String),
}

/// A Redis pool of `max_size` connections that waits at most `wait`.
pub fn redis_pool(url: &str, max_size: usize, wait: Duration) -> Result<Pool, RedisSetupError> {
    let mut config = deadpool_redis::Config::from_url(url);
    let mut pool = PoolConfig::new(max_size);
    pool.timeouts = Timeouts {
        wait: Some(wait),
        create: Some(wait),
        recycle: Some(wait),
    };
    config.pool = Some(pool);
    config
        .create_pool(Some(Runtime::Tokio1))
        .map_err(|e| RedisSetupError::Config(e.to_string()))
}

/// The Redis keys of one schedule; all share the hash tag `{s:<id>}`.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
    schedule: ScheduleId,
}

impl Keys {
    pub fn stock(&self) -> String {
        format!("{}stock:{{s:{}}}", self.prefix, self.schedule)
    }

    pub fn fence(&self) -> String {
        format!("{}fence:{{s:{}}}", self.prefix, self.schedule)
    }

    pub fn lock(&self, seat: SeatId) -> String {
        format!("{}lock:{{s:{}}}:{}", self.prefix, self.schedule, seat)
    }

    /// Set once a reservation's seats went back to the stock.
    pub fn released(&self, reservation: ReservationId) -> String {
        format!(
            "{}released:{{s:{}}}:{}",
            self.prefix, self.schedule, reservation
        )
    }
}

/// The locks one request holds: their keys and the value it wrote in them.
#[derive(Debug, Clone)]
pub struct SeatLocks {
    pub keys: Vec<String>,
    /// `<owner>:<fencing token>`; release deletes a key only if it still holds this.
    pub value: String,
    pub token: i64,
}

struct Scripts {
    reserve_stock: Script,
    return_stock: Script,
    release_stock: Script,
    acquire_locks: Script,
    release_locks: Script,
}

#[derive(Clone)]
pub struct RedisSeatLock {
    store: PgStore,
    redis: Pool,
    settings: RedisLockSettings,
    scripts: Arc<Scripts>,
}

impl std::fmt::Debug for RedisSeatLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSeatLock")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn redis_down(e: impl std::fmt::Display) -> RepoError {
    RepoError::Unavailable(format!("redis: {e}"))
}

impl RedisSeatLock {
    pub const NAME: &'static str = "redis";

    pub fn new(store: PgStore, redis: Pool, settings: RedisLockSettings) -> Self {
        // `Script` sends EVALSHA and falls back to loading the script on
        // NOSCRIPT, so each script crosses the wire once per server.
        let scripts = Scripts {
            reserve_stock: Script::new(include_str!("reserve_stock.lua")),
            return_stock: Script::new(include_str!("return_stock.lua")),
            release_stock: Script::new(include_str!("release_stock.lua")),
            acquire_locks: Script::new(include_str!("acquire_locks.lua")),
            release_locks: Script::new(include_str!("release_locks.lua")),
        };
        Self {
            store,
            redis,
            settings,
            scripts: Arc::new(scripts),
        }
    }

    pub fn keys(&self, schedule: ScheduleId) -> Keys {
        Keys {
            prefix: self.settings.key_prefix.clone(),
            schedule,
        }
    }

    async fn redis(&self) -> Result<deadpool_redis::Connection, RepoError> {
        self.redis.get().await.map_err(redis_down)
    }

    /// Redis answers a PING.
    pub async fn ping(&self) -> Result<(), RepoError> {
        let mut conn = self.redis().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(drop)
            .map_err(redis_down)
    }

    /// Step 1: takes `n` from the stock, loading it from the database the
    /// first time a schedule is seen.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn reserve_stock(&self, schedule: ScheduleId, n: usize) -> Result<(), HoldError> {
        let key = self.keys(schedule).stock();
        for _ in 0..2 {
            let left: i64 = {
                let mut conn = self.redis().await?;
                self.scripts
                    .reserve_stock
                    .key(&key)
                    .arg(n)
                    .invoke_async(&mut conn)
                    .await
            }
            .map_err(redis_down)?;
            // The connection is back in the pool before loading the stock:
            // holding one while waiting for another can starve the pool.
            match left {
                -1 => self.load_stock(schedule).await?,
                -2 => return Err(HoldError::SoldOut),
                _ => return Ok(()),
            }
        }
        Err(HoldError::Contention)
    }

    /// Step 2: locks every requested seat, or none (`SeatTaken` names the
    /// first seat someone else holds).
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn acquire_locks(&self, request: &HoldRequest) -> Result<SeatLocks, HoldError> {
        let keys = self.keys(request.schedule_id);
        let lock_keys: Vec<String> = request
            .seat_ids
            .as_slice()
            .iter()
            .map(|s| keys.lock(*s))
            .collect();
        let owner = uuid::Uuid::new_v4().simple().to_string();
        let mut invocation = self.scripts.acquire_locks.key(keys.fence());
        for key in &lock_keys {
            invocation.key(key);
        }
        let lease = u64::try_from(self.settings.lease.as_millis()).unwrap_or(u64::MAX);
        let mut conn = self.redis().await?;
        let (acquired, detail): (i64, i64) = invocation
            .arg(&owner)
            .arg(lease)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| HoldError::Repo(redis_down(e)))?;
        if acquired == 1 {
            return Ok(SeatLocks {
                keys: lock_keys,
                value: format!("{owner}:{detail}"),
                token: detail,
            });
        }
        let busy = usize::try_from(detail - 1)
            .ok()
            .and_then(|i| request.seat_ids.as_slice().get(i));
        Err(HoldError::SeatTaken(busy.copied().into_iter().collect()))
    }

    /// Step 4: deletes the locks this request still owns; returns how many.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn release_locks(&self, locks: &SeatLocks) -> Result<usize, RepoError> {
        let mut invocation = self.scripts.release_locks.prepare_invoke();
        for key in &locks.keys {
            invocation.key(key);
        }
        let mut conn = self.redis().await?;
        invocation
            .arg(&locks.value)
            .invoke_async(&mut conn)
            .await
            .map_err(redis_down)
    }

    /// Step 3: the database transaction, on a connection taken before the
    /// locks, so waiting for the pool does not eat into the lease.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn write_hold(
        &self,
        conn: PgConn,
        request: &HoldRequest,
    ) -> Result<Reservation, HoldError> {
        let owned = request.clone();
        in_bounded_transaction(conn, self.store.timeouts(), move |conn| {
            async move {
                let seats = read_requested_seats(conn, &owned).await?;
                claim_seats(conn, &owned, &seats).await
            }
            .scope_boxed()
        })
        .await
        .map_err(|e| e.into_inner(|db| hold_error(db, request)))
    }

    /// Steps 2 to 4 once the stock is reserved; the stock goes back on failure.
    async fn hold_with_stock(&self, request: &HoldRequest) -> Result<Reservation, HoldError> {
        let result = async {
            let conn = self.store.conn().await?;
            let locks = self.acquire_locks(request).await?;
            let written = self.write_hold(conn, request).await;
            if let Err(e) = self.release_locks(&locks).await {
                // The lease frees them; the database already decided.
                tracing::warn!(error = %e, token = locks.token, "seat locks not released");
            }
            written
        }
        .await;
        if result.is_err() {
            self.return_stock(request.schedule_id, request.seat_ids.len())
                .await;
        }
        result
    }
}

/// Reads the requested seats with their versions.
pub async fn read_requested_seats(
    conn: &mut AsyncPgConnection,
    request: &HoldRequest,
) -> diesel::QueryResult<Vec<SeatSnapshot>> {
    diesel::sql_query(READ_SEATS)
        .bind::<Array<BigInt>, _>(request.seat_ids.raw())
        .load(conn)
        .await
}

/// Checks `seats` and claims each at the version it was read with, then
/// writes the reservation. A claim that matches no row means the seat was
/// written since it was read: this request's lock was not exclusive (its
/// lease ran out), so it is refused.
pub async fn claim_seats(
    conn: &mut AsyncPgConnection,
    request: &HoldRequest,
    seats: &[SeatSnapshot],
) -> Result<Reservation, TxError<HoldError>> {
    refuse_unholdable(conn, request, seats)
        .await?
        .map_err(TxError::Abort)?;
    for seat in seats {
        let claimed = diesel::sql_query(CLAIM_SEAT)
            .bind::<BigInt, _>(seat.id)
            .bind::<BigInt, _>(seat.version)
            .execute(conn)
            .await?;
        if claimed == 0 {
            tracing::warn!(
                seat = seat.id,
                "claim refused: the seat changed under a stale lock"
            );
            return Err(TxError::Abort(HoldError::SeatTaken(vec![SeatId(seat.id)])));
        }
    }
    Ok(insert_pending_reservation(conn, request, total_price(seats)).await?)
}

#[async_trait]
impl Readiness for RedisSeatLock {
    async fn check_ready(&self) -> Result<(), RepoError> {
        self.ping().await
    }
}

#[async_trait]
impl SeatLock for RedisSeatLock {
    fn strategy(&self) -> &'static str {
        Self::NAME
    }

    #[tracing::instrument(
        name = "hold_seats",
        skip_all,
        fields(strategy = "redis", schedule = %request.schedule_id, seats = request.seat_ids.len())
    )]
    async fn hold_seats(&self, request: &HoldRequest) -> Result<Reservation, HoldError> {
        let this = self.clone();
        let request = request.clone();
        // On its own task: a dropped request still releases its locks and
        // gives its stock back.
        run_to_completion(async move {
            this.reserve_stock(request.schedule_id, request.seat_ids.len())
                .await?;
            this.hold_with_stock(&request).await
        })
        .await?
    }

    async fn seats_released(&self, reservation: &Reservation) -> Result<(), RepoError> {
        self.release_stock(reservation).await.map(drop)
    }
}
