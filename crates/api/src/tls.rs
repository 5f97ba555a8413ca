//! TLS for clients: the Redis and HTTP listeners can speak TLS (1.2 and
//! 1.3, the *ring* provider), with a certificate the operator gives or
//! `gyre cert client-tls` issues under the cluster CA; optionally a client
//! certificate (`gyre cert client`) authenticates its user.
//!
//! ```
//! use gyre_api::tls::ClientTls;
//!
//! // A certificate and key, PEM (here: garbage, refused with why).
//! let err = ClientTls::from_pem("not a certificate", "not a key", None).unwrap_err();
//! assert!(err.to_string().contains("certificate"));
//! ```

use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why client TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// The certificate (chain) PEM holds no certificate, or a broken one.
    #[error("bad client TLS certificate: {0}")]
    Certificate(String),
    /// The key PEM holds no private key, or a broken one.
    #[error("bad client TLS key: {0}")]
    Key(String),
    /// rustls refused the pair (a key that does not match, say).
    #[error("cannot use the client TLS certificate and key: {0}")]
    Config(String),
}

/// The client-facing TLS of a node: a certificate chain and its key.
#[derive(Clone)]
pub struct ClientTls {
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls").finish_non_exhaustive()
    }
}

impl ClientTls {
    /// TLS with the certificate chain `cert_pem` (the server's first) and
    /// its private key `key_pem`. With `client_ca_pem`, a client may also
    /// present a certificate, which must chain to that CA: one issued for a
    /// user (`gyre cert client`, named `<hex>.user.gyre`) authenticates the
    /// connection as that user, if the node's config has it. Clients without
    /// one authenticate as usual.
    ///
    /// # Errors
    /// [`TlsSetupError`] saying what is wrong with which.
    pub fn from_pem(
        cert_pem: &str,
        key_pem: &str,
        client_ca_pem: Option<&str>,
    ) -> Result<Self, TlsSetupError> {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| TlsSetupError::Certificate(e.to_string()))?;
        if chain.is_empty() {
            return Err(TlsSetupError::Certificate(
                "no certificate in the PEM".to_owned(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| TlsSetupError::Key(e.to_string()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError::Config(e.to_string()))?;
        let builder = match client_ca_pem {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                    let cert = cert.map_err(|e| TlsSetupError::Certificate(e.to_string()))?;
                    roots
                        .add(cert)
                        .map_err(|e| TlsSetupError::Certificate(e.to_string()))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .allow_unauthenticated()
                        .build()
                        .map_err(|e| TlsSetupError::Config(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|e| TlsSetupError::Config(e.to_string()))?;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Runs the handshake on an accepted connection (at most 10 s): a
    /// client that speaks plaintext, or does not trust the certificate,
    /// fails here and is closed.
    pub(crate) async fn accept<S>(&self, stream: S) -> std::io::Result<TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream)).await {
            Ok(result) => result,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "TLS handshake timed out",
            )),
        }
    }
}

/// The user a verified client certificate names (`<hex of the name>.user.gyre`),
/// if the client presented one.
pub(crate) fn peer_user<S>(stream: &TlsStream<S>) -> Option<String> {
    let cert = stream.get_ref().1.peer_certificates()?.first()?;
    let parsed = webpki::EndEntityCert::try_from(cert).ok()?;
    let names: Vec<&str> = parsed.valid_dns_names().collect();
    names.into_iter().find_map(|name| {
        let hex = name.strip_suffix(".user.gyre")?;
        let bytes: Option<Vec<u8>> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect();
        String::from_utf8(bytes?).ok()
    })
}
