//! What the races run on: the demo's own database, its users and schedules,
//! and the cleanup of its Redis keys.

use anyhow::{anyhow, Context};
use booking_domain::*;
use booking_store_postgres::{run_migrations, PgStore};
use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use redis::aio::ConnectionManager;

/// Drops `name` on the server of `admin_url`, creates it again, migrates it,
/// and returns its URL.
pub async fn recreate_database(admin_url: &str, name: &str) -> anyhow::Result<String> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(anyhow!(
            "database name {name:?}: letters, digits and _ only"
        ));
    }
    let mut admin = AsyncPgConnection::establish(admin_url)
        .await
        .with_context(|| {
            format!("cannot connect to PostgreSQL at {admin_url} (is it running? `just infra-up`)")
        })?;
    for sql in [
        format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        format!("CREATE DATABASE \"{name}\""),
    ] {
        diesel::sql_query(&sql)
            .execute(&mut admin)
            .await
            .with_context(|| sql.clone())?;
    }
    let url = with_database(admin_url, name);
    run_migrations(&url).await.context("migrations")?;
    Ok(url)
}

/// `url` with its database name replaced by `name` (query string kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host = base[scheme_end..]
        .find('/')
        .map_or(base, |i| &base[..scheme_end + i]);
    match query {
        Some(q) => format!("{host}/{name}?{q}"),
        None => format!("{host}/{name}"),
    }
}

/// `n` users with a dummy password hash (nobody logs in), in user order.
pub async fn create_users(store: &PgStore, n: usize) -> anyhow::Result<Vec<UserId>> {
    let mut ids = Vec::with_capacity(n);
    for i in 1..=n {
        let user = store
            .insert_user(&NewUser {
                email: Email::parse(&format!("fan{i}@demo.example")).map_err(|e| anyhow!(e))?,
                nickname: Nickname::parse(&format!("fan{i}")).map_err(|e| anyhow!(e))?,
                password_hash: "demo-user-cannot-log-in".into(),
                role: Role::User,
            })
            .await
            .with_context(|| format!("insert user fan{i}"))?;
        let Inserted::New(user) = user else {
            return Err(anyhow!("user fan{i} already exists"));
        };
        ids.push(user.id);
    }
    Ok(ids)
}

/// A fresh concert with one schedule of `seats` seats (section A, rows of
/// up to 50, 1000 each); returns it and its seat ids, ascending.
pub async fn create_schedule(
    store: &PgStore,
    seats: usize,
) -> anyhow::Result<(ScheduleId, Vec<SeatId>)> {
    let seats = i32::try_from(seats).context("too many seats")?;
    let per_row = seats.min(50);
    let rows = (seats + per_row - 1) / per_row;
    let concert = store
        .insert_concert(
            &ConcertDetails::parse("Demo Race", "The Racers", "Local Hall", "")
                .map_err(|e| anyhow!(e))?,
        )
        .await?;
    let grid = SeatGrid::parse(vec![SectionSpec {
        name: "A".into(),
        rows,
        seats_per_row: per_row,
        price: 1000,
    }])
    .map_err(|e| anyhow!(e))?;
    let schedule = store
        .insert_schedule(
            concert.id,
            Utc::now() + chrono::Duration::days(30),
            &grid,
            &SaleSettings::default(),
        )
        .await?
        .context("the concert just created is gone")?;
    let ids = store
        .list_seats(schedule.id)
        .await?
        .iter()
        .map(|s| s.id)
        .collect();
    Ok((schedule.id, ids))
}

/// Deletes every key under `prefix`; returns how many.
pub async fn delete_keys(redis: &ConnectionManager, prefix: &str) -> anyhow::Result<usize> {
    let mut conn = redis.clone();
    let mut cursor: u64 = 0;
    let mut deleted = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            deleted += redis::cmd("DEL")
                .arg(&keys)
                .query_async::<usize>(&mut conn)
                .await?;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "d"),
            "postgres://u@h:5432/d"
        );
        assert_eq!(with_database("postgres://u@h", "d"), "postgres://u@h/d");
        assert_eq!(
            with_database("postgres://u@h/x?sslmode=disable", "d"),
            "postgres://u@h/d?sslmode=disable"
        );
    }
}
