//! Sign-up and log-in.

use crate::auth::JwtKeys;
use crate::dto::{LogInRequest, SignUpRequest, TokenResponse, UserResponse};
use crate::error::{ApiError, Problem};
use crate::state::AppState;
use actix_web::{post, web, HttpResponse};

/// Creates a USER account.
#[utoipa::path(
    tag = "auth",
    request_body = SignUpRequest,
    responses(
        (status = 201, body = UserResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "E-mail already registered", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid e-mail, password or nickname, or a control character in one of them (the detail names the field)", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/api/auth/signup")]
pub async fn sign_up(
    state: web::Data<AppState>,
    body: web::Json<SignUpRequest>,
) -> Result<HttpResponse, ApiError> {
    let user = state
        .service
        .accounts
        .sign_up(&body.email, &body.password, &body.nickname)
        .await?;
    Ok(HttpResponse::Created().json(UserResponse::from(user)))
}

/// Exchanges e-mail and password for a JWT (HS256).
#[utoipa::path(
    tag = "auth",
    request_body = LogInRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "Wrong e-mail or password", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A control character in `email` or `password` (the detail names the field)", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/api/auth/login")]
pub async fn log_in(
    state: web::Data<AppState>,
    keys: web::Data<JwtKeys>,
    body: web::Json<LogInRequest>,
) -> Result<HttpResponse, ApiError> {
    let user = state
        .service
        .accounts
        .log_in(&body.email, &body.password)
        .await?;
    let token = keys.issue(&user, state.clock.now())?;
    Ok(HttpResponse::Ok().json(TokenResponse {
        token,
        token_type: "Bearer",
        expires_in: keys.ttl().num_seconds(),
    }))
}
