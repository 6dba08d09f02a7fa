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

#[cfg(test)]
mod tests {
    use super::*;

    const S: ScheduleId = ScheduleId(1);
    const TTL: Duration = Duration::seconds(60);

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    fn waiting(position: u64, of: u64) -> QueuePosition {
        QueuePosition {
            position,
            waiting: of,
            admitted: false,
        }
    }

    fn admitted(waiting: u64) -> QueuePosition {
        QueuePosition {
            position: 0,
            waiting,
            admitted: true,
        }
    }

    /// `users` enter in order, then `admit` of them are let in.
    async fn queue_with(users: i64, admit: usize, at: DateTime<Utc>) -> MemoryQueue {
        let queue = MemoryQueue::new(TTL);
        for user in 1..=users {
            queue.enter(S, UserId(user), at).await.unwrap();
        }
        queue.admit_next(S, admit, at).await.unwrap();
        queue
    }

    async fn token_of(queue: &MemoryQueue, user: i64, at: DateTime<Utc>) -> String {
        queue
            .entry_token(S, UserId(user), at)
            .await
            .unwrap()
            .unwrap()
            .token
    }

    #[tokio::test]
    async fn arrival_order_is_queue_order() {
        let queue = MemoryQueue::new(TTL);
        let at = now();
        assert_eq!(queue.enter(S, UserId(7), at).await.unwrap(), waiting(1, 1));
        assert_eq!(queue.enter(S, UserId(3), at).await.unwrap(), waiting(2, 2));
        assert_eq!(queue.enter(S, UserId(9), at).await.unwrap(), waiting(3, 3));
        assert_eq!(
            queue.position(S, UserId(3), at).await.unwrap(),
            Some(waiting(2, 3))
        );

        assert_eq!(
            queue.admit_next(S, 2, at).await.unwrap(),
            [UserId(7), UserId(3)]
        );
        assert_eq!(
            queue.position(S, UserId(9), at).await.unwrap(),
            Some(waiting(1, 1))
        );
        assert_eq!(
            queue.position(S, UserId(7), at).await.unwrap(),
            Some(admitted(1))
        );
    }

    #[tokio::test]
    async fn entering_twice_keeps_the_first_place() {
        let queue = MemoryQueue::new(TTL);
        let at = now();
        queue.enter(S, UserId(1), at).await.unwrap();
        queue.enter(S, UserId(2), at).await.unwrap();
        assert_eq!(queue.enter(S, UserId(1), at).await.unwrap(), waiting(1, 2));
        assert_eq!(queue.stats(S, at).await.unwrap().waiting, 2);
    }

