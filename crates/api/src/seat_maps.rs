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
mod tests {
    use super::*;
    use booking_domain::{SeatId, SeatPlace, SeatStatus};
    use std::sync::Mutex;
    use tokio::sync::watch;

    const CONCERT: ConcertId = ConcertId(1);
    const SCHEDULE: ScheduleId = ScheduleId(10);
    const MAX_AGE: Duration = Duration::from_millis(250);

    /// A catalogue of any number of four-seat schedules of `CONCERT`, which
    /// counts its reads and can hold them until it is opened.
    struct FakeCatalogue {
        statuses: Mutex<Vec<SeatStatus>>,
        deleted: Mutex<bool>,
        open: watch::Sender<bool>,
        map_reads: AtomicU64,
        status_reads: AtomicU64,
    }

    impl FakeCatalogue {
        fn new() -> Arc<Self> {
            Arc::new(Self {
                statuses: Mutex::new(vec![SeatStatus::Available; 4]),
                deleted: Mutex::new(false),
                open: watch::channel(true).0,
                map_reads: AtomicU64::new(0),
                status_reads: AtomicU64::new(0),
            })
        }

        fn set_status(&self, seat: usize, status: SeatStatus) {
            self.statuses.lock().unwrap()[seat] = status;
        }

        /// Reads wait until the gate is opened.
        fn close(&self) {
            self.open.send_replace(false);
        }

        fn reopen(&self) {
            self.open.send_replace(true);
        }

        async fn gate(&self) {
            let mut open = self.open.subscribe();
            open.wait_for(|o| *o).await.unwrap();
        }

        fn reads(&self) -> (u64, u64) {
            (
                self.map_reads.load(Ordering::SeqCst),
                self.status_reads.load(Ordering::SeqCst),
            )
        }

        fn current(&self, schedule: ScheduleId) -> Option<SeatStatuses> {
            let deleted = *self.deleted.lock().unwrap();
            (!deleted).then(|| {
                let mut statuses = self.statuses.lock().unwrap().clone();
                // Each schedule its own: the first seat tells them apart.
                if schedule != SCHEDULE {
                    statuses[0] = SeatStatus::Reserved;
                }
                SeatStatuses(statuses)
            })
        }
    }

    #[async_trait]
    impl SeatReads for FakeCatalogue {
        async fn seat_map(
            &self,
            concert: ConcertId,
            schedule: ScheduleId,
        ) -> Result<Option<SeatMap>, RepoError> {
            self.map_reads.fetch_add(1, Ordering::SeqCst);
            // What the store holds when the read starts.
            let statuses = self.current(schedule);
            self.gate().await;
            let Some(statuses) = statuses.filter(|_| concert == CONCERT) else {
                return Ok(None);
            };
            let seats = (1..=4)
                .map(|n| SeatPlace {
                    id: SeatId(schedule.0 * 100 + n),
                    section: "A".into(),
                    row: 1,
                    number: i32::try_from(n).unwrap(),
                    price: 5000,
                })
                .collect();
            let layout = SeatLayout {
                schedule,
                concert: CONCERT,
                total_seats: 4,
                seats,
            };
            Ok(Some(SeatMap { layout, statuses }))
        }

        async fn seat_statuses(
            &self,
            schedule: ScheduleId,
        ) -> Result<Option<SeatStatuses>, RepoError> {
            self.status_reads.fetch_add(1, Ordering::SeqCst);
            let statuses = self.current(schedule);
            self.gate().await;
            Ok(statuses)
        }
    }

    fn cache(catalogue: &Arc<FakeCatalogue>, max_age: Duration, capacity: usize) -> SeatMaps {
        SeatMaps::new(catalogue.clone(), max_age, capacity)
    }

    async fn first_status(maps: &SeatMaps, schedule: ScheduleId) -> String {
        let snapshot = maps.get(CONCERT, schedule).await.unwrap().unwrap();
        let map: serde_json::Value = serde_json::from_slice(&snapshot.map.body).unwrap();
        map["seats"][0]["status"].as_str().unwrap().to_owned()
    }

