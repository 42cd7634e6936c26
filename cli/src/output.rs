//! Human output: tables and progress bars, plain when `NO_COLOR` is set or
//! the output is not a terminal. JSON output is written by the commands.

use comfy_table::presets::{NOTHING, UTF8_FULL_CONDENSED};
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::config::Config;
use crate::error::CliError;

/// A table with a header row, styled for the terminal or plain for pipes.
pub fn table(config: &Config, header: &[&str]) -> Table {
    let mut t = Table::new();
    if config.color {
        t.load_preset(UTF8_FULL_CONDENSED);
        t.set_content_arrangement(ContentArrangement::Dynamic);
    } else {
        t.load_preset(NOTHING);
        t.force_no_tty();
    }
    t.set_header(header.iter().map(Cell::new));
    t
}

/// A right-aligned number cell.
pub fn num(n: impl ToString) -> Cell {
    Cell::new(n.to_string()).set_alignment(CellAlignment::Right)
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
    let style = ProgressStyle::with_template(&format!(
        "{what} [{{bar:30}}] {{pos}}/{{len}} {{per_sec}} eta {{eta}}"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}
