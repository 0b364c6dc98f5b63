//! `SERVER_CERT_SHA256`: the installer may pin the server's TLS certificate
//! for enrollment, the moment the enrollment token is sent and the catalog
//! root is first trusted. The pin is checked in addition to the usual chain
//! and host name verification (the same roots as every other request: the
//! bundled web PKI roots and the agent's `ca_cert`), so a certificate from a
//! mis-issuing or intercepting CA is refused. Later requests are not
//! pinned: a renewed certificate must not cut enrolled agents off, and what
//! they install is signed content checked against the pinned root.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

use super::EnrollError;

/// Verifies like the web PKI verifier, then requires the end-entity
/// certificate's SHA-256 to be the pinned one.
#[derive(Debug)]
struct PinnedCertificate {
    inner: Arc<WebPkiServerVerifier>,
    sha256: [u8; 32],
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let found: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if found != self.sha256 {
            return Err(rustls::Error::General(format!(
                "the server's certificate has SHA-256 {}, the installer pins {} (SERVER_CERT_SHA256)",
                hex::encode(found),
                hex::encode(self.sha256)
            )));
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The TLS configuration of a pinned enrollment: `pin` is 64 lower-case hex
/// digits (checked by the configuration).
pub(super) fn pinned_tls(
    ca_cert: Option<&Path>,
    pin: &str,
) -> Result<rustls::ClientConfig, EnrollError> {
    let ca_err = |path: &Path, why: String| EnrollError::CaCert {
        path: path.to_owned(),
        why,
    };
    let mut sha256 = [0u8; 32];
    hex::decode_to_slice(pin, &mut sha256)
        .map_err(|e| EnrollError::TlsSetup(format!("SERVER_CERT_SHA256: {e}")))?;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_cert {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| ca_err(path, e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| ca_err(path, e.to_string()))?;
        for c in certs {
            roots.add(c).map_err(|e| ca_err(path, e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| EnrollError::TlsSetup(e.to_string()))?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| EnrollError::TlsSetup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCertificate { inner, sha256 }))
        .with_no_client_auth();
    Ok(config)
}
