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
//!   to its square.
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
// Normalisation

/// A document number as compared: upper case, without spaces, dashes or
/// slashes. `None` when nothing is left.
pub fn normalize_doc(doc: &str) -> Option<String> {
    let n: String = doc
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '/' | '.' | '_'))
        .flat_map(char::to_uppercase)
        .collect();
    (!n.is_empty()).then_some(n)
}

/// Titles dropped from a name when something else is left.
const TITLES: &[&str] = &[
    "haji", "haj", "alhaj", "alhaji", "mulah", "mula", "mawlawi", "mawlwi", "maulawi", "mawlawy",
    "maulwi", "mr", "mrs", "dr", "ing", "eng",
];

/// Spellings of one name, after the letter rules, and their canonical form.
const CANONICAL: &[(&str, &str)] = &[
    // Mohammad / Muhammad / Mohammed / Mohamed / Mohd …
    ("muhamad", "muhamad"),
    ("muhamid", "muhamad"),
    ("muhamit", "muhamad"),
    ("muhd", "muhamad"),
    ("mhd", "muhamad"),
    ("md", "muhamad"),
    ("mahamad", "muhamad"),
    // Ahmad / Ahmed
    ("ahmid", "ahmad"),
    ("ahmit", "ahmad"),
    ("ihmad", "ahmad"),
    // Sayed / Syed / Sayyid
    ("syid", "sayid"),
    ("saiyid", "sayid"),
    ("siyid", "sayid"),
    ("sayd", "sayid"),
    // Ghulam / Gholam / Gulam
    ("gulam", "ghulam"),
];

/// Parts that belong to the name before them ("Rahmat Ullah" is "Rahmatullah").
const SUFFIXES: &[(&str, &str)] = &[
    ("ulah", "ulah"),
    ("ula", "ulah"),
    ("udin", "udin"),
    ("idin", "udin"),
    ("adin", "udin"),
    ("aldin", "udin"),
    ("uldin", "udin"),
];

fn fold_char(c: char) -> Option<char> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => 'a',
        'è' | 'é' | 'ê' | 'ë' | 'ē' => 'e',
        'ì' | 'í' | 'î' | 'ï' | 'ī' => 'i',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ō' => 'o',
        'ù' | 'ú' | 'û' | 'ü' | 'ū' => 'u',
        'ç' => 'c',
        'ñ' => 'n',
        'ý' | 'ÿ' => 'y',
        // Arabic-script letters written two ways, and marks that are often left out.
        'ي' | 'ى' => 'ی',
        'ك' => 'ک',
        'ة' => 'ه',
        'أ' | 'إ' | 'آ' => 'ا',
        '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{0640}' => return None,
        // Apostrophes inside a name (Sa'id) are dropped, not split on.
        '\'' | '`' | '’' | 'ʼ' | 'ʻ' => return None,
        c => c,
    })
}

fn collapse_doubles(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last = None;
    for c in s.chars() {
        if Some(c) != last {
            out.push(c);
        }
        last = Some(c);
    }
    out
}

/// `abd` + a vowel + (an article `l`, or the doubled first letter of the
/// name it was assimilated to) + the name: `abdul` + the name.
/// "abdurrahman", "abdulrahman", "abdur" "rahman", "abd al rahman" → "abdul" + "rahman".
fn split_abd(token: &str) -> Option<(String, String)> {
    let rest = token.strip_prefix("abd")?;
    let mut chars = rest.chars();
    let vowel = chars.next()?;
    if !matches!(vowel, 'a' | 'e' | 'i' | 'o' | 'u') {
        return None;
    }
    let after: String = chars.collect();
    let name = if let Some(n) = after.strip_prefix('l') {
        n.to_string()
    } else {
        let mut c = after.chars();
        match (c.next(), c.next()) {
            (Some(a), Some(b)) if a == b => after[a.len_utf8()..].to_string(),
            _ => after,
        }
    };
    Some(("abdul".to_string(), name))
}

/// The letter rules for one Latin token: consonant spellings, o/u and e/i,
/// a final y, doubled letters; then the canonical form of known names.
fn latin_rules(token: &str) -> String {
    let mut s = token
        .replace("ph", "f")
        .replace("ck", "k")
        .replace('q', "k")
        .replace('v', "w")
        .replace('o', "u")
        .replace('e', "i");
    if s.len() > 2 && s.ends_with('y') {
        s.pop();
        s.push('i');
    }
    let s = collapse_doubles(&s);
    CANONICAL
        .iter()
        .find(|(from, _)| *from == s)
        .map_or(s, |(_, to)| to.to_string())
}

