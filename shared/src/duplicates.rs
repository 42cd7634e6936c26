//! Duplicate families: the pure detection every replica runs.
//!
//! At a busy crossing one family is often registered twice (two desks, two
//! shifts, or again the next day). This module says which pairs of records
//! look like the same family, and why:
//!
//! - [`Features`]: what detection reads of a family, normalised once
//!   (document number, head's name as canonical tokens, composition,
//!   destination, crossing and date);
//! - [`normalize_doc`], [`name_tokens`], [`name_key`], [`name_similarity`]:
//!   the normalisation of document numbers and of Afghan names written in
//!   Latin letters (Mohammad/Muhammad/Mohd, Abdul Rahman/Abdulrahman,
//!   Gul/Gull, …), and a transliteration-tolerant similarity;
//! - [`score`]: a score in 0..=1 made of parts, each with its contribution
//!   ([`Reason`]); a pair at or above [`THRESHOLD`] is a [`Candidate`];
//! - blocking: a candidate shares the crossing, a crossing date within
//!   [`WINDOW_DAYS`], and at least one *block key* (the document number, the
//!   name's consonant skeleton, or the exact composition with the
//!   destination and the name's initial). [`index_keys`] and [`index_ranges`] give the byte keys of
//!   an ordered index, its block keys hashed ([`BlockHasher`]) (a sled tree on the server and on the laptop, a
//!   [`MemoryIndex`] in tests), and [`find_candidates`] looks one record up
//!   in any [`BlockIndex`]. Each lookup reads a few short key ranges, so
//!   checking every record costs in proportion to the number of records, never
//!   to its square. [`Blocks`] files families by the same blocks in memory
//!   (the laptop, which keeps no index on disk).
//!
//! Decisions on candidates (merge, dismiss, unmerge) are operations of the
//! merge model ([`crate::merge`]); this module only suggests.
//!
//! Nothing here does I/O, and no message made here carries a name or a
//! document number (reasons say "same document number", never which).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::family::{FamilyFields, Members, RecordId, Sex};
use crate::reference::UNDECIDED_DESTINATION;

mod blocking;
mod blocks;
mod names;

pub use blocking::*;
pub use blocks::*;
pub use names::*;

/// Two records are compared when their crossing dates are at most this many days apart.
pub const WINDOW_DAYS: u64 = 2;
/// The lowest score at which a pair is suggested: chosen on the synthetic
/// set of `dupbench` (PERFORMANCE.md, "Duplicate detection"), where it
/// balances precision and recall.
pub const THRESHOLD: f64 = 0.59;

/// What detection reads of a family, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Features {
    pub crossing: String,
    pub crossed_on: NaiveDate,
    pub destination: String,
    pub members: Members,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_sex: Option<Sex>,
    /// The document number, normalised ([`normalize_doc`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc: Option<String>,
    /// The head's name as canonical tokens ([`name_tokens`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub name: Vec<String>,
}

impl Features {
    /// The features of a family's fields.
    pub fn of(f: &FamilyFields) -> Features {
        Features {
            crossing: f.crossing.clone(),
            crossed_on: f.crossed_on,
            destination: f.destination_province.clone(),
            members: f.members,
            head_sex: f.head_sex,
            doc: f.doc_number.as_deref().and_then(normalize_doc),
            name: f.head_name.as_deref().map(name_tokens).unwrap_or_default(),
        }
    }

    /// The secondary block keys (besides crossing and date window): a pair
    /// is compared only if it shares one of them.
    pub fn block_keys(&self) -> Vec<String> {
        let mut keys = Vec::with_capacity(3);
        if let Some(doc) = &self.doc {
            keys.push(format!("doc:{doc}"));
        }
        if let Some(k) = name_key(&self.name) {
            keys.push(format!("name:{k}"));
        }
        // The same household going to the same place, with a name that
        // starts alike: catches names spelled too differently for the name
        // key (a dropped word, a typo) without comparing every household of
        // the same shape.
        let m = &self.members;
        let initial = self
            .name
            .first()
            .and_then(|t| t.chars().next())
            .unwrap_or('-');
        keys.push(format!(
            "household:{:?}{:?}@{}/{initial}",
            m.males, m.females, self.destination
        ));
        keys
    }
}

