//! One module per subcommand, each a thin layer over the store or the client.

use std::collections::BTreeSet;

use chrono::{DateTime, Local, NaiveDate, Utc};
use returnee_shared::access::{Action, Denial, Principal, authorize, authorize_unenrolled};
use returnee_shared::validate::{parse_crossing, parse_date_only};
use returnee_shared::{FamilyDraft, Problem, ReportFilter, ReturnType, ReviewState, reference};

use crate::cli::{Command, FieldFlags, FilterFlags};
use crate::config::Config;
use crate::error::CliError;
use returnee_store::laptop::sealing::Passphrase;
use returnee_store::laptop::{LocalStore, StoreError};

pub mod add;
pub mod admin;
pub mod completions;
pub mod conflicts;
pub mod delete;
pub mod duplicates;
pub mod edit;
pub mod enroll;
pub mod erase;
pub mod export;
pub mod form;
pub mod import;
pub mod init;
pub mod list;
pub mod passphrase;
pub mod purge;
pub mod refused;
pub mod repair;
pub mod report;
pub mod restore;
pub mod review;
pub mod show;
pub mod status;
pub mod sync;
pub mod unlock;

/// Dispatches a parsed subcommand.
pub fn run(command: Command, config: &Config) -> Result<(), CliError> {
    // Crossings learnt by sync, for the commands that read a crossing
    // before they open the store (filters).
    read_crossings_file(&config.data_dir);
    match command {
        Command::Init(a) => init::run(a, config),
        Command::Add(a) => add::run(a, config),
        Command::List(a) => list::run(a, config),
        Command::Find(a) => list::find(a, config),
        Command::Show(a) => show::run(a, config),
        Command::Edit(a) => edit::run(a, config),
        Command::Delete(a) => delete::run(a, config),
        Command::Restore(a) => restore::run(a, config),
        Command::Review(a) => review::run(a, config),
        Command::Erase(a) => erase::run(a, config),
        Command::Report(a) => report::run(a, config),
        Command::Export(a) => export::run(a, config),
        Command::Import(a) => import::run(a, config),
        Command::Enroll(a) => enroll::run(a, config),
        Command::Sync(a) => sync::run(a, config),
        Command::Conflicts(a) => conflicts::run(a, config),
        Command::Duplicates(a) => duplicates::run(a, config),
        Command::Status(a) => status::run(a, config),
        Command::Admin(a) => admin::run(a, config),
        Command::Purge(a) => purge::run(a, config),
        Command::Unlock { duration } => unlock::unlock(&duration, config),
        Command::Lock => unlock::lock(config),
        Command::Completions { shell } => completions::completions(shell),
        Command::Man { out } => completions::man(&out),
        Command::Refused(a) => refused::run(a, config),
        Command::Passphrase(a) => passphrase::run(a, config),
        Command::Repair(a) => repair::run(a, config),
    }
}

/// Opens the existing store named by the configuration: with the key
/// `returnee unlock` kept, else asking for the passphrase on a terminal if
/// it is encrypted and none was given (three tries).
pub fn open_store(config: &Config) -> Result<LocalStore, CliError> {
    let store = open_unlocked(config)?;
    install_crossings(&store, false)?;
    Ok(store)
}

/// The copy of the crossings a laptop learnt, readable before the store is
/// opened (no personal data: codes and names of crossings).
const CROSSINGS_FILE: &str = "crossings.json";

/// What [`CROSSINGS_FILE`] holds.
#[derive(serde::Serialize, serde::Deserialize)]
struct CrossingsFile {
    learnt: reference::CrossingList,
    provisional: Vec<String>,
}

fn read_crossings_file(dir: &std::path::Path) {
    // Best effort: without it, the store's copy is read when it opens.
    let Ok(bytes) = std::fs::read(dir.join(CROSSINGS_FILE)) else {
        return;
    };
    if let Ok(f) = serde_json::from_slice::<CrossingsFile>(&bytes) {
        reference::learn(&f.learnt);
        reference::learn_provisional(&f.provisional);
    }
}

