//! The published description: the checked-in copy is the one the code
//! makes, and the running server serves it.

use std::net::TcpListener;

use returnee_server::{ServerConfig, openapi, prepare, spawn};

const CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");

#[test]
fn the_checked_in_description_is_the_one_the_code_makes() {
    let checked_in = std::fs::read_to_string(CHECKED_IN).unwrap_or_default();
    let made = openapi::document_json();
    assert!(
        checked_in == made,
        "docs/openapi.json differs from the description the code makes; \
         regenerate it: cargo run -p returnee-server -- openapi > docs/openapi.json"
    );
}

#[test]
fn the_server_serves_the_description_and_names_its_protocols_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let prepared = prepare(ServerConfig::new(dir.path().join("data"))).unwrap();
    let server = spawn(prepared, TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let resp = reqwest::blocking::get(format!("{}/v1/openapi.json", server.url())).unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let served = resp.text().unwrap();
    assert_eq!(served, openapi::document_json());
    let doc: serde_json::Value = serde_json::from_str(&served).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    // The protocol header of the sync routes allows exactly the accepted versions.
    let [oldest, newest] = returnee_shared::wire::ACCEPTED_PROTOCOLS;
    for path in ["/v1/sync/push", "/v1/sync/pull"] {
        let op = doc["paths"][path]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap();
        let header = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == returnee_shared::wire::PROTOCOL_HEADER)
            .unwrap_or_else(|| panic!("{path} documents the protocol header"));
        assert_eq!(header["required"], true);
        assert_eq!(header["schema"]["minimum"], oldest);
        assert_eq!(header["schema"]["maximum"], newest);
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}
