//! What every `CatalogRepository` must do for the seat map: the layout and
//! the statuses it reads are the seats, in seat id order, position by
//! position, and a schedule that does not exist (or no longer does) has
//! neither.
//!
//! An adapter's test makes a schedule with [`schedule_for_seat_map`],
//! changes some seats its own way (so the statuses are not all alike), then
//! runs [`seat_map_reads_agree_with_the_seats`].

use booking_domain::*;
use chrono::{Duration, Utc};

/// A concert with one schedule of two sections at different prices
/// (2 x 3 seats at 1000, 1 x 4 at 2500).
pub async fn schedule_for_seat_map(catalog: &dyn CatalogRepository) -> Schedule {
    let concert = catalog
        .insert_concert(&ConcertDetails::parse("Map", "Readers", "Hall", "").unwrap())
        .await
        .unwrap();
    let section = |name: &str, rows, seats_per_row, price| SectionSpec {
        name: name.into(),
        rows,
        seats_per_row,
        price,
    };
    let grid = SeatGrid::parse(vec![section("A", 2, 3, 1000), section("B", 1, 4, 2500)]).unwrap();
    catalog
        .insert_schedule(
            concert.id,
            Utc::now() + Duration::days(30),
            &grid,
            &SaleSettings::default(),
        )
        .await
        .unwrap()
        .expect("the concert exists")
}

/// `find_seat_map`, `seat_statuses` and `seat_counts` agree with
/// `list_seats`; all are `None` for an unknown schedule and, at the end,
/// for `schedule` deleted.
pub async fn seat_map_reads_agree_with_the_seats(
    catalog: &dyn CatalogRepository,
    schedule: &Schedule,
) {
    let seats = catalog.list_seats(schedule.id).await.unwrap();
    assert_eq!(seats.len(), 10);
    assert!(seats.windows(2).all(|w| w[0].id < w[1].id));

    let map = catalog
        .find_seat_map(schedule.id)
        .await
        .unwrap()
        .expect("the schedule exists");
    assert_eq!(map.layout.schedule, schedule.id);
    assert_eq!(map.layout.concert, schedule.concert_id);
    assert_eq!(map.layout.total_seats, 10);
    let places: Vec<_> = seats
        .iter()
        .map(|s| (s.id, s.section.as_str(), s.row, s.number, s.price))
        .collect();
    let read: Vec<_> = map
        .layout
        .seats
        .iter()
        .map(|s| (s.id, s.section.as_str(), s.row, s.number, s.price))
        .collect();
    assert_eq!(read, places, "the layout is the seats, in id order");
    let statuses: Vec<_> = seats.iter().map(|s| s.status).collect();
    assert_eq!(map.statuses.0, statuses, "position by position");
    assert!(map.statuses.fit(&map.layout));

    let alone = catalog.seat_statuses(schedule.id).await.unwrap();
    assert_eq!(alone.as_ref(), Some(&map.statuses));

    let count = |status| seats.iter().filter(|s| s.status == status).count() as i64;
    let counts = SeatCounts {
        available: count(SeatStatus::Available),
        held: count(SeatStatus::Held),
        sold: count(SeatStatus::Reserved),
    };
    assert_eq!(
        catalog.seat_counts(schedule.id).await.unwrap(),
        Some(counts)
    );

    let unknown = ScheduleId(schedule.id.0 + 1_000_000);
    assert_eq!(catalog.find_seat_map(unknown).await.unwrap(), None);
    assert_eq!(catalog.seat_statuses(unknown).await.unwrap(), None);
    assert_eq!(catalog.seat_counts(unknown).await.unwrap(), None);

    assert_eq!(
        catalog.delete_schedule(schedule.id).await.unwrap(),
        Deleted::Gone,
        "the check deletes its schedule: give it one without reservations"
    );
    assert_eq!(catalog.find_seat_map(schedule.id).await.unwrap(), None);
    assert_eq!(catalog.seat_statuses(schedule.id).await.unwrap(), None);
    assert_eq!(catalog.seat_counts(schedule.id).await.unwrap(), None);
}
