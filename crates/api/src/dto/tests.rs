use super::*;

fn layout(seats: i64) -> SeatLayout {
    SeatLayout {
        schedule: ScheduleId(1),
        concert: ConcertId(1),
        total_seats: i32::try_from(seats).unwrap(),
        seats: (1..=seats)
            .map(|n| SeatPlace {
                id: SeatId(n),
                section: "A".into(),
                row: 1,
                number: i32::try_from(n).unwrap(),
                price: 5000,
            })
            .collect(),
    }
}

#[test]
fn the_compact_form_encodes_the_documented_example() {
    use SeatStatus::*;
    let statuses = SeatStatuses(vec![
        Available, Available, Held, Available, Reserved, Available, Available, Available,
        Available, Available,
    ]);
    assert_eq!(pack_statuses(&statuses), [0x10, 0x02, 0x00]);
    let compact = SeatStatusesResponse::new(&layout(10), &statuses);
    assert_eq!(compact.statuses, "EAIA");
    assert_eq!(compact.available_seats, 8);
    assert_eq!(compact.encoding, "2bit-le");
}

#[test]
fn the_full_map_keeps_its_fields_and_their_order() {
    let statuses = SeatStatuses(vec![SeatStatus::Held]);
    let body = serde_json::to_string(&SeatMapResponse::new(&layout(1), &statuses)).unwrap();
    assert_eq!(
        body,
        r#"{"concertId":1,"scheduleId":1,"totalSeats":1,"availableSeats":0,"seats":[{"id":1,"section":"A","row":1,"number":1,"price":5000,"status":"HELD","available":false}]}"#
    );
}
