//! `returnee-server tls init`: a private certificate authority and a server
//! certificate issued by it, with the extensions clients check (a v3
//! certificate; subject alternative names; "not a CA"; server
//! authentication). The CA certificate goes to every laptop (`enroll
//! --ca`); its key never leaves the folder it was made in.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// Why the files could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsInitError {
    #[error(
        "{0} already exists; tls init never overwrites a key: choose another --out folder, or remove the old files first"
    )]
    Exists(PathBuf),
    #[error("'{0}' is not a host name a certificate can name (letters, digits, dots and dashes)")]
    BadName(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make the certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
}

/// The files `tls init` wrote.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The CA certificate: give it to every laptop (`returnee enroll --ca`).
    pub ca_cert: PathBuf,
    /// The CA's private key: keep it offline; it issues new server certificates.
    pub ca_key: PathBuf,
    /// The server's certificate (`serve --tls-cert`).
    pub cert: PathBuf,
    /// The server's private key (`serve --tls-key`).
    pub key: PathBuf,
}

/// Makes a CA and a server certificate for `name` (and `ips`) in `out`
/// (created if needed), with rcgen's long default validity (a private CA
/// is replaced by making a new one, not by expiry).
pub fn init(out: &Path, name: &str, ips: &[IpAddr]) -> Result<TlsFiles, TlsInitError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return Err(TlsInitError::BadName(name.to_string()));
    }
    let files = TlsFiles {
        ca_cert: out.join("ca.pem"),
        ca_key: out.join("ca-key.pem"),
        cert: out.join("server.pem"),
        key: out.join("server-key.pem"),
    };
    for f in [&files.ca_cert, &files.ca_key, &files.cert, &files.key] {
        if f.exists() {
            return Err(TlsInitError::Exists(f.clone()));
        }
    }
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, format!("returnee private CA ({name})"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;

    let mut leaf = CertificateParams::new(vec![name.to_string()])?;
    leaf.distinguished_name.push(DnType::CommonName, name);
    leaf.subject_alt_names
        .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    let cert = leaf.signed_by(&key, &Issuer::from_params(&ca, &ca_key))?;

    std::fs::create_dir_all(out).map_err(|source| TlsInitError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    write(&files.ca_cert, &ca_cert.pem(), false)?;
    write(&files.ca_key, &ca_key.serialize_pem(), true)?;
    write(&files.cert, &cert.pem(), false)?;
    write(&files.key, &key.serialize_pem(), true)?;
    Ok(files)
}

fn write(path: &Path, text: &str, secret: bool) -> Result<(), TlsInitError> {
    let err = |source| TlsInitError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    let _ = secret;
    let mut f = options.open(path).map_err(err)?;
    std::io::Write::write_all(&mut f, text.as_bytes()).map_err(err)
}
