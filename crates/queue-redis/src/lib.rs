//! The waiting room on Redis (`Queue` port).
//!
//! Keys, one schedule's sharing the hash tag `{s:<id>}` (Redis Cluster ready):
//!
//! ```text
//! queue:{s:<id>}              ZSET  user -> arrival number (ZADD NX)
//! queue-seq:{s:<id>}          STRING arrival counter (INCR)
//! active:{s:<id>}             ZSET  user -> slot expiry (ms): the admission window
//! token:{s:<id>}:<user>       STRING entry token ("claimed:<token>" during an attempt), PX ttl
//! hold:{s:<id>}:<seat>        STRING reservation id, PX until the hold expires
//!                             (cleared only by its own reservation)
//! queues                      SET   schedules that ever had a queue (the admitter's list)
//! ```
//!
//! Every state change is one Lua script, so several API instances can enter,
//! admit and redeem at once without a coordinator: admission pops the queue
//! and fills the window in one atomic step. The `hold:` markers are in
//! `seat_holds.rs`.

use async_trait::async_trait;
use booking_domain::*;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use redis::aio::ConnectionManager;
use redis::Script;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

mod seat_holds;

struct Scripts {
    enter: Script,
    admit: Script,
    claim_token: Script,
    restore_token: Script,
    consume_token: Script,
    clear_held: Script,
}

#[derive(Clone)]
pub struct RedisQueue {
    /// Shared with every clone (and the redis strategy): one pipelined connection.
    redis: ConnectionManager,
    prefix: String,
    token_ttl: Duration,
    scripts: Arc<Scripts>,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("prefix", &self.prefix)
            .field("token_ttl", &self.token_ttl)
            .finish_non_exhaustive()
    }
}

