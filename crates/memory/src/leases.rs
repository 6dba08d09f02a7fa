//! Job leases over `MemoryStore`: one named row per periodic job, so only one
//! instance (here: one task) runs it at a time, ShedLock-style.

use crate::store::{LeaseRow, MemoryStore};
use async_trait::async_trait;
use booking_domain::{JobLeaseRepository, RepoError};
use chrono::{DateTime, Utc};

#[async_trait]
impl JobLeaseRepository for MemoryStore {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let mut t = self.tables()?;
        let free = match t.leases.get(name) {
            None => true,
            Some(lease) => lease.locked_until <= now || lease.locked_by == owner,
        };
        if free {
            t.leases.insert(
                name.to_owned(),
                LeaseRow {
                    locked_until: until,
                    locked_by: owner.to_owned(),
                },
            );
        }
        Ok(free)
    }

    /// Only the owner can release; releasing someone else's lease is a no-op.
    async fn release(&self, name: &str, owner: &str) -> Result<(), RepoError> {
        let mut t = self.tables()?;
        if t.leases.get(name).is_some_and(|l| l.locked_by == owner) {
            t.leases.remove(name);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[tokio::test]
    async fn one_holder_until_the_lease_runs_out() {
        let store = MemoryStore::new();
        let now = Utc::now();
        let until = now + Duration::seconds(30);
        assert!(store.try_acquire("expire", "a", now, until).await.unwrap());
        assert!(!store.try_acquire("expire", "b", now, until).await.unwrap());
        // The holder may renew.
        assert!(store.try_acquire("expire", "a", now, until).await.unwrap());
        // Expired: anyone may take it.
        assert!(store
            .try_acquire("expire", "b", until, until + Duration::seconds(30))
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn only_the_owner_releases() {
        let store = MemoryStore::new();
        let now = Utc::now();
        let until = now + Duration::seconds(30);
        assert!(store.try_acquire("relay", "a", now, until).await.unwrap());
        store.release("relay", "b").await.unwrap();
        assert!(!store.try_acquire("relay", "b", now, until).await.unwrap());
        store.release("relay", "a").await.unwrap();
        assert!(store.try_acquire("relay", "b", now, until).await.unwrap());
    }
}