/// The compact encoding of [`Features`] the indexes store (a few dozen
/// bytes, read for every record compared): the version byte 1, then
/// length-prefixed (one byte) strings and fixed fields.
impl Features {
    pub fn to_bytes(&self) -> Vec<u8> {
        fn text(out: &mut Vec<u8>, s: &str) {
            let mut n = s.len().min(255);
            while !s.is_char_boundary(n) {
                n -= 1;
            }
            out.push(n as u8);
            out.extend_from_slice(&s.as_bytes()[..n]);
        }
        let mut out = Vec::with_capacity(64);
        out.push(1);
        text(&mut out, &self.crossing);
        out.extend_from_slice(&self.crossed_on.to_epoch_days().to_be_bytes());
        text(&mut out, &self.destination);
        for n in self.members.males.iter().chain(&self.members.females) {
            out.push((*n).min(255) as u8);
        }
        out.push(match self.head_sex {
            None => 0,
            Some(Sex::Male) => 1,
            Some(Sex::Female) => 2,
        });
        match &self.doc {
            None => out.push(0),
            Some(d) => {
                out.push(1);
                text(&mut out, d);
            }
        }
        out.push(self.name.len().min(255) as u8);
        for t in self.name.iter().take(255) {
            text(&mut out, t);
        }
        out
    }

    /// Reads [`Features::to_bytes`]; `None` if the bytes are not such an encoding.
    pub fn from_bytes(bytes: &[u8]) -> Option<Features> {
        struct Reader<'a>(&'a [u8]);
        impl Reader<'_> {
            fn byte(&mut self) -> Option<u8> {
                let (b, rest) = self.0.split_first()?;
                self.0 = rest;
                Some(*b)
            }
            fn take(&mut self, n: usize) -> Option<&[u8]> {
                if self.0.len() < n {
                    return None;
                }
                let (head, rest) = self.0.split_at(n);
                self.0 = rest;
                Some(head)
            }
            fn text(&mut self) -> Option<String> {
                let n = self.byte()? as usize;
                String::from_utf8(self.take(n)?.to_vec()).ok()
            }
        }
        let mut r = Reader(bytes);
        if r.byte()? != 1 {
            return None;
        }
        let crossing = r.text()?;
        let days = i32::from_be_bytes(r.take(4)?.try_into().ok()?);
        let crossed_on = NaiveDate::from_epoch_days(days)?;
        let destination = r.text()?;
        let mut members = Members::default();
        for i in 0..10 {
            let n = r.byte()? as u32;
            if i < 5 {
                members.males[i] = n;
            } else {
                members.females[i - 5] = n;
            }
        }
        let head_sex = match r.byte()? {
            0 => None,
            1 => Some(Sex::Male),
            2 => Some(Sex::Female),
            _ => return None,
        };
        let doc = match r.byte()? {
            0 => None,
            1 => Some(r.text()?),
            _ => return None,
        };
        let count = r.byte()? as usize;
        let name = (0..count).map(|_| r.text()).collect::<Option<Vec<_>>>()?;
        Some(Features {
            crossing,
            crossed_on,
            destination,
            members,
            head_sex,
            doc,
            name,
        })
    }
}

/// Which part of the comparison a reason is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    DocNumber,
    Name,
    Members,
    Destination,
    Date,
    HeadSex,
}

impl Part {
    pub fn as_str(self) -> &'static str {
        match self {
            Part::DocNumber => "doc_number",
            Part::Name => "name",
            Part::Members => "members",
            Part::Destination => "destination",
            Part::Date => "date",
            Part::HeadSex => "head_sex",
        }
    }
}

/// One part of a score: what was compared, what it found, what it added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub part: Part,
    /// Added to the score (negative when the part speaks against a match).
    pub points: f64,
    /// What was found, in words; never a name or a document number.
    pub detail: String,
}

/// A score and the parts it is made of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// The sum of the parts, clamped to 0..=1 and rounded to 3 decimals.
    pub score: f64,
    pub reasons: Vec<Reason>,
}

/// Two records that may be the same family. The shape of `GET
/// /v1/duplicates` and of `returnee duplicates --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The pair's id ([`pair_id`]): the same on every replica.
    pub id: String,
    /// The two records, lower id first.
    pub records: [RecordId; 2],
    pub score: f64,
    pub reasons: Vec<Reason>,
}

