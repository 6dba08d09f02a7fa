//! The seat map from memory. Per schedule, each instance keeps the map's
//! three HTTP representations already encoded (the full JSON, the layout,
//! the compact statuses), each with its ETag, and rebuilds them when a
//! request finds them older than `catalog.seat_map_max_age_ms`.
//!
//! One rebuild at a time per schedule (single flight): a request that finds
//! the map too old waits for the rebuild under way, if any, and takes its
//! result when that is fresh enough for it; only when none is does it
//! rebuild, itself and alone. A request therefore never sees statuses read
//! more than the max age before it arrived, and a flood of readers costs
//! one read of the store per max age, whatever their number.
//!
//! The layout is read once per schedule (a schedule's seats never change);
//! a rebuild reads the statuses alone. A stale map is fine: the hold, not
//! the map, decides who gets a seat.

use crate::dto::{SeatLayoutResponse, SeatMapResponse, SeatStatusesResponse};
use actix_web::web::Bytes;
use async_trait::async_trait;
use booking_domain::{
    Catalogue, ConcertId, RepoError, ScheduleId, SeatLayout, SeatMap, SeatStatuses,
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use tokio::time::{Duration, Instant};

/// Why a seat map could not be served.
#[derive(Debug, thiserror::Error)]
pub enum SeatMapError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error("encoding the seat map: {0}")]
    Encode(#[from] serde_json::Error),
}

/// What the cache reads: the catalogue, or a fake in the unit tests.
#[async_trait]
pub trait SeatReads: Send + Sync {
    /// Layout and statuses; `None` when the schedule is not this concert's.
    async fn seat_map(
        &self,
        concert: ConcertId,
        schedule: ScheduleId,
    ) -> Result<Option<SeatMap>, RepoError>;
    /// The statuses alone; `None` when the schedule is gone.
    async fn seat_statuses(&self, schedule: ScheduleId) -> Result<Option<SeatStatuses>, RepoError>;
}

#[async_trait]
impl SeatReads for Catalogue {
    async fn seat_map(
        &self,
        concert: ConcertId,
        schedule: ScheduleId,
    ) -> Result<Option<SeatMap>, RepoError> {
        Catalogue::seat_map(self, concert, schedule).await
    }

    async fn seat_statuses(&self, schedule: ScheduleId) -> Result<Option<SeatStatuses>, RepoError> {
        Catalogue::seat_statuses(self, schedule).await
    }
}

/// One representation, encoded once: its bytes and its strong ETag.
#[derive(Debug)]
pub struct Encoded {
    pub body: Bytes,
    /// The ETag without its quotes: the form's name and a digest of `body`,
    /// so every instance gives the same bytes the same tag.
    pub etag: String,
}

impl Encoded {
    fn json(form: &str, value: &impl serde::Serialize) -> Result<Self, serde_json::Error> {
        let body = serde_json::to_vec(value)?;
        let digest = Sha256::digest(&body);
        let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            etag: format!("{form}-{hex}"),
            body: Bytes::from(body),
        })
    }
}

/// A schedule's map as one rebuild left it.
#[derive(Debug)]
pub struct SeatMapSnapshot {
    concert: ConcertId,
    /// When its statuses were read (the start of the read).
    read_at: Instant,
    /// `GET .../seats`: layout and statuses, the original JSON.
    pub map: Encoded,
    /// `GET .../seats/statuses`: the compact statuses.
    pub statuses: Encoded,
    /// `GET .../seats/layout`: encoded once per schedule.
    pub layout: Arc<Encoded>,
}

impl SeatMapSnapshot {
    fn encode(
        layout: &KnownLayout,
        statuses: &SeatStatuses,
        read_at: Instant,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            concert: layout.seats.concert,
            read_at,
            map: Encoded::json("map", &SeatMapResponse::new(&layout.seats, statuses))?,
            statuses: Encoded::json(
                "statuses",
                &SeatStatusesResponse::new(&layout.seats, statuses),
            )?,
            layout: layout.encoded.clone(),
        })
    }
}

/// A layout read once, and its encoding.
#[derive(Debug)]
struct KnownLayout {
    seats: SeatLayout,
    encoded: Arc<Encoded>,
}

impl KnownLayout {
    fn encode(seats: SeatLayout) -> Result<Self, serde_json::Error> {
        let encoded = Arc::new(Encoded::json("layout", &SeatLayoutResponse::new(&seats))?);
        Ok(Self { seats, encoded })
    }
}

/// One schedule's place in the cache.
#[derive(Debug, Default)]
struct Slot {
    /// Held by the one request that rebuilds, for the whole rebuild: the
    /// others queue behind it. Keeps the layout once it is read.
    rebuild: tokio::sync::Mutex<Option<Arc<KnownLayout>>>,
    /// The latest rebuild's result, read without waiting.
    current: RwLock<Option<Arc<SeatMapSnapshot>>>,
    /// When it was last asked for, in ms since the cache started (eviction).
    last_read: AtomicU64,
}

impl Slot {
    /// The current snapshot if its statuses were read at most `max_age`
    /// before `arrived`.
    fn fresh_for(&self, arrived: Instant, max_age: Duration) -> Option<Arc<SeatMapSnapshot>> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current
            .as_ref()
            .filter(|s| arrived.saturating_duration_since(s.read_at) <= max_age)
            .cloned()
    }

    fn replace(&self, snapshot: Option<Arc<SeatMapSnapshot>>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = snapshot;
    }

    fn concert(&self) -> Option<ConcertId> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current.as_ref().map(|s| s.concert)
    }
}

