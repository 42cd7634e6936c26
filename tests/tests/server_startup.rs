//! The server's start-up as an operator meets it: folders that hold no
//! store, busy or malformed addresses, and `tls init`'s certificates,
//! through the real `returnee-server` and `returnee` binaries.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

use returnee_tests::Store;
use returnee_tests::cluster::{ServerProcess, binary};

fn server(args: &[&str], cwd: &Path) -> Output {
    Command::new(binary("returnee-server"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RETURNEE_SERVER_DATA_DIR")
        .env("RUST_LOG", "warn")
        .output()
        .expect("the server binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn commands_refuse_a_folder_without_a_store_and_serve_creates_nothing_it_cannot_serve() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in ["audit-verify", "admin-code"] {
        let out = server(&[cmd, "--data-dir", "TYPO"], dir.path());
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", stderr(&out));
        assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
        assert!(!dir.path().join("TYPO").exists(), "{cmd} made the folder");
        let out = server(&[cmd, "--data-dir", "."], dir.path());
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("holds no server store"),
            "{}",
            stderr(&out)
        );
    }

    let out = server(
        &["serve", "--data-dir", "d", "--bind", "localhost:8080x"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not an address"), "{}", stderr(&out));

    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = busy.local_addr().unwrap().to_string();
    let out = server(&["serve", "--data-dir", "d", "--bind", &bind], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("in use"), "{}", stderr(&out));
    assert!(!dir.path().join("d").exists(), "a busy port made the store");
}

#[test]
fn tls_init_makes_certificates_a_laptop_enrolls_with_and_a_ca_served_as_the_server_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = server(
        &[
            "tls",
            "init",
            "--out",
            "tls",
            "--name",
            "localhost",
            "--ip",
            "127.0.0.1",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("--tls-cert tls/server.pem"), "{printed}");
    assert!(printed.contains("--ca tls/ca.pem"), "{printed}");
    let tls = dir.path().join("tls");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |f: &str| std::fs::metadata(tls.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("ca-key.pem"), 0o600);
        assert_eq!(mode("server-key.pem"), 0o600);
    }
    // Never over an existing key.
    let again = server(
        &["tls", "init", "--out", "tls", "--name", "localhost"],
        dir.path(),
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );

    let srv = ServerProcess::start_tls(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &tls.join("server.pem"),
        &tls.join("server-key.pem"),
    );
    let mut laptop = Store::init();
    laptop.set_ca(Some(&tls.join("ca.pem")));
    let code = srv.admin_code.clone().expect("first start shows a code");
    laptop.ok(&["enroll", "--server", &srv.url, "--code", &code]);
    laptop.ok(&["sync"]);
    srv.stop();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let data = dir.path().join("data");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700, "the server's data folder");
        for e in std::fs::read_dir(&data).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                assert_eq!(mode(&p), 0o600, "{}", p.display());
            }
        }
    }

    // The CA's own certificate served as the server's: named for what it is.
    let srv = ServerProcess::start_tls(
        &dir.path().join("data2"),
        "127.0.0.1:0",
        &tls.join("ca.pem"),
        &tls.join("ca-key.pem"),
    );
    let mut other = Store::init();
    other.set_ca(Some(&tls.join("ca.pem")));
    let code = srv.admin_code.clone().unwrap();
    let run = other.run(&["enroll", "--server", &srv.url, "--code", &code]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("certificate authority's certificate"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("tls init"), "{}", run.stderr);
    srv.stop();
}
