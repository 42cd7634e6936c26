//! The command line: every subcommand and flag. Scripts depend on these names;
//! add to them, never rename.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Register returning families offline, and sync them when a link is there.
#[derive(Debug, Parser)]
#[command(
    name = "returnee",
    version,
    about,
    propagate_version = true,
    after_help = "Environment: RETURNEE_DATA_DIR and RETURNEE_CA stand for --data-dir and --ca; \
RETURNEE_PASSPHRASE is the passphrase of an encrypted store (else asked on a terminal); \
COLUMNS sets the width of tables; NO_COLOR turns colours off."
)]
pub struct Cli {
    /// The local store's folder [default: ~/.local/share/returnee].
    #[arg(
        long,
        global = true,
        env = "RETURNEE_DATA_DIR",
        value_name = "DIR",
        help_heading = "Global options"
    )]
    pub data_dir: Option<PathBuf>,
    /// A PEM file of certificate authorities to trust for the server (a
    /// private CA); only commands that talk to the server use it.
    #[arg(
        long,
        global = true,
        env = "RETURNEE_CA",
        value_name = "FILE",
        help_heading = "Global options"
    )]
    pub ca: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the local store and this device's id (running it again changes nothing).
    Init(InitArgs),
    /// Record a family. On a terminal with none of the required flags, asks for each field.
    Add(AddArgs),
    /// List families (a table that fits the terminal; --wide for every column).
    List(ListArgs),
    /// Find families by the head's name (spellings tolerated) or a document number.
    Find(FindArgs),
    /// Show one family.
    Show(ShowArgs),
    /// Change some fields of a family.
    Edit(EditArgs),
    /// Delete a family (a tombstone is kept so that sync carries the deletion;
    /// asks first on a terminal).
    Delete(DeleteArgs),
    /// Undo a delete: the family counts again (supervisor or admin: the
    /// server takes it as a decision).
    Restore(RestoreArgs),
    /// Mark a family's review: approved, has-issues or sent-back (supervisor
    /// or admin), or resubmitted (the worker, once it is fixed).
    Review(ReviewArgs),
    /// Erase a family's personal data at its request (supervisor or admin):
    /// name, document number, notes, vulnerabilities and referral, here and,
    /// after sync, everywhere; the family still counts. Cannot be undone.
    Erase(EraseArgs),
    /// Totals of families, individuals, men, women and children.
    Report(ReportArgs),
    /// Write families to CSV or JSON lines.
    Export(ExportArgs),
    /// Read families from CSV or JSON lines (same file twice adds nothing).
    Import(ImportArgs),
    /// Enroll this device with a server, using a one-time code.
    Enroll(EnrollArgs),
    /// Push local changes and pull everyone else's.
    Sync(SyncArgs),
    /// List open conflicts, or resolve one.
    Conflicts(ConflictsArgs),
    /// List families that may be recorded twice, or merge, dismiss or unmerge them.
    Duplicates(DuplicatesArgs),
    /// Server, last sync, pending changes, open conflicts.
    Status(JsonFlag),
    /// Administration: enrollment codes.
    Admin(AdminArgs),
    /// Remove synced families from this laptop (they stay on the server).
    Purge(PurgeArgs),
    /// Keep an encrypted store's key for a while (kernel keyring, this login
    /// session only), so that commands do not ask for the passphrase.
    Unlock {
        /// How long: 30m, 8h, 1h30m (at most 24h).
        #[arg(long = "for", default_value = "8h", value_name = "DURATION")]
        duration: String,
    },
    /// Forget the key `unlock` kept: the next command asks for the passphrase.
    Lock,
    /// Print a shell completion script: `returnee completions bash > /etc/bash_completion.d/returnee`.
    Completions {
        /// bash, zsh, fish, powershell or elvish.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages (returnee.1 and one per subcommand) into a folder.
    Man {
        /// The folder to write them to (made if needed), e.g. ~/.local/share/man/man1.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Check the local store; if it is damaged, rebuild it from its outbox
    /// of unsent changes (then run `sync` to pull the rest back).
    Repair(JsonFlag),
    /// Changes the server refused: list them, send them again, or drop one.
    Refused(RefusedArgs),
    /// Change the passphrase of an encrypted store.
    Passphrase(PassphraseArgs),
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RefusedArgs {
    #[command(subcommand)]
    pub action: Option<RefusedAction>,
    /// Print JSON for scripts (the list).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum RefusedAction {
    /// Put refused changes back in the outbox: the next `returnee sync`
    /// sends them again (once the cause is fixed, e.g. a site was given).
    Retry {
        /// The change's id from `returnee refused` (a unique prefix will do).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Every refused change.
        #[arg(long)]
        all: bool,
    },
    /// Drop one refused change for good (asks first on a terminal); a line
    /// saying when, which family and why (no personal data) goes to
    /// discarded.log in the data folder.
    Discard {
        /// The change's id from `returnee refused` (a unique prefix will do).
        id: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CrossingAction {
    /// Add a crossing: every laptop learns it at its next sync.
    Add {
        /// Its code: lower-case letters, digits and dashes (islam-qala).
        code: String,
        /// Its name as people say it (Islam Qala).
        #[arg(long, value_name = "NAME")]
        name: String,
        /// The province on the far side: PK-XX (Pakistan) or IR-XX (Iran).
        #[arg(long, value_name = "PK-XX|IR-XX")]
        country_side: String,
        /// The Afghan province it opens on (AF-HER).
        #[arg(long, value_name = "AF-XXX")]
        af_province: String,
    },
    /// Deactivate an added crossing: its families stay, new ones are no
    /// longer offered it.
    Deactivate {
        /// The crossing's code.
        code: String,
    },
    /// Every crossing: compiled in and added.
    List {
        /// Print JSON for scripts instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct PassphraseArgs {
    #[command(subcommand)]
    pub action: PassphraseAction,
}

#[derive(Debug, Subcommand)]
pub enum PassphraseAction {
    /// Change the passphrase (the old one as usual: asked, RETURNEE_PASSPHRASE
    /// or unlock; the new one asked twice, or RETURNEE_PASSPHRASE_NEW). The
    /// data is not re-encrypted: only the key that opens it is.
    Change,
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// A name for this laptop, shown to supervisors.
    #[arg(long, value_name = "NAME")]
    pub device_name: Option<String>,
    /// Encrypt the store with a passphrase (asked twice on a terminal, or
    /// from RETURNEE_PASSPHRASE). Every later command needs it; a forgotten
    /// passphrase means the data on this laptop is lost.
    #[arg(long)]
    pub encrypt: bool,
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Remove synced families whose last change is dated before this day (YYYY-MM-DD, 00:00 UTC).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub synced_before: String,
    /// List what would be removed, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (for scripts; without a terminal nothing is asked).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print the counts as JSON (with `--dry-run`, the ids too).
    #[arg(long)]
    pub json: bool,
}

/// The fields of a family as flags; shared by `add` and `edit`.
#[derive(Debug, Args, Default, Clone)]
pub struct FieldFlags {
    /// Crossing point: torkham, chaman, angoor-adda, ghulam-khan, kharlachi, badini, bahramcha.
    #[arg(long, value_name = "C")]
    pub crossing: Option<String>,
    /// Date of crossing, YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: Option<String>,
    /// spontaneous, deported or assisted.
    #[arg(long, value_name = "T")]
    pub return_type: Option<String>,
    /// Province of departure in Pakistan (PK-KP, Punjab, …) or unknown.
    /// (`--from` is an older name of it.)
    #[arg(long = "departure", alias = "from", value_name = "PK-XX")]
    pub departure: Option<String>,
    /// Province of destination in Afghanistan (AF-NAN, Kabul, …) or undecided.
    /// (`--to` is an older name of it.)
    #[arg(long = "destination", alias = "to", value_name = "AF-XXX")]
    pub destination: Option<String>,
    /// Males by age band 0-4,5-11,12-17,18-59,60+.
    #[arg(long, value_name = "A,B,C,D,E")]
    pub males: Option<String>,
    /// Females by age band 0-4,5-11,12-17,18-59,60+.
    #[arg(long, value_name = "A,B,C,D,E")]
    pub females: Option<String>,
    /// Name of the head of household (needs --consent).
    #[arg(long, value_name = "N")]
    pub head_name: Option<String>,
    /// Sex of the head of household: m or f.
    #[arg(long, value_name = "m|f")]
    pub head_sex: Option<String>,
    /// por-card, acc, tazkira, passport or none.
    #[arg(long, value_name = "T")]
    pub doc_type: Option<String>,
    /// Document number (needs --consent and --doc-type).
    #[arg(long, value_name = "X")]
    pub doc_number: Option<String>,
    /// The family consented to their name and document number being stored.
    #[arg(long)]
    pub consent: bool,
    /// A specific need; repeat for several (female-headed, disability, …).
    #[arg(long = "vulnerability", value_name = "V")]
    pub vulnerabilities: Vec<String>,
    /// A document the family holds; repeat for several (por-card, acc, tazkira, passport-visa, undocumented).
    #[arg(long = "documentation", value_name = "D")]
    pub documentation: Vec<String>,
    /// Protection referral: resettlement-case-pending, medical, child-protection, gbv, other.
    #[arg(long, value_name = "R")]
    pub referral: Option<String>,
    /// Free notes, at most 500 characters.
    #[arg(long, value_name = "TEXT")]
    pub notes: Option<String>,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    #[command(flatten)]
    pub fields: FieldFlags,
    /// The --crossing is new and this laptop has not learnt it yet (offline):
    /// save the family anyway; the next sync learns the crossing and sends
    /// the family (refused and kept under `returnee refused` if the server
    /// does not list it either).
    #[arg(long)]
    pub new_crossing: bool,
    /// Print the saved family as JSON instead of only its id.
    #[arg(long)]
    pub json: bool,
}

/// Filters shared by `list` and `report`.
#[derive(Debug, Args, Default, Clone)]
pub struct FilterFlags {
    /// Only this crossing.
    #[arg(long, value_name = "C")]
    pub crossing: Option<String>,
    /// Crossed on or after this date (YYYY-MM-DD).
    #[arg(long = "from", value_name = "YYYY-MM-DD")]
    pub from: Option<String>,
    /// Crossed on or before this date (YYYY-MM-DD).
    #[arg(long = "to", value_name = "YYYY-MM-DD")]
    pub to: Option<String>,
    /// Only this return type.
    #[arg(long, value_name = "T")]
    pub return_type: Option<String>,
    /// Only families in this review state (approved, has-issues, sent-back, resubmitted).
    #[arg(long, value_name = "STATE")]
    pub review: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub filter: FilterFlags,
    /// Include deleted families and merged duplicates (tombstones).
    #[arg(long)]
    pub deleted: bool,
    /// Only families with changes not on the server yet (saved here only, or refused).
    #[arg(long)]
    pub pending: bool,
    /// Only families whose head's name or document number matches, best first (as `find`).
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
    /// Every column, full ids, whatever the terminal's width.
    #[arg(long)]
    pub wide: bool,
    /// Print a JSON array of records.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FindArgs {
    /// A name ("Gul Khan": other spellings are found too) or a document number
    /// (spaces and dashes do not matter).
    pub text: String,
    /// Every column, full ids, whatever the terminal's width.
    #[arg(long)]
    pub wide: bool,
    /// Print a JSON array of records, best match first, with `score`, `matched` and `sync`.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The family's id (or a unique prefix of it, as `list` shows it).
    pub id: String,
    /// Print the family as JSON (with `sync`: saved-here-only, refused or sent).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EditArgs {
    /// The family's id (or a unique prefix of it).
    pub id: String,
    #[command(flatten)]
    pub fields: FieldFlags,
    /// Withdraw consent (then the name and document number must be cleared too: --head-name "" --doc-number "").
    #[arg(long, conflicts_with = "consent")]
    pub no_consent: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The family's id (or a unique prefix of it).
    pub id: String,
    /// Do not ask for confirmation (for scripts; without a terminal nothing is asked).
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The deleted family's id (or a unique prefix of it), from `returnee list --deleted`.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// The family's id (or a unique prefix of it), from `returnee list`.
    pub id: String,
    /// approved, has-issues, sent-back or resubmitted.
    #[arg(long, value_name = "STATE")]
    pub state: String,
    /// What is wrong, or what was fixed (one line).
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
}

#[derive(Debug, Args)]
pub struct EraseArgs {
    /// The family's id (or a unique prefix of it), from `returnee list`.
    pub id: String,
    /// Why (goes to the audit trail; no name or number in it), e.g. "asked by the family".
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Do not ask for confirmation (needed without a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print the families erased as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub filter: FilterFlags,
    /// Break the totals down by one or more keys, comma-separated: date,
    /// week, month, crossing, return-type, departure, destination
    /// (e.g. --by date,crossing,return-type).
    #[arg(long, value_name = "KEYS")]
    pub by: Option<String>,
    /// Print JSON for scripts (the same as --format json).
    #[arg(long)]
    pub json: bool,
    /// table, json, csv, xlsx, hxl (CSV with HXL hashtags) or hxl-long
    /// (one row per group, sex and age band) [default: table].
    #[arg(long, value_name = "FORMAT", conflicts_with = "json")]
    pub format: Option<String>,
    /// Write to this file instead of standard output (needed for xlsx on a terminal).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Start a CSV with a byte-order mark, so that Excel shows Dari and Pashto names.
    #[arg(long)]
    pub excel: bool,
    /// Print the paragraph a sitrep quotes: period, families, individuals,
    /// men, women, children, the share deported, the main provinces.
    #[arg(long, conflicts_with_all = ["format", "json", "chart"])]
    pub summary: bool,
    /// For a partner or HDX: counts below --small-cells are shown as <N.
    #[arg(long)]
    pub share: bool,
    /// The smallest count a --share output shows (only with --share).
    #[arg(long, value_name = "N", default_value_t = 5, requires = "share", value_parser = clap::value_parser!(u64).range(2..))]
    pub small_cells: u64,
    /// A chart: daily, return-type or destination; an image with --out
    /// FILE.svg or FILE.png, bars on the terminal without it.
    #[arg(long, value_name = "KIND", conflicts_with_all = ["format", "json"])]
    pub chart: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// csv, jsonl or xlsx.
    #[arg(long, default_value = "csv", value_name = "FORMAT")]
    pub format: String,
    /// Write here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub filter: FilterFlags,
    /// For a partner: no names, document numbers or notes, and record ids
    /// replaced by keyed hashes.
    #[arg(long)]
    pub share: bool,
    /// Export from the server instead of this laptop: the families of your
    /// sites (supervisors and admins), document numbers masked.
    #[arg(long)]
    pub from_server: bool,
    /// With --from-server: document numbers in full (admins only).
    #[arg(long, requires = "from_server", conflicts_with = "share")]
    pub full: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file to read.
    pub file: PathBuf,
    /// csv or jsonl [default: from the file's extension, else csv].
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The server's address, e.g. https://returnee.example.org
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// The one-time enrollment code from an admin.
    #[arg(long, value_name = "CODE")]
    pub code: String,
    /// A name for this laptop, shown to supervisors.
    #[arg(long, value_name = "NAME")]
    pub device_name: Option<String>,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// The most operations per batch (smaller on a weak link). A push
    /// starts with a smaller batch and then follows the server's advice,
    /// which shrinks batches while many laptops push at once.
    #[arg(long, default_value_t = crate::sync::DEFAULT_BATCH_SIZE, value_name = "N")]
    pub batch_size: usize,
    /// The most operations per pulled page (smaller on a weak link).
    #[arg(long, default_value_t = crate::sync::DEFAULT_PULL_PAGE, value_name = "N")]
    pub pull_page: usize,
}

#[derive(Debug, Args)]
pub struct ConflictsArgs {
    #[command(subcommand)]
    pub action: Option<ConflictsAction>,
    /// Print JSON for scripts instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConflictsAction {
    /// Decide a conflict (supervisor or admin).
    Resolve {
        /// The conflict's id, from `returnee conflicts`.
        conflict_id: String,
        /// The value to keep; for a delete conflict, `deleted` or `kept`.
        #[arg(long, value_name = "VALUE")]
        value: String,
    },
}

#[derive(Debug, Args)]
pub struct DuplicatesArgs {
    #[command(subcommand)]
    pub action: Option<DuplicatesAction>,
    /// Print a JSON array of candidate pairs (id, records, score, reasons).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum DuplicatesAction {
    /// The same family: one record survives, the other is merged into it (supervisor or admin).
    Merge {
        /// The pair's id, from `returnee duplicates`.
        pair_id: String,
        /// The record that survives (its id or a unique prefix) [default: the older one].
        #[arg(long, value_name = "RECORD_ID")]
        keep: Option<String>,
    },
    /// Not the same family: never suggest the pair again (supervisor or admin).
    Dismiss {
        /// The pair's id, from `returnee duplicates`.
        pair_id: String,
    },
    /// Both families of a pair side by side, every field, and why they look alike.
    Show {
        /// The pair's id (or a unique prefix of it), from `returnee duplicates`.
        pair_id: String,
    },
    /// Undo a merge: the merged family counts again (supervisor or admin).
    Unmerge {
        /// The merged family's id (or a unique prefix of it).
        record_id: String,
    },
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub action: AdminAction,
}

#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Mint a one-time enrollment code (admin devices only).
    Code {
        /// field, supervisor or admin.
        #[arg(long, value_name = "ROLE")]
        role: String,
        /// The crossing the device works at; repeat for several (supervisors).
        #[arg(long = "site", value_name = "CROSSING")]
        sites: Vec<String>,
        /// How many devices may enroll with it.
        #[arg(long, default_value_t = 1, value_name = "N")]
        uses: u32,
        /// Print JSON for scripts instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List every enrolled device, revoked ones included.
    Devices {
        /// Print JSON for scripts instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a device (a lost or stolen laptop): the server refuses it at
    /// once, and on its next contact it erases its local copy.
    Revoke {
        /// The device's id, a unique prefix of it, or its name, from `returnee admin devices`.
        device_id: String,
    },
    /// Give a device the crossings it works at (replaces its sites); its
    /// changes refused for a site it now has can be sent again.
    Sites {
        /// The device's id, a unique prefix of it, or its name, from `returnee admin devices`.
        device_id: String,
        /// A crossing; repeat for several. Without any: every site.
        #[arg(long = "site", value_name = "CROSSING")]
        sites: Vec<String>,
    },
    /// Crossings as data: add one (laptops learn it at their next sync),
    /// deactivate one, or list them.
    Crossing {
        #[command(subcommand)]
        action: CrossingAction,
    },
    /// Make a device rotate its token at its next sync (e.g. if the laptop
    /// may have been copied).
    Rotate {
        /// The device's id, a unique prefix of it, or its name, from `returnee admin devices`.
        device_id: String,
    },
    /// Show the server's audit trail (every change, merge, resolution,
    /// enrollment and revocation) and check its hash chain.
    Audit {
        /// Show entries after this one (0: from the first). Without it, the
        /// newest `--limit` entries.
        #[arg(long)]
        after: Option<u64>,
        /// Show at most this many entries.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON for scripts instead of a table.
        #[arg(long)]
        json: bool,
    },
}
