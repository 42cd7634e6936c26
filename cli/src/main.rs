//! The `returnee` binary: parse, configure, run, map the error to an exit code.

use std::process::ExitCode;

use clap::Parser;
use returnee_cli::{Cli, Config, Environment};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = Config::load(
        cli.data_dir.clone(),
        cli.ca.clone(),
        &Environment::capture(),
    );
    match returnee_cli::run(cli, &config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
