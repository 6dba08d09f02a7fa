//! The run's history for the history checker (`history-check`, in
//! loadtest/history): every hold and payment this driver sent, when it was
//! sent and answered, and the answer's HTTP status (0: none), one JSON
//! line each in the checker's format.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub user: Option<i64>,
    /// "hold" or "pay".
    pub op: &'static str,
    pub seats: Vec<i64>,
    pub reservation: Option<i64>,
    pub status: u16,
}

/// Lines kept in memory (a few per buyer) and written once at the end.
#[derive(Debug, Default)]
pub struct History {
    lines: Mutex<Vec<Line>>,
}

impl History {
    pub fn record(&self, line: Line) {
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(line);
    }

    /// Writes every line, in the order they were answered; returns how many.
    pub fn write(&self, path: &Path) -> anyhow::Result<usize> {
        let mut lines = self
            .lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        lines.sort_by_key(|l| l.end);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for line in &lines {
            serde_json::to_writer(&mut out, line)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        Ok(lines.len())
    }
}

/// The user id a JWT names (its `sub`), read without checking the signature:
/// the server checks it; the history only labels operations with it.
pub fn user_of(jwt: &str) -> Option<i64> {
    #[derive(serde::Deserialize)]
    struct Sub {
        sub: String,
    }
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.insecure_disable_signature_validation();
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    let key = jsonwebtoken::DecodingKey::from_secret(&[]);
    jsonwebtoken::decode::<Sub>(jwt, &key, &validation)
        .ok()
        .and_then(|data| data.claims.sub.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_is_read_from_the_jwt() {
        let key = jsonwebtoken::EncodingKey::from_secret(b"any secret");
        let jwt = crate::connection::mint_jwt(&key, 4242, 60).unwrap();
        assert_eq!(user_of(&jwt), Some(4242));
        assert_eq!(user_of("not.a.jwt"), None);
    }

    #[test]
    fn a_line_is_what_the_checker_reads() {
        let at = DateTime::parse_from_rfc3339("2030-01-01T12:00:00Z")
            .unwrap()
            .to_utc();
        let line = Line {
            start: at,
            end: at + chrono::Duration::milliseconds(50),
            user: Some(7),
            op: "hold",
            seats: vec![3, 4],
            reservation: Some(12),
            status: 201,
        };
        assert_eq!(
            serde_json::to_string(&line).unwrap(),
            r#"{"start":"2030-01-01T12:00:00Z","end":"2030-01-01T12:00:00.050Z","user":7,"op":"hold","seats":[3,4],"reservation":12,"status":201}"#
        );
    }
}
