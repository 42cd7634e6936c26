//! `returnee-server`: the central sync server.
//!
//! Field laptops enroll with a one-time code (`ServerStore::enroll`, in `returnee-store`),
//! push the operations they made and pull everyone else's ([`routes`]). The
//! server merges with the pure rules of `returnee-shared`, keeps conflicts for
//! supervisors, finds duplicate families (`DuplicateIndex`), and answers
//! reports. actix-web over one sled store (`returnee-store`), over HTTPS when given a certificate
//! ([`tls`]).
//!
//! The binary (`main.rs`) only parses arguments and calls [`app`].

pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod exports;
pub mod logging;
pub mod metrics;
pub mod openapi;
pub mod pacing;
pub mod routes;
pub mod state;
pub mod tls;
pub mod tls_init;

pub use app::{Prepared, RunningServer, http_server, prepare, spawn};
pub use config::ServerConfig;
pub use error::ApiError;
pub use returnee_store::server::{DuplicateIndex, ServerStore, StoreError};
pub use tls::{Tls, TlsError};
