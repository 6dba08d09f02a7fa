//! Authentication: argon2id password hashes (off the async threads), JWTs
//! signed with HS256 only, and the extractors that turn a bearer token into
//! an `AuthenticatedUser` or a 401.

use crate::error::ApiError;
use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher as _, SaltString};
use argon2::{Argon2, PasswordVerifier};
use async_trait::async_trait;
use booking_domain::{BoxError, Password, PasswordHasher, Role, ScheduleId, User, UserId};
use chrono::{DateTime, Duration, Utc};
use futures::future::{ready, Ready};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

/// The shortest JWT secret accepted (bytes).
pub const MIN_SECRET_LEN: usize = 32;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
}

/// A stream ticket: opens one user's waiting-room stream for one schedule
/// and nothing else (no `role`, so it never passes as a login token, and a
/// login token has no `purpose`, so it never passes as a ticket).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StreamTicketClaims {
    sub: String,
    sch: i64,
    purpose: String,
    exp: i64,
}

const STREAM_PURPOSE: &str = "queue-stream";

/// Signs and checks tokens. The algorithm is pinned: a token claiming any
/// other `alg` (including `none`) is refused.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn issue(&self, user: &User, now: DateTime<Utc>) -> Result<String, ApiError> {
        let claims = Claims {
            sub: user.id.to_string(),
            role: user.role,
            iat: now.timestamp(),
            exp: (now + self.ttl).timestamp(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    pub fn issue_stream_ticket(
        &self,
        user: UserId,
        schedule: ScheduleId,
        _now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<String, ApiError> {
        let claims = StreamTicketClaims {
            sub: user.to_string(),
            sch: schedule.0,
            purpose: STREAM_PURPOSE.into(),
            exp: expires_at.timestamp(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    /// The user a stream ticket was issued to, if it is valid for `schedule`.
    pub fn verify_stream_ticket(
        &self,
        ticket: &str,
        schedule: ScheduleId,
    ) -> Result<UserId, ApiError> {
        let refused = || {
            ApiError::Unauthorized("the stream ticket is invalid or has expired: ask POST /api/queue/stream-ticket for a new one".into())
        };
        let claims =
            jsonwebtoken::decode::<StreamTicketClaims>(ticket, &self.decoding, &self.validation)
                .map_err(|_| refused())?
                .claims;
        if claims.purpose != STREAM_PURPOSE || claims.sch != schedule.0 {
            return Err(refused());
        }
        claims.sub.parse().map(UserId).map_err(|_| refused())
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                let why = match e.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired, log in again",
                    ErrorKind::InvalidAlgorithm => "the token is not signed with HS256",
                    _ => "the token is invalid",
                };
                ApiError::Unauthorized(why.into())
            })
    }
}

/// The caller, from a valid `Authorization: Bearer <jwt>` header.
#[derive(Debug, Clone, Copy)]
pub struct AuthenticatedUser {
    pub id: UserId,
    pub role: Role,
}

/// The token of a `Bearer` credential. The scheme is matched without regard
/// to case (RFC 9110, 11.1: `bearer x` is as valid as `Bearer x`).
fn bearer_token(credentials: &str) -> Option<&str> {
    let (scheme, token) = credentials.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("Bearer") && !token.is_empty()).then_some(token)
}

pub fn authenticate(req: &HttpRequest) -> Result<AuthenticatedUser, ApiError> {
    let keys = req
        .app_data::<web::Data<JwtKeys>>()
        .ok_or_else(|| ApiError::internal("JwtKeys are not registered"))?;
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer <token>".into()))?;
    let token =
        value.to_str().ok().and_then(bearer_token).ok_or_else(|| {
            ApiError::Unauthorized("Authorization must be 'Bearer <token>'".into())
        })?;
    let claims = keys.verify(token)?;
    let id = claims
        .sub
        .parse::<i64>()
        .map_err(|_| ApiError::Unauthorized("the token is invalid".into()))?;
    Ok(AuthenticatedUser {
        id: UserId(id),
        role: claims.role,
    })
}

impl FromRequest for AuthenticatedUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

/// An authenticated user with the ADMIN role; others get 403.
#[derive(Debug, Clone, Copy)]
pub struct AdminUser(pub AuthenticatedUser);

impl FromRequest for AdminUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req).and_then(|user| match user.role {
            Role::Admin => Ok(AdminUser(user)),
            Role::User => Err(ApiError::Forbidden("this needs the ADMIN role".into())),
        }))
    }
}

/// Argon2id with the crate's default (OWASP) parameters. Hashing runs on the
/// blocking pool, inside the caller's span.
#[derive(Clone)]
pub struct Argon2Hasher {
    dummy_hash: String,
}

impl std::fmt::Debug for Argon2Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Argon2Hasher")
    }
}

impl Argon2Hasher {
    pub fn new() -> Result<Self, BoxError> {
        let salt = SaltString::generate(&mut OsRng);
        let dummy_hash = Argon2::default()
            .hash_password(b"dummy password for unknown e-mails", &salt)
            .map_err(|e| e.to_string())?
            .to_string();
        Ok(Self { dummy_hash })
    }
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &Password) -> Result<String, BoxError> {
        let password = password.expose().to_owned();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                let salt = SaltString::generate(&mut OsRng);
                Argon2::default()
                    .hash_password(password.as_bytes(), &salt)
                    .map(|h| h.to_string())
                    .map_err(|e| BoxError::from(e.to_string()))
            })
        })
        .instrument(tracing::Span::current())
        .await?
    }

    async fn verify(&self, password: &Password, hash: Option<&str>) -> bool {
        let password = password.expose().to_owned();
        let hash = hash.unwrap_or(&self.dummy_hash).to_owned();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                PasswordHash::new(&hash)
                    .map(|parsed| {
                        Argon2::default()
                            .verify_password(password.as_bytes(), &parsed)
                            .is_ok()
                    })
                    .unwrap_or(false)
            })
        })
        .await
        .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_matched_case_insensitively() {
        for header in ["Bearer abc", "bearer abc", "BEARER abc", "bEaReR   abc "] {
            assert_eq!(bearer_token(header), Some("abc"), "{header}");
        }
        for header in ["Bearer", "Bearer ", "Basic abc", "Bearerabc", "Token abc"] {
            assert_eq!(bearer_token(header), None, "{header}");
        }
    }
}
