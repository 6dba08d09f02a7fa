//! Sign-up and log-in.

use crate::helpers::*;
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread")]
async fn sign_up_then_log_in_issues_a_working_token() {
    let app = spawn_app().await;
    let created = expect_status(
        app.sign_up("New@Example.com", "password-123").await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        created["email"], "new@example.com",
        "e-mails are normalised"
    );
    assert_eq!(created["role"], "USER");
    assert!(created.get("passwordHash").is_none());

    let login = expect_status(
        app.log_in("new@example.com", "password-123").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(login["tokenType"], "Bearer");
    let token = login["token"].as_str().unwrap();
    expect_status(
        app.get("/api/reservations/my", Some(token)).await,
        StatusCode::OK,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_unknown_email_and_duplicates_are_refused() {
    let app = spawn_app().await;
    app.user("known").await;
    let before = app.db_snapshot().await;

    let wrong = expect_problem(
        app.log_in("known@example.com", "not-the-password").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let unknown = expect_problem(
        app.log_in("nobody@example.com", "password-123").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(
        wrong["detail"], unknown["detail"],
        "the answer does not reveal which e-mails exist"
    );

    expect_problem(
        app.sign_up("known@example.com", "password-123").await,
        StatusCode::CONFLICT,
    )
    .await;
    expect_problem(
        app.sign_up("not-an-email", "password-123").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let short = expect_problem(
        app.sign_up("short@example.com", "short").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(short["detail"].as_str().unwrap().contains("at least 8"));
    assert_eq!(app.db_snapshot().await, before);
}
