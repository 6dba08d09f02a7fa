//! The reference model: what a sale of a few seats to a few users must look
//! like after any sequence of steps, kept in plain vectors. The runner asks
//! it what each step may answer and compares the whole system with it after
//! every step.

use booking_domain::{EntryToken, PaymentId, ReservationId, ReservationStatus};
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use proptest::sample::{subsequence, Index};
use std::collections::BTreeMap;

pub const USERS: usize = 3;
pub const SEATS: usize = 4;
/// Below the largest hold (3 seats), so the limit is hit by one hold too.
pub const MAX_SEATS_PER_BUYER: usize = 2;
/// Below `USERS`: the admission window fills up.
pub const ACTIVE_LIMIT: usize = 2;
pub const PRICE: i64 = 1000;
pub const HOLD_TTL: Duration = Duration::minutes(5);

/// Which entry token a hold presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenChoice {
    /// The user's pass as last seen (none if they have none).
    Own,
    /// No token at all.
    Missing,
    /// A token the user already used for a hold.
    Used,
    /// Another user's live pass.
    Others,
}

/// One step of a test case. Users, seats and reservations are indices,
/// resolved against the model when the step runs.
#[derive(Debug, Clone)]
pub enum Op {
    Enter {
        user: usize,
    },
    /// One admission tick (`Admissions::admit_waiting`).
    Admit,
    Hold {
        /// With `TokenChoice::Own`, the first user from here on who has a pass.
        user: usize,
        seats: Vec<usize>,
        token: TokenChoice,
    },
    Pay {
        reservation: Index,
        /// The owner pays; else `user` tries (maybe the owner anyway).
        by_owner: bool,
        user: usize,
    },
    Cancel {
        reservation: Index,
        by_owner: bool,
        user: usize,
    },
    /// The expiry job (`HoldExpirer::expire_overdue_holds`), then what the
    /// seat-release consumer does for each expired hold.
    Expire,
    /// A client retries an acknowledged hold with its Idempotency-Key, its
    /// seats and its (used) token: it gets the same reservation, as it is
    /// now, and nothing changes.
    RetryHold {
        hold: Index,
    },
    /// The same for an acknowledged payment: the same payment.
    RetryPay {
        payment: Index,
    },
    /// The clock moves on by this many milliseconds.
    Clock(i64),
}

