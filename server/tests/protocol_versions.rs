//! The server takes the protocol before its own: requests recorded from a
//! protocol 1 laptop (`fixtures/protocol1-session.json`) enroll, push and
//! pull as they did, and what they push reaches newer devices unchanged.
//! A version outside the accepted ones is a clear 400.

use std::net::TcpListener;

use returnee_server::{ServerConfig, prepare, spawn};
use returnee_shared::wire::{ErrorBody, PROTOCOL_HEADER};
use serde_json::{Value, json};

const SESSION: &str = include_str!("fixtures/protocol1-session.json");

struct Api {
    url: String,
    http: reqwest::blocking::Client,
}

impl Api {
    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.url));
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        if let Some(body) = body {
            req = req.body(serde_json::to_vec(body).unwrap());
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    }

    /// A protocol 2 request with a token.
    fn v2(&self, method: &str, path: &str, token: &str, body: Option<&Value>) -> Value {
        let headers = [
            (PROTOCOL_HEADER, "2".to_string()),
            ("authorization", format!("Bearer {token}")),
            ("content-type", "application/json".to_string()),
        ];
        let (status, answer) = self.send(method, path, &headers, body);
        assert_eq!(status, 200, "{method} {path}: {answer}");
        answer
    }
}

fn fill(text: &str, code: &str, token: &str) -> String {
    text.replace("{{CODE}}", code).replace("{{TOKEN}}", token)
}

/// A server in a temporary folder (kept while the first two live), a
/// client of its API, and its first admin code.
fn serve() -> (
    tempfile::TempDir,
    returnee_server::RunningServer,
    Api,
    String,
) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let prepared = prepare(ServerConfig::new(dir.path().join("data"))).unwrap();
    let admin_code = prepared.initial_admin_code.clone().unwrap();
    let server = spawn(prepared, TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
    let api = Api {
        url: server.url(),
        http: reqwest::blocking::Client::new(),
    };
    (dir, server, api, admin_code)
}

