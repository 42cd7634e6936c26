//! The benchmark of the real binaries, as users run them: `returnee` and
//! `returnee-server` are child processes (their start, argument parsing and
//! store opening included), started from `--bin-dir`, so that one benchmark
//! binary can measure two builds side by side. `bench.rs` is the in-process
//! view of the same work.
//!
//! ```sh
//! cargo build --release -p returnee-tests --bin benchreal -p returnee-cli -p returnee-server
//! ./target/release/benchreal --families 100000 --runs 3
//! ./target/release/benchreal --bin-dir /elsewhere/target/release --label other --families 2000
//! ```
//!
//! Each run, on a fresh server and fresh laptops in a temporary folder:
//!
//! - `import`: `returnee import FILE.csv` of the generated families into a new
//!   laptop store (laptop A, enrolled with the server's first admin code);
//! - `push`: `returnee sync` of laptop A;
//! - `pull`: `returnee sync` of laptop B, a new laptop enrolled with a
//!   supervisor code for every site (`returnee admin code` through A); its
//!   `returnee report --json` totals must then equal A's, or the benchmark
//!   stops with an error (exit 1);
//! - `duplicates`: `returnee duplicates --json` on B, right after the pull
//!   (it indexes the pulled families first);
//! - `report`: `returnee report --json` on B;
//! - `incremental`: 1,000 families of A are edited by one `returnee import`
//!   of a CSV of their exported rows (ids kept, one more child aged 0–4 and a
//!   new note: import upserts by id), `incremental-import`; then
//!   `returnee sync` on A (`incremental-push`) and on B (`incremental-pull`),
//!   after which the report totals must match again;
//! - `many-devices` (only if named in `--phases`: its laptops take a while
//!   whatever `--families` says): on a fresh server, `--devices` laptops
//!   (field codes, one crossing each, spread over the seven) each import
//!   `--per-device` families of their crossing (not timed), then all run
//!   `returnee sync` at once; the line gives the wall time of the whole and
//!   the p50/p99 of each laptop's sync (which pushes its own families and
//!   pulls those of its crossing that landed before).
//!
//! One JSON line per phase and run on stdout, then one per phase with the
//! medians over the runs. `seconds` is the wall time of the process(es);
//! `bytes_up`/`bytes_down` are counted on the socket (HTTP headers included)
//! by a TCP proxy between the laptops and the server; `peak_rss_mb_client` is
//! the laptop process's `VmHWM`, sampled every few milliseconds until it
//! exits; `peak_rss_mb_server` is the server's `VmHWM` over the phase (reset
//! through `/proc/PID/clear_refs` as each phase starts). Linux only.
//!
//! ## The generated families
//!
//! Deterministic from `--seed` (each run adds its number): the same seed gives
//! the same file on every machine.
//!
//! - Crossing: torkham 62 %, chaman 28 %, the five others 2 % each.
//! - Crossing date: uniform over the 60 days from 2026-09-01, each row drawn
//!   on its own, so the file is not in date order (real files are not).
//! - Return type: deported 55 %, spontaneous 40 %, assisted 5 %.
//! - Departure: the crossing's Pakistani province 55 %, Punjab 15 %, Sindh
//!   15 %, Islamabad 7 %, unknown 8 %. Destination: the crossing's Afghan
//!   province 35 %, Kabul 15 %, any of the 34 provinces 45 %, undecided 5 %.
//! - Consent 92 %. With consent, a two-word head-of-household name: a given
//!   name (60 male names, 20 female) and a family name (60), from the lists
//!   below; and in 85 % of them a document: PoR card 55 % (`AB1234567`:
//!   two letters, seven digits), Tazkira 30 % (`1401-0203-45678`), ACC 10 %
//!   (`ACC-12345678`), passport 5 % (`P1234567`). Without consent, no name and
//!   no number.
//! - Head: male 85 %, female 15 %; a female head is `female-headed` (70 %)
//!   and/or `widow` (30 %).
//! - Household: 1–12 people, weighted towards 5–8 (about 6.8 on average).
//!   The head is 18–59 (95 %) or 60+; a male head's wife (85 % of households
//!   of two or more) is 18–59; the others fall in the bands 0–4 24 %, 5–11
//!   30 %, 12–17 20 %, 18–59 19 %, 60+ 7 %, either sex.
//! - Documentation held: that of the document type (PoR card holders 20 %
//!   also a Tazkira); without a document, `undocumented` 50 %, `por-card`
//!   30 %, nothing 20 %. Other vulnerabilities: disability 8 %,
//!   serious-medical 5 %, chronic-illness 5 %. Protection referral 3 %.
//! - A note of 40–120 characters (field workers' phrases) in a third.
//! - Near-duplicates: 3 % of the rows repeat an earlier family that has a
//!   name and a document number: same number, the name with one spelling
//!   variant (Mohammad → Muhammad, Shinwari → Shenwari, Karimi → Kareemi …),
//!   the date up to two days later, so duplicate detection has work.
//!
//! About 410 bytes per family as the record's JSON, 145 as a CSV row
//! (printed on stderr as the file is written). Import derives each row's id
//! from its crossing date and content, so rows in random date order land at
//! random places in the stores' trees; `--sorted-dates` writes the same rows
//! in date order, to see what that costs.
//!
//! Flags: `--bin-dir DIR` (default: this executable's folder), `--label
//! NAME` (default: the folder), `--families N` (100000), `--runs R` (1),
//! `--phases LIST` (import,push,pull,duplicates,report,incremental; also
//! many-devices; `push` also prints `duplicate-check`, the server's
//! background check of what arrived, timed until its CPU goes idle),
//! `--keep DIR` (keep the stores in DIR/run-R), `--seed S` (1), `--edits N`
//! (1000), `--devices N` (50), `--per-device N` (2000), `--sorted-dates`.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use chrono::NaiveDate;
use returnee_cli::csv_format::{CSV_COLUMNS, CsvRow};
use returnee_shared::reference;
use returnee_tests::Rng;
use returnee_tests::cluster::FaultProxy;
use serde_json::{Value, json};

