//! The waiting room as a sale: enter (a pre-queue before the opening), see
//! one's place, get the pass, and the admission tick that every instance
//! runs, whose result also feeds the live streams.

use crate::*;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The sale's state as one user sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoomState {
    /// The opening has not come: the order is drawn then.
    BeforeOpening,
    Waiting,
    /// Admitted (the pass is unused, or used by a hold).
    Admitted,
    /// No seat is free, some are held: they may come back.
    Paused,
    /// No seat is free or held.
    SoldOut,
}

impl RoomState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BeforeOpening => "before-opening",
            Self::Waiting => "waiting",
            Self::Admitted => "admitted",
            Self::Paused => "paused",
            Self::SoldOut => "sold-out",
        }
    }
}

/// Where a user stands, as every position answer and stream frame says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueueStatus {
    pub state: RoomState,
    /// The place in the line, fixed once drawn (or on arrival after the
    /// opening); `None` before the draw and once admitted.
    pub ticket: Option<u64>,
    /// 1-based place in line; `None` before the draw; 0 once admitted.
    pub position: Option<u64>,
    pub waiting: u64,
    /// From the measured admission rate; `None` when nothing was admitted
    /// lately (just opened, or paused).
    pub estimated_wait: Option<Duration>,
    /// AVAILABLE seats.
    pub seats_left: i64,
    pub opens_at: Option<DateTime<Utc>>,
    /// Whole seconds until the opening, rounded up; `None` once open.
    pub opens_in_secs: Option<i64>,
}

impl SeatCounts {
    /// No seat is free or held: nothing can come back.
    pub fn sold_out(self) -> bool {
        self.available == 0 && self.held == 0
    }
}

/// How a live stream starts.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamStart {
    /// Waiting: the status now, and the ticket once drawn.
    Waiting {
        status: QueueStatus,
        ticket: Option<u64>,
    },
    /// Already admitted with an unused pass.
    Admitted(EntryToken),
}

/// One admission tick of one schedule and the facts around it: what every
/// stream of the schedule is told.
#[derive(Debug, Clone, PartialEq)]
pub struct SaleUpdate {
    pub tick: SaleTick,
    pub seats: SeatCounts,
    pub opens_at: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

impl SaleUpdate {
    pub fn sold_out(&self) -> bool {
        self.tick.sale.sold_out
    }

    /// The status of a user still waiting with `ticket` (`None`: not drawn
    /// yet); `None` when that ticket has left the line (admitted or gone).
    pub fn status_of(&self, ticket: Option<u64>) -> Option<QueueStatus> {
        let position = match (ticket, self.tick.head) {
            (None, _) => None,
            (Some(t), Some(head)) if t >= head => Some(t - head + 1),
            (Some(_), _) => return None,
        };
        Some(status(
            &self.tick.sale,
            ticket,
            position,
            false,
            self.seats,
            self.opens_at,
            self.now,
        ))
    }
}

fn status(
    sale: &SaleState,
    ticket: Option<u64>,
    position: Option<u64>,
    admitted: bool,
    seats: SeatCounts,
    opens_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> QueueStatus {
    let before_opening = !sale.opened && opens_at.is_some_and(|t| t > now);
    let state = if sale.sold_out || seats.sold_out() {
        RoomState::SoldOut
    } else if admitted {
        RoomState::Admitted
    } else if before_opening || (!sale.opened && position.is_none()) {
        RoomState::BeforeOpening
    } else if seats.available == 0 {
        RoomState::Paused
    } else {
        RoomState::Waiting
    };
    let estimated_wait = match (state, position) {
        (RoomState::Waiting, Some(p)) if sale.admission_rate >= 0.01 => Some(
            Duration::milliseconds((p as f64 / sale.admission_rate * 1000.0) as i64),
        ),
        _ => None,
    };
    QueueStatus {
        state,
        ticket: ticket.filter(|_| !admitted),
        position: if admitted { Some(0) } else { position },
        waiting: sale.waiting,
        estimated_wait,
        seats_left: seats.available,
        opens_at,
        opens_in_secs: opens_at
            .filter(|_| before_opening)
            .map(|t| ((t - now).num_milliseconds().max(0) + 999) / 1000),
    }
}

#[derive(Clone)]
pub struct Admissions {
    /// `None` when the waiting room is switched off.
    pub(super) waiting_room: Option<WaitingRoom>,
    pub(super) catalog: Arc<dyn CatalogRepository>,
    pub(super) clock: Arc<dyn Clock>,
    /// The last sale facts read per schedule: the ticker refreshes them every
    /// tick, so a burst of entrants reads none from the database.
    pub(super) recent: Arc<Mutex<RecentSales>>,
}

/// Per schedule: when its sale facts were read, and what they were.
type RecentSales = HashMap<ScheduleId, (DateTime<Utc>, Sale)>;

/// How old the sale facts behind an answer may be: seats left is a hint
/// (the hold decides), and the sell-out is recorded by the tick.
const SALE_FACTS_FRESH: Duration = Duration::seconds(1);

impl std::fmt::Debug for Admissions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admissions")
            .field("waiting_room", &self.waiting_room)
            .finish_non_exhaustive()
    }
}