    /// Lets every spawned task run until it waits.
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_map_is_served_from_memory_until_it_is_older_than_the_max_age() {
        let catalogue = FakeCatalogue::new();
        let maps = cache(&catalogue, MAX_AGE, 8);
        assert_eq!(first_status(&maps, SCHEDULE).await, "AVAILABLE");
        catalogue.set_status(0, SeatStatus::Held);

        tokio::time::advance(MAX_AGE).await;
        assert_eq!(
            first_status(&maps, SCHEDULE).await,
            "AVAILABLE",
            "a map exactly the max age old is still served"
        );
        assert_eq!(maps.rebuilds(), 1);

        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(first_status(&maps, SCHEDULE).await, "HELD");
        assert_eq!(maps.rebuilds(), 2);
        assert_eq!(
            catalogue.reads(),
            (1, 1),
            "the layout is read once, then the statuses alone"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn with_a_max_age_of_zero_each_read_sees_what_was_written_before_it() {
        let catalogue = FakeCatalogue::new();
        let maps = cache(&catalogue, Duration::ZERO, 8);
        assert_eq!(first_status(&maps, SCHEDULE).await, "AVAILABLE");
        catalogue.set_status(0, SeatStatus::Reserved);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(first_status(&maps, SCHEDULE).await, "RESERVED");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_readers_of_a_stale_map_share_one_rebuild() {
        let catalogue = FakeCatalogue::new();
        let maps = cache(&catalogue, MAX_AGE, 8);
        maps.get(CONCERT, SCHEDULE).await.unwrap();
        catalogue.set_status(2, SeatStatus::Held);
        tokio::time::advance(MAX_AGE * 2).await;

        catalogue.close();
        let readers: Vec<_> = (0..50)
            .map(|_| {
                let maps = maps.clone();
                tokio::spawn(async move { maps.get(CONCERT, SCHEDULE).await })
            })
            .collect();
        settle().await;
        assert_eq!(
            catalogue.reads(),
            (1, 1),
            "one rebuild under way, 49 waiting"
        );
        catalogue.reopen();

        let mut snapshots = Vec::new();
        for reader in readers {
            snapshots.push(reader.await.unwrap().unwrap().unwrap());
        }
        assert_eq!(catalogue.reads(), (1, 1));
        assert_eq!(maps.rebuilds(), 2);
        assert!(snapshots.iter().all(|s| Arc::ptr_eq(s, &snapshots[0])));
        assert!(snapshots[0].statuses.etag.starts_with("statuses-"));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_first_readers_share_one_read_of_the_layout() {
        let catalogue = FakeCatalogue::new();
        let maps = cache(&catalogue, MAX_AGE, 8);
        catalogue.close();
        let readers: Vec<_> = (0..20)
            .map(|_| {
                let maps = maps.clone();
                tokio::spawn(async move { maps.get(CONCERT, SCHEDULE).await })
            })
            .collect();
        settle().await;
        catalogue.reopen();
        for reader in readers {
            assert!(reader.await.unwrap().unwrap().is_some());
        }
        assert_eq!(catalogue.reads(), (1, 0));
        assert_eq!(maps.rebuilds(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_arriving_after_a_rebuild_got_too_old_waits_for_a_newer_one() {
        // A rebuild slower than the max age: a reader that arrived more than
        // the max age after that rebuild read does not take its result.
        let catalogue = FakeCatalogue::new();
        let maps = cache(&catalogue, MAX_AGE, 8);
        maps.get(CONCERT, SCHEDULE).await.unwrap();
        tokio::time::advance(MAX_AGE * 2).await;
        catalogue.close();
        let early = tokio::spawn({
            let maps = maps.clone();
            async move { maps.get(CONCERT, SCHEDULE).await }
        });
        settle().await;
        tokio::time::advance(MAX_AGE * 2).await;
        catalogue.set_status(0, SeatStatus::Held);
        let late = tokio::spawn({
            let maps = maps.clone();
            async move { first_status(&maps, SCHEDULE).await }
        });
        settle().await;
        assert_eq!(
            catalogue.reads(),
            (1, 1),
            "the late reader waits, it does not read"
        );
        catalogue.reopen();
        early.await.unwrap().unwrap();
        assert_eq!(late.await.unwrap(), "HELD");
        assert_eq!(catalogue.reads(), (1, 2), "then it rebuilds, once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_schedule_of_another_concert_or_deleted_is_not_kept() {
        let catalogue = FakeCatalogue::new();
        let maps = cache(&catalogue, MAX_AGE, 8);
        assert!(maps.get(ConcertId(2), SCHEDULE).await.unwrap().is_none());
        assert_eq!(maps.cached(), 0, "no slot for a pair that does not exist");

        assert!(maps.get(CONCERT, SCHEDULE).await.unwrap().is_some());
        assert!(
            maps.get(ConcertId(2), SCHEDULE).await.unwrap().is_none(),
            "the cached map is not served through another concert"
        );
        *catalogue.deleted.lock().unwrap() = true;
        tokio::time::advance(MAX_AGE * 2).await;
        assert!(maps.get(CONCERT, SCHEDULE).await.unwrap().is_none());
        assert_eq!(maps.cached(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_cache_keeps_at_most_its_capacity_dropping_the_least_recently_read() {
        let catalogue = FakeCatalogue::new();
        let maps = cache(&catalogue, MAX_AGE, 2);
        for schedule in [1, 2, 1, 3] {
            tokio::time::advance(Duration::from_millis(1)).await;
            maps.get(CONCERT, ScheduleId(schedule)).await.unwrap();
        }
        assert_eq!(maps.cached(), 2);
        assert_eq!(
            catalogue.reads(),
            (3, 0),
            "1 and 2 read, 1 from memory, 3 read"
        );
        maps.get(CONCERT, ScheduleId(1)).await.unwrap();
        assert_eq!(catalogue.reads(), (3, 0), "1 was read last, 2 went");
        maps.get(CONCERT, ScheduleId(2)).await.unwrap();
        assert_eq!(catalogue.reads(), (4, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn equal_maps_get_equal_etags_and_a_change_a_new_one() {
        let catalogue = FakeCatalogue::new();
        let (one, two) = (cache(&catalogue, MAX_AGE, 8), cache(&catalogue, MAX_AGE, 8));
        let a = one.get(CONCERT, SCHEDULE).await.unwrap().unwrap();
        let b = two.get(CONCERT, SCHEDULE).await.unwrap().unwrap();
        assert_eq!(a.map.etag, b.map.etag, "two instances, one tag");
        assert_eq!(a.statuses.etag, b.statuses.etag);
        assert_eq!(a.layout.etag, b.layout.etag);

        catalogue.set_status(3, SeatStatus::Reserved);
        tokio::time::advance(MAX_AGE * 2).await;
        let c = one.get(CONCERT, SCHEDULE).await.unwrap().unwrap();
        assert_ne!(c.map.etag, a.map.etag);
        assert_ne!(c.statuses.etag, a.statuses.etag);
        assert_eq!(c.layout.etag, a.layout.etag, "the layout did not change");
    }
}
