//! Reports and exports as an information manager uses them, through the
//! real `returnee` binary: a few hundred families typed with everyday
//! province spellings, reported by date × crossing × return type in every
//! format and compared with sums computed here; the HXL tags against the
//! README's table; the sitrep sentence; a chart; shareable outputs checked
//! on their bytes; and the server's exports, scoped and audited.

use std::collections::BTreeMap;
use std::path::Path;

use calamine::{Reader, Xlsx};
use chrono::NaiveDate;
use returnee_tests::cluster::TestServer;
use returnee_tests::{Rng, Store};

/// One generated family, as typed and as it must be stored.
struct Fam {
    crossing: &'static str,
    date: NaiveDate,
    return_type: &'static str,
    /// (as typed, stored code)
    departure: (&'static str, &'static str),
    destination: (&'static str, &'static str),
    males: [u64; 5],
    females: [u64; 5],
    name: String,
    doc: String,
    note: String,
}

const CROSSINGS: [&str; 3] = ["torkham", "chaman", "ghulam-khan"];
const TYPES: [&str; 3] = ["spontaneous", "deported", "assisted"];
const DEPARTURES: [(&str, &str); 6] = [
    ("KPK", "PK-KP"),
    ("nwfp", "PK-KP"),
    ("FATA", "PK-KP"),
    ("Baluchistan", "PK-BA"),
    ("Azad Kashmir", "PK-JK"),
    ("Sind", "PK-SD"),
];
const DESTINATIONS: [(&str, &str); 7] = [
    ("Paktia", "AF-PIA"),
    ("Jawzjan", "AF-JOW"),
    ("Sar-e Pol", "AF-SAR"),
    ("maidan wardak", "AF-WAR"),
    ("Hilmand", "AF-HEL"),
    ("Ningarhar", "AF-NAN"),
    ("Kabul", "AF-KAB"),
];

fn generate(seed: u64, n: usize, crossings: &[&'static str]) -> Vec<Fam> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let mut males = [0; 5];
            let mut females = [0; 5];
            for b in 0..5 {
                males[b] = rng.below(3);
                females[b] = rng.below(3);
            }
            females[3] += 1;
            Fam {
                crossing: crossings[rng.below(crossings.len() as u64) as usize],
                date: NaiveDate::from_ymd_opt(2026, 9, 1).unwrap()
                    + chrono::Days::new(rng.below(12)),
                return_type: TYPES[rng.below(3) as usize],
                departure: *rng.pick(&DEPARTURES),
                destination: *rng.pick(&DESTINATIONS),
                males,
                females,
                name: format!("Zarmina Qaderi{i:04}"),
                doc: format!("XQ{:07}", 1_000_000 + i),
                note: format!("needs tent near bazaar {i:04}"),
            }
        })
        .collect()
}

/// Writes the families as an import CSV.
fn import_file(dir: &Path, fams: &[Fam]) -> std::path::PathBuf {
    let path = dir.join("families.csv");
    let mut w = csv::Writer::from_path(&path).unwrap();
    let mut header = vec![
        "crossing",
        "crossed_on",
        "return_type",
        "departure_province",
        "destination_province",
        "head_name",
        "doc_type",
        "doc_number",
        "consent",
        "notes",
    ];
    header.extend([
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
    ]);
    w.write_record(&header).unwrap();
    for f in fams {
        let mut row = vec![
            f.crossing.to_string(),
            f.date.to_string(),
            f.return_type.to_string(),
            f.departure.0.to_string(),
            f.destination.0.to_string(),
            f.name.clone(),
            "tazkira".into(),
            f.doc.clone(),
            "yes".into(),
            f.note.clone(),
        ];
        row.extend(f.males.iter().chain(&f.females).map(u64::to_string));
        w.write_record(&row).unwrap();
    }
    w.flush().unwrap();
    path
}

type Key = (String, String, String);
/// families, individuals, men, women, children, then the ten bands.
type Counts = [u64; 15];

/// The sums by date × crossing × return type, computed here.
fn expected(fams: &[Fam]) -> BTreeMap<Key, Counts> {
    let mut m: BTreeMap<Key, Counts> = BTreeMap::new();
    for f in fams {
        let c = m
            .entry((
                f.date.to_string(),
                f.crossing.to_string(),
                f.return_type.to_string(),
            ))
            .or_default();
        c[0] += 1;
        c[1] += f.males.iter().sum::<u64>() + f.females.iter().sum::<u64>();
        c[2] += f.males[3] + f.males[4];
        c[3] += f.females[3] + f.females[4];
        c[4] += f.males[..3].iter().sum::<u64>() + f.females[..3].iter().sum::<u64>();
        for b in 0..5 {
            c[5 + b] += f.males[b];
            c[10 + b] += f.females[b];
        }
    }
    m
}

