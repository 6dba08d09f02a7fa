//! The waiting room against a real Redis: the `Queue` conformance suite,
//! each test under its own key prefix (a `TestRedis`), so they share one
//! server in parallel.

use booking_domain::Queue;
use booking_queue_redis::RedisQueue;
use booking_testkit::conformance::QueueFixture;
use booking_testkit::TestRedis;
use chrono::Duration;
use std::sync::Arc;

/// Each instance has its own connection, as another API server would.
async fn redis_queue(token_ttl: Duration) -> QueueFixture {
    let redis = Arc::new(TestRedis::new().await);
    let server = Arc::clone(&redis);
    QueueFixture::new(
        move || {
            let server = Arc::clone(&server);
            async move {
                let conn = server.connection_manager().await;
                Arc::new(RedisQueue::new(conn, server.prefix(), token_ttl)) as Arc<dyn Queue>
            }
        },
        redis,
    )
    .await
}

booking_testkit::queue_conformance_suite!(redis_queue);

mod after_a_lost_room {
    use booking_domain::{AdmissionPlan, KnownPlace, Queue, ScheduleId, UserId};
    use booking_queue_redis::RedisQueue;
    use booking_testkit::TestRedis;
    use chrono::{Duration, Utc};

    const S: ScheduleId = ScheduleId(3);

    fn plan(active_limit: u64) -> AdmissionPlan {
        AdmissionPlan {
            opens_at: None,
            rate_per_sec: 1_000.0,
            burst: 100,
            active_limit,
            pass_limit: 100,
            sold_out: false,
        }
    }

    /// What a restart of Redis without persistence does to the room.
    async fn delete_every_key(redis: &TestRedis) {
        let mut conn = redis.connection().await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", redis.prefix()))
            .query_async(&mut conn)
            .await
            .unwrap();
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
    }

    fn places(queue: &[(i64, u64)]) -> Vec<KnownPlace> {
        queue
            .iter()
            .map(|(user, ticket)| KnownPlace {
                user: UserId(*user),
                ticket: Some(*ticket),
            })
            .collect()
    }

    /// Six wait, the first is admitted, then every key is gone. The next
    /// tick shows a new epoch; two instances put back the places of their
    /// streams, and the line admits the five in their old order, once each,
    /// ahead of anyone who enters later.
    #[tokio::test]
    async fn a_room_whose_keys_were_deleted_comes_back_in_its_old_order_without_duplicates() {
        let redis = TestRedis::new().await;
        let ttl = Duration::minutes(5);
        let a = RedisQueue::new(redis.connection_manager().await, redis.prefix(), ttl);
        let b = RedisQueue::new(redis.connection_manager().await, redis.prefix(), ttl);
        let at = Utc::now();
        for user in 1..=6 {
            a.enter(S, UserId(user), None, at).await.unwrap();
        }
        let before = a.tick(S, &plan(1), None, at).await.unwrap();
        assert_eq!(before.admitted.len(), 1);
        let tickets = a
            .tickets(S, &(2..=6).map(UserId).collect::<Vec<_>>())
            .await
            .unwrap();
        let ticket = |user: i64| tickets[(user - 2) as usize].unwrap();

        delete_every_key(&redis).await;
        let lost = b.tick(S, &plan(0), None, at).await.unwrap();
        assert_ne!(lost.epoch, before.epoch, "the loss is not seen");
        assert_eq!(lost.head, None);

        // Streams of users 3 and 5 on one instance, 2, 4 and 6 on the other;
        // user 4 also entered again meanwhile (and so is at the front now).
        b.enter(S, UserId(4), None, at).await.unwrap();
        a.restore(S, &places(&[(5, ticket(5)), (3, ticket(3))]))
            .await
            .unwrap();
        let restored = b
            .restore(
                S,
                &places(&[(2, ticket(2)), (4, ticket(4)), (6, ticket(6))]),
            )
            .await
            .unwrap();
        assert_eq!(restored.tickets[0], Some(ticket(2)));
        a.enter(S, UserId(7), None, at).await.unwrap();
        assert_eq!(b.open_rooms().await.unwrap(), vec![S]);

        let after = a.tick(S, &plan(100), None, at).await.unwrap();
        assert_eq!(after.epoch, lost.epoch);
        let admitted: Vec<i64> = after.admitted.iter().map(|p| p.user.0).collect();
        assert_eq!(admitted, vec![4, 2, 3, 5, 6, 7]);
    }
}