fn redis_down(e: impl std::fmt::Display) -> RepoError {
    RepoError::Unavailable(format!("redis: {e}"))
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// 128 random bits, hex: unguessable, and safe in a header.
fn fresh_token() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_user(raw: &str) -> Option<UserId> {
    raw.parse().ok().map(UserId)
}

impl RedisQueue {
    /// `redis` is the instance's shared connection; `prefix` is prepended
    /// to every key (tests, tenants); `token_ttl` is how long an entry
    /// token, and so an unused slot, lives.
    pub fn new(redis: ConnectionManager, prefix: impl Into<String>, token_ttl: Duration) -> Self {
        let scripts = Scripts {
            enter: Script::new(include_str!("enter.lua")),
            admit: Script::new(include_str!("admit.lua")),
            claim_token: Script::new(include_str!("claim_token.lua")),
            restore_token: Script::new(include_str!("restore_token.lua")),
            consume_token: Script::new(include_str!("consume_token.lua")),
            clear_held: Script::new(include_str!("clear_held.lua")),
        };
        Self {
            redis,
            prefix: prefix.into(),
            token_ttl,
            scripts: Arc::new(scripts),
        }
    }

    fn key(&self, kind: &str, schedule: ScheduleId) -> String {
        format!("{}{kind}:{{s:{schedule}}}", self.prefix)
    }

    fn token_key(&self, schedule: ScheduleId, user: UserId) -> String {
        format!("{}:{user}", self.key("token", schedule))
    }

    fn index_key(&self) -> String {
        format!("{}queues", self.prefix)
    }

    /// A handle on the shared connection: no I/O, no wait.
    fn conn(&self) -> ConnectionManager {
        self.redis.clone()
    }
}

#[async_trait]
impl Queue for RedisQueue {
    async fn enter(
        &self,
        schedule: ScheduleId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<QueuePosition, RepoError> {
        let mut conn = self.conn();
        let (position, waiting, admitted): (u64, u64, u8) = self
            .scripts
            .enter
            .key(self.key("queue", schedule))
            .key(self.key("queue-seq", schedule))
            .key(self.key("active", schedule))
            .arg(user.0)
            .arg(ms(now))
            .invoke_async(&mut conn)
            .await
            .map_err(redis_down)?;
        // Outside the script: the index is not in the schedule's hash slot.
        redis::cmd("SADD")
            .arg(self.index_key())
            .arg(schedule.0)
            .query_async::<()>(&mut conn)
            .await
            .map_err(redis_down)?;
        Ok(QueuePosition {
            position,
            waiting,
            admitted: admitted == 1,
        })
    }

    /// One user: three O(log n) reads in one round trip, not the whole
    /// queue (that is for the once-a-tick batch in `positions`).
    async fn position(
        &self,
        schedule: ScheduleId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<QueuePosition>, RepoError> {
        let mut conn = self.conn();
        let (slot, rank, waiting): (Option<f64>, Option<u64>, u64) = redis::pipe()
            .cmd("ZSCORE")
            .arg(self.key("active", schedule))
            .arg(user.0)
            .cmd("ZRANK")
            .arg(self.key("queue", schedule))
            .arg(user.0)
            .cmd("ZCARD")
            .arg(self.key("queue", schedule))
            .query_async(&mut conn)
            .await
            .map_err(redis_down)?;
        if slot.is_some_and(|until| until > ms(now) as f64) {
            return Ok(Some(QueuePosition {
                position: 0,
                waiting,
                admitted: true,
            }));
        }
        Ok(rank.map(|r| QueuePosition {
            position: r + 1,
            waiting,
            admitted: false,
        }))
    }

    async fn positions(
        &self,
        schedule: ScheduleId,
        users: &[UserId],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<QueuePosition>>, RepoError> {
        let mut conn = self.conn();
        // Two reads for any number of users: the whole queue in order, and
        // the live slots.
        let (queue, active): (Vec<String>, Vec<String>) = redis::pipe()
            .cmd("ZRANGE")
            .arg(self.key("queue", schedule))
            .arg(0)
            .arg(-1)
            .cmd("ZRANGE")
            .arg(self.key("active", schedule))
            .arg(format!("({}", ms(now)))
            .arg("+inf")
            .arg("BYSCORE")
            .query_async(&mut conn)
            .await
            .map_err(redis_down)?;
        let waiting = queue.len() as u64;
        let rank: HashMap<UserId, u64> = queue
            .iter()
            .enumerate()
            .filter_map(|(i, u)| Some((parse_user(u)?, i as u64 + 1)))
            .collect();
        let admitted: HashSet<UserId> = active.iter().filter_map(|u| parse_user(u)).collect();
        Ok(users
            .iter()
            .map(|user| {
                if admitted.contains(user) {
                    Some(QueuePosition {
                        position: 0,
                        waiting,
                        admitted: true,
                    })
                } else {
                    rank.get(user).map(|&position| QueuePosition {
                        position,
                        waiting,
                        admitted: false,
                    })
                }
            })
            .collect())
    }

    async fn admit_next(
        &self,
        schedule: ScheduleId,
        active_limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<UserId>, RepoError> {
        let mut invocation = self.scripts.admit.prepare_invoke();
        invocation
            .key(self.key("queue", schedule))
            .key(self.key("active", schedule))
            .arg(ms(now))
            .arg(active_limit)
            .arg(self.token_ttl.num_milliseconds())
            .arg(format!("{}:", self.key("token", schedule)));
        for _ in 0..active_limit {
            invocation.arg(fresh_token());
        }
        let mut conn = self.conn();
        let admitted: Vec<String> = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(redis_down)?;
        Ok(admitted.iter().filter_map(|u| parse_user(u)).collect())
    }

    async fn schedules_waiting(&self) -> Result<Vec<ScheduleId>, RepoError> {
        let mut conn = self.conn();
        let known: Vec<i64> = redis::cmd("SMEMBERS")
            .arg(self.index_key())
            .query_async(&mut conn)
            .await
            .map_err(redis_down)?;
        let mut pipe = redis::pipe();
        for id in &known {
            pipe.cmd("ZCARD").arg(self.key("queue", ScheduleId(*id)));
        }
        let sizes: Vec<u64> = pipe.query_async(&mut conn).await.map_err(redis_down)?;
        Ok(known
            .into_iter()
            .zip(sizes)
            .filter(|(_, waiting)| *waiting > 0)
            .map(|(id, _)| ScheduleId(id))
            .collect())
    }

    async fn entry_token(
        &self,
        schedule: ScheduleId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<EntryToken>, RepoError> {
        let mut conn = self.conn();
        let key = self.token_key(schedule, user);
        let (token, ttl_ms): (Option<String>, i64) = redis::pipe()
            .cmd("GET")
            .arg(&key)
            .cmd("PTTL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .map_err(redis_down)?;
        Ok(token
            .filter(|t| !t.starts_with("claimed:") && ttl_ms > 0)
            .map(|token| EntryToken {
                token,
                expires_at: now + Duration::milliseconds(ttl_ms),
            }))
    }

    async fn claim_token(
        &self,
        schedule: ScheduleId,
        user: UserId,
        token: &str,
        _now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let mut conn = self.conn();
        let claimed: i64 = self
            .scripts
            .claim_token
            .key(self.token_key(schedule, user))
            .arg(token)
            .invoke_async(&mut conn)
            .await
            .map_err(redis_down)?;
        Ok(claimed == 1)
    }

    async fn restore_token(
        &self,
        schedule: ScheduleId,
        user: UserId,
        token: &str,
    ) -> Result<(), RepoError> {
        let mut conn = self.conn();
        self.scripts
            .restore_token
            .key(self.token_key(schedule, user))
            .arg(token)
            .invoke_async::<i64>(&mut conn)
            .await
            .map(drop)
            .map_err(redis_down)
    }

    async fn consume_token(
        &self,
        schedule: ScheduleId,
        user: UserId,
        token: &str,
        until: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let mut conn = self.conn();
        self.scripts
            .consume_token
            .key(self.token_key(schedule, user))
            .key(self.key("active", schedule))
            .arg(token)
            .arg(user.0)
            .arg(ms(until))
            .invoke_async::<i64>(&mut conn)
            .await
            .map(drop)
            .map_err(redis_down)
    }

    /// Also drops an unused token: it must not outlive its slot.
    async fn free_slot(&self, schedule: ScheduleId, user: UserId) -> Result<(), RepoError> {
        let mut conn = self.conn();
        redis::pipe()
            .atomic()
            .cmd("ZREM")
            .arg(self.key("active", schedule))
            .arg(user.0)
            .ignore()
            .cmd("DEL")
            .arg(self.token_key(schedule, user))
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(redis_down)
    }

    async fn stats(
        &self,
        schedule: ScheduleId,
        now: DateTime<Utc>,
    ) -> Result<QueueStats, RepoError> {
        let mut conn = self.conn();
        let (waiting, active): (u64, u64) = redis::pipe()
            .cmd("ZCARD")
            .arg(self.key("queue", schedule))
            .cmd("ZCOUNT")
            .arg(self.key("active", schedule))
            .arg(format!("({}", ms(now)))
            .arg("+inf")
            .query_async(&mut conn)
            .await
            .map_err(redis_down)?;
        Ok(QueueStats { waiting, active })
    }

    async fn mark_held(
        &self,
        schedule: ScheduleId,
        seats: &[SeatId],
        reservation: ReservationId,
        until: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        self.write_hold_markers(schedule, seats, reservation, until)
            .await
    }

    async fn clear_held(
        &self,
        schedule: ScheduleId,
        seats: &[SeatId],
        reservation: ReservationId,
    ) -> Result<(), RepoError> {
        self.clear_hold_markers(schedule, seats, reservation).await
    }

    async fn held_seats(&self, schedule: ScheduleId) -> Result<Vec<SeatId>, RepoError> {
        self.scan_hold_markers(schedule).await
    }
}
