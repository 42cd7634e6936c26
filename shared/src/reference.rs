//! Reference lists: border crossings, Pakistani provinces (ISO 3166-2:PK) and
//! Afghan provinces (ISO 3166-2:AF).
//!
//! The lists are data, kept as CSV files in `shared/reference/` and compiled
//! into the binary (copied from the project's reference lists, whose README is
//! `shared/reference/README.md`). Lookups accept a code, a name or any alias,
//! in any case, with or without spaces and hyphens, and give back the
//! canonical (ISO) code that is stored. Each Afghan province also carries
//! its OCHA p-code, for exports that humanitarian tools join on.
//!
//! The order of the rows is part of the stored format: a report row keeps
//! a province as its index in its list ([`crate::ReportRow::to_bytes`]).
//! Add rows at the end, never reorder them.

use std::sync::OnceLock;

/// One row of a reference list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The canonical code that is stored (`torkham`, `PK-KP`, `AF-NAN`).
    pub code: String,
    /// The human name (`Torkham`, `Khyber Pakhtunkhwa`, `Nangarhar`).
    pub name: String,
    /// The OCHA COD-AB p-code (`AF06`), where the list has one (Afghan provinces).
    pub pcode: Option<String>,
    /// Other spellings in common use (`Ningarhar`, `KPK`, `NWFP`).
    pub aliases: Vec<String>,
}

/// A border crossing point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing {
    pub entry: Entry,
    /// ISO 3166-2:PK code of the province on the Pakistani side.
    pub pk_province: String,
    /// ISO 3166-2:AF code of the province on the Afghan side.
    pub af_province: String,
}

/// The departure value used when the province in Pakistan is not known.
pub const UNKNOWN_DEPARTURE: &str = "unknown";
/// The destination value used when the family has not decided where to go.
pub const UNDECIDED_DESTINATION: &str = "undecided";

const CROSSINGS_CSV: &str = include_str!("../reference/crossings.csv");
const PK_PROVINCES_CSV: &str = include_str!("../reference/pk-provinces.csv");
const AF_PROVINCES_CSV: &str = include_str!("../reference/af-provinces.csv");

fn rows(csv: &str) -> impl Iterator<Item = Vec<&str>> {
    csv.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(str::trim).collect())
}

