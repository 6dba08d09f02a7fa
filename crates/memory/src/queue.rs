//! `MemoryQueue`: the waiting room in memory, shaped like the Redis one.
//!
//! Per schedule: the pre-queue in arrival order, the line (ticket -> user,
//! tickets from one counter), the passes handed out and the holds that used
//! them, the admission credit, a log of passes for the ticks' cursors, the
//! recorded draw, and the seat-hold markers (`hold:` keys). Everything sits
//! behind one mutex that is never held across an `.await`, so every call is
//! atomic, like one Lua script.

use async_trait::async_trait;
use booking_domain::{
    draw_order, AdmissionPlan, DrawRecord, EntryToken, KnownPlace, Pass, Place, Queue, QueueStats,
    RepoError, ReservationId, RestoredPlaces, RoomOverview, RoomView, SaleState, SaleTick,
    ScheduleId, SeatId, UserId,
};
use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Clone)]
pub struct MemoryQueue {
    rooms: Arc<Mutex<HashMap<ScheduleId, Room>>>,
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

    fn rooms(&self) -> Result<MutexGuard<'_, HashMap<ScheduleId, Room>>, RepoError> {
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

/// The window over which `SaleState::admission_rate` is measured.
const RATE_WINDOW: Duration = Duration::seconds(5);

#[derive(Debug, Default)]
struct Room {
    /// Someone entered: the ticker looks after this room until it sells out.
    entered: bool,
    sold_out: bool,
    /// When the pre-queue was drawn; `None` until the opening.
    opened_at: Option<DateTime<Utc>>,
    /// Before the opening, in arrival order.
    pre_queue: Vec<UserId>,
    in_pre_queue: HashSet<UserId>,
    /// (ticket, user) for those still in line; the first is the head. Two
    /// users share a ticket only after a restore (as in a Redis ZSET).
    line: BTreeSet<(u64, UserId)>,
    ticket_of: HashMap<UserId, u64>,
    /// The last ticket given; the drawn and the later arrivals share it.
    last_ticket: u64,
    passes: HashMap<UserId, UnusedPass>,
    /// User -> until when their used pass's hold keeps the slot.
    holding: HashMap<UserId, DateTime<Utc>>,
    /// Admission credit and when the last tick topped it up; `None`: no tick yet.
    credit: f64,
    last_tick: Option<DateTime<Utc>>,
    /// Passes handed out, numbered, oldest first: what the cursors point into.
    pass_log: VecDeque<(u64, Pass)>,
    last_pass: u64,
    draw: Option<DrawRecord>,
    holds: HashMap<SeatId, HoldMarker>,
    /// Given by the first tick; a room in memory is never lost, so it stays.
    epoch: String,
}

#[derive(Debug)]
struct UnusedPass {
    token: EntryToken,
    /// A reservation attempt is using it right now.
    claimed: bool,
}

#[derive(Debug)]
struct HoldMarker {
    #[allow(dead_code)] // kept like the `hold:` key's value, for debugging
    reservation: ReservationId,
    until: DateTime<Utc>,
}

impl Room {
    fn live_pass(&self, user: UserId, now: DateTime<Utc>) -> Option<&UnusedPass> {
        self.passes
            .get(&user)
            .filter(|pass| pass.token.expires_at > now)
    }

    fn is_holding(&self, user: UserId, now: DateTime<Utc>) -> bool {
        self.holding.get(&user).is_some_and(|until| *until > now)
    }

    fn head(&self) -> Option<u64> {
        self.line.first().map(|(ticket, _)| *ticket)
    }

    fn place(&self, user: UserId, now: DateTime<Utc>) -> Option<Place> {
        if let Some(pass) = self.live_pass(user, now) {
            return Some(Place::Admitted(pass.token.clone()));
        }
        if self.is_holding(user, now) {
            return Some(Place::Holding);
        }
        if self.in_pre_queue.contains(&user) {
            return Some(Place::PreQueue);
        }
        let ticket = *self.ticket_of.get(&user)?;
        let head = self.head().unwrap_or(ticket);
        Some(Place::InLine {
            ticket,
            position: ticket - head + 1,
        })
    }

    /// Unused passes that have not expired.
    fn live_passes(&self, now: DateTime<Utc>) -> usize {
        self.passes
            .values()
            .filter(|pass| pass.token.expires_at > now)
            .count()
    }

