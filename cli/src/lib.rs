//! `returnee`: the field worker's command-line client.
//!
//! It records families into a local store that works with no connection at
//! all (`returnee_store::laptop`), and syncs with the central server when a link is there
//! ([`client`], [`sync`]). Each subcommand is a module of [`commands`]: a thin
//! layer that parses, calls the store or the client, and prints.

pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod csv_format;
pub mod error;
pub mod keyring;
pub mod output;
pub mod sync;

pub use cli::Cli;
pub use config::{Config, Environment};
pub use error::CliError;

/// Runs one parsed command line.
pub fn run(cli: Cli, config: &Config) -> Result<(), CliError> {
    commands::run(cli.command, config)
}
