//! The `Queue` conformance suite: what every waiting room must do, whether
//! it lives in memory or in Redis. Arrival order, a window that admission
//! never overfills (even from several instances at once), entry tokens that
//! work once, for one user and one schedule, and expire, and hold markers.
//!
//! An adapter crate runs it with one line in `tests/`:
//! `booking_testkit::queue_conformance_suite!(my_fixture);` where
//! `my_fixture` is an `async fn(chrono::Duration) -> QueueFixture` building
//! a fresh, empty waiting room whose entry tokens live that long.
//!
//! Slots run on the `now` passed in, so most scenarios move time by
//! passing a later `now`. Token and marker expiry is left to the adapter's
//! own clock (Redis expires keys by the wall clock), so the scenarios about
//! it use short lifetimes and wait for them to pass.

mod hold_markers;
mod line;
mod tokens;
mod window;

pub use hold_markers::*;
pub use line::*;
pub use tokens::*;
pub use window::*;

use booking_domain::{Queue, QueuePosition, ScheduleId, UserId};
use chrono::{DateTime, Duration, Utc};
use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Builds a fresh, empty waiting room whose entry tokens live the given
/// time: the adapter's fixture, boxed by `queue_conformance_suite!`.
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

/// Entry tokens that outlive any scenario that does not wait for them.
const LONG_TTL: Duration = Duration::minutes(5);

/// Entry tokens short enough to wait for, long enough to use first on a
/// loaded machine.
const SHORT_TTL: Duration = Duration::seconds(1);

/// The schedule whose waiting room the scenarios fill.
const S: ScheduleId = ScheduleId(7);
/// A schedule with nobody in its waiting room.
const OTHER: ScheduleId = ScheduleId(8);

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

fn users(ids: std::ops::RangeInclusive<i64>) -> Vec<UserId> {
    ids.map(UserId).collect()
}

async fn enter_all(queue: &dyn Queue, users: &[UserId], at: DateTime<Utc>) {
    for user in users {
        queue.enter(S, *user, at).await.unwrap();
    }
}

/// `users` enter in order, then `admit` of them are let in.
async fn enter_and_admit(queue: &dyn Queue, users: &[UserId], admit: usize, at: DateTime<Utc>) {
    enter_all(queue, users, at).await;
    let admitted = queue.admit_next(S, admit, at).await.unwrap();
    assert_eq!(admitted.len(), admit.min(users.len()));
}

async fn token_of(queue: &dyn Queue, user: i64, at: DateTime<Utc>) -> String {
    queue
        .entry_token(S, UserId(user), at)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("user {user} has no entry token"))
        .token
}

/// Sleeps until the wall clock is past `t`, by which the adapter's own
/// expiry has run.
async fn sleep_past(t: DateTime<Utc>) {
    let left = (t - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + std::time::Duration::from_millis(100)).await;
}

/// Generates one `#[tokio::test]` per conformance check for a waiting room.
/// `$fixture` is an `async fn(chrono::Duration) -> QueueFixture` building a
/// fresh, empty waiting room whose entry tokens live that long.
#[macro_export]
macro_rules! queue_conformance_suite {
    ($fixture:path) => {
        $crate::queue_conformance_suite!(@tests $fixture;
            arrival_order_is_queue_order,
            entering_twice_keeps_the_first_place,
            a_stranger_has_no_position,
            an_admitted_user_entering_again_stays_admitted_until_the_slot_is_freed,
            a_full_window_admits_the_next_user_only_when_a_slot_is_freed,
            an_unused_admission_expires_and_frees_its_slot,
            a_used_token_keeps_the_slot_until_the_hold_expires,
            a_token_works_once,
            a_token_is_bound_to_its_user_and_schedule,
            a_claim_blocks_concurrent_claims_until_restored,
            concurrent_admissions_never_exceed_the_window,
            positions_of_many_users_in_the_order_asked,
            only_schedules_with_someone_waiting_are_listed,
            hold_markers_live_until_cleared_or_expired,
        );
    };
    (@tests $fixture:path; $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
        async fn $name() {
            $crate::conformance::queue::$name(&|ttl| Box::pin($fixture(ttl))).await;
        }
    )*};
}
