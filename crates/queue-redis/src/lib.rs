//! The waiting room on Redis (`Queue` port).
//!
//! Keys, one schedule's sharing the hash tag `{s:<id>}` (Redis Cluster ready):
//!
//! ```text
//! prequeue:{s:<id>}       ZSET  user -> arrival number, until the draw
//! queue:{s:<id>}          ZSET  user -> ticket: the line, drawn order then arrival order
//! queue-seq:{s:<id>}      STRING the one counter behind arrival numbers and tickets
//! sale:{s:<id>}           HASH  opened, sold_out, seed, drawn_at, credit, last_ms, epoch
//! passes:{s:<id>}         ZSET  user -> pass expiry (ms): admitted, token unused
//! active:{s:<id>}         ZSET  user -> hold expiry (ms): the pass was used by a hold
//! admissions:{s:<id>}     STREAM every pass handed out (user, token, expiry, time)
//! draw-arrivals:{s:<id>}  LIST  the pre-queue in arrival order (the draw's record)
//! draw-order:{s:<id>}     LIST  the same users in the drawn order
//! admit-times:{s:<id>}    ZSET  recent passes -> when (ms): the measured admission rate
//! token:{s:<id>}:<user>   STRING token, "claimed:<token>" during an attempt,
//!                         "used:<token>" while its hold lives; PX ttl
//! hold:{s:<id>}:<seat>    STRING reservation id, PX until the hold expires
//! queues                  SET   schedules whose room is open (the ticker's list)
//! ```
//!
//! Every state change is one Lua script (each starts with `sale.lua`), so
//! several API instances can enter, tick and redeem at once without a
//! coordinator. A tick costs one round trip however many wait: it reads the
//! head of the line and the passes handed out since its cursor, never the
//! whole line. The `hold:` markers are in `seat_holds.rs`.

use async_trait::async_trait;
use booking_domain::*;
use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::{Rng, RngCore};
use redis::aio::ConnectionManager;
use redis::Script;
use std::sync::Arc;

mod seat_holds;

struct Scripts {
    enter: Script,
    view: Script,
    overview: Script,
    tick: Script,
    restore: Script,
    claim_token: Script,
    restore_token: Script,
    consume_token: Script,
    clear_held: Script,
}

const SALE_LUA: &str = include_str!("sale.lua");

/// A script that starts with the shared functions of `sale.lua`.
fn sale_script(body: &str) -> Script {
    Script::new(&format!("{SALE_LUA}\n{body}"))
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

fn garbled(what: &str) -> RepoError {
    RepoError::unexpected(format!("waiting room script answered an unexpected {what}"))
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(ms: i64) -> Result<DateTime<Utc>, RepoError> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| garbled("time"))
}

/// 128 random bits, hex: unguessable, and safe in a header.
fn fresh_token() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A draw seed the Lua generator takes exactly (below 2^31 - 1).
fn fresh_seed() -> u64 {
    rand::thread_rng().gen_range(1..2_147_483_647)
}

fn parse_user(raw: &str) -> Option<UserId> {
    raw.parse().ok().map(UserId)
}

/// Reads a script's flat answer field by field.
struct Answer(std::vec::IntoIter<String>);

impl Answer {
    fn text(&mut self) -> Result<String, RepoError> {
        self.0.next().ok_or_else(|| garbled("length"))
    }

    fn int(&mut self) -> Result<i64, RepoError> {
        self.text()?.parse().map_err(|_| garbled("number"))
    }

    fn count(&mut self) -> Result<u64, RepoError> {
        u64::try_from(self.int()?).map_err(|_| garbled("count"))
    }

    /// `sale_state()` of sale.lua.
    fn sale(&mut self) -> Result<SaleState, RepoError> {
        let opened = self.int()? == 1;
        let sold_out = self.int()? == 1;
        let waiting = self.count()?;
        let recent = self.int()?;
        let window_ms = self.int()?;
        let admission_rate = if window_ms > 0 {
            recent as f64 * 1000.0 / window_ms as f64
        } else {
            0.0
        };
        Ok(SaleState {
            opened,
            sold_out,
            waiting,
            admission_rate,
        })
    }

