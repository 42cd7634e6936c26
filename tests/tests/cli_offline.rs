//! The offline client end to end: the real `returnee` binary, run as a
//! subprocess against a fresh store per test.
//!
//! Families are generated deterministically ([`Rng`]) in the forms a worker
//! types (names or codes, any case), and every expected figure is computed
//! here from those inputs, independently of the product's own code.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use returnee_tests::{Rng, Store};
use serde_json::{Value, json};

// ====================================================================
// Generated families
// ====================================================================

/// (as typed, as stored)
const CROSSINGS: [(&str, &str); 9] = [
    ("torkham", "torkham"),
    ("Torkham", "torkham"),
    ("Chaman", "chaman"),
    ("spin boldak", "chaman"),
    ("ANGOOR-ADDA", "angoor-adda"),
    ("Ghulam Khan", "ghulam-khan"),
    ("kharlachi", "kharlachi"),
    ("Badini", "badini"),
    ("bahramcha", "bahramcha"),
];
const DEPARTURES: [(&str, &str); 8] = [
    ("PK-KP", "PK-KP"),
    ("Khyber Pakhtunkhwa", "PK-KP"),
    ("Punjab", "PK-PB"),
    ("sindh", "PK-SD"),
    ("PK-BA", "PK-BA"),
    ("Islamabad", "PK-IS"),
    ("unknown", "unknown"),
    ("kp", "PK-KP"),
];
const DESTINATIONS: [(&str, &str); 9] = [
    ("AF-NAN", "AF-NAN"),
    ("Nangarhar", "AF-NAN"),
    ("Kabul", "AF-KAB"),
    ("kandahar", "AF-KAN"),
    ("AF-KHO", "AF-KHO"),
    ("undecided", "undecided"),
    ("Sar-e Pul", "AF-SAR"),
    ("herat", "AF-HER"),
    ("AF-PIA", "AF-PIA"),
];
const RETURN_TYPES: [(&str, &str); 5] = [
    ("spontaneous", "spontaneous"),
    ("Deported", "deported"),
    ("deported", "deported"),
    ("ASSISTED", "assisted"),
    ("assisted", "assisted"),
];
const SEXES: [(&str, &str); 4] = [("m", "m"), ("F", "f"), ("female", "f"), ("Male", "m")];
const DOC_TYPES: [(&str, &str); 5] = [
    ("por-card", "por-card"),
    ("ACC", "acc"),
    ("Tazkira", "tazkira"),
    ("passport", "passport"),
    ("none", "none"),
];
/// In declaration order, which is the order they are stored in.
const VULNERABILITIES: [&str; 11] = [
    "female-headed",
    "single-parent",
    "unaccompanied-child",
    "separated-child",
    "unaccompanied-elderly",
    "disability",
    "serious-medical",
    "chronic-illness",
    "single-female",
    "widow",
    "pregnant-or-lactating",
];
const DOCUMENTATION: [&str; 4] = ["por-card", "acc", "tazkira", "passport-visa"];
const REFERRALS: [&str; 5] = [
    "resettlement-case-pending",
    "medical",
    "child-protection",
    "gbv",
    "other",
];
const NAMES: [&str; 5] = [
    "Gul Bibi",
    "Abdul \"Wali\" Zadran",
    "Khan, Mohammad",
    "ګل بي بي",
    "Nazia O'Brien",
];
const NOTES: [&str; 5] = [
    "arrived with livestock",
    "needs shelter, water; blankets",
    "said \"we left everything\"",
    "two lines\nof notes",
    "ماشوم ناروغ دی",
];

/// One generated family, as typed and as it must be stored.
#[derive(Debug, Clone)]
struct Gen {
    crossing: (&'static str, &'static str),
    date: NaiveDate,
    return_type: (&'static str, &'static str),
    departure: (&'static str, &'static str),
    destination: (&'static str, &'static str),
    males: [u32; 5],
    females: [u32; 5],
    head_sex: Option<(&'static str, &'static str)>,
    consent: bool,
    head_name: Option<&'static str>,
    doc_type: Option<(&'static str, &'static str)>,
    doc_number: Option<String>,
    vulnerabilities: Vec<&'static str>,
    documentation: Vec<&'static str>,
    referral: Option<&'static str>,
    notes: Option<&'static str>,
}

fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 1, 1).unwrap()
}

fn generate(rng: &mut Rng) -> Gen {
    let mut males = [0u32; 5];
    let mut females = [0u32; 5];
    for band in 0..4 {
        males[band] = rng.below(3) as u32;
        females[band] = rng.below(3) as u32;
    }
    // Fewer people over 60.
    males[4] = u32::from(rng.chance(15));
    females[4] = u32::from(rng.chance(15));
    if males.iter().chain(&females).all(|&n| n == 0) {
        females[3] = 1;
    }
    let head_sex = rng.chance(70).then(|| *rng.pick(&SEXES));
    let consent = rng.chance(40);
    let head_name = (consent && rng.chance(80)).then(|| *rng.pick(&NAMES));
    let doc_type = rng.chance(60).then(|| *rng.pick(&DOC_TYPES));
    let doc_number = (consent && doc_type.is_some_and(|d| d.1 != "none") && rng.chance(80))
        .then(|| format!("AB-{}/{}", rng.below(100_000), rng.below(100)));
    let mut vulnerabilities: Vec<&str> = VULNERABILITIES
        .iter()
        .copied()
        .filter(|_| rng.chance(8))
        .collect();
    if head_sex.is_some_and(|s| s.1 == "m") {
        vulnerabilities.retain(|v| *v != "female-headed");
    }
    let documentation: Vec<&str> = if rng.chance(15) {
        vec!["undocumented"]
    } else {
        DOCUMENTATION
            .iter()
            .copied()
            .filter(|_| rng.chance(30))
            .collect()
    };
    Gen {
        crossing: *rng.pick(&CROSSINGS),
        date: first_day() + chrono::Days::new(rng.below(700)),
        return_type: *rng.pick(&RETURN_TYPES),
        departure: *rng.pick(&DEPARTURES),
        destination: *rng.pick(&DESTINATIONS),
        males,
        females,
        head_sex,
        consent,
        head_name,
        doc_type,
        doc_number,
        vulnerabilities,
        documentation,
        referral: rng.chance(20).then(|| *rng.pick(&REFERRALS)),
        notes: rng.chance(30).then(|| *rng.pick(&NOTES)),
    }
}

