//! The shapes of a sale in the waiting room, shared by the `Queue` port, its
//! adapters and the `Admissions` use case: where one user stands, what an
//! admission tick is allowed to do and what it saw, and the draw that orders
//! the pre-queue at the opening.

use crate::{ScheduleId, UserId};
use chrono::{DateTime, Utc};

/// A single-use entry token bound to (user, schedule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Where one user stands in a schedule's waiting room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// Entered before the opening: the order is drawn at the opening.
    PreQueue,
    /// In line. `ticket` is the place in the drawn-then-arrival order;
    /// `position` is 1-based among those still in line.
    InLine { ticket: u64, position: u64 },
    /// Admitted: the pass, unused (it may be claimed by an attempt right now).
    Admitted(EntryToken),
    /// The pass was used by a hold: the user holds seats.
    Holding,
}

/// One user's place and the room around it, read together (one atomic step,
/// so a just-admitted user is never told their token was used).
#[derive(Debug, Clone, PartialEq)]
pub struct RoomView {
    /// `None`: neither waiting nor admitted (never entered, or the pass expired).
    pub place: Option<Place>,
    pub sale: SaleState,
}

/// The room's state as every reader sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SaleState {
    /// The pre-queue has been drawn (or there was no opening time).
    pub opened: bool,
    pub sold_out: bool,
    /// In the pre-queue before the opening, in line after it.
    pub waiting: u64,
    /// Measured admissions per second (a moving average); 0 before any.
    pub admission_rate: f64,
}

/// A schedule's waiting room as its operator watches it, read in one step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RoomOverview {
    pub sale: SaleState,
    /// Unused live passes.
    pub passes: u64,
    /// Used passes whose hold still keeps the user's slot.
    pub holding: u64,
}

/// What one admission tick may do, worked out by `Admissions` from the
/// configuration, the schedule and its seat counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdmissionPlan {
    /// The schedule's `salesOpenAt`: before it, entrants join the pre-queue.
    pub opens_at: Option<DateTime<Utc>>,
    /// Passes handed out per second, across all instances.
    pub rate_per_sec: f64,
    /// At most this many passes at once (unused credit is capped).
    pub burst: u32,
    /// At most this many users hold a pass or a hold at once.
    pub active_limit: u64,
    /// At most this many unused passes at once: a multiple of the free seats.
    pub pass_limit: u64,
    /// No seat is free or held: the sale is over for good.
    pub sold_out: bool,
}

/// A pass handed out by admission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    pub user: UserId,
    /// The place in line it was handed out for.
    pub ticket: u64,
    pub token: EntryToken,
    pub admitted_at: DateTime<Utc>,
}

/// What one admission tick saw and did, and the passes any instance handed
/// out since `cursor`.
#[derive(Debug, Clone, PartialEq)]
pub struct SaleTick {
    pub sale: SaleState,
    /// The ticket at the front of the line; `None` when nobody is in line.
    pub head: Option<u64>,
    /// Unused passes and live holds.
    pub passes: u64,
    pub holding: u64,
    /// Passes this call handed out (metrics).
    pub handed_out: u64,
    /// Passes handed out by any instance after the cursor passed in, oldest first.
    pub admitted: Vec<Pass>,
    /// Where the next tick's `admitted` starts.
    pub cursor: String,
    /// Set once when the room's state is created; a different epoch than
    /// the last tick's means the state was lost (Redis restarted empty).
    pub epoch: String,
}

/// A place an instance knew a user had (from a stream it serves), put back
/// after the room's state was lost: the old ticket keeps the old order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownPlace {
    pub user: UserId,
    /// `None`: in the pre-queue, or not yet told a drawn ticket.
    pub ticket: Option<u64>,
}

/// The line after places were put back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredPlaces {
    /// The ticket at the front of the line; `None` when nobody is in line.
    pub head: Option<u64>,
    /// Each place's ticket now, in the order given (`None`: not in line).
    pub tickets: Vec<Option<u64>>,
}

/// The recorded draw of a schedule's pre-queue, for an audit: anyone can
/// replay `draw_order(seed, arrivals.len())` over `arrivals` and get `drawn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawRecord {
    pub schedule: ScheduleId,
    pub seed: u64,
    pub drawn_at: DateTime<Utc>,
    /// The pre-queue in arrival order.
    pub arrivals: Vec<UserId>,
    /// The same users in the drawn order: the order of the line.
    pub drawn: Vec<UserId>,
}

/// Park-Miller "minimal standard" generator: small enough to write the same
/// in Lua (products stay below 2^53, exact in a double), so the Redis draw
/// and this one agree number for number.
#[derive(Debug, Clone, Copy)]
pub struct DrawRng(u64);

impl DrawRng {
    const MODULUS: u64 = 2_147_483_647;

    pub fn new(seed: u64) -> Self {
        let state = seed % Self::MODULUS;
        Self(if state == 0 { 1 } else { state })
    }

    pub fn next_below(&mut self, n: u64) -> u64 {
        self.0 = self.0 * 48_271 % Self::MODULUS;
        self.0 % n
    }
}

/// The draw: a Fisher-Yates shuffle of `0..n` driven by `DrawRng(seed)`.
/// Entry `k` is the arrival index of the user who gets place `k + 1`.
pub fn draw_order(seed: u64, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = DrawRng::new(seed);
    for i in (1..n).rev() {
        let j = rng.next_below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_draw_is_a_permutation_fixed_by_its_seed() {
        let a = draw_order(42, 1_000);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1_000).collect::<Vec<_>>());
        assert_eq!(a, draw_order(42, 1_000));
        assert_ne!(a, draw_order(43, 1_000));
        assert_ne!(a, sorted, "a draw of 1,000 left everyone in arrival order");
    }

    #[test]
    fn the_generator_matches_the_published_sequence() {
        // Park & Miller's check value with multiplier 48271: seed 1, the
        // 10,000th state is 399,268,537.
        let mut rng = DrawRng::new(1);
        for _ in 0..9_999 {
            rng.next_below(DrawRng::MODULUS);
        }
        rng.next_below(DrawRng::MODULUS);
        assert_eq!(rng.0, 399_268_537);
    }
}
