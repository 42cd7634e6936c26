//! Normalisation of document numbers and of Afghan names written in Latin
//! letters, and a transliteration-tolerant similarity of names.

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
