//! TLS end to end: a server serving HTTPS with a certificate from a private
//! CA made at run time, the real `returnee` binary trusting that CA with
//! `--ca`, a client trusting another CA (refused, nothing lost), a plain
//! HTTP client against the HTTPS port, and the real `returnee-server` binary
//! with good and bad certificate files.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use returnee_cli::client::{ClientError, ServerClient};
use returnee_shared::ReportFilter;
use returnee_shared::wire::Role;
use returnee_tests::cluster::{Device, ServerProcess, TestServer, binary};
use returnee_tests::{Store, add_args};

/// PEM files in a temporary folder: a test CA, a server certificate for
/// `localhost` and 127.0.0.1 signed by it with its key, and an unrelated CA.
struct Pki {
    dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    other_ca: PathBuf,
    /// The private key of the unrelated CA: a valid key that matches no server certificate.
    other_key: PathBuf,
}

fn ca(name: &str) -> (CertificateParams, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (params, KeyPair::generate().unwrap())
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("returnee-tls-")
            .tempdir()
            .unwrap();
        let write = |name: &str, text: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };

        let (ca_params, ca_key) = ca("returnee test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::from_params(&ca_params, &ca_key);
        let mut leaf =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "returnee test server");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();

        let (other_params, other_key) = ca("another CA");
        let other_cert = other_params.self_signed(&other_key).unwrap();

        Pki {
            ca: write("ca.pem", ca_cert.pem()),
            cert: write("server.pem", leaf_cert.pem()),
            key: write("server.key", leaf_key.serialize_pem()),
            other_ca: write("other-ca.pem", other_cert.pem()),
            other_key: write("other-ca.key", other_key.serialize_pem()),
            dir,
        }
    }

    /// A file in the PKI folder with `text` in it.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn add_family(store: &Store) -> String {
    let day = (chrono::Utc::now().date_naive() - chrono::Days::new(1)).to_string();
    store
        .ok(&add_args("torkham", &day, "1,0,0,1,0", "0,1,0,1,0"))
        .trim()
        .to_string()
}

fn server_families(admin: &Device) -> u64 {
    admin
        .client()
        .report(&ReportFilter::default(), None)
        .expect("server report over https")
        .totals
        .families
}

fn pending(store: &Store) -> u64 {
    store.json(&["status", "--json"])["pending"]
        .as_u64()
        .expect("status --json has pending")
}

/// A TLS server, its admin (trusting the test CA), and a store of the real
/// binary enrolled as a field device with `--ca ca.pem`.
fn enrolled_store(pki: &Pki) -> (TestServer, Device, Store) {
    let server = TestServer::start_tls(&pki.cert, &pki.key);
    let mut admin = Device::new("admin").trusting(&pki.ca);
    admin.enroll(&server.url(), &server.admin_code);
    let mut store = Store::init();
    store.set_ca(Some(&pki.ca));
    let out = store.ok(&[
        "enroll",
        "--server",
        &server.url(),
        "--code",
        &admin.mint(Role::Field, &[]),
    ]);
    assert!(!out.is_empty());
    (server, admin, store)
}

#[test]
fn a_device_enrolls_and_syncs_over_https_with_its_ca() {
    let pki = Pki::new();
    let (server, admin, store) = enrolled_store(&pki);
    let url = server.url();
    let port = url
        .strip_prefix("https://127.0.0.1:")
        .unwrap_or_else(|| panic!("an https address: {url}"));
    assert!(port.parse::<u16>().unwrap() > 0);

    add_family(&store);
    add_family(&store);
    assert_eq!(pending(&store), 2);
    store.ok(&["sync"]);
    assert_eq!(pending(&store), 0);
    assert_eq!(server_families(&admin), 2);
    // The CA given at enrollment is kept: later commands need no --ca.
    let mut store = store;
    store.set_ca(None);
    add_family(&store);
    store.ok(&["sync"]);
    assert_eq!(server_families(&admin), 3);
    // The status names the https server it syncs with.
    let status = store.json(&["status", "--json"]);
    assert!(status.to_string().contains(&url), "{status}");
}

