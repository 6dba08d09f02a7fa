//! `CatalogRepository` over PostgreSQL: concerts, schedules and seat grids.

use crate::models::{corrupt, ConcertRow, ScheduleRow, SeatRow};
use crate::schema::{concert_schedules, concerts, seats};
use crate::tx::{committed_row, in_bounded_transaction, TxError};
use crate::{repo_error, PgStore};
use async_trait::async_trait;
use booking_domain::*;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error};
use diesel::sql_types::BigInt;
use diesel_async::scoped_futures::{ScopedBoxFuture, ScopedFutureExt};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// Seats are inserted in chunks: one statement per chunk stays well under
/// PostgreSQL's 65535 bind parameters.
const SEAT_INSERT_CHUNK: usize = 5_000;

/// The schedules with their AVAILABLE seats counted (one grouped query).
async fn with_availability(
    conn: &mut AsyncPgConnection,
    rows: Vec<ScheduleRow>,
) -> QueryResult<Vec<Schedule>> {
    let ids: Vec<i64> = rows.iter().map(ScheduleRow::id).collect();
    let counts: Vec<(i64, i64)> = seats::table
        .filter(seats::schedule_id.eq_any(&ids))
        .filter(seats::status.eq(SeatStatus::Available.as_str()))
        .group_by(seats::schedule_id)
        .select((seats::schedule_id, diesel::dsl::count_star()))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let available = counts
                .iter()
                .find(|(id, _)| *id == row.id())
                .map_or(0, |(_, n)| *n);
            row.into_domain(i32::try_from(available).unwrap_or(i32::MAX))
        })
        .collect())
}

/// Deletes lock the seats they cascade to first, ascending, as holds do, so
/// a delete racing a hold waits instead of deadlocking.
const LOCK_SEATS_OF_CONCERT: &str = "\
SELECT s.id FROM seats s JOIN concert_schedules c ON c.id = s.schedule_id
 WHERE c.concert_id = $1 ORDER BY s.id FOR UPDATE OF s";
const LOCK_SEATS_OF_SCHEDULE: &str =
    "SELECT id FROM seats WHERE schedule_id = $1 ORDER BY id FOR UPDATE";

impl PgStore {
    async fn delete_with_seats_locked<F>(
        &self,
        lock_seats: &'static str,
        id: i64,
        delete: F,
    ) -> Result<Deleted, RepoError>
    where
        F: for<'r> FnOnce(
                &'r mut AsyncPgConnection,
            ) -> ScopedBoxFuture<'static, 'r, QueryResult<usize>>
            + Send
            + 'static,
    {
        let conn = self.conn().await?;
        let deleted = in_bounded_transaction(conn, move |conn| {
            async move {
                diesel::sql_query(lock_seats)
                    .bind::<BigInt, _>(id)
                    .execute(conn)
                    .await?;
                Ok(delete(conn).await?)
            }
            .scope_boxed()
        })
        .await;
        match deleted {
            Ok(n) => deleted_one(Ok(n)),
            Err(TxError::Db(e)) => deleted_one(Err(e)),
            Err(TxError::Abort(e)) => Err(e),
        }
    }
}

/// The outcome of a `DELETE` of one row: gone, not there, or still
/// referenced by reservations (a foreign key refuses it).
fn deleted_one(result: QueryResult<usize>) -> Result<Deleted, RepoError> {
    match result {
        Ok(0) => Ok(Deleted::NotFound),
        Ok(_) => Ok(Deleted::Gone),
        Err(Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)) => Ok(Deleted::InUse),
        Err(other) => Err(repo_error(other)),
    }
}

#[async_trait]
impl CatalogRepository for PgStore {
    async fn list_concerts(&self) -> Result<Vec<Concert>, RepoError> {
        let mut conn = self.conn().await?;
        let rows = concerts::table
            .order(concerts::id)
            .select(ConcertRow::as_select())
            .load(&mut conn)
            .await
            .map_err(repo_error)?;
        Ok(rows.into_iter().map(Concert::from).collect())
    }