fn generate_many(seed: u64, n: usize) -> Vec<Gen> {
    let mut rng = Rng::new(seed);
    (0..n).map(|_| generate(&mut rng)).collect()
}

fn counts(c: &[u32; 5]) -> String {
    c.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

impl Gen {
    /// The CSV columns this test writes (no id: the importer derives one).
    const CSV_HEADER: [&'static str; 24] = [
        "crossing",
        "crossed_on",
        "return_type",
        "departure_province",
        "destination_province",
        "head_name",
        "head_sex",
        "doc_type",
        "doc_number",
        "consent",
        "m_0_4",
        "m_5_11",
        "m_12_17",
        "m_18_59",
        "m_60_plus",
        "f_0_4",
        "f_5_11",
        "f_12_17",
        "f_18_59",
        "f_60_plus",
        "vulnerabilities",
        "documentation",
        "protection_referral",
        "notes",
    ];

    fn csv_row(&self) -> Vec<String> {
        let mut row = vec![
            self.crossing.0.to_string(),
            self.date.to_string(),
            self.return_type.0.to_string(),
            self.departure.0.to_string(),
            self.destination.0.to_string(),
            self.head_name.unwrap_or("").to_string(),
            self.head_sex.map_or("", |s| s.0).to_string(),
            self.doc_type.map_or("", |d| d.0).to_string(),
            self.doc_number.clone().unwrap_or_default(),
            if self.consent { "yes" } else { "no" }.to_string(),
        ];
        row.extend(self.males.iter().map(u32::to_string));
        row.extend(self.females.iter().map(u32::to_string));
        row.push(self.vulnerabilities.join(";"));
        row.push(self.documentation.join(";"));
        row.push(self.referral.unwrap_or("").to_string());
        row.push(self.notes.unwrap_or("").to_string());
        row
    }

    /// `returnee add` flags for this family.
    fn add_args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "add".into(),
            "--crossing".into(),
            self.crossing.0.into(),
            "--date".into(),
            self.date.to_string(),
            "--return-type".into(),
            self.return_type.0.into(),
            "--from".into(),
            self.departure.0.into(),
            "--to".into(),
            self.destination.0.into(),
            "--males".into(),
            counts(&self.males),
            "--females".into(),
            counts(&self.females),
        ];
        let mut opt = |flag: &str, v: Option<&str>| {
            if let Some(v) = v {
                a.push(flag.into());
                a.push(v.into());
            }
        };
        opt("--head-name", self.head_name);
        opt("--head-sex", self.head_sex.map(|s| s.0));
        opt("--doc-type", self.doc_type.map(|d| d.0));
        opt("--doc-number", self.doc_number.as_deref());
        opt("--referral", self.referral);
        opt("--notes", self.notes);
        for v in &self.vulnerabilities {
            a.push("--vulnerability".into());
            a.push((*v).into());
        }
        for d in &self.documentation {
            a.push("--documentation".into());
            a.push((*d).into());
        }
        if self.consent {
            a.push("--consent".into());
        }
        a
    }

    /// The record `list --json` must show, without id and provenance.
    fn expected_record(&self) -> Value {
        json!({
            "crossing": self.crossing.1,
            "crossed_on": self.date.to_string(),
            "return_type": self.return_type.1,
            "departure_province": self.departure.1,
            "destination_province": self.destination.1,
            "members": { "males": self.males, "females": self.females },
            "head_name": self.head_name,
            "head_sex": self.head_sex.map(|s| s.1),
            "doc_type": self.doc_type.map_or("none", |d| d.1),
            "doc_number": self.doc_number,
            "consent": self.consent,
            "vulnerabilities": self.vulnerabilities,
            "documentation": self.documentation,
            "protection_referral": self.referral,
            "notes": self.notes,
        })
    }

    fn group_key(&self, by: &str) -> String {
        match by {
            "crossing" => self.crossing.1.to_string(),
            "date" => self.date.to_string(),
            "return-type" => self.return_type.1.to_string(),
            "departure" => self.departure.1.to_string(),
            "destination" => self.destination.1.to_string(),
            other => panic!("no such breakdown {other}"),
        }
    }
}

fn write_csv(path: &Path, gens: &[Gen]) {
    let mut w = csv::Writer::from_path(path).unwrap();
    w.write_record(Gen::CSV_HEADER).unwrap();
    for g in gens {
        w.write_record(g.csv_row()).unwrap();
    }
    w.flush().unwrap();
}

// ====================================================================
// Expected figures, computed here
// ====================================================================

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Totals {
    families: u64,
    individuals: u64,
    men: u64,
    women: u64,
    children: u64,
}

impl Totals {
    fn add(&mut self, g: &Gen) {
        let m = g.males.map(u64::from);
        let f = g.females.map(u64::from);
        self.families += 1;
        self.men += m[3] + m[4];
        self.women += f[3] + f[4];
        self.children += m[0] + m[1] + m[2] + f[0] + f[1] + f[2];
        self.individuals += m.iter().sum::<u64>() + f.iter().sum::<u64>();
    }

    fn of<'a>(gens: impl IntoIterator<Item = &'a Gen>) -> Totals {
        let mut t = Totals::default();
        for g in gens {
            t.add(g);
        }
        t
    }

    #[track_caller]
    fn from_json(v: &Value) -> Totals {
        let n = |k: &str| {
            v[k].as_u64()
                .unwrap_or_else(|| panic!("'{k}' is not a number in {v}"))
        };
        Totals {
            families: n("families"),
            individuals: n("individuals"),
            men: n("men"),
            women: n("women"),
            children: n("children"),
        }
    }
}

fn expected_groups<'a>(
    gens: impl IntoIterator<Item = &'a Gen>,
    by: &str,
) -> BTreeMap<String, Totals> {
    let mut m: BTreeMap<String, Totals> = BTreeMap::new();
    for g in gens {
        m.entry(g.group_key(by)).or_default().add(g);
    }
    m
}

#[track_caller]
fn report_groups(report: &Value) -> BTreeMap<String, Totals> {
    let groups = report["groups"]
        .as_array()
        .unwrap_or_else(|| panic!("no groups array in {report}"));
    let mut m = BTreeMap::new();
    for g in groups {
        let key = g["key"].as_str().expect("group key").to_string();
        assert!(
            m.insert(key.clone(), Totals::from_json(g)).is_none(),
            "group {key} twice"
        );
    }
    m
}