#[test]
fn a_client_that_does_not_trust_the_ca_is_refused_and_loses_nothing() {
    let pki = Pki::new();
    let (_server, admin, mut store) = enrolled_store(&pki);
    add_family(&store);
    assert_eq!(pending(&store), 1);

    // Trusting only another CA (a --ca given now wins over the saved one).
    {
        store.set_ca(Some(pki.other_ca.as_path()));
        let run = store.run(&["sync"]);
        assert_ne!(run.code, 0, "sync must fail: {}", run.stderr);
        assert!(
            run.stderr.contains("certificate") && run.stderr.contains("not trusted"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("--ca"), "{}", run.stderr);
        assert!(!run.stderr.contains("cannot reach"), "{}", run.stderr);
        // Nothing lost: the family is still there and still pending.
        assert_eq!(pending(&store), 1);
        assert_eq!(
            store.json(&["report", "--json"])["families"].as_u64(),
            Some(1)
        );
        assert_eq!(server_families(&admin), 0);
    }

    // The same through the library, trusting another CA or only the
    // system's roots: a typed error, not "unreachable".
    for ca in [Some(pki.other_ca.as_path()), None] {
        let client = ServerClient::new(admin.client().base(), None, ca).unwrap();
        let err = client.health().unwrap_err();
        assert!(matches!(err, ClientError::Untrusted { .. }), "{err}");
    }

    // With the right CA again, the pending family goes up.
    store.set_ca(Some(&pki.ca));
    store.ok(&["sync"]);
    assert_eq!(pending(&store), 0);
    assert_eq!(server_families(&admin), 1);
}

#[test]
fn a_ca_file_without_a_certificate_is_a_usage_error() {
    let pki = Pki::new();
    let server = TestServer::start_tls(&pki.cert, &pki.key);
    let store = Store::init();
    let empty = pki.file("empty.pem", "");
    let run = store
        .run(&[
            "--ca",
            empty.to_str().unwrap(),
            "enroll",
            "--server",
            &server.url(),
            "--code",
            &server.admin_code,
        ])
        .expect_code(2);
    assert!(run.stderr.contains("empty.pem"), "{}", run.stderr);
    assert!(run.stderr.contains("--ca"), "{}", run.stderr);
}

#[test]
fn a_plain_http_client_gets_nothing_from_the_https_port() {
    let pki = Pki::new();
    let server = TestServer::start_tls(&pki.cert, &pki.key);
    let plain = format!("http://{}", server.running.addr());
    let store = Store::init();
    let run = store.run(&[
        "--ca",
        pki.ca.to_str().unwrap(),
        "enroll",
        "--server",
        &plain,
        "--code",
        &server.admin_code,
    ]);
    assert_ne!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    assert!(
        run.stderr.contains("write the address as https://"),
        "{}",
        run.stderr
    );
    assert!(
        ServerClient::new(&plain, None, None)
            .unwrap()
            .health()
            .is_err()
    );
    // The admin code was not spent: enrolling over https still works.
    let mut admin = Device::new("admin").trusting(&pki.ca);
    admin.enroll(&server.url(), &server.admin_code);
}

#[test]
fn the_server_binary_serves_https_with_its_certificate() {
    let pki = Pki::new();
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_tls(data.path(), "127.0.0.1:0", &pki.cert, &pki.key);
    let port = server
        .url
        .strip_prefix("https://127.0.0.1:")
        .unwrap_or_else(|| panic!("listening on https: {}", server.url));
    assert!(port.parse::<u16>().unwrap() > 0);
    let code = server.admin_code.clone().expect("a first start");
    let health = ServerClient::new(&server.url, None, Some(&pki.ca))
        .unwrap()
        .health()
        .expect("health over https");
    assert_eq!(health.status, "ok");
    let mut admin = Device::new("admin").trusting(&pki.ca);
    admin.enroll(&server.url, &code);
    assert_eq!(server_families(&admin), 0);
}

#[test]
fn the_server_binary_takes_its_certificate_from_the_environment() {
    let pki = Pki::new();
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary("returnee-server"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env("RETURNEE_SERVER_TLS_CERT", &pki.cert)
        .env("RETURNEE_SERVER_TLS_KEY", &pki.key)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        first.starts_with("listening on https://127.0.0.1:"),
        "{first}"
    );
}

/// Runs `returnee-server serve` with `args` added; it must stop at once.
fn serve_fails(data: &Path, args: &[&str], env: &[(&str, &Path)]) -> (i32, String, String) {
    let mut cmd = Command::new(binary("returnee-server"));
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(args)
        .env_remove("RETURNEE_SERVER_TLS_CERT")
        .env_remove("RETURNEE_SERVER_TLS_KEY")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_server_binary_refuses_bad_certificate_files_with_exit_code_2() {
    let pki = Pki::new();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    let cert = pki.cert.to_str().unwrap();
    let key = pki.key.to_str().unwrap();
    let garbage = pki.file("garbage.key", "this is not a key\n");
    let missing = pki.dir.path().join("missing.key");
    let key_as_cert = pki.key.to_str().unwrap();

    let cases: Vec<(Vec<&str>, &str, Vec<&str>)> = vec![
        // A file with no private key in it.
        (
            vec!["--tls-cert", cert, "--tls-key", garbage.to_str().unwrap()],
            "garbage.key",
            vec!["private key", "--tls-key"],
        ),
        // A file that does not exist.
        (
            vec!["--tls-cert", cert, "--tls-key", missing.to_str().unwrap()],
            "missing.key",
            vec!["cannot read", "--tls-key"],
        ),
        // A key of another certificate.
        (
            vec![
                "--tls-cert",
                cert,
                "--tls-key",
                pki.other_key.to_str().unwrap(),
            ],
            "other-ca.key",
            vec!["does not match", "server.pem", "--tls-key"],
        ),
        // A certificate file without a certificate.
        (
            vec!["--tls-cert", key_as_cert, "--tls-key", key],
            "server.key",
            vec!["no PEM certificate", "--tls-cert"],
        ),
    ];
    for (args, file, words) in cases {
        let (code, stdout, stderr) = serve_fails(&data_dir, &args, &[]);
        assert_eq!(code, 2, "{args:?}\n{stdout}\n{stderr}");
        assert!(stdout.is_empty(), "nothing listens: {stdout}");
        assert!(stderr.contains(file), "names {file}: {stderr}");
        for w in words {
            assert!(stderr.contains(w), "says {w:?}: {stderr}");
        }
        assert!(
            !stderr.contains("PRIVATE KEY-----"),
            "no key material: {stderr}"
        );
    }
    // The bad files stopped the start before the store was made.
    assert!(!data_dir.exists());

    // The same from the environment.
    let (code, _, stderr) = serve_fails(
        &data_dir,
        &[],
        &[
            ("RETURNEE_SERVER_TLS_CERT", &pki.cert),
            ("RETURNEE_SERVER_TLS_KEY", &garbage),
        ],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("garbage.key"), "{stderr}");

    // One flag without the other is a usage error too.
    for args in [["--tls-cert", cert], ["--tls-key", key]] {
        let (code, stdout, stderr) = serve_fails(&data_dir, &args, &[]);
        assert_eq!(code, 2, "{args:?}\n{stdout}\n{stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        assert!(
            stderr.contains("--tls-cert") && stderr.contains("--tls-key"),
            "{stderr}"
        );
    }
    assert!(!data_dir.exists());
}
