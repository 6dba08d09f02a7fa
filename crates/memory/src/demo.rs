//! The demo catalogue the API's embedded mode starts with, so a first look
//! has something to book.

use crate::store::MemoryStore;
use booking_domain::{
    AdminError, CatalogRepository, Concert, ConcertDetails, SaleSettings, Schedule, SeatGrid,
    SectionSpec,
};
use chrono::{Duration, Utc};

/// What `seed_demo` created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoCatalog {
    pub concert: Concert,
    pub schedule: Schedule,
}

/// Creates "Demo Night" with one schedule 30 days from now and 100 seats:
/// section A (5 rows x 10 at 15000) and section B (5 rows x 10 at 9000).
pub async fn seed_demo(store: &MemoryStore) -> Result<DemoCatalog, AdminError> {
    let details = ConcertDetails::parse(
        "Demo Night",
        "The In-Memory Orchestra",
        "Embedded Hall",
        "A demo concert of the embedded mode: nothing here is stored on disk.",
    )
    .map_err(AdminError::Invalid)?;
    let section = |name: &str, price| SectionSpec {
        name: name.to_owned(),
        rows: 5,
        seats_per_row: 10,
        price,
    };
    let grid = SeatGrid::parse(vec![section("A", 15_000), section("B", 9_000)])
        .map_err(AdminError::Invalid)?;
    let concert = store.insert_concert(&details).await?;
    let schedule = store
        .insert_schedule(
            concert.id,
            Utc::now() + Duration::days(30),
            &grid,
            &SaleSettings::default(),
        )
        .await?
        .ok_or(AdminError::NotFound("concert"))?;
    Ok(DemoCatalog { concert, schedule })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn demo_has_one_schedule_of_100_available_seats() {
        let store = MemoryStore::new();
        let demo = seed_demo(&store).await.unwrap();
        assert_eq!(
            store.list_concerts().await.unwrap(),
            vec![demo.concert.clone()]
        );
        assert_eq!(demo.schedule.total_seats, 100);
        assert_eq!(demo.schedule.available_seats, 100);
        assert!(demo.schedule.starts_at > Utc::now() + Duration::days(29));
        let seats = store.list_seats(demo.schedule.id).await.unwrap();
        assert_eq!(seats.iter().filter(|s| s.section == "A").count(), 50);
        assert!(seats
            .iter()
            .all(|s| s.price == if s.section == "A" { 15_000 } else { 9_000 }));
    }
}