/// The seat maps of this instance, shared by every worker.
#[derive(Clone)]
pub struct SeatMaps {
    inner: Arc<Inner>,
}

struct Inner {
    reads: Arc<dyn SeatReads>,
    max_age: Duration,
    capacity: usize,
    // Held for a map operation only, never across an `.await`; what it
    // guards stays whole if a holder panics.
    slots: RwLock<HashMap<ScheduleId, Arc<Slot>>>,
    rebuilds: AtomicU64,
    started: Instant,
}

impl std::fmt::Debug for SeatMaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeatMaps")
            .field("max_age", &self.inner.max_age)
            .field("capacity", &self.inner.capacity)
            .field("cached", &self.cached())
            .finish_non_exhaustive()
    }
}

impl SeatMaps {
    /// Keeps at most `capacity` schedules (at least one).
    pub fn new(reads: Arc<dyn SeatReads>, max_age: Duration, capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                reads,
                max_age,
                capacity: capacity.max(1),
                slots: RwLock::new(HashMap::new()),
                rebuilds: AtomicU64::new(0),
                started: Instant::now(),
            }),
        }
    }

    /// The map of `schedule` of `concert`, with statuses read at most the
    /// max age before this call; `None` when the pair does not exist.
    pub async fn get(
        &self,
        concert: ConcertId,
        schedule: ScheduleId,
    ) -> Result<Option<Arc<SeatMapSnapshot>>, SeatMapError> {
        let arrived = Instant::now();
        let max_age = self.inner.max_age;
        let slot = self.slot(schedule, arrived);
        let of_concert = |s: Arc<SeatMapSnapshot>| (s.concert == concert).then_some(s);
        if let Some(fresh) = slot.fresh_for(arrived, max_age) {
            return Ok(of_concert(fresh));
        }
        let mut layout = slot.rebuild.lock().await;
        // Whoever held the lock before may have rebuilt late enough for us.
        if let Some(fresh) = slot.fresh_for(arrived, max_age) {
            return Ok(of_concert(fresh));
        }
        let read_at = Instant::now();
        self.inner.rebuilds.fetch_add(1, Ordering::Relaxed);
        let statuses = match layout.as_ref() {
            Some(_) => self.inner.reads.seat_statuses(schedule).await?,
            None => None,
        };
        let rebuilt = match (layout.as_ref(), statuses) {
            (Some(known), Some(statuses)) if statuses.fit(&known.seats) => {
                Some((known.clone(), statuses))
            }
            // First read, or the seats no longer match the layout: read both.
            _ => match self.inner.reads.seat_map(concert, schedule).await? {
                Some(map) => Some((Arc::new(KnownLayout::encode(map.layout)?), map.statuses)),
                None => None,
            },
        };
        let Some((known, statuses)) = rebuilt else {
            *layout = None;
            slot.replace(None);
            self.remove_slot(schedule, &slot);
            return Ok(None);
        };
        let snapshot = Arc::new(SeatMapSnapshot::encode(&known, &statuses, read_at)?);
        *layout = Some(known);
        slot.replace(Some(snapshot.clone()));
        Ok(of_concert(snapshot))
    }

    /// Drops a deleted schedule's map (other instances drop theirs at their
    /// next rebuild, which finds it gone).
    pub fn forget_schedule(&self, schedule: ScheduleId) {
        self.write_slots().remove(&schedule);
    }

    /// Drops the maps of a deleted concert's schedules.
    pub fn forget_concert(&self, concert: ConcertId) {
        self.write_slots()
            .retain(|_, slot| slot.concert() != Some(concert));
    }

    /// Reads of the store made to rebuild a map, since start-up.
    pub fn rebuilds(&self) -> u64 {
        self.inner.rebuilds.load(Ordering::Relaxed)
    }

    /// Schedules whose map is kept now.
    pub fn cached(&self) -> usize {
        self.inner
            .slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn write_slots(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<ScheduleId, Arc<Slot>>> {
        self.inner
            .slots
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The schedule's slot, made (evicting the least recently read when
    /// full) if it has none.
    fn slot(&self, schedule: ScheduleId, now: Instant) -> Arc<Slot> {
        let now_ms = u64::try_from(
            now.saturating_duration_since(self.inner.started)
                .as_millis(),
        )
        .unwrap_or(u64::MAX);
        let found = self
            .inner
            .slots
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&schedule)
            .cloned();
        let slot = match found {
            Some(slot) => slot,
            None => {
                // Looked up again under the write lock: two first readers of
                // a schedule share one slot.
                let mut slots = self.write_slots();
                if let Some(slot) = slots.get(&schedule) {
                    slot.clone()
                } else {
                    if slots.len() >= self.inner.capacity {
                        let oldest = slots
                            .iter()
                            .min_by_key(|(_, s)| s.last_read.load(Ordering::Relaxed))
                            .map(|(id, _)| *id);
                        if let Some(oldest) = oldest {
                            slots.remove(&oldest);
                        }
                    }
                    let slot = Arc::new(Slot::default());
                    slots.insert(schedule, slot.clone());
                    slot
                }
            }
        };
        slot.last_read.store(now_ms, Ordering::Relaxed);
        slot
    }

    /// Removes `slot` unless another has replaced it meanwhile.
    fn remove_slot(&self, schedule: ScheduleId, slot: &Arc<Slot>) {
        let mut slots = self.write_slots();
        if slots.get(&schedule).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            slots.remove(&schedule);
        }
    }
}

#[cfg(test)]
mod tests;