/// A record of `list --json` without id, provenance, the deleted flag and
/// `show`'s sync state.
fn fields_only(record: &Value) -> Value {
    let mut r = record.clone();
    let o = r.as_object_mut().expect("a record is an object");
    for k in ["id", "recorded_by", "recorded_at", "deleted", "sync"] {
        o.remove(k);
    }
    r
}

/// The records as sorted JSON texts, for comparing as multisets.
fn sorted_texts(records: impl IntoIterator<Item = Value>) -> Vec<String> {
    let mut v: Vec<String> = records.into_iter().map(|r| r.to_string()).collect();
    v.sort();
    v
}

#[track_caller]
fn as_array(v: &Value) -> &Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected a JSON array, got {v}"))
}

/// Seeds of the generated stores.
const SEED: u64 = 0x5EED_2025;
const BULK: usize = 300;
const ADDED: usize = 5;

/// A store holding `BULK` imported families and `ADDED` families added with
/// flags, and the generated inputs of all of them.
fn populated() -> (Store, Vec<Gen>) {
    let store = Store::init();
    let gens = generate_many(SEED, BULK + ADDED);
    let files = tempfile::tempdir().unwrap();
    let csv = files.path().join("families.csv");
    write_csv(&csv, &gens[..BULK]);
    let summary = store.json(&["import", "--json", csv.to_str().unwrap()]);
    assert_eq!(
        summary,
        json!({"added": BULK, "updated": 0, "unchanged": 0, "refused": []})
    );
    for g in &gens[BULK..] {
        let args = g.add_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = store.ok(&args);
        assert!(
            out.trim().parse::<uuid::Uuid>().is_ok(),
            "add printed {out:?}"
        );
    }
    (store, gens)
}

fn today() -> NaiveDate {
    chrono::Local::now().date_naive()
}

// ====================================================================
// init and add
// ====================================================================

#[test]
fn init_twice_changes_nothing() {
    let store = Store::empty();
    let first = store
        .run(&["init", "--device-name", "kit-7"])
        .expect_code(0);
    assert!(first.stdout.contains("created a store"), "{}", first.stdout);
    assert!(first.stdout.contains("kit-7"));
    let second = store
        .run(&["init", "--device-name", "other"])
        .expect_code(0);
    assert!(
        second.stdout.contains("nothing changed"),
        "{}",
        second.stdout
    );
    // The same device: the name and id of the first run.
    assert!(second.stdout.contains("kit-7"), "{}", second.stdout);
    let id_of = |s: &str| {
        s.split(|c: char| c == '(' || c == ')' || c == ',' || c.is_whitespace())
            .find_map(|w| w.parse::<uuid::Uuid>().ok())
            .expect("a device id in the output")
    };
    assert_eq!(id_of(&first.stdout), id_of(&second.stdout));
    assert_eq!(store.json(&["list", "--json"]), json!([]));
}

