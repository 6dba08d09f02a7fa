//! The one mapping from domain errors to HTTP: `application/problem+json`
//! (RFC 9457). Unexpected errors are logged with their cause chain and say
//! nothing internal to the client.

use crate::seat_maps::SeatMapError;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use booking_domain::*;
use serde::Serialize;
use utoipa::ToSchema;

/// A problem detail, as sent to the client.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// A URI reference naming the kind of problem, e.g. `/problems/seat-taken`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The seats a `seat-taken`, `seats-not-found` or `foreign-seats` problem is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seat_ids: Option<Vec<i64>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{detail}")]
    Conflict {
        kind: &'static str,
        detail: String,
        seats: Option<Vec<SeatId>>,
    },
    #[error("{detail}")]
    Gone { kind: &'static str, detail: String },
    #[error("{detail}")]
    Unprocessable {
        kind: &'static str,
        detail: String,
        seats: Option<Vec<SeatId>>,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl ApiError {
    pub fn internal(e: impl Into<BoxError>) -> Self {
        Self::Internal(e.into())
    }

    fn unprocessable(detail: impl Into<String>) -> Self {
        Self::Unprocessable {
            kind: "invalid-request",
            detail: detail.into(),
            seats: None,
        }
    }

    fn parts(&self) -> (&'static str, &'static str) {
        match self {
            Self::BadRequest(_) => ("bad-request", "Malformed request"),
            Self::Unauthorized(_) => ("unauthorized", "Authentication required"),
            Self::Forbidden(_) => ("forbidden", "Forbidden"),
            Self::NotFound(_) => ("not-found", "Not found"),
            Self::Conflict { kind, .. } => (kind, "Conflict"),
            Self::Gone { kind, .. } => (kind, "Gone"),
            Self::Unprocessable { kind, .. } => (kind, "Invalid request"),
            Self::Unavailable(_) => ("unavailable", "Service unavailable"),
            Self::Internal(_) => ("internal", "Internal error"),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Gone { .. } => StatusCode::GONE,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let (slug, title) = self.parts();
        let detail = match self {
            Self::Internal(cause) => {
                tracing::error!(error = %error_chain(cause.as_ref()), "request failed");
                "an unexpected error occurred".to_owned()
            }
            other => other.to_string(),
        };
        let seat_ids = match self {
            Self::Conflict { seats, .. } | Self::Unprocessable { seats, .. } => {
                seats.as_ref().map(|s| s.iter().map(|id| id.0).collect())
            }
            _ => None,
        };
        let problem = Problem {
            kind: format!("/problems/{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            seat_ids,
        };
        let mut response = HttpResponse::build(status);
        response.content_type("application/problem+json");
        match self {
            Self::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            Self::Conflict {
                kind: "contention", ..
            } => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            Self::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            _ => {}
        }
        response.json(problem)
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

impl From<RepoError> for ApiError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::Unavailable(msg) => {
                tracing::warn!(%msg, "dependency unavailable");
                Self::Unavailable("a dependency is unavailable, try again shortly".into())
            }
            RepoError::Unexpected(cause) => Self::Internal(cause),
        }
    }
}

impl From<IdempotencyKeyError> for ApiError {
    fn from(e: IdempotencyKeyError) -> Self {
        match e {
            // As in any other field: a control character is a 422.
            IdempotencyKeyError::Control(e) => Self::unprocessable(e.to_string()),
            IdempotencyKeyError::Malformed(why) => Self::BadRequest(why.into()),
        }
    }
}

impl From<SeatMapError> for ApiError {
    fn from(e: SeatMapError) -> Self {
        match e {
            SeatMapError::Repo(e) => e.into(),
            SeatMapError::Encode(e) => Self::internal(e),
        }
    }
}

impl From<HoldError> for ApiError {
    fn from(e: HoldError) -> Self {
        let detail = e.to_string();
        match e {
            HoldError::SeatTaken(seats) => Self::Conflict {
                kind: "seat-taken",
                detail,
                seats: Some(seats),
            },
            HoldError::SoldOut => Self::Conflict {
                kind: "sold-out",
                detail,
                seats: None,
            },
            HoldError::Contention => Self::Conflict {
                kind: "contention",
                detail,
                seats: None,
            },
            HoldError::DuplicateIdempotencyKey => Self::Conflict {
                kind: "idempotency-conflict",
                detail,
                seats: None,
            },
            HoldError::BuyerLimitReached { .. } => Self::Conflict {
                kind: "buyer-limit",
                detail,
                seats: None,
            },
            HoldError::ScheduleNotFound => Self::NotFound(detail),
            HoldError::SeatsNotFound(seats) => Self::Unprocessable {
                kind: "seats-not-found",
                detail,
                seats: Some(seats),
            },
            HoldError::ForeignSeats(seats) => Self::Unprocessable {
                kind: "foreign-seats",
                detail,
                seats: Some(seats),
            },
            HoldError::EntryTokenRequired => Self::Forbidden(detail),
            HoldError::InvalidSeats(_)
            | HoldError::IdempotencyKeyReused
            | HoldError::TotalOutOfRange => Self::unprocessable(detail),
            HoldError::UnknownUser => Self::Unauthorized(detail),
            HoldError::Repo(e) => e.into(),
        }
    }
}

impl From<ReservationError> for ApiError {
    fn from(e: ReservationError) -> Self {
        let detail = e.to_string();
        match e {
            ReservationError::NotFound => Self::NotFound(detail),
            // Expired by the scheduler or not yet: the same answer either way.
            ReservationError::NotPending(ReservationStatus::Expired)
            | ReservationError::Expired => Self::Gone {
                kind: "hold-expired",
                detail: "the hold has expired; its seats are being released, book again".into(),
            },
            ReservationError::NotPending(_) => Self::Conflict {
                kind: "state-conflict",
                detail,
                seats: None,
            },
            ReservationError::IdempotencyKeyReused => Self::unprocessable(detail),
            ReservationError::Repo(e) => e.into(),
        }
    }
}

impl From<SignUpError> for ApiError {
    fn from(e: SignUpError) -> Self {
        match e {
            SignUpError::Invalid(msg) => Self::unprocessable(msg),
            SignUpError::DuplicateEmail => Self::Conflict {
                kind: "duplicate-email",
                detail: e.to_string(),
                seats: None,
            },
            SignUpError::Repo(e) => e.into(),
        }
    }
}

impl From<LogInError> for ApiError {
    fn from(e: LogInError) -> Self {
        match e {
            LogInError::InvalidCredentials => Self::Unauthorized(e.to_string()),
            LogInError::Invalid(e) => Self::unprocessable(e.to_string()),
            LogInError::Repo(e) => e.into(),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(msg) => Self::unprocessable(msg),
            AdminError::NotFound(what) => Self::NotFound(format!("{what} not found")),
            AdminError::Conflict(detail) => Self::Conflict {
                kind: "conflict",
                detail,
                seats: None,
            },
            AdminError::Repo(e) => e.into(),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        let detail = e.to_string();
        match e {
            QueueError::Disabled | QueueError::ScheduleNotFound | QueueError::NotInQueue => {
                Self::NotFound(detail)
            }
            QueueError::NotAdmittedYet(_) => Self::Conflict {
                kind: "not-admitted",
                detail,
                seats: None,
            },
            QueueError::TokenUsed => Self::Conflict {
                kind: "token-used",
                detail,
                seats: None,
            },
            QueueError::BeforeOpening => Self::Conflict {
                kind: "not-admitted",
                detail,
                seats: None,
            },
            QueueError::NotDrawnYet => Self::NotFound(detail),
            QueueError::SoldOut => Self::Gone {
                kind: "sold-out",
                detail,
            },
            QueueError::Repo(e) => e.into(),
        }
    }
}

impl From<MonitorError> for ApiError {
    fn from(e: MonitorError) -> Self {
        match e {
            MonitorError::ScheduleNotFound => Self::NotFound(e.to_string()),
            MonitorError::Repo(e) => e.into(),
        }
    }
}
