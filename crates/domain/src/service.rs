//! The use cases: sign up, log in, browse, hold seats, cancel, pay, and the
//! admin catalogue. Plain structs over the ports; no I/O of their own.

use crate::*;
use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;

/// The adapters a `BookingService` runs on.
#[derive(Clone)]
pub struct Ports {
    pub users: Arc<dyn UserRepository>,
    pub catalog: Arc<dyn CatalogRepository>,
    pub reservations: Arc<dyn ReservationRepository>,
    pub seat_lock: Arc<dyn SeatLock>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub clock: Arc<dyn Clock>,
    /// `None` only when the waiting room is switched off (raw-strategy
    /// benchmarks): then a reservation needs no entry token.
    pub waiting_room: Option<WaitingRoom>,
}

/// The waiting room and its admission rules.
#[derive(Clone)]
pub struct WaitingRoom {
    pub queue: Arc<dyn Queue>,
    /// At most this many users of a schedule hold a slot at a time.
    pub active_limit: usize,
    /// A rough time one admitted user keeps a slot, for wait estimates.
    pub expected_session: Duration,
}

impl std::fmt::Debug for WaitingRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitingRoom")
            .field("active_limit", &self.active_limit)
            .finish_non_exhaustive()
    }
}

/// Where a user stands in a schedule's waiting room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueView {
    pub position: QueuePosition,
    /// A rough estimate; 0 once admitted.
    pub estimated_wait: Duration,
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports")
            .field("seat_lock", &self.seat_lock.strategy())
            .finish_non_exhaustive()
    }
}

/// A reservation request as the client sent it, before parsing.
#[derive(Debug, Clone)]
pub struct HoldCommand {
    pub user_id: UserId,
    pub schedule_id: ScheduleId,
    pub seat_ids: Vec<SeatId>,
    pub idempotency_key: Option<IdempotencyKey>,
    /// The waiting room's entry token (`X-Queue-Token`).
    pub entry_token: Option<String>,
}

/// The result of an idempotent create: the resource, and whether it was
/// created by this call or replayed from an earlier one with the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotent<T> {
    pub value: T,
    pub replayed: bool,
}

#[derive(Debug, Clone)]
pub struct BookingService {
    ports: Ports,
    hold_ttl: Duration,
}

impl BookingService {
    /// The hold lifetime of ARCHITECTURE.md: 5 minutes.
    pub const DEFAULT_HOLD_TTL: Duration = Duration::minutes(5);