    async fn find_concert(&self, id: ConcertId) -> Result<Option<Concert>, RepoError> {
        let mut conn = self.conn().await?;
        let row = concerts::table
            .find(id.0)
            .select(ConcertRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(repo_error)?;
        Ok(row.map(Concert::from))
    }

    async fn insert_concert(&self, d: &ConcertDetails) -> Result<Concert, RepoError> {
        let mut conn = self.conn().await?;
        let inserted = diesel::insert_into(concerts::table)
            .values((
                concerts::title.eq(&d.title),
                concerts::artist.eq(&d.artist),
                concerts::venue.eq(&d.venue),
                concerts::description.eq(&d.description),
            ))
            .returning(ConcertRow::as_returning());
        let row = committed_row(inserted, &mut conn)
            .await
            .and_then(|row| row.ok_or(Error::NotFound))
            .map_err(repo_error)?;
        Ok(row.into())
    }

    async fn update_concert(
        &self,
        id: ConcertId,
        d: &ConcertDetails,
    ) -> Result<Option<Concert>, RepoError> {
        let mut conn = self.conn().await?;
        let updated = diesel::update(concerts::table.find(id.0))
            .set((
                concerts::title.eq(&d.title),
                concerts::artist.eq(&d.artist),
                concerts::venue.eq(&d.venue),
                concerts::description.eq(&d.description),
            ))
            .returning(ConcertRow::as_returning());
        let row = committed_row(updated, &mut conn)
            .await
            .map_err(repo_error)?;
        Ok(row.map(Concert::from))
    }

    async fn delete_concert(&self, id: ConcertId) -> Result<Deleted, RepoError> {
        self.delete_with_seats_locked(LOCK_SEATS_OF_CONCERT, id.0, move |conn| {
            diesel::delete(concerts::table.find(id.0))
                .execute(conn)
                .scope_boxed()
        })
        .await
    }

    async fn list_schedules(&self, concert: ConcertId) -> Result<Vec<Schedule>, RepoError> {
        let mut conn = self.conn().await?;
        let rows = concert_schedules::table
            .filter(concert_schedules::concert_id.eq(concert.0))
            .order((concert_schedules::starts_at, concert_schedules::id))
            .select(ScheduleRow::as_select())
            .load(&mut conn)
            .await
            .map_err(repo_error)?;
        with_availability(&mut conn, rows).await.map_err(repo_error)
    }

    async fn find_schedule(&self, id: ScheduleId) -> Result<Option<Schedule>, RepoError> {
        let mut conn = self.conn().await?;
        let row = concert_schedules::table
            .find(id.0)
            .select(ScheduleRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(repo_error)?;
        let schedules = with_availability(&mut conn, row.into_iter().collect());
        Ok(schedules.await.map_err(repo_error)?.pop())
    }

    async fn insert_schedule(
        &self,
        concert: ConcertId,
        starts_at: DateTime<Utc>,
        grid: &SeatGrid,
        sale: &SaleSettings,
    ) -> Result<Option<Schedule>, RepoError> {
        let conn = self.conn().await?;
        let sale = *sale;
        let total = grid.total_seats();
        let seat_rows: Vec<_> = grid
            .seats()
            .map(|s| (s.section, s.row, s.number, s.price))
            .collect();
        let inserted = in_bounded_transaction(conn, move |conn| {
            async move {
                let schedule = diesel::insert_into(concert_schedules::table)
                    .values((
                        concert_schedules::concert_id.eq(concert.0),
                        concert_schedules::starts_at.eq(starts_at),
                        concert_schedules::total_seats.eq(total),
                        concert_schedules::sales_open_at.eq(sale.sales_open_at),
                        concert_schedules::max_seats_per_buyer.eq(sale.max_seats_per_buyer.get()),
                    ))
                    .returning(ScheduleRow::as_returning())
                    .get_result(conn)
                    .await
                    .map_err(|e| match e {
                        Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                            TxError::Abort(ScheduleInsert::NoConcert)
                        }
                        other => TxError::Db(other),
                    })?;
                let schedule = schedule.into_domain(total);
                for chunk in seat_rows.chunks(SEAT_INSERT_CHUNK) {
                    let values: Vec<_> = chunk
                        .iter()
                        .map(|(section, row, number, price)| {
                            (
                                seats::schedule_id.eq(schedule.id.0),
                                seats::section.eq(section),
                                seats::row_number.eq(*row),
                                seats::seat_number.eq(*number),
                                seats::price.eq(*price),
                            )
                        })
                        .collect();
                    diesel::insert_into(seats::table)
                        .values(values)
                        .execute(conn)
                        .await?;
                }
                Ok(schedule)
            }
            .scope_boxed()
        })
        .await;
        match inserted {
            Ok(schedule) => Ok(Some(schedule)),
            Err(TxError::Abort(ScheduleInsert::NoConcert)) => Ok(None),
            Err(TxError::Abort(ScheduleInsert::Failed(e))) => Err(e),
            Err(TxError::Db(e)) => Err(repo_error(e)),
        }
    }

    async fn update_schedule(
        &self,
        id: ScheduleId,
        change: &ScheduleChange,
    ) -> Result<Option<Schedule>, RepoError> {
        let mut conn = self.conn().await?;
        let updated = diesel::update(concert_schedules::table.find(id.0))
            .set(ScheduleChangeset::from(change))
            .returning(ScheduleRow::as_returning());
        let row = committed_row(updated, &mut conn)
            .await
            .map_err(repo_error)?;
        let schedules = with_availability(&mut conn, row.into_iter().collect());
        Ok(schedules.await.map_err(repo_error)?.pop())
    }

    async fn delete_schedule(&self, id: ScheduleId) -> Result<Deleted, RepoError> {
        self.delete_with_seats_locked(LOCK_SEATS_OF_SCHEDULE, id.0, move |conn| {
            diesel::delete(concert_schedules::table.find(id.0))
                .execute(conn)
                .scope_boxed()
        })
        .await
    }

    async fn list_seats(&self, schedule: ScheduleId) -> Result<Vec<Seat>, RepoError> {
        let mut conn = self.conn().await?;
        seats_of(&mut conn, schedule).await
    }

    /// One checkout, two queries: the schedule row, then its seats. The
    /// available count is the seats' own, not a separate count.
    async fn find_seat_map(&self, id: ScheduleId) -> Result<Option<SeatMap>, RepoError> {
        let mut conn = self.conn().await?;
        let Some(schedule) = concert_schedules::table
            .find(id.0)
            .select(ScheduleRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(repo_error)?
        else {
            return Ok(None);
        };
        let seats = seats_of(&mut conn, id).await?;
        let schedule = schedule.into_domain(0);
        Ok(Some(SeatMap::from_seats(
            id,
            schedule.concert_id,
            schedule.total_seats,
            seats,
        )))
    }

    /// One query, the status column only.
    async fn seat_statuses(&self, id: ScheduleId) -> Result<Option<SeatStatuses>, RepoError> {
        let mut conn = self.conn().await?;
        let raw: Vec<String> = seats::table
            .filter(seats::schedule_id.eq(id.0))
            .order(seats::id)
            .select(seats::status)
            .load(&mut conn)
            .await
            .map_err(repo_error)?;
        if raw.is_empty() {
            return Ok(None);
        }
        raw.iter()
            .map(|s| SeatStatus::parse(s).ok_or_else(|| corrupt("seat status", s)))
            .collect::<Result<Vec<_>, _>>()
            .map(|statuses| Some(SeatStatuses(statuses)))
    }

    /// One grouped query over the `seats_schedule_status` index.
    async fn seat_counts(&self, id: ScheduleId) -> Result<Option<SeatCounts>, RepoError> {
        let mut conn = self.conn().await?;
        let rows: Vec<(String, i64)> = seats::table
            .filter(seats::schedule_id.eq(id.0))
            .group_by(seats::status)
            .select((seats::status, diesel::dsl::count_star()))
            .load(&mut conn)
            .await
            .map_err(repo_error)?;
        // A schedule has at least one seat: no rows, no schedule.
        if rows.is_empty() {
            return Ok(None);
        }
        let mut counts = SeatCounts::default();
        for (status, n) in rows {
            match SeatStatus::parse(&status) {
                Some(SeatStatus::Available) => counts.available = n,
                Some(SeatStatus::Held) => counts.held = n,
                Some(SeatStatus::Reserved) => counts.sold = n,
                None => return Err(corrupt("seat status", &status)),
            }
        }
        Ok(Some(counts))
    }
}

/// The columns an admin's change writes; `None` leaves a column alone.
#[derive(AsChangeset)]
#[diesel(table_name = concert_schedules)]
struct ScheduleChangeset {
    starts_at: DateTime<Utc>,
    sales_open_at: Option<Option<DateTime<Utc>>>,
    max_seats_per_buyer: Option<i32>,
}

impl From<&ScheduleChange> for ScheduleChangeset {
    fn from(c: &ScheduleChange) -> Self {
        Self {
            starts_at: c.starts_at,
            sales_open_at: c.sales_open_at,
            max_seats_per_buyer: c.max_seats_per_buyer.map(MaxSeatsPerBuyer::get),
        }
    }
}

/// Why a schedule insert rolled back.
enum ScheduleInsert {
    /// The concert does not exist (the foreign key refused the row).
    NoConcert,
    Failed(RepoError),
}

impl From<RepoError> for ScheduleInsert {
    fn from(e: RepoError) -> Self {
        Self::Failed(e)
    }
}

/// A schedule's seats, ordered by id.
async fn seats_of(
    conn: &mut AsyncPgConnection,
    schedule: ScheduleId,
) -> Result<Vec<Seat>, RepoError> {
    seats::table
        .filter(seats::schedule_id.eq(schedule.0))
        .order(seats::id)
        .select(SeatRow::as_select())
        .load(conn)
        .await
        .map_err(repo_error)?
        .into_iter()
        .map(Seat::try_from)
        .collect()
}
