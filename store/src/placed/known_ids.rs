//! Which records a store has placed, approximately: a Bloom filter kept
//! beside the index of places ([`super::Placement::with_known_ids`]).
//!
//! A batch of new records has ids all over the id space, so looking each up
//! in the index reads most of its packs only to learn that the record is
//! new. The filter answers "certainly not placed" for nearly all of them
//! (false positives are only looked up), and never answers it for a record
//! that is placed: every place handed out is noted before its batch is
//! applied, and a filter is built from the index itself.
//!
//! The filter lives in memory only: it is built from the index at its first
//! use, and again once more records are placed than it was made for (it is
//! made for twice the records placed then). About 10 bits a record: 1.2 to
//! 2.4 MB at a million records.

use std::sync::Mutex;

use fastbloom::BloomFilter;
use returnee_shared::RecordId;

/// The share of absent ids the filter lets through at its capacity.
const FALSE_POSITIVES: f64 = 0.01;

/// Records a filter is made for at least.
const MIN_CAPACITY: usize = 64 * 1024;

/// Fixed, so that a store behaves the same in every process.
const SEED: u128 = 0x7265_7475_726e_6565;

/// The filter of one store's placed records, shared by the handles of that
/// store. Its users hold the lock that serialises the store's writes (the
/// server's writer lock, the laptop's commit lock), so that no batch is
/// placed between building the filter from the index and using it.
#[derive(Default)]
pub struct KnownIds {
    filter: Mutex<Option<Filter>>,
    /// `Some(n)`: a filter is built only for a batch of at least 1/n of
    /// the records placed ([`KnownIds::for_batches_over`]).
    build_share: Option<u64>,
    /// A filter was dropped because more records were placed than it was
    /// made for: it is built again, larger, whatever the batch.
    outgrown: std::sync::atomic::AtomicBool,
}

struct Filter {
    bloom: BloomFilter,
    /// Records noted, at most (a record noted twice counts twice).
    noted: usize,
    capacity: usize,
}

impl KnownIds {
    pub fn new() -> Self {
        Self::default()
    }

    /// A filter built only when a batch to look up holds at least
    /// 1/`share` of the records placed, and used for every batch once
    /// built. Building reads the whole index; a small batch reads fewer of
    /// its packs by looking its ids up (a laptop's `add`, or an
    /// incremental pull of edits to families it holds).
    pub fn for_batches_over(share: u64) -> Self {
        KnownIds {
            build_share: Some(share),
            ..Self::default()
        }
    }

    /// Whether to ask the filter about a batch of `batch` ids: it is
    /// built, or worth building (`placed`: how many places were handed out).
    pub(super) fn worth_asking<E>(
        &self,
        batch: usize,
        placed: impl FnOnce() -> Result<u64, E>,
    ) -> Result<bool, E> {
        let Some(share) = self.build_share else {
            return Ok(true);
        };
        if self.filter.lock().expect("filter lock").is_some()
            || self.outgrown.load(std::sync::atomic::Ordering::Relaxed)
        {
            return Ok(true);
        }
        Ok((batch as u64).saturating_mul(share) >= placed()?)
    }

    /// Drops the filter; the next use builds it from the index again (the
    /// index was replaced).
    pub fn reset(&self) {
        *self.filter.lock().expect("filter lock") = None;
    }

    /// For each of `ids`, whether it may be placed (`false`: it certainly is
    /// not). Without a filter yet, one is built first from `every()`: the
    /// number of places handed out (at least the records placed) and every
    /// placed record's id.
    pub(super) fn may_hold<E, I>(
        &self,
        ids: &[RecordId],
        every: impl FnOnce() -> Result<(u64, I), E>,
    ) -> Result<Vec<bool>, E>
    where
        I: Iterator<Item = Result<RecordId, E>>,
    {
        let mut filter = self.filter.lock().expect("filter lock");
        if filter.is_none() {
            let (placed, all) = every()?;
            let capacity = (2 * placed as usize).max(MIN_CAPACITY);
            let mut bloom = BloomFilter::with_false_pos(FALSE_POSITIVES)
                .seed(&SEED)
                .expected_items(capacity);
            let mut noted = 0;
            for id in all {
                bloom.insert(&id?);
                noted += 1;
            }
            *filter = Some(Filter {
                bloom,
                noted,
                capacity,
            });
        }
        let bloom = &filter.as_ref().expect("built").bloom;
        Ok(ids.iter().map(|id| bloom.contains(id)).collect())
    }

