//! `UserRepository` over PostgreSQL.

use crate::models::UserRow;
use crate::schema::users;
use crate::tx::committed_row;
use crate::{repo_error, PgStore};
use async_trait::async_trait;
use booking_domain::*;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};
use diesel_async::RunQueryDsl;

#[async_trait]
impl UserRepository for PgStore {
    async fn insert_user(&self, user: &NewUser) -> Result<Inserted<User>, RepoError> {
        let mut conn = self.conn().await?;
        let inserted = diesel::insert_into(users::table)
            .values((
                users::email.eq(user.email.as_str()),
                users::nickname.eq(user.nickname.as_str()),
                users::password_hash.eq(&user.password_hash),
                users::role.eq(user.role.as_str()),
            ))
            .returning(UserRow::as_returning());
        let inserted = committed_row(inserted, &mut conn)
            .await
            .and_then(|row| row.ok_or(Error::NotFound));
        match inserted {
            Ok(row) => Ok(Inserted::New(User::try_from(row)?)),
            Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                Ok(Inserted::Duplicate)
            }
            Err(other) => Err(repo_error(other)),
        }
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, RepoError> {
        let mut conn = self.conn().await?;
        users::table
            .filter(users::email.eq(email.as_str()))
            .select(UserRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(repo_error)?
            .map(User::try_from)
            .transpose()
    }

    async fn find_user(&self, id: UserId) -> Result<Option<User>, RepoError> {
        let mut conn = self.conn().await?;
        users::table
            .find(id.0)
            .select(UserRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(repo_error)?
            .map(User::try_from)
            .transpose()
    }

    async fn set_role(&self, id: UserId, role: Role) -> Result<(), RepoError> {
        let mut conn = self.conn().await?;
        diesel::update(users::table.find(id.0))
            .set(users::role.eq(role.as_str()))
            .execute(&mut conn)
            .await
            .map(drop)
            .map_err(repo_error)
    }
}
