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
