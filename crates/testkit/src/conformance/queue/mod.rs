//! The `Queue` conformance suite: what every waiting room must do, whether
//! it lives in memory or in Redis. One place per user; a pre-queue drawn
//! once at the opening, recorded and replayable, with later arrivals behind
//! it in arrival order; admission ticks that never exceed their credit, the
//! active limit or the pass limit, even from several instances at once; a
//! sell-out that is final; passes reported once along a cursor, that work
//! once, for one user and one schedule, and expire; hold markers; and places
//! put back in their old order after the room's state was lost.
//!
//! An adapter crate runs it with one line in `tests/`:
//! `booking_testkit::queue_conformance_suite!(my_fixture);` where
//! `my_fixture` is an `async fn(chrono::Duration) -> QueueFixture` building
//! a fresh, empty waiting room whose passes live that long.
//!
//! Slots, passes and credit run on the `now` passed in, so most scenarios
//! move time by passing a later `now` (whole milliseconds, as Redis keeps
//! them). Expiry is left to the adapter's own clock too (Redis expires keys
//! by the wall clock), so the scenarios about it use short lifetimes, pass
//! the wall clock, and wait.

mod admission;
mod hold_markers;
mod line;
mod opening;
mod restore;
mod sale_end;
mod tokens;
mod window;

pub use admission::*;
pub use hold_markers::*;
pub use line::*;
pub use opening::*;
pub use restore::*;
pub use sale_end::*;
pub use tokens::*;
pub use window::*;

use booking_domain::{AdmissionPlan, EntryToken, Pass, Place, Queue, ScheduleId, UserId};
use chrono::{DateTime, Duration, Utc};
use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Builds a fresh, empty waiting room whose passes live the given time: the
/// adapter's fixture, boxed by `queue_conformance_suite!`.
pub type FreshQueue<'a> = &'a dyn Fn(Duration) -> Pin<Box<dyn Future<Output = QueueFixture>>>;

/// Opens the waiting room again, as another API server would.
type NewInstance =
    Box<dyn Fn() -> Pin<Box<dyn Future<Output = Arc<dyn Queue>> + Send>> + Send + Sync>;

/// A waiting room under test.
pub struct QueueFixture {
    pub queue: Arc<dyn Queue>,
    new_instance: NewInstance,
    /// Whatever must live as long as the test (a `TestRedis`).
    _guard: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for QueueFixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueFixture").finish_non_exhaustive()
    }
}

impl QueueFixture {
    /// `new_instance` opens the same waiting room again, as another API
    /// server would (its own connection and clients where it has any); the
    /// first call gives `queue`.
    pub async fn new<F, Opened>(new_instance: F, guard: impl Any + Send + Sync) -> Self
    where
        F: Fn() -> Opened + Send + Sync + 'static,
        Opened: Future<Output = Arc<dyn Queue>> + Send + 'static,
    {
        let new_instance: NewInstance = Box::new(move || Box::pin(new_instance()));
        Self {
            queue: new_instance().await,
            new_instance,
            _guard: Box::new(guard),
        }
    }

    /// Another instance over the same waiting room.
    pub async fn instance(&self) -> Arc<dyn Queue> {
        (self.new_instance)().await
    }
}

/// Passes that outlive any scenario that does not wait for them.
const LONG_TTL: Duration = Duration::minutes(5);

/// Passes short enough to wait for, long enough to use first on a loaded
/// machine.
const SHORT_TTL: Duration = Duration::seconds(1);

/// The schedule whose waiting room the scenarios fill.
const S: ScheduleId = ScheduleId(7);
/// A schedule with nobody in its waiting room.
const OTHER: ScheduleId = ScheduleId(8);

/// The wall clock in whole milliseconds, the resolution Redis keeps.
fn now_ms() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("a valid instant")
}

fn ms(millis: i64) -> Duration {
    Duration::milliseconds(millis)
}

fn users(ids: std::ops::RangeInclusive<i64>) -> Vec<UserId> {
    ids.map(UserId).collect()
}

/// A sale open since `opens_at` that admits as many as `active_limit`
/// allows, up to 1,000 a tick: credit and passes are no limit here.
fn plan_with(opens_at: Option<DateTime<Utc>>, active_limit: u64) -> AdmissionPlan {
    AdmissionPlan {
        opens_at,
        rate_per_sec: 1_000.0,
        burst: 1_000,
        active_limit,
        pass_limit: 1_000,
        sold_out: false,
    }
}

/// No opening time (open now), at most `active_limit` slots taken.
fn open_plan(active_limit: u64) -> AdmissionPlan {
    plan_with(None, active_limit)
}

/// `users` enter in order at `at`, each a millisecond after the last so
/// that arrival order is plain even to a store that keeps milliseconds.
async fn enter_all(
    queue: &dyn Queue,
    users: &[UserId],
    opens_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) {
    for (i, user) in users.iter().enumerate() {
        queue
            .enter(S, *user, opens_at, at + ms(i as i64))
            .await
            .unwrap();
    }
}

