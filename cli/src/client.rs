//! The HTTP client of the sync protocol: one method per endpoint, the wire
//! types of `returnee-shared` in and out, and errors that say what to do.

use std::path::Path;
use std::time::Duration;

use returnee_shared::reference::{CrossingDef, CrossingList};
use returnee_shared::wire::{
    AuditPage, AuditQuery, CodeRequest, CodeResponse, DeviceSummary, EnrollRequest, EnrollResponse,
    ErrorBody, ErrorCode, Health, PROTOCOL_HEADER, PROTOCOL_VERSION, PullQuery, PullResponse,
    PushRequest, PushResponse, SitesRequest, SyncCursor, TokenAnswer,
};
use returnee_shared::{Conflict, DeviceId, Op, Report, ReportFilter};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Errors talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach the server at {url} ({detail}); check the connection and the address. Nothing was lost: run the command again when the link is back"
    )]
    Unreachable { url: String, detail: String },
    #[error(
        "the server at {url} presented a certificate that is not trusted ({detail}). If the deployment uses its own certificate authority, pass its CA certificate with `--ca FILE` (or RETURNEE_CA=FILE); otherwise check the address. Nothing was lost: run the command again"
    )]
    Untrusted { url: String, detail: String },
    /// The server's certificate is trusted but unfit to be a server's: its
    /// operator must replace it (`--ca` cannot help).
    #[error(
        "the server at {url} presented a certificate that cannot serve HTTPS: {why}. This is the server's certificate to fix, not this laptop's --ca: its operator can make a proper one with `returnee-server tls init --out DIR --name HOSTNAME`. Nothing was lost: run the command again once it is replaced"
    )]
    BadCertificate { url: String, why: &'static str },
    #[error(
        "cannot open a secure (TLS) connection to {url} ({detail}); check that the address is right and that the server serves HTTPS there. Nothing was lost: run the command again"
    )]
    Tls { url: String, detail: String },
    #[error("the server refused the request ({status} {code}): {message}")]
    Refused {
        status: u16,
        code: ErrorCode,
        message: String,
    },
    #[error(
        "this device is not enrolled with a server; run `returnee enroll --server URL --code CODE` first"
    )]
    NotEnrolled,
    #[error(
        "the server's answer could not be understood ({0}); client and server versions may differ"
    )]
    Protocol(String),
    #[error("{0}")]
    Setup(String),
}

impl ClientError {
    /// Whether the fault is in what the user asked (exit code 2).
    pub fn is_usage(&self) -> bool {
        match self {
            ClientError::NotEnrolled | ClientError::Setup(_) => true,
            ClientError::Refused { status, .. } => matches!(status, 400 | 404 | 409 | 422),
            _ => false,
        }
    }

    /// Whether the server said this device's credential expired (it must
    /// enroll again; nothing on the laptop is lost).
    pub fn is_expired(&self) -> bool {
        matches!(
            self,
            ClientError::Refused {
                code: ErrorCode::TokenExpired,
                ..
            }
        )
    }

    /// Whether the server said this device's credential is no longer valid.
    /// Whether the server has no such endpoint (one older than this
    /// laptop's release).
    pub fn is_unknown_endpoint(&self) -> bool {
        matches!(self, ClientError::Refused { status: 404, .. })
    }

    pub fn is_revoked(&self) -> bool {
        matches!(
            self,
            ClientError::Refused {
                code: ErrorCode::Revoked,
                ..
            }
        )
    }
}

/// Request bodies larger than this are sent zstd-compressed.
const COMPRESS_ABOVE: usize = 1024;
/// zstd's level for request bodies. On push batches of realistic family
/// records (names, document numbers, notes: `benchreal`) level 5 takes
/// 61 bytes a family where 1 and 3 take 66; it compresses at about
/// 140 MB/s, and a sync compresses each batch while the one before is on
/// the server, so the time it takes is not waited for.
const ZSTD_LEVEL: i32 = 5;

/// A request body as it goes on the wire.
struct Body {
    bytes: Vec<u8>,
    compressed: bool,
}

