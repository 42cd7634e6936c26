//! The `returnee` binary: parse, configure, run, map the error to an exit code.

use std::process::ExitCode;

use clap::Parser;
use returnee_cli::{Cli, Config, Environment};

// sled copies and frees many small buffers per write; mimalloc makes a
// bulk import markedly faster than the system allocator. Without
// transparent huge pages: every first touch of a region mimalloc asked
// them for zeroes 2 MB, which cost about 60 MB of resident memory in a
// 1,000,000-family pull.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Best effort: a kernel without the setting keeps them.
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
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
