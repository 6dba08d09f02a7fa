//! The public catalogue: concerts, their schedules and seat maps.

use crate::*;
use std::sync::Arc;

#[derive(Clone)]
pub struct Catalogue {
    catalog: Arc<dyn CatalogRepository>,
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogue").finish_non_exhaustive()
    }
}

impl Catalogue {
    pub fn new(catalog: Arc<dyn CatalogRepository>) -> Self {
        Self { catalog }
    }

    pub async fn list_concerts(&self) -> Result<Vec<Concert>, RepoError> {
        self.catalog.list_concerts().await
    }

    /// Every schedule of every concert (the audit's list).
    pub async fn all_schedules(&self) -> Result<Vec<Schedule>, RepoError> {
        let mut all = Vec::new();
        for concert in self.catalog.list_concerts().await? {
            all.extend(self.catalog.list_schedules(concert.id).await?);
        }
        Ok(all)
    }

    pub async fn find_concert(&self, id: ConcertId) -> Result<Option<Concert>, RepoError> {
        self.catalog.find_concert(id).await
    }

    /// `None` when the concert does not exist.
    pub async fn list_schedules(&self, id: ConcertId) -> Result<Option<Vec<Schedule>>, RepoError> {
        if self.catalog.find_concert(id).await?.is_none() {
            return Ok(None);
        }
        self.catalog.list_schedules(id).await.map(Some)
    }

    /// The seat map of a schedule of a concert, layout and statuses read
    /// together; `None` when the pair does not exist.
    pub async fn seat_map(
        &self,
        concert: ConcertId,
        schedule: ScheduleId,
    ) -> Result<Option<SeatMap>, RepoError> {
        let map = self.catalog.find_seat_map(schedule).await?;
        Ok(map.filter(|m| m.layout.concert == concert))
    }

    /// The statuses of a schedule's seats, in the order of its layout, for
    /// a reader that keeps the layout; `None` once the schedule is gone.
    pub async fn seat_statuses(
        &self,
        schedule: ScheduleId,
    ) -> Result<Option<SeatStatuses>, RepoError> {
        self.catalog.seat_statuses(schedule).await
    }
}