impl Body {
    /// Batches of similar records compress well: zstd, as Content-Encoding
    /// (the server decompresses; answers come back zstd-compressed too).
    fn of(json: Vec<u8>) -> Result<Body, ClientError> {
        if json.len() <= COMPRESS_ABOVE {
            return Ok(Body {
                bytes: json,
                compressed: false,
            });
        }
        let bytes = zstd::bulk::compress(&json, ZSTD_LEVEL)
            .map_err(|e| ClientError::Protocol(format!("cannot compress: {e}")))?;
        Ok(Body {
            bytes,
            compressed: true,
        })
    }
}

/// A push batch's body, encoded and compressed, ready to send: a sync
/// prepares the next while one is on its way.
pub struct PushBody(Body);

impl PushBody {
    /// The body of a push of these operations (each its JSON).
    pub fn of(ops: &[&[u8]]) -> Result<PushBody, ClientError> {
        let mut json = returnee_shared::wire::ops_body_start(ops);
        json.push(b'}');
        Ok(PushBody(Body::of(json)?))
    }
}

/// A connection to one server, optionally with a device credential.
#[derive(Clone)]
pub struct ServerClient {
    http: reqwest::blocking::Client,
    base: String,
    token: Option<String>,
}

fn install_crypto() {
    // reqwest is built without a default rustls provider; ring is ours.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl ServerClient {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`), trusting the
    /// certificates in `ca_file` in addition to the system's.
    pub fn new(
        base: &str,
        token: Option<String>,
        ca_file: Option<&Path>,
    ) -> Result<Self, ClientError> {
        let pem = ca_file.map(read_ca_file).transpose()?;
        let origin = ca_file.map(|p| p.display().to_string());
        Self::with_ca_pem(base, token, pem.as_deref().zip(origin.as_deref()))
    }

    /// A client for `base` trusting, in addition to the system's roots, the
    /// PEM certificates given (with where they came from, for messages).
    pub fn with_ca_pem(
        base: &str,
        token: Option<String>,
        ca: Option<(&[u8], &str)>,
    ) -> Result<Self, ClientError> {
        install_crypto();
        let base = base.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::Setup(format!(
                "'{base}' is not a server address; write it as https://HOST[:PORT] (or http:// on a test network)"
            )));
        }
        let mut builder = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("returnee/", env!("CARGO_PKG_VERSION")));
        if let Some((pem, origin)) = ca {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                ClientError::Setup(format!(
                    "{origin} is not a PEM certificate file: {e}; pass the deployment's CA certificate with --ca"
                ))
            })?;
            if certs.is_empty() {
                return Err(ClientError::Setup(format!(
                    "{origin} holds no PEM certificate (-----BEGIN CERTIFICATE-----); pass the deployment's CA certificate with --ca"
                )));
            }
            // Added to the system's roots; the server's certificate is
            // always verified (name and chain), never accepted blindly.
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Setup(format!("cannot set up HTTPS: {e}")))?;
        Ok(ServerClient { http, base, token })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request that got no answer: a certificate the client does not
    /// trust, another TLS failure, or no connection at all.
    fn failed(&self, e: &reqwest::Error) -> ClientError {
        let url = self.base.clone();
        let mut detail = describe(e);
        // A TLS server answers plain HTTP with bytes that are not HTTP.
        if url.starts_with("http://") && detail.contains("invalid HTTP version") {
            detail.push_str("; the server may speak HTTPS: write the address as https://");
        }
        if let Some(why) = certificate_fault(&detail) {
            return ClientError::BadCertificate { url, why };
        }
        match tls_error(e) {
            Some(rustls::Error::InvalidCertificate(_)) => ClientError::Untrusted { url, detail },
            Some(_) => ClientError::Tls { url, detail },
            None => ClientError::Unreachable { url, detail },
        }
    }

    fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::blocking::RequestBuilder,
    ) -> Result<T, ClientError> {
        let resp = self.answer(req)?;
        let bytes = resp.bytes().map_err(|e| self.failed(&e))?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Sends `req` with the protocol header and credential; the answer if
    /// it is a success, else the server's refusal.
    fn answer(
        &self,
        req: reqwest::blocking::RequestBuilder,
    ) -> Result<reqwest::blocking::Response, ClientError> {
        let mut req = req.header(PROTOCOL_HEADER, PROTOCOL_VERSION.to_string());
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let req = req.build().map_err(|e| self.failed(&e))?;
        let again = if repeatable(&req) {
            req.try_clone()
        } else {
            None
        };
        let resp = match (self.http.execute(req), again) {
            // A kept-alive connection that the server closed as this request
            // went out (it closes one after answering without reading a
            // request's body, as an older server's 404 does) fails before
            // any answer: sent once more, on a fresh connection.
            (Err(e), Some(again)) if closed_before_answer(&e) => self.http.execute(again),
            (sent, _) => sent,
        }
        .map_err(|e| self.failed(&e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let bytes = resp.bytes().map_err(|e| self.failed(&e))?;
        // Not an error body (a proxy's page, say): its status's name and
        // the start of its text.
        let body: ErrorBody = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            let text: String = String::from_utf8_lossy(&bytes).chars().take(200).collect();
            ErrorBody {
                error: ErrorCode::Unknown,
                message: match status.canonical_reason() {
                    Some(reason) if text.trim().is_empty() => reason.to_string(),
                    Some(reason) => format!("{reason}: {text}"),
                    None => text,
                },
            }
        });
        Err(ClientError::Refused {
            status: status.as_u16(),
            code: body.error,
            message: body.message,
        })
    }

    /// Copies the answer to a GET of `path` with `query` into `out`, as it
    /// arrives (an export); the number of bytes.
    pub fn download(
        &self,
        path: &str,
        query: &[(&str, String)],
        out: &mut dyn std::io::Write,
    ) -> Result<u64, ClientError> {
        let mut resp = self.answer(self.http.get(self.url(path)).query(query))?;
        resp.copy_to(out).map_err(|e| self.failed(&e))
    }

    fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.post_body(path, Body::of(bytes)?)
    }

    /// POSTs a JSON body, compressed when large ([`Body::of`]).
    fn post_body<T: DeserializeOwned>(&self, path: &str, body: Body) -> Result<T, ClientError> {
        let mut req = self
            .http
            .post(self.url(path))
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if body.compressed {
            req = req.header(reqwest::header::CONTENT_ENCODING, "zstd");
        }
        self.send(req.body(body.bytes))
    }

    fn get<Q: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        query: &Q,
    ) -> Result<T, ClientError> {
        let q = serde_json::to_value(query).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let pairs: Vec<(String, String)> = q
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_string),
                )
            })
            .collect();
        self.send(self.http.get(self.url(path)).query(&pairs))
    }

    pub fn health(&self) -> Result<Health, ClientError> {
        self.get("/v1/health", &())
    }

    pub fn enroll(
        &self,
        device_id: DeviceId,
        code: &str,
        device_name: &str,
    ) -> Result<EnrollResponse, ClientError> {
        self.post(
            "/v1/enroll",
            &EnrollRequest {
                protocol: PROTOCOL_VERSION,
                device_id,
                code: code.trim().to_string(),
                device_name: device_name.to_string(),
            },
        )
    }

    pub fn push(&self, ops: &[Op]) -> Result<PushResponse, ClientError> {
        self.post(
            "/v1/sync/push",
            &PushRequest {
                ops: std::borrow::Cow::Borrowed(ops),
            },
        )
    }

    /// [`ServerClient::push`] of operations already encoded as JSON (as the
    /// push queue keeps them): the same request, without decoding them first.
    pub fn push_json(&self, ops: &[&[u8]]) -> Result<PushResponse, ClientError> {
        self.push_body(PushBody::of(ops)?)
    }

    /// Sends a push batch prepared with [`PushBody::of`].
    pub fn push_body(&self, body: PushBody) -> Result<PushResponse, ClientError> {
        self.post_body("/v1/sync/push", body.0)
    }

    pub fn pull(&self, after: SyncCursor, limit: usize) -> Result<PullResponse, ClientError> {
        self.pull_with(after, limit, false)
    }

    /// [`ServerClient::pull`], with this device's own operations too when
    /// `own` (the full re-pull of a store rebuilt by `returnee repair`).
    pub fn pull_with(
        &self,
        after: SyncCursor,
        limit: usize,
        own: bool,
    ) -> Result<PullResponse, ClientError> {
        #[derive(Serialize)]
        struct Q {
            #[serde(flatten)]
            page: PullQuery,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            own: bool,
        }
        self.get(
            "/v1/sync/pull",
            &Q {
                page: PullQuery { after, limit },
                own,
            },
        )
    }

    /// What people call each device.
    pub fn device_names(&self) -> Result<Vec<returnee_shared::wire::DeviceName>, ClientError> {
        self.get("/v1/devices/names", &())
    }

    /// Puts this laptop's exports in the server's audit trail.
    pub fn note_exports(
        &self,
        notes: &[returnee_shared::wire::ExportNote],
    ) -> Result<returnee_shared::wire::ExportNotesRecorded, ClientError> {
        self.post(
            "/v1/audit/exports",
            &returnee_shared::wire::ExportNotes {
                notes: notes.to_vec(),
            },
        )
    }

    pub fn conflicts(&self) -> Result<Vec<Conflict>, ClientError> {
        self.get("/v1/conflicts", &())
    }

    /// Open duplicate candidates on the server (supervisor or admin).
    pub fn duplicates(&self) -> Result<Vec<returnee_shared::duplicates::Candidate>, ClientError> {
        self.get("/v1/duplicates", &())
    }

    pub fn report(&self, filter: &ReportFilter, by: Option<&str>) -> Result<Report, ClientError> {
        #[derive(Serialize)]
        struct Q<'a> {
            #[serde(flatten)]
            filter: &'a ReportFilter,
            by: Option<&'a str>,
        }
        self.get("/v1/reports", &Q { filter, by })
    }

    pub fn mint_code(&self, req: &CodeRequest) -> Result<CodeResponse, ClientError> {
        self.post("/v1/admin/codes", req)
    }

    /// Every enrolled device (admin).
    pub fn devices(&self) -> Result<Vec<DeviceSummary>, ClientError> {
        self.get("/v1/admin/devices", &())
    }

    /// Revokes a device (admin).
    pub fn revoke(&self, device: DeviceId) -> Result<DeviceSummary, ClientError> {
        self.post(&format!("/v1/admin/devices/{}/revoke", device.0), &())
    }

    /// One page of the audit trail after entry `after` (admin).
    pub fn audit(&self, after: u64, limit: usize) -> Result<AuditPage, ClientError> {
        self.get("/v1/admin/audit", &AuditQuery { after, limit })
    }

    /// This device's credential: its expiry, a new token when rotation is
    /// due, and the device's role and sites now.
    pub fn device_token(&self) -> Result<TokenAnswer, ClientError> {
        self.post("/v1/device/token", &())
    }

    /// This client, sending `token` from now on.
    pub fn with_token(mut self, token: String) -> ServerClient {
        self.token = Some(token);
        self
    }

    /// Gives a device its sites (admin).
    pub fn set_sites(
        &self,
        device: DeviceId,
        sites: Vec<String>,
    ) -> Result<DeviceSummary, ClientError> {
        self.post(
            &format!("/v1/admin/devices/{}/sites", device.0),
            &SitesRequest { sites },
        )
    }

    /// The crossings admins added, with the list's version.
    pub fn crossings(&self) -> Result<CrossingList, ClientError> {
        self.get("/v1/crossings", &())
    }

    /// Adds a crossing (admin).
    pub fn add_crossing(&self, def: &CrossingDef) -> Result<CrossingList, ClientError> {
        self.post("/v1/admin/crossings", def)
    }

    /// Deactivates an added crossing (admin).
    pub fn deactivate_crossing(&self, code: &str) -> Result<CrossingList, ClientError> {
        self.post(&format!("/v1/admin/crossings/{code}/deactivate"), &())
    }

    /// Asks a device to rotate its token at its next sync (admin).
    pub fn ask_rotation(&self, device: DeviceId) -> Result<DeviceSummary, ClientError> {
        self.post(&format!("/v1/admin/devices/{}/rotate", device.0), &())
    }
}

