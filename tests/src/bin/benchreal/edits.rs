//! The phases that edit families already synced: `incremental` (one
//! desk's edits pushed and pulled) and `conflicts` (two desks editing the
//! same families offline).

use std::path::Path;

use anyhow::ensure;
use serde_json::Value;

use super::*;

/// Laptop `dir`'s families, exported as CSV to `path` and read back.
fn exported_rows(bins: &Bins, dir: &Path, path: &Path) -> anyhow::Result<Vec<CsvRow>> {
    let arg = path.to_string_lossy().into_owned();
    bins.returnee(dir, &["export", "--format", "csv", "--out", &arg], SAMPLE)?;
    Ok(csv::Reader::from_path(path)?
        .deserialize()
        .collect::<Result<_, _>>()?)
}

/// `n` of `rows`, evenly spread, each changed by `edit`, written to `path`
/// as an importable CSV.
fn write_edited(
    path: &Path,
    rows: &[CsvRow],
    n: usize,
    edit: impl Fn(&mut CsvRow) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let stride = (rows.len() / n.max(1)).max(1);
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_path(path)?;
    w.write_record(CSV_COLUMNS)?;
    for row in rows.iter().step_by(stride).take(n) {
        let mut row = row.clone();
        edit(&mut row)?;
        w.serialize(&row)?;
    }
    w.flush()?;
    Ok(())
}

/// Times `returnee sync` on `laptop` as phase `name` and checks its
/// summary: exactly `n` operations `pushed`, or at least `n` `pulled`
/// (a pull may bring others' changes too).
#[allow(clippy::too_many_arguments)]
fn timed_sync(
    bins: &Bins,
    run: usize,
    name: &str,
    laptop: &Path,
    key: &str,
    n: usize,
    net: &Net,
    out: &mut Out,
) -> anyhow::Result<()> {
    let line = phase(run, name, n, Some(net), || {
        let f = bins.returnee(laptop, &["sync", "--json"], SAMPLE)?;
        let s = f.json()?;
        let got = field(&s, key);
        let expected = if key == "pushed" {
            got == n as u64
        } else {
            got >= n as u64
        };
        ensure!(expected, "{name}: {got} {key}, {n} expected: {s}");
        Ok(timed(&f))
    })?;
    out.emit(line);
    Ok(())
}

/// Edits `--edits` families of laptop A by one import of their exported
/// rows, then times A's push and B's pull of the edits.
#[allow(clippy::too_many_arguments)]
pub(crate) fn incremental(
    a: &Args,
    bins: &Bins,
    run: usize,
    dir: &Path,
    a_dir: &Path,
    b_dir: &Path,
    net: &Net,
    out: &mut Out,
) -> anyhow::Result<()> {
    let rows = exported_rows(bins, a_dir, &dir.join("export.csv"))?;
    let edits = a.edits.min(rows.len()).max(1);
    let edited = dir.join("edits.csv");
    write_edited(&edited, &rows, edits, |row| {
        // A birth at follow-up: one more child aged 0–4, and a note.
        let babies: u32 = row.m_0_4.as_deref().unwrap_or("0").parse()?;
        row.m_0_4 = Some((babies + 1).to_string());
        row.notes = Some("follow-up visit: a boy born since the crossing".to_string());
        Ok(())
    })?;
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
    timed_sync(
        bins,
        run,
        "incremental-push",
        a_dir,
        "pushed",
        edits,
        net,
        out,
    )?;
    timed_sync(
        bins,
        run,
        "incremental-pull",
        b_dir,
        "pulled",
        edits,
        net,
        out,
    )?;
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

/// Families both laptops edit before syncing, in the conflicts phase.
const CONFLICTING: usize = 100;

/// Laptops A and B give the same families different notes offline (each
/// by an import of exported rows), then sync: A's push (`conflicts-push`),
/// then B's sync, which pushes its edits and pulls A's
/// (`conflicts-sync`). Every edited family must hold a conflict on B,
/// kept for a supervisor rather than decided silently.
pub(crate) fn conflicts(
    bins: &Bins,
    run: usize,
    dir: &Path,
    a_dir: &Path,
    b_dir: &Path,
    net: &Net,
    out: &mut Out,
) -> anyhow::Result<()> {
    let rows = exported_rows(bins, a_dir, &dir.join("conflicts-export.csv"))?;
    let n = CONFLICTING.min(rows.len());
    for (laptop, who) in [(a_dir, "desk A"), (b_dir, "desk B")] {
        let edited = dir.join(format!("conflicts-{}.csv", who.replace(' ', "-")));
        write_edited(&edited, &rows, n, |row| {
            row.notes = Some(format!("checked again at {who}"));
            Ok(())
        })?;
        let arg = edited.to_string_lossy().into_owned();
        bins.returnee(laptop, &["import", &arg, "--json"], SAMPLE)?;
    }
    timed_sync(bins, run, "conflicts-push", a_dir, "pushed", n, net, out)?;
    timed_sync(bins, run, "conflicts-sync", b_dir, "pushed", n, net, out)?;
    let open = bins
        .returnee(b_dir, &["conflicts", "--json"], SAMPLE)?
        .json()?;
    let kept = open.as_array().map_or(0, Vec::len);
    ensure!(
        kept >= n,
        "laptop B holds {kept} conflicts after both desks edited {n} families"
    );
    Ok(())
}

/// Laptop B (a supervisor) erases one family: the `erase` command (its
/// store's files rewritten), the sync that pushes it (the server's journal
/// scrubbed and its index rewritten before the answer), and laptop A's
/// sync that pulls it (A's files rewritten). Reports must not change.
pub(crate) fn erasure(
    bins: &Bins,
    run: usize,
    a_dir: &Path,
    b_dir: &Path,
    net: &Net,
    out: &mut Out,
) -> anyhow::Result<()> {
    let report = |d: &Path| -> anyhow::Result<Value> {
        Ok(totals(
            &bins.returnee(d, &["report", "--json"], SAMPLE)?.json()?,
        ))
    };
    let before = report(a_dir)?;
    let listed = bins.returnee(b_dir, &["list", "--json"], SAMPLE)?.json()?;
    let id = listed
        .as_array()
        .and_then(|l| l.first())
        .and_then(|f| f["id"].as_str())
        .ok_or_else(|| anyhow::anyhow!("laptop B lists no family to erase"))?
        .to_string();
    let line = phase(run, "erasure-local", 1, None, || {
        let f = bins.returnee(
            b_dir,
            &["erase", &id, "--reason", "benchmark", "--yes", "--json"],
            SAMPLE,
        )?;
        Ok(timed(&f))
    })?;
    out.emit(line);
    timed_sync(bins, run, "erasure-push", b_dir, "pushed", 1, net, out)?;
    timed_sync(bins, run, "erasure-pull", a_dir, "pulled", 1, net, out)?;
    let (ra, rb) = (report(a_dir)?, report(b_dir)?);
    ensure!(
        ra == before && rb == before,
        "after the erasure the reports changed: A {ra}, B {rb}, before {before}"
    );
    Ok(())
}
