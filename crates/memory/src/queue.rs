//! `MemoryQueue`: the waiting room in memory, shaped like the Redis one.
//!
//! Per schedule: a waiting list in arrival order (`queue:` ZSET), a window of
//! slots user -> until when it is taken (the active set, scored by expiry),
//! entry tokens user -> (token, expiry, claimed) (`token:` keys), and the
//! seat-hold markers (`hold:` keys). Everything sits behind one mutex that is
//! never held across an `.await`, so every call is atomic, like one Lua script.

use async_trait::async_trait;
use booking_domain::{
    EntryToken, Queue, QueuePosition, QueueStats, RepoError, ReservationId, ScheduleId, SeatId,
    UserId,
};
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Clone)]
pub struct MemoryQueue {
    rooms: Arc<Mutex<Rooms>>,
    token_ttl: Duration,
}

impl MemoryQueue {
    /// The entry-token lifetime of ARCHITECTURE.md.
    pub const DEFAULT_TOKEN_TTL: Duration = Duration::minutes(5);

    pub fn new(token_ttl: Duration) -> Self {
        Self {
            rooms: Arc::default(),
            token_ttl,
        }
    }

    fn rooms(&self) -> Result<MutexGuard<'_, Rooms>, RepoError> {
        self.rooms
            .lock()
            .map_err(|_| RepoError::unexpected("memory queue lock poisoned by a panic"))
    }
}

impl Default for MemoryQueue {
    fn default() -> Self {
        Self::new(Self::DEFAULT_TOKEN_TTL)
    }
}

#[derive(Debug, Default)]
struct Rooms {
    /// One counter for every room: arrival order is strict, never a tie.
    arrivals: u64,
    by_schedule: HashMap<ScheduleId, Room>,
}

#[derive(Debug, Default)]
struct Room {
    /// Arrival number -> user, for the users still waiting.
    waiting: BTreeMap<u64, UserId>,
    arrival_of: HashMap<UserId, u64>,
    /// Admitted user -> until when their slot is taken. Expired entries
    /// count for nothing and are swept by `admit_next`.
    slots: HashMap<UserId, DateTime<Utc>>,
    tokens: HashMap<UserId, Token>,
    holds: HashMap<SeatId, HoldMarker>,
}

#[derive(Debug)]
struct Token {
    token: String,
    expires_at: DateTime<Utc>,
    /// A reservation attempt is using it right now.
    claimed: bool,
}

impl Token {
    fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at > now
    }
}

#[derive(Debug)]
struct HoldMarker {
    #[allow(dead_code)] // kept like the `hold:` key's value, for debugging
    reservation: ReservationId,
    until: DateTime<Utc>,
}

impl Room {
    fn has_slot(&self, user: UserId, now: DateTime<Utc>) -> bool {
        self.slots.get(&user).is_some_and(|until| *until > now)
    }

    /// Admitted: a live unused token, or a slot still taken.
    fn is_admitted(&self, user: UserId, now: DateTime<Utc>) -> bool {
        self.has_slot(user, now) || self.tokens.get(&user).is_some_and(|t| t.is_live(now))
    }

    fn occupied(&self, now: DateTime<Utc>) -> usize {
        self.slots.values().filter(|until| **until > now).count()
    }

    fn waiting_count(&self) -> u64 {
        self.waiting.len() as u64
    }

    fn admitted_position(&self) -> QueuePosition {
        QueuePosition {
            position: 0,
            waiting: self.waiting_count(),
            admitted: true,
        }
    }

    fn waiting_position(&self, place: u64) -> QueuePosition {
        QueuePosition {
            position: place,
            waiting: self.waiting_count(),
            admitted: false,
        }
    }

    /// 1-based place among those waiting (ZRANK + 1).
    fn place_in_line(&self, user: UserId) -> Option<u64> {
        let arrival = *self.arrival_of.get(&user)?;
        Some(self.waiting.range(..arrival).count() as u64 + 1)
    }

