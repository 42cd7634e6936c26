//! Building and running the server: open the store once, mint the first
//! admin code on an empty store, and serve (HTTP, or HTTPS when the config
//! carries TLS) on a listener the caller bound.

use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;

use actix_web::{App, web};
use utoipa_actix_web::AppExt;

use crate::config::ServerConfig;
use crate::error::{ApiError, catch_panics, json_errors};
use crate::openapi::{self, OpenApiJson, RouteTable};
use crate::routes;
use crate::state::AppState;
use returnee_store::server::DuplicateIndex;
use returnee_store::server::{ServerStore, StoreError};

/// A server ready to listen: its store is open.
pub struct Prepared {
    pub store: ServerStore,
    pub config: ServerConfig,
    /// The store's duplicate index (caught up here with what the log holds after
    /// the position it was through, after a crash or a stop mid-update).
    pub duplicates: DuplicateIndex,
    /// On the very first start with an empty store, the code the first admin enrolls with.
    pub initial_admin_code: Option<String>,
}

/// Opens the store and its duplicate index and, if the store is empty,
/// mints the first admin code.
pub fn prepare(config: ServerConfig) -> Result<Prepared, StoreError> {
    let store = ServerStore::open(&config.data_dir)?;
    // The crossings admins added, after the compiled ones.
    returnee_shared::reference::learn(&store.crossings()?);
    let duplicates = DuplicateIndex::open(&store)?;
    // An erasure the last run acknowledged but stopped before finishing.
    duplicates.rewrite_after_erasure()?;
    let initial_admin_code = if store.is_empty()? {
        Some(store.mint_code(
            returnee_shared::wire::Role::Admin,
            Vec::new(),
            1,
            None,
            chrono::Utc::now(),
        )?)
    } else {
        None
    };
    Ok(Prepared {
        store,
        config,
        duplicates,
        initial_admin_code,
    })
}

fn json_error(err: ApiError) -> actix_web::Error {
    err.into()
}

/// The actix server over `listener`; run it inside an actix system.
pub fn http_server(
    prepared: &Prepared,
    listener: TcpListener,
) -> std::io::Result<actix_web::dev::Server> {
    let state = web::Data::new(AppState {
        store: prepared.store.clone(),
        config: prepared.config.clone(),
        duplicates: prepared.duplicates.clone(),
    });
    let max_body = prepared.config.max_body;
    let api = openapi::document();
    let spec = web::Data::new(OpenApiJson(web::Bytes::from(openapi::document_json())));
    let table = web::Data::new(RouteTable::of(&api));
    let builder = actix_web::HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(spec.clone())
            .app_data(table.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(max_body)
                    .error_handler(|err, _| {
                        use actix_web::error::JsonPayloadError;
                        json_error(match err {
                            JsonPayloadError::Overflow { limit }
                            | JsonPayloadError::OverflowKnownLength { limit, .. } => {
                                ApiError::TooLarge(format!(
                                    "the request body is over {limit} bytes; send smaller batches"
                                ))
                            }
                            JsonPayloadError::ContentType => ApiError::UnsupportedMediaType(
                                "send the body as JSON with Content-Type: application/json".into(),
                            ),
                            other => ApiError::BadRequest(format!(
                                "the request body is not valid: {other}"
                            )),
                        })
                    }),
            )
            .app_data(web::QueryConfig::default().error_handler(|err, _| {
                json_error(ApiError::BadRequest(format!(
                    "the query is not valid: {err}"
                )))
            }))
            .into_utoipa_app()
            .configure(routes::configure)
            .into_app()
            .configure(crate::dashboard::configure)
            .default_service(web::to(openapi::no_endpoint))
            .wrap(json_errors())
            .wrap(actix_web::middleware::from_fn(catch_panics))
            .wrap(actix_web::middleware::Compress::default())
            .wrap(actix_web::middleware::from_fn(crate::logging::log_requests))
    })
    .on_connect(|conn, _| without_delay(conn));
    let mut server = match &prepared.config.tls {
        Some(tls) => builder.listen_rustls_0_23(listener, tls.server_config())?,
        None => builder.listen(listener)?,
    };
    if prepared.config.workers > 0 {
        server = server.workers(prepared.config.workers);
    }
    Ok(server.run())
}

/// Turns Nagle's algorithm off on an accepted connection, plain or TLS:
/// a response body goes out in several writes (the compressed chunks of a
/// pull page), and with Nagle on, its last short write waits for the
/// client's ACK of the one before, which Linux delays by 40 ms once a
/// connection carries its second request. Every sync that made a request
/// before its pull paid those 40 ms per page (PERFORMANCE.md).
fn without_delay(conn: &dyn std::any::Any) {
    use actix_web::rt::net::TcpStream;
    let tcp = match conn.downcast_ref::<TcpStream>() {
        Some(tcp) => tcp,
        None => match conn.downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<TcpStream>>() {
            Some(tls) => tls.get_ref().0,
            None => return,
        },
    };
    // Best effort: a connection it fails on is served as before.
    let _ = tcp.set_nodelay(true);
}