    /// Used passes whose hold still keeps the user's slot.
    fn live_holds(&self, now: DateTime<Utc>) -> usize {
        self.holding.values().filter(|until| **until > now).count()
    }

    fn sale(&self, now: DateTime<Utc>) -> SaleState {
        let opened = self.opened_at.is_some();
        SaleState {
            opened,
            sold_out: self.sold_out,
            waiting: if opened {
                self.line.len()
            } else {
                self.pre_queue.len()
            } as u64,
            admission_rate: self.admission_rate(now),
        }
    }

    /// Passes of the last 5 s per second, over less while the sale is younger.
    fn admission_rate(&self, now: DateTime<Utc>) -> f64 {
        let Some(opened_at) = self.opened_at else {
            return 0.0;
        };
        let span = RATE_WINDOW.min(now - opened_at);
        if span <= Duration::zero() {
            return 0.0;
        }
        let since = now - RATE_WINDOW;
        let recent = self
            .pass_log
            .iter()
            .rev()
            .take_while(|(_, pass)| pass.admitted_at > since)
            .filter(|(_, pass)| pass.admitted_at <= now)
            .count();
        recent as f64 / (span.num_milliseconds() as f64 / 1_000.0)
    }

    fn view(&self, user: UserId, now: DateTime<Utc>) -> RoomView {
        RoomView {
            place: self.place(user, now),
            sale: self.sale(now),
        }
    }

    fn opening_has_come(opens_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        opens_at.is_none_or(|at| at <= now)
    }

    /// The pre-queue goes into the line in the order `draw_order` gives a
    /// random seed, recorded so that anyone can replay it.
    fn draw(&mut self, schedule: ScheduleId, now: DateTime<Utc>) {
        // Below the generator's modulus 2^31 - 1, and exact in a Lua double.
        let seed = rand::thread_rng().gen_range(1..=2_147_483_646_u64);
        let arrivals = std::mem::take(&mut self.pre_queue);
        self.in_pre_queue.clear();
        let drawn: Vec<UserId> = draw_order(seed, arrivals.len())
            .into_iter()
            .map(|k| arrivals[k])
            .collect();
        for user in &drawn {
            self.join_line(*user);
        }
        self.opened_at = Some(now);
        self.draw = Some(DrawRecord {
            schedule,
            seed,
            drawn_at: now,
            arrivals,
            drawn,
        });
    }

    /// Any place at all, live or not yet swept: a restore leaves it alone.
    fn has_place(&self, user: UserId) -> bool {
        self.passes.contains_key(&user)
            || self.holding.contains_key(&user)
            || self.in_pre_queue.contains(&user)
            || self.ticket_of.contains_key(&user)
    }

    fn join_line(&mut self, user: UserId) {
        self.last_ticket += 1;
        self.line.insert((self.last_ticket, user));
        self.ticket_of.insert(user, self.last_ticket);
    }

    /// What Redis expiry does on its own: expired passes and holds go.
    fn sweep_expired(&mut self, now: DateTime<Utc>, token_ttl: Duration) {
        self.passes.retain(|_, pass| pass.token.expires_at > now);
        self.holding.retain(|_, until| *until > now);
        // An expired pass is of no use to a cursor that missed it.
        let keep = now - RATE_WINDOW.max(token_ttl);
        while self
            .pass_log
            .front()
            .is_some_and(|(_, pass)| pass.admitted_at <= keep)
        {
            self.pass_log.pop_front();
        }
    }

    fn top_up_credit(&mut self, plan: &AdmissionPlan, now: DateTime<Utc>) {
        let burst = f64::from(plan.burst);
        self.credit = match self.last_tick {
            None => burst,
            Some(last) => {
                let elapsed = (now - last).num_milliseconds().max(0) as f64 / 1_000.0;
                burst.min(self.credit + plan.rate_per_sec * elapsed)
            }
        };
        self.last_tick = Some(now);
    }

