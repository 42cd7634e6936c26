//! The `returnee` binary itself, run as a subprocess.
//!
//! Besides checking the basics, this file makes cargo build the binary
//! whenever the cli package's tests are built, so that the end-to-end tests
//! of `returnee-tests` (which run `target/<profile>/returnee`) find a fresh
//! one under `cargo test --workspace`.

use std::process::{Command, Output, Stdio};

fn returnee(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_returnee"))
        .args(args)
        .env_remove("RETURNEE_DATA_DIR")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("the returnee binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn version_names_the_program_and_the_package_version() {
    let out = returnee(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("returnee {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn commands_on_an_uninitialised_folder_say_to_run_init() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nothing-here");
    for args in [
        &["list"][..],
        &["report", "--json"],
        &["show", "0190f5a0-0000-7000-8000-000000000000"],
    ] {
        let mut all = vec!["--data-dir", data.to_str().unwrap()];
        all.extend(args);
        let out = returnee(&all);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains("returnee init"), "{args:?}: {err}");
        assert!(err.contains("nothing-here"), "{args:?}: {err}");
        assert_eq!(text(&out.stdout), "");
    }
    // Looking did not create anything.
    assert!(!data.exists());
}

#[test]
fn the_data_dir_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_returnee"))
            .args(args)
            .env("RETURNEE_DATA_DIR", dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    assert!(run(&["init"]).status.success());
    assert!(dir.path().join("conf").exists() || dir.path().join("db").exists());
    let out = run(&["list", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "[]");
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    let out = returnee(&["list", "--colour"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--colour"));
}

#[test]
fn completions_and_man_pages_cover_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = returnee(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for sub in ["find", "restore", "purge", "sync"] {
            assert!(script.contains(sub), "{shell} completes no `{sub}`");
        }
    }
    let out = returnee(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));

    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    let out = returnee(&["man", "--out", pages.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let find = std::fs::read_to_string(pages.join("returnee-find.1")).unwrap();
    assert!(find.contains("document number"), "{find}");
    assert!(pages.join("returnee.1").is_file());
    assert!(pages.join("returnee-admin-revoke.1").is_file());
}

#[test]
fn help_groups_global_options_and_names_the_environment() {
    let out = returnee(&["list", "--help"]);
    let help = text(&out.stdout);
    let global = help
        .find("Global options:")
        .expect("a Global options heading");
    assert!(help[global..].contains("--ca"), "{help}");
    assert!(!help[..global].contains("--ca"), "{help}");
    let out = returnee(&["--help"]);
    assert!(text(&out.stdout).contains("RETURNEE_PASSPHRASE"));
}