#[test]
fn add_with_all_flags_prints_an_id_and_stores_every_field() {
    let store = Store::init();
    let out = store.ok(&[
        "add",
        "--crossing",
        "Spin Boldak",
        "--date",
        "2025-10-03",
        "--return-type",
        "Deported",
        "--from",
        "Balochistan",
        "--to",
        "kandahar",
        "--males",
        "1,0,2,1,0",
        "--females",
        "0,1,0,1,1",
        "--head-name",
        "Gul Bibi",
        "--head-sex",
        "f",
        "--doc-type",
        "por-card",
        "--doc-number",
        "PK-123/45",
        "--consent",
        "--vulnerability",
        "female-headed",
        "--vulnerability",
        "widow",
        "--documentation",
        "por-card",
        "--documentation",
        "tazkira",
        "--referral",
        "medical",
        "--notes",
        "needs a doctor",
    ]);
    let id = out.trim();
    let uuid: uuid::Uuid = id.parse().unwrap_or_else(|_| panic!("not an id: {out:?}"));
    assert_eq!(uuid.get_version_num(), 7, "record ids are UUID v7");

    let shown = store.json(&["show", "--json", id]);
    assert_eq!(shown["id"], id);
    assert_eq!(
        fields_only(&shown),
        json!({
            "crossing": "chaman",
            "crossed_on": "2025-10-03",
            "return_type": "deported",
            "departure_province": "PK-BA",
            "destination_province": "AF-KAN",
            "members": {"males": [1, 0, 2, 1, 0], "females": [0, 1, 0, 1, 1]},
            "head_name": "Gul Bibi",
            "head_sex": "f",
            "doc_type": "por-card",
            "doc_number": "PK-123/45",
            "consent": true,
            "vulnerabilities": ["female-headed", "widow"],
            "documentation": ["por-card", "tazkira"],
            "protection_referral": "medical",
            "notes": "needs a doctor",
            "individuals": 7,
            "men": 1,
            "women": 2,
            "children": 4,
            "conflicts": [],
        })
    );
    assert_eq!(shown["deleted"], false);
    // A unique prefix of the id works too.
    let by_prefix = store.json(&["show", "--json", &id[..8]]);
    assert_eq!(by_prefix["id"], id);
    // add --json prints the saved record.
    let rec = store.json(&[
        "add",
        "--json",
        "--crossing",
        "torkham",
        "--date",
        "2025-10-04",
        "--return-type",
        "spontaneous",
        "--from",
        "unknown",
        "--to",
        "undecided",
        "--males",
        "0,0,0,1,0",
        "--females",
        "0,0,0,0,0",
    ]);
    assert_eq!(rec["crossing"], "torkham");
    assert!(rec["id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
    assert_eq!(as_array(&store.json(&["list", "--json"])).len(), 2);
}

#[test]
fn refused_add_exits_2_names_every_problem_and_stores_nothing() {
    let store = Store::init();
    let run = store
        .run(&[
            "add",
            "--crossing",
            "wagah",
            "--date",
            "2999-01-01",
            "--return-type",
            "voluntary",
            "--from",
            "Kabul",
            "--to",
            "Punjab",
            "--males",
            "1,2,3",
            "--females",
            "0,0,0,1,0",
            "--head-name",
            "Zarmina Secretname",
            "--doc-type",
            "tazkira",
            "--doc-number",
            "SECRET-998877",
            "--notes",
            &"x".repeat(501),
            "--vulnerability",
            "hungry",
        ])
        .expect_code(2);
    for field in [
        "crossing",
        "crossed_on",
        "return_type",
        "departure_province",
        "destination_province",
        "males",
        "head_name",
        "doc_number",
        "notes",
        "vulnerabilities",
    ] {
        assert!(
            run.stderr.contains(&format!("  - {field}: ")),
            "{field} missing from stderr:\n{}",
            run.stderr
        );
    }
    assert!(run.stderr.contains("not saved"), "{}", run.stderr);
    assert!(!run.stderr.contains("Secretname"), "{}", run.stderr);
    assert!(!run.stderr.contains("998877"), "{}", run.stderr);
    assert_eq!(run.stdout, "");

    // Missing required flags, without a terminal: no form, a list of them.
    let run = store.run(&["add", "--crossing", "torkham"]).expect_code(2);
    for field in [
        "crossed_on",
        "return_type",
        "departure_province",
        "destination_province",
        "males",
        "females",
    ] {
        assert!(
            run.stderr.contains(&format!("{field}: is required")),
            "{field} missing from stderr:\n{}",
            run.stderr
        );
    }
    assert_eq!(store.json(&["list", "--json"]), json!([]));
    assert_eq!(
        store.json(&["report", "--json"]),
        json!({"families": 0, "individuals": 0, "men": 0, "women": 0, "children": 0,
               "males": [0, 0, 0, 0, 0], "females": [0, 0, 0, 0, 0]})
    );
}

// ====================================================================
// report and list
// ====================================================================

#[test]
fn report_totals_and_breakdowns_equal_independent_sums() {
    let (store, gens) = populated();
    let report = store.json(&["report", "--json"]);
    let expected = Totals::of(&gens);
    assert_eq!(Totals::from_json(&report), expected);
    assert_eq!(expected.families as usize, BULK + ADDED);
    assert!(report.get("groups").is_none(), "{report}");

    for by in [
        "crossing",
        "date",
        "return-type",
        "departure",
        "destination",
    ] {
        let report = store.json(&["report", "--json", "--by", by]);
        assert_eq!(
            Totals::from_json(&report),
            expected,
            "totals with --by {by}"
        );
        let got = report_groups(&report);
        let want = expected_groups(&gens, by);
        assert_eq!(got, want, "--by {by}");
        // The generated data really is spread out.
        assert!(want.len() >= 3, "--by {by}: only {} groups", want.len());
    }
    // The human table shows the same total.
    let table = store.ok(&["report"]);
    let total_line = table
        .lines()
        .find(|l| l.trim_start().starts_with("total"))
        .unwrap_or_else(|| panic!("no total line in\n{table}"));
    // Tables write thousands with separators (2,554).
    let numbers: Vec<u64> = total_line
        .split_whitespace()
        .filter_map(|w| w.replace(',', "").parse().ok())
        .collect();
    assert_eq!(
        numbers,
        [
            expected.families,
            expected.individuals,
            expected.men,
            expected.women,
            expected.children
        ]
    );
    // An unknown breakdown is a usage error.
    let run = store.run(&["report", "--by", "colour"]).expect_code(2);
    assert!(
        run.stderr.contains("'colour' is not a breakdown"),
        "{}",
        run.stderr
    );
}

#[test]
fn list_shows_every_field_of_every_family() {
    let (store, gens) = populated();
    let list = store.json(&["list", "--json"]);
    let records = as_array(&list);
    assert_eq!(records.len(), gens.len());
    assert_eq!(
        sorted_texts(records.iter().map(fields_only)),
        sorted_texts(gens.iter().map(Gen::expected_record))
    );
    // Listed in id order, each id once.
    let ids: Vec<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted);
    // The table lists them all too.
    let table = store.ok(&["list"]);
    assert!(
        table
            .trim_end()
            .ends_with(&format!("{} families", gens.len())),
        "{}",
        &table[table.len().saturating_sub(200)..]
    );
}

#[test]
fn filters_select_the_same_families_on_list_and_report() {
    let (store, gens) = populated();
    type Pred = fn(&Gen) -> bool;
    let cases: Vec<(Vec<&str>, Pred)> = vec![
        (vec!["--crossing", "torkham"], |g| g.crossing.1 == "torkham"),
        (vec!["--crossing", "Spin Boldak"], |g| {
            g.crossing.1 == "chaman"
        }),
        (vec!["--crossing", "ANGOOR ADDA"], |g| {
            g.crossing.1 == "angoor-adda"
        }),
        (vec!["--from", "2024-01-01"], |g| {
            g.date >= NaiveDate::from_ymd_opt(2024, 1, 1).unwrap()
        }),
        (vec!["--to", "2023-06-30"], |g| {
            g.date <= NaiveDate::from_ymd_opt(2023, 6, 30).unwrap()
        }),
        (vec!["--from", "2023-03-01", "--to", "2023-09-30"], |g| {
            (NaiveDate::from_ymd_opt(2023, 3, 1).unwrap()
                ..=NaiveDate::from_ymd_opt(2023, 9, 30).unwrap())
                .contains(&g.date)
        }),
        (vec!["--return-type", "deported"], |g| {
            g.return_type.1 == "deported"
        }),
        (vec!["--return-type", "Assisted"], |g| {
            g.return_type.1 == "assisted"
        }),
        (
            vec![
                "--crossing",
                "torkham",
                "--return-type",
                "spontaneous",
                "--from",
                "2023-05-01",
            ],
            |g| {
                g.crossing.1 == "torkham"
                    && g.return_type.1 == "spontaneous"
                    && g.date >= NaiveDate::from_ymd_opt(2023, 5, 1).unwrap()
            },
        ),
    ];
    for (flags, pred) in cases {
        let wanted: Vec<&Gen> = gens.iter().filter(|g| pred(g)).collect();
        assert!(
            !wanted.is_empty() && wanted.len() < gens.len(),
            "filter {flags:?} should select some but not all ({})",
            wanted.len()
        );
        let mut args = vec!["report", "--json"];
        args.extend(&flags);
        let report = store.json(&args);
        assert_eq!(
            Totals::from_json(&report),
            Totals::of(wanted.iter().copied()),
            "report {flags:?}"
        );
        let mut args = vec!["report", "--json", "--by", "date"];
        args.extend(&flags);
        assert_eq!(
            report_groups(&store.json(&args)),
            expected_groups(wanted.iter().copied(), "date"),
            "report --by date {flags:?}"
        );
        let mut args = vec!["list", "--json"];
        args.extend(&flags);
        let list = store.json(&args);
        assert_eq!(
            sorted_texts(as_array(&list).iter().map(fields_only)),
            sorted_texts(wanted.iter().map(|g| g.expected_record())),
            "list {flags:?}"
        );
    }
    // Bad filters are refused with every problem named.
    for cmd in ["list", "report"] {
        let run = store
            .run(&[
                cmd,
                "--crossing",
                "wagah",
                "--from",
                "01/02/2025",
                "--return-type",
                "flown",
            ])
            .expect_code(2);
        for f in ["crossing", "from", "return_type"] {
            assert!(
                run.stderr.contains(&format!("  - {f}: ")),
                "{cmd}: {}",
                run.stderr
            );
        }
    }
}

// ====================================================================
// edit and delete
// ====================================================================

fn add_one(store: &Store) -> String {
    store
        .ok(&[
            "add",
            "--crossing",
            "torkham",
            "--date",
            "2025-09-17",
            "--return-type",
            "spontaneous",
            "--from",
            "PK-KP",
            "--to",
            "AF-NAN",
            "--males",
            "1,1,0,1,0",
            "--females",
            "0,2,0,1,0",
            "--head-sex",
            "m",
            "--documentation",
            "tazkira",
            "--notes",
            "first note",
        ])
        .trim()
        .to_string()
}

#[test]
fn edit_changes_only_the_named_fields() {
    let store = Store::init();
    let id = add_one(&store);
    let other = add_one(&store);
    let before = store.json(&["show", "--json", &id]);
    let other_before = store.json(&["show", "--json", &other]);

    let run = store
        .run(&[
            "edit",
            &id,
            "--notes",
            "second note",
            "--to",
            "Kabul",
            "--females",
            "0,2,0,1,1",
        ])
        .expect_code(0);
    assert!(run.stdout.contains("changed"), "{}", run.stdout);

    let after = store.json(&["show", "--json", &id]);
    let mut expected = before.clone();
    expected["notes"] = json!("second note");
    expected["destination_province"] = json!("AF-KAB");
    // --females alone keeps the males.
    expected["members"] = json!({"males": [1, 1, 0, 1, 0], "females": [0, 2, 0, 1, 1]});
    expected["individuals"] = json!(7);
    expected["women"] = json!(2);
    assert_eq!(after, expected);
    assert_eq!(store.json(&["show", "--json", &other]), other_before);

    // Clearing a set with `none`, adding consent and a name.
    store.ok(&[
        "edit",
        &id,
        "--documentation",
        "none",
        "--consent",
        "--head-name",
        "Wali Khan",
    ]);
    let after2 = store.json(&["show", "--json", &id]);
    assert_eq!(after2["documentation"], json!([]));
    assert_eq!(after2["consent"], json!(true));
    assert_eq!(after2["head_name"], json!("Wali Khan"));
    assert_eq!(after2["notes"], json!("second note"));
    assert_eq!(after2["recorded_at"], before["recorded_at"]);

    // Setting a value it already has changes nothing.
    let run = store
        .run(&["edit", &id, "--notes", "second note"])
        .expect_code(0);
    assert!(run.stdout.contains("nothing changed"), "{}", run.stdout);
    assert_eq!(store.json(&["show", "--json", &id]), after2);

    // The report follows the edit.
    let report = store.json(&["report", "--json"]);
    let five: serde_json::Map<String, Value> =
        ["families", "individuals", "men", "women", "children"]
            .iter()
            .map(|k| (k.to_string(), report[*k].clone()))
            .collect();
    assert_eq!(
        Value::from(five),
        json!({"families": 2, "individuals": 13, "men": 2, "women": 3, "children": 8})
    );
}

#[test]
fn edit_of_an_unknown_id_or_with_a_bad_value_exits_2_and_changes_nothing() {
    let store = Store::init();
    let id = add_one(&store);
    let before = store.json(&["show", "--json", &id]);
    let list_before = store.json(&["list", "--json"]);

    let unknown = "0190f5a0-0000-7000-8000-000000000000";
    let run = store.run(&["edit", unknown, "--notes", "x"]).expect_code(2);
    assert!(
        run.stderr.contains(&format!("no family with id {unknown}")),
        "{}",
        run.stderr
    );
    let run = store
        .run(&["edit", "zzzzzz", "--notes", "x"])
        .expect_code(2);
    assert!(
        run.stderr.contains("no family with id zzzzzz"),
        "{}",
        run.stderr
    );
    let run = store
        .run(&["edit", unknown, "--males", "1,0,0,0,0"])
        .expect_code(2);
    assert!(run.stderr.contains("no family with id"), "{}", run.stderr);

    let bad_edits: [&[&str]; 7] = [
        &["--crossing", "wagah"],
        &["--date", "2999-01-01"],
        &["--date", "17/09/2025"],
        &["--males", "0,0,0,0,0", "--females", "0,0,0,0,0"],
        // A name without consent.
        &["--head-name", "Wali Khan"],
        // female-headed with the male head already recorded.
        &["--vulnerability", "female-headed"],
        // A good value beside a bad one: neither is applied.
        &["--notes", "changed", "--return-type", "teleported"],
    ];
    for flags in bad_edits {
        let mut args = vec!["edit", id.as_str()];
        args.extend(flags);
        let run = store.run(&args).expect_code(2);
        assert!(run.stderr.contains("  - "), "{flags:?}: {}", run.stderr);
        assert!(!run.stderr.contains("Wali"), "{}", run.stderr);
        assert_eq!(store.json(&["show", "--json", &id]), before, "{flags:?}");
    }
    // No field at all.
    let run = store.run(&["edit", &id]).expect_code(2);
    assert!(run.stderr.contains("nothing to change"), "{}", run.stderr);
    assert_eq!(store.json(&["list", "--json"]), list_before);
}

#[test]
fn delete_removes_from_list_and_report_and_keeps_a_tombstone() {
    let store = Store::init();
    let keep = add_one(&store);
    let gone = add_one(&store);
    let report_one = |s: &Store| Totals::from_json(&s.json(&["report", "--json"]));
    assert_eq!(report_one(&store).families, 2);

    let run = store.run(&["delete", &gone]).expect_code(0);
    assert!(run.stdout.contains("deleted"), "{}", run.stdout);

    let list = store.json(&["list", "--json"]);
    let ids: Vec<&str> = as_array(&list)
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [keep.as_str()]);
    assert!(as_array(&list).iter().all(|r| r.get("deleted").is_none()));
    assert_eq!(
        report_one(&store),
        Totals {
            families: 1,
            individuals: 6,
            men: 1,
            women: 1,
            children: 4
        }
    );

    let all = store.json(&["list", "--deleted", "--json"]);
    let all = as_array(&all);
    assert_eq!(all.len(), 2);
    for r in all {
        let id = r["id"].as_str().unwrap();
        assert_eq!(r["deleted"], json!(id == gone), "{r}");
    }
    assert_eq!(
        store.json(&["show", "--json", &gone])["deleted"],
        json!(true)
    );
    assert!(store.ok(&["list", "--deleted"]).contains("deleted"));

    let run = store.run(&["delete", &gone]).expect_code(2);
    assert!(run.stderr.contains("is deleted"), "{}", run.stderr);
    let run = store.run(&["edit", &gone, "--notes", "x"]).expect_code(2);
    assert!(run.stderr.contains("is deleted"), "{}", run.stderr);
    let run = store
        .run(&["delete", "0190f5a0-0000-7000-8000-000000000000"])
        .expect_code(2);
    assert!(run.stderr.contains("no family with id"), "{}", run.stderr);
    assert_eq!(report_one(&store).families, 1);

    // A deleted family is not exported.
    let csv = store.ok(&["export", "--format", "csv"]);
    assert!(csv.contains(&keep));
    assert!(!csv.contains(&gone));
}