/// The head's name as canonical tokens: lower case, accents and Arabic-script
/// letter variants folded, the spelling rules of Afghan names in Latin
/// letters applied (Mohammad/Muhammad/Mohd, Ahmad/Ahmed, ou/oo/u, ee/i,
/// doubled letters, Abdul Rahman/Abdulrahman/Abdur Rahman, "Rahmat Ullah"),
/// titles (Haji, Mawlawi …) and a final "Khan" left out.
pub fn name_tokens(name: &str) -> Vec<String> {
    let cleaned: String = name
        .chars()
        .flat_map(char::to_lowercase)
        .filter_map(fold_char)
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    let raw: Vec<&str> = cleaned.split_whitespace().collect();

    // "abd al rahman", "abdul rahman", "abdur rahman": one name.
    let mut joined: Vec<String> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let mut t = raw[i].to_string();
        if t == "abd" && i + 1 < raw.len() {
            t.push_str(raw[i + 1]);
            i += 1;
        }
        // The article on its own ("abdul", "abdur", "abdal"): the name follows.
        if let Some((_, name)) = split_abd(&t)
            && name.chars().count() <= 1
            && t.chars().count() <= 5
            && i + 1 < raw.len()
        {
            t.push_str(raw[i + 1]);
            i += 1;
        }
        joined.push(t);
        i += 1;
    }

    let mut tokens: Vec<String> = Vec::with_capacity(joined.len());
    for t in joined {
        let t = if t.is_ascii() {
            match split_abd(&t) {
                Some((abd, rest)) => format!("{abd}{}", latin_rules(&rest)),
                None => latin_rules(&t),
            }
        } else {
            t
        };
        // A suffix ("ullah", "uddin") belongs to the token before it.
        if let Some((_, canon)) = SUFFIXES.iter().find(|(from, _)| *from == t)
            && let Some(prev) = tokens.last_mut()
        {
            prev.push_str(canon);
            continue;
        }
        tokens.push(t);
    }
    for t in &mut tokens {
        if !t.is_ascii() {
            continue;
        }
        if t.starts_with("abdul") {
            // "Abdullah" and "Abdulla", with the article's l doubled or not.
            *t = collapse_doubles(t);
        }
        // "Rahmatulla", "Rahmatollah" → "rahmatulah"
        if t.len() > 4 && t.ends_with("ula") {
            t.push('h');
        }
    }
    if tokens.len() > 1 {
        let kept: Vec<String> = tokens
            .iter()
            .filter(|t| !TITLES.contains(&t.as_str()))
            .cloned()
            .collect();
        if !kept.is_empty() {
            tokens = kept;
        }
    }
    if tokens.len() > 1 && tokens.last().is_some_and(|t| t == "khan") {
        tokens.pop();
    }
    tokens
}

/// The consonant skeleton of a token: its first letter, then its
/// consonants, doubled letters once. Spellings that differ only in vowels
/// share it.
fn token_skeleton(token: &str) -> String {
    let mut chars = token.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut out = String::from(first);
    out.extend(chars.filter(|c| !matches!(c, 'a' | 'e' | 'i' | 'o' | 'u' | 'y')));
    collapse_doubles(&out)
}

/// The skeleton of a name: its tokens' skeletons, in order, as one word.
fn skeleton(tokens: &[String]) -> String {
    tokens.iter().map(|t| token_skeleton(t)).collect()
}

/// The name's block key: its skeleton ([`name_similarity`] counts names
/// with the same skeleton as alike).
pub fn name_key(tokens: &[String]) -> Option<String> {
    (!tokens.is_empty()).then(|| skeleton(tokens))
}

/// How alike two names are, from 0 to 1, given as canonical tokens; `None`
/// when either is missing.
///
/// The same letters once spaces are removed: 1. Otherwise tokens are
/// compared with Jaro-Winkler and the *weakest* match counts, so one shared
/// common token ("Mohammad Gul" / "Mohammad Ali") is not enough: token by
/// token in order, or each with its most similar token of the other name
/// (the same words in another order count 0.9 of that). A token more on
/// one side costs a little; vowel-only differences count 0.96 at least.
pub fn name_similarity(a: &[String], b: &[String]) -> Option<f64> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    if a.concat() == b.concat() {
        return Some(1.0);
    }
    let weakest = |xs: &[String], ys: &[String]| {
        xs.iter()
            .map(|x| {
                ys.iter()
                    .map(|y| token_similarity(x, y))
                    .fold(0.0, f64::max)
            })
            .fold(1.0, f64::min)
    };
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut sim = if short.len() == long.len() {
        let in_order = a
            .iter()
            .zip(b)
            .map(|(x, y)| token_similarity(x, y))
            .fold(1.0, f64::min);
        in_order.max(weakest(a, b).min(weakest(b, a)) * 0.9)
    } else {
        let factor = if short.len() == 1 { 0.8 } else { 0.92 };
        weakest(short, long) * factor
    };
    if skeleton(a) == skeleton(b) {
        sim = sim.max(0.96);
    }
    Some(sim)
}