    /// `place` answers "where does this user wait", so `positions` can
    /// rank everyone in one pass.
    fn position_of(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        place: impl Fn(UserId) -> Option<u64>,
    ) -> Option<QueuePosition> {
        if self.is_admitted(user, now) {
            return Some(self.admitted_position());
        }
        place(user).map(|p| self.waiting_position(p))
    }

    /// What Redis expiry does on its own: expired slots and tokens go.
    fn sweep_expired(&mut self, now: DateTime<Utc>) {
        self.slots.retain(|_, until| *until > now);
        self.tokens.retain(|_, t| t.is_live(now));
    }
}

/// 128 random bits, hex-encoded: unguessable, so a token cannot be forged.
fn new_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().fold(String::with_capacity(32), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn enter(
        &self,
        schedule: ScheduleId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<QueuePosition, RepoError> {
        let mut rooms = self.rooms()?;
        let Rooms {
            arrivals,
            by_schedule,
        } = &mut *rooms;
        let room = by_schedule.entry(schedule).or_default();
        if room.is_admitted(user, now) {
            return Ok(room.admitted_position());
        }
        if let Some(place) = room.place_in_line(user) {
            return Ok(room.waiting_position(place));
        }
        // A spent or expired admission keeps no place: queue at the back.
        room.slots.remove(&user);
        room.tokens.remove(&user);
        *arrivals += 1;
        room.waiting.insert(*arrivals, user);
        room.arrival_of.insert(user, *arrivals);
        // The newest arrival is last in line.
        Ok(room.waiting_position(room.waiting_count()))
    }

    async fn position(
        &self,
        schedule: ScheduleId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<QueuePosition>, RepoError> {
        let rooms = self.rooms()?;
        Ok(rooms
            .by_schedule
            .get(&schedule)
            .and_then(|room| room.position_of(user, now, |u| room.place_in_line(u))))
    }

    async fn positions(
        &self,
        schedule: ScheduleId,
        users: &[UserId],
        now: DateTime<Utc>,
    ) -> Result<Vec<Option<QueuePosition>>, RepoError> {
        let rooms = self.rooms()?;
        let Some(room) = rooms.by_schedule.get(&schedule) else {
            return Ok(vec![None; users.len()]);
        };
        // One pass over the line instead of one per user.
        let places: HashMap<UserId, u64> = room
            .waiting
            .values()
            .zip(1..)
            .map(|(user, place)| (*user, place))
            .collect();
        Ok(users
            .iter()
            .map(|user| room.position_of(*user, now, |u| places.get(&u).copied()))
            .collect())
    }

    async fn admit_next(
        &self,
        schedule: ScheduleId,
        active_limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<UserId>, RepoError> {
        let mut rooms = self.rooms()?;
        let Some(room) = rooms.by_schedule.get_mut(&schedule) else {
            return Ok(Vec::new());
        };
        room.sweep_expired(now);
        let expires_at = now + self.token_ttl;
        let mut admitted = Vec::new();
        while room.slots.len() < active_limit {
            let Some((_, user)) = room.waiting.pop_first() else {
                break;
            };
            room.arrival_of.remove(&user);
            room.slots.insert(user, expires_at);
            room.tokens.insert(
                user,
                Token {
                    token: new_token(),
                    expires_at,
                    claimed: false,
                },
            );
            admitted.push(user);
        }
        Ok(admitted)
    }

    async fn schedules_waiting(&self) -> Result<Vec<ScheduleId>, RepoError> {
        let rooms = self.rooms()?;
        let mut schedules: Vec<ScheduleId> = rooms
            .by_schedule
            .iter()
            .filter(|(_, room)| !room.waiting.is_empty())
            .map(|(schedule, _)| *schedule)
            .collect();
        schedules.sort_unstable();
        Ok(schedules)
    }

    async fn entry_token(
        &self,
        schedule: ScheduleId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<EntryToken>, RepoError> {
        let rooms = self.rooms()?;
        Ok(rooms
            .by_schedule
            .get(&schedule)
            .and_then(|room| room.tokens.get(&user))
            .filter(|t| t.is_live(now))
            .map(|t| EntryToken {
                token: t.token.clone(),
                expires_at: t.expires_at,
            }))
    }

    async fn claim_token(
        &self,
        schedule: ScheduleId,
        user: UserId,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let mut rooms = self.rooms()?;
        let Some(found) = rooms
            .by_schedule
            .get_mut(&schedule)
            .and_then(|room| room.tokens.get_mut(&user))
        else {
            return Ok(false);
        };
        if found.claimed || !found.is_live(now) || found.token != token {
            return Ok(false);
        }
        found.claimed = true;
        Ok(true)
    }

    async fn restore_token(
        &self,
        schedule: ScheduleId,
        user: UserId,
        token: &str,
    ) -> Result<(), RepoError> {
        let mut rooms = self.rooms()?;
        if let Some(found) = rooms
            .by_schedule
            .get_mut(&schedule)
            .and_then(|room| room.tokens.get_mut(&user))
            .filter(|t| t.token == token)
        {
            found.claimed = false;
        }
        Ok(())
    }

    async fn consume_token(
        &self,
        schedule: ScheduleId,
        user: UserId,
        token: &str,
        until: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let mut rooms = self.rooms()?;
        let room = rooms.by_schedule.entry(schedule).or_default();
        if room.tokens.get(&user).is_some_and(|t| t.token == token) {
            room.tokens.remove(&user);
        }
        // The hold exists whatever happened to the token meanwhile (expired
        // mid-attempt): its slot counts until the hold ends.
        room.slots.insert(user, until);
        Ok(())
    }

    /// Also drops an unused token: a token must not outlive its slot, or
    /// its user could hold seats outside the window.
    async fn free_slot(&self, schedule: ScheduleId, user: UserId) -> Result<(), RepoError> {
        let mut rooms = self.rooms()?;
        if let Some(room) = rooms.by_schedule.get_mut(&schedule) {
            room.slots.remove(&user);
            room.tokens.remove(&user);
        }
        Ok(())
    }

    async fn stats(
        &self,
        schedule: ScheduleId,
        now: DateTime<Utc>,
    ) -> Result<QueueStats, RepoError> {
        let rooms = self.rooms()?;
        Ok(rooms
            .by_schedule
            .get(&schedule)
            .map(|room| QueueStats {
                waiting: room.waiting_count(),
                active: room.occupied(now) as u64,
            })
            .unwrap_or_default())
    }

    async fn mark_held(
        &self,
        schedule: ScheduleId,
        seats: &[SeatId],
        reservation: ReservationId,
        until: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let mut rooms = self.rooms()?;
        let room = rooms.by_schedule.entry(schedule).or_default();
        for seat in seats {
            room.holds.insert(*seat, HoldMarker { reservation, until });
        }
        Ok(())
    }

    async fn clear_held(
        &self,
        schedule: ScheduleId,
        seats: &[SeatId],
        reservation: ReservationId,
    ) -> Result<(), RepoError> {
        let mut rooms = self.rooms()?;
        if let Some(room) = rooms.by_schedule.get_mut(&schedule) {
            for seat in seats {
                if room
                    .holds
                    .get(seat)
                    .is_some_and(|m| m.reservation == reservation)
                {
                    room.holds.remove(seat);
                }
            }
        }
        Ok(())
    }

    /// The port passes no `now` here: markers expire by the wall clock,
    /// as Redis keys do.
    async fn held_seats(&self, schedule: ScheduleId) -> Result<Vec<SeatId>, RepoError> {
        let now = Utc::now();
        let mut rooms = self.rooms()?;
        let Some(room) = rooms.by_schedule.get_mut(&schedule) else {
            return Ok(Vec::new());
        };
        room.holds.retain(|_, marker| marker.until > now);
        let mut seats: Vec<SeatId> = room.holds.keys().copied().collect();
        seats.sort_unstable();
        Ok(seats)
    }
}
