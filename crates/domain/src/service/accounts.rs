//! Accounts: sign up, log in, and the admin bootstrap.

use crate::*;
use std::sync::Arc;

/// The account use cases: users and password hashing, nothing else (so a
/// one-shot `create-admin` builds only these).
#[derive(Clone)]
pub struct Accounts {
    users: Arc<dyn UserRepository>,
    hasher: Arc<dyn PasswordHasher>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts").finish_non_exhaustive()
    }
}

impl Accounts {
    pub fn new(users: Arc<dyn UserRepository>, hasher: Arc<dyn PasswordHasher>) -> Self {
        Self { users, hasher }
    }

    pub async fn sign_up(
        &self,
        email: &str,
        password: &str,
        nickname: &str,
    ) -> Result<User, SignUpError> {
        self.create_user(email, password, nickname, Role::User)
            .await
    }

    async fn create_user(
        &self,
        email: &str,
        password: &str,
        nickname: &str,
        role: Role,
    ) -> Result<User, SignUpError> {
        let email = Email::parse(email).map_err(SignUpError::Invalid)?;
        let password = Password::parse(password).map_err(SignUpError::Invalid)?;
        let nickname = Nickname::parse(nickname).map_err(SignUpError::Invalid)?;
        let password_hash = self
            .hasher
            .hash(&password)
            .await
            .map_err(|e| SignUpError::Repo(RepoError::Unexpected(e)))?;
        let new = NewUser {
            email,
            nickname,
            password_hash,
            role,
        };
        match self.users.insert_user(&new).await? {
            Inserted::New(user) => Ok(user),
            Inserted::Duplicate => Err(SignUpError::DuplicateEmail),
        }
    }

    pub async fn log_in(&self, email: &str, password: &str) -> Result<User, LogInError> {
        // Refused outright: sign-up lets no control character in, so this
        // answer says nothing about which e-mails exist.
        refuse_control_characters("email", email, TextKind::Line)?;
        refuse_control_characters("password", password, TextKind::Line)?;
        // Malformed input is treated as wrong credentials, but still costs a
        // hash, so the answer time says nothing.
        let password = Password::parse(password).unwrap_or_else(|_| Password::dummy());
        let user = match Email::parse(email) {
            Ok(email) => self.users.find_user_by_email(&email).await?,
            Err(_) => None,
        };
        let hash = user.as_ref().map(|u| u.password_hash.as_str());
        let verified = self.hasher.verify(&password, hash).await;
        match user {
            Some(user) if verified => Ok(user),
            _ => Err(LogInError::InvalidCredentials),
        }
    }

    /// Makes `email` an admin: creates the account, or promotes an existing
    /// one (its password is left as it is).
    pub async fn ensure_admin(&self, email: &str, password: &str) -> Result<User, SignUpError> {
        let parsed = Email::parse(email).map_err(SignUpError::Invalid)?;
        if let Some(user) = self.users.find_user_by_email(&parsed).await? {
            return self.promote(user).await;
        }
        match self
            .create_user(email, password, "admin", Role::Admin)
            .await
        {
            // Another instance starting at the same moment created it first.
            Err(SignUpError::DuplicateEmail) => {
                let user = self.users.find_user_by_email(&parsed).await?;
                self.promote(user.ok_or(SignUpError::DuplicateEmail)?).await
            }
            other => other,
        }
    }

    async fn promote(&self, user: User) -> Result<User, SignUpError> {
        self.users.set_role(user.id, Role::Admin).await?;
        Ok(User {
            role: Role::Admin,
            ..user
        })
    }

    pub async fn find_user(&self, id: UserId) -> Result<Option<User>, RepoError> {
        self.users.find_user(id).await
    }
}