    /// `view_of()` of sale.lua.
    fn view(&mut self) -> Result<RoomView, RepoError> {
        let kind = self.text()?;
        let ticket = self.count()?;
        let position = self.count()?;
        let token = self.text()?;
        let pass_until = self.int()?;
        let place = match kind.as_str() {
            "none" => None,
            "pre" => Some(Place::PreQueue),
            "line" => Some(Place::InLine { ticket, position }),
            "admitted" => Some(Place::Admitted(EntryToken {
                token,
                expires_at: from_ms(pass_until)?,
            })),
            "holding" => Some(Place::Holding),
            _ => return Err(garbled("place")),
        };
        Ok(RoomView {
            place,
            sale: self.sale()?,
        })
    }
}

async fn run(
    conn: &mut ConnectionManager,
    invocation: &redis::ScriptInvocation<'_>,
) -> Result<Answer, RepoError> {
    let fields: Vec<String> = invocation.invoke_async(conn).await.map_err(redis_down)?;
    Ok(Answer(fields.into_iter()))
}

impl RedisQueue {
    /// `redis` is the instance's shared connection; `prefix` is prepended
    /// to every key (tests, tenants); `token_ttl` is how long an entry
    /// token, and so an unused pass, lives.
    pub fn new(redis: ConnectionManager, prefix: impl Into<String>, token_ttl: Duration) -> Self {
        let scripts = Scripts {
            enter: sale_script(include_str!("enter.lua")),
            view: sale_script(include_str!("view.lua")),
            overview: sale_script(include_str!("overview.lua")),
            tick: sale_script(include_str!("tick.lua")),
            restore: sale_script(include_str!("restore.lua")),
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

    /// KEYS[1..10] of every script that starts with `sale.lua`.
    fn sale_keys<'s>(
        &self,
        script: &'s Script,
        schedule: ScheduleId,
    ) -> redis::ScriptInvocation<'s> {
        let mut invocation = script.prepare_invoke();
        for kind in [
            "prequeue",
            "queue",
            "queue-seq",
            "sale",
            "passes",
            "active",
            "admissions",
            "draw-arrivals",
            "draw-order",
            "admit-times",
        ] {
            invocation.key(self.key(kind, schedule));
        }
        invocation
    }

    /// Puts the room in the ticker's list. Outside the scripts: the list is
    /// not in the schedule's hash slot.
    async fn list_room(
        &self,
        conn: &mut ConnectionManager,
        schedule: ScheduleId,
    ) -> Result<(), RepoError> {
        redis::cmd("SADD")
            .arg(self.index_key())
            .arg(schedule.0)
            .query_async::<()>(conn)
            .await
            .map_err(redis_down)
    }

    /// A handle on the shared connection: no I/O, no wait.
    fn conn(&self) -> ConnectionManager {
        self.redis.clone()
    }
}

fn opens_at_arg(opens_at: Option<DateTime<Utc>>) -> String {
    opens_at.map(|t| ms(t).to_string()).unwrap_or_default()
}