// ====================================================================
// export and import
// ====================================================================

/// A populated store with one edit and one delete on top.
fn populated_and_changed() -> (Store, Vec<Gen>) {
    let (store, gens) = populated();
    let list = store.json(&["list", "--json"]);
    let records = as_array(&list);
    let first = records[0]["id"].as_str().unwrap().to_string();
    let second = records[1]["id"].as_str().unwrap().to_string();
    store.ok(&["edit", &first, "--notes", "edited, after \"import\""]);
    store.ok(&["delete", &second]);
    (store, gens)
}

#[track_caller]
fn assert_same_store(a: &Store, b: &Store) {
    assert_eq!(
        a.json(&["report", "--json"]),
        b.json(&["report", "--json"]),
        "report"
    );
    for by in ["crossing", "date", "destination"] {
        assert_eq!(
            a.json(&["report", "--json", "--by", by]),
            b.json(&["report", "--json", "--by", by]),
            "report --by {by}"
        );
    }
    let la = a.json(&["list", "--json"]);
    let lb = b.json(&["list", "--json"]);
    assert_eq!(as_array(&la).len(), as_array(&lb).len());
    assert_eq!(la, lb, "list --json");
}

#[test]
fn csv_export_then_import_into_a_fresh_store_gives_the_same_store() {
    let (a, gens) = populated_and_changed();
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("export.csv");
    let run = a
        .run(&["export", "--format", "csv", "--out", file.to_str().unwrap()])
        .expect_code(0);
    let n = gens.len() - 1;
    assert!(
        run.stderr.contains(&format!("exported {n} families")),
        "{}",
        run.stderr
    );
    // The header names the columns, in order.
    let text = std::fs::read_to_string(&file).unwrap();
    let header = text.lines().next().unwrap();
    assert!(
        header.starts_with("id,crossing,crossed_on,return_type,departure_province,destination_province,head_name,head_sex,doc_type,doc_number,consent,m_0_4,m_5_11,m_12_17,m_18_59,m_60_plus,f_0_4,f_5_11,f_12_17,f_18_59,f_60_plus,vulnerabilities,documentation,protection_referral,notes"),
        "{header}"
    );
    // Same as standard output.
    assert_eq!(a.ok(&["export"]), text);

    let b = Store::init();
    let summary = b.json(&["import", "--json", file.to_str().unwrap()]);
    assert_eq!(
        summary,
        json!({"added": n, "updated": 0, "unchanged": 0, "refused": []})
    );
    assert_same_store(&a, &b);

    // The same file again adds nothing.
    let again = b.json(&["import", "--json", file.to_str().unwrap()]);
    assert_eq!(
        again,
        json!({"added": 0, "updated": 0, "unchanged": n, "refused": []})
    );
    assert_same_store(&a, &b);

    // A row changed in the file updates that family, by id.
    let mut rows = csv::Reader::from_path(&file).unwrap();
    let headers = rows.headers().unwrap().clone();
    let notes_col = headers.iter().position(|h| h == "notes").unwrap();
    let mut out = csv::Writer::from_path(files.path().join("changed.csv")).unwrap();
    out.write_record(&headers).unwrap();
    let mut changed_id = String::new();
    for (i, r) in rows.records().enumerate() {
        let mut r: Vec<String> = r.unwrap().iter().map(str::to_string).collect();
        if i == 10 {
            r[notes_col] = "changed in the spreadsheet".into();
            changed_id = r[0].clone();
        }
        out.write_record(&r).unwrap();
    }
    out.flush().unwrap();
    drop(out);
    let changed = files.path().join("changed.csv");
    let summary = b.json(&["import", "--json", changed.to_str().unwrap()]);
    assert_eq!(
        summary,
        json!({"added": 0, "updated": 1, "unchanged": n - 1, "refused": []})
    );
    assert_eq!(
        b.json(&["show", "--json", &changed_id])["notes"],
        json!("changed in the spreadsheet")
    );
}

