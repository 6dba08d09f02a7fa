//! `JobLeaseRepository` over PostgreSQL: one row per job, taken with a
//! conditional upsert so two instances can never both hold it.

use crate::{repo_error, PgStore};
use async_trait::async_trait;
use booking_domain::*;
use chrono::{DateTime, Utc};
use diesel::sql_types::{Text, Timestamptz};
use diesel_async::RunQueryDsl;

/// Insert the lease, or take it over only if it has run out or is ours.
const ACQUIRE: &str = "\
INSERT INTO job_leases (name, locked_until, locked_at, locked_by) VALUES ($1, $3, $4, $2)
ON CONFLICT (name) DO UPDATE
   SET locked_until = EXCLUDED.locked_until, locked_at = EXCLUDED.locked_at, locked_by = EXCLUDED.locked_by
 WHERE job_leases.locked_until <= EXCLUDED.locked_at OR job_leases.locked_by = EXCLUDED.locked_by";

const RELEASE: &str = "\
UPDATE job_leases SET locked_until = locked_at WHERE name = $1 AND locked_by = $2";

#[async_trait]
impl JobLeaseRepository for PgStore {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let mut conn = self.conn().await?;
        let rows = diesel::sql_query(ACQUIRE)
            .bind::<Text, _>(name)
            .bind::<Text, _>(owner)
            .bind::<Timestamptz, _>(until)
            .bind::<Timestamptz, _>(now)
            .execute(&mut conn)
            .await
            .map_err(repo_error)?;
        Ok(rows == 1)
    }

    async fn release(&self, name: &str, owner: &str) -> Result<(), RepoError> {
        let mut conn = self.conn().await?;
        diesel::sql_query(RELEASE)
            .bind::<Text, _>(name)
            .bind::<Text, _>(owner)
            .execute(&mut conn)
            .await
            .map(drop)
            .map_err(repo_error)
    }
}