pub fn op() -> impl Strategy<Value = Op> {
    let token = prop_oneof![
        6 => Just(TokenChoice::Own),
        1 => Just(TokenChoice::Missing),
        1 => Just(TokenChoice::Used),
        1 => Just(TokenChoice::Others),
    ];
    let seats = subsequence((0..SEATS).collect::<Vec<_>>(), 1..=3);
    // Whole hold lifetimes and exactly the boundary: expiry is `<= now`.
    let step = prop_oneof![
        Just(1_000),
        Just(60_000),
        Just(150_000),
        Just(HOLD_TTL.num_milliseconds()),
        Just(HOLD_TTL.num_milliseconds() + 1_000),
    ];
    prop_oneof![
        4 => (0..USERS).prop_map(|user| Op::Enter { user }),
        4 => Just(Op::Admit),
        5 => (0..USERS, seats, token).prop_map(|(user, seats, token)| Op::Hold { user, seats, token }),
        3 => (any::<Index>(), prop::bool::weighted(0.8), 0..USERS)
            .prop_map(|(reservation, by_owner, user)| Op::Pay { reservation, by_owner, user }),
        2 => (any::<Index>(), prop::bool::weighted(0.8), 0..USERS)
            .prop_map(|(reservation, by_owner, user)| Op::Cancel { reservation, by_owner, user }),
        2 => Just(Op::Expire),
        3 => step.prop_map(Op::Clock),
        1 => any::<Index>().prop_map(|hold| Op::RetryHold { hold }),
        1 => any::<Index>().prop_map(|payment| Op::RetryPay { payment }),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatState {
    Free,
    /// Held by the model's reservation of this index.
    Held(usize),
    Sold(usize),
}

#[derive(Debug, Clone)]
pub struct ModelReservation {
    pub id: ReservationId,
    pub user: usize,
    /// Seat indices, ascending.
    pub seats: Vec<usize>,
    pub status: ReservationStatus,
    pub expires_at: DateTime<Utc>,
}

impl ModelReservation {
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.status == ReservationStatus::Pending && self.expires_at <= now
    }
}

#[derive(Debug, Clone)]
pub struct Model {
    pub now: DateTime<Utc>,
    pub seats: Vec<SeatState>,
    pub reservations: Vec<ModelReservation>,
    /// Each user's pass as last seen; live while `expires_at > now`.
    pub passes: Vec<Option<EntryToken>>,
    /// Tokens each user has used for a hold: never accepted again.
    pub used: Vec<Vec<String>>,
    /// The waiting line, in arrival order (users not yet admitted).
    pub line: Vec<usize>,
    /// Until when a user's used pass keeps their admission slot (the hold's
    /// expiry), unless they pay or cancel first.
    pub holding_until: Vec<Option<DateTime<Utc>>>,
    /// Holds sent: each has its own Idempotency-Key.
    pub holds_sent: usize,
    /// Acknowledged holds, to retry: reservation index, key, token.
    pub keyed_holds: Vec<(usize, String, String)>,
    /// Acknowledged payments, to retry: reservation index, key, payment.
    pub keyed_payments: Vec<(usize, String, PaymentId)>,
    /// What the case exercised (see `run_model`), by outcome.
    pub tally: BTreeMap<&'static str, u32>,
}

impl Model {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            now,
            seats: vec![SeatState::Free; SEATS],
            reservations: Vec::new(),
            passes: vec![None; USERS],
            used: vec![Vec::new(); USERS],
            line: Vec::new(),
            holding_until: vec![None; USERS],
            holds_sent: 0,
            keyed_holds: Vec::new(),
            keyed_payments: Vec::new(),
            tally: BTreeMap::new(),
        }
    }

    pub fn count(&mut self, outcome: &'static str) {
        *self.tally.entry(outcome).or_default() += 1;
    }

    pub fn live_pass(&self, user: usize) -> Option<&EntryToken> {
        self.passes[user]
            .as_ref()
            .filter(|p| p.expires_at > self.now)
    }

    pub fn holding(&self, user: usize) -> bool {
        self.holding_until[user].is_some_and(|until| until > self.now)
    }

    /// Users with a live pass or a hold keeping their slot.
    pub fn active_users(&self) -> usize {
        (0..USERS)
            .filter(|&u| self.live_pass(u).is_some() || self.holding(u))
            .count()
    }

    pub fn free_seats(&self) -> usize {
        self.seats.iter().filter(|s| **s == SeatState::Free).count()
    }

    pub fn sold_out(&self) -> bool {
        self.seats.iter().all(|s| matches!(s, SeatState::Sold(_)))
    }

    /// Seats the user holds or bought: what the per-buyer limit counts
    /// (overdue holds too, until the expiry job ends them).
    pub fn seats_of(&self, user: usize) -> usize {
        self.reservations
            .iter()
            .filter(|r| r.user == user && r.status.is_active())
            .map(|r| r.seats.len())
            .sum()
    }

    pub fn hold(&mut self, user: usize, seats: &[usize], id: ReservationId, token: &str) {
        let index = self.reservations.len();
        for &s in seats {
            self.seats[s] = SeatState::Held(index);
        }
        let expires_at = self.now + HOLD_TTL;
        self.reservations.push(ModelReservation {
            id,
            user,
            seats: seats.to_vec(),
            status: ReservationStatus::Pending,
            expires_at,
        });
        self.passes[user] = None;
        self.used[user].push(token.to_owned());
        self.holding_until[user] = Some(expires_at);
    }

    /// Ends a PENDING reservation: CONFIRMED seats are sold, others free.
    pub fn end(&mut self, index: usize, status: ReservationStatus) {
        let r = &mut self.reservations[index];
        r.status = status;
        for &s in &r.seats {
            self.seats[s] = if status == ReservationStatus::Confirmed {
                SeatState::Sold(index)
            } else {
                SeatState::Free
            };
        }
    }

    /// The user is done (paid, cancelled, nothing left): slot and pass go.
    pub fn free_slot(&mut self, user: usize) {
        self.passes[user] = None;
        self.holding_until[user] = None;
    }
}