#[test]
fn jsonl_export_then_import_into_a_fresh_store_gives_the_same_store() {
    let (a, gens) = populated_and_changed();
    let n = gens.len() - 1;
    let text = a.ok(&["export", "--format", "jsonl"]);
    assert_eq!(text.lines().count(), n);
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).expect("each line is a JSON object");
        assert!(v.is_object());
    }
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("export.jsonl");
    std::fs::write(&file, &text).unwrap();

    let b = Store::init();
    // The format comes from the extension.
    let summary = b.json(&["import", "--json", file.to_str().unwrap()]);
    assert_eq!(
        summary,
        json!({"added": n, "updated": 0, "unchanged": 0, "refused": []})
    );
    assert_same_store(&a, &b);
    let again = b.json(&["import", "--json", file.to_str().unwrap()]);
    assert_eq!(
        again,
        json!({"added": 0, "updated": 0, "unchanged": n, "refused": []})
    );
    assert_same_store(&a, &b);

    // The CSV and JSON-lines exports of one store carry the same families.
    let c = Store::init();
    let csv_file = files.path().join("export.csv");
    a.ok(&["export", "--out", csv_file.to_str().unwrap()]);
    c.ok(&["import", csv_file.to_str().unwrap()]);
    assert_same_store(&b, &c);
}