const COUNT_NAMES: [&str; 15] = [
    "families",
    "individuals",
    "men",
    "women",
    "children",
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
];

/// Rows of a CSV (header first) as maps from column to cell.
fn csv_maps(rows: &[Vec<String>]) -> Vec<BTreeMap<String, String>> {
    rows[1..]
        .iter()
        .map(|r| rows[0].iter().cloned().zip(r.iter().cloned()).collect())
        .collect()
}

fn parse_csv(bytes: &[u8]) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes)
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

fn by_key(maps: &[BTreeMap<String, String>]) -> BTreeMap<Key, Counts> {
    maps.iter()
        .map(|m| {
            let mut c = [0; 15];
            for (i, name) in COUNT_NAMES.iter().enumerate() {
                c[i] = m[*name]
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}: {:?}", m[*name]));
            }
            (
                (
                    m["date"].clone(),
                    m["crossing"].clone(),
                    m["return_type"].clone(),
                ),
                c,
            )
        })
        .collect()
}

/// The README's HXL table, column → hashtag.
fn documented_tags() -> BTreeMap<String, String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let section = readme
        .split("### HXL hashtags")
        .nth(1)
        .expect("README has the HXL hashtags section");
    let mut out = BTreeMap::new();
    for line in section.lines().take_while(|l| !l.starts_with("## ")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[1].starts_with('`') {
            continue;
        }
        let ticks = |s: &str| -> Vec<String> {
            s.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        };
        let cols = ticks(cells[1]);
        let tags = ticks(cells[2]);
        if cells[1].contains('…') {
            // `m_0_4` … `m_60_plus` | `#… +age0_4`, `+age5_11`, …
            let prefix = &cols[0][..2];
            let base = tags[0].rsplit_once(' ').unwrap().0.to_string();
            let first_age = tags[0].rsplit_once(' ').unwrap().1.to_string();
            let ages: Vec<String> = std::iter::once(first_age)
                .chain(tags[1..].iter().cloned())
                .collect();
            for (band, age) in ["0_4", "5_11", "12_17", "18_59", "60_plus"]
                .iter()
                .zip(ages)
            {
                out.insert(format!("{prefix}{band}"), format!("{base} {age}"));
            }
        } else {
            out.insert(cols[0].clone(), tags[0].clone());
        }
    }
    out
}