    /// Hands out passes from the head of the line; returns how many.
    fn admit(&mut self, plan: &AdmissionPlan, now: DateTime<Utc>, token_ttl: Duration) -> u64 {
        let (passes, holding) = (self.passes.len() as u64, self.holding.len() as u64);
        let n = (self.credit.floor().max(0.0) as u64)
            .min(plan.active_limit.saturating_sub(passes + holding))
            .min(plan.pass_limit.saturating_sub(passes))
            .min(self.line.len() as u64);
        let expires_at = now + token_ttl;
        // Admission times follow the line even when instances' clocks differ.
        let admitted_at = self
            .pass_log
            .back()
            .map_or(now, |(_, last)| last.admitted_at.max(now));
        for _ in 0..n {
            let Some((ticket, user)) = self.line.pop_first() else {
                break;
            };
            self.ticket_of.remove(&user);
            let token = EntryToken {
                token: new_token(),
                expires_at,
            };
            self.passes.insert(
                user,
                UnusedPass {
                    token: token.clone(),
                    claimed: false,
                },
            );
            self.last_pass += 1;
            self.pass_log.push_back((
                self.last_pass,
                Pass {
                    user,
                    ticket,
                    token,
                    admitted_at,
                },
            ));
        }
        self.credit -= n as f64;
        n
    }

