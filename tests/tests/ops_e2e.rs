//! What an operator monitors, through the real `returnee-server` binary:
//! `GET /metrics` on its own address after laptops synced, and the request
//! log (one line per request, JSON when asked, no personal data, no colour
//! codes when not on a terminal).

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use returnee_shared::DocType;
use returnee_shared::wire::{Health, Role};
use returnee_tests::Rng;
use returnee_tests::cluster::{Device, ServerProcess, family};

/// `GET url` over plain HTTP/1.0: (status, body).
fn get(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/"), |(h, _)| (h, &rest[h.len()..]));
    let mut s = TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// The value of the series `name{labels}` exactly as rendered (labels in
/// the exporter's order), if present.
fn series(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("a number"))
}

const NAME: &str = "Zarghuna Metricsova";
const DOC: &str = "TZK9988776";

#[test]
fn metrics_after_a_sync_show_every_series_and_the_json_log_holds_no_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server = ServerProcess::start_logging(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &[
            OsStr::new("--metrics-bind"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--log-format"),
            OsStr::new("json"),
        ],
        "info",
        Some(&log),
    );
    let metrics = server
        .metrics_url
        .clone()
        .expect("the metrics address is printed");
    assert_ne!(
        metrics.trim_end_matches("/metrics"),
        server.url,
        "metrics share the API's address"
    );
    // Not on the sync API.
    assert_eq!(get(&format!("{}/metrics", server.url)).0, 404);

    let mut admin = Device::new("admin");
    admin.enroll(&server.url, server.admin_code.as_deref().unwrap());
    let mut laptop = Device::new("laptop");
    laptop.enroll(&server.url, &admin.mint(Role::Field, &[]));
    let mut rng = Rng::new(17);
    let families = 40;
    for i in 0..families {
        let mut f = family(&mut rng);
        if i == 0 {
            f.head_name = Some(NAME.into());
            f.doc_type = DocType::PorCard;
            f.doc_number = Some(DOC.into());
            f.consent = true;
        }
        laptop.add(f);
    }
    let pushed = laptop.sync().pushed;
    assert_eq!(pushed as usize, families);
    let pulled = admin.sync().pulled;
    assert_eq!(pulled as usize, families);

    // The duplicate index takes the push in shortly after it is answered.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let (status, text) = get(&metrics);
        assert_eq!(status, 200, "{text}");
        if series(&text, "returnee_projection_lag_positions") == Some(0.0)
            || Instant::now() > deadline
        {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let value = |s: &str| series(&text, s).unwrap_or_else(|| panic!("no series {s} in:\n{text}"));
    assert!(
        value(r#"returnee_http_requests_total{method="POST",route="/v1/sync/push",status="200"}"#)
            >= 1.0
    );
    assert!(
        value(r#"returnee_http_requests_total{method="GET",route="/v1/sync/pull",status="200"}"#)
            >= 2.0
    );
    assert!(value(r#"returnee_http_request_duration_seconds_count{route="/v1/sync/push"}"#) >= 1.0);
    assert_eq!(
        value(r#"returnee_sync_operations_total{direction="push"}"#),
        families as f64
    );
    assert_eq!(
        value(r#"returnee_sync_operations_total{direction="pull"}"#),
        families as f64
    );
    assert!(value(r#"returnee_sync_batch_seconds_count{direction="push"}"#) >= 1.0);
    let fsyncs = value("returnee_journal_fsync_seconds_count");
    let fsync_time = value("returnee_journal_fsync_seconds_sum");
    assert!(fsyncs >= 1.0 && fsync_time > 0.0 && fsync_time < 10.0 * fsyncs);
    assert!(value("returnee_journal_bytes") > 1000.0);
    assert_eq!(value("returnee_log_position"), families as f64);
    assert_eq!(value("returnee_projection_lag_positions"), 0.0);
    assert_eq!(value("returnee_duplicate_queue_records"), 0.0);
    assert_eq!(value(r#"returnee_devices{state="enrolled"}"#), 2.0);
    assert_eq!(value(r#"returnee_devices{state="revoked"}"#), 0.0);
    assert!(
        text.contains("# TYPE returnee_journal_fsync_seconds histogram"),
        "{text}"
    );
    assert!(!text.contains(NAME) && !text.contains(DOC));
    server.stop();

    let log = std::fs::read_to_string(&log).unwrap();
    assert!(!log.contains(NAME) && !log.contains(DOC), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a log file");
    let laptop_id = laptop.store.device().unwrap().id.to_string();
    let mut requests = 0;
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v["message"] != "request" {
            continue;
        }
        requests += 1;
        for field in ["method", "route", "status", "ms", "device"] {
            assert!(!v[field].is_null(), "{field} missing: {line}");
        }
        if v["route"] == "/v1/sync/push" {
            assert_eq!(v["status"], 200, "{line}");
            assert_eq!(v["device"], laptop_id.as_str(), "{line}");
        }
    }
    // Enrollments, a code, pushes and pulls: one line each.
    assert!(requests >= 6, "{requests} request lines in:\n{log}");
}

#[test]
fn the_text_log_has_one_line_per_request_without_query_or_colour() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server = ServerProcess::start_logging(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &[],
        "info",
        Some(&log),
    );
    assert!(server.metrics_url.is_none());
    assert_eq!(get(&format!("{}/v1/health", server.url)).0, 200);
    let (status, _) = get(&format!("{}/v1/families?name={}", server.url, "Zarghuna"));
    assert_eq!(status, 404);
    server.stop();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log file:\n{log}"
    );
    assert!(
        !log.contains("Zarghuna") && !log.contains("families"),
        "{log}"
    );
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(" request ")).collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(
        lines[0].contains("route=/v1/health") && lines[0].contains("status=200"),
        "{log}"
    );
    assert!(
        lines[1].contains("route=unmatched") && lines[1].contains("status=404"),
        "{log}"
    );
}

/// A sync is as few round trips as it can be (each one a second or more
/// on a field link): the check-in carries the device names and the
/// server's protocols, so a sync with nothing to send and one page to
/// pull is two requests, and still learns both.
#[test]
fn a_sync_that_only_pulls_is_two_requests_and_learns_names_and_protocols() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let server = ServerProcess::start_logging(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &[OsStr::new("--log-format"), OsStr::new("json")],
        "info",
        Some(&log),
    );
    let mut admin = Device::new("kabul-desk");
    admin.enroll(&server.url, server.admin_code.as_deref().unwrap());
    let mut laptop = Device::new("torkham-laptop-2");
    laptop.enroll(&server.url, &admin.mint(Role::Field, &[]));
    laptop.add(family(&mut Rng::new(5)));
    assert_eq!(laptop.sync().pushed, 1);

    let summary = admin.sync();
    assert_eq!((summary.pushed, summary.pulled), (0, 1));
    assert_eq!(summary.server, Some(Health::current()));
    let laptop_id = laptop.store.device().unwrap().id;
    assert_eq!(
        admin.store.device_names().unwrap().get(&laptop_id),
        Some(&"torkham-laptop-2".to_string())
    );
    server.stop();

    let admin_id = admin.store.device().unwrap().id.to_string();
    let log = std::fs::read_to_string(&log).unwrap();
    let requests: Vec<String> = log
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|v| v["message"] == "request" && v["device"] == admin_id.as_str())
        .map(|v| {
            format!(
                "{} {}",
                v["method"].as_str().unwrap(),
                v["route"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        requests,
        [
            "POST /v1/admin/codes",
            "POST /v1/device/token",
            "GET /v1/sync/pull"
        ],
        "{log}"
    );
}