#[test]
fn rows_without_ids_are_not_added_twice_but_identical_rows_are_two_families() {
    let store = Store::init();
    let gens = generate_many(42, 3);
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("no-ids.csv");
    // Rows 0, 1, 0, 2: the first family appears twice in the file.
    let rows = [&gens[0], &gens[1], &gens[0], &gens[2]]
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    write_csv(&file, &rows);

    let first = store.json(&["import", "--json", file.to_str().unwrap()]);
    assert_eq!(
        first,
        json!({"added": 4, "updated": 0, "unchanged": 0, "refused": []})
    );
    let list = store.json(&["list", "--json"]);
    assert_eq!(
        sorted_texts(as_array(&list).iter().map(fields_only)),
        sorted_texts(rows.iter().map(Gen::expected_record))
    );

    let second = store.json(&["import", "--json", file.to_str().unwrap()]);
    assert_eq!(
        second,
        json!({"added": 0, "updated": 0, "unchanged": 4, "refused": []})
    );
    assert_eq!(store.json(&["list", "--json"]), list);

    // The same rows in another store get the same ids.
    let other = Store::init();
    other.ok(&["import", file.to_str().unwrap()]);
    let ids = |l: &Value| -> Vec<String> {
        as_array(l)
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&other.json(&["list", "--json"])), ids(&list));

    // Without --json, a one-line summary.
    let run = store
        .run(&["import", file.to_str().unwrap()])
        .expect_code(0);
    assert!(
        run.stdout.contains("0 new") && run.stdout.contains("4 unchanged"),
        "{}",
        run.stdout
    );
}