/// Jaro-Winkler of two tokens; "Abdul …" names are compared without their
/// shared article (Abdul Karim and Abdul Rahman are different names).
fn token_similarity(x: &str, y: &str) -> f64 {
    match (x.strip_prefix("abdul"), y.strip_prefix("abdul")) {
        (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => strsim::jaro_winkler(a, b),
        _ => strsim::jaro_winkler(x, y),
    }
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

// ---------------------------------------------------------------------------
// The blocking index

/// How a block (a crossing and a block key) becomes the bytes of an index
/// key, so that no name or document number appears in a key. The server
/// uses [`Unkeyed`]; the laptop a keyed hash under a key of its own, so
/// that its keys cannot be matched against a dictionary of hashed names.
pub trait BlockHasher {
    /// Appends the block's hash to `key`.
    fn append_block_hash(&self, key: &mut Vec<u8>, crossing: &str, block: &str);
}

/// 8 bytes of the SHA-256 of the crossing and the block key.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unkeyed;

impl BlockHasher for Unkeyed {
    fn append_block_hash(&self, key: &mut Vec<u8>, crossing: &str, block: &str) {
        let mut h = Sha256::new();
        h.update(crossing.as_bytes());
        h.update([0]);
        h.update(block.as_bytes());
        key.extend_from_slice(&h.finalize()[..8]);
    }
}

/// An ordered key-value index of records by block key, as both stores keep
/// one: `prefix`, the block's hash ([`BlockHasher`]), the crossing date (4
/// bytes, days, ordered), the record id (16 bytes).
fn block_prefix(h: &impl BlockHasher, prefix: &[u8], crossing: &str, block: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + 32 + 4 + 16);
    k.extend_from_slice(prefix);
    h.append_block_hash(&mut k, crossing, block);
    k
}

/// A date as 4 bytes that sort like the dates.
fn date_bytes(d: NaiveDate) -> [u8; 4] {
    ((d.to_epoch_days() as i64 + (1 << 31)) as u32).to_be_bytes()
}

/// The index keys of a record (one per block key), block keys hashed with [`Unkeyed`].
pub fn index_keys(prefix: &[u8], id: RecordId, f: &Features) -> Vec<Vec<u8>> {
    index_keys_with(&Unkeyed, prefix, id, f)
}

/// The index keys of a record (one per block key), block keys hashed with `h`.
pub fn index_keys_with(
    h: &impl BlockHasher,
    prefix: &[u8],
    id: RecordId,
    f: &Features,
) -> Vec<Vec<u8>> {
    f.block_keys()
        .iter()
        .map(|b| {
            let mut k = block_prefix(h, prefix, &f.crossing, b);
            k.extend_from_slice(&date_bytes(f.crossed_on));
            k.extend_from_slice(id.0.as_bytes());
            k
        })
        .collect()
}

/// The key ranges `[from, to)` that hold the records a record is compared with.
pub fn index_ranges(prefix: &[u8], f: &Features) -> Vec<(Vec<u8>, Vec<u8>)> {
    index_ranges_with(&Unkeyed, prefix, f)
}

/// [`index_ranges`] of an index whose block keys are hashed with `h`.
pub fn index_ranges_with(
    h: &impl BlockHasher,
    prefix: &[u8],
    f: &Features,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let first = f
        .crossed_on
        .checked_sub_days(Days::new(WINDOW_DAYS))
        .unwrap_or(NaiveDate::MIN);
    let after = f
        .crossed_on
        .checked_add_days(Days::new(WINDOW_DAYS + 1))
        .unwrap_or(NaiveDate::MAX);
    f.block_keys()
        .iter()
        .map(|b| {
            let p = block_prefix(h, prefix, &f.crossing, b);
            let mut from = p.clone();
            from.extend_from_slice(&date_bytes(first));
            let mut to = p;
            to.extend_from_slice(&date_bytes(after));
            (from, to)
        })
        .collect()
}

/// The record an index key belongs to.
pub fn record_of_key(key: &[u8]) -> Option<RecordId> {
    let tail = key.len().checked_sub(16).map(|at| &key[at..])?;
    uuid::Uuid::from_slice(tail).ok().map(RecordId)
}

/// An ordered index of records under [`index_keys`].
pub trait BlockIndex {
    type Error;
    /// What an entry holds (features, encoded or not).
    type Entry;
    /// Every record with an entry in `[from, to)`, with the entry.
    fn range(&self, from: &[u8], to: &[u8]) -> Result<Vec<(RecordId, Self::Entry)>, Self::Error>;
    /// The features an entry holds (called once per record compared).
    fn features(&self, entry: Self::Entry) -> Result<Features, Self::Error>;
}

/// The candidates of record `id` (with features `f`) among the records in
/// `index`, leaving out pairs `dismissed` says were decided not to be the
/// same family. Reads only `f`'s block ranges.
pub fn find_candidates<I: BlockIndex>(
    index: &I,
    prefix: &[u8],
    id: RecordId,
    f: &Features,
    dismissed: impl Fn(RecordId, RecordId) -> Result<bool, I::Error>,
) -> Result<Vec<Candidate>, I::Error> {
    find_candidates_with(&Unkeyed, index, prefix, id, f, dismissed)
}

/// [`find_candidates`] in an index whose block keys are hashed with `h`.
pub fn find_candidates_with<I: BlockIndex>(
    h: &impl BlockHasher,
    index: &I,
    prefix: &[u8],
    id: RecordId,
    f: &Features,
    dismissed: impl Fn(RecordId, RecordId) -> Result<bool, I::Error>,
) -> Result<Vec<Candidate>, I::Error> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (from, to) in index_ranges_with(h, prefix, f) {
        for (other, entry) in index.range(&from, &to)? {
            if other == id || !seen.insert(other) {
                continue;
            }
            let g = index.features(entry)?;
            if let Some(c) = compare((id, f), (other, &g))
                && !dismissed(c.records[0], c.records[1])?
            {
                out.push(c);
            }
        }
    }
    sort_candidates(&mut out);
    Ok(out)
}