    fn passes_after(&self, after: u64) -> Vec<Pass> {
        let first = self
            .pass_log
            .partition_point(|(number, _)| *number <= after);
        self.pass_log
            .range(first..)
            .map(|(_, pass)| pass.clone())
            .collect()
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
        opens_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<RoomView, RepoError> {
        let mut rooms = self.rooms()?;
        let room = rooms.entry(schedule).or_default();
        room.entered = true;
        if room.sold_out || room.place(user, now).is_some() {
            return Ok(room.view(user, now));
        }
        // A spent or expired admission keeps no place.
        room.passes.remove(&user);
        room.holding.remove(&user);
        if room.opened_at.is_none() {
            if !Room::opening_has_come(opens_at, now) {
                room.pre_queue.push(user);
                room.in_pre_queue.insert(user);
                return Ok(room.view(user, now));
            }
            room.draw(schedule, now);
        }
        room.join_line(user);
        Ok(room.view(user, now))
    }

    async fn view(
        &self,
        schedule: ScheduleId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<RoomView, RepoError> {
        let rooms = self.rooms()?;
        Ok(rooms
            .get(&schedule)
            .map(|room| room.view(user, now))
            .unwrap_or(RoomView {
                place: None,
                sale: SaleState::default(),
            }))
    }

    async fn tickets(
        &self,
        schedule: ScheduleId,
        users: &[UserId],
    ) -> Result<Vec<Option<u64>>, RepoError> {
        let rooms = self.rooms()?;
        let room = rooms.get(&schedule);
        Ok(users
            .iter()
            .map(|user| room.and_then(|room| room.ticket_of.get(user).copied()))
            .collect())
    }

    async fn tick(
        &self,
        schedule: ScheduleId,
        plan: &AdmissionPlan,
        cursor: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<SaleTick, RepoError> {
        let mut rooms = self.rooms()?;
        let room = rooms.entry(schedule).or_default();
        if room.epoch.is_empty() {
            room.epoch = new_token();
        }
        if room.opened_at.is_none() && Room::opening_has_come(plan.opens_at, now) {
            room.draw(schedule, now);
        }
        if plan.sold_out {
            room.sold_out = true;
        }
        room.sweep_expired(now, self.token_ttl);
        room.top_up_credit(plan, now);
        // A cursor this room never gave (another room's, or garbage) reads
        // like none: from this tick on.
        let after = cursor
            .and_then(|c| c.parse::<u64>().ok())
            .filter(|after| *after <= room.last_pass)
            .unwrap_or(room.last_pass);
        let handed_out = if room.opened_at.is_some() && !room.sold_out {
            room.admit(plan, now, self.token_ttl)
        } else {
            0
        };
        Ok(SaleTick {
            sale: room.sale(now),
            head: room.head(),
            passes: room.passes.len() as u64,
            holding: room.holding.len() as u64,
            handed_out,
            admitted: room.passes_after(after),
            cursor: room.last_pass.to_string(),
            epoch: room.epoch.clone(),
        })
    }

    async fn restore(
        &self,
        schedule: ScheduleId,
        places: &[KnownPlace],
    ) -> Result<RestoredPlaces, RepoError> {
        let mut rooms = self.rooms()?;
        let room = rooms.entry(schedule).or_default();
        room.entered = true;
        let highest = places.iter().filter_map(|p| p.ticket).max().unwrap_or(0);
        room.last_ticket = room.last_ticket.max(highest);
        let (drawn, undrawn): (Vec<&KnownPlace>, Vec<_>) =
            places.iter().partition(|p| p.ticket.is_some());
        for place in drawn.into_iter().chain(undrawn) {
            if room.has_place(place.user) {
                continue;
            }
            match place.ticket {
                Some(ticket) => {
                    room.line.insert((ticket, place.user));
                    room.ticket_of.insert(place.user, ticket);
                }
                None if room.opened_at.is_none() => {
                    room.pre_queue.push(place.user);
                    room.in_pre_queue.insert(place.user);
                }
                _ => room.join_line(place.user),
            }
        }
        Ok(RestoredPlaces {
            head: room.head(),
            tickets: places
                .iter()
                .map(|p| room.ticket_of.get(&p.user).copied())
                .collect(),
        })
    }

    async fn open_rooms(&self) -> Result<Vec<ScheduleId>, RepoError> {
        let rooms = self.rooms()?;
        let mut open: Vec<ScheduleId> = rooms
            .iter()
            .filter(|(_, room)| room.entered && !room.sold_out)
            .map(|(schedule, _)| *schedule)
            .collect();
        open.sort_unstable();
        Ok(open)
    }

    async fn draw_record(&self, schedule: ScheduleId) -> Result<Option<DrawRecord>, RepoError> {
        let rooms = self.rooms()?;
        Ok(rooms.get(&schedule).and_then(|room| room.draw.clone()))
    }

    async fn claim_token(
        &self,
        schedule: ScheduleId,
        user: UserId,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let mut rooms = self.rooms()?;
        let Some(pass) = rooms
            .get_mut(&schedule)
            .and_then(|room| room.passes.get_mut(&user))
        else {
            return Ok(false);
        };
        if pass.claimed || pass.token.expires_at <= now || pass.token.token != token {
            return Ok(false);
        }
        pass.claimed = true;
        Ok(true)
    }

    async fn restore_token(
        &self,
        schedule: ScheduleId,
        user: UserId,
        token: &str,
    ) -> Result<(), RepoError> {
        let mut rooms = self.rooms()?;
        if let Some(pass) = rooms
            .get_mut(&schedule)
            .and_then(|room| room.passes.get_mut(&user))
            .filter(|pass| pass.token.token == token)
        {
            pass.claimed = false;
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
        let room = rooms.entry(schedule).or_default();
        if room
            .passes
            .get(&user)
            .is_some_and(|pass| pass.token.token == token)
        {
            room.passes.remove(&user);
        }
        // The hold exists whatever happened to the pass meanwhile (expired
        // mid-attempt): its slot counts until the hold ends.
        room.holding.insert(user, until);
        Ok(())
    }

    /// Also drops an unused pass: a pass must not outlive its slot, or its
    /// user could hold seats outside the window.
    async fn free_slot(&self, schedule: ScheduleId, user: UserId) -> Result<(), RepoError> {
        let mut rooms = self.rooms()?;
        if let Some(room) = rooms.get_mut(&schedule) {
            room.passes.remove(&user);
            room.holding.remove(&user);
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
            .get(&schedule)
            .map(|room| QueueStats {
                waiting: (room.pre_queue.len() + room.line.len()) as u64,
                active: (room.live_passes(now) + room.live_holds(now)) as u64,
            })
            .unwrap_or_default())
    }

    async fn overview(
        &self,
        schedule: ScheduleId,
        now: DateTime<Utc>,
    ) -> Result<RoomOverview, RepoError> {
        let rooms = self.rooms()?;
        Ok(rooms
            .get(&schedule)
            .map(|room| RoomOverview {
                sale: room.sale(now),
                passes: room.live_passes(now) as u64,
                holding: room.live_holds(now) as u64,
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
        let room = rooms.entry(schedule).or_default();
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
        if let Some(room) = rooms.get_mut(&schedule) {
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
        let Some(room) = rooms.get_mut(&schedule) else {
            return Ok(Vec::new());
        };
        room.holds.retain(|_, marker| marker.until > now);
        let mut seats: Vec<SeatId> = room.holds.keys().copied().collect();
        seats.sort_unstable();
        Ok(seats)
    }
}