    pub fn new(ports: Ports, hold_ttl: Duration) -> Self {
        Self { ports, hold_ttl }
    }

    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    pub fn strategy(&self) -> &'static str {
        self.ports.seat_lock.strategy()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.ports.clock.now()
    }

    // --- users -------------------------------------------------------------

    pub async fn sign_up(
        &self,
        email: &str,
        password: &str,
        nickname: &str,
    ) -> Result<User, SignUpError> {
        self.create_user(email, password, nickname, Role::User)
            .await
    }

    async fn create_user(
        &self,
        email: &str,
        password: &str,
        nickname: &str,
        role: Role,
    ) -> Result<User, SignUpError> {
        let email = Email::parse(email).map_err(SignUpError::Invalid)?;
        let password = Password::parse(password).map_err(SignUpError::Invalid)?;
        let nickname = Nickname::parse(nickname).map_err(SignUpError::Invalid)?;
        let password_hash = self
            .ports
            .hasher
            .hash(&password)
            .await
            .map_err(|e| SignUpError::Repo(RepoError::Unexpected(e)))?;
        self.ports
            .users
            .insert_user(&NewUser {
                email,
                nickname,
                password_hash,
                role,
            })
            .await
    }

    pub async fn log_in(&self, email: &str, password: &str) -> Result<User, LogInError> {
        // Malformed input is treated as wrong credentials, but still costs a
        // hash, so the answer time says nothing.
        let password = Password::parse(password).unwrap_or_else(|_| Password::dummy());
        let user = match Email::parse(email) {
            Ok(email) => self.ports.users.find_user_by_email(&email).await?,
            Err(_) => None,
        };
        let hash = user.as_ref().map(|u| u.password_hash.as_str());
        let verified = self.ports.hasher.verify(&password, hash).await;
        match user {
            Some(user) if verified => Ok(user),
            _ => Err(LogInError::InvalidCredentials),
        }
    }

    /// Makes `email` an admin: creates the account, or promotes an existing
    /// one (its password is left as it is).
    pub async fn ensure_admin(&self, email: &str, password: &str) -> Result<User, SignUpError> {
        let parsed = Email::parse(email).map_err(SignUpError::Invalid)?;
        if let Some(user) = self.ports.users.find_user_by_email(&parsed).await? {
            self.ports.users.set_role(user.id, Role::Admin).await?;
            return Ok(User {
                role: Role::Admin,
                ..user
            });
        }
        match self
            .create_user(email, password, "admin", Role::Admin)
            .await
        {
            // Another instance starting at the same moment created it first.
            Err(SignUpError::DuplicateEmail) => {
                let user = self.ports.users.find_user_by_email(&parsed).await?;
                let user = user.ok_or(SignUpError::DuplicateEmail)?;
                self.ports.users.set_role(user.id, Role::Admin).await?;
                Ok(User {
                    role: Role::Admin,
                    ..user
                })
            }
            other => other,
        }
    }

    pub async fn find_user(&self, id: UserId) -> Result<Option<User>, RepoError> {
        self.ports.users.find_user(id).await
    }

    // --- browsing ----------------------------------------------------------

    pub async fn list_concerts(&self) -> Result<Vec<Concert>, RepoError> {
        self.ports.catalog.list_concerts().await
    }

    /// Every schedule of every concert (the audit's list).
    pub async fn all_schedules(&self) -> Result<Vec<Schedule>, RepoError> {
        let mut all = Vec::new();
        for concert in self.ports.catalog.list_concerts().await? {
            all.extend(self.ports.catalog.list_schedules(concert.id).await?);
        }
        Ok(all)
    }

    pub async fn find_concert(&self, id: ConcertId) -> Result<Option<Concert>, RepoError> {
        self.ports.catalog.find_concert(id).await
    }

    /// `None` when the concert does not exist.
    pub async fn list_schedules(&self, id: ConcertId) -> Result<Option<Vec<Schedule>>, RepoError> {
        if self.ports.catalog.find_concert(id).await?.is_none() {
            return Ok(None);
        }
        self.ports.catalog.list_schedules(id).await.map(Some)
    }

    /// The seat map of a schedule of a concert; `None` when the pair does not exist.
    pub async fn seat_map(
        &self,
        concert: ConcertId,
        schedule: ScheduleId,
    ) -> Result<Option<(Schedule, Vec<Seat>)>, RepoError> {
        match self.ports.catalog.find_schedule(schedule).await? {
            Some(s) if s.concert_id == concert => {
                let seats = self.ports.catalog.list_seats(schedule).await?;
                Ok(Some((s, seats)))
            }
            _ => Ok(None),
        }
    }

    // --- reservations ------------------------------------------------------

    /// Holds 1 to 4 seats for five minutes, all or none. A retry with the same
    /// idempotency key returns the first reservation and changes nothing.
    pub async fn hold_seats(
        &self,
        command: HoldCommand,
    ) -> Result<Idempotent<Reservation>, HoldError> {
        let seat_ids = SeatIds::parse(command.seat_ids)?;
        if let Some(key) = &command.idempotency_key {
            if let Some(found) = self
                .replay_hold(command.user_id, key, command.schedule_id, &seat_ids)
                .await?
            {
                return Ok(found);
            }
        }
        let now = self.now();
        let request = HoldRequest {
            user_id: command.user_id,
            schedule_id: command.schedule_id,
            seat_ids,
            idempotency_key: command.idempotency_key,
            now,
            expires_at: now + self.hold_ttl,
        };
        let Some(room) = &self.ports.waiting_room else {
            return self.hold_or_replay(&request).await;
        };
        // The token is claimed for this attempt only: used up if it holds
        // seats, usable again if it does not.
        let token = command
            .entry_token
            .as_deref()
            .ok_or(HoldError::EntryTokenRequired)?;
        let (schedule, user) = (request.schedule_id, request.user_id);
        if !room.queue.claim_token(schedule, user, token, now).await? {
            // A retry racing its first attempt (which holds the token) gets
            // that attempt's result if it has landed.
            if let Some(key) = &request.idempotency_key {
                if let Some(found) = self
                    .replay_hold(user, key, schedule, &request.seat_ids)
                    .await?
                {
                    return Ok(found);
                }
            }
            return Err(HoldError::EntryTokenRequired);
        }
        let held = self.hold_or_replay(&request).await;
        let settled = match &held {
            Ok(h) => {
                let until = h.value.expires_at;
                let consumed = room.queue.consume_token(schedule, user, token, until).await;
                let marked = room
                    .queue
                    .mark_held(schedule, &h.value.seat_ids, h.value.id, until)
                    .await;
                consumed.and(marked)
            }
            Err(_) => room.queue.restore_token(schedule, user, token).await,
        };
        if let Err(e) = settled {
            // The database decided; the waiting room catches up at expiry.
            tracing::warn!(%schedule, %user, error = %e, "waiting room not updated after a hold");
        }
        held
    }

    /// The hold, or the first result of a concurrent twin with the same key.
    async fn hold_or_replay(
        &self,
        request: &HoldRequest,
    ) -> Result<Idempotent<Reservation>, HoldError> {
        match self.ports.seat_lock.hold_seats(request).await {
            Ok(reservation) => Ok(Idempotent {
                value: reservation,
                replayed: false,
            }),
            // A concurrent twin with the same key may have won the seats.
            Err(
                e @ (HoldError::DuplicateIdempotencyKey
                | HoldError::SeatTaken(_)
                | HoldError::SoldOut),
            ) => {
                let Some(key) = &request.idempotency_key else {
                    return Err(e);
                };
                match self
                    .replay_hold(request.user_id, key, request.schedule_id, &request.seat_ids)
                    .await?
                {
                    Some(found) => Ok(found),
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn replay_hold(
        &self,
        user: UserId,
        key: &IdempotencyKey,
        schedule: ScheduleId,
        seats: &SeatIds,
    ) -> Result<Option<Idempotent<Reservation>>, HoldError> {
        let Some(found) = self
            .ports
            .reservations
            .find_reservation_by_key(user, key)
            .await?
        else {
            return Ok(None);
        };
        if found.schedule_id != schedule || found.seat_ids != seats.as_slice() {
            return Err(HoldError::IdempotencyKeyReused);
        }
        Ok(Some(Idempotent {
            value: found,
            replayed: true,
        }))
    }

    /// The reservation if it exists and belongs to `user`; others get
    /// `NotFound`, so ids cannot be probed.
    pub async fn reservation_of(
        &self,
        user: UserId,
        id: ReservationId,
    ) -> Result<Reservation, ReservationError> {
        match self.ports.reservations.find_reservation(id).await? {
            Some(r) if r.user_id == user => Ok(r),
            _ => Err(ReservationError::NotFound),
        }
    }

    pub async fn my_reservations(&self, user: UserId) -> Result<Vec<Reservation>, RepoError> {
        self.ports.reservations.list_reservations(user).await
    }

    /// Cancels a PENDING reservation of `user`; its seats become AVAILABLE.
    pub async fn cancel(
        &self,
        user: UserId,
        id: ReservationId,
    ) -> Result<Reservation, ReservationError> {
        let reservation = self.reservation_of(user, id).await?;
        reservation
            .status
            .transition(ReservationStatus::Cancelled)
            .map_err(|c| ReservationError::NotPending(c.from))?;
        match self
            .ports
            .reservations
            .cancel_reservation(id, self.now())
            .await?
        {
            // The Redis stock follows through the `seat-release` consumer.
            Transition::Done(r) => {
                self.leave_waiting_room(&r).await;
                Ok(r)
            }
            Transition::NotPending(status) => Err(ReservationError::NotPending(status)),
            Transition::Overdue => Err(ReservationError::Expired),
            Transition::NotFound | Transition::KeyReused => Err(ReservationError::NotFound),
        }
    }

    /// Pays for a PENDING, unexpired reservation of `user`, which becomes
    /// CONFIRMED. A retry with the same key returns the first payment.
    pub async fn pay(
        &self,
        user: UserId,
        id: ReservationId,
        key: Option<IdempotencyKey>,
    ) -> Result<Idempotent<Payment>, ReservationError> {
        if let Some(key) = &key {
            if let Some(found) = self.replay_payment(user, key, id).await? {
                return Ok(found);
            }
        }
        let reservation = self.reservation_of(user, id).await?;
        let now = self.now();
        reservation
            .status
            .transition(ReservationStatus::Confirmed)
            .map_err(|c| ReservationError::NotPending(c.from))?;
        if reservation.is_overdue(now) {
            return Err(ReservationError::Expired);
        }
        let request = PaymentRequest {
            reservation_id: id,
            user_id: user,
            amount: reservation.total_amount,
            idempotency_key: key.clone(),
            now,
        };
        match self
            .ports
            .reservations
            .confirm_with_payment(&request)
            .await?
        {
            Transition::Done(payment) => {
                self.leave_waiting_room(&reservation).await;
                Ok(Idempotent {
                    value: payment,
                    replayed: false,
                })
            }
            Transition::Overdue => Err(ReservationError::Expired),
            Transition::NotFound => Err(ReservationError::NotFound),
            // A concurrent twin with the same key may have paid first.
            Transition::NotPending(status) => match self.replay_if_keyed(user, key, id).await? {
                Some(found) => Ok(found),
                None => Err(ReservationError::NotPending(status)),
            },
            Transition::KeyReused => match self.replay_if_keyed(user, key, id).await? {
                Some(found) => Ok(found),
                None => Err(ReservationError::IdempotencyKeyReused),
            },
        }
    }

    /// The user is done with this schedule (paid or cancelled): their slot
    /// goes to the next in line and the hold markers go away. Best effort:
    /// both expire on their own.
    async fn leave_waiting_room(&self, reservation: &Reservation) {
        let Some(room) = &self.ports.waiting_room else {
            return;
        };
        let (schedule, user) = (reservation.schedule_id, reservation.user_id);
        let freed = room.queue.free_slot(schedule, user).await;
        let cleared = room
            .queue
            .clear_held(schedule, &reservation.seat_ids, reservation.id)
            .await;
        if let Err(e) = freed.and(cleared) {
            tracing::warn!(%schedule, %user, error = %e, "waiting room not updated");
        }
    }

    // --- waiting room ------------------------------------------------------

    fn waiting_room(&self) -> Result<&WaitingRoom, QueueError> {
        self.ports.waiting_room.as_ref().ok_or(QueueError::Disabled)
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
        let room = self.waiting_room()?;
        if self.ports.catalog.find_schedule(schedule).await?.is_none() {
            return Err(QueueError::ScheduleNotFound);
        }
        let position = room.queue.enter(schedule, user, self.now()).await?;
        Ok(Self::view(room, position))
    }

    pub async fn queue_position(
        &self,
        user: UserId,
        schedule: ScheduleId,
    ) -> Result<QueueView, QueueError> {
        let room = self.waiting_room()?;
        let position = room.queue.position(schedule, user, self.now()).await?;
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
        let room = self.waiting_room()?;
        let now = self.now();
        if let Some(token) = room.queue.entry_token(schedule, user, now).await? {
            return Ok(token);
        }
        match room.queue.position(schedule, user, now).await? {
            Some(p) if !p.admitted => Err(QueueError::NotAdmittedYet(p.position)),
            Some(_) => Err(QueueError::TokenUsed),
            None => Err(QueueError::NotInQueue),
        }
    }

    /// Admits the next users of every schedule with a queue, up to the
    /// window; returns how many were admitted. Runs on a timer in every
    /// instance: admission is atomic in the queue, so instances do not race.
    pub async fn admit_waiting(&self) -> Result<usize, QueueError> {
        let room = self.waiting_room()?;
        let now = self.now();
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

    pub fn waiting_room_enabled(&self) -> bool {
        self.ports.waiting_room.is_some()
    }

    async fn replay_if_keyed(
        &self,
        user: UserId,
        key: Option<IdempotencyKey>,
        reservation: ReservationId,
    ) -> Result<Option<Idempotent<Payment>>, ReservationError> {
        match key {
            Some(key) => self.replay_payment(user, &key, reservation).await,
            None => Ok(None),
        }
    }

    async fn replay_payment(
        &self,
        user: UserId,
        key: &IdempotencyKey,
        reservation: ReservationId,
    ) -> Result<Option<Idempotent<Payment>>, ReservationError> {
        match self
            .ports
            .reservations
            .find_payment_by_key(user, key)
            .await?
        {
            Some(p) if p.reservation_id == reservation => Ok(Some(Idempotent {
                value: p,
                replayed: true,
            })),
            Some(_) => Err(ReservationError::IdempotencyKeyReused),
            None => Ok(None),
        }
    }

    pub async fn payment_of(
        &self,
        user: UserId,
        id: PaymentId,
    ) -> Result<Payment, ReservationError> {
        match self.ports.reservations.find_payment(id).await? {
            Some(p) if p.user_id == user => Ok(p),
            _ => Err(ReservationError::NotFound),
        }
    }

    // --- admin -------------------------------------------------------------

    pub async fn create_concert(&self, details: ConcertDetails) -> Result<Concert, AdminError> {
        Ok(self.ports.catalog.insert_concert(&details).await?)
    }

    pub async fn update_concert(
        &self,
        id: ConcertId,
        details: ConcertDetails,
    ) -> Result<Concert, AdminError> {
        self.ports
            .catalog
            .update_concert(id, &details)
            .await?
            .ok_or(AdminError::NotFound("concert"))
    }

    pub async fn delete_concert(&self, id: ConcertId) -> Result<(), AdminError> {
        self.ports.catalog.delete_concert(id).await
    }

    pub async fn create_schedule(
        &self,
        concert: ConcertId,
        starts_at: DateTime<Utc>,
        grid: SeatGrid,
    ) -> Result<Schedule, AdminError> {
        self.ports
            .catalog
            .insert_schedule(concert, starts_at, &grid)
            .await
    }

    pub async fn update_schedule(
        &self,
        id: ScheduleId,
        starts_at: DateTime<Utc>,
    ) -> Result<Schedule, AdminError> {
        self.ports
            .catalog
            .update_schedule(id, starts_at)
            .await?
            .ok_or(AdminError::NotFound("schedule"))
    }

    pub async fn delete_schedule(&self, id: ScheduleId) -> Result<(), AdminError> {
        self.ports.catalog.delete_schedule(id).await
    }
}