/// A [`BlockIndex`] in memory, for tests and tools: the same keys and
/// ranges as the stores' indexes.
#[derive(Debug, Clone, Default)]
pub struct MemoryIndex {
    entries: BTreeMap<Vec<u8>, (RecordId, Features)>,
}

/// The prefix [`MemoryIndex`] uses.
pub const MEMORY_PREFIX: &[u8] = b"b/";

impl MemoryIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a record (a record is added once; re-adding after a change
    /// needs [`MemoryIndex::remove`] with its old features first).
    pub fn insert(&mut self, id: RecordId, f: &Features) {
        for k in index_keys(MEMORY_PREFIX, id, f) {
            self.entries.insert(k, (id, f.clone()));
        }
    }

    pub fn remove(&mut self, id: RecordId, f: &Features) {
        for k in index_keys(MEMORY_PREFIX, id, f) {
            self.entries.remove(&k);
        }
    }

    /// The candidates of one record already in the index.
    pub fn candidates_of(&self, id: RecordId, f: &Features) -> Vec<Candidate> {
        match find_candidates(self, MEMORY_PREFIX, id, f, |_, _| Ok(false)) {
            Ok(c) => c,
            Err(never) => match never {},
        }
    }

    /// Every candidate pair among the records in the index, once each.
    pub fn all_candidates(&self, records: &[(RecordId, Features)]) -> Vec<Candidate> {
        let mut by_id: BTreeMap<String, Candidate> = BTreeMap::new();
        for (id, f) in records {
            for c in self.candidates_of(*id, f) {
                by_id.entry(c.id.clone()).or_insert(c);
            }
        }
        let mut out: Vec<Candidate> = by_id.into_values().collect();
        sort_candidates(&mut out);
        out
    }
}

impl BlockIndex for MemoryIndex {
    type Error = std::convert::Infallible;
    type Entry = Features;
    fn range(&self, from: &[u8], to: &[u8]) -> Result<Vec<(RecordId, Features)>, Self::Error> {
        Ok(self
            .entries
            .range(from.to_vec()..to.to_vec())
            .map(|(_, v)| v.clone())
            .collect())
    }
    fn features(&self, entry: Features) -> Result<Features, Self::Error> {
        Ok(entry)
    }
}