#[test]
fn bad_rows_are_reported_by_line_and_the_good_rows_saved() {
    let store = Store::init();
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("mixed.csv");
    let header = "crossing,crossed_on,return_type,departure_province,destination_province,\
                  m_0_4,m_5_11,m_12_17,m_18_59,m_60_plus,f_0_4,f_5_11,f_12_17,f_18_59,f_60_plus,\
                  head_name,consent,notes,id";
    let text = [
        // line 1
        header,
        // line 2: good
        "torkham,2025-01-02,deported,PK-KP,AF-NAN,1,0,0,1,0,0,1,0,1,0,,,,",
        // line 3: unknown crossing
        "wagah,2025-01-02,deported,PK-KP,AF-NAN,1,0,0,1,0,0,1,0,1,0,,,,",
        // line 4: good
        "Chaman,2025-01-03,assisted,Punjab,Kabul,0,0,0,1,0,0,0,0,1,0,,,,",
        // line 5: a future date
        "torkham,2999-01-02,deported,PK-KP,AF-NAN,1,0,0,1,0,0,1,0,1,0,,,,",
        // line 6: not an id
        "torkham,2025-01-02,deported,PK-KP,AF-NAN,1,0,0,1,0,0,1,0,1,0,,,,nope",
        // lines 7 and 8: good, with a two-line note
        "badini,2025-02-03,spontaneous,unknown,undecided,0,0,0,1,0,0,0,0,0,0,,,\"two",
        "lines\",",
        // line 9: nobody in the household
        "torkham,2025-01-02,deported,PK-KP,AF-NAN,0,0,0,0,0,0,0,0,0,0,,,,",
        // line 10: a name without consent
        "torkham,2025-01-02,deported,PK-KP,AF-NAN,1,0,0,1,0,0,1,0,1,0,Hidden Person,no,,",
        // line 11: good
        "kharlachi,2025-03-04,deported,PK-KP,AF-PIA,0,0,0,1,0,0,0,0,0,0,,,,",
        // line 12: too few columns
        "torkham,2025-01-02",
    ]
    .join("\n")
        + "\n";
    std::fs::write(&file, text).unwrap();

    let run = store
        .run(&["import", file.to_str().unwrap()])
        .expect_code(2);
    let bad = [
        (3, "crossing: 'wagah' is not a known crossing"),
        (5, "crossed_on: 2999-01-02 is in the future"),
        (6, "id: 'nope' is not a record id"),
        (9, "members: household size is 0"),
        (10, "head_name: cannot be stored without consent"),
        (12, "return_type: is required"),
    ];
    for (line, reason) in bad {
        let wanted = format!("line {line}: ");
        let got = run
            .stderr
            .lines()
            .find(|l| l.starts_with(&wanted))
            .unwrap_or_else(|| panic!("no report of line {line} in:\n{}", run.stderr));
        assert!(got.contains(reason), "line {line}: {got}");
    }
    for good in [2, 4, 7, 8, 11] {
        assert!(
            !run.stderr.contains(&format!("line {good}:")),
            "good line {good} reported:\n{}",
            run.stderr
        );
    }
    assert!(!run.stderr.contains("Hidden Person"), "{}", run.stderr);
    assert!(
        run.stderr.contains("6 row(s) were refused"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("4 new"), "{}", run.stdout);

    let list = store.json(&["list", "--json"]);
    let mut crossings: Vec<&str> = as_array(&list)
        .iter()
        .map(|r| r["crossing"].as_str().unwrap())
        .collect();
    crossings.sort();
    assert_eq!(crossings, ["badini", "chaman", "kharlachi", "torkham"]);
    let badini = as_array(&list)
        .iter()
        .find(|r| r["crossing"] == "badini")
        .unwrap();
    assert_eq!(badini["notes"], json!("two\nlines"));

    // Importing again: the good rows are not added twice, the bad ones listed again.
    let run = store
        .run(&["import", "--json", file.to_str().unwrap()])
        .expect_code(2);
    let summary = run.json();
    assert_eq!(summary["added"], 0);
    assert_eq!(summary["unchanged"], 4);
    let lines: Vec<u64> = summary["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 5, 6, 9, 10, 12]);
    assert_eq!(as_array(&store.json(&["list", "--json"])).len(), 4);
}

// ====================================================================
// crashes and concurrency
// ====================================================================

/// `list --json`, retried while the store is still locked by a process that
/// just died.
fn list_after_crash(store: &Store) -> Value {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let run = store.run(&["list", "--json"]);
        if run.code == 0 {
            return run.json();
        }
        assert!(
            Instant::now() < deadline,
            "the store did not open after the crash:\n{}",
            run.stderr
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn kill_9_during_a_bulk_import_keeps_every_saved_chunk() {
    const ROWS: usize = 30_000;
    const CHUNK: u64 = 2000;
    let store = Store::init();
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("bulk.csv");
    let gens = generate_many(0xB01C, ROWS);
    write_csv(&file, &gens);

    let mut child = store
        .command(&["import", file.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut saved = None;
    let mut seen = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if let Some(n) = line
            .strip_prefix("saved ")
            .and_then(|r| r.strip_suffix(" rows"))
        {
            saved = Some(n.replace(',', "").parse::<u64>().expect("saved N rows"));
            break;
        }
        seen.push(line);
    }
    // Kill it mid-import (if it is still running, which it most likely is).
    child.kill().unwrap();
    child.wait().unwrap();
    let saved = saved.unwrap_or_else(|| panic!("no 'saved N rows' line; stderr: {seen:?}"));
    assert!(saved >= CHUNK, "saved {saved}");

    let list = list_after_crash(&store);
    let records = as_array(&list);
    let held = records.len() as u64;
    assert!(held >= saved, "saved {saved} rows but only {held} are held");
    // Chunks are atomic: whole chunks or the whole file.
    assert!(
        held.is_multiple_of(CHUNK) || held == ROWS as u64,
        "{held} families held: not whole chunks"
    );
    // Every family held is valid and one of the file's.
    let today = today();
    let expected: std::collections::HashSet<String> = gens
        .iter()
        .map(|g| g.expected_record().to_string())
        .collect();
    for r in records {
        let family: returnee_shared::Family =
            serde_json::from_value(r.clone()).expect("a family record");
        family.fields.check(today).expect("a valid family");
        assert!(
            expected.contains(&fields_only(r).to_string()),
            "a family not from the file: {r}"
        );
    }
    assert_eq!(
        Totals::from_json(&store.json(&["report", "--json"])).families,
        held
    );

    // Importing the file again completes it without adding anything twice.
    let summary = store.json(&["import", "--json", file.to_str().unwrap()]);
    assert_eq!(
        summary,
        json!({"added": ROWS as u64 - held, "updated": 0, "unchanged": held, "refused": []})
    );
    assert_eq!(
        Totals::from_json(&store.json(&["report", "--json"])),
        Totals::of(&gens)
    );
}

#[test]
fn a_second_process_is_told_the_store_is_in_use() {
    let store = Store::init();
    add_one(&store);
    let held = returnee_store::laptop::LocalStore::open(store.path()).expect("open in-process");
    for args in [
        &["list"][..],
        &["report", "--json"],
        &["add", "--crossing", "torkham"],
    ] {
        let run = store.run(args).expect_code(1);
        assert!(
            run.stderr.contains("in use"),
            "{args:?}: stderr does not say the store is in use:\n{}",
            run.stderr
        );
        assert!(run.stderr.contains(&store.path().display().to_string()));
    }
    drop(held);
    assert_eq!(as_array(&store.json(&["list", "--json"])).len(), 1);
}

// ====================================================================
// JSON contract
// ====================================================================

#[test]
fn the_json_output_has_the_documented_keys() {
    let store = Store::init();
    add_one(&store);
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {v}"))
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    };
    // The five totals, the ten sex × age bands (five each), and the first
    // and last crossing date counted.
    let totals = [
        "children",
        "families",
        "females",
        "individuals",
        "males",
        "men",
        "women",
    ];
    let with_dates = {
        let mut k = totals.to_vec();
        k.extend(["first", "last"]);
        k.sort();
        k
    };

    let report = store.json(&["report", "--json"]);
    assert_eq!(keys(&report), with_dates);
    for k in ["children", "families", "individuals", "men", "women"] {
        assert!(report[k].is_u64(), "{k}");
    }
    for k in ["males", "females"] {
        assert_eq!(as_array(&report[k]).len(), 5);
        assert!(as_array(&report[k]).iter().all(Value::is_u64));
    }

    let report = store.json(&["report", "--json", "--by", "crossing"]);
    let mut with_groups: Vec<&str> = with_dates.clone();
    with_groups.extend(["by", "groups"]);
    with_groups.sort();
    assert_eq!(keys(&report), with_groups);
    let groups = as_array(&report["groups"]);
    assert_eq!(groups.len(), 1);
    let mut group_keys: Vec<&str> = totals.to_vec();
    group_keys.extend(["key", "keys"]);
    group_keys.sort();
    assert_eq!(keys(&groups[0]), group_keys);
    assert_eq!(groups[0]["key"], "torkham");

    // List records: the CSV column names, with the ten counts as `members`.
    let list = store.json(&["list", "--json"]);
    let records = as_array(&list);
    assert_eq!(records.len(), 1);
    let mut expected: Vec<&str> = vec![
        "id",
        "crossing",
        "crossed_on",
        "return_type",
        "departure_province",
        "destination_province",
        "head_name",
        "head_sex",
        "doc_type",
        "doc_number",
        "consent",
        "members",
        "vulnerabilities",
        "documentation",
        "protection_referral",
        "notes",
        "recorded_by",
        "recorded_at",
    ];
    expected.sort();
    assert_eq!(keys(&records[0]), expected);
    assert_eq!(keys(&records[0]["members"]), ["females", "males"]);
    assert_eq!(records[0]["members"]["males"], json!([1, 1, 0, 1, 0]));
    assert!(
        records[0]["recorded_by"]
            .as_str()
            .unwrap()
            .parse::<uuid::Uuid>()
            .is_ok()
    );
    assert!(
        records[0]["recorded_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .is_ok()
    );
    // Every CSV column but the ten counts is a key of the record.
    let export = store.ok(&["export"]);
    let header = export.lines().next().unwrap();
    for col in header.split(',') {
        let is_count = col.starts_with("m_") || col.starts_with("f_");
        assert_eq!(
            records[0].get(col).is_some(),
            !is_count,
            "CSV column {col} vs list --json"
        );
    }

    // With --deleted each record also says whether it is deleted.
    let list = store.json(&["list", "--json", "--deleted"]);
    let mut with_deleted = expected.clone();
    with_deleted.push("deleted");
    with_deleted.sort();
    assert_eq!(keys(&as_array(&list)[0]), with_deleted);
}