/// Hands the crossings this laptop learnt from the server, and the codes it
/// accepted offline, to the reference lists every lookup reads; `changed`:
/// also rewrites the copy read before the store opens.
pub fn install_crossings(store: &LocalStore, changed: bool) -> Result<(), CliError> {
    let learnt = store.learnt_crossings()?;
    if learnt.version > 0 {
        reference::learn(&learnt);
    }
    let provisional = store.provisional_crossings()?;
    if !provisional.is_empty() {
        reference::learn_provisional(&provisional);
    }
    if changed {
        let path = store.dir().join(CROSSINGS_FILE);
        let json = serde_json::to_vec(&CrossingsFile {
            learnt,
            provisional,
        })
        .map_err(|e| CliError::Other(e.to_string()))?;
        std::fs::write(&path, json)
            .map_err(|e| CliError::io(format!("cannot write {}", path.display()), e))?;
        returnee_store::private::tighten(store.dir())
            .map_err(|e| CliError::io(format!("cannot make {} private", path.display()), e))?;
    }
    Ok(())
}

/// How many times a wrong passphrase is asked again on a terminal.
pub(crate) const PASSPHRASE_TRIES: u32 = 3;

fn open_unlocked(config: &Config) -> Result<LocalStore, CliError> {
    let dir = &config.data_dir;
    if config.passphrase.is_none()
        && let Some(key) = crate::keyring::get(dir)
    {
        match LocalStore::open_with_key(dir, &key) {
            Err(StoreError::WrongPassphrase(_)) => {
                // Kept for another store once in this folder: forget it.
                crate::keyring::forget(dir);
            }
            r => {
                let store = r?;
                warn_if_shared(config);
                return Ok(store);
            }
        }
    }
    let asks = config.passphrase.is_none() && config.interactive;
    let mut tries = 0;
    let store = loop {
        tries += 1;
        match LocalStore::open_with(dir, &|| passphrase(config)) {
            Err(StoreError::WrongPassphrase(_)) if asks && tries < PASSPHRASE_TRIES => {
                eprintln!(
                    "wrong passphrase; try again ({} left)",
                    PASSPHRASE_TRIES - tries
                );
            }
            r => break r?,
        }
    };
    warn_if_shared(config);
    Ok(store)
}

/// Keeps the store's files 0600, and warns when its folder lets other users
/// of the laptop in (a store made before folders were made private, or
/// one whose mode was changed): saying how to close it, changing nothing
/// of the folder itself.
pub fn warn_if_shared(config: &Config) {
    let dir = &config.data_dir;
    if let Err(e) = returnee_store::private::tighten(dir) {
        eprintln!(
            "warning: could not make the files in {} private to you: {e}",
            dir.display()
        );
    }
    if let Some(mode) = returnee_store::private::wider_than_private(dir) {
        eprintln!(
            "warning: the store's folder {} can be read by other users of this laptop (mode {mode:o}); close it with: chmod 700 '{}'",
            dir.display(),
            dir.display()
        );
    }
}

/// The passphrase of an encrypted store: `RETURNEE_PASSPHRASE`, else asked
/// once on a terminal; `None` when neither is possible.
pub fn passphrase(config: &Config) -> Option<Passphrase> {
    if let Some(p) = &config.passphrase {
        return Some(p.clone());
    }
    if !config.interactive {
        return None;
    }
    dialoguer::Password::new()
        .with_prompt("Passphrase of this store")
        .allow_empty_password(false)
        .interact()
        .ok()
        .map(Passphrase::new)
}

/// Asks a person to confirm `question` (default no). Without a terminal,
/// or with `yes` (`--yes`), nothing is asked and the answer is yes.
pub fn confirm(config: &Config, yes: bool, question: &str) -> Result<bool, CliError> {
    if yes || !config.interactive {
        return Ok(true);
    }
    dialoguer::Confirm::new()
        .with_prompt(question)
        .default(false)
        .interact()
        .map_err(|e| CliError::Other(format!("the question could not be asked: {e}")))
}

/// What this laptop may do, by the policy the server applies
/// (`returnee_shared::access`), as its enrollment says: the same refusals,
/// in the same words, before anything is saved. A laptop not enrolled
/// records families at any site, but decides nothing that is a supervisor's.
pub struct Access {
    enrollment: Option<returnee_store::laptop::Enrollment>,
}

impl Access {
    /// Reads the enrollment of `store` (once).
    pub fn of(store: &LocalStore) -> Result<Access, CliError> {
        Ok(Access {
            enrollment: store.enrollment()?,
        })
    }

