//! `SeatLock` strategy **redis**: a distributed lock in front of the
//! database, in three steps.
//!
//! 1. **Lock set and stock** (`acquire_locks.lua`): one script refuses the
//!    request if a seat is locked (a hold in flight) or marked held (the
//!    database has it), without touching anything; otherwise it locks every
//!    requested seat, all or none, each with a lease (`PX`) and a fencing
//!    token from `INCR`, and takes the seats from the schedule's stock. The
//!    answer is `SeatTaken`, or `SoldOut` when the stock says no seat at all
//!    is free (and a resync from the database agrees, see `stock.rs`).
//! 2. **Conditional write**, on a database connection taken only now that
//!    the locks are held: in one transaction, read the seats with their
//!    version, then claim each with `UPDATE ... WHERE version = ? AND status
//!    = 'AVAILABLE'` and write the reservation.
//! 3. **Release** (`release_locks.lua`): one script replaces this request's
//!    locks by "held" marks if the database has the seats, or deletes them
//!    and gives their stock back if it does not.
//!
//! Why it cannot oversell, even when Redis is wrong: Redis only refuses.
//! A lock keeps racers away from the database, but if a lease runs out while
//! its holder is paused (GC, network, a slow disk), a second request may take
//! the lock and write; the first one's claim then names a version that no
//! longer exists and matches no row. A wrong mark or a wrong stock can only
//! refuse a request or let it through to the database, which decides every
//! success. One schedule's keys share the hash tag `{s:<id>}`, so the
//! scripts work on Redis Cluster.
//!
//! This file is the hold path, its database step in `claim.rs`; the stock
//! and marks outside it (loading them from the database, repairing them,
//! the seat-release consumer's give-back) are in `stock.rs`; the settings,
//! the Redis connection and the key layout in `setup.rs`.

use async_trait::async_trait;
use booking_domain::*;
use booking_store_postgres::holds::refuse_unholdable;
use booking_store_postgres::tx::run_to_completion;
use booking_store_postgres::{hold_error, repo_error, PgStore};
use redis::aio::ConnectionManager;
use redis::Script;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod claim;
mod setup;
mod stock;

pub use claim::{claim_seats, read_requested_seats, CLAIM_SEATS, READ_SEATS};
use setup::millis;
pub use setup::{held_mark, redis_connection, Keys, RedisLockSettings, RedisSetupError};
use stock::SyncMode;

/// Tries of the lock script per hold, with a load or a resync in between:
/// enough to outwait `resync_gap`, the longest a dead resyncer blocks.
const LOCK_ATTEMPTS: usize = 25;

/// How long a request waits before it looks again while another request
/// loads or resyncs the schedule.
const SYNC_POLL: Duration = Duration::from_millis(20);

/// The locks one request holds: their keys and the value it wrote in them.
#[derive(Debug, Clone)]
pub struct SeatLocks {
    pub schedule: ScheduleId,
    pub seats: Vec<SeatId>,
    pub keys: Vec<String>,
    /// `<owner>:<fencing token>`; release replaces or deletes a key only if
    /// it still holds this.
    pub value: String,
    pub token: i64,
}

/// What `release_locks.lua` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    /// This request's locks that were still there (the others' leases ran out).
    pub locks: usize,
    /// Seats given back to the stock.
    pub stock: usize,
}

/// One answer of `acquire_locks.lua`.
enum Acquire {
    Locked(SeatLocks),
    /// A requested seat is locked or held; nothing taken. The stock says
    /// whether any seat at all is free.
    Busy {
        seat: SeatId,
        stock: i64,
    },
    /// The requested seats are free, but the stock counts fewer: it drifted.
    Drifted,
    /// No stock: the schedule is not in Redis (first use, Redis restarted).
    Unknown,
}

struct Scripts {
    acquire_locks: Script,
    release_locks: Script,
    release_stock: Script,
    sync_stock: Script,
}

/// Running totals for metrics (`SeatLock::counters`).
#[derive(Debug, Default)]
struct Counters {
    resyncs: AtomicU64,
    /// Resyncs that found the stock wrong, and set it right.
    stock_repairs: AtomicU64,
}

#[derive(Clone)]
pub struct RedisSeatLock {
    store: PgStore,
    /// Shared with every clone (and the waiting room): one pipelined connection.
    redis: ConnectionManager,
    settings: RedisLockSettings,
    scripts: Arc<Scripts>,
    counters: Arc<Counters>,
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