/// The schedule's opening and seats, read for one answer or one tick.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sale {
    opens_at: Option<DateTime<Utc>>,
    seats: SeatCounts,
}

impl Admissions {
    pub fn enabled(&self) -> bool {
        self.waiting_room.is_some()
    }

    fn room(&self) -> Result<&WaitingRoom, QueueError> {
        self.waiting_room.as_ref().ok_or(QueueError::Disabled)
    }

    /// The sale facts, from the last tick's read when it is fresh.
    async fn sale(&self, schedule: ScheduleId) -> Result<Sale, QueueError> {
        let now = self.clock.now();
        let recent = self
            .recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&schedule)
            .filter(|(at, _)| now - *at < SALE_FACTS_FRESH)
            .map(|(_, sale)| *sale);
        match recent {
            Some(sale) => Ok(sale),
            None => self.read_sale(schedule).await,
        }
    }

    async fn read_sale(&self, schedule: ScheduleId) -> Result<Sale, QueueError> {
        let Some(found) = self.catalog.find_schedule(schedule).await? else {
            return Err(QueueError::ScheduleNotFound);
        };
        let Some(counts) = self.catalog.seat_counts(schedule).await? else {
            return Err(QueueError::ScheduleNotFound);
        };
        let sale = Sale {
            opens_at: found.sales_open_at,
            seats: counts,
        };
        self.recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(schedule, (self.clock.now(), sale));
        Ok(sale)
    }

    fn status_of(view: &RoomView, sale: &Sale, now: DateTime<Utc>) -> QueueStatus {
        let (ticket, position, admitted) = match &view.place {
            Some(Place::InLine { ticket, position }) => (Some(*ticket), Some(*position), false),
            Some(Place::Admitted(_) | Place::Holding) => (None, Some(0), true),
            Some(Place::PreQueue) | None => (None, None, false),
        };
        status(
            &view.sale,
            ticket,
            position,
            admitted,
            sale.seats,
            sale.opens_at,
            now,
        )
    }

    /// Joins the schedule's waiting room (again: keeps one's place); 410
    /// once it is sold out.
    pub async fn enter_queue(
        &self,
        user: UserId,
        schedule: ScheduleId,
    ) -> Result<QueueStatus, QueueError> {
        let room = self.room()?;
        let sale = self.sale(schedule).await?;
        if sale.seats.sold_out() {
            return Err(QueueError::SoldOut);
        }
        let now = self.clock.now();
        let view = room.queue.enter(schedule, user, sale.opens_at, now).await?;
        if view.sale.sold_out {
            return Err(QueueError::SoldOut);
        }
        Ok(Self::status_of(&view, &sale, now))
    }

    pub async fn queue_status(
        &self,
        user: UserId,
        schedule: ScheduleId,
    ) -> Result<QueueStatus, QueueError> {
        let room = self.room()?;
        let sale = self.sale(schedule).await?;
        let now = self.clock.now();
        let view = room.queue.view(schedule, user, now).await?;
        if view.sale.sold_out || sale.seats.sold_out() {
            return Err(QueueError::SoldOut);
        }
        if view.place.is_none() {
            return Err(QueueError::NotInQueue);
        }
        Ok(Self::status_of(&view, &sale, now))
    }

    /// The pass, once admitted. One atomic read of the place, so an
    /// admission landing meanwhile is never mistaken for a used pass.
    pub async fn entry_token(
        &self,
        user: UserId,
        schedule: ScheduleId,
    ) -> Result<EntryToken, QueueError> {
        let room = self.room()?;
        let view = room.queue.view(schedule, user, self.clock.now()).await?;
        if view.sale.sold_out {
            return Err(QueueError::SoldOut);
        }
        match view.place {
            Some(Place::Admitted(token)) => Ok(token),
            Some(Place::Holding) => Err(QueueError::TokenUsed),
            Some(Place::InLine { position, .. }) => Err(QueueError::NotAdmittedYet(position)),
            Some(Place::PreQueue) => Err(QueueError::BeforeOpening),
            None => Err(QueueError::NotInQueue),
        }
    }

    /// Where a new live stream starts: its status and ticket, or the pass
    /// when already admitted.
    pub async fn stream_start(
        &self,
        user: UserId,
        schedule: ScheduleId,
    ) -> Result<StreamStart, QueueError> {
        let room = self.room()?;
        let sale = self.sale(schedule).await?;
        let now = self.clock.now();
        let view = room.queue.view(schedule, user, now).await?;
        if view.sale.sold_out || sale.seats.sold_out() {
            return Err(QueueError::SoldOut);
        }
        let ticket = match &view.place {
            Some(Place::Admitted(token)) => return Ok(StreamStart::Admitted(token.clone())),
            Some(Place::Holding) => return Err(QueueError::TokenUsed),
            None => return Err(QueueError::NotInQueue),
            Some(Place::InLine { ticket, .. }) => Some(*ticket),
            Some(Place::PreQueue) => None,
        };
        Ok(StreamStart::Waiting {
            status: Self::status_of(&view, &sale, now),
            ticket,
        })
    }

    /// The drawn tickets of users who entered before the opening (a stream
    /// learns its place once, after the draw).
    pub async fn tickets(
        &self,
        schedule: ScheduleId,
        users: &[UserId],
    ) -> Result<Vec<Option<u64>>, QueueError> {
        Ok(self.room()?.queue.tickets(schedule, users).await?)
    }

    /// One user's standing when a stream lost track of it: the pass if
    /// admitted, `None` if gone or holding.
    pub async fn pass_of(
        &self,
        user: UserId,
        schedule: ScheduleId,
    ) -> Result<Option<EntryToken>, QueueError> {
        let view = self
            .room()?
            .queue
            .view(schedule, user, self.clock.now())
            .await?;
        Ok(match view.place {
            Some(Place::Admitted(token)) => Some(token),
            _ => None,
        })
    }

    /// After the room's state was lost: puts back the places this
    /// instance's streams knew, and says where each stands now.
    pub async fn restore_places(
        &self,
        schedule: ScheduleId,
        places: &[KnownPlace],
    ) -> Result<RestoredPlaces, QueueError> {
        Ok(self.room()?.queue.restore(schedule, places).await?)
    }

    /// Rooms to tick: in use and not sold out.
    pub async fn open_rooms(&self) -> Result<Vec<ScheduleId>, QueueError> {
        Ok(self.room()?.queue.open_rooms().await?)
    }

    /// One admission step for `schedule`: hands out passes as far as the
    /// rules and the seats left allow, and returns what the schedule's
    /// streams are told. `cursor` is the previous update's.
    pub async fn tick(
        &self,
        schedule: ScheduleId,
        cursor: Option<&str>,
    ) -> Result<SaleUpdate, QueueError> {
        let room = self.room()?;
        let sale = self.read_sale(schedule).await?;
        let now = self.clock.now();
        let rules = &room.rules;
        let plan = AdmissionPlan {
            opens_at: sale.opens_at,
            rate_per_sec: rules.rate_per_sec,
            burst: rules.burst(),
            active_limit: rules.active_limit,
            pass_limit: (sale.seats.available.max(0) as f64 * rules.passes_per_free_seat).ceil()
                as u64,
            sold_out: sale.seats.sold_out(),
        };
        let tick = room.queue.tick(schedule, &plan, cursor, now).await?;
        Ok(SaleUpdate {
            tick,
            seats: sale.seats,
            opens_at: sale.opens_at,
            now,
        })
    }

    /// One admission step for every open room, with no stream to tell: how
    /// many passes it handed out (tests, tools).
    pub async fn admit_waiting(&self) -> Result<u64, QueueError> {
        let mut handed_out = 0;
        for schedule in self.open_rooms().await? {
            handed_out += self.tick(schedule, None).await?.tick.handed_out;
        }
        Ok(handed_out)
    }

    /// The recorded draw of the schedule's pre-queue (admins, audits).
    pub async fn draw_record(&self, schedule: ScheduleId) -> Result<DrawRecord, QueueError> {
        self.room()?
            .queue
            .draw_record(schedule)
            .await?
            .ok_or(QueueError::NotDrawnYet)
    }

    /// Waiting and active users of every open room (metrics); empty when
    /// the waiting room is off.
    pub async fn queue_stats(&self) -> Result<Vec<(ScheduleId, QueueStats)>, QueueError> {
        let Some(room) = &self.waiting_room else {
            return Ok(Vec::new());
        };
        let now = self.clock.now();
        let mut all = Vec::new();
        for schedule in room.queue.open_rooms().await? {
            all.push((schedule, room.queue.stats(schedule, now).await?));
        }
        Ok(all)
    }
}
