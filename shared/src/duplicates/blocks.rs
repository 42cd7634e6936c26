//! Blocking in memory: the candidates among a set of families held in
//! memory, with the same blocks and window as an ordered index
//! ([`super::index_ranges`]), for a store that keeps no index of its own
//! (the laptop) and for a check of a whole set at once.
//!
//! A family is filed under a 64-bit hash of each of its blocks (crossing and
//! block key); two families are compared when they share a hash and their
//! dates are at most [`WINDOW_DAYS`] apart. A hash shared by two blocks
//! (one chance in 2^64 per pair of blocks) costs one comparison, which the
//! score then decides as for any pair.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use super::*;

/// Families filed by block.
#[derive(Debug, Default)]
pub struct Blocks {
    families: Vec<(RecordId, Features)>,
    /// Each block's families: their dates (days) and places in `families`.
    blocks: HashMap<u64, Vec<(i32, u32)>>,
}

fn block_hash(crossing: &str, block: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    crossing.hash(&mut h);
    block.hash(&mut h);
    h.finish()
}

impl Blocks {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many families are filed.
    pub fn len(&self) -> usize {
        self.families.len()
    }

    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }

    /// Files family `id` (once: a family filed twice would be its own
    /// candidate under another place).
    pub fn add(&mut self, id: RecordId, f: Features) {
        let at = self.families.len() as u32;
        let day = f.crossed_on.to_epoch_days();
        for b in f.block_keys() {
            self.blocks
                .entry(block_hash(&f.crossing, &b))
                .or_default()
                .push((day, at));
        }
        self.families.push((id, f));
    }

    /// Whether `f` shares a block with a filed family (within the window or
    /// not): a family that shares none has no candidate here.
    pub fn shares_a_block(&self, f: &Features) -> bool {
        f.block_keys()
            .iter()
            .any(|b| self.blocks.contains_key(&block_hash(&f.crossing, b)))
    }

    /// The candidates of `id` (features `f`) among the filed families, but
    /// `id` itself and pairs `dismissed` says were decided, highest score
    /// first.
    pub fn candidates_of(
        &self,
        id: RecordId,
        f: &Features,
        dismissed: impl Fn(RecordId, RecordId) -> bool,
    ) -> Vec<Candidate> {
        let day = f.crossed_on.to_epoch_days();
        let window = WINDOW_DAYS as i32;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for b in f.block_keys() {
            let Some(members) = self.blocks.get(&block_hash(&f.crossing, &b)) else {
                continue;
            };
            for &(d, at) in members {
                if (d - day).abs() > window || !seen.insert(at) {
                    continue;
                }
                let (other, g) = &self.families[at as usize];
                if let Some(c) = compare((id, f), (*other, g))
                    && !dismissed(c.records[0], c.records[1])
                {
                    out.push(c);
                }
            }
        }
        sort_candidates(&mut out);
        out
    }

    /// Every candidate pair among the filed families, but pairs `dismissed`
    /// says were decided, highest score first: each block's families sorted
    /// by date and each compared with those of the next days of the window.
    pub fn all_candidates(&self, dismissed: impl Fn(RecordId, RecordId) -> bool) -> Vec<Candidate> {
        let window = WINDOW_DAYS as i32;
        let mut compared: HashSet<(u32, u32)> = HashSet::new();
        let mut out = Vec::new();
        for members in self.blocks.values() {
            if members.len() < 2 {
                continue;
            }
            let mut members = members.clone();
            members.sort_unstable();
            for (i, &(day, a)) in members.iter().enumerate() {
                for &(d, b) in &members[i + 1..] {
                    if d - day > window {
                        break;
                    }
                    if a == b || !compared.insert((a.min(b), a.max(b))) {
                        continue;
                    }
                    let (ia, fa) = &self.families[a as usize];
                    let (ib, fb) = &self.families[b as usize];
                    if let Some(c) = compare((*ia, fa), (*ib, fb))
                        && !dismissed(c.records[0], c.records[1])
                    {
                        out.push(c);
                    }
                }
            }
        }
        sort_candidates(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(day: u32, name: &str, doc: Option<&str>) -> Features {
        Features {
            crossing: "torkham".into(),
            crossed_on: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap() + Days::new(day as u64),
            destination: "AF-NAN".into(),
            members: Members {
                males: [1, 1, 0, 1, 0],
                females: [1, 0, 1, 1, 0],
            },
            head_sex: Some(Sex::Male),
            doc: doc.and_then(normalize_doc),
            name: name_tokens(name),
        }
    }

    fn id(n: u128) -> RecordId {
        RecordId(uuid::Uuid::from_u128(n))
    }

    /// The same pairs as looking each family up in an ordered index.
    #[test]
    fn every_pair_an_ordered_index_finds_and_no_other() {
        let names = [
            "Mohammad Gul",
            "Muhammad Gul",
            "Abdul Rahman",
            "Abdulrahman",
            "Gul Khan",
            "Zarmina",
        ];
        let mut blocks = Blocks::new();
        let mut index = MemoryIndex::default();
        let mut all = Vec::new();
        for n in 0..120u128 {
            let name = names[n as usize % names.len()];
            let doc = (n % 4 == 0).then(|| format!("AB12345{}", n % 7));
            let f = features((n % 9) as u32, name, doc.as_deref());
            blocks.add(id(n), f.clone());
            index.insert(id(n), &f);
            all.push((id(n), f));
        }
        let dismissed = |a: RecordId, b: RecordId| a == id(0) && b == id(6);
        let mut expected: Vec<Candidate> = Vec::new();
        for (i, f) in &all {
            for c in find_candidates(&index, MEMORY_PREFIX, *i, f, |a, b| {
                Ok::<_, std::convert::Infallible>(dismissed(a, b))
            })
            .unwrap()
            {
                if !expected.iter().any(|e| e.id == c.id) {
                    expected.push(c);
                }
            }
            let mut one = blocks.candidates_of(*i, f, dismissed);
            let mut want = find_candidates(&index, MEMORY_PREFIX, *i, f, |a, b| {
                Ok::<_, std::convert::Infallible>(dismissed(a, b))
            })
            .unwrap();
            sort_candidates(&mut one);
            sort_candidates(&mut want);
            assert_eq!(one, want);
        }
        sort_candidates(&mut expected);
        let got = blocks.all_candidates(dismissed);
        assert!(got.len() > 20, "the set has pairs: {}", got.len());
        assert_eq!(got, expected);
        assert!(!got.iter().any(|c| c.records == [id(0), id(6)]));
    }

    #[test]
    fn a_family_alone_in_its_blocks_shares_none() {
        let mut blocks = Blocks::new();
        blocks.add(id(1), features(0, "Mohammad Gul", Some("AB1234567")));
        assert!(blocks.shares_a_block(&features(5, "Muhammad Gul", None)));
        assert!(!blocks.shares_a_block(&Features {
            crossing: "chaman".into(),
            ..features(0, "Mohammad Gul", Some("AB1234567"))
        }));
        assert_eq!(blocks.len(), 1);
    }
}
