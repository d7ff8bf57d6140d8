//! Identifiers and time, injectable so that tests control them.

use rand::Rng;
use time::OffsetDateTime;

/// The largest id handed out: every id is an integer that a JSON number (an IEEE double) holds
/// exactly, as the predecessor's clients expect (`"doctor_id": 1`).
pub const MAX_ID: u64 = (1 << 53) - 1;

/// Makes new entity ids.
pub trait IdGen: Send + Sync {
    fn next_id(&self) -> u64;
}

/// Random ids in `1..=MAX_ID`: unguessable and needing no shared counter. A collision (about one
/// in 2^26 after 2^26 ids of one kind) is caught by the conditional write, which then retries.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl IdGen for RandomIds {
    fn next_id(&self) -> u64 {
        rand::rng().random_range(1..=MAX_ID)
    }
}

/// Tells the time.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_positive_and_fit_a_json_number() {
        for _ in 0..10_000 {
            let id = RandomIds.next_id();
            assert!((1..=MAX_ID).contains(&id));
            assert_eq!(id as f64 as u64, id);
        }
    }
}
