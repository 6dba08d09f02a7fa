//! Concerts, their schedules and the seat map of each schedule.

use crate::{refuse_control_characters, ConcertId, ScheduleId, SeatId, TextKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concert {
    pub id: ConcertId,
    pub title: String,
    pub artist: String,
    pub venue: String,
    pub description: String,
}

/// The editable fields of a concert, checked once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConcertDetails {
    pub title: String,
    pub artist: String,
    pub venue: String,
    pub description: String,
}

impl ConcertDetails {
    pub fn parse(
        title: &str,
        artist: &str,
        venue: &str,
        description: &str,
    ) -> Result<Self, String> {
        fn required(field: &str, value: &str, max: usize) -> Result<String, String> {
            refuse_control_characters(field, value, TextKind::Line).map_err(|e| e.to_string())?;
            let value = value.trim();
            if value.is_empty() {
                return Err(format!("{field} must not be empty"));
            }
            if value.chars().count() > max {
                return Err(format!("{field} has at most {max} characters"));
            }
            Ok(value.to_owned())
        }
        refuse_control_characters("description", description, TextKind::Paragraphs)
            .map_err(|e| e.to_string())?;
        if description.chars().count() > 4000 {
            return Err("description has at most 4000 characters".into());
        }
        Ok(Self {
            title: required("title", title, 200)?,
            artist: required("artist", artist, 200)?,
            venue: required("venue", venue, 200)?,
            description: description.trim().to_owned(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub id: ScheduleId,
    pub concert_id: ConcertId,
    pub starts_at: DateTime<Utc>,
    pub total_seats: i32,
    pub available_seats: i32,
    /// When the sale opens; `None`: open now.
    pub sales_open_at: Option<DateTime<Utc>>,
    /// The most seats one user may hold or have bought of this schedule at
    /// once (PENDING and CONFIRMED reservations together).
    pub max_seats_per_buyer: i32,
}

/// How many seats one buyer may have of a schedule: 1 to 100, checked once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxSeatsPerBuyer(i32);

impl MaxSeatsPerBuyer {
    pub const DEFAULT: Self = Self(4);
    pub const RANGE: std::ops::RangeInclusive<i32> = 1..=100;

    pub fn parse(n: i64) -> Result<Self, String> {
        i32::try_from(n)
            .ok()
            .filter(|n| Self::RANGE.contains(n))
            .map(Self)
            .ok_or_else(|| {
                format!(
                    "maxSeatsPerBuyer must be between {} and {}, not {n}",
                    Self::RANGE.start(),
                    Self::RANGE.end()
                )
            })
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

impl Default for MaxSeatsPerBuyer {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// How a new schedule is sold: when the sale opens (`None`: at once) and the
/// per-buyer limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaleSettings {
    pub sales_open_at: Option<DateTime<Utc>>,
    pub max_seats_per_buyer: MaxSeatsPerBuyer,
}

/// An admin's change to a schedule. `None` leaves a sale setting as it is;
/// `sales_open_at: Some(None)` opens the sale now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleChange {
    pub starts_at: DateTime<Utc>,
    pub sales_open_at: Option<Option<DateTime<Utc>>>,
    pub max_seats_per_buyer: Option<MaxSeatsPerBuyer>,
}

impl ScheduleChange {
    /// A new start time, the sale settings unchanged.
    pub fn starts_at(starts_at: DateTime<Utc>) -> Self {
        Self {
            starts_at,
            sales_open_at: None,
            max_seats_per_buyer: None,
        }
    }
}

/// A schedule's seats by status, counted in one read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeatCounts {
    pub available: i64,
    pub held: i64,
    /// RESERVED: paid for.
    pub sold: i64,
}

/// The highest price of one seat, in the smallest currency unit: 10^12 (ten
/// billion in a currency of cents), far above any ticket, and small enough
/// that no sum of the prices of a buyer's seats comes near `i64::MAX`.
pub const MAX_SEAT_PRICE: i64 = 1_000_000_000_000;

/// The sum of seat prices, or `None` if it does not fit in an `i64`. Every
/// store adds prices with this (or its SQL twin fails on overflow): prices
/// written before `MAX_SEAT_PRICE` existed must not wrap into a negative
/// total.
pub fn total_price(prices: impl IntoIterator<Item = i64>) -> Option<i64> {
    prices.into_iter().try_fold(0i64, i64::checked_add)
}

/// One section of a seat grid: `rows` x `seats_per_row` seats at one price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionSpec {
    pub name: String,
    pub rows: i32,
    pub seats_per_row: i32,
    pub price: i64,
}

/// The seat grid generated when a schedule is created; parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatGrid(Vec<SectionSpec>);

impl SeatGrid {
    pub const MAX_SEATS: i64 = 20_000;

    pub fn parse(sections: Vec<SectionSpec>) -> Result<Self, String> {
        if sections.is_empty() {
            return Err("a seat grid has at least one section".into());
        }
        let mut total: i64 = 0;
        let mut names = std::collections::HashSet::new();
        for (i, s) in sections.iter().enumerate() {
            refuse_control_characters(format!("sections[{i}].name"), &s.name, TextKind::Line)
                .map_err(|e| e.to_string())?;
            let name = s.name.trim();
            if name.is_empty() || name.chars().count() > 20 {
                return Err("a section name has 1 to 20 characters".into());
            }
            if !names.insert(name.to_owned()) {
                return Err(format!("section '{name}' appears twice"));
            }
            if !(1..=200).contains(&s.rows) || !(1..=200).contains(&s.seats_per_row) {
                return Err(format!(
                    "section '{name}': rows and seatsPerRow are each between 1 and 200"
                ));
            }
            if !(0..=MAX_SEAT_PRICE).contains(&s.price) {
                return Err(format!(
                    "section '{name}': price is between 0 and {MAX_SEAT_PRICE}, not {}",
                    s.price
                ));
            }
            total += i64::from(s.rows) * i64::from(s.seats_per_row);
        }
        if total > Self::MAX_SEATS {
            return Err(format!(
                "a schedule has at most {} seats, this grid has {total}",
                Self::MAX_SEATS
            ));
        }
        Ok(Self(
            sections
                .into_iter()
                .map(|s| SectionSpec {
                    name: s.name.trim().to_owned(),
                    ..s
                })
                .collect(),
        ))
    }

    pub fn sections(&self) -> &[SectionSpec] {
        &self.0
    }

    pub fn total_seats(&self) -> i32 {
        self.0.iter().map(|s| s.rows * s.seats_per_row).sum()
    }

    /// Every seat of the grid, section by section, row by row.
    pub fn seats(&self) -> impl Iterator<Item = NewSeat> + '_ {
        self.0.iter().flat_map(|s| {
            (1..=s.rows).flat_map(move |row| {
                (1..=s.seats_per_row).map(move |number| NewSeat {
                    section: s.name.clone(),
                    row,
                    number,
                    price: s.price,
                })
            })
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSeat {
    pub section: String,
    pub row: i32,
    pub number: i32,
    pub price: i64,
}

/// Seat state machine: AVAILABLE -> HELD -> RESERVED, and HELD -> AVAILABLE
/// when its hold is cancelled or expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SeatStatus {
    Available,
    Held,
    Reserved,
}

impl SeatStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SeatStatus::Available => "AVAILABLE",
            SeatStatus::Held => "HELD",
            SeatStatus::Reserved => "RESERVED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "AVAILABLE" => Some(Self::Available),
            "HELD" => Some(Self::Held),
            "RESERVED" => Some(Self::Reserved),
            _ => None,
        }
    }

    pub fn can_become(self, next: SeatStatus) -> bool {
        use SeatStatus::*;
        matches!(
            (self, next),
            (Available, Held) | (Held, Reserved) | (Held, Available)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    pub id: SeatId,
    pub schedule_id: ScheduleId,
    pub section: String,
    pub row: i32,
    pub number: i32,
    pub price: i64,
    pub status: SeatStatus,
    pub version: i64,
}

/// Where one seat is and what it costs: its part of the seat map besides
/// its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatPlace {
    pub id: SeatId,
    pub section: String,
    pub row: i32,
    pub number: i32,
    pub price: i64,
}

/// Where a schedule's seats are and what they cost, ordered by seat id. The
/// seats are generated with the schedule and never change after, so a
/// layout read once stays true for as long as the schedule exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatLayout {
    pub schedule: ScheduleId,
    pub concert: ConcertId,
    pub total_seats: i32,
    pub seats: Vec<SeatPlace>,
}

/// The status of every seat of a schedule, ordered by seat id: the order of
/// its [`SeatLayout`], position by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatStatuses(pub Vec<SeatStatus>);

impl SeatStatuses {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many seats are AVAILABLE.
    pub fn available(&self) -> i32 {
        let n = self
            .0
            .iter()
            .filter(|s| **s == SeatStatus::Available)
            .count();
        i32::try_from(n).unwrap_or(i32::MAX)
    }

    /// Whether these statuses are of `layout`'s seats: one per seat.
    pub fn fit(&self, layout: &SeatLayout) -> bool {
        self.0.len() == layout.seats.len()
    }
}

/// A schedule's seat map: its layout and its statuses, read together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatMap {
    pub layout: SeatLayout,
    pub statuses: SeatStatuses,
}

impl SeatMap {
    /// The map of `schedule` from its seats, ordered by id.
    pub fn from_seats(
        schedule: ScheduleId,
        concert: ConcertId,
        total_seats: i32,
        seats: Vec<Seat>,
    ) -> Self {
        let statuses = SeatStatuses(seats.iter().map(|s| s.status).collect());
        let seats = seats
            .into_iter()
            .map(|s| SeatPlace {
                id: s.id,
                section: s.section,
                row: s.row,
                number: s.number,
                price: s.price,
            })
            .collect();
        Self {
            layout: SeatLayout {
                schedule,
                concert,
                total_seats,
                seats,
            },
            statuses,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(name: &str, rows: i32, per_row: i32) -> SectionSpec {
        SectionSpec {
            name: name.into(),
            rows,
            seats_per_row: per_row,
            price: 1000,
        }
    }

    #[test]
    fn grid_generates_every_seat_once() {
        let grid = SeatGrid::parse(vec![section("A", 2, 3), section("B", 1, 4)]).unwrap();
        let seats: Vec<_> = grid.seats().collect();
        assert_eq!(seats.len(), 10);
        assert_eq!(grid.total_seats(), 10);
        let unique: std::collections::HashSet<_> = seats
            .iter()
            .map(|s| (s.section.clone(), s.row, s.number))
            .collect();
        assert_eq!(unique.len(), 10);
    }

    #[test]
    fn grid_rejects_duplicate_sections_and_empty_rows() {
        assert!(SeatGrid::parse(vec![section("A", 1, 1), section("A", 1, 1)]).is_err());
        assert!(SeatGrid::parse(vec![section("A", 0, 1)]).is_err());
        assert!(SeatGrid::parse(vec![]).is_err());
    }

    #[test]
    fn prices_are_capped_and_their_sums_never_wrap() {
        let priced = |price| SectionSpec {
            price,
            ..section("A", 1, 1)
        };
        assert!(SeatGrid::parse(vec![priced(MAX_SEAT_PRICE)]).is_ok());
        for bad in [MAX_SEAT_PRICE + 1, i64::MAX, -1, i64::MIN] {
            let e = SeatGrid::parse(vec![priced(bad)]).unwrap_err();
            assert!(e.contains("price is between 0 and"), "{e}");
        }
        assert_eq!(total_price([MAX_SEAT_PRICE; 4]), Some(4 * MAX_SEAT_PRICE));
        assert_eq!(total_price([i64::MAX, 1]), None);
        assert_eq!(total_price([]), Some(0));
    }

    #[test]
    fn control_characters_are_refused_in_catalogue_text() {
        let e = ConcertDetails::parse("A\0", "b", "c", "").unwrap_err();
        assert!(e.starts_with("title must not contain control"), "{e}");
        let e = ConcertDetails::parse("a", "b", "c\nd", "").unwrap_err();
        assert!(e.starts_with("venue must not contain control"), "{e}");
        assert!(ConcertDetails::parse("a", "b", "c", "line one\n\tline two").is_ok());
        let e = ConcertDetails::parse("a", "b", "c", "bell\u{7}").unwrap_err();
        assert!(e.starts_with("description must not contain control"), "{e}");
        let e = SeatGrid::parse(vec![section("A", 1, 1), section("B\u{9b}", 1, 1)]).unwrap_err();
        assert!(
            e.starts_with("sections[1].name must not contain control"),
            "{e}"
        );
    }

    #[test]
    fn max_seats_per_buyer_is_between_1_and_100() {
        assert_eq!(MaxSeatsPerBuyer::parse(1).unwrap().get(), 1);
        assert_eq!(MaxSeatsPerBuyer::parse(100).unwrap().get(), 100);
        for bad in [0, -1, 101, i64::from(i32::MAX) + 1] {
            let e = MaxSeatsPerBuyer::parse(bad).unwrap_err();
            assert!(e.contains("maxSeatsPerBuyer"), "{e}");
        }
        assert_eq!(MaxSeatsPerBuyer::default().get(), 4);
    }

    #[test]
    fn seat_transitions_follow_the_state_machine() {
        use SeatStatus::*;
        assert!(Available.can_become(Held));
        assert!(Held.can_become(Reserved));
        assert!(Held.can_become(Available));
        assert!(!Available.can_become(Reserved));
        assert!(!Reserved.can_become(Available));
    }
}