impl Candidate {
    /// The other record of the pair.
    pub fn other(&self, id: RecordId) -> RecordId {
        if self.records[0] == id {
            self.records[1]
        } else {
            self.records[0]
        }
    }
}

/// The id of the pair of `a` and `b`, in either order: the first 16 hex
/// digits of the SHA-256 of the two ids, lower first.
pub fn pair_id(a: RecordId, b: RecordId) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h = Sha256::new();
    h.update(lo.0.as_bytes());
    h.update(hi.0.as_bytes());
    hex::encode(&h.finalize()[..8])
}

/// The order in which candidates are listed: highest score first, then by id.
pub fn sort_candidates(list: &mut [Candidate]) {
    list.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
}

// ---------------------------------------------------------------------------
// Scoring

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// What one part of a comparison found (words are made only for candidates).
#[derive(Debug, Clone, Copy)]
enum Found {
    SameDoc,
    DocOneCharApart,
    OtherDoc,
    Name { sim: f64, one_word: bool },
    OtherName { sim: f64 },
    NamePartly { sim: f64 },
    SameHousehold,
    OneCountByOne,
    OneCount,
    TwoCounts,
    Counts(usize),
    SameDestination,
    OtherDestination,
    Days(i64),
    OtherSex,
}

impl Found {
    fn part(self) -> Part {
        match self {
            Found::SameDoc | Found::DocOneCharApart | Found::OtherDoc => Part::DocNumber,
            Found::Name { .. } | Found::OtherName { .. } | Found::NamePartly { .. } => Part::Name,
            Found::SameHousehold
            | Found::OneCountByOne
            | Found::OneCount
            | Found::TwoCounts
            | Found::Counts(_) => Part::Members,
            Found::SameDestination | Found::OtherDestination => Part::Destination,
            Found::Days(_) => Part::Date,
            Found::OtherSex => Part::HeadSex,
        }
    }

    fn detail(self) -> String {
        match self {
            Found::SameDoc => "same document number".into(),
            Found::DocOneCharApart => "document numbers differ in one character".into(),
            Found::OtherDoc => "different document numbers".into(),
            Found::Name { sim, one_word } => format!(
                "{} (similarity {sim:.2}{})",
                if sim >= 1.0 {
                    "same name once spellings are normalised"
                } else {
                    "similar names"
                },
                if one_word { ", one word" } else { "" }
            ),
            Found::OtherName { sim } => format!("different names (similarity {sim:.2})"),
            Found::NamePartly { sim } => format!("names partly alike (similarity {sim:.2})"),
            Found::SameHousehold => "same household composition".into(),
            Found::OneCountByOne => "household composition: one count differs by one".into(),
            Found::OneCount => "household composition: one count differs".into(),
            Found::TwoCounts => "household composition: two counts differ".into(),
            Found::Counts(n) => format!("household composition: {n} counts differ"),
            Found::SameDestination => "same destination".into(),
            Found::OtherDestination => "different destinations".into(),
            Found::Days(0) => "crossed the same day".into(),
            Found::Days(1) => "crossed one day apart".into(),
            Found::Days(n) => format!("crossed {n} days apart"),
            Found::OtherSex => "heads of household of different sex".into(),
        }
    }
}