#[test]
fn reports_in_every_format_equal_sums_computed_independently() {
    let store = Store::init();
    let fams = generate(19, 300, &CROSSINGS);
    let file = import_file(store.path(), &fams);
    let summary = store.json(&["import", "--json", file.to_str().unwrap()]);
    assert_eq!(summary["added"], 300, "{summary}");

    // Every alias typed was stored as its code.
    let listed = store.json(&["list", "--json"]);
    let mut stored: Vec<(String, String)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["departure_province"].as_str().unwrap().to_string(),
                f["destination_province"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut wanted: Vec<(String, String)> = fams
        .iter()
        .map(|f| (f.departure.1.to_string(), f.destination.1.to_string()))
        .collect();
    stored.sort();
    wanted.sort();
    assert_eq!(stored, wanted);

    let want = expected(&fams);
    let by = ["report", "--by", "date,crossing,return-type"];
    let with =
        |extra: &[&str]| -> Vec<String> { by.iter().chain(extra).map(|s| s.to_string()).collect() };

    // JSON: the existing keys, and the bands.
    let json = store.json(&with(&["--json"]));
    assert_eq!(json["families"], 300);
    let got: BTreeMap<Key, Counts> = json["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let k = g["keys"].as_array().unwrap();
            let s = |i: usize| k[i].as_str().unwrap().to_string();
            let mut c = [0; 15];
            for (i, name) in COUNT_NAMES[..5].iter().enumerate() {
                c[i] = g[*name].as_u64().unwrap();
            }
            for b in 0..5 {
                c[5 + b] = g["males"][b].as_u64().unwrap();
                c[10 + b] = g["females"][b].as_u64().unwrap();
            }
            ((s(0), s(1), s(2)), c)
        })
        .collect();
    assert_eq!(got, want, "json");

    // CSV.
    let csv_out = store.run(&with(&["--format", "csv"])).expect_code(0).stdout;
    let rows = parse_csv(csv_out.as_bytes());
    assert_eq!(by_key(&csv_maps(&rows)), want, "csv");
    // --excel: a byte-order mark first.
    let out = store.path().join("excel.csv");
    store.ok(&with(&[
        "--format",
        "csv",
        "--excel",
        "--out",
        out.to_str().unwrap(),
    ]));
    let bytes = std::fs::read(&out).unwrap();
    assert!(bytes.starts_with("\u{feff}".as_bytes()));
    assert_eq!(&bytes[3..], csv_out.as_bytes());

    // HXL: the same rows under a tag row that is the README's table.
    let hxl = store.run(&with(&["--format", "hxl"])).expect_code(0).stdout;
    let rows = parse_csv(hxl.as_bytes());
    let documented = documented_tags();
    assert_eq!(documented.len(), 12 + 15 + 3, "{documented:?}");
    for (col, tag) in rows[0].iter().zip(&rows[1]) {
        assert_eq!(Some(tag), documented.get(col), "the tag of {col}");
    }
    let mut without_tags = rows.clone();
    without_tags.remove(1);
    assert_eq!(by_key(&csv_maps(&without_tags)), want, "hxl");

    // HXL long form: one row per group, sex and band; the tags documented.
    let long = store
        .run(&with(&["--format", "hxl-long"]))
        .expect_code(0)
        .stdout;
    let rows = parse_csv(long.as_bytes());
    for (col, tag) in rows[0].iter().zip(&rows[1]) {
        assert_eq!(Some(tag), documented.get(col), "the tag of {col}");
    }
    let mut long_sums: BTreeMap<Key, Counts> = BTreeMap::new();
    let bands = ["0-4", "5-11", "12-17", "18-59", "60+"];
    let header = rows[0].clone();
    for r in &rows[2..] {
        let m: BTreeMap<&str, &str> = header
            .iter()
            .map(String::as_str)
            .zip(r.iter().map(String::as_str))
            .collect();
        let band = bands.iter().position(|b| *b == m["age"]).unwrap();
        let at = if m["sex"] == "m" { 5 } else { 10 } + band;
        let c = long_sums
            .entry((
                m["date"].into(),
                m["crossing"].into(),
                m["return_type"].into(),
            ))
            .or_default();
        c[at] += m["population"].parse::<u64>().unwrap();
    }
    assert_eq!(rows.len() - 2, want.len() * 10);
    for (k, c) in &want {
        assert_eq!(long_sums[k][5..], c[5..], "hxl-long {k:?}");
    }

    // XLSX, read back with calamine: the breakdown, the totals, "About".
    let xlsx = store.path().join("report.xlsx");
    store.ok(&with(&[
        "--format",
        "xlsx",
        "--out",
        xlsx.to_str().unwrap(),
    ]));
    let mut book: Xlsx<_> = calamine::open_workbook(&xlsx).unwrap();
    let names = book.sheet_names();
    assert!(names.contains(&"About".to_string()), "{names:?}");
    for single in ["By date", "By crossing", "By return-type"] {
        assert!(names.contains(&single.to_string()), "{single} in {names:?}");
    }
    let sheet = book
        .worksheet_range("By date+crossing+return-type")
        .unwrap();
    let rows: Vec<Vec<String>> = sheet
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    assert_eq!(by_key(&csv_maps(&rows)), want, "xlsx");
    let totals = book.worksheet_range("Totals").unwrap();
    let t: Vec<Vec<String>> = totals
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    assert_eq!(t[1][0], "300");
    let about = book.worksheet_range("About").unwrap();
    let about: Vec<String> = about
        .rows()
        .map(|r| {
            r.iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join("=")
        })
        .collect();
    assert!(
        about.iter().any(|l| l.starts_with("families=300")),
        "{about:?}"
    );
    assert!(
        about.iter().any(|l| l.starts_with("source=laptop ")),
        "{about:?}"
    );

    // --share: small cells withheld, everything else as counted.
    let shared = store
        .run(&with(&["--format", "csv", "--share"]))
        .expect_code(0)
        .stdout;
    let maps = csv_maps(&parse_csv(shared.as_bytes()));
    assert_eq!(maps.len(), want.len());
    for m in &maps {
        let c = &want[&(
            m["date"].clone(),
            m["crossing"].clone(),
            m["return_type"].clone(),
        )];
        for (i, name) in COUNT_NAMES.iter().enumerate() {
            let shown = if (1..5).contains(&c[i]) {
                "<5".to_string()
            } else {
                c[i].to_string()
            };
            assert_eq!(m[*name], shown, "{name}");
        }
    }
    assert!(shared.contains("<5"));

    // A shareable export names no one, on the bytes, in every format.
    let originals: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    for format in ["csv", "jsonl", "xlsx"] {
        let out = store.path().join(format!("share.{format}"));
        store.ok(&[
            "export",
            "--share",
            "--format",
            format,
            "--out",
            out.to_str().unwrap(),
        ]);
        let text = if format == "xlsx" {
            let mut book: Xlsx<_> = calamine::open_workbook(&out).unwrap();
            let range = book.worksheet_range("Families").unwrap();
            assert_eq!(range.rows().count(), 301);
            range
                .rows()
                .flat_map(|r| r.iter().map(|c| c.to_string()))
                .collect::<Vec<_>>()
                .join(",")
        } else {
            String::from_utf8(std::fs::read(&out).unwrap()).unwrap()
        };
        for f in &fams {
            for secret in [&f.name, &f.doc, &f.note] {
                assert!(!text.contains(secret.as_str()), "{format} shows {secret}");
            }
        }
        for id in &originals {
            assert!(!text.contains(id.as_str()), "{format} shows a record id");
        }
        assert!(
            text.contains("tazkira"),
            "{format} keeps what does not name anyone"
        );
    }
    // The unshared export does carry them (the check above can fail).
    let full = store.ok(&["export", "--format", "csv"]);
    assert!(full.contains(&fams[0].name) && full.contains(&fams[0].doc));
}

