//! The `returnee` binary: parse, configure, run, map the error to an exit code.

use std::process::ExitCode;

use clap::Parser;
use returnee_cli::{Cli, Config, Environment};

// sled copies and frees many small buffers per write; mimalloc makes a
// bulk import markedly faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
