//! Users and the value objects that sign-up parses.

use crate::{refuse_control_characters, TextKind, UserId};
use serde::{Deserialize, Serialize};

/// An e-mail address, trimmed and lower-cased; parsed once at the edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        refuse_control_characters("email", raw, TextKind::Line).map_err(|e| e.to_string())?;
        let email = raw.trim().to_lowercase();
        let Some((local, domain)) = email.split_once('@') else {
            return Err(format!("'{raw}' is not an e-mail address: it has no '@'"));
        };
        if local.is_empty() || domain.is_empty() || !domain.contains('.') || domain.contains('@') {
            return Err(format!("'{raw}' is not an e-mail address"));
        }
        if email.len() > 254 {
            return Err("an e-mail address has at most 254 characters".into());
        }
        if email.chars().any(char::is_whitespace) {
            return Err("an e-mail address contains no white space".into());
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A plain-text password that met the length rules; never stored, only hashed.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

impl Password {
    pub const MIN_LEN: usize = 8;
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, String> {
        refuse_control_characters("password", raw, TextKind::Line).map_err(|e| e.to_string())?;
        let len = raw.chars().count();
        if len < Self::MIN_LEN {
            return Err(format!(
                "a password has at least {} characters",
                Self::MIN_LEN
            ));
        }
        if len > Self::MAX_LEN {
            return Err(format!(
                "a password has at most {} characters",
                Self::MAX_LEN
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A well-formed stand-in, so malformed log-ins still cost one hash.
    pub(crate) fn dummy() -> Self {
        Self("not-a-real-password".to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A display name: 1 to 40 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nickname(String);

impl Nickname {
    pub fn parse(raw: &str) -> Result<Self, String> {
        refuse_control_characters("nickname", raw, TextKind::Line).map_err(|e| e.to_string())?;
        let name = raw.trim();
        let len = name.chars().count();
        if len == 0 || len > 40 {
            return Err("a nickname has 1 to 40 characters".into());
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "USER",
            Role::Admin => "ADMIN",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "USER" => Some(Role::User),
            "ADMIN" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub nickname: String,
    pub password_hash: String,
    pub role: Role,
}

/// A user about to be stored: the password is already hashed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub nickname: Nickname,
    pub password_hash: String,
    pub role: Role,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalised_and_checked() {
        assert_eq!(
            Email::parse(" A@Example.com ").unwrap().as_str(),
            "a@example.com"
        );
        assert!(Email::parse("no-at-sign").is_err());
        assert!(Email::parse("a@nodot").is_err());
        assert!(Email::parse("@example.com").is_err());
    }

    #[test]
    fn control_characters_are_refused_in_every_account_field() {
        for bad in ["a\0@example.com", "a@example.com\n", "\u{85}a@example.com"] {
            let e = Email::parse(bad).unwrap_err();
            assert!(e.starts_with("email must not contain control"), "{e}");
        }
        let e = Password::parse("long enough\0").unwrap_err();
        assert!(e.starts_with("password must not contain control"), "{e}");
        let e = Nickname::parse("fan\tclub").unwrap_err();
        assert!(e.starts_with("nickname must not contain control"), "{e}");
    }

    #[test]
    fn short_password_is_refused() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("long enough").is_ok());
    }
}