    #[tokio::test]
    async fn a_stranger_has_no_position() {
        let queue = queue_with(1, 0, now()).await;
        assert_eq!(queue.position(S, UserId(9), now()).await.unwrap(), None);
        assert_eq!(
            queue
                .position(ScheduleId(2), UserId(1), now())
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn an_admitted_user_entering_again_stays_admitted_until_the_slot_is_freed() {
        let at = now();
        let queue = queue_with(2, 1, at).await;
        // Unused token.
        assert_eq!(queue.enter(S, UserId(1), at).await.unwrap(), admitted(1));
        // Used token: the hold keeps the slot.
        let token = token_of(&queue, 1, at).await;
        assert!(queue.claim_token(S, UserId(1), &token, at).await.unwrap());
        queue
            .consume_token(S, UserId(1), &token, at + TTL)
            .await
            .unwrap();
        assert_eq!(queue.enter(S, UserId(1), at).await.unwrap(), admitted(1));
        assert_eq!(queue.stats(S, at).await.unwrap().waiting, 1);

        // Paid: done, a new visit queues at the back.
        queue.free_slot(S, UserId(1)).await.unwrap();
        assert_eq!(queue.enter(S, UserId(1), at).await.unwrap(), waiting(2, 2));
    }

    #[tokio::test]
    async fn the_101st_user_waits_until_a_slot_is_freed() {
        let at = now();
        let queue = MemoryQueue::new(TTL);
        for user in 1..=101 {
            queue.enter(S, UserId(user), at).await.unwrap();
        }
        let first = queue.admit_next(S, 100, at).await.unwrap();
        assert_eq!(first, (1..=100).map(UserId).collect::<Vec<_>>());
        assert!(queue.admit_next(S, 100, at).await.unwrap().is_empty());
        assert_eq!(
            queue.position(S, UserId(101), at).await.unwrap(),
            Some(waiting(1, 1))
        );
        assert_eq!(
            queue.stats(S, at).await.unwrap(),
            QueueStats {
                waiting: 1,
                active: 100
            }
        );

        queue.free_slot(S, UserId(42)).await.unwrap();
        assert_eq!(queue.entry_token(S, UserId(42), at).await.unwrap(), None);
        assert_eq!(queue.admit_next(S, 100, at).await.unwrap(), [UserId(101)]);
        assert_eq!(
            queue.stats(S, at).await.unwrap(),
            QueueStats {
                waiting: 0,
                active: 100
            }
        );
    }

    #[tokio::test]
    async fn the_101st_user_is_admitted_once_an_unused_token_expires() {
        let at = now();
        let queue = queue_with(101, 100, at).await;
        assert!(queue
            .admit_next(S, 100, at + TTL - Duration::seconds(1))
            .await
            .unwrap()
            .is_empty());

        let later = at + TTL;
        assert_eq!(queue.stats(S, later).await.unwrap().active, 0);
        assert_eq!(
            queue.admit_next(S, 100, later).await.unwrap(),
            [UserId(101)]
        );
        // An expired, unused admission is no admission.
        assert_eq!(queue.position(S, UserId(1), later).await.unwrap(), None);
        assert_eq!(queue.entry_token(S, UserId(1), later).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_used_token_keeps_the_slot_until_the_hold_expires() {
        let at = now();
        let queue = queue_with(2, 1, at).await;
        let token = token_of(&queue, 1, at).await;
        assert!(queue.claim_token(S, UserId(1), &token, at).await.unwrap());
        let hold_until = at + TTL * 3;
        queue
            .consume_token(S, UserId(1), &token, hold_until)
            .await
            .unwrap();

        // Past the token's lifetime the hold still takes the slot.
        assert!(queue.admit_next(S, 1, at + TTL).await.unwrap().is_empty());
        assert_eq!(
            queue.position(S, UserId(1), at + TTL).await.unwrap(),
            Some(admitted(1))
        );
        assert_eq!(
            queue.admit_next(S, 1, hold_until).await.unwrap(),
            [UserId(2)]
        );
    }

    #[tokio::test]
    async fn a_token_works_once() {
        let at = now();
        let queue = queue_with(1, 1, at).await;
        let token = queue.entry_token(S, UserId(1), at).await.unwrap().unwrap();
        assert_eq!(token.token.len(), 32);
        assert!(token.token.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(token.expires_at, at + TTL);

        assert!(queue
            .claim_token(S, UserId(1), &token.token, at)
            .await
            .unwrap());
        queue
            .consume_token(S, UserId(1), &token.token, at + TTL)
            .await
            .unwrap();
        assert!(!queue
            .claim_token(S, UserId(1), &token.token, at)
            .await
            .unwrap());
        assert_eq!(queue.entry_token(S, UserId(1), at).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_token_is_bound_to_its_user_and_schedule() {
        let at = now();
        let queue = queue_with(2, 2, at).await;
        let mine = token_of(&queue, 1, at).await;
        let theirs = token_of(&queue, 2, at).await;
        assert_ne!(mine, theirs);

        assert!(!queue.claim_token(S, UserId(2), &mine, at).await.unwrap());
        assert!(!queue
            .claim_token(ScheduleId(2), UserId(1), &mine, at)
            .await
            .unwrap());
        assert!(!queue.claim_token(S, UserId(1), "guess", at).await.unwrap());
        // None of those used it up.
        assert!(queue.claim_token(S, UserId(1), &mine, at).await.unwrap());
    }

    #[tokio::test]
    async fn a_token_is_refused_after_its_ttl() {
        let at = now();
        let queue = queue_with(1, 1, at).await;
        let token = queue.entry_token(S, UserId(1), at).await.unwrap().unwrap();
        assert!(!queue
            .claim_token(S, UserId(1), &token.token, token.expires_at)
            .await
            .unwrap());
        assert_eq!(
            queue
                .entry_token(S, UserId(1), token.expires_at)
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    async fn a_claim_blocks_concurrent_claims_until_restored() {
        let at = now();
        let queue = queue_with(1, 1, at).await;
        let token = token_of(&queue, 1, at).await;

        let racers: Vec<_> = (0..50)
            .map(|_| {
                let (queue, token) = (queue.clone(), token.clone());
                tokio::spawn(async move { queue.claim_token(S, UserId(1), &token, at).await })
            })
            .collect();
        let mut winners = 0;
        for racer in racers {
            winners += usize::from(racer.await.unwrap().unwrap());
        }
        assert_eq!(winners, 1);
        // Claimed, not used: still the user's token.
        assert_eq!(token_of(&queue, 1, at).await, token);

        queue.restore_token(S, UserId(1), &token).await.unwrap();
        assert!(queue.claim_token(S, UserId(1), &token, at).await.unwrap());
        assert!(!queue.claim_token(S, UserId(1), &token, at).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    async fn concurrent_admissions_never_exceed_the_window() {
        let at = now();
        let queue = queue_with(300, 0, at).await;
        let admitters: Vec<_> = (0..8)
            .map(|_| {
                let queue = queue.clone();
                tokio::spawn(async move { queue.admit_next(S, 100, at).await })
            })
            .collect();
        let mut all = Vec::new();
        for admitter in admitters {
            all.extend(admitter.await.unwrap().unwrap());
        }
        all.sort_unstable();
        assert_eq!(all, (1..=100).map(UserId).collect::<Vec<_>>());
        assert_eq!(queue.stats(S, at).await.unwrap().active, 100);
    }

    #[tokio::test]
    async fn positions_of_many_users_in_the_order_asked() {
        let at = now();
        let queue = queue_with(1_000, 10, at).await;
        let asked: Vec<UserId> = [1_000, 5, 11, 12, 999, 4_242, 10]
            .into_iter()
            .map(UserId)
            .collect();
        assert_eq!(
            queue.positions(S, &asked, at).await.unwrap(),
            [
                Some(waiting(990, 990)),
                Some(admitted(990)),
                Some(waiting(1, 990)),
                Some(waiting(2, 990)),
                Some(waiting(989, 990)),
                None,
                Some(admitted(990)),
            ]
        );
        for user in &asked {
            let one = queue.position(S, *user, at).await.unwrap();
            let many = queue.positions(S, &[*user], at).await.unwrap();
            assert_eq!(many, [one]);
        }
        assert_eq!(
            queue
                .positions(ScheduleId(2), &asked[..2], at)
                .await
                .unwrap(),
            [None, None]
        );
    }

    #[tokio::test]
    async fn only_schedules_with_someone_waiting_are_listed() {
        let at = now();
        let queue = MemoryQueue::new(TTL);
        queue.enter(ScheduleId(3), UserId(1), at).await.unwrap();
        queue.enter(ScheduleId(2), UserId(1), at).await.unwrap();
        queue.enter(ScheduleId(5), UserId(1), at).await.unwrap();
        queue.admit_next(ScheduleId(5), 1, at).await.unwrap();
        assert_eq!(
            queue.schedules_waiting().await.unwrap(),
            [ScheduleId(2), ScheduleId(3)]
        );
    }

    #[tokio::test]
    async fn hold_markers_live_until_cleared_or_expired() {
        let at = now();
        let queue = MemoryQueue::new(TTL);
        let r = ReservationId(1);
        queue
            .mark_held(S, &[SeatId(4), SeatId(2)], r, at + TTL)
            .await
            .unwrap();
        queue
            .mark_held(S, &[SeatId(9)], ReservationId(2), at - TTL)
            .await
            .unwrap();
        assert_eq!(queue.held_seats(S).await.unwrap(), [SeatId(2), SeatId(4)]);
        assert!(queue.held_seats(ScheduleId(2)).await.unwrap().is_empty());

        queue
            .clear_held(S, &[SeatId(2), SeatId(4)], ReservationId(99))
            .await
            .unwrap();
        assert_eq!(
            queue.held_seats(S).await.unwrap().len(),
            2,
            "not 99's markers"
        );
        queue
            .clear_held(S, &[SeatId(2), SeatId(4)], r)
            .await
            .unwrap();
        assert!(queue.held_seats(S).await.unwrap().is_empty());
    }
}
