//! `OutboxRepository` over PostgreSQL.

use crate::models::OutboxRow;
use crate::schema::outbox;
use crate::{repo_error, PgStore};
use async_trait::async_trait;
use booking_domain::*;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

#[async_trait]
impl OutboxRepository for PgStore {
    async fn unpublished(&self, limit: i64) -> Result<Vec<OutboxEvent>, RepoError> {
        let mut conn = self.conn().await?;
        let rows = outbox::table
            .filter(outbox::published_at.is_null())
            .order(outbox::id)
            .limit(limit)
            .select(OutboxRow::as_select())
            .load(&mut conn)
            .await
            .map_err(repo_error)?;
        Ok(rows.into_iter().map(OutboxEvent::from).collect())
    }

    async fn mark_published(&self, ids: &[i64], at: DateTime<Utc>) -> Result<(), RepoError> {
        let mut conn = self.conn().await?;
        diesel::update(outbox::table.filter(outbox::id.eq_any(ids)))
            .set(outbox::published_at.eq(at))
            .execute(&mut conn)
            .await
            .map(drop)
            .map_err(repo_error)
    }
}
