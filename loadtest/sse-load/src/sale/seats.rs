//! The seats the driver believes free, shared by every buyer: read once
//! from the seat map, taken out while a buyer tries them, put back when the
//! server refused them for another reason than "taken".

use rand::Rng;
use std::sync::Mutex;

#[derive(Debug)]
pub struct SeatPool {
    free: Mutex<Vec<i64>>,
}

impl SeatPool {
    pub fn new(free: Vec<i64>) -> Self {
        Self {
            free: Mutex::new(free),
        }
    }

    /// Up to `n` seats picked at random; empty when none is believed free.
    /// Random, so that buyers spread over the hall as people would.
    pub fn take(&self, n: usize, rng: &mut impl Rng) -> Vec<i64> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let mut picked = Vec::with_capacity(n);
        while picked.len() < n && !free.is_empty() {
            let i = rng.gen_range(0..free.len());
            picked.push(free.swap_remove(i));
        }
        picked
    }

    /// `seats` go back, except those the server said are taken.
    pub fn give_back(&self, seats: &[i64], taken: &[i64]) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        free.extend(seats.iter().filter(|s| !taken.contains(s)));
    }

    pub fn len(&self) -> usize {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn a_seat_is_handed_to_one_buyer_at_a_time() {
        let pool = SeatPool::new((1..=10).collect());
        let mut rng = StdRng::seed_from_u64(7);
        let a = pool.take(4, &mut rng);
        let b = pool.take(4, &mut rng);
        let c = pool.take(4, &mut rng);
        assert_eq!((a.len(), b.len(), c.len()), (4, 4, 2));
        let mut all: Vec<i64> = a.iter().chain(&b).chain(&c).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (1..=10).collect::<Vec<_>>());
        assert!(pool.take(1, &mut rng).is_empty());
    }

    #[test]
    fn seats_taken_by_others_do_not_come_back() {
        let pool = SeatPool::new(vec![1, 2, 3]);
        let mut rng = StdRng::seed_from_u64(7);
        let tried = pool.take(3, &mut rng);
        pool.give_back(&tried, &[2]);
        let mut left = pool.take(3, &mut rng);
        left.sort_unstable();
        assert_eq!(left, vec![1, 3]);
    }
}