const ALL_PHASES: [&str; 7] = [
    "import",
    "push",
    "pull",
    "duplicates",
    "report",
    "incremental",
    "many-devices",
];

struct Args {
    bin_dir: PathBuf,
    label: String,
    families: usize,
    runs: usize,
    phases: Vec<String>,
    keep: Option<PathBuf>,
    seed: u64,
    edits: usize,
    devices: usize,
    per_device: usize,
    /// Rows in date order, to see what the random order costs.
    sorted: bool,
}

const USAGE: &str = "benchreal [--bin-dir DIR] [--label NAME] [--families N] [--runs R] \
[--phases import,push,pull,duplicates,report,incremental,many-devices] [--keep DIR] [--seed S] \
[--edits N] [--devices N] [--per-device N] [--sorted-dates]";

fn args() -> anyhow::Result<Args> {
    let exe = std::env::current_exe().context("the benchmark's own path")?;
    let mut a = Args {
        bin_dir: exe
            .parent()
            .context("the benchmark's folder")?
            .to_path_buf(),
        label: String::new(),
        families: 100_000,
        runs: 1,
        // many-devices only when asked for: its 50 laptops take a while
        // whatever --families says.
        phases: ALL_PHASES[..6].iter().map(|p| p.to_string()).collect(),
        keep: None,
        seed: 1,
        edits: 1000,
        devices: 50,
        per_device: 2000,
        sorted: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| anyhow!("{flag} needs a value; {USAGE}"))
        };
        let number = |v: String| -> anyhow::Result<usize> {
            v.parse().map_err(|_| anyhow!("'{v}' is not a number"))
        };
        match flag.as_str() {
            "--bin-dir" => a.bin_dir = PathBuf::from(value()?),
            "--label" => a.label = value()?,
            "--families" => a.families = number(value()?)?,
            "--runs" => a.runs = number(value()?)?.max(1),
            "--phases" => a.phases = value()?.split(',').map(String::from).collect(),
            "--keep" => a.keep = Some(PathBuf::from(value()?)),
            "--seed" => a.seed = number(value()?)? as u64,
            "--edits" => a.edits = number(value()?)?,
            "--devices" => a.devices = number(value()?)?,
            "--per-device" => a.per_device = number(value()?)?,
            "--sorted-dates" => a.sorted = true,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown flag {other}; {USAGE}"),
        }
    }
    for p in &a.phases {
        ensure!(
            ALL_PHASES.contains(&p.as_str()),
            "unknown phase {p}; the phases are {}",
            ALL_PHASES.join(",")
        );
    }
    ensure!(a.families > 0, "--families must be at least 1");
    if a.label.is_empty() {
        a.label = a.bin_dir.display().to_string();
    }
    Ok(a)
}

// ---------------------------------------------------------------------------
// The generated families.

const MALE_GIVEN: [&str; 60] = [
    "Mohammad",
    "Ahmad",
    "Abdul",
    "Gul",
    "Noor",
    "Rahim",
    "Karim",
    "Hamid",
    "Wali",
    "Zahir",
    "Jawad",
    "Farid",
    "Rashid",
    "Nasir",
    "Bashir",
    "Habib",
    "Sayed",
    "Aziz",
    "Hakim",
    "Qadir",
    "Samiullah",
    "Rahmatullah",
    "Hayatullah",
    "Zabihullah",
    "Asadullah",
    "Naqibullah",
    "Ezatullah",
    "Ihsanullah",
    "Najibullah",
    "Hidayatullah",
    "Khalid",
    "Tariq",
    "Shafiq",
    "Rafiq",
    "Jamil",
    "Wahid",
    "Majid",
    "Sharif",
    "Latif",
    "Amin",
    "Daud",
    "Yousuf",
    "Ismail",
    "Ibrahim",
    "Ishaq",
    "Sher",
    "Mir",
    "Dost",
    "Jan",
    "Lal",
    "Faiz",
    "Zalmai",
    "Mirwais",
    "Ajmal",
    "Bilal",
    "Hamza",
    "Idrees",
    "Qasim",
    "Saifullah",
    "Obaidullah",
];

const FEMALE_GIVEN: [&str; 20] = [
    "Fatima", "Zainab", "Maryam", "Khadija", "Gulalai", "Malalai", "Nazia", "Shabana", "Bibigul",
    "Zarghona", "Palwasha", "Nasrin", "Parwana", "Shukria", "Freshta", "Mahbooba", "Rahima",
    "Sima", "Hasina", "Lailuma",
];

const FAMILY_NAMES: [&str; 60] = [
    "Shinwari",
    "Mohmand",
    "Afridi",
    "Wardak",
    "Popalzai",
    "Barakzai",
    "Alokozai",
    "Achakzai",
    "Noorzai",
    "Ishaqzai",
    "Kakar",
    "Mangal",
    "Zadran",
    "Jaji",
    "Khogiani",
    "Safi",
    "Orakzai",
    "Yousafzai",
    "Durrani",
    "Ghilzai",
    "Hotak",
    "Tokhi",
    "Niazi",
    "Lodin",
    "Sherzad",
    "Stanikzai",
    "Ahmadzai",
    "Sahak",
    "Kharoti",
    "Tarakai",
    "Andar",
    "Taraki",
    "Samadi",
    "Rahimi",
    "Karimi",
    "Hashimi",
    "Sadat",
    "Hussaini",
    "Qaderi",
    "Naseri",
    "Habibi",
    "Azizi",
    "Amiri",
    "Haqqani",
    "Shirzai",
    "Mujaddidi",
    "Jalali",
    "Rasuli",
    "Nazari",
    "Faizi",
    "Mohammadi",
    "Sultani",
    "Hakimi",
    "Momand",
    "Saberi",
    "Wahidi",
    "Rahmani",
    "Zazai",
    "Muslimyar",
    "Baheer",
];

