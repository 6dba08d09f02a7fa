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

    async fn seat_statuses(&self, schedule: ScheduleId) -> Result<Option<SeatStatuses>, RepoError> {
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