/// `users` line up in an open sale, then up to `active_limit` of them get a
/// pass by one tick at `at`; returns the passes, oldest first.
async fn line_up_and_admit(
    queue: &dyn Queue,
    users: &[UserId],
    active_limit: u64,
    at: DateTime<Utc>,
) -> Vec<Pass> {
    enter_all(queue, users, None, at - ms(users.len() as i64)).await;
    let tick = queue
        .tick(S, &open_plan(active_limit), None, at)
        .await
        .unwrap();
    assert_eq!(
        tick.admitted.len() as u64,
        active_limit.min(users.len() as u64)
    );
    tick.admitted
}

async fn place(queue: &dyn Queue, user: i64, at: DateTime<Utc>) -> Option<Place> {
    queue.view(S, UserId(user), at).await.unwrap().place
}

/// The user's unused pass, as `view` shows it.
/// A successful hold with the pass, as the use case does it: claim, then
/// consume until `at + LONG_TTL`.
async fn hold_with(queue: &dyn Queue, user: i64, token: &str, at: DateTime<Utc>) {
    assert!(queue.claim_token(S, UserId(user), token, at).await.unwrap());
    queue
        .consume_token(S, UserId(user), token, at + LONG_TTL)
        .await
        .unwrap();
}

async fn pass_of(queue: &dyn Queue, user: i64, at: DateTime<Utc>) -> EntryToken {
    match place(queue, user, at).await {
        Some(Place::Admitted(token)) => token,
        other => panic!("user {user} has no pass: {other:?}"),
    }
}

/// The token of an admitted user's place.
fn token_in(place: &Option<Place>) -> &str {
    match place {
        Some(Place::Admitted(pass)) => &pass.token,
        other => panic!("not admitted: {other:?}"),
    }
}

/// Sleeps until the wall clock is past `t`, by which the adapter's own
/// expiry has run.
async fn sleep_past(t: DateTime<Utc>) {
    let left = (t - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + std::time::Duration::from_millis(100)).await;
}

/// Generates one `#[tokio::test]` per conformance check for a waiting room.
/// `$fixture` is an `async fn(chrono::Duration) -> QueueFixture` building a
/// fresh, empty waiting room whose passes live that long.
#[macro_export]
macro_rules! queue_conformance_suite {
    ($fixture:path) => {
        $crate::queue_conformance_suite!(@tests $fixture;
            entering_again_keeps_ones_place,
            one_user_entering_from_many_instances_at_once_takes_one_place,
            after_the_opening_users_line_up_in_arrival_order,
            positions_are_ticket_minus_head_plus_one_and_fall_as_the_head_is_admitted,
            a_stranger_has_no_place,
            tickets_of_many_users_in_the_order_asked,
            before_the_opening_entrants_wait_in_the_pre_queue,
            the_opening_draw_is_a_recorded_permutation_of_the_pre_queue,
            arrivals_after_the_opening_keep_their_order_behind_the_drawn,
            the_first_entrant_after_the_opening_makes_the_draw,
            an_opening_with_nobody_waiting_is_a_draw_of_none,
            the_draw_is_made_once_however_many_open_the_room_at_once,
            a_tick_admits_no_more_than_its_credit,
            the_admission_rate_is_measured_over_the_last_five_seconds,
            passes_are_reported_once_along_the_cursor_whoever_handed_them_out,
            a_tick_never_fills_more_slots_than_the_active_limit,
            a_tick_never_holds_out_more_passes_than_the_pass_limit,
            concurrent_ticks_from_many_instances_never_overfill_the_window,
            an_unused_pass_expires_and_frees_its_slot,
            a_hold_keeps_the_slot_until_it_expires,
            a_hold_whose_pass_expired_mid_attempt_still_takes_its_slot,
            stats_count_the_waiting_and_the_slots_taken,
            a_sell_out_is_final_and_admits_nobody,
            entering_a_sold_out_sale_changes_nothing,
            open_rooms_are_those_entered_and_not_sold_out,
            every_pass_carries_its_own_fresh_token,
            a_pass_works_once,
            a_pass_is_bound_to_its_user_and_schedule,
            a_claim_blocks_concurrent_claims_until_restored,
            a_user_admitted_between_reads_is_never_told_the_pass_was_used,
            a_freed_slot_takes_the_unused_pass_with_it,
            hold_markers_live_until_cleared_or_expired,
            the_epoch_stays_while_the_room_lives,
            places_put_back_by_two_instances_keep_the_old_order_once_each,
            places_without_a_ticket_go_back_to_the_pre_queue_before_the_opening,
            restoring_into_a_room_that_kept_its_places_changes_nothing,
        );
    };
    (@tests $fixture:path; $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
        async fn $name() {
            $crate::conformance::queue::$name(&|ttl| Box::pin($fixture(ttl))).await;
        }
    )*};
}