/// Spellings of the same name that registration staff write interchangeably.
const VARIANTS: [(&str, &str); 20] = [
    ("Mohammad", "Muhammad"),
    ("Ahmad", "Ahmed"),
    ("Noor", "Nur"),
    ("Zahir", "Zaheer"),
    ("Yousuf", "Yusuf"),
    ("Daud", "Dawood"),
    ("Idrees", "Idris"),
    ("Sayed", "Syed"),
    ("Qadir", "Kadir"),
    ("Fatima", "Fatema"),
    ("Zainab", "Zaynab"),
    ("Khadija", "Khadeeja"),
    ("Shinwari", "Shenwari"),
    ("Mohmand", "Mohmend"),
    ("Afridi", "Apridi"),
    ("Yousafzai", "Yusufzai"),
    ("Lodin", "Ludin"),
    ("Hussaini", "Husaini"),
    ("Qaderi", "Qadiri"),
    ("Hotak", "Hotaki"),
];

const NOTE_PHRASES: [&str; 16] = [
    "family arrived by truck from Peshawar",
    "deported after PoR card expired",
    "needs winter clothing and blankets",
    "two children without tazkira",
    "referred to the UNHCR desk for cash assistance",
    "elderly mother needs medical follow-up",
    "lost belongings at the border, no documents",
    "intends to rent a room in Jalalabad",
    "no shelter at destination",
    "head of household unemployed",
    "arrived on foot with livestock",
    "child with disability, wheelchair requested",
    "waiting for relatives at zero point",
    "received a hot meal and a hygiene kit",
    "asked about school enrolment for the children",
    "lived thirty years in Karachi",
];

/// A weighted choice: `items` are (value, weight).
fn weighted<'a, T>(rng: &mut Rng, items: &'a [(T, u64)]) -> &'a T {
    let total: u64 = items.iter().map(|(_, w)| w).sum();
    let mut r = rng.below(total);
    for (v, w) in items {
        if r < *w {
            return v;
        }
        r -= w;
    }
    &items[items.len() - 1].0
}

fn digits(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.below(10) as u8))
        .collect()
}

fn letter(rng: &mut Rng) -> char {
    char::from(b'A' + rng.below(26) as u8)
}

/// The same name, spelled a little differently.
fn spelling_variant(name: &str, rng: &mut Rng) -> String {
    let words: Vec<&str> = name.split(' ').collect();
    // A known variant of either word, if there is one.
    for (i, w) in words.iter().enumerate() {
        if let Some(v) = VARIANTS
            .iter()
            .find_map(|(a, b)| (a == w).then_some(*b).or((b == w).then_some(*a)))
        {
            let mut out = words.clone();
            out[i] = v;
            return out.join(" ");
        }
    }
    // Otherwise a vowel written differently in one of the words.
    let i = rng.below(words.len() as u64) as usize;
    let w = words[i];
    let changed = if let Some(p) = w[1..].find('i') {
        format!("{}ee{}", &w[..p + 1], &w[p + 2..])
    } else if let Some(p) = w[1..].find('a') {
        format!("{}e{}", &w[..p + 1], &w[p + 2..])
    } else {
        format!("{w}h")
    };
    let mut out = words.clone();
    out[i] = &changed;
    out.join(" ")
}

fn note(rng: &mut Rng) -> String {
    let target = 40 + rng.below(81) as usize;
    let mut s = String::new();
    while s.len() < target {
        if !s.is_empty() {
            s.push_str("; ");
        }
        let phrase: &str = NOTE_PHRASES[rng.below(NOTE_PHRASES.len() as u64) as usize];
        s.push_str(phrase);
    }
    s.truncate(target);
    s.trim_end_matches([' ', ';', ',']).to_string()
}

fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 9, 1).expect("a date")
}

