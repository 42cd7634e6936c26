//! `dupbench`: precision, recall and time of duplicate detection on a
//! synthetic set of families with planted duplicates.
//!
//! ```sh
//! cargo run --release -p returnee-tests --bin dupbench -- --families 100000
//! ```
//!
//! The set: `--families` records (default 100,000), of which
//! `--duplicates-percent` (default 5) are planted duplicates of others.
//! Originals: crossing (Torkham and Chaman most), a day in 90, a destination
//! (weighted, Nangarhar and Kabul most), a household of plausible
//! composition, a head of household named from common Afghan names
//! (given names drawn with a Zipf law, so a few are very common; most men
//! have a compound name such as Mohammad Nasir or Gul Ahmad, a fifth a
//! single given name, a third a family name too) written in one of their
//! usual Latin spellings, 60% with a PoR card number. Every family has a name (consent
//! given): a family recorded with neither name nor document can only be
//! matched on composition, destination and date, which the rules
//! deliberately score below the threshold.
//!
//! A duplicate copies an original and then: crosses one day apart (70%) or
//! the same day; has its name written again with independently chosen
//! spellings (Mohammad/Muhammad/Mohd, Gul/Gull, Abdul Rahman/Abdurrahman,
//! Rahmat Ullah/Rahmatullah, "Khan" dropped or added …), and 10% a typo
//! besides (a letter dropped, doubled or swapped); 30% one mistyped count;
//! when the original has a document, half keep its number (half of those
//! typed with dashes or spaces) and half were recorded without a document;
//! 5% have the destination "undecided".
//!
//! Detection runs the server's code ([`returnee_server::DuplicateIndex`])
//! on a real server store in a temporary folder: the families are pushed
//! in batches of 2,000 (as devices do; timed apart as `push_seconds`) and
//! each batch is checked as the server checks it after a push. `seconds` is
//! the detection time (every batch, then listing the candidates).
//!
//! Prints one JSON line.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use returnee_server::{DuplicateIndex, ServerStore};
use returnee_shared::merge::{Change, Op};
use returnee_shared::wire::Role;
use returnee_shared::{DocType, FamilyFields, Members, RecordId, ReturnType, Sex};
use returnee_store::server::Device;
use returnee_tests::Rng;

// As in the real binaries (server and client run in this process here).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Name elements and their usual Latin spellings (the first is the most
/// common). Elements that stand first in a compound name and are rarely a
/// name on their own (Mohammad Nasir, Gul Ahmad, Noor Rahman …).
const PREFIXES: &[&[&str]] = &[
    &[
        "Mohammad", "Muhammad", "Mohammed", "Mohamed", "Mohd", "Muhammed", "Mohamad",
    ],
    &["Gul", "Gull", "Gol"],
    &["Noor", "Nur", "Nour"],
    &["Ghulam", "Gholam", "Gulam"],
    &["Sayed", "Syed", "Sayyid"],
    &["Abdul", "Abdel", "Abd al"],
    &["Mir"],
    &["Shah"],
    &["Haji", "Hajji"],
    &["Faiz", "Faez"],
    &["Dost"],
    &["Taj"],
];

