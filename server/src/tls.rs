//! Serving over TLS: the certificate chain and private key files given with
//! `--tls-cert` / `--tls-key`, read and checked once at start-up into a
//! rustls configuration (the ring provider) that the listener uses.
//!
//! Every error names the file at fault and says how to fix it; none carries
//! the key's contents.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the certificate and key cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "cannot read the TLS {what} file {path}: {source}; check the path given with {flag} and that the server may read it"
    )]
    Read {
        what: &'static str,
        flag: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----): {detail}; pass the server's certificate (and its chain) with --tls-cert"
    )]
    NoCertificate { path: PathBuf, detail: String },
    #[error(
        "{path} holds no PEM private key (PKCS#8, PKCS#1 or SEC1): {detail}; pass the certificate's private key with --tls-key"
    )]
    NoKey { path: PathBuf, detail: String },
    #[error(
        "the private key in {key} does not match the certificate in {cert}; pass the key the certificate was issued for with --tls-key"
    )]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error(
        "cannot serve the certificate in {cert} with the key in {key}: {detail}; check that both files are the server's certificate and its private key"
    )]
    Unusable {
        cert: PathBuf,
        key: PathBuf,
        detail: String,
    },
}

/// The files TLS is served from, and the rustls configuration made of them.
#[derive(Debug, Clone)]
pub struct Tls {
    /// The PEM certificate chain, the server's own certificate first.
    pub cert_file: PathBuf,
    /// The PEM private key of that certificate.
    pub key_file: PathBuf,
    config: Arc<rustls::ServerConfig>,
}

impl Tls {
    /// Reads both files and checks that the key belongs to the certificate.
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Tls, TlsError> {
        let cert_pem = read(cert_file, "certificate", "--tls-cert")?;
        let key_pem = read(key_file, "private key", "--tls-key")?;
        let certs = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::NoCertificate {
                path: cert_file.to_path_buf(),
                detail: describe_pem(&e),
            })?;
        if certs.is_empty() {
            return Err(TlsError::NoCertificate {
                path: cert_file.to_path_buf(),
                detail: "the file has no certificate block".into(),
            });
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::NoKey {
            path: key_file.to_path_buf(),
            detail: match e {
                pem::Error::NoItemsFound => "the file has no private key block".into(),
                other => describe_pem(&other),
            },
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let unusable = |e: rustls::Error| match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                TlsError::Mismatch {
                    cert: cert_file.to_path_buf(),
                    key: key_file.to_path_buf(),
                }
            }
            other => TlsError::Unusable {
                cert: cert_file.to_path_buf(),
                key: key_file.to_path_buf(),
                detail: other.to_string(),
            },
        };
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(unusable)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(unusable)?;
        Ok(Tls {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            config: Arc::new(config),
        })
    }

    /// The rustls configuration the listener serves with.
    pub fn server_config(&self) -> rustls::ServerConfig {
        (*self.config).clone()
    }
}

fn read(path: &Path, what: &'static str, flag: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        flag,
        path: path.to_path_buf(),
        source,
    })
}

/// A PEM parsing error in words, without the file's contents.
fn describe_pem(e: &pem::Error) -> String {
    match e {
        pem::Error::NoItemsFound => "the file has no PEM block".into(),
        pem::Error::MissingSectionEnd { .. } => "a PEM block has no END line".into(),
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed".into(),
        pem::Error::Base64Decode(_) => "a PEM block is not valid base64".into(),
        pem::Error::Io(e) => e.to_string(),
        _ => "the PEM is malformed".into(),
    }
}
