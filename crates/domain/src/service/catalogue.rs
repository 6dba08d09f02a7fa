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

    /// The seat map of a schedule of a concert; `None` when the pair does not exist.
    pub async fn seat_map(
        &self,
        concert: ConcertId,
        schedule: ScheduleId,
    ) -> Result<Option<(Schedule, Vec<Seat>)>, RepoError> {
        match self.catalog.find_schedule(schedule).await? {
            Some(s) if s.concert_id == concert => {
                let seats = self.catalog.list_seats(schedule).await?;
                Ok(Some((s, seats)))
            }
            _ => Ok(None),
        }
    }
}