#[async_trait]
impl Queue for RedisQueue {
    async fn enter(
        &self,
        schedule: ScheduleId,
        user: UserId,
        opens_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<RoomView, RepoError> {
        let mut invocation = self.sale_keys(&self.scripts.enter, schedule);
        invocation
            .key(self.token_key(schedule, user))
            .arg(user.0)
            .arg(ms(now))
            .arg(opens_at_arg(opens_at))
            .arg(fresh_seed());
        let mut conn = self.conn();
        let view = run(&mut conn, &invocation).await?.view()?;
        if !view.sale.sold_out {
            self.list_room(&mut conn, schedule).await?;
        }
        Ok(view)
    }

    async fn view(
        &self,
        schedule: ScheduleId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<RoomView, RepoError> {
        let mut invocation = self.sale_keys(&self.scripts.view, schedule);
        invocation
            .key(self.token_key(schedule, user))
            .arg(user.0)
            .arg(ms(now));
        run(&mut self.conn(), &invocation).await?.view()
    }

    async fn tickets(
        &self,
        schedule: ScheduleId,
        users: &[UserId],
    ) -> Result<Vec<Option<u64>>, RepoError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("ZMSCORE");
        cmd.arg(self.key("queue", schedule));
        for user in users {
            cmd.arg(user.0);
        }
        let scores: Vec<Option<f64>> = cmd
            .query_async(&mut self.conn())
            .await
            .map_err(redis_down)?;
        Ok(scores
            .into_iter()
            .map(|s| s.map(|ticket| ticket as u64))
            .collect())
    }

    async fn tick(
        &self,
        schedule: ScheduleId,
        plan: &AdmissionPlan,
        cursor: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<SaleTick, RepoError> {
        let mut invocation = self.sale_keys(&self.scripts.tick, schedule);
        invocation
            .arg(ms(now))
            .arg(opens_at_arg(plan.opens_at))
            .arg(fresh_seed())
            .arg(plan.rate_per_sec)
            .arg(plan.burst)
            .arg(plan.active_limit)
            .arg(plan.pass_limit)
            .arg(u8::from(plan.sold_out))
            .arg(self.token_ttl.num_milliseconds())
            .arg(format!("{}:", self.key("token", schedule)))
            .arg(cursor.unwrap_or(""))
            .arg(fresh_token());
        for _ in 0..plan.burst {
            invocation.arg(fresh_token());
        }
        let mut answer = run(&mut self.conn(), &invocation).await?;
        let sale = answer.sale()?;
        let head = u64::try_from(answer.int()?).ok();
        let passes = answer.count()?;
        let holding = answer.count()?;
        let handed_out = answer.count()?;
        let cursor = answer.text()?;
        let epoch = answer.text()?;
        let mut admitted = Vec::new();
        while let Ok(user) = answer.text() {
            let user = parse_user(&user).ok_or_else(|| garbled("user"))?;
            let token = answer.text()?;
            let expires_at = from_ms(answer.int()?)?;
            let admitted_at = from_ms(answer.int()?)?;
            let ticket = answer.count()?;
            admitted.push(Pass {
                user,
                ticket,
                token: EntryToken { token, expires_at },
                admitted_at,
            });
        }
        if sale.sold_out {
            // The room is done: the ticker stops visiting it.
            redis::cmd("SREM")
                .arg(self.index_key())
                .arg(schedule.0)
                .query_async::<()>(&mut self.conn())
                .await
                .map_err(redis_down)?;
        }
        Ok(SaleTick {
            sale,
            head,
            passes,
            holding,
            handed_out,
            admitted,
            cursor,
            epoch,
        })
    }

    async fn restore(
        &self,
        schedule: ScheduleId,
        places: &[KnownPlace],
    ) -> Result<RestoredPlaces, RepoError> {
        let mut invocation = self.sale_keys(&self.scripts.restore, schedule);
        for place in places {
            invocation
                .arg(place.user.0)
                .arg(place.ticket.map(|t| t.to_string()).unwrap_or_default());
        }
        let mut conn = self.conn();
        let mut answer = run(&mut conn, &invocation).await?;
        let head = u64::try_from(answer.int()?).ok();
        let tickets = places
            .iter()
            .map(|_| Ok(u64::try_from(answer.int()?).ok()))
            .collect::<Result<_, RepoError>>()?;
        // The index went with the rest: the ticker of every instance visits
        // the room again.
        self.list_room(&mut conn, schedule).await?;
        Ok(RestoredPlaces { head, tickets })
    }

    async fn open_rooms(&self) -> Result<Vec<ScheduleId>, RepoError> {
        let known: Vec<i64> = redis::cmd("SMEMBERS")
            .arg(self.index_key())
            .query_async(&mut self.conn())
            .await
            .map_err(redis_down)?;
        Ok(known.into_iter().map(ScheduleId).collect())
    }

    async fn draw_record(&self, schedule: ScheduleId) -> Result<Option<DrawRecord>, RepoError> {
        let (seed, drawn_at, arrivals, drawn): (Option<u64>, Option<i64>, Vec<i64>, Vec<i64>) =
            redis::pipe()
                .cmd("HGET")
                .arg(self.key("sale", schedule))
                .arg("seed")
                .cmd("HGET")
                .arg(self.key("sale", schedule))
                .arg("drawn_at")
                .cmd("LRANGE")
                .arg(self.key("draw-arrivals", schedule))
                .arg(0)
                .arg(-1)
                .cmd("LRANGE")
                .arg(self.key("draw-order", schedule))
                .arg(0)
                .arg(-1)
                .query_async(&mut self.conn())
                .await
                .map_err(redis_down)?;
        let (Some(seed), Some(drawn_at)) = (seed, drawn_at) else {
            return Ok(None);
        };
        Ok(Some(DrawRecord {
            schedule,
            seed,
            drawn_at: from_ms(drawn_at)?,
            arrivals: arrivals.into_iter().map(UserId).collect(),
            drawn: drawn.into_iter().map(UserId).collect(),
        }))
    }

    async fn claim_token(
        &self,
        schedule: ScheduleId,
        user: UserId,
        token: &str,
        _now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let claimed: i64 = self
            .scripts
            .claim_token
            .key(self.token_key(schedule, user))
            .arg(token)
            .invoke_async(&mut self.conn())
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
        self.scripts
            .restore_token
            .key(self.token_key(schedule, user))
            .arg(token)
            .invoke_async::<i64>(&mut self.conn())
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
        self.scripts
            .consume_token
            .key(self.token_key(schedule, user))
            .key(self.key("passes", schedule))
            .key(self.key("active", schedule))
            .arg(token)
            .arg(user.0)
            .arg(ms(until))
            .arg(ms(Utc::now()))
            .invoke_async::<i64>(&mut self.conn())
            .await
            .map(drop)
            .map_err(redis_down)
    }

    async fn free_slot(&self, schedule: ScheduleId, user: UserId) -> Result<(), RepoError> {
        redis::pipe()
            .atomic()
            .cmd("ZREM")
            .arg(self.key("passes", schedule))
            .arg(user.0)
            .ignore()
            .cmd("ZREM")
            .arg(self.key("active", schedule))
            .arg(user.0)
            .ignore()
            .cmd("DEL")
            .arg(self.token_key(schedule, user))
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(redis_down)
    }

    async fn stats(
        &self,
        schedule: ScheduleId,
        now: DateTime<Utc>,
    ) -> Result<QueueStats, RepoError> {
        let live = format!("({}", ms(now));
        let (pre, line, passes, holding): (u64, u64, u64, u64) = redis::pipe()
            .cmd("ZCARD")
            .arg(self.key("prequeue", schedule))
            .cmd("ZCARD")
            .arg(self.key("queue", schedule))
            .cmd("ZCOUNT")
            .arg(self.key("passes", schedule))
            .arg(&live)
            .arg("+inf")
            .cmd("ZCOUNT")
            .arg(self.key("active", schedule))
            .arg(&live)
            .arg("+inf")
            .query_async(&mut self.conn())
            .await
            .map_err(redis_down)?;
        Ok(QueueStats {
            waiting: pre + line,
            active: passes + holding,
        })
    }

    async fn overview(
        &self,
        schedule: ScheduleId,
        now: DateTime<Utc>,
    ) -> Result<RoomOverview, RepoError> {
        let mut invocation = self.sale_keys(&self.scripts.overview, schedule);
        invocation.arg(ms(now));
        let mut answer = run(&mut self.conn(), &invocation).await?;
        Ok(RoomOverview {
            sale: answer.sale()?,
            passes: answer.count()?,
            holding: answer.count()?,
        })
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
