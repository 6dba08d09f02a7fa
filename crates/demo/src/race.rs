//! One race: every user sends one hold at the same moment (a barrier) to one
//! strategy, and the answers are tallied by reason while they arrive. In the
//! spike, a user who lost tries again on another random seat.

use booking_domain::*;
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Barrier;

pub const HEADER: &str =
    "  strategy      won  seat-taken  sold-out  contention  other   elapsed   median";

/// What every user asks for.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// All users want the same single seat.
    OneSeat,
    /// User i wants seats i and i+1 of a ring of n/2 seats: every request
    /// overlaps two others.
    OverlappingPairs,
    /// `seats` seats; every user wants one random seat, and after a
    /// `SeatTaken` or `Contention` tries another one it has not been refused,
    /// up to `SPIKE_ATTEMPTS` in all. A `SoldOut` ends its tries: the user
    /// believes it and leaves, so every false "sold out" is a seat unsold.
    Spike { seats: usize },
}

/// Holds one spike user sends at most.
pub const SPIKE_ATTEMPTS: usize = 10;

impl Shape {
    pub fn title(self, users: usize) -> String {
        match self {
            Shape::OneSeat => format!(
                "Race 1: {users} users, one seat. Exactly one may win (a fresh schedule per strategy)."
            ),
            Shape::OverlappingPairs => format!(
                "Race 2: {users} users, two adjacent seats each, over a ring of {} seats: every request \
                 overlaps two others.\n        All or nothing, no seat twice, no deadlock.",
                ring(users)
            ),
            Shape::Spike { seats } => format!(
                "Race 3: a spike: {users} users, {seats} seats, each user tries random seats (the same \
                 choices for every strategy)\n        until it holds one, is told sold out, or has \
                 tried {SPIKE_ATTEMPTS}."
            ),
        }
    }

    /// Seats the schedule needs.
    pub fn seats(self, users: usize) -> usize {
        match self {
            Shape::OneSeat => 1,
            Shape::OverlappingPairs => ring(users),
            Shape::Spike { seats } => seats,
        }
    }

    /// The seats user `i` asks for first.
    fn wanted(self, i: usize, seats: &[SeatId], users: usize) -> Vec<SeatId> {
        match self {
            Shape::OneSeat => vec![seats[0]],
            Shape::Spike { .. } => vec![seats[spike_choices(i, seats.len()).next().unwrap_or(0)]],
            Shape::OverlappingPairs => {
                let n = ring(users);
                let mut pair = vec![seats[i % n], seats[(i + 1) % n]];
                pair.sort();
                pair
            }
        }
    }
}

fn ring(users: usize) -> usize {
    (users / 2).max(3)
}

/// The seat indexes spike user `i` picks, in order: random, never the same
/// twice, and the same sequence in every strategy's race (seeded by `i`).
fn spike_choices(i: usize, seats: usize) -> impl Iterator<Item = usize> {
    let mut rng = StdRng::seed_from_u64(i as u64);
    let mut refused = HashSet::new();
    std::iter::from_fn(move || {
        if refused.len() >= seats {
            return None;
        }
        loop {
            let k = rng.gen_range(0..seats);
            if refused.insert(k) {
                return Some(k);
            }
        }
    })
    .take(SPIKE_ATTEMPTS)
}

/// Answers so far, by reason; read live by the progress line.
#[derive(Debug, Default)]
struct Tally {
    won: AtomicUsize,
    seat_taken: AtomicUsize,
    sold_out: AtomicUsize,
    contention: AtomicUsize,
    other: AtomicUsize,
}

