//! The waiting room: enter, see one's place, get the entry token, and the
//! admission step that every instance runs on a timer.

use crate::*;
use chrono::Duration;
use std::sync::Arc;

/// Where a user stands in a schedule's waiting room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueView {
    pub position: QueuePosition,
    /// A rough estimate; 0 once admitted.
    pub estimated_wait: Duration,
}

/// One user's standing, as the live stream reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    Waiting(QueueView),
    /// Admitted: the unused entry token, or `None` while an attempt holds
    /// it or once it is used.
    Admitted(Option<EntryToken>),
    /// Neither waiting nor holding a slot (left, or the token expired).
    Gone,
}

#[derive(Clone)]
pub struct Admissions {
    /// `None` when the waiting room is switched off.
    pub(super) waiting_room: Option<WaitingRoom>,
    pub(super) catalog: Arc<dyn CatalogRepository>,
    pub(super) clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Admissions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admissions")
            .field("waiting_room", &self.waiting_room)
            .finish_non_exhaustive()
    }
}

impl Admissions {
    pub fn enabled(&self) -> bool {
        self.waiting_room.is_some()
    }

    fn room(&self) -> Result<&WaitingRoom, QueueError> {
        self.waiting_room.as_ref().ok_or(QueueError::Disabled)
    }

    fn view(room: &WaitingRoom, position: QueuePosition) -> QueueView {
        let windows = position.position.div_ceil(room.active_limit.max(1) as u64);
        let estimated_wait = room.expected_session * i32::try_from(windows).unwrap_or(i32::MAX);
        QueueView {
            position,
            estimated_wait,
        }
    }

    /// Joins the schedule's waiting room (again: keeps the first place).
    pub async fn enter_queue(
        &self,
        user: UserId,
        schedule: ScheduleId,
    ) -> Result<QueueView, QueueError> {
        let room = self.room()?;
        if self.catalog.find_schedule(schedule).await?.is_none() {
            return Err(QueueError::ScheduleNotFound);
        }
        let position = room.queue.enter(schedule, user, self.clock.now()).await?;
        Ok(Self::view(room, position))
    }

    pub async fn queue_position(
        &self,
        user: UserId,
        schedule: ScheduleId,
    ) -> Result<QueueView, QueueError> {
        let room = self.room()?;
        let position = room
            .queue
            .position(schedule, user, self.clock.now())
            .await?;
        position
            .map(|p| Self::view(room, p))
            .ok_or(QueueError::NotInQueue)
    }

    /// The entry token, once admitted.
    pub async fn entry_token(
        &self,
        user: UserId,
        schedule: ScheduleId,
    ) -> Result<EntryToken, QueueError> {
        let room = self.room()?;
        let now = self.clock.now();
        if let Some(token) = room.queue.entry_token(schedule, user, now).await? {
            return Ok(token);
        }
        match room.queue.position(schedule, user, now).await? {
            Some(p) if !p.admitted => Err(QueueError::NotAdmittedYet(p.position)),
            Some(_) => Err(QueueError::TokenUsed),
            None => Err(QueueError::NotInQueue),
        }
    }

    /// The standings of many users of one schedule, in the order of
    /// `users`: one positions read for all, and a token read only for those
    /// admitted (the live stream's tick).
    pub async fn standings(
        &self,
        schedule: ScheduleId,
        users: &[UserId],
    ) -> Result<Vec<Standing>, QueueError> {
        let room = self.room()?;
        let now = self.clock.now();
        let positions = room.queue.positions(schedule, users, now).await?;
        let mut standings = Vec::with_capacity(positions.len());
        for (user, position) in users.iter().zip(positions) {
            standings.push(match position {
                Some(p) if p.admitted => {
                    match room.queue.entry_token(schedule, *user, now).await {
                        Ok(token) => Standing::Admitted(token),
                        // The others' standings are still worth sending.
                        Err(e) => {
                            tracing::warn!(%schedule, error = %e, "entry token unavailable");
                            Standing::Admitted(None)
                        }
                    }
                }
                Some(p) => Standing::Waiting(Self::view(room, p)),
                None => Standing::Gone,
            });
        }
        Ok(standings)
    }

    /// Admits the next users of every schedule with a queue, up to the
    /// window; returns how many were admitted. Runs on a timer in every
    /// instance: admission is atomic in the queue, so instances do not race.
    pub async fn admit_waiting(&self) -> Result<usize, QueueError> {
        let room = self.room()?;
        let now = self.clock.now();
        let mut admitted = 0;
        for schedule in room.queue.schedules_waiting().await? {
            admitted += room
                .queue
                .admit_next(schedule, room.active_limit, now)
                .await?
                .len();
        }
        Ok(admitted)
    }

    /// Waiting and active users of every schedule with a queue (metrics);
    /// empty when the waiting room is off.
    pub async fn queue_stats(&self) -> Result<Vec<(ScheduleId, QueueStats)>, QueueError> {
        let Some(room) = &self.waiting_room else {
            return Ok(Vec::new());
        };
        let now = self.clock.now();
        let mut all = Vec::new();
        for schedule in room.queue.schedules_waiting().await? {
            all.push((schedule, room.queue.stats(schedule, now).await?));
        }
        Ok(all)
    }
}