/// Requests that may reach the server twice with the effect of once: reads,
/// and the sync's writes, which the server recognises when repeated (a
/// push's operations by their ids, a check-in, export notes). Not enrolling
/// (a code's uses) nor an admin's changes.
fn repeatable(req: &reqwest::blocking::Request) -> bool {
    req.method() == reqwest::Method::GET
        || ["/v1/sync/push", "/v1/device/token", "/v1/audit/exports"].contains(&req.url().path())
}

/// Whether `e` is a connection closed before any answer came: hyper's
/// "connection closed before message completed".
fn closed_before_answer(e: &reqwest::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(inner) = src {
        if inner
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_incomplete_message)
        {
            return true;
        }
        src = inner.source();
    }
    false
}

/// What is wrong with a server certificate that rustls refused for what
/// it is rather than for who issued it (webpki names these faults only in
/// its error's text).
fn certificate_fault(detail: &str) -> Option<&'static str> {
    if detail.contains("CaUsedAsEndEntity") {
        Some(
            "it is a certificate authority's certificate (basic constraints CA:TRUE), used as the server's own; serve a certificate issued BY that authority, and give the authority's certificate to laptops with --ca",
        )
    } else if detail.contains("UnsupportedCertVersion") {
        Some(
            "it is an X.509 version 1 certificate, without the extensions (subject alternative names) a server certificate needs; issue a version 3 certificate with the server's name in subjectAltName",
        )
    } else {
        None
    }
}

