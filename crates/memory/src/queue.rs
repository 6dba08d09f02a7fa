//! `MemoryQueue`: the waiting room in memory. Users wait in arrival order;
//! `admit_next` lets them in while fewer than `active_limit` entry tokens are
//! live; a token is bound to (user, schedule), expires, and is consumed once.

use async_trait::async_trait;
use booking_domain::{EntryToken, Queue, QueuePosition, RepoError, ScheduleId, UserId};
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Clone)]
pub struct MemoryQueue {
    rooms: Arc<Mutex<Rooms>>,
    token_ttl: Duration,
}

impl MemoryQueue {
    /// The entry-token lifetime of ARCHITECTURE.md.
    pub const DEFAULT_TOKEN_TTL: Duration = Duration::minutes(5);

    pub fn new(token_ttl: Duration) -> Self {
        Self {
            rooms: Arc::default(),
            token_ttl,
        }
    }

    fn rooms(&self) -> Result<MutexGuard<'_, Rooms>, RepoError> {
        self.rooms
            .lock()
            .map_err(|_| RepoError::unexpected("memory queue lock poisoned by a panic"))
    }
}

impl Default for MemoryQueue {
    fn default() -> Self {
        Self::new(Self::DEFAULT_TOKEN_TTL)
    }
}

#[derive(Debug, Default)]
struct Rooms {
    /// One counter for every room: arrival order is strict, never a tie.
    arrivals: u64,
    by_schedule: HashMap<ScheduleId, Room>,
}

#[derive(Debug, Default)]
struct Room {
    /// Arrival number -> user, for the users still waiting.
    waiting: BTreeMap<u64, UserId>,
    arrival_of: HashMap<UserId, u64>,
    admitted: HashMap<UserId, Admission>,
}

#[derive(Debug)]
struct Admission {
    token: String,
    expires_at: DateTime<Utc>,
    redeemed: bool,
}

impl Admission {
    fn is_live(&self, now: DateTime<Utc>) -> bool {
        !self.redeemed && self.expires_at > now
    }
}

impl Room {
    fn waiting_position(&self, user: UserId) -> Option<QueuePosition> {
        let arrival = *self.arrival_of.get(&user)?;
        let ahead = self.waiting.range(..arrival).count() as u64;
        Some(QueuePosition {
            position: ahead + 1,
            admitted: false,
        })
    }
}

const ADMITTED: QueuePosition = QueuePosition {
    position: 0,
    admitted: true,
};

