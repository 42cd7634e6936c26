//! The client's configuration, resolved once at start-up from flags, then
//! the environment, then explicit defaults, and passed down to every command.

use std::io::IsTerminal;
use std::path::PathBuf;

use returnee_store::laptop::sealing::Passphrase;

/// Everything a command needs to know about where and how it runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The local store's folder.
    pub data_dir: PathBuf,
    /// Colours in human output (off when `NO_COLOR` is set or output is not a terminal).
    pub color: bool,
    /// Whether a person is at the keyboard (stdin and stdout are terminals).
    pub interactive: bool,
    /// Whether to draw progress bars (stderr is a terminal).
    pub progress: bool,
    /// Whether standard output is a terminal (tables get borders).
    pub tty_out: bool,
    /// How wide human tables may be: `COLUMNS`, else the terminal's width;
    /// `None` (output to a pipe or file) means no limit.
    pub columns: Option<u16>,
    /// The name a new store gives this device when `init` has no `--device-name`.
    pub default_device_name: String,
    /// A PEM file of extra certificate authorities to trust (a private CA).
    pub ca_file: Option<PathBuf>,
    /// The passphrase of an encrypted store, from `RETURNEE_PASSPHRASE`
    /// (without it, asked on a terminal when the store is encrypted).
    pub passphrase: Option<Passphrase>,
    /// The new passphrase of `passphrase change`, from
    /// `RETURNEE_PASSPHRASE_NEW` (without it, asked twice on a terminal).
    pub new_passphrase: Option<Passphrase>,
}

/// The environment variables the client reads, once, at start-up.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub no_color: bool,
    pub hostname: Option<String>,
    /// `RETURNEE_PASSPHRASE` (an empty value counts as unset).
    pub passphrase: Option<Passphrase>,
    /// `COLUMNS`, when it is a number.
    pub columns: Option<u16>,
    /// `RETURNEE_PASSPHRASE_NEW` (an empty value counts as unset).
    pub new_passphrase: Option<Passphrase>,
}

impl Environment {
    pub fn capture() -> Self {
        Environment {
            no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
            hostname: std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()),
            passphrase: std::env::var("RETURNEE_PASSPHRASE")
                .ok()
                .filter(|s| !s.is_empty())
                .map(Passphrase::new),
            columns: std::env::var("COLUMNS")
                .ok()
                .and_then(|c| c.trim().parse().ok())
                .filter(|c| *c > 0),
            new_passphrase: std::env::var("RETURNEE_PASSPHRASE_NEW")
                .ok()
                .filter(|s| !s.is_empty())
                .map(Passphrase::new),
        }
    }
}

impl Config {
    /// `data_dir` comes from `--data-dir` or `RETURNEE_DATA_DIR` (clap reads
    /// both); without either, the platform's data folder (~/.local/share/returnee).
    pub fn load(data_dir: Option<PathBuf>, ca_file: Option<PathBuf>, env: &Environment) -> Self {
        let data_dir = data_dir.unwrap_or_else(default_data_dir);
        let tty_out = std::io::stdout().is_terminal();
        Config {
            tty_out,
            columns: env.columns.or_else(|| {
                // comfy-table asks the terminal when its output is one.
                tty_out
                    .then(|| comfy_table::Table::new().width())
                    .flatten()
                    .filter(|w| *w > 0)
            }),
            data_dir,
            color: !env.no_color && std::io::stdout().is_terminal(),
            interactive: std::io::stdin().is_terminal() && std::io::stdout().is_terminal(),
            progress: std::io::stderr().is_terminal(),
            default_device_name: env.hostname.clone().unwrap_or_else(|| "laptop".into()),
            ca_file,
            passphrase: env.passphrase.clone(),
            new_passphrase: env.new_passphrase.clone(),
        }
    }
}

fn default_data_dir() -> PathBuf {
    directories::ProjectDirs::from("org", "returnee", "returnee")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from("returnee-data"))
}