    /// Whether this laptop may do `action`.
    pub fn authorize(&self, action: &Action) -> Result<(), Denial> {
        match &self.enrollment {
            Some(e) => authorize(
                &Principal {
                    device: e.device_id,
                    role: e.role,
                    sites: &e.sites,
                },
                action,
            ),
            None => authorize_unenrolled(action),
        }
    }

    /// A problem if this laptop may not give a family the crossing
    /// `crossing` (a new family, or an edit that moves one). Only the
    /// crossing: where a held family is recorded now, the server checks.
    pub fn crossing_problem(&self, crossing: &str) -> Option<returnee_shared::Problem> {
        const NEW: &BTreeSet<String> = &BTreeSet::new();
        self.authorize(&Action::WriteFamilyAt {
            recorded_at: NEW,
            crossing: Some(crossing),
        })
        .err()
        .map(|denial| returnee_shared::Problem::new("crossing", denial.message))
    }
}

/// Refuses, with the policy's words, unless `store`'s enrollment allows `action`.
pub fn authorize_local(store: &LocalStore, action: Action) -> Result<(), CliError> {
    Ok(Access::of(store)?.authorize(&action)?)
}

/// The laptop's date, for "not in the future" checks.
pub fn today() -> NaiveDate {
    Local::now().date_naive()
}

pub fn now() -> DateTime<Utc> {
    Utc::now()
}

/// Parses the list/report filters; every bad one is reported, in the
/// words of filters (nothing is saved by a read-only command).
pub fn parse_filter(f: &FilterFlags) -> Result<ReportFilter, CliError> {
    let mut problems = Vec::new();
    let mut filter = ReportFilter::default();
    if let Some(c) = &f.crossing {
        match parse_crossing(c) {
            Ok(c) => filter.crossing = Some(c),
            Err(p) => problems.push(p),
        }
    }
    for (text, slot, name) in [
        (&f.from, &mut filter.from, "from"),
        (&f.to, &mut filter.to, "to"),
    ] {
        if let Some(t) = text {
            match parse_date_only(name, t) {
                Ok(d) => *slot = Some(d),
                Err(p) => {
                    let province =
                        reference::departure(t).is_some() || reference::destination(t).is_some();
                    let hint = if province {
                        " (here --from and --to are dates of crossing; a province is \
                         --departure or --destination of `add` and `edit`, or `report --by departure`)"
                    } else {
                        ""
                    };
                    problems.push(Problem::new(name, format!("{}{hint}", p.message)));
                }
            }
        }
    }
    if let Some(p) = filter.range_problem() {
        problems.push(p);
    }
    if let Some(t) = &f.return_type {
        match ReturnType::parse(t) {
            Some(t) => filter.return_type = Some(t),
            None => problems.push(Problem::new(
                "return_type",
                format!(
                    "'{t}' is not a return type; use one of {}",
                    ReturnType::allowed()
                ),
            )),
        }
    }
    if let Some(r) = &f.review {
        match ReviewState::parse(r) {
            Some(r) => filter.review = Some(r),
            None => problems.push(Problem::new(
                "review",
                format!(
                    "'{r}' is not a review state; use one of {}",
                    ReviewState::allowed()
                ),
            )),
        }
    }
    if problems.is_empty() {
        Ok(filter)
    } else {
        Err(CliError::Filter(problems))
    }
}

impl FieldFlags {
    /// The flags as a draft of a new family.
    pub fn to_draft(&self) -> FamilyDraft {
        FamilyDraft {
            crossing: self.crossing.clone(),
            crossed_on: self.date.clone(),
            return_type: self.return_type.clone(),
            departure_province: self.departure.clone(),
            destination_province: self.destination.clone(),
            males: self.males.clone(),
            females: self.females.clone(),
            head_name: self.head_name.clone(),
            head_sex: self.head_sex.clone(),
            doc_type: self.doc_type.clone(),
            doc_number: self.doc_number.clone(),
            consent: self.consent.then(|| "yes".to_string()),
            vulnerabilities: self.vulnerabilities.clone(),
            documentation: self.documentation.clone(),
            protection_referral: self.referral.clone(),
            notes: self.notes.clone(),
        }
    }

    /// Whether none of the fields `add` requires was given.
    pub fn lacks_all_required(&self) -> bool {
        [
            &self.crossing,
            &self.date,
            &self.return_type,
            &self.departure,
            &self.destination,
            &self.males,
            &self.females,
        ]
        .iter()
        .all(|f| f.is_none())
    }
}