/// A list with columns `code,name[,pcode],aliases` (aliases `;`-separated).
fn entries(csv: &str, has_pcode: bool) -> Vec<Entry> {
    let aliases_at = if has_pcode { 3 } else { 2 };
    rows(csv)
        .map(|r| Entry {
            code: r[0].to_string(),
            name: r[1].to_string(),
            pcode: has_pcode
                .then(|| r[2].to_string())
                .filter(|p| !p.is_empty()),
            aliases: r
                .get(aliases_at)
                .map(|a| {
                    a.split(';')
                        .map(str::trim)
                        .filter(|a| !a.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// Every crossing of the reference list, in file order.
pub fn crossings() -> &'static [Crossing] {
    static LIST: OnceLock<Vec<Crossing>> = OnceLock::new();
    LIST.get_or_init(|| {
        rows(CROSSINGS_CSV)
            .map(|r| Crossing {
                entry: Entry {
                    code: r[0].to_string(),
                    name: r[1].to_string(),
                    pcode: None,
                    aliases: Vec::new(),
                },
                pk_province: r[2].to_string(),
                af_province: r[3].to_string(),
            })
            .collect()
    })
}

/// Every province of Pakistan.
pub fn pk_provinces() -> &'static [Entry] {
    static LIST: OnceLock<Vec<Entry>> = OnceLock::new();
    LIST.get_or_init(|| entries(PK_PROVINCES_CSV, false))
}

/// Every province of Afghanistan (34).
pub fn af_provinces() -> &'static [Entry] {
    static LIST: OnceLock<Vec<Entry>> = OnceLock::new();
    LIST.get_or_init(|| entries(AF_PROVINCES_CSV, true))
}

/// Folds a code or name for comparison: lower case, with spaces, dashes,
/// underscores and slashes removed ("Sar-e Pul" and "sare pul" match).
fn fold(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_' | '/' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Every spelling a list accepts (folded code, name and aliases), with the
/// canonical code it stands for; built once.
struct Spellings(Vec<(String, &'static str)>);

impl Spellings {
    fn of(entries: &'static [Entry]) -> Spellings {
        Spellings(
            entries
                .iter()
                .flat_map(|e| {
                    [&e.code, &e.name]
                        .into_iter()
                        .chain(&e.aliases)
                        .map(|s| (fold(s), e.code.as_str()))
                })
                .collect(),
        )
    }

    fn find(&self, input: &str) -> Option<&'static str> {
        let wanted = fold(input);
        if wanted.is_empty() {
            return None;
        }
        self.0
            .iter()
            .find(|(s, _)| *s == wanted)
            .map(|(_, code)| *code)
    }
}

/// The crossing with this code or name, in any case.
pub fn crossing(input: &str) -> Option<&'static Crossing> {
    if let Some(c) = crossings().iter().find(|c| c.entry.code == input) {
        return Some(c);
    }
    static SPELLINGS: OnceLock<Vec<(String, usize)>> = OnceLock::new();
    let spellings = SPELLINGS.get_or_init(|| {
        let mut v = Vec::new();
        for (i, c) in crossings().iter().enumerate() {
            v.push((fold(&c.entry.code), i));
            v.push((fold(&c.entry.name), i));
            v.extend(c.entry.name.split('/').map(|part| (fold(part), i)));
        }
        v
    });
    let wanted = fold(input);
    spellings
        .iter()
        .find(|(s, _)| *s == wanted)
        .map(|(_, i)| &crossings()[*i])
}

/// The canonical departure value for a Pakistani province code or name, or `unknown`.
pub fn departure(input: &str) -> Option<String> {
    static SPELLINGS: OnceLock<Spellings> = OnceLock::new();
    if input == UNKNOWN_DEPARTURE || pk_provinces().iter().any(|e| e.code == input) {
        return Some(input.to_string());
    }
    if fold(input) == UNKNOWN_DEPARTURE {
        return Some(UNKNOWN_DEPARTURE.to_string());
    }
    let spellings = SPELLINGS.get_or_init(|| Spellings::of(pk_provinces()));
    spellings
        .find(input)
        // Accept a bare suffix such as "KP" for "PK-KP".
        .or_else(|| spellings.find(&format!("PK-{input}")))
        .map(str::to_string)
}

/// The canonical destination value for an Afghan province code or name, or `undecided`.
pub fn destination(input: &str) -> Option<String> {
    static SPELLINGS: OnceLock<Spellings> = OnceLock::new();
    if input == UNDECIDED_DESTINATION || af_provinces().iter().any(|e| e.code == input) {
        return Some(input.to_string());
    }
    if fold(input) == UNDECIDED_DESTINATION {
        return Some(UNDECIDED_DESTINATION.to_string());
    }
    let spellings = SPELLINGS.get_or_init(|| Spellings::of(af_provinces()));
    spellings
        .find(input)
        .or_else(|| spellings.find(&format!("AF-{input}")))
        .map(str::to_string)
}

/// The human name of a stored crossing, departure or destination code.
pub fn display_name(code: &str) -> &str {
    crossings()
        .iter()
        .map(|c| &c.entry)
        .chain(pk_provinces())
        .chain(af_provinces())
        .find(|e| e.code == code)
        .map(|e| e.name.as_str())
        .unwrap_or(code)
}

/// The province (Pakistani or Afghan) with this stored code.
pub fn province(code: &str) -> Option<&'static Entry> {
    pk_provinces()
        .iter()
        .chain(af_provinces())
        .find(|e| e.code == code)
}

/// The OCHA p-code of a stored Afghan province code (`AF-NAN` → `AF06`);
/// empty for a Pakistani province (the list has none), `undecided` or
/// `unknown`.
pub fn pcode(code: &str) -> &'static str {
    province(code)
        .and_then(|e| e.pcode.as_deref())
        .unwrap_or("")
}

/// The codes of the crossings, comma-separated, for error messages.
pub fn crossing_codes() -> String {
    crossings()
        .iter()
        .map(|c| c.entry.code.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_complete() {
        assert_eq!(crossings().len(), 7);
        assert_eq!(pk_provinces().len(), 7);
        assert_eq!(af_provinces().len(), 34);
    }

    #[test]
    fn lookups_accept_codes_and_names_in_any_case() {
        assert_eq!(crossing("TORKHAM").unwrap().entry.code, "torkham");
        assert_eq!(crossing("Spin Boldak").unwrap().entry.code, "chaman");
        assert_eq!(crossing("angoor adda").unwrap().entry.code, "angoor-adda");
        assert!(crossing("nowhere").is_none());
        assert_eq!(departure("Khyber Pakhtunkhwa").unwrap(), "PK-KP");
        assert_eq!(departure("pk-kp").unwrap(), "PK-KP");
        assert_eq!(departure("Unknown").unwrap(), "unknown");
        assert_eq!(destination("nangarhar").unwrap(), "AF-NAN");
        assert_eq!(destination("af-nan").unwrap(), "AF-NAN");
        assert_eq!(destination("Sar-e Pul").unwrap(), "AF-SAR");
        assert_eq!(destination("UNDECIDED").unwrap(), "undecided");
        assert!(destination("PK-KP").is_none());
        assert!(departure("").is_none());
        assert_eq!(display_name("AF-KAB"), "Kabul");
    }

    #[test]
    fn every_alias_is_accepted_and_stored_as_its_code() {
        let variants = |s: &str| {
            [
                s.to_string(),
                s.to_uppercase(),
                s.to_lowercase(),
                s.replace(['-', ' '], ""),
                s.replace(' ', "-"),
                format!("  {s} "),
            ]
        };
        let mut n = 0;
        for e in pk_provinces() {
            for spelling in e.aliases.iter().chain([&e.name, &e.code]) {
                for v in variants(spelling) {
                    assert_eq!(departure(&v).as_deref(), Some(e.code.as_str()), "{v:?}");
                    n += 1;
                }
            }
        }
        for e in af_provinces() {
            for spelling in e.aliases.iter().chain([&e.name, &e.code]) {
                for v in variants(spelling) {
                    assert_eq!(destination(&v).as_deref(), Some(e.code.as_str()), "{v:?}");
                    n += 1;
                }
            }
        }
        assert!(n > 6 * (41 + 40), "{n} spellings tried");
        // The everyday spellings the first users had refused.
        for (typed, code) in [
            ("Paktia", "AF-PIA"),
            ("Jawzjan", "AF-JOW"),
            ("Sar-e Pol", "AF-SAR"),
            ("Maidan Wardak", "AF-WAR"),
            ("Hilmand", "AF-HEL"),
        ] {
            assert_eq!(destination(typed).as_deref(), Some(code));
        }
        for (typed, code) in [
            ("Azad Kashmir", "PK-JK"),
            ("KPK", "PK-KP"),
            ("NWFP", "PK-KP"),
            ("FATA", "PK-KP"),
            ("Baluchistan", "PK-BA"),
        ] {
            assert_eq!(departure(typed).as_deref(), Some(code));
        }
    }

    #[test]
    fn no_spelling_stands_for_two_provinces() {
        for list in [pk_provinces(), af_provinces()] {
            let mut seen = std::collections::HashMap::new();
            for e in list {
                for s in e.aliases.iter().chain([&e.name, &e.code]) {
                    if let Some(other) = seen.insert(fold(s), &e.code) {
                        assert_eq!(other, &e.code, "{s} is ambiguous");
                    }
                }
            }
        }
    }

    #[test]
    fn list_order_is_the_stored_format() {
        // Report rows store a province as its index: these must not move.
        let af: Vec<&str> = af_provinces().iter().map(|e| e.code.as_str()).collect();
        assert_eq!(af[0], "AF-BDS");
        assert_eq!(af[13], "AF-KAB");
        assert_eq!(af[21], "AF-NAN");
        assert_eq!(af[33], "AF-ZAB");
        let pk: Vec<&str> = pk_provinces().iter().map(|e| e.code.as_str()).collect();
        assert_eq!(
            pk,
            [
                "PK-BA", "PK-GB", "PK-IS", "PK-JK", "PK-KP", "PK-PB", "PK-SD"
            ]
        );
    }

    #[test]
    fn afghan_provinces_carry_their_pcodes() {
        assert_eq!(pcode("AF-KAB"), "AF01");
        assert_eq!(pcode("AF-NAN"), "AF06");
        assert_eq!(pcode("AF-NIM"), "AF34");
        assert_eq!(pcode("PK-KP"), "");
        assert_eq!(pcode("undecided"), "");
        let mut all: Vec<&str> = af_provinces()
            .iter()
            .map(|e| e.pcode.as_deref().unwrap())
            .collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 34);
    }
}