#[test]
fn a_protocol_1_laptop_enrolls_pushes_and_pulls_as_it_did() {
    let (_dir, _server, api, admin_code) = serve();
    // A protocol 2 admin, who mints the old laptop's code and pushes a
    // family with a field the old laptop does not know.
    let (status, admin) = api.send(
        "POST",
        "/v1/enroll",
        &[("content-type", "application/json".into())],
        Some(
            &json!({"protocol": 2, "device_id": "0192f5a4-1d2e-7c3b-9a1f-5e6d7c8b9a00",
                     "code": admin_code, "device_name": "admin-v2"}),
        ),
    );
    assert_eq!(status, 200, "{admin}");
    let admin_token = admin["token"].as_str().unwrap().to_string();
    let minted = api.v2(
        "POST",
        "/v1/admin/codes",
        &admin_token,
        Some(&json!({"role": "field", "sites": ["torkham"], "uses": 1})),
    );
    let code = minted["code"].as_str().unwrap().to_string();
    let later = json!({"id": "0192f5a4-2000-7000-8000-00000000a0ff",
        "record": "0192f5a4-2000-7000-8000-00000000b0ff",
        "device": "0192f5a4-1d2e-7c3b-9a1f-5e6d7c8b9a00", "at": "2026-11-21T09:00:00Z",
        "change": {"kind": "create", "fields": {"crossing": "torkham", "crossed_on": "2026-11-21",
            "return_type": "spontaneous", "departure_province": "PK-PB", "destination_province": "AF-KAB",
            "members": {"males": [0, 0, 0, 1, 0], "females": [0, 0, 0, 1, 0]},
            "phone_contact": {"digits": "0700123456"}}}});
    let ack = api.v2(
        "POST",
        "/v1/sync/push",
        &admin_token,
        Some(&json!({"ops": [later]})),
    );
    assert_eq!(ack["applied"], 1, "{ack}");

    // The recorded protocol 1 session, request by request.
    let session: Value = serde_json::from_str(SESSION).unwrap();
    let mut token = String::new();
    let mut pushed = Vec::new();
    for step in session["requests"].as_array().unwrap() {
        let step: Value = serde_json::from_str(&fill(&step.to_string(), &code, &token)).unwrap();
        let method = step["method"].as_str().unwrap();
        let path = step["path"].as_str().unwrap();
        let headers: Vec<(&str, String)> = step["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap().to_string()))
            .collect();
        let (status, answer) = api.send(method, path, &headers, step.get("body"));
        assert_eq!(status, step["expect"], "{method} {path}: {answer}");
        match path {
            "/v1/health" => {
                assert_eq!(answer["protocol"], 2);
                assert!(answer["accepts"].as_array().unwrap().contains(&json!(1)));
            }
            "/v1/enroll" => token = answer["token"].as_str().unwrap().to_string(),
            "/v1/sync/push" => {
                assert_eq!(answer["applied"], 2, "{answer}");
                assert_eq!(answer["rejected"], json!([]));
                pushed = step["body"]["ops"].as_array().unwrap().clone();
            }
            _ => {
                // The pull: the newer family, with the field it does not
                // know as it was sent (the known ones with their defaults).
                let ops = answer["ops"].as_array().unwrap();
                assert_eq!(ops.len(), 1, "{answer}");
                assert_eq!(ops[0]["id"], later["id"]);
                let fields = &ops[0]["change"]["fields"];
                assert_eq!(fields["phone_contact"], json!({"digits": "0700123456"}));
                assert_eq!(fields["crossing"], "torkham");
            }
        }
    }
    // What the old laptop pushed reaches a newer device unchanged.
    let page = api.v2("GET", "/v1/sync/pull?after=0", &admin_token, None);
    assert_eq!(page["ops"].as_array().unwrap(), &pushed);
}

#[test]
fn a_protocol_the_server_does_not_accept_is_a_clear_400() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = prepare(ServerConfig::new(dir.path().join("data"))).unwrap();
    let server = spawn(prepared, TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
    let http = reqwest::blocking::Client::new();
    for version in ["0", "3", "two"] {
        let resp = http
            .get(format!("{}/v1/sync/pull", server.url()))
            .header(PROTOCOL_HEADER, version)
            .bearer_auth("rt_x")
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        let body: ErrorBody = resp.json().unwrap();
        assert_eq!(body.error, "protocol_mismatch");
        assert!(
            body.message.contains("accepts 1 to 2") || version == "two",
            "{}",
            body.message
        );
    }
    let resp = http
        .post(format!("{}/v1/enroll", server.url()))
        .json(
            &json!({"protocol": 3, "device_id": "0192f5a4-1d2e-7c3b-9a1f-5e6d7c8b9a09",
                      "code": "AAAA-BBBB", "device_name": "from-the-future"}),
        )
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: ErrorBody = resp.json().unwrap();
    assert!(
        body.message.contains("ask the admin to update"),
        "{}",
        body.message
    );
}

/// The log keeps an operation of a current client as it came (it is not
/// encoded again); one that carries keys this release does not read,
/// comes from a client of the protocol before, or is shorter than this
/// release writes it (an erasure could not strip it in place), is kept as
/// this release writes it.
#[test]
fn the_log_keeps_a_current_client_s_operation_as_it_came() {
    let (_dir, _server, api, admin_code) = serve();
    let device = "0192f5a4-1d2e-7c3b-9a1f-5e6d7c8b9a01";
    let (status, admin) = api.send(
        "POST",
        "/v1/enroll",
        &[("content-type", "application/json".into())],
        Some(
            &json!({"protocol": 2, "device_id": device, "code": admin_code,
                     "device_name": "admin"}),
        ),
    );
    assert_eq!(status, 200, "{admin}");
    let token = admin["token"].as_str().unwrap().to_string();
    // An operation as this release writes it (`kind` first), for record `n`.
    let op = |n: u32| {
        let value = json!({"id": format!("0192f5a4-2000-7000-8000-0000000000{n:02}"),
            "record": format!("0192f5a4-2000-7000-8000-0000000001{n:02}"),
            "device": device, "at": "2026-11-21T09:00:00Z",
            "change": {"kind": "create", "fields": {"crossing": "torkham",
                "crossed_on": "2026-11-21", "return_type": "spontaneous",
                "departure_province": "PK-PB", "destination_province": "AF-KAB",
                "members": {"males": [0, 0, 0, 1, 0], "females": [0, 0, 0, 1, 0]}}}});
        let op: returnee_shared::merge::Op = serde_json::from_value(value).unwrap();
        serde_json::to_string(&op).unwrap()
    };
    let push = |protocol: &str, ops: &[String]| {
        let resp = api
            .http
            .post(format!("{}/v1/sync/push", api.url))
            .header(PROTOCOL_HEADER, protocol)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(format!("{{\"ops\":[{}]}}", ops.join(",")))
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let ack: Value = resp.json().unwrap();
        assert_eq!(ack["applied"], ops.len(), "{ack}");
    };
    let spaced = |json: String| json.replacen('{', "{ ", 1);
    let (a, b, c) = (op(1), op(2), op(3));
    let unknown = b.replacen('{', "{\"junk\":\"not read\",", 1);
    push("2", &[spaced(a.clone()), unknown]);
    push("1", &[spaced(c.clone())]);
    // `kind` first, but the default values left out: shorter than written.
    let short = format!(
        r#"{{"id":"0192f5a4-2000-7000-8000-000000000004","record":"0192f5a4-2000-7000-8000-000000000104","device":"{device}","at":"2026-11-21T09:00:00Z","change":{{"kind":"create","fields":{{"crossing":"torkham","crossed_on":"2026-11-21","return_type":"spontaneous","departure_province":"PK-PB","destination_province":"AF-KAB","members":{{"males":[0,0,0,1,0],"females":[0,0,0,1,0]}},"head_name":"Gul Bibi","consent":true}}}}}}"#
    );
    let written =
        serde_json::to_string(&serde_json::from_str::<returnee_shared::merge::Op>(&short).unwrap())
            .unwrap();
    assert!(written.len() > short.len(), "{written}");
    push("2", std::slice::from_ref(&short));
    let page = api
        .http
        .get(format!("{}/v1/sync/pull?after=0&own=true", api.url))
        .header(PROTOCOL_HEADER, "2")
        .bearer_auth(&token)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        page.contains(&format!("[{},{b},{c},{written}]", spaced(a))),
        "{page}"
    );
    assert!(!page.contains("junk"));
}
