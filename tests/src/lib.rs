//! Helpers for returnee's end-to-end tests.
//!
//! The scenarios in `tests/` run the real `returnee` binary as a subprocess,
//! each against its own throw-away store ([`Store`]), and generate their
//! inputs with a small seeded generator ([`Rng`]) so that every run sees the
//! same families.
//!
//! This package does not get `CARGO_BIN_EXE_returnee` (the binary belongs to
//! `returnee-cli`), so [`returnee_bin`] finds it in the target folder next to
//! the test executable. `cargo test --workspace` builds it first (the cli
//! package has integration tests, which makes cargo build its binary); when
//! running `cargo test -p returnee-tests` alone, run
//! `cargo build -p returnee-cli` before, or the binary may be stale.

pub mod browser;
pub mod cluster;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `returnee` binary of the current build profile
/// (`target/<profile>/returnee`), or the one named by `RETURNEE_BIN`.
///
/// Panics with instructions when it has not been built.
pub fn returnee_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("RETURNEE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    // target/<profile>/deps/<test>-<hash> → target/<profile>
    let mut dir = exe.parent().expect("the test executable's folder");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().expect("the profile folder");
    }
    let bin = dir.join(format!("returnee{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "the returnee binary is not at {}; build it with `cargo build -p returnee-cli` \
         (`cargo test --workspace` does it for you)",
        bin.display()
    );
    bin
}

/// What one run of `returnee` did.
#[derive(Debug, Clone)]
pub struct Run {
    /// The exit code (-1 if killed by a signal).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Panics, showing the output, unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit code {code}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Standard output parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\n--- stderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// `returnee add` with the flags every family needs: a deported household
/// of `males` and `females` (five band counts each, `A,B,C,D,E`) from
/// PK-KP to AF-NAN at `crossing` on `date`. Push more flags to it.
pub fn add_args(crossing: &str, date: &str, males: &str, females: &str) -> Vec<String> {
    [
        "add",
        "--crossing",
        crossing,
        "--date",
        date,
        "--return-type",
        "deported",
        "--departure",
        "PK-KP",
        "--destination",
        "AF-NAN",
        "--males",
        males,
        "--females",
        females,
    ]
    .map(String::from)
    .to_vec()
}

/// A local store in a fresh temporary folder, and a way to run `returnee` on it.
/// The folder is removed when this is dropped.
/// Adds a family with a head's name and a document number (with consent)
/// to `store`; returns its id.
pub fn add_named(store: &Store, crossing: &str, date: &str, name: &str, doc: &str) -> String {
    add_named_with(store, crossing, date, name, doc, &[])
}

/// [`add_named`] with more flags (`--notes TEXT`, `--vulnerability V` …).
pub fn add_named_with(
    store: &Store,
    crossing: &str,
    date: &str,
    name: &str,
    doc: &str,
    more: &[&str],
) -> String {
    let mut args = add_args(crossing, date, "1,0,1,1,0", "0,1,0,1,0");
    args.extend(
        [
            "--head-name",
            name,
            "--head-sex",
            "m",
            "--doc-type",
            "tazkira",
            "--doc-number",
            doc,
            "--consent",
        ]
        .map(String::from),
    );
    args.extend(more.iter().map(|a| a.to_string()));
    store.ok(&args).trim().to_string()
}

/// A fresh store enrolled as the first admin of `server`.
#[track_caller]
pub fn enrolled_admin(server: &cluster::TestServer) -> Store {
    let admin = Store::init();
    admin.ok(&[
        "enroll",
        "--server",
        &server.url(),
        "--code",
        &server.admin_code,
    ]);
    admin
}

pub struct Store {
    dir: tempfile::TempDir,
    /// Passed as `--ca` to every command when set.
    ca: Option<PathBuf>,
}

impl Default for Store {
    fn default() -> Self {
        Self::empty()
    }
}

impl Store {
    /// A fresh, empty folder with no store in it yet.
    pub fn empty() -> Store {
        Store {
            dir: tempfile::Builder::new()
                .prefix("returnee-e2e-")
                .tempdir()
                .expect("a temporary folder"),
            ca: None,
        }
    }

    /// Passes `--ca CA` (a PEM file of certificate authorities to trust) to
    /// every command from now on; `None` stops passing it.
    pub fn set_ca(&mut self, ca: Option<&Path>) {
        self.ca = ca.map(Path::to_path_buf);
    }

    /// A fresh folder with an initialised store.
    #[track_caller]
    pub fn init() -> Store {
        let s = Store::empty();
        s.run(&["init", "--device-name", "test-laptop"])
            .expect_code(0);
        s
    }

    /// The store's folder (`--data-dir`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A `returnee` command on this store: `--data-dir` set (and `--ca`, if
    /// [`Store::set_ca`] gave one), no terminal, no inherited `RETURNEE_*`
    /// settings (a passphrase included) nor `COLUMNS`.
    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut c = Command::new(returnee_bin());
        c.arg("--data-dir").arg(self.path());
        if let Some(ca) = &self.ca {
            c.arg("--ca").arg(ca);
        }
        c.args(args)
            .env_remove("RETURNEE_DATA_DIR")
            .env_remove("RETURNEE_CA")
            .env_remove("RETURNEE_PASSPHRASE")
            // Tables as a pipe gets them (no width limit), whatever the
            // terminal the tests run from.
            .env_remove("COLUMNS")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        c
    }

    /// Runs `returnee` on this store to completion.
    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Run {
        let out = self
            .command(args)
            .output()
            .expect("the returnee binary runs");
        Run::from_output(out)
    }

    /// Runs `returnee` and returns its standard output; panics unless it exits 0.
    #[track_caller]
    pub fn ok<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> String {
        self.run(args).expect_code(0).stdout
    }

    /// Runs `returnee` and parses its standard output as JSON; panics unless it exits 0.
    #[track_caller]
    pub fn json<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> serde_json::Value {
        self.run(args).expect_code(0).json()
    }
}

/// A small deterministic pseudo-random generator (SplitMix64): the same seed
/// gives the same sequence on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        self.next_u64() % n
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn the_generator_is_deterministic_and_spreads() {
        let a: Vec<u64> = {
            let mut r = Rng::new(7);
            (0..5).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Rng::new(7);
            (0..5).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        let mut r = Rng::new(1);
        let mut hits = [0u32; 7];
        for _ in 0..7000 {
            hits[r.below(7) as usize] += 1;
        }
        assert!(hits.iter().all(|&h| (800..1200).contains(&h)), "{hits:?}");
    }
}
