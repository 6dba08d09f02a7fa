//! The seat-hold markers, `hold:{s:<id>}:<seat>` -> reservation id: which
//! seats of a schedule have a live hold, kept beside the waiting room. Each
//! expires with its hold and is cleared only by its own reservation.

use crate::{redis_down, RedisQueue};
use booking_domain::*;
use chrono::{DateTime, Utc};

impl RedisQueue {
    fn hold_key(&self, schedule: ScheduleId, seat: SeatId) -> String {
        format!("{}:{seat}", self.key("hold", schedule))
    }

    /// `SET PX` per seat: each marker lives as long as the hold.
    pub(crate) async fn write_hold_markers(
        &self,
        schedule: ScheduleId,
        seats: &[SeatId],
        reservation: ReservationId,
        until: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let ttl = (until - Utc::now()).num_milliseconds().max(1);
        let mut pipe = redis::pipe();
        for seat in seats {
            pipe.cmd("SET")
                .arg(self.hold_key(schedule, *seat))
                .arg(reservation.0)
                .arg("PX")
                .arg(ttl)
                .ignore();
        }
        let mut conn = self.conn();
        pipe.query_async::<()>(&mut conn).await.map_err(redis_down)
    }

    /// Compare-and-delete (`clear_held.lua`): only this reservation's markers.
    pub(crate) async fn clear_hold_markers(
        &self,
        schedule: ScheduleId,
        seats: &[SeatId],
        reservation: ReservationId,
    ) -> Result<(), RepoError> {
        let mut invocation = self.scripts.clear_held.prepare_invoke();
        for seat in seats {
            invocation.key(self.hold_key(schedule, *seat));
        }
        let mut conn = self.conn();
        invocation
            .arg(reservation.0)
            .invoke_async::<i64>(&mut conn)
            .await
            .map(drop)
            .map_err(redis_down)
    }

    /// `SCAN`s the schedule's `hold:` keys: never blocks Redis like `KEYS`.
    pub(crate) async fn scan_hold_markers(
        &self,
        schedule: ScheduleId,
    ) -> Result<Vec<SeatId>, RepoError> {
        let pattern = format!("{}:*", self.key("hold", schedule));
        let prefix_len = pattern.len() - 1;
        let mut conn = self.conn();
        let mut cursor: u64 = 0;
        let mut seats = Vec::new();
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(redis_down)?;
            seats.extend(
                keys.iter()
                    .filter_map(|k| k.get(prefix_len..)?.parse().ok().map(SeatId)),
            );
            if next == 0 {
                break;
            }
            cursor = next;
        }
        seats.sort();
        Ok(seats)
    }
}
