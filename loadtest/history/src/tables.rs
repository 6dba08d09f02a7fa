//! Reads one schedule's final tables from PostgreSQL: its reservations with
//! their seats, its seats' statuses and which reservations have a payment.

use crate::{FinalReservation, Tables};
use booking_store_postgres::schema::{payments, reservation_seats, reservations, seats};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

/// id, user, status, expires_at, updated_at.
type ReservationRow = (i64, i64, String, DateTime<Utc>, DateTime<Utc>);

pub async fn load(database_url: &str, schedule: i64) -> anyhow::Result<Tables> {
    let mut conn = AsyncPgConnection::establish(database_url).await?;
    let rows: Vec<ReservationRow> = reservations::table
        .filter(reservations::schedule_id.eq(schedule))
        .select((
            reservations::id,
            reservations::user_id,
            reservations::status,
            reservations::expires_at,
            reservations::updated_at,
        ))
        .load(&mut conn)
        .await?;
    // A reservation's seats, active or not: the seats it was made with.
    let links: Vec<(i64, i64)> = reservation_seats::table
        .inner_join(reservations::table)
        .filter(reservations::schedule_id.eq(schedule))
        .select((
            reservation_seats::reservation_id,
            reservation_seats::seat_id,
        ))
        .order((
            reservation_seats::reservation_id,
            reservation_seats::seat_id,
        ))
        .load(&mut conn)
        .await?;
    let seat_rows: Vec<(i64, String)> = seats::table
        .filter(seats::schedule_id.eq(schedule))
        .select((seats::id, seats::status))
        .load(&mut conn)
        .await?;
    let paid: Vec<i64> = payments::table
        .inner_join(reservations::table)
        .filter(reservations::schedule_id.eq(schedule))
        .select(payments::reservation_id)
        .load(&mut conn)
        .await?;

    let mut tables = Tables {
        seats: seat_rows.into_iter().collect(),
        payments: paid.into_iter().collect(),
        ..Tables::default()
    };
    for (id, user, status, expires_at, updated_at) in rows {
        tables.reservations.insert(
            id,
            FinalReservation {
                user,
                status,
                expires_at,
                updated_at,
                seats: Vec::new(),
            },
        );
    }
    for (reservation, seat) in links {
        if let Some(r) = tables.reservations.get_mut(&reservation) {
            r.seats.push(seat);
        }
    }
    Ok(tables)
}