#[test]
fn summary_chart_and_bad_ranges() {
    let store = Store::init();
    for (date, rt, from, to, males, females) in [
        (
            "2026-09-17",
            "deported",
            "KPK",
            "Ningarhar",
            "1,1,0,1,0",
            "0,1,0,1,0",
        ),
        (
            "2026-09-20",
            "deported",
            "Baluchistan",
            "Kabul",
            "0,2,1,1,0",
            "1,0,0,1,1",
        ),
        (
            "2026-10-02",
            "spontaneous",
            "nwfp",
            "Ningarhar",
            "0,0,0,2,0",
            "0,0,1,1,0",
        ),
        (
            "2026-11-03",
            "assisted",
            "FATA",
            "Jawzjan",
            "2,0,0,1,1",
            "0,1,0,1,0",
        ),
    ] {
        store.ok(&[
            "add",
            "--crossing",
            "torkham",
            "--date",
            date,
            "--return-type",
            rt,
            "--from",
            from,
            "--to",
            to,
            "--males",
            males,
            "--females",
            females,
        ]);
    }
    let sentence = store.ok(&["report", "--summary"]);
    assert_eq!(
        sentence.trim_end(),
        "Between 17 September and 3 November 2026, 4 families (22 individuals: 6 men, \
         5 women and 11 children) returned from Pakistan. 50 % of the families were deported. \
         Most came from Khyber Pakhtunkhwa (75 %) and Balochistan (25 %) and were going to \
         Nangarhar (50 %), Jowzjan (25 %) and Kabul (25 %)."
    );
    let shared = store.ok(&["report", "--summary", "--share"]);
    assert!(shared.contains("fewer than 5 families"), "{shared}");
    // A threshold without --share would be ignored: it is refused instead.
    let alone = store.run(&["report", "--small-cells", "3"]).expect_code(2);
    assert!(alone.stderr.contains("--share"), "{}", alone.stderr);

    // An SVG chart, well-formed, one bar per day.
    let svg = store.path().join("daily.svg");
    store.ok(&["report", "--chart", "daily", "--out", svg.to_str().unwrap()]);
    let text = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let labels: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    for day in ["2026-09-17", "2026-09-20", "2026-10-02", "2026-11-03"] {
        assert!(labels.contains(&day), "{day} in {labels:?}");
    }
    // On no terminal, without --out: bars as text.
    let bars = store.ok(&["report", "--chart", "destination"]);
    assert!(
        bars.lines()
            .any(|l| l.starts_with("Nangarhar") && l.ends_with(" 2")),
        "{bars}"
    );
    // A PNG, read back by the png crate: one run of bar colour per bar
    // across the plot, and text drawn (dark pixels) with the built-in font.
    let png = store.path().join("daily.png");
    let run = store
        .run(&["report", "--chart", "daily", "--out", png.to_str().unwrap()])
        .expect_code(0);
    let drawn: usize = run
        .stderr
        .split("chart (")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", run.stderr));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let (w, h) = (info.width as usize, info.height as usize);
    let at = |x: usize, y: usize| &pixels[(y * w + x) * 3..(y * w + x) * 3 + 3];
    let row = h - 90;
    let runs = (0..w)
        .filter(|&x| {
            at(x, row) == [0x1f, 0x5f, 0x99] && (x == 0 || at(x - 1, row) != [0x1f, 0x5f, 0x99])
        })
        .count();
    assert_eq!(runs, drawn, "one bar per day");
    assert_eq!(drawn, 4);
    let dark = (0..w * h)
        .filter(|i| pixels[i * 3..i * 3 + 3].iter().all(|&c| c < 80))
        .count();
    assert!(dark > 500, "text drawn: {dark} dark pixels");
    let gif = store
        .run(&["report", "--chart", "daily", "--out", "x.gif"])
        .expect_code(2);
    assert!(
        gif.stderr.contains(".svg") && gif.stderr.contains(".png"),
        "{}",
        gif.stderr
    );

    // A range that ends before it starts is refused, with how to fix it.
    let bad = store
        .run(&["report", "--from", "2026-09-10", "--to", "2026-09-01"])
        .expect_code(2);
    assert!(
        bad.stderr
            .contains("ends (2026-09-01) before it starts (2026-09-10)"),
        "{}",
        bad.stderr
    );
    let bad = store
        .run(&["report", "--format", "hxl", "--excel"])
        .expect_code(2);
    assert!(bad.stderr.contains("use --format csv"), "{}", bad.stderr);
    let bad = store
        .run(&["report", "--by", "date,nowhere"])
        .expect_code(2);
    assert!(
        bad.stderr.contains("'nowhere' is not a breakdown"),
        "{}",
        bad.stderr
    );
}

