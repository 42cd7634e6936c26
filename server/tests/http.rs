//! The server's HTTP contract, and its binary: JSON errors on every failure,
//! health without authentication, limits, and the start-up lines.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};

use returnee_server::{ServerConfig, prepare, spawn};
use returnee_shared::wire::{ErrorBody, PROTOCOL_HEADER};

fn start() -> (returnee_server::RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(dir.path().join("data"));
    config.max_body = 64 * 1024;
    let prepared = prepare(config).unwrap();
    let running = spawn(prepared, TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
    (running, dir)
}

fn client() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // No connection reuse: the server may close a connection after refusing
    // an oversized body, and the next request must not inherit it.
    reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

#[track_caller]
fn error_of(resp: reqwest::blocking::Response, status: u16, code: &str) -> ErrorBody {
    assert_eq!(resp.status().as_u16(), status);
    let body: ErrorBody = resp.json().expect("a JSON error body");
    assert_eq!(body.error, code, "{}", body.message);
    assert!(!body.message.is_empty());
    body
}

#[test]
fn health_answers_without_authentication() {
    let (server, _dir) = start();
    let resp = client()
        .get(format!("{}/v1/health", server.url()))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: serde_json::Value = resp.json().unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["protocol"], 2);
    assert_eq!(body["accepts"], serde_json::json!([1, 2]));
}

#[test]
fn every_failure_is_a_json_error() {
    let (server, _dir) = start();
    let c = client();
    let url = server.url();
    // No credential.
    let e = error_of(
        c.get(format!("{url}/v1/sync/pull"))
            .header(PROTOCOL_HEADER, "2")
            .send()
            .unwrap(),
        401,
        "unauthorized",
    );
    assert!(e.message.contains("enroll"));
    // A sync request that does not say its protocol.
    let e = error_of(
        c.get(format!("{url}/v1/sync/pull"))
            .bearer_auth("rt_x")
            .send()
            .unwrap(),
        400,
        "bad_request",
    );
    assert!(e.message.contains(PROTOCOL_HEADER), "{}", e.message);
    // A wrong method on a path that exists: 405, and what it takes.
    let resp = c.get(format!("{url}/v1/sync/push")).send().unwrap();
    assert_eq!(resp.headers()["allow"], "POST");
    let e = error_of(resp, 405, "method_not_allowed");
    assert!(e.message.contains("POST"), "{}", e.message);
    let resp = c
        .delete(format!("{url}/v1/admin/devices/x/revoke"))
        .send()
        .unwrap();
    error_of(resp, 405, "method_not_allowed");
    // A body that is not sent as JSON.
    error_of(
        c.post(format!("{url}/v1/enroll"))
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .unwrap(),
        415,
        "unsupported_media_type",
    );
    // A malformed query string.
    error_of(
        c.get(format!("{url}/v1/sync/pull?after=minus-one"))
            .header(PROTOCOL_HEADER, "2")
            .bearer_auth("rt_x")
            .send()
            .unwrap(),
        400,
        "bad_request",
    );
    // Unknown endpoint.
    error_of(
        c.get(format!("{url}/v2/nothing")).send().unwrap(),
        404,
        "not_found",
    );
    // A body that is not JSON.
    error_of(
        c.post(format!("{url}/v1/enroll"))
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .unwrap(),
        400,
        "bad_request",
    );
    // Too large.
    error_of(
        c.post(format!("{url}/v1/enroll"))
            .header("content-type", "application/json")
            .body(vec![b' '; 200 * 1024])
            .send()
            .unwrap(),
        413,
        "too_large",
    );
    // A wrong code.
    let e = error_of(
        c.post(format!("{url}/v1/enroll"))
            .json(&serde_json::json!({
                "protocol": 1,
                "device_id": uuid::Uuid::new_v4(),
                "code": "AAAA-BBBB-CCCC-DDDD",
                "device_name": "x"
            }))
            .send()
            .unwrap(),
        401,
        "unauthorized",
    );
    assert!(e.message.contains("code"));
    // Another protocol version.
    error_of(
        c.get(format!("{url}/v1/sync/pull"))
            .header(PROTOCOL_HEADER, "99")
            .bearer_auth("rt_x")
            .send()
            .unwrap(),
        400,
        "protocol_mismatch",
    );
}

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_returnee-server")
}

#[test]
fn the_binary_prints_its_address_and_the_first_admin_code_once() {
    let dir = tempfile::tempdir().unwrap();
    let run = |expect_code: bool| {
        let mut child = Command::new(binary())
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let port = first
            .strip_prefix("listening on http://127.0.0.1:")
            .expect(&first);
        assert!(port.parse::<u16>().unwrap() > 0, "the real port: {first}");
        if expect_code {
            let second = lines.next().unwrap().unwrap();
            let code = second
                .strip_prefix("admin enrollment code: ")
                .expect(&second);
            assert_eq!(code.len(), 19);
        }
        // Once it answers, SIGTERM stops it gracefully with exit code 0.
        let health = format!("http://127.0.0.1:{port}/v1/health");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while client().get(&health).send().is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the server never answered"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Command::new("kill")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "{status:?}");
        if !expect_code {
            assert!(
                lines.next().is_none(),
                "no second admin code on a later start"
            );
        }
    };
    run(true);
    run(false);
    // With the server stopped, `admin-code` prints a fresh one.
    let out = Command::new(binary())
        .args(["admin-code", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("admin enrollment code: "), "{text}");
}
