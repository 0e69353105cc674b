//! TLS for the SCIM listener: rustls with TLS 1.2 and 1.3 only, a certificate that SIGHUP can
//! swap without dropping connections, and a self-signed pair generated on first start when
//! the config asks for one.

use std::io::BufReader;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use sha2::{Digest, Sha256};

use crate::config::TlsConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}; set tls.self_signed = true to generate a certificate, or point tls.cert and tls.key at PEM files")]
    Read { path: String, source: std::io::Error },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: String },
    #[error("{path} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey { path: String },
    #[error("the private key in {path} is not usable: {message}")]
    BadKey { path: String, message: String },
    #[error("cannot write the self-signed certificate to {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error(
        "tls.self_signed creates a pair only when both files are missing, but {present} exists and {missing} \
         does not; restore {missing}, or remove {present} to generate a new pair"
    )]
    HalfPair { present: String, missing: String },
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Serves the current certificate to every handshake; `store` swaps it atomically.
#[derive(Debug)]
pub struct CertResolver {
    current: ArcSwap<CertifiedKey>,
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

impl CertResolver {
    pub fn store(&self, key: CertifiedKey) {
        self.current.store(Arc::new(key));
    }
}

/// Loads the certificate (creating a self-signed one first when configured and missing) and
/// builds the rustls server config around a swappable resolver.
pub fn server_config(tls: &TlsConfig, listen_host: IpAddr) -> Result<(Arc<ServerConfig>, Arc<CertResolver>), TlsError> {
    if tls.self_signed {
        match (tls.cert.exists(), tls.key.exists()) {
            (false, false) => generate_self_signed(&tls.cert, &tls.key, listen_host)?,
            (true, false) => return Err(half_pair(&tls.cert, &tls.key)),
            (false, true) => return Err(half_pair(&tls.key, &tls.cert)),
            (true, true) => {}
        }
    }
    let key = load_certified_key(&tls.cert, &tls.key)?;
    let resolver = Arc::new(CertResolver { current: ArcSwap::from_pointee(key) });
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    // HTTP/1.1 only: every SCIM client speaks it, and the listener repairs request targets
    // that clients send unencoded, which it can do only in HTTP/1 framing.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), resolver))
}

fn half_pair(present: &Path, missing: &Path) -> TlsError {
    TlsError::HalfPair { present: present.display().to_string(), missing: missing.display().to_string() }
}

/// Reads a PEM certificate chain and private key.
pub fn load_certified_key(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = read_chain(cert_path)?;
    let key = read_key(key_path)?;
    let signing_key = any_supported_type(&key)
        .map_err(|error| TlsError::BadKey { path: key_path.display().to_string(), message: error.to_string() })?;
    let certified = CertifiedKey::new(chain, signing_key);
    if let Err(error) = certified.keys_match() {
        if !matches!(error, rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) {
            return Err(TlsError::BadKey {
                path: key_path.display().to_string(),
                message: format!("it does not belong to the certificate in {}", cert_path.display()),
            });
        }
    }
    Ok(certified)
}

/// SHA-256 fingerprint of the leaf certificate, as colon-separated hex.
pub fn fingerprint(key: &CertifiedKey) -> String {
    let Some(leaf) = key.cert.first() else { return String::new() };
    Sha256::digest(leaf.as_ref())
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.display().to_string(), source })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_file(path)?;
    let chain: Vec<_> = rustls_pemfile::certs(&mut BufReader::new(bytes.as_slice()))
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: path.display().to_string() });
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read_file(path)?;
    rustls_pemfile::private_key(&mut BufReader::new(bytes.as_slice()))
        .ok()
        .flatten()
        .ok_or_else(|| TlsError::NoKey { path: path.display().to_string() })
}

/// Writes a self-signed certificate for the listen address (and `localhost`), valid for ten
/// years; the key file is readable by its owner only.
fn generate_self_signed(cert_path: &Path, key_path: &Path, listen_host: IpAddr) -> Result<(), TlsError> {
    let mut names = vec!["localhost".to_string()];
    if !listen_host.is_unspecified() {
        names.push(listen_host.to_string());
    } else {
        names.push("127.0.0.1".to_string());
    }
    let mut params = rcgen::CertificateParams::new(names).map_err(|error| TlsError::Generate(error.to_string()))?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "idpsync self-signed");
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
    let key_pair = rcgen::KeyPair::generate().map_err(|error| TlsError::Generate(error.to_string()))?;
    let cert = params.self_signed(&key_pair).map_err(|error| TlsError::Generate(error.to_string()))?;
    write_file(cert_path, cert.pem().as_bytes(), 0o644)?;
    write_file(key_path, key_pair.serialize_pem().as_bytes(), 0o600)?;
    tracing::info!(cert = %cert_path.display(), "generated a self-signed certificate");
    Ok(())
}

/// Writes `contents` to a temporary file beside `path` and renames it into place, so a reader
/// (or a crash) never leaves a partial PEM file behind.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let error = |source| TlsError::Write { path: path.display().to_string(), source };
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&folder).map_err(error)?;
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = folder.join(format!(".{name}.tmp"));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temporary)
        .and_then(|mut file| {
            file.write_all(contents)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, path))
        .and_then(|()| std::fs::File::open(&folder)?.sync_all());
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written.map_err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_pair_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let tls = TlsConfig { cert: dir.path().join("tls/cert.pem"), key: dir.path().join("tls/key.pem"), self_signed: true };
        let (_, first) = server_config(&tls, "127.0.0.1".parse().unwrap()).unwrap();
        let first = fingerprint(&first.current.load());
        let (_, second) = server_config(&tls, "127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(first, fingerprint(&second.current.load()));
        assert_eq!(first.len(), 32 * 3 - 1);
    }

    #[test]
    fn missing_files_without_self_signed_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let tls = TlsConfig { cert: dir.path().join("cert.pem"), key: dir.path().join("key.pem"), self_signed: false };
        let error = server_config(&tls, "127.0.0.1".parse().unwrap()).unwrap_err();
        assert!(error.to_string().contains("cert.pem"), "{error}");
    }
}