/// One generated family as a CSV row (no id: import derives it).
fn family_row(rng: &mut Rng, crossing: Option<&str>) -> CsvRow {
    let crossings = reference::crossings();
    let crossing = match crossing {
        Some(c) => reference::crossing(c).expect("a known crossing"),
        None => {
            let code = *weighted(
                rng,
                &[
                    ("torkham", 62),
                    ("chaman", 28),
                    ("angoor-adda", 2),
                    ("ghulam-khan", 2),
                    ("kharlachi", 2),
                    ("badini", 2),
                    ("bahramcha", 2),
                ],
            );
            crossings
                .iter()
                .find(|c| c.entry.code == code)
                .expect("a known crossing")
        }
    };
    let date = first_day() + chrono::Days::new(rng.below(60));
    let return_type = *weighted(
        rng,
        &[("deported", 55), ("spontaneous", 40), ("assisted", 5)],
    );
    let departure = match rng.below(100) {
        0..55 => crossing.pk_province.clone(),
        55..70 => "PK-PB".to_string(),
        70..85 => "PK-SD".to_string(),
        85..92 => "PK-IS".to_string(),
        _ => reference::UNKNOWN_DEPARTURE.to_string(),
    };
    let destination = match rng.below(100) {
        0..35 => crossing.af_province.clone(),
        35..50 => "AF-KAB".to_string(),
        50..95 => rng.pick(reference::af_provinces()).code.clone(),
        _ => reference::UNDECIDED_DESTINATION.to_string(),
    };
    let female_head = rng.chance(15);
    let consent = rng.chance(92);
    // Household: the head, maybe a spouse, the others over the age bands.
    let size = *weighted(
        rng,
        &[
            (1u32, 3),
            (2, 5),
            (3, 7),
            (4, 9),
            (5, 11),
            (6, 12),
            (7, 12),
            (8, 11),
            (9, 9),
            (10, 8),
            (11, 7),
            (12, 6),
        ],
    );
    let mut males = [0u32; 5];
    let mut females = [0u32; 5];
    let head_band = if rng.chance(95) { 3 } else { 4 };
    if female_head {
        females[head_band] += 1;
    } else {
        males[head_band] += 1;
    }
    let mut left = size - 1;
    if left > 0 && !female_head && rng.chance(85) {
        females[3] += 1;
        left -= 1;
    }
    for _ in 0..left {
        let band = *weighted(rng, &[(0usize, 24), (1, 30), (2, 20), (3, 19), (4, 7)]);
        if rng.chance(50) {
            males[band] += 1;
        } else {
            females[band] += 1;
        }
    }
    let head_name = consent.then(|| {
        let given = if female_head {
            rng.pick(&FEMALE_GIVEN)
        } else {
            rng.pick(&MALE_GIVEN)
        };
        format!("{given} {}", rng.pick(&FAMILY_NAMES))
    });
    let (doc_type, doc_number) = if consent && rng.chance(85) {
        match rng.below(100) {
            0..55 => (
                "por-card",
                format!("{}{}{}", letter(rng), letter(rng), digits(rng, 7)),
            ),
            55..85 => (
                "tazkira",
                format!(
                    "{}-{}-{}",
                    1395 + rng.below(10),
                    digits(rng, 4),
                    digits(rng, 5)
                ),
            ),
            85..95 => ("acc", format!("ACC-{}", digits(rng, 8))),
            _ => ("passport", format!("P{}", digits(rng, 7))),
        }
    } else {
        ("none", String::new())
    };
    let documentation = match doc_type {
        "por-card" if rng.chance(20) => "por-card;tazkira",
        "por-card" => "por-card",
        "tazkira" => "tazkira",
        "acc" => "acc",
        "passport" => "passport-visa",
        _ => match rng.below(100) {
            0..50 => "undocumented",
            50..80 => "por-card",
            _ => "",
        },
    };
    let mut vulnerabilities = Vec::new();
    if female_head {
        if rng.chance(70) {
            vulnerabilities.push("female-headed");
        }
        if rng.chance(30) {
            vulnerabilities.push("widow");
        }
    }
    for (v, p) in [
        ("disability", 8),
        ("serious-medical", 5),
        ("chronic-illness", 5),
    ] {
        if rng.chance(p) {
            vulnerabilities.push(v);
        }
    }
    let referral = rng.chance(3).then(|| {
        rng.pick(&[
            "medical",
            "child-protection",
            "gbv",
            "other",
            "resettlement-case-pending",
        ])
        .to_string()
    });
    let notes = (rng.below(3) == 0).then(|| note(rng));
    let n = |v: u32| Some(v.to_string());
    CsvRow {
        id: None,
        crossing: Some(crossing.entry.code.clone()),
        crossed_on: Some(date.to_string()),
        return_type: Some(return_type.to_string()),
        departure_province: Some(departure),
        destination_province: Some(destination),
        head_name,
        head_sex: Some(if female_head { "f" } else { "m" }.to_string()),
        doc_type: Some(doc_type.to_string()),
        doc_number: (!doc_number.is_empty()).then_some(doc_number),
        consent: Some(if consent { "yes" } else { "no" }.to_string()),
        m_0_4: n(males[0]),
        m_5_11: n(males[1]),
        m_12_17: n(males[2]),
        m_18_59: n(males[3]),
        m_60_plus: n(males[4]),
        f_0_4: n(females[0]),
        f_5_11: n(females[1]),
        f_12_17: n(females[2]),
        f_18_59: n(females[3]),
        f_60_plus: n(females[4]),
        vulnerabilities: Some(vulnerabilities.join(";")),
        documentation: Some(documentation.to_string()),
        protection_referral: referral,
        notes,
        recorded_by: None,
        recorded_at: None,
    }
}

/// A near-duplicate of `of`: same document number, the name spelled
/// differently, the date up to two days later.
fn near_duplicate(of: &CsvRow, rng: &mut Rng) -> CsvRow {
    let mut row = of.clone();
    row.head_name = of.head_name.as_deref().map(|n| spelling_variant(n, rng));
    let date: NaiveDate = of
        .crossed_on
        .as_deref()
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(first_day);
    row.crossed_on = Some((date + chrono::Days::new(rng.below(3))).to_string());
    row.notes = None;
    row
}

/// What was generated.
struct Generated {
    families: usize,
    near_duplicates: usize,
    csv_bytes: u64,
    json_bytes: u64,
}

/// Writes `n` families (`crossing`: all at that one) as an import CSV, in
/// date order if `sorted`.
fn generate(
    path: &Path,
    n: usize,
    seed: u64,
    crossing: Option<&str>,
    sorted: bool,
) -> anyhow::Result<Generated> {
    let mut rng = Rng::new(seed);
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_path(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    w.write_record(CSV_COLUMNS)?;
    // Earlier families a near-duplicate may repeat (those with a name and a number).
    let mut candidates: Vec<CsvRow> = Vec::new();
    let mut g = Generated {
        families: n,
        near_duplicates: 0,
        csv_bytes: 0,
        json_bytes: 0,
    };
    let today = chrono::Utc::now().date_naive();
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        let row = if !candidates.is_empty() && rng.chance(3) {
            g.near_duplicates += 1;
            let of = candidates[rng.below(candidates.len() as u64) as usize].clone();
            near_duplicate(&of, &mut rng)
        } else {
            let row = family_row(&mut rng, crossing);
            if row.head_name.is_some() && row.doc_number.is_some() && candidates.len() < 100_000 {
                candidates.push(row.clone());
            }
            row
        };
        // A generator bug must not pass for a refused row.
        let fields = row
            .to_draft()
            .build(today)
            .map_err(|e| anyhow!("a generated row is invalid: {}", e.one_line()))?;
        g.json_bytes += serde_json::to_vec(&fields)?.len() as u64;
        rows.push(row);
    }
    if sorted {
        rows.sort_by(|x, y| x.crossed_on.cmp(&y.crossed_on));
    }
    for row in &rows {
        w.serialize(row)?;
    }
    w.flush()?;
    drop(w);
    g.csv_bytes = std::fs::metadata(path)?.len();
    Ok(g)
}