/// The parts of a comparison and their points, in order.
fn parts(a: &Features, b: &Features, mut out: impl FnMut(Found, f64)) {
    if let (Some(x), Some(y)) = (&a.doc, &b.doc) {
        if x == y {
            out(Found::SameDoc, 0.50);
        } else if x.len() == y.len()
            && x.chars().zip(y.chars()).filter(|(p, q)| p != q).count() == 1
        {
            out(Found::DocOneCharApart, 0.0);
        } else {
            out(Found::OtherDoc, -0.45);
        }
    }
    if let Some(sim) = name_similarity(&a.name, &b.name) {
        let several = a.name.len() > 1 && b.name.len() > 1;
        let most = if several { 0.35 } else { 0.30 };
        if sim >= 0.80 {
            out(
                Found::Name {
                    sim,
                    one_word: !several,
                },
                most * ((sim - 0.80) / 0.15).min(1.0),
            );
        } else if sim < 0.72 {
            out(Found::OtherName { sim }, -0.30);
        } else {
            out(Found::NamePartly { sim }, 0.0);
        }
    }
    let counts = a
        .members
        .males
        .iter()
        .zip(&b.members.males)
        .chain(a.members.females.iter().zip(&b.members.females));
    let mut differing = 0;
    let mut by_one = true;
    for (x, y) in counts {
        if x != y {
            differing += 1;
            by_one &= x.abs_diff(*y) == 1;
        }
    }
    let n = a.members.individuals().min(b.members.individuals()).min(5) as f64;
    let same = 0.15 + 0.02 * n;
    match differing {
        0 => out(Found::SameHousehold, same),
        1 if by_one => out(Found::OneCountByOne, same - 0.07),
        1 => out(Found::OneCount, same - 0.15),
        2 => out(Found::TwoCounts, -0.10),
        n => out(Found::Counts(n), -0.30),
    }
    if a.destination == b.destination {
        out(Found::SameDestination, 0.10);
    } else if a.destination != UNDECIDED_DESTINATION && b.destination != UNDECIDED_DESTINATION {
        out(Found::OtherDestination, -0.10);
    }
    let days = (a.crossed_on - b.crossed_on).num_days().abs();
    out(
        Found::Days(days),
        match days {
            0 => 0.05,
            1 => 0.03,
            _ => -0.05,
        },
    );
    if let (Some(x), Some(y)) = (a.head_sex, b.head_sex)
        && x != y
    {
        out(Found::OtherSex, -0.30);
    }
}

/// Compares two families. Each part that both records have adds or takes
/// away points (*n* is the smaller household; a name "of several words" is
/// one with two tokens or more on both sides):
///
/// | part | found | points |
/// | --- | --- | --- |
/// | document number | the same (normalised) | +0.50 |
/// | | one character differs | 0 |
/// | | different | −0.45 |
/// | head's name | similarity *s* ≥ 0.80 | up to +0.35 (several words) or +0.30 (one word), in proportion to (*s* − 0.80) / 0.15 |
/// | | *s* < 0.72 | −0.30 |
/// | composition (10 counts) | the same | +0.15 + 0.02 × min(*n*, 5) (a bigger household is rarer) |
/// | | one count differs by one | that − 0.07 |
/// | | one count differs by more | that − 0.15 |
/// | | two differ | −0.10 |
/// | | more differ | −0.30 |
/// | destination | the same | +0.10 |
/// | | different (neither undecided) | −0.10 |
/// | crossing date | the same day / one day / two days apart | +0.05 / +0.03 / −0.05 |
/// | head's sex | different | −0.30 |
///
/// The score is the sum of the rounded parts, clamped to 0..=1.
pub fn score(a: &Features, b: &Features) -> Score {
    let mut reasons = Vec::new();
    parts(a, b, |found, points| {
        reasons.push(Reason {
            part: found.part(),
            points: round3(points),
            detail: found.detail(),
        })
    });
    let total: f64 = reasons.iter().map(|r| r.points).sum();
    Score {
        score: round3(total.clamp(0.0, 1.0)),
        reasons,
    }
}

/// The score alone, without the words (the same number as [`score`]).
fn score_only(a: &Features, b: &Features) -> f64 {
    let mut total = 0.0;
    parts(a, b, |_, points| total += round3(points));
    round3(total.clamp(0.0, 1.0))
}

/// The candidate for `a` and `b`, if they score at least [`THRESHOLD`] and
/// may be compared at all (same crossing, dates within the window).
pub fn compare(a: (RecordId, &Features), b: (RecordId, &Features)) -> Option<Candidate> {
    let ((ia, fa), (ib, fb)) = (a, b);
    if ia == ib
        || fa.crossing != fb.crossing
        || (fa.crossed_on - fb.crossed_on).num_days().unsigned_abs() > WINDOW_DAYS
        || score_only(fa, fb) < THRESHOLD
    {
        return None;
    }
    let s = score(fa, fb);
    Some(Candidate {
        id: pair_id(ia, ib),
        records: if ia < ib { [ia, ib] } else { [ib, ia] },
        score: s.score,
        reasons: s.reasons,
    })
}