/// The rustls error somewhere in `e`'s chain of causes. The connector wraps
/// it in `io::Error`s (even one in another), whose `source()` skips what they
/// wrap, so look inside those too.
fn tls_error(e: &reqwest::Error) -> Option<&rustls::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cause {
        let mut inner = err;
        loop {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return Some(tls);
            }
            match inner
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(wrapped) => inner = wrapped,
                None => break,
            }
        }
        cause = err.source();
    }
    None
}

/// The bytes of a CA file given with `--ca`.
pub fn read_ca_file(path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path)
        .map_err(|e| ClientError::Setup(format!("cannot read the CA file {}: {e}", path.display())))
}

fn describe(e: &reqwest::Error) -> String {
    use std::error::Error;
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    /// Reads one request (headers, then a body of its Content-Length).
    fn read_request(r: &mut BufReader<std::net::TcpStream>) -> String {
        let mut head = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        r.read_exact(&mut body).unwrap();
        head
    }

    const HEALTH: &str = r#"{"status":"ok","protocol":1,"accepts":[1]}"#;

    /// A server that answers the first request on its first connection,
    /// reads the second and closes that connection unanswered (a kept-alive
    /// connection closed as a request went out), then answers every
    /// request on the connections after: the number of connections.
    fn closing_server() -> (String, std::thread::JoinHandle<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{HEALTH}",
            HEALTH.len()
        );
        let server = std::thread::spawn(move || {
            let (first, _) = listener.accept().unwrap();
            let mut r = BufReader::new(first);
            read_request(&mut r);
            r.get_mut().write_all(answer.as_bytes()).unwrap();
            read_request(&mut r);
            drop(r);
            listener.set_nonblocking(true).unwrap();
            let mut connections = 1;
            let quiet = std::time::Instant::now();
            while quiet.elapsed() < Duration::from_millis(500) {
                match listener.accept() {
                    Ok((s, _)) => {
                        connections += 1;
                        s.set_nonblocking(false).unwrap();
                        let mut r = BufReader::new(s);
                        read_request(&mut r);
                        r.get_mut().write_all(answer.as_bytes()).unwrap();
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            connections
        });
        (url, server)
    }

    #[test]
    fn a_read_on_a_connection_closed_as_it_went_out_is_sent_again() {
        let (url, server) = closing_server();
        let client = ServerClient::new(&url, None, None).unwrap();
        client.health().unwrap();
        let again = client.health().expect("sent again on a fresh connection");
        assert_eq!(again.protocol, 1);
        assert_eq!(server.join().unwrap(), 2);
    }

    #[test]
    fn an_enrollment_on_a_connection_closed_as_it_went_out_is_not_sent_again() {
        let (url, server) = closing_server();
        let client = ServerClient::new(&url, None, None).unwrap();
        client.health().unwrap();
        let err = client
            .enroll(DeviceId(uuid::Uuid::nil()), "AAAA-BBBB-CCCC-DDDD", "laptop")
            .unwrap_err();
        assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
        // The code may have been used: the person runs the command again.
        assert!(err.to_string().contains("run the command again"), "{err}");
        assert_eq!(server.join().unwrap(), 1);
    }
}