impl Tally {
    fn count(&self, result: &Result<Reservation, HoldError>) {
        let counter = match result {
            Ok(_) => &self.won,
            Err(HoldError::SeatTaken(_)) => &self.seat_taken,
            Err(HoldError::SoldOut) => &self.sold_out,
            Err(HoldError::Contention) => &self.contention,
            Err(_) => &self.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn answered(&self) -> usize {
        [
            &self.won,
            &self.seat_taken,
            &self.sold_out,
            &self.contention,
            &self.other,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }

    fn columns(&self) -> String {
        let get = |c: &AtomicUsize| c.load(Ordering::Relaxed);
        format!(
            "{:>5}  {:>10}  {:>8}  {:>10}  {:>5}",
            get(&self.won),
            get(&self.seat_taken),
            get(&self.sold_out),
            get(&self.contention),
            get(&self.other)
        )
    }
}

pub struct Race {
    pub strategy: &'static str,
    pub lock: Arc<dyn SeatLock>,
    pub shape: Shape,
    pub schedule: ScheduleId,
    pub seats: Vec<SeatId>,
    pub users: Vec<UserId>,
}

/// One racer's request (its last, in the spike) and what it got back.
struct Answer {
    /// The racer's index: user `fan<user + 1>`.
    user: usize,
    wanted: Vec<SeatId>,
    result: Result<Reservation, HoldError>,
    /// From the first request to the last answer.
    took: Duration,
}

/// How a race ended, in request order.
pub struct Outcome {
    strategy: &'static str,
    shape: Shape,
    tally: Arc<Tally>,
    results: Vec<Answer>,
    elapsed: Duration,
}

impl Race {
    pub async fn run(self) -> Outcome {
        let n = self.users.len();
        let tally = Arc::new(Tally::default());
        // The racers and this task: timing starts when all of them are ready.
        let barrier = Arc::new(Barrier::new(n + 1));
        let now = Utc::now();
        let tasks: Vec<_> = self
            .users
            .iter()
            .enumerate()
            .map(|(i, user)| {
                let wanted = self.shape.wanted(i, &self.seats, n);
                let request = hold_request(*user, self.schedule, &wanted, now);
                let (lock, barrier, tally) = (
                    Arc::clone(&self.lock),
                    Arc::clone(&barrier),
                    Arc::clone(&tally),
                );
                let (shape, seats) = (self.shape, self.seats.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let sent = Instant::now();
                    let mut answer = Answer {
                        user: i,
                        wanted,
                        result: lock.hold_seats(&request).await,
                        took: Duration::ZERO,
                    };
                    tally.count(&answer.result);
                    if let Shape::Spike { .. } = shape {
                        for k in spike_choices(i, seats.len()).skip(1) {
                            if !matches!(
                                answer.result,
                                Err(HoldError::SeatTaken(_) | HoldError::Contention)
                            ) {
                                break;
                            }
                            answer.wanted = vec![seats[k]];
                            let retry = hold_request(
                                request.user_id,
                                request.schedule_id,
                                &answer.wanted,
                                now,
                            );
                            answer.result = lock.hold_seats(&retry).await;
                            tally.count(&answer.result);
                        }
                    }
                    answer.took = sent.elapsed();
                    answer
                })
            })
            .collect();

        let live = std::io::stdout().is_terminal();
        barrier.wait().await;
        let start = Instant::now();
        let progress = live.then(|| {
            let (tally, strategy) = (Arc::clone(&tally), self.strategy);
            tokio::spawn(async move {
                loop {
                    print!(
                        "\r\x1b[2K  {strategy:<12}{}   {:>4}/{n} answered",
                        tally.columns(),
                        tally.answered()
                    );
                    let _ = std::io::stdout().flush();
                    tokio::time::sleep(Duration::from_millis(40)).await;
                }
            })
        });
        let mut results = Vec::with_capacity(n);
        for task in tasks {
            match task.await {
                Ok(answer) => results.push(answer),
                Err(e) => panic!("a racer panicked: {e}"),
            }
        }
        let slowest = results.iter().map(|a| a.took).max().unwrap_or_default();
        let elapsed = start.elapsed().max(slowest);
        if let Some(progress) = progress {
            progress.abort();
            print!("\r\x1b[2K");
        }
        Outcome {
            strategy: self.strategy,
            shape: self.shape,
            tally,
            results,
            elapsed,
        }
    }
}

fn hold_request(
    user: UserId,
    schedule: ScheduleId,
    wanted: &[SeatId],
    now: DateTime<Utc>,
) -> HoldRequest {
    HoldRequest {
        user_id: user,
        schedule_id: schedule,
        seat_ids: SeatIds::parse(wanted.to_vec()).expect("1 or 2 distinct seats"),
        idempotency_key: None,
        now,
        expires_at: now + chrono::Duration::minutes(5),
        request_id: None,
    }
}

impl Outcome {
    /// Prints the strategy's row and its audit; true if every check passed.
    pub fn print_with_audit(&self, report: &AuditReport) -> bool {
        let mut took: Vec<Duration> = self.results.iter().map(|a| a.took).collect();
        took.sort();
        let median = took.get(took.len() / 2).copied().unwrap_or_default();
        println!(
            "  {:<12}{} {:>7} ms {:>6} ms",
            self.strategy,
            self.tally.columns(),
            self.elapsed.as_millis(),
            median.as_millis()
        );

        let mut failures = Vec::new();
        let unexpected: Vec<String> = self
            .results
            .iter()
            .filter_map(|a| match &a.result {
                Err(HoldError::SeatTaken(_) | HoldError::SoldOut | HoldError::Contention) => None,
                Err(e) => Some(e.to_string()),
                Ok(_) => None,
            })
            .collect();
        if let Some(first) = unexpected.first() {
            failures.push(format!(
                "{} answers were neither a win nor a refusal, e.g. {first}",
                unexpected.len()
            ));
        } else if self.tally.other.load(Ordering::Relaxed) > 0 {
            failures.push("a spike user's retry got neither a win nor a refusal".into());
        }
        let winners: Vec<_> = self
            .results
            .iter()
            .filter_map(|a| {
                a.result
                    .as_ref()
                    .ok()
                    .map(|r| (a.user, &a.wanted, r, a.took))
            })
            .collect();
        let won = winners.len() as i64;

        match self.shape {
            Shape::OneSeat => {
                if let [(i, _, reservation, took)] = winners.as_slice() {
                    println!(
                        "      winner fan{} (reservation {}), answered in {} ms",
                        i + 1,
                        reservation.id,
                        took.as_millis()
                    );
                } else {
                    failures.push(format!("{won} winners for one seat, want exactly 1"));
                }
            }
            Shape::OverlappingPairs => {
                let mut seen = HashSet::new();
                for (i, wanted, reservation, _) in &winners {
                    if reservation.seat_ids != **wanted {
                        failures.push(format!(
                            "fan{} asked for {wanted:?} and holds {:?}",
                            i + 1,
                            reservation.seat_ids
                        ));
                    }
                    for seat in &reservation.seat_ids {
                        if !seen.insert(*seat) {
                            failures.push(format!("seat {seat} was won twice"));
                        }
                    }
                }
                let seats = self.shape.seats(self.results.len());
                println!(
                    "      {won} pairs won: {} of {seats} seats, each by one reservation; {} free \
                     (both pairs wanting each lost)",
                    seen.len(),
                    seats - seen.len()
                );
                if won == 0 {
                    failures.push("nobody won a pair".into());
                }
            }
            Shape::Spike { .. } => {
                let mut seen = HashSet::new();
                for (_, _, reservation, _) in &winners {
                    for seat in &reservation.seat_ids {
                        if !seen.insert(*seat) {
                            failures.push(format!("seat {seat} was won twice"));
                        }
                    }
                }
                let told_sold_out = self
                    .results
                    .iter()
                    .filter(|a| matches!(a.result, Err(HoldError::SoldOut)))
                    .count();
                let seats = report.capacity;
                println!(
                    "      SOLD {} of {seats} seats ({won} users hold one); {told_sold_out} users left \
                     on \"sold out\", {} after {SPIKE_ATTEMPTS} refusals",
                    seen.len(),
                    self.results.len() - winners.len() - told_sold_out,
                );
            }
        }

        let want_held = match self.shape {
            Shape::OneSeat | Shape::Spike { .. } => won,
            Shape::OverlappingPairs => 2 * won,
        };
        if report.active_reservations != won || report.held != want_held {
            failures.push(format!(
                "the database holds {} seats in {} reservations, the answers say {want_held} in {won}",
                report.held, report.active_reservations
            ));
        }
        failures.extend(report.violations());
        println!(
            "      audit: {} active reservation{}; seats {} HELD, {} AVAILABLE of {}; \
             {} double-booked, {} mismatched  {}",
            report.active_reservations,
            if report.active_reservations == 1 {
                ""
            } else {
                "s"
            },
            report.held,
            report.available,
            report.capacity,
            report.double_booked_seats.len(),
            report.status_mismatches.len(),
            if failures.is_empty() { "OK" } else { "FAIL" }
        );
        let sold_out = self.tally.sold_out.load(Ordering::Relaxed);
        if sold_out > 0 && report.available > 0 {
            println!(
                "      note: {sold_out} sold-out answers, yet {} seats are still AVAILABLE",
                report.available
            );
        }

        if failures.is_empty() {
            true
        } else {
            for failure in &failures {
                println!("      FAIL: {failure}");
            }
            false
        }
    }
}
