//! Catalogue management (the ADMIN role): concerts and schedules.

use crate::*;
use chrono::{DateTime, Utc};
use std::sync::Arc;

#[derive(Clone)]
pub struct CatalogueAdmin {
    catalog: Arc<dyn CatalogRepository>,
}

impl std::fmt::Debug for CatalogueAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogueAdmin").finish_non_exhaustive()
    }
}

/// What the user is told of a delete the store refused or did not find.
fn deleted(outcome: Deleted, what: &'static str) -> Result<(), AdminError> {
    match outcome {
        Deleted::Gone => Ok(()),
        Deleted::NotFound => Err(AdminError::NotFound(what)),
        Deleted::InUse => Err(AdminError::Conflict(format!(
            "the {what} has reservations and cannot be deleted"
        ))),
    }
}

impl CatalogueAdmin {
    pub fn new(catalog: Arc<dyn CatalogRepository>) -> Self {
        Self { catalog }
    }

    pub async fn create_concert(&self, details: ConcertDetails) -> Result<Concert, AdminError> {
        Ok(self.catalog.insert_concert(&details).await?)
    }

    pub async fn update_concert(
        &self,
        id: ConcertId,
        details: ConcertDetails,
    ) -> Result<Concert, AdminError> {
        self.catalog
            .update_concert(id, &details)
            .await?
            .ok_or(AdminError::NotFound("concert"))
    }

    pub async fn delete_concert(&self, id: ConcertId) -> Result<(), AdminError> {
        deleted(self.catalog.delete_concert(id).await?, "concert")
    }

    pub async fn create_schedule(
        &self,
        concert: ConcertId,
        starts_at: DateTime<Utc>,
        grid: SeatGrid,
        sale: SaleSettings,
    ) -> Result<Schedule, AdminError> {
        self.catalog
            .insert_schedule(concert, starts_at, &grid, &sale)
            .await?
            .ok_or(AdminError::NotFound("concert"))
    }

    pub async fn update_schedule(
        &self,
        id: ScheduleId,
        change: ScheduleChange,
    ) -> Result<Schedule, AdminError> {
        self.catalog
            .update_schedule(id, &change)
            .await?
            .ok_or(AdminError::NotFound("schedule"))
    }

    pub async fn delete_schedule(&self, id: ScheduleId) -> Result<(), AdminError> {
        deleted(self.catalog.delete_schedule(id).await?, "schedule")
    }
}
