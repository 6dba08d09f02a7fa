//! The operator's monitor (`GET /api/admin/schedules/{id}/monitor`): its
//! counts agree with the tables, its oversell guard reads 0 after racing
//! holds and counts a planted disagreement, and only admins read it.

use crate::helpers::*;
use booking_api::Strategy;
use reqwest::StatusCode;
use serde_json::Value;

impl TestApp {
    /// The monitor of `schedule`, read after its 500 ms reading went stale.
    async fn monitor(&self, admin: &TestUser, schedule: i64) -> Value {
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        expect_status(
            self.get(
                &format!("/api/admin/schedules/{schedule}/monitor"),
                Some(&admin.token),
            )
            .await,
            StatusCode::OK,
        )
        .await
    }
}

/// (sold, held, free) as the public seat map shows them.
async fn seat_map_counts(app: &TestApp, s: &TestSchedule) -> (i64, i64, i64) {
    let statuses = app.seat_statuses(s.concert_id, s.schedule_id).await;
    let count = |status: &str| statuses.iter().filter(|(_, st)| st == status).count() as i64;
    (count("RESERVED"), count("HELD"), count("AVAILABLE"))
}

fn reservation_id(body: &Value) -> i64 {
    body["id"].as_i64().expect("reservation id")
}

/// Three holds, one paid, one cancelled: the monitor says what the tables say.
async fn monitor_counts_follow_holds_a_payment_and_a_cancel(app: TestApp) {
    let admin = app.admin().await;
    let s = app.schedule(&admin, 2, 5).await;
    let fresh = app.monitor(&admin, s.schedule_id).await;
    assert_eq!(
        (&fresh["sold"], &fresh["held"], &fresh["free"]),
        (&0.into(), &0.into(), &10.into())
    );
    assert_eq!(fresh["totalSeats"], 10);
    assert_eq!(fresh["state"], "open");

    // Buyers first: their sign-ups are slow (argon2), and the holds should
    // all fall in the monitor's 5 s window.
    let mut buyers = Vec::new();
    for i in 0..3 {
        buyers.push(app.user(&format!("buyer{i}")).await);
    }
    let mut holds = Vec::new();
    for (user, seats) in buyers.into_iter().zip([[0, 1], [2, 3], [4, 5]]) {
        let ids: Vec<i64> = seats.iter().map(|k| s.seat_ids[*k]).collect();
        let held = expect_status(
            app.hold(&user, s.schedule_id, &ids, None).await,
            StatusCode::CREATED,
        )
        .await;
        holds.push((user, reservation_id(&held)));
    }
    expect_status(
        app.pay(&holds[0].0, holds[0].1, None).await,
        StatusCode::CREATED,
    )
    .await;
    expect_status(app.cancel(&holds[1].0, holds[1].1).await, StatusCode::OK).await;

    let m = app.monitor(&admin, s.schedule_id).await;
    let (sold, held, free) = seat_map_counts(&app, &s).await;
    assert_eq!(
        (sold, held, free),
        (2, 2, 6),
        "the seat map after the three"
    );
    assert_eq!(
        (m["sold"].as_i64(), m["held"].as_i64(), m["free"].as_i64()),
        (Some(sold), Some(held), Some(free)),
        "{m}"
    );
    assert_eq!(m["oversell"]["seatsSoldTwice"], 0, "{m}");
    assert_eq!(m["oversell"]["statusMismatches"], 0, "{m}");
    // Three reservations made within the 5 s window (the cancelled one too).
    let rate = m["holdsPerSec"].as_f64().expect("holdsPerSec");
    assert!((0.2..=0.6).contains(&rate), "holdsPerSec {rate}: {m}");
    assert_eq!(m["scheduleId"], s.schedule_id);
    assert_eq!(m["concertId"], s.concert_id);
    if app.queue_on {
        assert_eq!(m["waitingRoom"], "enabled");
        // The one unpaid hold keeps its buyer's slot.
        assert_eq!(m["active"], 1, "{m}");
        assert_eq!(m["waiting"], 0, "{m}");
        assert!(m["admissionRate"].as_f64().is_some(), "{m}");
    } else {
        assert_eq!(m["waitingRoom"], "disabled");
        assert!(
            m["waiting"].is_null() && m["admissionRate"].is_null(),
            "{m}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn monitor_counts_match_postgres_after_holds_a_payment_and_a_cancel() {
    monitor_counts_follow_holds_a_payment_and_a_cancel(spawn_app_with(Strategy::Pessimistic).await)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn monitor_counts_match_memory_after_holds_a_payment_and_a_cancel() {
    monitor_counts_follow_holds_a_payment_and_a_cancel(spawn_embedded_app().await).await;
}

/// 30 buyers race for the same two seats: one wins, and the guard reads 0.
async fn oversell_guard_reads_zero_after_racing_holds(app: TestApp) {
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 4).await;
    let mut buyers = Vec::new();
    for i in 0..30 {
        buyers.push(app.user(&format!("racer{i}")).await);
    }
    let seats = [s.seat_ids[1], s.seat_ids[2]];
    let races = buyers
        .iter()
        .map(|buyer| app.hold(buyer, s.schedule_id, &seats, None));
    let answers = futures::future::join_all(races).await;
    let won = answers
        .iter()
        .filter(|r| r.status() == StatusCode::CREATED)
        .count();
    assert_eq!(won, 1, "one winner for the pair");

    let m = app.monitor(&admin, s.schedule_id).await;
    assert_eq!(m["oversell"]["seatsSoldTwice"], 0, "{m}");
    assert_eq!(m["oversell"]["statusMismatches"], 0, "{m}");
    assert_eq!((m["held"].as_i64(), m["free"].as_i64()), (Some(2), Some(2)));
}

#[tokio::test(flavor = "multi_thread")]
async fn oversell_guard_reads_zero_after_racing_holds_on_postgres() {
    oversell_guard_reads_zero_after_racing_holds(spawn_app().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversell_guard_reads_zero_after_racing_holds_in_memory() {
    oversell_guard_reads_zero_after_racing_holds(
        spawn_embedded_app_adjusted(|s| s.queue.enabled = false).await,
    )
    .await;
}

/// The guard is not a constant: a seat marked HELD behind the adapters'
/// back (no reservation claims it) is counted.
#[tokio::test(flavor = "multi_thread")]
async fn oversell_guard_counts_a_seat_whose_status_disagrees() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let s = app.schedule(&admin, 1, 3).await;
    app.execute(&format!(
        "UPDATE seats SET status = 'HELD' WHERE id = {}",
        s.seat_ids[0]
    ))
    .await;
    let m = app.monitor(&admin, s.schedule_id).await;
    assert_eq!(m["oversell"]["statusMismatches"], 1, "{m}");
    assert_eq!(m["oversell"]["seatsSoldTwice"], 0, "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_read_the_monitor_and_an_unknown_schedule_is_404() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let fan = app.user("fan").await;
    let s = app.schedule(&admin, 1, 2).await;
    let path = format!("/api/admin/schedules/{}/monitor", s.schedule_id);
    expect_problem(app.get(&path, None).await, StatusCode::UNAUTHORIZED).await;
    expect_problem(
        app.get(&path, Some(&fan.token)).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    expect_problem(
        app.get("/api/admin/schedules/999999/monitor", Some(&admin.token))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
}