/// How long [`RunningServer::stop`] waits for the server to answer a
/// graceful stop: longer than any request of a test or a benchmark.
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// A server running on its own thread (for tests, benchmarks and embedding).
pub struct RunningServer {
    addr: SocketAddr,
    scheme: &'static str,
    handle: actix_web::dev::ServerHandle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    store: ServerStore,
    duplicates: DuplicateIndex,
}

impl RunningServer {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT`, or `https://HOST:PORT` when serving TLS.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The store, for inspection in tests.
    pub fn store(&self) -> &ServerStore {
        &self.store
    }

    /// The duplicate index, for inspection in tests and benchmarks.
    pub fn duplicates(&self) -> &DuplicateIndex {
        &self.duplicates
    }

    /// Stops gracefully and flushes the store.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(t) = self.thread.take() {
            // actix-server 2.6 can leave a graceful stop unanswered: its
            // workers gone, the server's command loop waits for them for
            // ever (seen once in CI, where it hung a test binary). The wait
            // is bounded; the thread is joined only when the stop was
            // answered. Acknowledged work is durable either way, and the
            // store is flushed below.
            let answered = actix_web::rt::System::new().block_on(async {
                actix_web::rt::time::timeout(STOP_WAIT, self.handle.stop(true))
                    .await
                    .is_ok()
            });
            if answered {
                let _ = t.join();
            } else {
                tracing::warn!(
                    seconds = STOP_WAIT.as_secs(),
                    "the embedded server did not answer its stop; its thread is left behind"
                );
            }
            let _ = self.duplicates.close();
            let _ = self.store.flush();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts `prepared` on `listener` in a thread of its own.
pub fn spawn(prepared: Prepared, listener: TcpListener) -> std::io::Result<RunningServer> {
    let addr = listener.local_addr()?;
    let scheme = prepared.config.scheme();
    let store = prepared.store.clone();
    let duplicates = prepared.duplicates.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = match http_server(&prepared, listener) {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return Ok(());
                }
            };
            let _ = tx.send(Ok(server.handle()));
            server.await
        })
    });
    let handle = rx
        .recv()
        .map_err(|_| std::io::Error::other("the server thread ended before starting"))??;
    Ok(RunningServer {
        addr,
        scheme,
        handle,
        thread: Some(thread),
        store,
        duplicates,
    })
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::Arc;

    use actix_web::dev::{Service, ServiceFactory};
    use actix_web::rt::net::TcpStream;

    use super::without_delay;

    /// A connected pair: the accepted end (tokio) and the client's (std).
    async fn accepted() -> (TcpStream, std::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (server, client)
    }

    #[test]
    fn a_plain_connection_sends_without_delay() {
        actix_web::rt::System::new().block_on(async {
            let (server, _client) = accepted().await;
            assert!(!server.nodelay().unwrap(), "Nagle is on by default");
            without_delay(&server);
            assert!(server.nodelay().unwrap());
        });
    }

    #[test]
    fn a_tls_connection_sends_without_delay() {
        let dir = tempfile::tempdir().unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        let tls = crate::tls::Tls::load(&cert, &key).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(made.cert.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client_config = Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        );
        actix_web::rt::System::new().block_on(async {
            let (server, mut client) = accepted().await;
            // The client's half of the handshake, on its own thread.
            let hello = std::thread::spawn(move || {
                let name = "localhost".try_into().unwrap();
                let mut conn = rustls::ClientConnection::new(client_config, name).unwrap();
                let mut stream = rustls::Stream::new(&mut conn, &mut client);
                stream.write_all(b"hello").unwrap();
                let mut echo = [0u8; 1];
                stream.read_exact(&mut echo).unwrap();
            });
            let acceptor = actix_tls::accept::rustls_0_23::Acceptor::new(tls.server_config());
            let acceptor = ServiceFactory::<TcpStream>::new_service(&acceptor, ())
                .await
                .unwrap();
            let mut stream = acceptor.call(server).await.unwrap();
            assert!(
                !stream.get_ref().0.nodelay().unwrap(),
                "Nagle is on by default"
            );
            without_delay(&stream);
            assert!(stream.get_ref().0.nodelay().unwrap());
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut got = [0u8; 5];
            stream.read_exact(&mut got).await.unwrap();
            stream.write_all(b"!").await.unwrap();
            stream.flush().await.unwrap();
            hello.join().unwrap();
        });
    }
}