#[test]
fn server_exports_are_scoped_masked_and_audited() {
    let server = TestServer::start();
    let url = server.url();
    let admin = Store::init();
    admin.ok(&["enroll", "--server", &url, "--code", &server.admin_code]);
    let fams = generate(7, 40, &["torkham", "chaman"]);
    let file = import_file(admin.path(), &fams);
    admin.ok(&["import", file.to_str().unwrap()]);
    admin.ok(&["sync"]);
    let code = admin.ok(&["admin", "code", "--role", "supervisor", "--site", "torkham"]);
    let supervisor = Store::init();
    supervisor.ok(&["enroll", "--server", &url, "--code", code.trim()]);
    let code = admin.ok(&["admin", "code", "--role", "field", "--site", "torkham"]);
    let field = Store::init();
    field.ok(&["enroll", "--server", &url, "--code", code.trim()]);

    let at_torkham: Vec<&Fam> = fams.iter().filter(|f| f.crossing == "torkham").collect();
    // The supervisor: torkham's families only, names kept, documents masked.
    let lines = supervisor.ok(&["export", "--from-server", "--format", "jsonl"]);
    let got: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), at_torkham.len());
    assert!(got.iter().all(|f| f["crossing"] == "torkham"));
    for f in &at_torkham {
        assert!(!lines.contains(&f.doc), "a full document number");
        let masked = format!("\"…{}\"", &f.doc[5..]);
        assert!(lines.contains(&masked), "{masked}");
    }
    let refused = supervisor.run(&["export", "--from-server", "--full"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("export full document numbers"),
        "{}",
        refused.stderr
    );
    let refused = field.run(&["export", "--from-server"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("may not export families"),
        "{}",
        refused.stderr
    );

    // The admin: every site, in full when asked, or shareable.
    let full = admin.ok(&["export", "--from-server", "--full", "--format", "csv"]);
    assert_eq!(parse_csv(full.as_bytes()).len(), 41);
    assert!(
        fams.iter()
            .all(|f| full.contains(&f.doc) && full.contains(&f.name))
    );
    let shared = admin.ok(&["export", "--from-server", "--share", "--crossing", "chaman"]);
    assert_eq!(parse_csv(shared.as_bytes()).len(), 41 - at_torkham.len());
    assert!(fams.iter().all(|f| !shared.contains(&f.doc)
        && !shared.contains(&f.name)
        && !shared.contains(&f.note)));

    // Each export is in the audit trail: who, filter, rows, personal data.
    let audit = admin.json(&["admin", "audit", "--json"]);
    let exports: Vec<&serde_json::Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"]["kind"] == "exported")
        .collect();
    assert_eq!(exports.len(), 3, "{audit}");
    let e = |i: usize| &exports[i]["event"];
    assert_eq!(
        (
            e(0)["rows"].as_u64(),
            e(0)["personal"].as_bool(),
            e(0)["full_documents"].as_bool()
        ),
        (Some(at_torkham.len() as u64), Some(true), Some(false))
    );
    assert_eq!(
        (e(1)["rows"].as_u64(), e(1)["full_documents"].as_bool()),
        (Some(40), Some(true))
    );
    assert_eq!(
        (e(2)["personal"].as_bool(), e(2)["filter"].as_str()),
        (Some(false), Some("crossing=chaman"))
    );
    assert_ne!(exports[0]["device"], exports[1]["device"]);

    // An export from a laptop's own store is noted there first and, at the
    // next sync, in the server's trail: once, however often it syncs.
    field.ok(&["sync"]);
    let mine = field.ok(&["export", "--format", "csv"]);
    assert_eq!(parse_csv(mine.as_bytes()).len(), at_torkham.len() + 1);
    field.ok(&[
        "export",
        "--share",
        "--format",
        "jsonl",
        "--crossing",
        "torkham",
    ]);
    let status = field.json(&["status", "--json"]);
    assert_eq!(status["exports_to_report"], 2, "{status}");
    assert!(
        field
            .ok(&["status"])
            .contains("exports     2 exports not yet in the server's audit trail")
    );
    field.ok(&["sync"]);
    field.ok(&["sync"]);
    assert_eq!(field.json(&["status", "--json"])["exports_to_report"], 0);
    let audit = admin.json(&["admin", "audit", "--json"]);
    let from_laptop: Vec<&serde_json::Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"]["kind"] == "exported" && e["event"]["on_laptop_at"].is_string())
        .collect();
    assert_eq!(from_laptop.len(), 2, "{audit}");
    assert!(
        from_laptop
            .iter()
            .all(|e| e["device"] == status["device_id"])
    );
    let e = |i: usize| &from_laptop[i]["event"];
    assert_eq!(
        (
            e(0)["format"].as_str(),
            e(0)["rows"].as_u64(),
            e(0)["personal"].as_bool(),
            e(0)["full_documents"].as_bool()
        ),
        (
            Some("csv"),
            Some(at_torkham.len() as u64),
            Some(true),
            Some(true)
        )
    );
    assert_eq!(
        (
            e(1)["format"].as_str(),
            e(1)["personal"].as_bool(),
            e(1)["filter"].as_str()
        ),
        (Some("jsonl"), Some(false), Some("crossing=torkham"))
    );
    let shown = admin.ok(&["admin", "audit"]);
    assert!(shown.contains("from the laptop's own store at"), "{shown}");

    // The server's reports in a file format, scoped the same way.
    let token = returnee_store::laptop::LocalStore::open(supervisor.path())
        .unwrap()
        .enrollment()
        .unwrap()
        .unwrap()
        .token;
    let client = returnee_cli::client::ServerClient::new(&url, Some(token), None).unwrap();
    let mut hxl = Vec::new();
    client
        .download(
            "/v1/reports",
            &[
                ("by", "crossing,destination".into()),
                ("format", "hxl".into()),
            ],
            &mut hxl,
        )
        .unwrap();
    let rows = parse_csv(&hxl);
    assert_eq!(rows[1][0], "#loc +code +crossing");
    let families: u64 = rows[2..].iter().map(|r| r[5].parse::<u64>().unwrap()).sum();
    assert_eq!(families, at_torkham.len() as u64);
    assert!(rows[2..].iter().all(|r| r[0] == "torkham"));
    let mut bad = Vec::new();
    let refused = client.download(
        "/v1/reports",
        &[("from", "2026-09-10".into()), ("to", "2026-09-01".into())],
        &mut bad,
    );
    assert!(
        matches!(
            refused,
            Err(returnee_cli::client::ClientError::Refused { status: 400, .. })
        ),
        "{refused:?}"
    );
}