// ---------------------------------------------------------------------------
// Processes.

/// Peak resident memory of a process so far, in MB (Linux: VmHWM).
fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// CPU time of a process so far, in clock ticks (Linux: utime + stime).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name: state is the first, utime the 12th.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?)
}

/// How long a process keeps working from now: the time until the last
/// 100 ms in which it used more than 10 ms of CPU, once it has been idle
/// for a second (at most ten minutes).
fn busy_for(pid: u32) -> f64 {
    let start = Instant::now();
    let mut last_busy = start;
    let mut prev = cpu_ticks(pid).unwrap_or(0);
    while last_busy.elapsed() < Duration::from_secs(1) && start.elapsed().as_secs() < 600 {
        std::thread::sleep(Duration::from_millis(100));
        let now = cpu_ticks(pid).unwrap_or(prev);
        if now > prev + 1 {
            last_busy = Instant::now();
        }
        prev = now;
    }
    (last_busy - start).as_secs_f64()
}

/// Starts a new peak-memory measurement of a process (Linux: writing 5 to
/// clear_refs resets VmHWM to the current resident size).
fn reset_peak_rss(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// One finished process.
struct Finished {
    seconds: f64,
    peak_mb: Option<f64>,
    stdout: String,
}

impl Finished {
    fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_str(&self.stdout)
            .with_context(|| format!("not JSON on stdout: {}", self.stdout))
    }
}

fn read_all(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// The binaries under test.
struct Bins {
    returnee: PathBuf,
    server: PathBuf,
}

impl Bins {
    fn find(dir: &Path) -> anyhow::Result<Bins> {
        let b = |name: &str| {
            let p = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
            ensure!(
                p.is_file(),
                "{} is missing; build it with `cargo build --release -p returnee-cli -p returnee-server` or pass --bin-dir",
                p.display()
            );
            Ok(p)
        };
        Ok(Bins {
            returnee: b("returnee")?,
            server: b("returnee-server")?,
        })
    }

    /// Runs `returnee --data-dir DIR ARGS` to completion, timing it and
    /// sampling its peak memory every `every`; an exit other than 0 is an error.
    fn returnee(&self, dir: &Path, args: &[&str], every: Duration) -> anyhow::Result<Finished> {
        let start = Instant::now();
        let mut child = Command::new(&self.returnee)
            .arg("--data-dir")
            .arg(dir)
            .args(args)
            .env_remove("RETURNEE_DATA_DIR")
            .env_remove("RETURNEE_CA")
            .env_remove("RETURNEE_PASSPHRASE")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", self.returnee.display()))?;
        let pid = child.id();
        let out = read_all(child.stdout.take().expect("piped"));
        let err = read_all(child.stderr.take().expect("piped"));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut peak: Option<f64> = None;
                while !done.load(Ordering::Relaxed) {
                    if let Some(mb) = peak_rss_mb(pid) {
                        peak = Some(peak.map_or(mb, |p: f64| p.max(mb)));
                    }
                    std::thread::sleep(every);
                }
                peak
            })
        };
        let status = child.wait()?;
        let seconds = start.elapsed().as_secs_f64();
        done.store(true, Ordering::Relaxed);
        let peak_mb = sampler.join().expect("sampler");
        let stdout = out.join().expect("stdout reader");
        let stderr = err.join().expect("stderr reader");
        ensure!(
            status.success(),
            "`returnee {}` on {} failed ({status})\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}",
            args.join(" "),
            dir.display()
        );
        Ok(Finished {
            seconds,
            peak_mb,
            stdout,
        })
    }

    /// A new laptop store at `dir`, enrolled at `url` with `code`.
    fn laptop(&self, dir: &Path, name: &str, url: &str, code: &str) -> anyhow::Result<()> {
        let every = Duration::from_millis(50);
        self.returnee(dir, &["init", "--device-name", name], every)?;
        self.returnee(dir, &["enroll", "--server", url, "--code", code], every)?;
        Ok(())
    }
}

/// `returnee-server serve` as a child process.
struct Server {
    child: Child,
    addr: SocketAddr,
    admin_code: String,
}