/// Given names that stand on their own, or after a prefix.
const MALE: &[&[&str]] = &[
    &["Ahmad", "Ahmed"],
    &["Rahman", "Rehman"],
    &["Karim", "Kareem"],
    &["Abdul Rahman", "Abdulrahman", "Abdur Rahman", "Abdurrahman"],
    &["Abdul Wali", "Abdulwali", "Abdul Walee"],
    &["Abdullah", "Abdulla", "Abdallah"],
    &["Rahmatullah", "Rahmat Ullah", "Rahmatulla", "Rahmatollah"],
    &["Hekmatullah", "Hikmatullah", "Hekmat Ullah"],
    &["Zahir", "Zaheer"],
    &["Shafiq", "Shafeeq", "Shafik"],
    &["Yousuf", "Yusuf", "Yousef"],
    &["Nasir", "Naseer"],
    &["Jamshid", "Jamshed"],
    &["Hamid", "Hamed"],
    &["Rashid", "Rasheed"],
    &["Wali", "Walee"],
    &["Khalil", "Khaleel"],
    &["Habibullah", "Habib Ullah", "Habibulla"],
    &["Sardar"],
    &["Agha", "Aga"],
    &["Jan"],
    &["Bashir", "Basheer"],
    &["Zabiullah", "Zabihullah", "Zabi Ullah"],
    &["Samiullah", "Sami Ullah"],
    &["Najibullah", "Najib Ullah"],
    &["Omar", "Umar"],
    &["Osman", "Usman"],
    &["Mahmood", "Mahmud"],
    &["Qasim", "Kasim", "Qaseem"],
    &["Baz"],
    &["Lal"],
    &["Nazar"],
    &["Amin", "Ameen"],
    &["Rahim", "Raheem"],
    &["Aziz", "Azeez"],
    &["Haroon", "Harun"],
    &["Idrees", "Idris"],
    &["Ismail", "Esmail"],
    &["Jalal"],
    &["Kamal"],
    &["Latif", "Lateef"],
    &["Majid", "Majeed"],
    &["Nabi"],
    &["Obaidullah", "Ubaidullah", "Obaid Ullah"],
    &["Qadir", "Qader"],
    &["Rafiq", "Rafeeq"],
    &["Saifullah", "Saif Ullah"],
    &["Tariq", "Tareq"],
    &["Wahid", "Waheed"],
    &["Yaqub", "Yaqoob", "Yakub"],
    &["Zia", "Ziya"],
    &["Fazal", "Fazl"],
    &["Hazrat"],
    &["Ikram"],
    &["Javed", "Javid"],
    &["Masood", "Masud"],
    &["Naqib", "Naqeeb"],
    &["Sharif", "Shareef"],
    &["Shams"],
    &["Zalmai"],
];

const FEMALE: &[&[&str]] = &[
    &["Fatima", "Fatema"],
    &["Zainab", "Zaynab"],
    &["Maryam", "Mariam"],
    &["Nasrin", "Nasreen"],
    &["Zarina", "Zareena"],
    &["Shakila", "Shakeela"],
    &["Nooria", "Nuria"],
    &["Parwana"],
    &["Malalai"],
    &["Sima", "Seema"],
    &["Farzana"],
    &["Halima", "Haleema"],
    &["Khadija", "Khadeeja"],
    &["Palwasha"],
    &["Roya"],
    &["Sabira", "Sabeera"],
    &["Tahira", "Tahera"],
    &["Wazhma"],
    &["Gulalai"],
    &["Shazia", "Shaziya"],
];

/// Written after a woman's name ("Halima Bibi").
const BIBI: &[&[&str]] = &[&["Bibi", "Bebe"]];

/// Family names (written the same way more often than given names).
const SURNAMES: &[&[&str]] = &[
    &["Karimi", "Karimy"],
    &["Ahmadzai", "Ahmadzay"],
    &["Shinwari", "Shinwary"],
    &["Mohmand"],
    &["Safi"],
    &["Wardak"],
    &["Popal"],
    &["Stanikzai", "Stanekzai"],
    &["Noorzai", "Nurzai"],
    &["Achakzai"],
    &["Afridi", "Afreedi"],
    &["Sultani"],
    &["Rahimi", "Raheemi"],
    &["Hashimi", "Hashemi"],
    &["Sadat"],
    &["Haidari", "Haideri"],
    &["Amiri"],
    &["Niazi"],
    &["Khogyani", "Khogiani"],
    &["Mangal"],
];

const CROSSINGS: &[(&str, u64)] = &[
    ("torkham", 55),
    ("chaman", 30),
    ("angoor-adda", 4),
    ("ghulam-khan", 4),
    ("kharlachi", 3),
    ("badini", 2),
    ("bahramcha", 2),
];

