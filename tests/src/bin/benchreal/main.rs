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
//! - `find`: `returnee find NAME --json` on B, NAME a generated head's name
//!   (the family halfway through the file); it must find at least one;
//! - `incremental`: 1,000 families of A are edited by one `returnee import`
//!   of a CSV of their exported rows (ids kept, one more child aged 0–4 and a
//!   new note: import upserts by id), `incremental-import`; then
//!   `returnee sync` on A (`incremental-push`) and on B (`incremental-pull`),
//!   after which the report totals must match again;
//! - `conflicts`: A and B give the same 100 families different notes
//!   offline (an import each), then A syncs (`conflicts-push`) and B syncs
//!   (`conflicts-sync`: its push, and the pull of A's edits); B must then
//!   hold a conflict for each of them;
//! - `many-devices` (only if named in `--phases`: its laptops take a while
//!   whatever `--families` says): on a fresh server, `--devices` laptops
//!   (field codes, one crossing each, spread over the seven) each import
//!   `--per-device` families of their crossing (not timed), then all run
//!   `returnee sync` at once; the line gives the wall time of the whole and
//!   the p50/p99 of each laptop's sync (which pushes its own families and
//!   pulls those of its crossing that landed before), and the p50/p99 of a
//!   batch (`p99_batch_ms`: each push batch and pull page is one request,
//!   timed by the server from its arrival to its answer, read from the
//!   server's request log);
//! - `erasure` (only if named): B (a supervisor) erases one family
//!   (`erasure-local`: the command, its store's files rewritten), syncs
//!   (`erasure-push`: the server scrubs its journal and rewrites its index
//!   before answering), and A syncs (`erasure-pull`: A's files rewritten);
//!   the report totals must not change.
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
//! `--phases LIST` (import,push,pull,duplicates,report,incremental,conflicts; also
//! many-devices and erasure; `push` also prints `duplicate-check`, the server's
//! background check of what arrived, timed until its CPU goes idle),
//! `--keep DIR` (keep the stores in DIR/run-R), `--seed S` (1), `--edits N`
//! (1000), `--devices N` (50), `--per-device N` (2000), `--sorted-dates`,
//! `--laptops-nice N` (0): the many-devices laptops' syncs run at that
//! niceness. On one machine the 50 laptops' own work (compressing what
//! they push, applying what they pull) competes with the server for its
//! cores, which in the field are the server's alone; at 19 the server's
//! batch times come closer to a server on its own machine.

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

mod edits;
mod families;
mod procs;

use edits::*;
use families::*;
use procs::*;

const ALL_PHASES: [&str; 10] = [
    "import",
    "push",
    "pull",
    "duplicates",
    "report",
    "find",
    "incremental",
    "conflicts",
    "many-devices",
    "erasure",
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
    laptops_nice: i32,
    /// Rows in date order, to see what the random order costs.
    sorted: bool,
}

const USAGE: &str = "benchreal [--bin-dir DIR] [--label NAME] [--families N] [--runs R] \
[--phases import,push,pull,duplicates,report,find,incremental,conflicts,many-devices,erasure] [--keep DIR] [--seed S] \
[--edits N] [--devices N] [--per-device N] [--sorted-dates] [--laptops-nice N]";

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
        // many-devices and erasure only when asked for: its 50 laptops
        // take a while whatever --families says; an erasure rewrites stores.
        phases: ALL_PHASES[..8].iter().map(|p| p.to_string()).collect(),
        keep: None,
        seed: 1,
        edits: 1000,
        devices: 50,
        per_device: 2000,
        laptops_nice: 0,
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
            "--laptops-nice" => {
                a.laptops_nice = value()?
                    .parse()
                    .context("--laptops-nice takes a niceness, -20 to 19")?
            }
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
    /// `incremental-push`, `conflicts` for `conflicts-sync`) was asked for.
    fn wants(&self, phase: &str) -> bool {
        if phase == "duplicate-check" {
            return self.phases.iter().any(|p| p == "push");
        }
        let group = phase.split('-').next().unwrap_or(phase);
        self.phases.iter().any(|p| {
            p == phase || (p == group && matches!(group, "incremental" | "conflicts" | "erasure"))
        })
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
            "find",
            "incremental",
            "conflicts",
            "erasure",
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

    // A head's name as people search for it, on the laptop that pulled
    // every family: the name index is built as the families arrive.
    if need("find")
        && let Some(name) = &g.sample_name
    {
        let line = phase(run, "find", a.families, None, || {
            let f = bins.returnee(&b_dir, &["find", name, "--json"], SAMPLE)?;
            let found = f.json()?.as_array().map_or(0, Vec::len);
            ensure!(found > 0, "`returnee find` did not find a generated name");
            let mut line = timed(&f);
            line["found"] = json!(found);
            Ok(line)
        })?;
        out.emit(line);
    }
    if need("incremental") {
        incremental(a, bins, run, dir, &a_dir, &b_dir, &net, out)?;
    }
    if need("conflicts") {
        conflicts(bins, run, dir, &a_dir, &b_dir, &net, out)?;
    }
    if need("erasure") {
        erasure(bins, run, &a_dir, &b_dir, &net, out)?;
    }
    server.stop()
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
    let requests = dir.join("server-many-requests.jsonl");
    let server = Server::start_logging(bins, &dir.join("server-many"), Some(&requests))?;
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
                        bins.returnee_niced(
                            d,
                            &["sync", "--json"],
                            Duration::from_millis(20),
                            a.laptops_nice,
                        )
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
        // Each push batch and pull page is one request; its time is the
        // server's, from the request's arrival to its answer.
        let pushes = request_times(&requests, "/v1/sync/push")?;
        let pulls = request_times(&requests, "/v1/sync/pull")?;
        let batches: Vec<f64> = {
            let mut all = [pushes.as_slice(), pulls.as_slice()].concat();
            all.sort_by(|x, y| x.partial_cmp(y).expect("a time"));
            all
        };
        ensure!(!pushes.is_empty(), "the server logged no push");
        Ok(json!({
            "seconds": round(seconds),
            "peak_rss_mb_client": round(peak),
            "devices": laptops.len(),
            "laptops_nice": a.laptops_nice,
            "pulled": pulled,
            "p50_sync_seconds": round(percentile(&times, 0.5)),
            "p99_sync_seconds": round(percentile(&times, 0.99)),
            "max_sync_seconds": round(times.last().copied().unwrap_or(0.0)),
            "push_batches": pushes.len(),
            "pull_pages": pulls.len(),
            "p50_batch_ms": round(percentile(&batches, 0.5)),
            "p99_batch_ms": round(percentile(&batches, 0.99)),
            "p99_push_batch_ms": round(percentile(&pushes, 0.99)),
            "p99_pull_page_ms": round(percentile(&pulls, 0.99)),
            "max_batch_ms": round(batches.last().copied().unwrap_or(0.0)),
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
            "p50_batch_ms",
            "p99_batch_ms",
            "p99_push_batch_ms",
            "p99_pull_page_ms",
            "max_batch_ms",
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
