//! The generated families (see the distribution in `main.rs`).

use super::*;

pub(crate) const MALE_GIVEN: [&str; 60] = [
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

pub(crate) const FEMALE_GIVEN: [&str; 20] = [
    "Fatima", "Zainab", "Maryam", "Khadija", "Gulalai", "Malalai", "Nazia", "Shabana", "Bibigul",
    "Zarghona", "Palwasha", "Nasrin", "Parwana", "Shukria", "Freshta", "Mahbooba", "Rahima",
    "Sima", "Hasina", "Lailuma",
];

pub(crate) const FAMILY_NAMES: [&str; 60] = [
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
pub(crate) const VARIANTS: [(&str, &str); 20] = [
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

pub(crate) const NOTE_PHRASES: [&str; 16] = [
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
pub(crate) fn weighted<'a, T>(rng: &mut Rng, items: &'a [(T, u64)]) -> &'a T {
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

pub(crate) fn digits(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.below(10) as u8))
        .collect()
}

pub(crate) fn letter(rng: &mut Rng) -> char {
    char::from(b'A' + rng.below(26) as u8)
}

/// The same name, spelled a little differently.
pub(crate) fn spelling_variant(name: &str, rng: &mut Rng) -> String {
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

pub(crate) fn note(rng: &mut Rng) -> String {
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

pub(crate) fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 9, 1).expect("a date")
}

/// One generated family as a CSV row (no id: import derives it).
pub(crate) fn family_row(rng: &mut Rng, crossing: Option<&str>) -> CsvRow {
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
pub(crate) fn near_duplicate(of: &CsvRow, rng: &mut Rng) -> CsvRow {
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
pub(crate) struct Generated {
    pub(crate) families: usize,
    pub(crate) near_duplicates: usize,
    pub(crate) csv_bytes: u64,
    pub(crate) json_bytes: u64,
    /// A head's name among the families (the `find` phase looks it up).
    pub(crate) sample_name: Option<String>,
}

/// Writes `n` families (`crossing`: all at that one) as an import CSV, in
/// date order if `sorted`.
pub(crate) fn generate(
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
        sample_name: None,
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
        if rows.len() >= n / 2 && g.sample_name.is_none() {
            g.sample_name.clone_from(&row.head_name);
        }
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
