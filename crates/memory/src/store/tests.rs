use super::*;
use booking_domain::{NewUser, Nickname, SectionSpec};

fn grid() -> SeatGrid {
    SeatGrid::parse(vec![SectionSpec {
        name: "A".into(),
        rows: 2,
        seats_per_row: 3,
        price: 100,
    }])
    .unwrap()
}

fn details(title: &str) -> ConcertDetails {
    ConcertDetails::parse(title, "artist", "venue", "").unwrap()
}

/// The seat-map reads agree with the seats, some of them held or sold.
#[tokio::test]
async fn seat_map_reads_agree_with_the_seats() {
    use booking_testkit::conformance::catalog;
    let store = MemoryStore::new();
    let schedule = catalog::schedule_for_seat_map(&store).await;
    {
        let mut t = store.tables().unwrap();
        let ids: Vec<SeatId> = t.seats_of(schedule.id).map(|s| s.id).collect();
        t.move_seats(&ids[1..3], SeatStatus::Available, SeatStatus::Held);
        t.move_seats(&ids[2..3], SeatStatus::Held, SeatStatus::Reserved);
    }
    catalog::seat_map_reads_agree_with_the_seats(&store, &schedule).await;
}

fn new_user(email: &str) -> NewUser {
    NewUser {
        email: Email::parse(email).unwrap(),
        nickname: Nickname::parse("nick").unwrap(),
        password_hash: "h".into(),
        role: Role::User,
    }
}

#[tokio::test]
async fn ids_are_sequential_per_table() {
    let store = MemoryStore::new();
    let Inserted::New(a) = store.insert_user(&new_user("a@x.io")).await.unwrap() else {
        panic!("a@x.io is new");
    };
    let Inserted::New(b) = store.insert_user(&new_user("b@x.io")).await.unwrap() else {
        panic!("b@x.io is new");
    };
    let c = store.insert_concert(&details("c")).await.unwrap();
    assert_eq!((a.id, b.id, c.id), (UserId(1), UserId(2), ConcertId(1)));
}

#[tokio::test]
async fn duplicate_email_is_refused() {
    let store = MemoryStore::new();
    store.insert_user(&new_user("a@x.io")).await.unwrap();
    let again = store.insert_user(&new_user("A@X.io")).await;
    assert!(matches!(again, Ok(Inserted::Duplicate)));
}

#[tokio::test]
async fn schedule_creates_every_seat_of_its_grid() {
    let store = MemoryStore::new();
    let concert = store.insert_concert(&details("c")).await.unwrap();
    let schedule = store
        .insert_schedule(concert.id, Utc::now(), &grid(), &SaleSettings::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((schedule.total_seats, schedule.available_seats), (6, 6));
    let seats = store.list_seats(schedule.id).await.unwrap();
    assert_eq!(seats.len(), 6);
    assert!(seats.windows(2).all(|w| w[0].id < w[1].id));
    assert!(seats
        .iter()
        .all(|s| s.status == SeatStatus::Available && s.version == 0));
}

#[tokio::test]
async fn schedule_of_missing_concert_is_not_found() {
    let store = MemoryStore::new();
    let result = store
        .insert_schedule(ConcertId(42), Utc::now(), &grid(), &SaleSettings::default())
        .await;
    assert!(matches!(result, Ok(None)));
}

#[tokio::test]
async fn deleting_a_concert_deletes_its_schedules_and_seats() {
    let store = MemoryStore::new();
    let concert = store.insert_concert(&details("c")).await.unwrap();
    let schedule = store
        .insert_schedule(concert.id, Utc::now(), &grid(), &SaleSettings::default())
        .await
        .unwrap()
        .unwrap();
    store.delete_concert(concert.id).await.unwrap();
    assert!(store.find_schedule(schedule.id).await.unwrap().is_none());
    assert!(store.list_seats(schedule.id).await.unwrap().is_empty());
    assert!(matches!(
        store.delete_concert(concert.id).await,
        Ok(Deleted::NotFound)
    ));
    assert!(matches!(
        store.delete_schedule(schedule.id).await,
        Ok(Deleted::NotFound)
    ));
}