    pub fn new(store: PgStore, redis: ConnectionManager, settings: RedisLockSettings) -> Self {
        // `Script` sends EVALSHA and falls back to loading the script on
        // NOSCRIPT, so each script crosses the wire once per server.
        let scripts = Scripts {
            acquire_locks: Script::new(include_str!("acquire_locks.lua")),
            release_locks: Script::new(include_str!("release_locks.lua")),
            release_stock: Script::new(include_str!("release_stock.lua")),
            sync_stock: Script::new(include_str!("sync_stock.lua")),
        };
        Self {
            store,
            redis,
            settings,
            scripts: Arc::new(scripts),
            counters: Arc::default(),
        }
    }

    pub fn keys(&self, schedule: ScheduleId) -> Keys {
        Keys {
            prefix: self.settings.key_prefix.clone(),
            schedule,
        }
    }

    /// A handle on the shared connection: no I/O, no wait.
    fn redis(&self) -> ConnectionManager {
        self.redis.clone()
    }

    /// Step 1: locks every requested seat and takes its stock, or refuses:
    /// `SeatTaken` naming the first seat someone else has or holds right
    /// now, `SoldOut` when no seat of the schedule is free. Loads the
    /// schedule from the database the first time, and resyncs it when the
    /// stock disagrees with the seats.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn acquire_locks(&self, request: &HoldRequest) -> Result<SeatLocks, HoldError> {
        let schedule = request.schedule_id;
        // Whether the stock was resynced from the database since the first try.
        let mut resynced = false;
        for _ in 0..LOCK_ATTEMPTS {
            match self.try_lock(request).await? {
                Acquire::Locked(locks) => return Ok(locks),
                Acquire::Busy { seat, stock } if stock > 0 => {
                    return Err(HoldError::SeatTaken(vec![seat]))
                }
                // "Sold out" only once the database agrees. One request
                // checks at a time; the others believe the stock meanwhile.
                Acquire::Busy { .. } if resynced => return Err(HoldError::SoldOut),
                Acquire::Busy { .. } => {
                    if !self.resync_if_first(schedule, SyncMode::Resync).await? {
                        return Err(HoldError::SoldOut);
                    }
                    resynced = true;
                }
                // Still after a resync: seats the stock cannot count.
                Acquire::Drifted if resynced => {
                    return Err(self.refusal_from_database(request).await)
                }
                // While another request resyncs or loads, look again shortly.
                Acquire::Drifted => {
                    resynced = self.resync_if_first(schedule, SyncMode::Resync).await?;
                    if !resynced {
                        tokio::time::sleep(SYNC_POLL).await;
                    }
                }
                Acquire::Unknown => {
                    if !self.resync_if_first(schedule, SyncMode::Load).await? {
                        tokio::time::sleep(SYNC_POLL).await;
                    }
                }
            }
        }
        Err(HoldError::Contention)
    }

    /// One run of `acquire_locks.lua`. Starts a periodic resync in the
    /// background when the script chose this request for it.
    async fn try_lock(&self, request: &HoldRequest) -> Result<Acquire, HoldError> {
        let keys = self.keys(request.schedule_id);
        let seats = request.seat_ids.as_slice();
        let lock_keys: Vec<String> = seats.iter().map(|s| keys.lock(*s)).collect();
        let owner = uuid::Uuid::new_v4().simple().to_string();
        let mut invocation = self.scripts.acquire_locks.key(keys.stock());
        invocation.key(keys.fence()).key(keys.synced());
        for key in &lock_keys {
            invocation.key(key);
        }
        let answer: Vec<i64> = {
            let mut conn = self.redis();
            invocation
                .arg(&owner)
                .arg(millis(self.settings.lease))
                .arg(millis(self.settings.resync_every))
                .invoke_async(&mut conn)
                .await
                .map_err(redis_down)?
        };
        let field = |i: usize| answer.get(i).copied().unwrap_or_default();
        // Every answer but `{-1}` ends with `due`.
        if answer.len() > 2 && answer.last() == Some(&1) {
            self.resync_in_background(request.schedule_id);
        }
        Ok(match field(0) {
            1 => Acquire::Locked(SeatLocks {
                schedule: request.schedule_id,
                seats: seats.to_vec(),
                keys: lock_keys,
                value: format!("{owner}:{}", field(1)),
                token: field(1),
            }),
            0 => {
                let busy = usize::try_from(field(1) - 1)
                    .ok()
                    .and_then(|i| seats.get(i))
                    .copied()
                    .unwrap_or(seats[0]);
                Acquire::Busy {
                    seat: busy,
                    stock: field(2),
                }
            }
            -2 => Acquire::Drifted,
            _ => Acquire::Unknown,
        })
    }

    /// Step 3: ends the hold's locks. Where the database has the seats
    /// (`written` is the reservation, or refused them as taken), marks them
    /// held, so the next request for them is refused in Redis; elsewhere
    /// deletes them and gives their stock back.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn release_locks(
        &self,
        locks: &SeatLocks,
        written: &Result<Reservation, HoldError>,
    ) -> Result<Released, RepoError> {
        let marks = locks.seats.iter().map(|seat| match written {
            Ok(reservation) => held_mark(Some(reservation.id)),
            Err(HoldError::SeatTaken(taken)) if taken.contains(seat) => held_mark(None),
            Err(_) => String::new(),
        });
        let mut invocation = self
            .scripts
            .release_locks
            .key(self.keys(locks.schedule).stock());
        for key in &locks.keys {
            invocation.key(key);
        }
        invocation
            .arg(&locks.value)
            .arg(millis(self.settings.state_lifetime));
        for mark in marks {
            invocation.arg(mark);
        }
        let mut conn = self.redis();
        let (released, returned): (usize, usize) = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(redis_down)?;
        Ok(Released {
            locks: released,
            stock: returned,
        })
    }

    /// Step 2: the database's part, on a connection taken only now that the
    /// locks are held, so no connection waits on Redis: the seats read, the
    /// checks, then the fenced claim and the writes in one statement.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn write_hold(&self, request: &HoldRequest) -> Result<Reservation, HoldError> {
        let mut conn = self.store.conn().await?;
        let owned = request.clone();
        // Its own task: a dropped caller cannot cut the claim short.
        run_to_completion(async move {
            let seats = read_requested_seats(&mut conn, &owned)
                .await
                .map_err(|e| hold_error(e, &owned))?;
            claim_seats(&mut conn, &owned, &seats)
                .await
                .map_err(|e| e.into_inner(|db| hold_error(db, &owned)))
        })
        .await?
    }

    /// Why the database would refuse a request whose seats Redis counts as
    /// free while its stock, fresh from the database, counts fewer: seats
    /// that are not the schedule's are not in the stock. Read without locks
    /// or a transaction; `Contention` if the database finds nothing wrong.
    async fn refusal_from_database(&self, request: &HoldRequest) -> HoldError {
        let refusal = async {
            let mut conn = self.store.conn().await?;
            let seats = read_requested_seats(&mut conn, request)
                .await
                .map_err(repo_error)?;
            refuse_unholdable(&mut conn, request, &seats)
                .await
                .map_err(repo_error)
        };
        match refusal.await {
            Ok(Err(refused)) => refused,
            Ok(Ok(())) => HoldError::Contention,
            Err(e) => HoldError::Repo(e),
        }
    }

    /// The three steps; the locks are released whatever the outcome.
    async fn hold(&self, request: &HoldRequest) -> Result<Reservation, HoldError> {
        let locks = self.acquire_locks(request).await?;
        let written = self.write_hold(request).await;
        if let Err(e) = self.release_locks(&locks, &written).await {
            // The leases free the seats; their stock comes back at the
            // next resync. The database already decided.
            tracing::warn!(error = %e, token = locks.token, "seat locks not released");
        }
        written
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
        // On its own task: a dropped request still ends its transaction and
        // releases its locks.
        run_to_completion(async move { this.hold(&request).await }).await?
    }

    async fn seats_released(&self, reservation: &Reservation) -> Result<(), RepoError> {
        self.release_stock(reservation).await.map(drop)
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        let Counters {
            resyncs,
            stock_repairs,
        } = &*self.counters;
        vec![
            ("stock_resyncs", resyncs.load(Ordering::Relaxed)),
            ("stock_repairs", stock_repairs.load(Ordering::Relaxed)),
        ]
    }
}
