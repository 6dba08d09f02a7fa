//! The outbox over PostgreSQL: `write_outbox`, which every state change
//! calls inside its own transaction, the relay's side (`OutboxRepository`)
//! and the consumers' `ProcessedEvents`.

use crate::models::OutboxRow;
use crate::schema::outbox;
use crate::{repo_error, PgStore};
use async_trait::async_trait;
use booking_domain::*;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// Writes `event` as an outbox row, with the current request id in its
/// headers; in the caller's transaction, so the row commits with the change.
pub async fn write_outbox(conn: &mut AsyncPgConnection, event: &NewOutboxEvent) -> QueryResult<()> {
    let headers = outbox_headers(event);
    diesel::insert_into(outbox::table)
        .values((
            outbox::topic.eq(event.topic),
            outbox::key.eq(&event.key),
            outbox::payload.eq(&event.payload),
            outbox::headers.eq(headers),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// The headers column of `event`'s row: the request id, when there is one.
pub fn outbox_headers(event: &NewOutboxEvent) -> serde_json::Value {
    match &event.request_id {
        Some(id) => serde_json::json!({ "request-id": id.as_str() }),
        None => serde_json::json!({}),
    }
}

/// Takes a batch that nobody else holds: `SKIP LOCKED` passes over rows
/// another relay is claiming right now, the `claimed_until` test over rows
/// it claimed earlier and is still publishing.
const CLAIM: &str = "\
UPDATE outbox SET claimed_by = $1, claimed_until = $4
 WHERE id IN (SELECT id FROM outbox
               WHERE published_at IS NULL
                 AND (claimed_until IS NULL OR claimed_until <= $3)
               ORDER BY id
               LIMIT $2
                 FOR UPDATE SKIP LOCKED)
RETURNING id, topic, key, payload, headers, created_at, published_at";

/// A consumer's processed mark, committed without waiting for the WAL flush
/// (`synchronous_commit` off for this statement's transaction only): a mark
/// lost to a PostgreSQL crash (the last few hundred milliseconds of marks)
/// means its event is handled again: no effect for seat-release, whose
/// effects are idempotent, and a second notice from notification. A flush
/// per record held a consumer catching up with a backlog to one record per
/// disk flush.
const MARK_PROCESSED: &str = "\
WITH unflushed AS (SELECT set_config('synchronous_commit', 'off', true))
INSERT INTO processed_events (consumer, event_id)
SELECT $1, $2 FROM unflushed
    ON CONFLICT DO NOTHING";

/// In batches, so one run never holds many row locks or a long transaction.
const PRUNE_PUBLISHED: &str = "\
DELETE FROM outbox
 WHERE id IN (SELECT id FROM outbox
               WHERE published_at < $1
               ORDER BY published_at
               LIMIT $2)";

const PRUNE_PROCESSED: &str = "\
DELETE FROM processed_events
 WHERE (consumer, event_id) IN (SELECT consumer, event_id FROM processed_events
                                 WHERE processed_at < $1
                                 ORDER BY processed_at
                                 LIMIT $2)";

async fn prune(
    store: &PgStore,
    sql: &str,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<u64, RepoError> {
    let mut conn = store.conn().await?;
    let deleted = diesel::sql_query(sql)
        .bind::<Timestamptz, _>(before)
        .bind::<BigInt, _>(limit)
        .execute(&mut conn)
        .await
        .map_err(repo_error)?;
    Ok(deleted as u64)
}

#[async_trait]
impl OutboxRepository for PgStore {
    async fn claim_unpublished(
        &self,
        owner: &str,
        limit: i64,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<OutboxEvent>, RepoError> {
        let mut conn = self.conn().await?;
        let mut rows: Vec<OutboxRow> = diesel::sql_query(CLAIM)
            .bind::<Text, _>(owner)
            .bind::<BigInt, _>(limit)
            .bind::<Timestamptz, _>(now)
            .bind::<Timestamptz, _>(until)
            .load(&mut conn)
            .await
            .map_err(repo_error)?;
        rows.sort_by_key(OutboxRow::id);
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

    async fn release_claims(&self, owner: &str, ids: &[i64]) -> Result<(), RepoError> {
        let mut conn = self.conn().await?;
        diesel::update(
            outbox::table
                .filter(outbox::id.eq_any(ids))
                .filter(outbox::claimed_by.eq(owner)),
        )
        .set((
            outbox::claimed_by.eq(None::<String>),
            outbox::claimed_until.eq(None::<DateTime<Utc>>),
        ))
        .execute(&mut conn)
        .await
        .map(drop)
        .map_err(repo_error)
    }

    async fn backlog(&self, now: DateTime<Utc>) -> Result<OutboxBacklog, RepoError> {
        let mut conn = self.conn().await?;
        let (count, oldest): (i64, Option<DateTime<Utc>>) = outbox::table
            .filter(outbox::published_at.is_null())
            .select((
                diesel::dsl::count_star(),
                diesel::dsl::min(outbox::created_at),
            ))
            .first(&mut conn)
            .await
            .map_err(repo_error)?;
        Ok(OutboxBacklog {
            unpublished: count,
            oldest_age: oldest.map(|t| now - t),
        })
    }

    async fn prune_published(&self, before: DateTime<Utc>, limit: i64) -> Result<u64, RepoError> {
        prune(self, PRUNE_PUBLISHED, before, limit).await
    }
}

#[async_trait]
impl ProcessedEvents for PgStore {
    async fn mark_processed(&self, consumer: &str, event_id: &str) -> Result<bool, RepoError> {
        let mut conn = self.conn().await?;
        let inserted = diesel::sql_query(MARK_PROCESSED)
            .bind::<Text, _>(consumer)
            .bind::<Text, _>(event_id)
            .execute(&mut conn)
            .await
            .map_err(repo_error)?;
        Ok(inserted == 1)
    }

    async fn prune_processed(&self, before: DateTime<Utc>, limit: i64) -> Result<u64, RepoError> {
        prune(self, PRUNE_PROCESSED, before, limit).await
    }
}