/// 128 random bits, hex-encoded: unguessable, so a token cannot be forged.
fn new_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().fold(String::with_capacity(32), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn enter(
        &self,
        schedule: ScheduleId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<QueuePosition, RepoError> {
        let mut rooms = self.rooms()?;
        let Rooms {
            arrivals,
            by_schedule,
        } = &mut *rooms;
        let room = by_schedule.entry(schedule).or_default();
        if room.admitted.get(&user).is_some_and(|a| a.is_live(now)) {
            return Ok(ADMITTED);
        }
        if let Some(position) = room.waiting_position(user) {
            return Ok(position);
        }
        // A spent or expired admission does not keep a place: queue again.
        room.admitted.remove(&user);
        *arrivals += 1;
        room.waiting.insert(*arrivals, user);
        room.arrival_of.insert(user, *arrivals);
        Ok(room.waiting_position(user).unwrap_or(ADMITTED))
    }

    /// Once admitted, stays admitted until the user enters again.
    async fn position(
        &self,
        schedule: ScheduleId,
        user: UserId,
    ) -> Result<Option<QueuePosition>, RepoError> {
        let rooms = self.rooms()?;
        let Some(room) = rooms.by_schedule.get(&schedule) else {
            return Ok(None);
        };
        if let Some(position) = room.waiting_position(user) {
            return Ok(Some(position));
        }
        Ok(room.admitted.contains_key(&user).then_some(ADMITTED))
    }

    async fn admit_next(
        &self,
        schedule: ScheduleId,
        active_limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<UserId>, RepoError> {
        let mut rooms = self.rooms()?;
        let Some(room) = rooms.by_schedule.get_mut(&schedule) else {
            return Ok(Vec::new());
        };
        let live = room.admitted.values().filter(|a| a.is_live(now)).count();
        let mut admitted = Vec::new();
        for _ in live..active_limit {
            let Some((_, user)) = room.waiting.pop_first() else {
                break;
            };
            room.arrival_of.remove(&user);
            room.admitted.insert(
                user,
                Admission {
                    token: new_token(),
                    expires_at: now + self.token_ttl,
                    redeemed: false,
                },
            );
            admitted.push(user);
        }
        Ok(admitted)
    }

    async fn entry_token(
        &self,
        schedule: ScheduleId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<EntryToken>, RepoError> {
        let rooms = self.rooms()?;
        Ok(rooms
            .by_schedule
            .get(&schedule)
            .and_then(|room| room.admitted.get(&user))
            .filter(|a| a.is_live(now))
            .map(|a| EntryToken {
                token: a.token.clone(),
                expires_at: a.expires_at,
            }))
    }

    async fn redeem(
        &self,
        schedule: ScheduleId,
        user: UserId,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let mut rooms = self.rooms()?;
        let admission = rooms
            .by_schedule
            .get_mut(&schedule)
            .and_then(|room| room.admitted.get_mut(&user))
            .filter(|a| a.is_live(now) && a.token == token);
        Ok(match admission {
            Some(a) => {
                a.redeemed = true;
                true
            }
            None => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: ScheduleId = ScheduleId(1);

    fn waiting(position: u64) -> QueuePosition {
        QueuePosition {
            position,
            admitted: false,
        }
    }

    #[tokio::test]
    async fn enter_is_idempotent_and_keeps_arrival_order() {
        let queue = MemoryQueue::default();
        let now = Utc::now();
        assert_eq!(queue.enter(S, UserId(7), now).await.unwrap(), waiting(1));
        assert_eq!(queue.enter(S, UserId(3), now).await.unwrap(), waiting(2));
        assert_eq!(queue.enter(S, UserId(7), now).await.unwrap(), waiting(1));
        assert_eq!(
            queue.position(S, UserId(3)).await.unwrap(),
            Some(waiting(2))
        );
        assert_eq!(queue.position(S, UserId(9)).await.unwrap(), None);
        assert_eq!(
            queue.position(ScheduleId(2), UserId(7)).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn admission_is_capped_by_live_tokens() {
        let queue = MemoryQueue::new(Duration::seconds(60));
        let now = Utc::now();
        for user in 1..=5 {
            queue.enter(S, UserId(user), now).await.unwrap();
        }
        assert_eq!(
            queue.admit_next(S, 2, now).await.unwrap(),
            vec![UserId(1), UserId(2)]
        );
        assert!(queue.admit_next(S, 2, now).await.unwrap().is_empty());
        assert_eq!(queue.position(S, UserId(1)).await.unwrap(), Some(ADMITTED));
        assert_eq!(
            queue.position(S, UserId(3)).await.unwrap(),
            Some(waiting(1))
        );

        // A redeemed token frees its slot.
        let token = queue.entry_token(S, UserId(1), now).await.unwrap().unwrap();
        assert_eq!(token.token.len(), 32);
        assert!(queue.redeem(S, UserId(1), &token.token, now).await.unwrap());
        assert_eq!(queue.admit_next(S, 2, now).await.unwrap(), vec![UserId(3)]);

        // Expired tokens free theirs too.
        let later = now + Duration::seconds(60);
        assert_eq!(
            queue.admit_next(S, 2, later).await.unwrap(),
            vec![UserId(4), UserId(5)]
        );
    }

    #[tokio::test]
    async fn a_token_is_bound_to_its_user_and_schedule_and_used_once() {
        let queue = MemoryQueue::new(Duration::seconds(60));
        let now = Utc::now();
        queue.enter(S, UserId(1), now).await.unwrap();
        queue.enter(S, UserId(2), now).await.unwrap();
        queue.admit_next(S, 10, now).await.unwrap();
        let token = queue.entry_token(S, UserId(1), now).await.unwrap().unwrap();
        let other = queue.entry_token(S, UserId(2), now).await.unwrap().unwrap();
        assert_ne!(token.token, other.token);
        assert_eq!(token.expires_at, now + Duration::seconds(60));

        assert!(!queue.redeem(S, UserId(2), &token.token, now).await.unwrap());
        assert!(!queue
            .redeem(ScheduleId(2), UserId(1), &token.token, now)
            .await
            .unwrap());
        assert!(!queue
            .redeem(S, UserId(1), &token.token, token.expires_at)
            .await
            .unwrap());
        assert!(queue.redeem(S, UserId(1), &token.token, now).await.unwrap());
        assert!(!queue.redeem(S, UserId(1), &token.token, now).await.unwrap());
        assert_eq!(queue.entry_token(S, UserId(1), now).await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_admitted_user_entering_again_stays_admitted_until_the_token_is_spent() {
        let queue = MemoryQueue::default();
        let now = Utc::now();
        queue.enter(S, UserId(1), now).await.unwrap();
        queue.admit_next(S, 1, now).await.unwrap();
        assert_eq!(queue.enter(S, UserId(1), now).await.unwrap(), ADMITTED);
        let token = queue.entry_token(S, UserId(1), now).await.unwrap().unwrap();
        assert!(queue.redeem(S, UserId(1), &token.token, now).await.unwrap());
        assert_eq!(queue.enter(S, UserId(1), now).await.unwrap(), waiting(1));
    }
}
