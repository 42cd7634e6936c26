//! `returnee completions SHELL` and `returnee man --out DIR`: shell
//! completion scripts (clap_complete) and man pages (clap_mangen), made
//! from the same clap definitions as the parser, so they never drift.

use std::path::Path;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::CliError;

pub fn completions(shell: clap_complete::Shell) -> Result<(), CliError> {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "returnee", &mut script);
    match std::io::Write::write_all(&mut std::io::stdout(), &script) {
        // Read by `head` or the like, which stopped early: not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::io("cannot write the completion script", e))
        }
        _ => Ok(()),
    }
}

/// Writes `returnee.1` and `returnee-SUBCOMMAND.1` (and deeper) into `out`.
pub fn man(out: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(out)
        .map_err(|e| CliError::io(format!("cannot make {}", out.display()), e))?;
    let cmd = Cli::command();
    clap_mangen::generate_to(cmd, out)
        .map_err(|e| CliError::io(format!("cannot write man pages to {}", out.display()), e))?;
    let pages = std::fs::read_dir(out)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "1"))
                .count()
        })
        .unwrap_or(0);
    println!(
        "wrote {pages} man pages to {} (read one with: man -l {}/returnee.1)",
        out.display(),
        out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every flag and argument of every subcommand says what it is for.
    #[test]
    fn every_argument_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {}", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "returnee", &mut missing);
        assert!(missing.is_empty(), "without help text: {missing:?}");
    }
}
