//! TLS settings the edge and the server share (feature `tls`): the crypto
//! provider, a client that trusts one CA file, and a server certificate
//! with its key, each read from PEM files with errors that name the file.
//!
//! The provider is rustls on *ring*: it builds with the Rust toolchain
//! alone (aws-lc-rs needs CMake and a long C build). It offers no
//! post-quantum key exchange.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
pub use rustls::ClientConfig;

/// A TLS file that cannot be used, with what it should hold.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

/// rustls on *ring*, the one provider both sides use.
pub fn provider() -> Arc<CryptoProvider> {
    // Deprecated in favour of aws-lc-rs only for its lack of post-quantum
    // key exchange; see the module overview for why it is used.
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The PEM certificates in `path`; `what` names the setting in errors.
fn certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError(format!("{what} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(TlsError(format!(
            "{what} {}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(certs)
}

/// A client that trusts only the certificates in the PEM file `ca` (a
/// private CA, or a server's own self-signed certificate) and checks the
/// server's name against them. `what` names the setting in errors.
pub fn client_trusting(ca: &Path, what: &str) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(ca, what)? {
        roots
            .add(cert)
            .map_err(|e| TlsError(format!("{what} {}: {e}", ca.display())))?;
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("TLS protocol versions: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A server presenting the PEM certificate chain `cert` (its own
/// certificate first) with the PEM private key `key` (PKCS#8, RSA or EC),
/// offering HTTP/2 and HTTP/1.1.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = certificates(cert, "tls cert")?;
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        TlsError(format!(
            "tls key {}: {e}; give the certificate's private key as PEM (PKCS#8, RSA or EC)",
            key.display()
        ))
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("TLS protocol versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| {
            TlsError(format!(
                "tls key {} does not fit the certificate {}: {e}",
                key.display(),
                cert.display()
            ))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client that encrypts but does not authenticate the server: any
/// certificate is taken, only the handshake's signatures are checked. It
/// guards against listening, not against a server that pretends; it is
/// what PostgreSQL's `sslmode=prefer` and `require` mean without a root
/// certificate, and nothing else uses it.
pub fn client_unverified() -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("TLS protocol versions: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Takes any certificate; checks handshake signatures.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