impl Server {
    fn start(bins: &Bins, data: &Path) -> anyhow::Result<Server> {
        let mut child = Command::new(&bins.server)
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .env_remove("RETURNEE_SERVER_TLS_CERT")
            .env_remove("RETURNEE_SERVER_TLS_KEY")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot run {}", bins.server.display()))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        // Keeps draining stdout, so that the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut server = Server {
            child,
            addr: "127.0.0.1:0".parse().expect("an address"),
            admin_code: String::new(),
        };
        let first = rx
            .recv_timeout(Duration::from_secs(30))
            .context("the server printed nothing in 30 s")?;
        let url = first
            .strip_prefix("listening on ")
            .ok_or_else(|| anyhow!("the server's first line is not 'listening on': {first}"))?;
        server.addr = url.trim().trim_start_matches("http://").parse()?;
        let second = rx
            .recv_timeout(Duration::from_secs(10))
            .context("the server printed no admin enrollment code")?;
        server.admin_code = second
            .strip_prefix("admin enrollment code: ")
            .ok_or_else(|| anyhow!("not an admin enrollment code: {second}"))?
            .trim()
            .to_string();
        Ok(server)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, and waits for the graceful stop.
    fn stop(mut self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()?;
        ensure!(status.success(), "kill -TERM failed: {status}");
        let exit = self.child.wait()?;
        ensure!(exit.success(), "the server stopped with {exit}");
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // After `stop` the child is reaped already and these do nothing.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// Measuring.

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Where a phase's JSON lines go.
struct Out {
    label: String,
    phases: Vec<String>,
    /// Each phase's lines, in the order the phases ran.
    results: Vec<(String, Vec<Value>)>,
}

impl Out {
    /// Whether `phase` (or the group it belongs to, `incremental` for
    /// `incremental-push`) was asked for.
    fn wants(&self, phase: &str) -> bool {
        if phase == "duplicate-check" {
            return self.phases.iter().any(|p| p == "push");
        }
        let group = phase.split('-').next().unwrap_or(phase);
        self.phases
            .iter()
            .any(|p| p == phase || (p == group && group == "incremental"))
    }

    fn emit(&mut self, mut line: Value) {
        let phase = line["phase"].as_str().unwrap_or_default().to_string();
        if !self.wants(&phase) {
            return;
        }
        line["label"] = json!(self.label);
        println!("{line}");
        match self.results.iter_mut().find(|(p, _)| *p == phase) {
            Some((_, lines)) => lines.push(line),
            None => self.results.push((phase, vec![line])),
        }
    }
}

/// What a phase measures on the network and the server, if anything.
struct Net<'a> {
    proxy: &'a FaultProxy,
    server_pid: u32,
}

/// Times one phase: `f` runs the process(es) and returns the line's
/// specific fields (`seconds`, `peak_rss_mb_client` and any other).
fn phase(
    run: usize,
    name: &str,
    families: usize,
    net: Option<&Net>,
    f: impl FnOnce() -> anyhow::Result<Value>,
) -> anyhow::Result<Value> {
    let before = net.map(|n| {
        reset_peak_rss(n.server_pid);
        n.proxy.traffic.snapshot()
    });
    let mut line = f().with_context(|| format!("phase {name}"))?;
    let mut out = json!({
        "label": null,
        "phase": name,
        "run": run,
        "families": families,
        "seconds": null,
        "bytes_up": null,
        "bytes_down": null,
        "bytes_per_family": null,
        "peak_rss_mb_client": null,
        "peak_rss_mb_server": null,
    });
    if let (Some(n), Some((u0, d0, _))) = (net, before) {
        // Let the proxy threads account for the last bytes.
        std::thread::sleep(Duration::from_millis(50));
        let (u1, d1, _) = n.proxy.traffic.snapshot();
        out["bytes_up"] = json!(u1 - u0);
        out["bytes_down"] = json!(d1 - d0);
        out["bytes_per_family"] = json!(round((u1 - u0 + d1 - d0) as f64 / families as f64));
        out["peak_rss_mb_server"] = json!(peak_rss_mb(n.server_pid).map(round));
    }
    if let Some(obj) = line.as_object_mut() {
        for (k, v) in std::mem::take(obj) {
            out[k] = v;
        }
    }
    Ok(out)
}

fn timed(f: &Finished) -> Value {
    json!({
        "seconds": round(f.seconds),
        "peak_rss_mb_client": f.peak_mb.map(round),
    })
}

/// A `returnee report --json` without its breakdown: the totals.
fn totals(report: &Value) -> Value {
    let mut t = report.clone();
    if let Some(o) = t.as_object_mut() {
        o.remove("groups");
    }
    t
}

fn field(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or(0)
}

// ---------------------------------------------------------------------------
// The phases.

const SAMPLE: Duration = Duration::from_millis(5);

fn main_phases(a: &Args, bins: &Bins, run: usize, dir: &Path, out: &mut Out) -> anyhow::Result<()> {
    let need = |p: &str| {
        let order = [
            "import",
            "push",
            "pull",
            "duplicates",
            "report",
            "incremental",
        ];
        let at = order.iter().position(|x| *x == p).expect("a phase");
        a.phases
            .iter()
            .filter_map(|x| order.iter().position(|o| o == x))
            .any(|i| i >= at)
    };
    if !need("import") {
        return Ok(());
    }
    let csv = dir.join("families.csv");
    let g = generate(&csv, a.families, a.seed + run as u64, None, a.sorted)?;
    eprintln!(
        "generated {} families ({} near-duplicates): CSV {} bytes ({:.0} per family), {:.0} bytes per family as JSON",
        g.families,
        g.near_duplicates,
        g.csv_bytes,
        g.csv_bytes as f64 / g.families as f64,
        g.json_bytes as f64 / g.families as f64
    );
    let server = Server::start(bins, &dir.join("server"))?;
    let proxy = FaultProxy::start(server.addr);
    let net = Net {
        proxy: &proxy,
        server_pid: server.pid(),
    };
    let (a_dir, b_dir) = (dir.join("laptop-a"), dir.join("laptop-b"));
    bins.laptop(&a_dir, "laptop-a", &proxy.url(), &server.admin_code)?;

    let csv_arg = csv.to_string_lossy().into_owned();
    let line = phase(run, "import", a.families, None, || {
        let f = bins.returnee(&a_dir, &["import", &csv_arg, "--json"], SAMPLE)?;
        let s = f.json()?;
        ensure!(
            field(&s, "added") == a.families as u64
                && s["refused"].as_array().is_some_and(|r| r.is_empty()),
            "the import did not add every row: {s}"
        );
        let mut line = timed(&f);
        line["csv_bytes"] = json!(g.csv_bytes);
        line["json_bytes_per_family"] = json!(round(g.json_bytes as f64 / g.families as f64));
        Ok(line)
    })?;
    out.emit(line);
    let a_report = bins
        .returnee(&a_dir, &["report", "--json"], SAMPLE)?
        .json()?;
    ensure!(
        field(&a_report, "families") == a.families as u64,
        "laptop A reports {} families after importing {}",
        a_report["families"],
        a.families
    );
    if !need("push") {
        return Ok(());
    }

    let line = phase(run, "push", a.families, Some(&net), || {
        let f = bins.returnee(&a_dir, &["sync", "--json"], SAMPLE)?;
        let s = f.json()?;
        ensure!(
            field(&s, "pushed") == a.families as u64 && field(&s, "rejected") == 0,
            "the push did not send every family: {s}"
        );
        Ok(timed(&f))
    })?;
    out.emit(line);
    // The server checks what arrived for duplicates in the background once
    // pushes pause: timed until its CPU goes idle, so that the pull starts
    // on a server with nothing left to do (as in bench.rs).
    let line = phase(run, "duplicate-check", a.families, Some(&net), || {
        Ok(json!({ "seconds": round(busy_for(server.pid())) }))
    })?;
    out.emit(line);
    if !need("pull") {
        return server.stop();
    }

    let code = bins
        .returnee(
            &a_dir,
            &["admin", "code", "--role", "supervisor"],
            Duration::from_millis(50),
        )?
        .stdout
        .trim()
        .to_string();
    bins.laptop(&b_dir, "laptop-b", &proxy.url(), &code)?;
    let line = phase(run, "pull", a.families, Some(&net), || {
        let f = bins.returnee(&b_dir, &["sync", "--json"], SAMPLE)?;
        let s = f.json()?;
        ensure!(
            field(&s, "pulled") >= a.families as u64,
            "the pull did not bring every family: {s}"
        );
        Ok(timed(&f))
    })?;
    out.emit(line);
    // The duplicates phase must follow the pull at once (the laptop indexes
    // what it pulled at the first command that looks for duplicates).
    if need("duplicates") {
        let line = phase(run, "duplicates", a.families, None, || {
            let f = bins.returnee(&b_dir, &["duplicates", "--json"], SAMPLE)?;
            let pairs = f.json()?.as_array().map_or(0, Vec::len);
            let mut line = timed(&f);
            line["pairs"] = json!(pairs);
            line["near_duplicates_generated"] = json!(g.near_duplicates);
            Ok(line)
        })?;
        out.emit(line);
    }
    let mut b_report = Value::Null;
    let line = phase(run, "report", a.families, None, || {
        let f = bins.returnee(&b_dir, &["report", "--json"], SAMPLE)?;
        b_report = f.json()?;
        Ok(timed(&f))
    })?;
    out.emit(line);
    // A benchmark of a broken sync is worse than none.
    ensure!(
        totals(&b_report) == totals(&a_report),
        "after the pull, laptop B's report {} differs from laptop A's {}",
        totals(&b_report),
        totals(&a_report)
    );

    if need("incremental") {
        incremental(a, bins, run, dir, &a_dir, &b_dir, &net, out)?;
    }
    server.stop()
}

/// Edits `--edits` families of laptop A by one import of their exported
/// rows, then times A's push and B's pull of the edits.
#[allow(clippy::too_many_arguments)]
fn incremental(
    a: &Args,
    bins: &Bins,
    run: usize,
    dir: &Path,
    a_dir: &Path,
    b_dir: &Path,
    net: &Net,
    out: &mut Out,
) -> anyhow::Result<()> {
    let export = dir.join("export.csv");
    let export_arg = export.to_string_lossy().into_owned();
    bins.returnee(
        a_dir,
        &["export", "--format", "csv", "--out", &export_arg],
        SAMPLE,
    )?;
    let rows: Vec<CsvRow> = csv::Reader::from_path(&export)?
        .deserialize()
        .collect::<Result<_, _>>()?;
    let edits = a.edits.min(rows.len()).max(1);
    let stride = rows.len() / edits;
    let edited = dir.join("edits.csv");
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_path(&edited)?;
    w.write_record(CSV_COLUMNS)?;
    for row in rows.iter().step_by(stride.max(1)).take(edits) {
        let mut row = row.clone();
        // A birth at follow-up: one more child aged 0–4, and a note.
        let babies: u32 = row.m_0_4.as_deref().unwrap_or("0").parse()?;
        row.m_0_4 = Some((babies + 1).to_string());
        row.notes = Some("follow-up visit: a boy born since the crossing".to_string());
        w.serialize(&row)?;
    }
    w.flush()?;
    drop(w);
    let edited_arg = edited.to_string_lossy().into_owned();
    let line = phase(run, "incremental-import", edits, None, || {
        let f = bins.returnee(a_dir, &["import", &edited_arg, "--json"], SAMPLE)?;
        let s = f.json()?;
        ensure!(
            field(&s, "updated") == edits as u64,
            "the import of {edits} edits did not update them all: {s}"
        );
        Ok(timed(&f))
    })?;
    out.emit(line);
    let line = phase(run, "incremental-push", edits, Some(net), || {
        let f = bins.returnee(a_dir, &["sync", "--json"], SAMPLE)?;
        let s = f.json()?;
        ensure!(
            field(&s, "pushed") == edits as u64,
            "the push of {edits} edits: {s}"
        );
        Ok(timed(&f))
    })?;
    out.emit(line);
    let line = phase(run, "incremental-pull", edits, Some(net), || {
        let f = bins.returnee(b_dir, &["sync", "--json"], SAMPLE)?;
        let s = f.json()?;
        ensure!(
            field(&s, "pulled") >= edits as u64,
            "the pull of {edits} edits: {s}"
        );
        Ok(timed(&f))
    })?;
    out.emit(line);
    let report = |d: &Path| -> anyhow::Result<Value> {
        Ok(totals(
            &bins.returnee(d, &["report", "--json"], SAMPLE)?.json()?,
        ))
    };
    let (ra, rb) = (report(a_dir)?, report(b_dir)?);
    ensure!(
        ra == rb,
        "after the incremental sync, laptop B's report {rb} differs from laptop A's {ra}"
    );
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(0.0)
}

/// `--devices` laptops, each at one crossing with its own families, all
/// running `returnee sync` at once.
fn many_devices(
    a: &Args,
    bins: &Bins,
    run: usize,
    dir: &Path,
    out: &mut Out,
) -> anyhow::Result<()> {
    let server = Server::start(bins, &dir.join("server-many"))?;
    let proxy = FaultProxy::start(server.addr);
    let admin = dir.join("admin");
    bins.laptop(&admin, "admin", &proxy.url(), &server.admin_code)?;
    let crossings: Vec<String> = reference::crossings()
        .iter()
        .map(|c| c.entry.code.clone())
        .collect();
    let every = Duration::from_millis(50);
    let started = Instant::now();
    let mut laptops = Vec::new();
    for (k, site) in crossings.iter().enumerate() {
        let at_site: Vec<usize> = (0..a.devices)
            .filter(|i| i % crossings.len() == k)
            .collect();
        if at_site.is_empty() {
            continue;
        }
        let uses = at_site.len().to_string();
        let code = bins
            .returnee(
                &admin,
                &[
                    "admin", "code", "--role", "field", "--site", site, "--uses", &uses,
                ],
                every,
            )?
            .stdout
            .trim()
            .to_string();
        for i in at_site {
            let d = dir.join(format!("device-{i}"));
            bins.laptop(&d, &format!("device-{i}"), &proxy.url(), &code)?;
            let csv = dir.join(format!("device-{i}.csv"));
            generate(
                &csv,
                a.per_device,
                a.seed + 1000 * (run as u64 + 1) + i as u64,
                Some(site),
                a.sorted,
            )?;
            let f = bins.returnee(&d, &["import", &csv.to_string_lossy(), "--json"], every)?;
            ensure!(
                field(&f.json()?, "added") == a.per_device as u64,
                "device {i} did not import every row: {}",
                f.stdout
            );
            laptops.push(d);
        }
    }
    eprintln!(
        "many-devices: {} laptops ready in {:.1} s",
        laptops.len(),
        started.elapsed().as_secs_f64()
    );
    let net = Net {
        proxy: &proxy,
        server_pid: server.pid(),
    };
    let n = laptops.len() * a.per_device;
    let line = phase(run, "many-devices", n, Some(&net), || {
        let start = Instant::now();
        let results: Vec<anyhow::Result<Finished>> = std::thread::scope(|s| {
            let handles: Vec<_> = laptops
                .iter()
                .map(|d| {
                    s.spawn(move || {
                        bins.returnee(d, &["sync", "--json"], Duration::from_millis(20))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a sync thread"))
                .collect()
        });
        let seconds = start.elapsed().as_secs_f64();
        let mut times = Vec::new();
        let mut peak: f64 = 0.0;
        let mut errors = Vec::new();
        let (mut pushed, mut pulled) = (0, 0);
        for r in results {
            match r {
                Ok(f) => {
                    times.push(f.seconds);
                    peak = peak.max(f.peak_mb.unwrap_or(0.0));
                    let s = f.json()?;
                    pushed += field(&s, "pushed");
                    pulled += field(&s, "pulled");
                }
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        ensure!(
            errors.is_empty(),
            "{} of the syncs failed; the first: {}",
            errors.len(),
            errors[0]
        );
        ensure!(
            pushed == n as u64,
            "the laptops pushed {pushed} families, not {n}"
        );
        times.sort_by(|x, y| x.partial_cmp(y).expect("a time"));
        Ok(json!({
            "seconds": round(seconds),
            "peak_rss_mb_client": round(peak),
            "devices": laptops.len(),
            "pulled": pulled,
            "p50_sync_seconds": round(percentile(&times, 0.5)),
            "p99_sync_seconds": round(percentile(&times, 0.99)),
            "max_sync_seconds": round(times.last().copied().unwrap_or(0.0)),
        }))
    })?;
    out.emit(line);
    server.stop()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).expect("a number"));
    values[values.len() / 2]
}

fn bench() -> anyhow::Result<()> {
    let a = args()?;
    let bins = Bins::find(&a.bin_dir)?;
    let mut out = Out {
        label: a.label.clone(),
        phases: a.phases.clone(),
        results: Vec::new(),
    };
    for run in 0..a.runs {
        let temp;
        let dir = match &a.keep {
            Some(k) => {
                let d = k.join(format!("run-{run}"));
                std::fs::create_dir_all(&d)?;
                ensure!(
                    std::fs::read_dir(&d)?.next().is_none(),
                    "{} is not empty",
                    d.display()
                );
                d
            }
            None => {
                temp = tempfile::Builder::new().prefix("benchreal-").tempdir()?;
                temp.path().to_path_buf()
            }
        };
        main_phases(&a, &bins, run, &dir, &mut out)?;
        if out.wants("many-devices") {
            many_devices(&a, &bins, run, &dir, &mut out)?;
        }
    }
    for (phase, lines) in &out.results {
        let mut m = json!({
            "label": a.label,
            "phase": phase,
            "run": "median",
            "runs": lines.len(),
            "families": lines[0]["families"],
        });
        for key in [
            "seconds",
            "bytes_up",
            "bytes_down",
            "bytes_per_family",
            "peak_rss_mb_client",
            "peak_rss_mb_server",
            "pairs",
            "p50_sync_seconds",
            "p99_sync_seconds",
            "max_sync_seconds",
        ] {
            let mut v: Vec<f64> = lines.iter().filter_map(|l| l[key].as_f64()).collect();
            let optional = !matches!(
                key,
                "seconds"
                    | "bytes_up"
                    | "bytes_down"
                    | "bytes_per_family"
                    | "peak_rss_mb_client"
                    | "peak_rss_mb_server"
            );
            if v.is_empty() {
                if !optional {
                    m[key] = Value::Null;
                }
            } else if key.starts_with("bytes_") && key != "bytes_per_family" || key == "pairs" {
                m[key] = json!(median(&mut v) as u64);
            } else {
                m[key] = json!(round(median(&mut v)));
            }
        }
        println!("{m}");
    }
    Ok(())
}

fn main() -> ExitCode {
    match bench() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