    /// Notes records placed by a batch about to be applied. A filter that
    /// would then hold more than it was made for is dropped, to be built
    /// again, larger, from the index at its next use.
    pub(super) fn note(&self, ids: impl ExactSizeIterator<Item = RecordId>) {
        let mut guard = self.filter.lock().expect("filter lock");
        let Some(filter) = guard.as_mut() else {
            // Built from the index at the next use, once this batch is in.
            return;
        };
        if filter.noted + ids.len() > filter.capacity {
            *guard = None;
            self.outgrown
                .store(true, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        filter.noted += ids.len();
        for id in ids {
            filter.bloom.insert(&id);
        }
    }

    /// The bytes the filter takes (0 when it is not built).
    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        self.filter
            .lock()
            .expect("filter lock")
            .as_ref()
            .map_or(0, |f| f.bloom.num_bits() / 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> RecordId {
        RecordId(uuid::Uuid::from_u128(
            n.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835),
        ))
    }

    /// What a filter is built from: a count and every id.
    type Every = (u64, std::vec::IntoIter<Result<RecordId, ()>>);

    fn every(ids: &[RecordId]) -> impl FnOnce() -> Result<Every, ()> + '_ {
        move || {
            let all: Vec<Result<RecordId, ()>> = ids.iter().copied().map(Ok).collect();
            Ok((ids.len() as u64, all.into_iter()))
        }
    }

    /// How many of `fresh` (never placed) the filter lets through.
    fn passing(known: &KnownIds, fresh: &[RecordId]) -> usize {
        let passed = known.may_hold(fresh, every(&[])).unwrap();
        passed.iter().filter(|b| **b).count()
    }

    #[test]
    fn placed_ids_always_pass_and_few_new_ones_do() {
        let known = KnownIds::new();
        let placed: Vec<RecordId> = (0..50_000).map(id).collect();
        let fresh: Vec<RecordId> = (1_000_000..1_100_000).map(id).collect();
        assert!(
            known
                .may_hold(&placed, every(&placed))
                .unwrap()
                .iter()
                .all(|b| *b)
        );
        let passed = passing(&known, &fresh);
        assert!(passed < 1_500, "{passed} of 100,000 new ids passed");
        // Made for twice the records placed: 10 bits a record at most.
        assert!(
            known.bytes() <= 2 * 50_000 * 10 / 8 + 64,
            "{}",
            known.bytes()
        );
    }

    #[test]
    fn noted_ids_pass_and_a_full_filter_is_built_again_from_the_index() {
        let known = KnownIds::new();
        let mut index: Vec<RecordId> = (0..10).map(id).collect();
        known.may_hold(&index, every(&index)).unwrap();
        // Placed in batches, each noted before it lands in the index.
        for batch in 0..40u128 {
            let ids: Vec<RecordId> = (0..5_000).map(|i| id(100 + batch * 5_000 + i)).collect();
            known.note(ids.iter().copied());
            index.extend(&ids);
            // Each lookup builds from the index when the filter was dropped.
            let got = known.may_hold(&index, every(&index)).unwrap();
            assert!(got.iter().all(|b| *b), "batch {batch}: a placed id missed");
        }
        // Built again, larger, as the records grew past what it was made
        // for: 200,010 records now, at least that many made for.
        assert!(known.bytes() > 200_010 * 9 / 8, "{}", known.bytes());
        let fresh: Vec<RecordId> = (5_000_000..5_010_000).map(id).collect();
        let passed = passing(&known, &fresh);
        assert!(passed < 150, "{passed} of 10,000 new ids passed");
        // Noted before any use: nothing to note into; built at the first use.
        let cold = KnownIds::new();
        cold.note([id(7)].into_iter());
        assert_eq!(cold.bytes(), 0);
        assert_eq!(
            cold.may_hold(&[id(7)], every(&[id(7)])).unwrap(),
            vec![true]
        );
        cold.reset();
        assert_eq!(cold.bytes(), 0);
    }

    #[test]
    fn a_filter_for_large_batches_is_asked_once_built_or_worth_building() {
        let known = KnownIds::for_batches_over(16);
        let placed = |n: u64| move || Ok::<u64, ()>(n);
        // 10 ids among 1,000 placed: looked up, no filter built.
        assert!(!known.worth_asking(10, placed(1_000)).unwrap());
        assert!(known.worth_asking(63, placed(1_000)).unwrap());
        assert!(known.worth_asking(1, placed(0)).unwrap(), "a new store");
        // Once built, every batch asks it.
        let index: Vec<RecordId> = (0..1_000).map(id).collect();
        known.may_hold(&index[..1], every(&index)).unwrap();
        assert!(known.worth_asking(1, placed(1_000)).unwrap());
        // Outgrown (more noted than made for): built again whatever the batch.
        let more: Vec<RecordId> = (1_000..200_000).map(id).collect();
        known.note(more.iter().copied());
        assert_eq!(known.bytes(), 0, "dropped");
        assert!(known.worth_asking(1, placed(200_000)).unwrap());
        // The server's filter is asked for every batch.
        assert!(KnownIds::new().worth_asking(1, placed(1_000_000)).unwrap());
    }
}
