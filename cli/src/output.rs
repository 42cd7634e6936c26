//! Human output: tables, numbers, times and progress bars, plain when the
//! output is not a terminal. JSON output is written by the commands.

use chrono::{DateTime, Utc};
use comfy_table::presets::{NOTHING, UTF8_FULL_CONDENSED};
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::config::Config;
use crate::error::CliError;

/// A table with a header row: borders on a terminal, plain for pipes, and
/// no wider than [`Config::columns`] (cells wrap).
pub fn table(config: &Config, header: &[&str]) -> Table {
    let mut t = Table::new();
    if config.tty_out {
        t.load_preset(UTF8_FULL_CONDENSED);
    } else {
        t.load_preset(NOTHING);
        t.force_no_tty();
    }
    if let Some(w) = config.columns {
        t.set_width(w);
        t.set_content_arrangement(ContentArrangement::Dynamic);
    }
    t.set_header(header.iter().map(Cell::new));
    t
}

/// A table without borders, columns two spaces apart: for lists whose
/// columns the command fits to the width itself.
pub fn light_table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(NOTHING);
    t.force_no_tty();
    t.set_header(header.iter().map(Cell::new));
    for (i, c) in t.column_iter_mut().enumerate() {
        c.set_padding((0, if i + 1 == header.len() { 0 } else { 2 }));
    }
    t
}

/// A right-aligned number cell, with thousands separators.
pub fn num(n: u64) -> Cell {
    Cell::new(thousands(n)).set_alignment(CellAlignment::Right)
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` and the noun, singular or plural: `1 family`, `2 families`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// A moment as a person reads it: `2026-12-04 23:12 UTC (3 hours ago)`.
pub fn when(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!("{} ({})", at.format("%Y-%m-%d %H:%M UTC"), ago(at, now))
}

/// How long ago `at` was: `just now`, `5 minutes ago`, `3 hours ago`, `2 days ago`.
pub fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - at).num_seconds();
    if secs < 0 {
        return "in the future: check this laptop's clock".into();
    }
    let (n, one, many) = match secs {
        0..60 => return "just now".into(),
        60..3600 => (secs / 60, "minute", "minutes"),
        3600..86_400 => (secs / 3600, "hour", "hours"),
        _ => (secs / 86_400, "day", "days"),
    };
    format!("{} ago", count(n as u64, one, many))
}

/// Prints a value as pretty JSON on standard output.
pub fn print_json<T: Serialize + ?Sized>(v: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| CliError::Other(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// A progress bar on standard error, hidden when it is not a terminal.
pub fn progress(config: &Config, len: u64, what: &str) -> ProgressBar {
    if !config.progress {
        return ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(len);
    bar.set_style(bar_style(what));
    bar
}

/// How a progress bar of `what` is drawn: position, total, a whole-number
/// rate and the time left.
pub fn bar_style(what: &str) -> ProgressStyle {
    ProgressStyle::with_template(&format!(
        "{what} [{{bar:30}}] {{human_pos}}/{{human_len}} {{rate}} eta {{eta}}"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .with_key(
        "rate",
        |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{}/s", thousands(state.per_sec() as u64));
        },
    )
    .progress_chars("=> ")
}

/// A spinner on standard error (hidden when it is not a terminal), for
/// work whose length is not known.
pub fn spinner(config: &Config, what: &str) -> ProgressBar {
    if !config.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_message(what.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_times_read_as_a_person_writes_them() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(count(1, "family", "families"), "1 family");
        assert_eq!(count(2, "family", "families"), "2 families");
        let now: DateTime<Utc> = "2026-12-05T02:12:00Z".parse().unwrap();
        let at: DateTime<Utc> = "2026-12-04T23:12:00Z".parse().unwrap();
        assert_eq!(when(at, now), "2026-12-04 23:12 UTC (3 hours ago)");
        assert_eq!(ago(now, now), "just now");
        assert_eq!(ago(now - chrono::Duration::minutes(1), now), "1 minute ago");
        assert_eq!(ago(now - chrono::Duration::days(2), now), "2 days ago");
    }
}