const DESTINATIONS: &[(&str, u64)] = &[
    ("AF-NAN", 25),
    ("AF-KAB", 20),
    ("AF-KNR", 7),
    ("AF-LAG", 6),
    ("AF-KAN", 10),
    ("AF-HEL", 5),
    ("AF-KDZ", 4),
    ("AF-BAL", 4),
    ("AF-PKA", 3),
    ("AF-KHO", 3),
    ("AF-LOG", 3),
    ("AF-GHA", 3),
    ("AF-ZAB", 2),
    ("AF-URU", 2),
    ("AF-HER", 3),
];

fn weighted<'a>(rng: &mut Rng, items: &'a [(&'a str, u64)]) -> &'a str {
    let total: u64 = items.iter().map(|(_, w)| w).sum();
    let mut r = rng.below(total);
    for (item, w) in items {
        if r < *w {
            return item;
        }
        r -= w;
    }
    items[0].0
}

/// An index into a list where earlier entries are more common (roughly Zipf).
fn zipf(rng: &mut Rng, n: usize) -> usize {
    // The harmonic weights 1/(i+1), drawn by inversion of a cached table.
    let total: f64 = (1..=n).map(|i| 1.0 / i as f64).sum();
    let mut r = (rng.next_u64() as f64 / u64::MAX as f64) * total;
    for i in 0..n {
        r -= 1.0 / (i + 1) as f64;
        if r <= 0.0 {
            return i;
        }
    }
    n - 1
}

/// A name as its elements (index of a list, index of the element); written
/// out with a chosen spelling of each.
#[derive(Debug, Clone)]
struct Name {
    parts: Vec<(&'static [&'static [&'static str]], usize)>,
    khan: bool,
}

impl Name {
    /// A head of household's name: a given name (on its own, after a
    /// prefix such as Mohammad or Gul, or followed by Jan or Gul), and for a
    /// third of families a family name; for women often "Bibi" after.
    fn random(rng: &mut Rng, sex: Sex) -> Name {
        let mut parts = Vec::new();
        if sex == Sex::Female {
            parts.push((FEMALE, zipf(rng, FEMALE.len())));
            if rng.chance(40) {
                parts.push((BIBI, 0));
            }
        } else {
            match rng.below(100) {
                0..=19 => parts.push((MALE, zipf(rng, MALE.len()))),
                20..=79 => {
                    parts.push((PREFIXES, zipf(rng, PREFIXES.len())));
                    parts.push((MALE, zipf(rng, MALE.len())));
                }
                _ => {
                    parts.push((MALE, zipf(rng, MALE.len())));
                    parts.push((PREFIXES, if rng.chance(50) { 1 } else { 0 }));
                }
            }
        }
        if rng.chance(33) {
            parts.push((SURNAMES, rng.below(SURNAMES.len() as u64) as usize));
        }
        Name {
            parts,
            khan: sex == Sex::Male && rng.chance(15),
        }
    }

    /// Written with the usual spelling (mostly) of each element.
    fn write(&self, rng: &mut Rng, respell: bool) -> String {
        let mut words: Vec<String> = self
            .parts
            .iter()
            .map(|(list, i)| {
                let spellings = list[*i];
                let j = if respell {
                    rng.below(spellings.len() as u64) as usize
                } else if rng.chance(70) {
                    0
                } else {
                    rng.below(spellings.len() as u64) as usize
                };
                spellings[j].to_string()
            })
            .collect();
        let khan = if respell {
            // "Khan" is often dropped or added.
            if rng.chance(25) {
                !self.khan
            } else {
                self.khan
            }
        } else {
            self.khan
        };
        if khan {
            words.push("Khan".into());
        }
        let mut name = words.join(" ");
        if respell && rng.chance(10) {
            name = name.to_uppercase();
        }
        name
    }
}

/// A typo no spelling rule knows: a letter dropped, doubled or two swapped.
fn typo(rng: &mut Rng, name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let letters: Vec<usize> = (1..chars.len().saturating_sub(1))
        .filter(|&i| chars[i].is_alphabetic() && chars[i + 1].is_alphabetic())
        .collect();
    if letters.is_empty() {
        return name.to_string();
    }
    let i = letters[rng.below(letters.len() as u64) as usize];
    let mut out = chars.clone();
    match rng.below(3) {
        0 => {
            out.remove(i);
        }
        1 => out.insert(i, chars[i]),
        _ => out.swap(i, i + 1),
    }
    out.into_iter().collect()
}

fn members(rng: &mut Rng) -> Members {
    let mut m = Members::default();
    m.males[3] = if rng.chance(90) { 1 } else { 2 };
    m.females[3] = match rng.below(100) {
        0..=9 => 0,
        10..=89 => 1,
        _ => 2,
    };
    if rng.chance(15) {
        m.males[4] = 1;
    }
    if rng.chance(15) {
        m.females[4] = 1;
    }
    let children = rng.below(4) + rng.below(4);
    for _ in 0..children {
        let band = rng.below(3) as usize;
        if rng.chance(50) {
            m.males[band] += 1;
        } else {
            m.females[band] += 1;
        }
    }
    m
}

struct Generated {
    fields: FamilyFields,
    /// The original's index for a planted duplicate; its own index otherwise.
    class: usize,
}

fn original(rng: &mut Rng, first_day: NaiveDate, doc_seq: &mut u64) -> (FamilyFields, Name) {
    let sex = if rng.chance(10) {
        Sex::Female
    } else {
        Sex::Male
    };
    let name = Name::random(rng, sex);
    let has_doc = rng.chance(60);
    let doc = has_doc.then(|| {
        *doc_seq += 1 + rng.below(50);
        format!("{:010}", 1_000_000_000 + *doc_seq * 7919 % 9_000_000_000)
    });
    let written = name.write(rng, false);
    let fields = FamilyFields {
        crossing: weighted(rng, CROSSINGS).to_string(),
        crossed_on: first_day + chrono::Days::new(rng.below(90)),
        return_type: *rng.pick(ReturnType::ALL),
        departure_province: "PK-KP".into(),
        destination_province: weighted(rng, DESTINATIONS).to_string(),
        members: members(rng),
        head_name: Some(written),
        head_sex: Some(sex),
        doc_type: if has_doc {
            DocType::PorCard
        } else {
            DocType::None
        },
        doc_number: doc,
        consent: true,
        vulnerabilities: Default::default(),
        documentation: Default::default(),
        protection_referral: None,
        notes: None,
        extra: Default::default(),
    };
    (fields, name)
}

fn duplicate(rng: &mut Rng, of: &FamilyFields, name: &Name, last_day: NaiveDate) -> FamilyFields {
    let mut f = of.clone();
    if rng.chance(70) {
        let later = rng.chance(50) && f.crossed_on < last_day;
        f.crossed_on = if later {
            f.crossed_on + chrono::Days::new(1)
        } else {
            f.crossed_on - chrono::Days::new(1)
        };
    }
    let mut written = name.write(rng, true);
    if rng.chance(10) {
        written = typo(rng, &written);
    }
    f.head_name = Some(written);
    if rng.chance(30) {
        let band = rng.below(10) as usize;
        let counts = if band < 5 {
            &mut f.members.males
        } else {
            &mut f.members.females
        };
        let c = &mut counts[band % 5];
        *c = if *c == 0 || rng.chance(50) {
            *c + 1
        } else {
            *c - 1
        };
        if f.members.individuals() == 0 {
            f.members.females[3] = 1;
        }
    }
    if let Some(doc) = &f.doc_number {
        if rng.chance(50) {
            if rng.chance(50) {
                let (a, b) = doc.split_at(4);
                f.doc_number = Some(if rng.chance(50) {
                    format!("{a}-{b}")
                } else {
                    format!("{a} {b}")
                });
            }
        } else {
            f.doc_number = None;
            f.doc_type = DocType::None;
        }
    }
    if rng.chance(5) {
        f.destination_province = "undecided".into();
    }
    f
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = arg(&args, "--families").map_or(Ok(100_000), |s| s.parse())?;
    let percent: usize = arg(&args, "--duplicates-percent").map_or(Ok(5), |s| s.parse())?;
    let seed: u64 = arg(&args, "--seed").map_or(Ok(2026), |s| s.parse())?;
    let planted = n * percent / 100;
    let originals = n - planted;

    // Generate.
    let mut rng = Rng::new(seed);
    let today = Utc::now().date_naive();
    let last_day = today - chrono::Days::new(10);
    let first_day = last_day - chrono::Days::new(89);
    let mut doc_seq = 0;
    let mut families: Vec<Generated> = Vec::with_capacity(n);
    let mut names: Vec<Name> = Vec::with_capacity(originals);
    for i in 0..originals {
        let (fields, name) = original(&mut rng, first_day, &mut doc_seq);
        families.push(Generated { fields, class: i });
        names.push(name);
    }
    for _ in 0..planted {
        let of = rng.below(originals as u64) as usize;
        let fields = duplicate(&mut rng, &families[of].fields, &names[of], last_day);
        families.push(Generated { fields, class: of });
    }
    // Shuffle, so duplicates arrive mixed with the rest (Fisher-Yates).
    for i in (1..families.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        families.swap(i, j);
    }

    // The server's store and index, in a temporary folder.
    let dir = tempfile::tempdir()?;
    let store = ServerStore::open(&dir.path().join("server"))?;
    let index = DuplicateIndex::open(&store)?;
    let device = Device {
        id: returnee_store::ids::new_device_id(),
        name: "dupbench".into(),
        role: Role::Admin,
        sites: Vec::new(),
        enrolled_at: Utc::now(),
        revoked_at: None,
        credential: Default::default(),
    };
    let ids: Vec<RecordId> = (0..families.len())
        .map(|_| returnee_store::ids::new_record_id())
        .collect();
    let class_of: HashMap<RecordId, usize> = ids
        .iter()
        .zip(&families)
        .map(|(id, g)| (*id, g.class))
        .collect();

    let mut push_seconds = 0.0;
    let mut seconds = 0.0;
    for (chunk_ids, chunk) in ids.chunks(2000).zip(families.chunks(2000)) {
        let ops: Vec<Op> = chunk_ids
            .iter()
            .zip(chunk)
            .map(|(id, g)| Op {
                id: returnee_store::ids::new_op_id(),
                record: *id,
                device: device.id,
                at: Utc::now(),
                base: Vec::new(),
                resolution: false,
                change: Change::Create {
                    fields: g.fields.clone(),
                    origin: None,
                },
            })
            .collect();
        let t = Instant::now();
        let ack = store.push(&device, ops, Utc::now())?;
        push_seconds += t.elapsed().as_secs_f64();
        anyhow::ensure!(
            ack.rejected.is_empty(),
            "the server refused a generated family: {:?}",
            ack.rejected[0]
        );
        let t = Instant::now();
        index.update(chunk_ids)?;
        seconds += t.elapsed().as_secs_f64();
    }
    let t = Instant::now();
    let found = index.candidates()?;
    seconds += t.elapsed().as_secs_f64();

    // Score against the planted truth.
    let mut class_size: HashMap<usize, u64> = HashMap::new();
    for g in &families {
        *class_size.entry(g.class).or_default() += 1;
    }
    let true_pairs: u64 = class_size.values().map(|k| k * (k - 1) / 2).sum();
    let reported: BTreeSet<(RecordId, RecordId)> =
        found.iter().map(|c| (c.records[0], c.records[1])).collect();
    let true_positives = reported
        .iter()
        .filter(|(a, b)| class_of[a] == class_of[b])
        .count() as u64;
    let pairs = reported.len() as u64;
    let precision = if pairs == 0 {
        1.0
    } else {
        true_positives as f64 / pairs as f64
    };
    let recall = if true_pairs == 0 {
        1.0
    } else {
        true_positives as f64 / true_pairs as f64
    };
    let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
    println!(
        "{}",
        serde_json::json!({
            "families": families.len(),
            "planted": planted,
            "true_pairs": true_pairs,
            "pairs": pairs,
            "true_positives": true_positives,
            "precision": round(precision),
            "recall": round(recall),
            "seconds": (seconds * 100.0).round() / 100.0,
            "push_seconds": (push_seconds * 100.0).round() / 100.0,
            "threshold": returnee_shared::duplicates::THRESHOLD,
            "seed": seed,
        })
    );
    Ok(())
}
