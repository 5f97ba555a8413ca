//! Mutual TLS between nodes, under a cluster certificate authority.
//!
//! # Trust model
//!
//! * Every cluster has one **cluster CA**: a self-signed ECDSA P-256
//!   certificate made by [`ClusterCa::generate`]. It is the *only* root any
//!   node trusts; the operating system's roots play no part.
//! * Every node holds a **node certificate** signed by the cluster CA
//!   ([`ClusterCa::issue_node`]). Its one DNS subject alternative name is
//!   [`node_dns_name`]`(id)`, `<16 hex digits>.node.gyre`: the node id is
//!   carried in the certificate, so holding a certificate for a name *is*
//!   being that node. The certificate is good for both TLS server and TLS
//!   client authentication, because every node both dials and accepts.
//! * Only TLS 1.3 is spoken, only with the *ring* provider, with ALPN
//!   [`ALPN`] (`gyre/1`). Session resumption and 0-RTT are off, so every
//!   connection makes both sides present and check a certificate afresh.
//!
//! ## What each side checks
//!
//! * **The dialling node (client)** connects with the server name
//!   [`node_dns_name`]`(expected_peer)`. rustls checks that the server's
//!   certificate chains to the cluster CA, is within its validity window, is
//!   meant for server authentication and is valid for that node's name. A
//!   node answering with another node's certificate, a certificate from
//!   another CA, or an expired certificate is refused during the handshake.
//!   (Calling [`verify_peer_is`] afterwards as well is cheap, and also
//!   refuses certificates that name further nodes besides; this CA never
//!   issues those.)
//! * **A node dialling a seed**, an address whose node id it does not know
//!   yet, uses [`seed_client_crypto`]: the server's certificate must still
//!   chain to the cluster CA, be valid now and name exactly one node, and is
//!   checked for that node's name; the id is then read from it
//!   ([`peer_node_id`]).
//! * **The accepting node (server)** requires a client certificate. rustls
//!   checks that it chains to the cluster CA, is within its validity window
//!   and is meant for client authentication. rustls does not know *which*
//!   node to expect, so it cannot check the name: the dialling node states
//!   its id in its first message, and the server must then call
//!   [`verify_peer_is`]`(connection, claimed)` and drop the connection on an
//!   error. [`peer_node_id`] reads the id from the certificate instead,
//!   for a server that wants to learn it without a claim.
//!
//! With TLS 1.3 a client finishes its handshake *before* the server has
//! looked at the client's certificate, so a client refused by the server
//! only finds out when the connection is closed under it (its first stream
//! fails), not when `connect` returns.
//!
//! # Keeping the CA key safe
//!
//! Whoever holds the cluster CA's private key can mint a certificate for any
//! node id and so impersonate any node. In production the CA key must be
//! kept offline, or at the very least off the nodes: nodes need only the CA
//! *certificate* ([`ClusterCa::cert_pem`]) and their own certificate and key.
//!
//! # Not yet supported
//!
//! Rotation: there is one CA and no revocation (no CRL, no OCSP). A node
//! certificate cannot be withdrawn before it expires, and replacing the CA
//! means re-issuing every node certificate and restarting every node.
//! Certificates issued by [`ClusterCa::issue_node`] are valid for
//! [`DEFAULT_NODE_CERT_VALIDITY`]; plan to re-issue them before then.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gyre_types::NodeId;
use quinn::crypto::rustls::{NoInitialCipherSuite, QuicClientConfig, QuicServerConfig};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType,
    SerialNumber,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The one ALPN protocol nodes speak, set on both server and client configs.
pub const ALPN: &[u8] = b"gyre/1";

/// The DNS suffix under which node names live: `<16 hex digits>.node.gyre`.
pub const NODE_DNS_SUFFIX: &str = "node.gyre";

/// The DNS name suffix of a client user's certificate: its only subject
/// alternative name is `<hex of the user name>.user.gyre`
/// ([`user_dns_name`]).
pub const USER_DNS_SUFFIX: &str = "user.gyre";

/// The name a client certificate of user `name` carries: the name in hex
/// (so that any user name is a valid DNS label) under [`USER_DNS_SUFFIX`].
pub fn user_dns_name(name: &str) -> String {
    let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.{USER_DNS_SUFFIX}")
}

/// How long a CA made by [`ClusterCa::generate`] is valid: ten years.
pub const DEFAULT_CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// How long a node certificate made by [`ClusterCa::issue_node`] is valid:
/// one year.
pub const DEFAULT_NODE_CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// How far into the past generated certificates are back-dated, so that a
/// peer whose clock is a little behind still accepts them.
const BACKDATE: Duration = Duration::from_secs(60 * 60);

/// The latest instant a certificate may name (the start of year 9999);
/// also keeps the date arithmetic below from overflowing.
const LATEST_SECS: u64 = 253_370_764_800;

/// A failure to make, load or check certificates, or to build TLS configs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The cluster name cannot go into a certificate.
    #[error("invalid cluster name {0:?}: must be 1 to 40 printable characters")]
    InvalidClusterName(String),
    /// A validity window was empty, or lay outside 1970 to 9999.
    #[error("invalid certificate validity window: {0}")]
    InvalidValidity(&'static str),
    /// rcgen failed to generate a key or a certificate, or to read a key.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// The system random number generator failed.
    #[error("the random number generator failed")]
    Random,
    /// A PEM file could not be read.
    #[error("cannot read {what} from {}: {source}", path.display())]
    Io {
        /// Which input: `"node certificate"`, `"node key"` or `"CA certificate"`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Text that should hold PEM did not parse.
    #[error("malformed PEM in {what}: {source}")]
    Pem {
        /// Which input.
        what: &'static str,
        /// Why.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// PEM text held no certificate.
    #[error("no certificate found in {what}")]
    NoCertificate {
        /// Which input.
        what: &'static str,
    },
    /// A certificate could not be parsed, or failed verification.
    #[error("invalid certificate: {0}")]
    Certificate(#[from] webpki::Error),
    /// The CA private key does not belong to the CA certificate.
    #[error("the CA private key does not belong to the CA certificate")]
    CaKeyMismatch,
    /// The CA certificate is not one this module can issue under.
    #[error("unsupported CA certificate: {0}")]
    UnsupportedCa(&'static str),
    /// A certificate does not name the expected node, or also names others.
    #[error("certificate is not for node {expected} (it names {found:?})")]
    WrongNode {
        /// The node the certificate should be for.
        expected: NodeId,
        /// The `*.node.gyre` names the certificate carries.
        found: Vec<String>,
    },
    /// A certificate carries no `<16 hex digits>.node.gyre` name.
    #[error("certificate names no node (it has no DNS name `<16 hex digits>.{NODE_DNS_SUFFIX}`)")]
    NoNodeName,
    /// A certificate carries several node names, or a malformed one.
    #[error("certificate does not name exactly one node: {0:?}")]
    AmbiguousNodeName(Vec<String>),
    /// The peer of a connection presented no certificate.
    #[error("the peer presented no certificate")]
    NoPeerCertificate,
    /// rustls refused the configuration (for example, key and certificate
    /// do not match).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// A certificate verifier could not be built.
    #[error("certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// The rustls config cannot be used for QUIC.
    #[error("QUIC TLS configuration: {0}")]
    Quic(#[from] NoInitialCipherSuite),
}

/// Result of this module's operations.
pub type Result<T> = std::result::Result<T, TlsError>;

/// The DNS name a node's certificate carries: `<16 hex digits>.node.gyre`.
///
/// Also the server name to dial a node with.
pub fn node_dns_name(node: NodeId) -> String {
    format!("{node}.{NODE_DNS_SUFFIX}")
}

/// The crypto provider every config here uses: *ring*, explicitly, so that
/// rustls never has to pick a process-wide default.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

// ---------------------------------------------------------------------------
// The cluster CA
// ---------------------------------------------------------------------------

/// The cluster's certificate authority: its certificate and private key.
///
/// Only needed to issue node certificates; nodes themselves need only
/// [`ClusterCa::cert_pem`]. Keep the key off the nodes in production (see the
/// [module documentation](self)).
pub struct ClusterCa {
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
}

impl ClusterCa {
    /// Creates a new self-signed CA for the cluster called `cluster`: an
    /// ECDSA P-256 key, common name `gyre cluster <cluster> CA`, valid from an
    /// hour ago for [`DEFAULT_CA_VALIDITY`].
    ///
    /// `cluster` must be 1 to 40 characters, none of them control characters.
    pub fn generate(cluster: &str) -> Result<Self> {
        if cluster.is_empty() || cluster.len() > 40 || cluster.chars().any(char::is_control) {
            return Err(TlsError::InvalidClusterName(cluster.to_owned()));
        }
        let now = SystemTime::now();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("gyre cluster {cluster} CA"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = ca_key_usages();
        let not_after = now
            .checked_add(DEFAULT_CA_VALIDITY)
            .ok_or(TlsError::InvalidValidity("CA expiry overflows"))?;
        set_validity(
            &mut params,
            now.checked_sub(BACKDATE).unwrap_or(now),
            not_after,
        )?;
        params.serial_number = Some(random_serial()?);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA saved with [`ClusterCa::cert_pem`] and [`ClusterCa::key_pem`].
    ///
    /// Checks that the key belongs to the certificate, and that certificates
    /// issued now name this CA exactly as its certificate names itself (so
    /// they chain to it). The CA's subject may consist only of single-valued
    /// attributes in UTF8String, PrintableString or IA5String form, as those
    /// made by [`ClusterCa::generate`] do.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self> {
        let cert_der = first_cert(cert_pem, "CA certificate")?;
        let key = KeyPair::from_pem(key_pem)?;
        let subject_name = {
            let ca = webpki::EndEntityCert::try_from(&cert_der)?;
            if ca.subject_public_key_info().as_ref() != key.subject_public_key_info().as_slice() {
                return Err(TlsError::CaKeyMismatch);
            }
            parse_name(ca.subject()).ok_or(TlsError::UnsupportedCa(
                "its subject name cannot be reproduced",
            ))?
        };
        let mut params = CertificateParams::default();
        params.distinguished_name = subject_name;
        params.key_usages = ca_key_usages();
        let ca = Self {
            issuer: Issuer::new(params, key),
            cert_pem: cert_pem.to_owned(),
            cert_der,
        };

        // Issue a throw-away certificate and check that its issuer field is
        // byte-for-byte the CA's subject: path building compares them so.
        let probe = ca.issue_node(NodeId::new(0))?;
        let probe_der = first_cert(&probe.cert_pem, "probe certificate")?;
        let probe = webpki::EndEntityCert::try_from(&probe_der)?;
        let ca_cert = webpki::EndEntityCert::try_from(&ca.cert_der)?;
        if probe.issuer() != ca_cert.subject() {
            return Err(TlsError::UnsupportedCa(
                "its subject name does not re-encode identically",
            ));
        }
        Ok(ca)
    }

    /// The CA certificate, PEM-encoded. Every node needs it.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER-encoded.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA private key, PKCS#8 PEM. Secret: store it where nodes cannot
    /// read it.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// Issues a certificate and fresh key for `node`, valid from an hour ago
    /// for [`DEFAULT_NODE_CERT_VALIDITY`].
    pub fn issue_node(&self, node: NodeId) -> Result<NodeCert> {
        let (not_before, not_after) = default_validity()?;
        self.issue_node_with_validity(node, not_before, not_after)
    }

    /// Issues a certificate and fresh key for `node`, valid from `not_before`
    /// to `not_after` (whole seconds; both must lie between 1970 and 9999,
    /// and `not_before` must come first).
    ///
    /// The certificate is an ECDSA P-256 end-entity certificate whose only
    /// subject alternative name is [`node_dns_name`]`(node)`, usable for both
    /// TLS server and TLS client authentication.
    pub fn issue_node_with_validity(
        &self,
        node: NodeId,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<NodeCert> {
        let (cert_pem, key_pem) = self.issue_leaf(
            format!("gyre node {node}"),
            vec![SanType::DnsName(node_dns_name(node).try_into()?)],
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            not_before,
            not_after,
        )?;
        Ok(NodeCert {
            node,
            cert_pem,
            key_pem,
        })
    }

    /// Issues a certificate and fresh key for the client-facing listeners
    /// (Redis, HTTP): server authentication only, for the host names and IP
    /// addresses in `names` that clients connect to, valid from an hour ago
    /// for [`DEFAULT_NODE_CERT_VALIDITY`]. Clients trust it by trusting this
    /// CA's certificate.
    ///
    /// # Errors
    /// [`TlsError::Rcgen`] for a name that is neither a DNS name nor an IP
    /// address, or none at all.
    pub fn issue_server(&self, names: &[String]) -> Result<IssuedCert> {
        if names.is_empty() {
            return Err(TlsError::InvalidValidity(
                "a client-facing certificate needs at least one name or address",
            ));
        }
        let sans = names
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ok(SanType::DnsName(n.clone().try_into()?)),
            })
            .collect::<Result<_>>()?;
        let (not_before, not_after) = default_validity()?;
        let (cert_pem, key_pem) = self.issue_leaf(
            format!("gyre clients {}", names[0]),
            sans,
            vec![ExtendedKeyUsagePurpose::ServerAuth],
            not_before,
            not_after,
        )?;
        Ok(IssuedCert { cert_pem, key_pem })
    }

    /// Issues a client certificate and fresh key for user `name` (client
    /// authentication only, named [`user_dns_name`]): a client presenting
    /// it to a node's TLS listener is that user, with the role the node's
    /// config gives it.
    ///
    /// # Errors
    /// [`TlsError::InvalidValidity`] for a name over 31 bytes (a DNS label
    /// holds 63 hex digits).
    pub fn issue_user(&self, name: &str) -> Result<IssuedCert> {
        if name.is_empty() || name.len() > 31 {
            return Err(TlsError::InvalidValidity(
                "a user name in a client certificate is 1 to 31 bytes",
            ));
        }
        let (not_before, not_after) = default_validity()?;
        let (cert_pem, key_pem) = self.issue_leaf(
            format!("gyre user {name}"),
            vec![SanType::DnsName(user_dns_name(name).try_into()?)],
            vec![ExtendedKeyUsagePurpose::ClientAuth],
            not_before,
            not_after,
        )?;
        Ok(IssuedCert { cert_pem, key_pem })
    }

    /// Signs an ECDSA P-256 end-entity certificate (a fresh key) named
    /// `common_name` with `sans` and `ekus`, valid from `not_before` to
    /// `not_after`; the certificate and key, PEM.
    fn issue_leaf(
        &self,
        common_name: String,
        sans: Vec<SanType>,
        ekus: Vec<ExtendedKeyUsagePurpose>,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<(String, String)> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = ekus;
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, not_before, not_after)?;
        params.serial_number = Some(random_serial()?);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Issues a certificate for `node` and returns it ready to use, trusting
    /// this CA: [`ClusterCa::issue_node`] then [`NodeCert::to_identity`].
    pub fn identity(&self, node: NodeId) -> Result<NodeIdentity> {
        self.issue_node(node)?.to_identity(&self.cert_pem)
    }
}

impl fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterCa")
            .field("cert_der_len", &self.cert_der.len())
            .finish_non_exhaustive()
    }
}

fn ca_key_usages() -> Vec<KeyUsagePurpose> {
    vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign]
}

/// A positive 128-bit random serial number.
fn random_serial() -> Result<SerialNumber> {
    let mut bytes = [0_u8; 16];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| TlsError::Random)?;
    bytes[0] &= 0x7f;
    Ok(SerialNumber::from_slice(&bytes))
}

/// Sets the validity window of `params` (whole seconds), checking it is
/// non-empty and lies between 1970 and 9999.
fn set_validity(
    params: &mut CertificateParams,
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<()> {
    let secs = |t: SystemTime| {
        let since_epoch = t
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_err(|_| TlsError::InvalidValidity("dates before 1970 are not supported"))?;
        if since_epoch.as_secs() >= LATEST_SECS {
            return Err(TlsError::InvalidValidity(
                "dates from 9999 on are not supported",
            ));
        }
        Ok(Duration::from_secs(since_epoch.as_secs()))
    };
    let (start, end) = (secs(not_before)?, secs(not_after)?);
    if start >= end {
        return Err(TlsError::InvalidValidity(
            "not_before must come before not_after",
        ));
    }
    // Cannot overflow (which would panic): both sums are before year 9999.
    params.not_before = rcgen::date_time_ymd(1970, 1, 1) + start;
    params.not_after = rcgen::date_time_ymd(1970, 1, 1) + end;
    Ok(())
}

// ---------------------------------------------------------------------------
// Node certificates and identities
// ---------------------------------------------------------------------------

/// From an hour ago (clocks differ) for [`DEFAULT_NODE_CERT_VALIDITY`].
fn default_validity() -> Result<(SystemTime, SystemTime)> {
    let now = SystemTime::now();
    let not_after = now
        .checked_add(DEFAULT_NODE_CERT_VALIDITY)
        .ok_or(TlsError::InvalidValidity("certificate expiry overflows"))?;
    Ok((now.checked_sub(BACKDATE).unwrap_or(now), not_after))
}

/// A certificate and its private key, PEM: for the client-facing listeners
/// ([`ClusterCa::issue_server`]) or a client user ([`ClusterCa::issue_user`]).
#[derive(Clone)]
pub struct IssuedCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM. Secret.
    pub key_pem: String,
}

/// A freshly issued node certificate and its private key, PEM-encoded, as
/// they would be written to a node's files.
#[derive(Clone)]
pub struct NodeCert {
    /// The node the certificate is for.
    pub node: NodeId,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM. Secret.
    pub key_pem: String,
}

impl NodeCert {
    /// Parses this certificate and key into an identity trusting the CA
    /// whose certificate is `ca_cert_pem`; see [`NodeIdentity::from_pem`].
    pub fn to_identity(&self, ca_cert_pem: &str) -> Result<NodeIdentity> {
        NodeIdentity::from_pem(self.node, &self.cert_pem, &self.key_pem, ca_cert_pem)
    }
}

impl fmt::Debug for NodeCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeCert")
            .field("node", &self.node)
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// What a node needs to speak mutual TLS: who it is, its certificate chain
/// and key, and the cluster CA it trusts.
pub struct NodeIdentity {
    /// This node's id; its certificate names it.
    pub node: NodeId,
    /// This node's certificate first, then any intermediates.
    pub chain: Vec<CertificateDer<'static>>,
    /// This node's private key.
    pub key: PrivateKeyDer<'static>,
    /// The cluster CA certificate: the only trusted root.
    pub ca: CertificateDer<'static>,
}

impl NodeIdentity {
    /// Parses an identity from PEM text: the node's certificate chain (its
    /// own certificate first), its private key (PKCS#8, PKCS#1 or SEC1) and
    /// the cluster CA certificate.
    ///
    /// Checks that the key matches the certificate, that the certificate
    /// names `node` (and no other node), and that the CA certificate can
    /// serve as a trust anchor. Does *not* check that the certificate chains
    /// to the CA or is currently valid (peers check that on every
    /// handshake); call [`NodeIdentity::verify_chain`] for an early warning.
    pub fn from_pem(node: NodeId, cert_pem: &str, key_pem: &str, ca_pem: &str) -> Result<Self> {
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|source| TlsError::Pem {
                what: "node certificate",
                source,
            })?;
        let Some(end_entity) = chain.first() else {
            return Err(TlsError::NoCertificate {
                what: "node certificate",
            });
        };
        verify_cert_is(end_entity, node)?;
        let key =
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|source| TlsError::Pem {
                what: "node key",
                source,
            })?;
        // Fails if the key is unusable or does not match the certificate.
        CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider())?;
        let ca = first_cert(ca_pem, "CA certificate")?;
        webpki::anchor_from_trusted_cert(&ca)?;
        Ok(Self {
            node,
            chain,
            key,
            ca,
        })
    }

    /// Reads the three PEM files and parses them with
    /// [`NodeIdentity::from_pem`].
    pub fn from_files(
        node: NodeId,
        cert_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
        ca_path: impl AsRef<Path>,
    ) -> Result<Self> {
        let read = |what: &'static str, path: &Path| {
            std::fs::read_to_string(path).map_err(|source| TlsError::Io {
                what,
                path: path.to_owned(),
                source,
            })
        };
        let cert = read("node certificate", cert_path.as_ref())?;
        let key = read("node key", key_path.as_ref())?;
        let ca = read("CA certificate", ca_path.as_ref())?;
        Self::from_pem(node, &cert, &key, &ca)
    }

    /// Checks that this node's certificate chains to the cluster CA and is
    /// valid at `now` for both server and client authentication: what peers
    /// will check. Worth calling at start-up, to fail with a clear error
    /// (such as an expired certificate) rather than have every peer refuse.
    pub fn verify_chain(&self, now: SystemTime) -> Result<()> {
        let Some(end_entity) = self.chain.first() else {
            return Err(TlsError::NoCertificate {
                what: "node certificate",
            });
        };
        let anchor = webpki::anchor_from_trusted_cert(&self.ca)?;
        let time = UnixTime::since_unix_epoch(
            now.duration_since(SystemTime::UNIX_EPOCH)
                .map_err(|_| TlsError::InvalidValidity("dates before 1970 are not supported"))?,
        );
        let algorithms = provider().signature_verification_algorithms.all;
        let cert = webpki::EndEntityCert::try_from(end_entity)?;
        let intermediates = self.chain.get(1..).unwrap_or_default();
        for usage in [
            webpki::KeyUsage::server_auth(),
            webpki::KeyUsage::client_auth(),
        ] {
            cert.verify_for_usage(
                algorithms,
                std::slice::from_ref(&anchor),
                intermediates,
                time,
                usage,
                None,
                None,
            )?;
        }
        Ok(())
    }

    fn roots(&self) -> Result<Arc<RootCertStore>> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone())?;
        Ok(Arc::new(roots))
    }
}

impl Clone for NodeIdentity {
    fn clone(&self) -> Self {
        Self {
            node: self.node,
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            ca: self.ca.clone(),
        }
    }
}

impl fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("node", &self.node)
            .field("chain_len", &self.chain.len())
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The node a PEM certificate (the first of the file) names; see
/// [`cert_node_id`].
pub fn pem_node_id(cert_pem: &str) -> Result<NodeId> {
    cert_node_id(&first_cert(cert_pem, "node certificate")?)
}

fn first_cert(pem: &str, what: &'static str) -> Result<CertificateDer<'static>> {
    match CertificateDer::pem_slice_iter(pem.as_bytes()).next() {
        Some(Ok(cert)) => Ok(cert),
        Some(Err(source)) => Err(TlsError::Pem { what, source }),
        None => Err(TlsError::NoCertificate { what }),
    }
}

// ---------------------------------------------------------------------------
// rustls and quinn configs
// ---------------------------------------------------------------------------

/// The rustls server config of a node: TLS 1.3 with *ring* only, presenting
/// the node's certificate, *requiring* a client certificate that chains to
/// the cluster CA, ALPN [`ALPN`], no session resumption.
///
/// The client's node id is not checked here; see [`verify_peer_is`].
pub fn server_crypto(identity: &NodeIdentity) -> Result<ServerConfig> {
    let provider = provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(identity.roots()?, provider.clone()).build()?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.max_early_data_size = 0;
    Ok(config)
}

/// The rustls client config of a node: TLS 1.3 with *ring* only, trusting
/// only the cluster CA, presenting the node's certificate for client
/// authentication, ALPN [`ALPN`], no session resumption or 0-RTT.
///
/// Dial with server name [`node_dns_name`]`(expected_peer)`: a server whose
/// certificate names another node is then refused.
pub fn client_crypto(identity: &NodeIdentity) -> Result<ClientConfig> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(identity.roots()?)
        .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_early_data = false;
    Ok(config)
}

/// The rustls client config for dialling a seed: an address whose node id
/// is not known yet. As [`client_crypto`], except that the server's
/// certificate may name *any* one node: it must still chain to the cluster
/// CA, be within its validity window and name exactly one node, and it is
/// checked for that node's name. Learn the id afterwards with
/// [`peer_node_id`]. The server name dialled is ignored.
pub fn seed_client_crypto(identity: &NodeIdentity) -> Result<ClientConfig> {
    let provider = provider();
    let inner =
        WebPkiServerVerifier::builder_with_provider(identity.roots()?, provider.clone()).build()?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyNodeVerifier { inner }))
        .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_early_data = false;
    Ok(config)
}

/// Verifies a server certificate as webpki does for the node it names.
#[derive(Debug)]
struct AnyNodeVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for AnyNodeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let node = cert_node_id(end_entity).map_err(|e| {
            rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
        })?;
        let name = ServerName::try_from(node_dns_name(node))
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        self.inner
            .verify_server_cert(end_entity, intermediates, &name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// [`seed_client_crypto`] wrapped for quinn.
pub fn quinn_seed_client_config(identity: &NodeIdentity) -> Result<quinn::ClientConfig> {
    let crypto = QuicClientConfig::try_from(seed_client_crypto(identity)?)?;
    Ok(quinn::ClientConfig::new(Arc::new(crypto)))
}

/// [`server_crypto`] wrapped for quinn, with quinn's default transport
/// settings (set your own with `quinn::ServerConfig::transport_config`).
pub fn quinn_server_config(identity: &NodeIdentity) -> Result<quinn::ServerConfig> {
    let crypto = QuicServerConfig::try_from(server_crypto(identity)?)?;
    Ok(quinn::ServerConfig::with_crypto(Arc::new(crypto)))
}

/// [`client_crypto`] wrapped for quinn, with quinn's default transport
/// settings (set your own with `quinn::ClientConfig::transport_config`).
pub fn quinn_client_config(identity: &NodeIdentity) -> Result<quinn::ClientConfig> {
    let crypto = QuicClientConfig::try_from(client_crypto(identity)?)?;
    Ok(quinn::ClientConfig::new(Arc::new(crypto)))
}

// ---------------------------------------------------------------------------
// Who is on the other end
// ---------------------------------------------------------------------------

/// The certificate chain the peer of an established connection presented
/// (its own certificate first). rustls has already checked it against the
/// cluster CA.
pub fn peer_certificates(connection: &quinn::Connection) -> Result<Vec<CertificateDer<'static>>> {
    let identity = connection
        .peer_identity()
        .ok_or(TlsError::NoPeerCertificate)?;
    let chain = identity
        .downcast::<Vec<CertificateDer<'static>>>()
        .map_err(|_| TlsError::NoPeerCertificate)?;
    if chain.is_empty() {
        return Err(TlsError::NoPeerCertificate);
    }
    Ok(*chain)
}

/// Checks that the peer of an established connection is node `claimed`:
/// that its certificate names `claimed` and no other node.
///
/// The accepting side must call this with the id the dialling node claims,
/// and drop the connection on an error; rustls has checked the certificate
/// chains to the cluster CA, but not whose it is.
pub fn verify_peer_is(connection: &quinn::Connection, claimed: NodeId) -> Result<()> {
    let chain = peer_certificates(connection)?;
    let end_entity = chain.first().ok_or(TlsError::NoPeerCertificate)?;
    verify_cert_is(end_entity, claimed)
}

/// The node id the peer's certificate names.
///
/// Fails if the certificate names no node, or more than one.
pub fn peer_node_id(connection: &quinn::Connection) -> Result<NodeId> {
    let chain = peer_certificates(connection)?;
    let end_entity = chain.first().ok_or(TlsError::NoPeerCertificate)?;
    cert_node_id(end_entity)
}

/// Checks that a certificate names node `node` and no other node (nor a
/// wildcard under `node.gyre`). Does not check the chain or the dates.
pub fn verify_cert_is(cert: &CertificateDer<'_>, node: NodeId) -> Result<()> {
    let parsed = webpki::EndEntityCert::try_from(cert)?;
    let expected = node_dns_name(node);
    let found = node_names(&parsed);
    let exact = !found.is_empty() && found.iter().all(|n| n.eq_ignore_ascii_case(&expected));
    // Belt and braces: the standard name check must agree.
    let standard = ServerName::try_from(expected.as_str())
        .ok()
        .is_some_and(|name| parsed.verify_is_valid_for_subject_name(&name).is_ok());
    if exact && standard {
        Ok(())
    } else {
        Err(TlsError::WrongNode {
            expected: node,
            found,
        })
    }
}

/// The node id a certificate names in its `<16 hex digits>.node.gyre` DNS
/// name. Does not check the chain or the dates.
///
/// Fails if it names no node, several, or carries a malformed (for example
/// wildcard) name under `node.gyre`.
pub fn cert_node_id(cert: &CertificateDer<'_>) -> Result<NodeId> {
    let parsed = webpki::EndEntityCert::try_from(cert)?;
    let names = node_names(&parsed);
    let suffix = format!(".{NODE_DNS_SUFFIX}");
    let mut ids = Vec::with_capacity(names.len());
    for name in &names {
        // `NodeId` parsing takes exactly 16 hex digits: no dots, no `*`.
        let id = name
            .strip_suffix(&suffix)
            .and_then(|label| label.parse::<NodeId>().ok())
            .ok_or_else(|| TlsError::AmbiguousNodeName(names.clone()))?;
        ids.push(id);
    }
    ids.sort_unstable();
    ids.dedup();
    match ids.as_slice() {
        [] => Err(TlsError::NoNodeName),
        [id] => Ok(*id),
        _ => Err(TlsError::AmbiguousNodeName(names)),
    }
}

/// The certificate's DNS names under `node.gyre`, lower-cased.
fn node_names(cert: &webpki::EndEntityCert<'_>) -> Vec<String> {
    let suffix = format!(".{NODE_DNS_SUFFIX}");
    cert.valid_dns_names()
        .map(str::to_ascii_lowercase)
        .filter(|name| name.ends_with(&suffix) || name == NODE_DNS_SUFFIX)
        .collect()
}

// ---------------------------------------------------------------------------
// Just enough DER to rebuild a CA's subject name for rcgen
// ---------------------------------------------------------------------------

const TAG_OID: u8 = 0x06;
const TAG_UTF8_STRING: u8 = 0x0c;
const TAG_PRINTABLE_STRING: u8 = 0x13;
const TAG_IA5_STRING: u8 = 0x16;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;

/// Reads one DER element (single-byte tag) off the front of `input`.
fn der_next<'a>(input: &mut &'a [u8]) -> Option<(u8, &'a [u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (len_bytes, after) = rest.split_at(count);
        rest = after;
        len_bytes
            .iter()
            .fold(0_usize, |len, &b| (len << 8) | usize::from(b))
    };
    if rest.len() < len {
        return None;
    }
    let (content, after) = rest.split_at(len);
    *input = after;
    Some((tag, content))
}

/// Decodes the content of a DER OBJECT IDENTIFIER into its arcs.
fn decode_oid(mut content: &[u8]) -> Option<Vec<u64>> {
    let mut arcs = Vec::new();
    while !content.is_empty() {
        let mut value: u64 = 0;
        loop {
            let (&byte, rest) = content.split_first()?;
            content = rest;
            if value > u64::MAX >> 7 {
                return None;
            }
            value = (value << 7) | u64::from(byte & 0x7f);
            if byte & 0x80 == 0 {
                break;
            }
        }
        if arcs.is_empty() {
            let first = (value / 40).min(2);
            arcs.push(first);
            arcs.push(value - first * 40);
        } else {
            arcs.push(value);
        }
    }
    (arcs.len() >= 2).then_some(arcs)
}

/// Rebuilds an X.509 `Name` (its content, without the outer SEQUENCE) as an
/// rcgen [`DistinguishedName`]. `None` for anything rcgen could not
/// re-encode the same way: multi-valued RDNs, repeated attribute types,
/// string types other than UTF8String, PrintableString and IA5String.
fn parse_name(mut name: &[u8]) -> Option<DistinguishedName> {
    let mut dn = DistinguishedName::new();
    while !name.is_empty() {
        let (TAG_SET, mut rdn) = der_next(&mut name)? else {
            return None;
        };
        let (TAG_SEQUENCE, mut attribute) = der_next(&mut rdn)? else {
            return None;
        };
        if !rdn.is_empty() {
            return None;
        }
        let (TAG_OID, oid) = der_next(&mut attribute)? else {
            return None;
        };
        let (value_tag, value) = der_next(&mut attribute)?;
        if !attribute.is_empty() {
            return None;
        }
        let kind = DnType::from_oid(&decode_oid(oid)?);
        if dn.get(&kind).is_some() {
            return None;
        }
        let text = std::str::from_utf8(value).ok()?;
        let value = match value_tag {
            TAG_UTF8_STRING => DnValue::Utf8String(text.to_owned()),
            TAG_PRINTABLE_STRING => DnValue::PrintableString(text.try_into().ok()?),
            TAG_IA5_STRING => DnValue::Ia5String(text.try_into().ok()?),
            _ => return None,
        };
        dn.push(kind, value);
    }
    Some(dn)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ca() -> ClusterCa {
        ClusterCa::generate("test").unwrap()
    }

    #[test]
    fn node_dns_name_is_sixteen_hex_digits_under_node_gyre() {
        assert_eq!(
            node_dns_name(NodeId::new(0xab)),
            "00000000000000ab.node.gyre"
        );
    }

    #[test]
    fn issued_identity_names_its_node_and_chains_to_the_ca() {
        let ca = ca();
        let node = NodeId::new(0x0123_4567_89ab_cdef);
        let id = ca.identity(node).unwrap();
        assert_eq!(cert_node_id(&id.chain[0]).unwrap(), node);
        verify_cert_is(&id.chain[0], node).unwrap();
        assert!(matches!(
            verify_cert_is(&id.chain[0], NodeId::new(1)),
            Err(TlsError::WrongNode { .. })
        ));
        id.verify_chain(SystemTime::now()).unwrap();
        // Both configs build.
        quinn_server_config(&id).unwrap();
        quinn_client_config(&id).unwrap();
    }

    #[test]
    fn identity_refuses_a_certificate_for_another_node() {
        let ca = ca();
        let cert = ca.issue_node(NodeId::new(1)).unwrap();
        let err =
            NodeIdentity::from_pem(NodeId::new(2), &cert.cert_pem, &cert.key_pem, ca.cert_pem())
                .unwrap_err();
        assert!(matches!(err, TlsError::WrongNode { .. }), "{err}");
    }

    #[test]
    fn identity_refuses_a_key_that_does_not_match() {
        let ca = ca();
        let one = ca.issue_node(NodeId::new(1)).unwrap();
        let other = ca.issue_node(NodeId::new(1)).unwrap();
        let err =
            NodeIdentity::from_pem(NodeId::new(1), &one.cert_pem, &other.key_pem, ca.cert_pem())
                .unwrap_err();
        assert!(matches!(err, TlsError::Rustls(_)), "{err}");
    }

    #[test]
    fn identity_refuses_empty_pem() {
        let ca = ca();
        let cert = ca.issue_node(NodeId::new(1)).unwrap();
        let err =
            NodeIdentity::from_pem(NodeId::new(1), "", &cert.key_pem, ca.cert_pem()).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
        let err =
            NodeIdentity::from_pem(NodeId::new(1), &cert.cert_pem, &cert.key_pem, "").unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
    }

    #[test]
    fn ca_round_trips_through_pem_and_keeps_issuing_chaining_certs() {
        let ca = ca();
        let reloaded = ClusterCa::from_pem(ca.cert_pem(), &ca.key_pem()).unwrap();
        let node = NodeId::new(7);
        // A certificate from the reloaded CA, trusted through the original
        // CA certificate.
        let id = reloaded
            .issue_node(node)
            .unwrap()
            .to_identity(ca.cert_pem())
            .unwrap();
        id.verify_chain(SystemTime::now()).unwrap();
    }

    #[test]
    fn ca_refuses_a_key_of_another_ca() {
        let ca = ca();
        let other = ClusterCa::generate("other").unwrap();
        let err = ClusterCa::from_pem(ca.cert_pem(), &other.key_pem()).unwrap_err();
        assert!(matches!(err, TlsError::CaKeyMismatch), "{err}");
    }

    #[test]
    fn ca_refuses_bad_cluster_names() {
        for name in ["", "a\nb", &"x".repeat(41)] {
            assert!(matches!(
                ClusterCa::generate(name),
                Err(TlsError::InvalidClusterName(_))
            ));
        }
    }

    #[test]
    fn expired_certificate_fails_verify_chain() {
        let ca = ca();
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        let id = ca
            .issue_node_with_validity(NodeId::new(3), now - 2 * day, now - day)
            .unwrap()
            .to_identity(ca.cert_pem())
            .unwrap();
        let err = id.verify_chain(now).unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::Certificate(webpki::Error::CertExpired { .. })
            ),
            "{err}"
        );
    }

    #[test]
    fn certificate_from_another_ca_fails_verify_chain() {
        let ca = ca();
        let other = ClusterCa::generate("other").unwrap();
        let cert = other.issue_node(NodeId::new(3)).unwrap();
        let id =
            NodeIdentity::from_pem(NodeId::new(3), &cert.cert_pem, &cert.key_pem, ca.cert_pem())
                .unwrap();
        assert!(matches!(
            id.verify_chain(SystemTime::now()),
            Err(TlsError::Certificate(webpki::Error::UnknownIssuer))
        ));
    }

    #[test]
    fn validity_window_is_checked() {
        let ca = ca();
        let now = SystemTime::now();
        assert!(matches!(
            ca.issue_node_with_validity(NodeId::new(1), now, now),
            Err(TlsError::InvalidValidity(_))
        ));
        assert!(matches!(
            ca.issue_node_with_validity(
                NodeId::new(1),
                SystemTime::UNIX_EPOCH - Duration::from_secs(1),
                now
            ),
            Err(TlsError::InvalidValidity(_))
        ));
    }

    #[test]
    fn files_round_trip() {
        let ca = ca();
        let node = NodeId::new(9);
        let cert = ca.issue_node(node).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (c, k, a) = (
            dir.path().join("node.crt"),
            dir.path().join("node.key"),
            dir.path().join("ca.crt"),
        );
        std::fs::write(&c, &cert.cert_pem).unwrap();
        std::fs::write(&k, &cert.key_pem).unwrap();
        std::fs::write(&a, ca.cert_pem()).unwrap();
        let id = NodeIdentity::from_files(node, &c, &k, &a).unwrap();
        assert_eq!(id.node, node);
        let err = NodeIdentity::from_files(node, &c, &k, dir.path().join("missing")).unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::Io {
                    what: "CA certificate",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn ca_with_a_richer_subject_round_trips() {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(
            DnType::OrganizationName,
            DnValue::PrintableString("Gyre Ops".try_into().unwrap()),
        );
        params
            .distinguished_name
            .push(DnType::CommonName, "hand-made CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = ca_key_usages();
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let ca = ClusterCa::from_pem(&cert.pem(), &key.serialize_pem()).unwrap();
        ca.identity(NodeId::new(5))
            .unwrap()
            .verify_chain(SystemTime::now())
            .unwrap();
    }

    #[test]
    fn wildcard_and_multi_node_certificates_name_no_single_node() {
        let node = NodeId::new(5);
        let wildcard = rcgen::generate_simple_self_signed(vec!["*.node.gyre".to_owned()]).unwrap();
        let der = wildcard.cert.der();
        assert!(matches!(
            cert_node_id(der),
            Err(TlsError::AmbiguousNodeName(_))
        ));
        assert!(matches!(
            verify_cert_is(der, node),
            Err(TlsError::WrongNode { .. })
        ));

        let two = rcgen::generate_simple_self_signed(vec![
            node_dns_name(node),
            node_dns_name(NodeId::new(6)),
        ])
        .unwrap();
        let der = two.cert.der();
        assert!(matches!(
            cert_node_id(der),
            Err(TlsError::AmbiguousNodeName(_))
        ));
        assert!(matches!(
            verify_cert_is(der, node),
            Err(TlsError::WrongNode { .. })
        ));

        let nested =
            rcgen::generate_simple_self_signed(vec![format!("{}.evil.node.gyre", NodeId::new(5))])
                .unwrap();
        let der = nested.cert.der();
        assert!(matches!(
            cert_node_id(der),
            Err(TlsError::AmbiguousNodeName(_))
        ));
        assert!(matches!(
            verify_cert_is(der, node),
            Err(TlsError::WrongNode { .. })
        ));

        let none = rcgen::generate_simple_self_signed(vec!["example.org".to_owned()]).unwrap();
        assert!(matches!(
            cert_node_id(none.cert.der()),
            Err(TlsError::NoNodeName)
        ));
    }

    #[test]
    fn errors_can_cross_threads() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<TlsError>();
        assert_send_sync::<NodeIdentity>();
        assert_send_sync::<ClusterCa>();
    }

    #[test]
    fn oid_decoding() {
        // 2.5.4.3 (commonName)
        assert_eq!(decode_oid(&[0x55, 0x04, 0x03]).unwrap(), vec![2, 5, 4, 3]);
        // 1.2.840.113549
        assert_eq!(
            decode_oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]).unwrap(),
            vec![1, 2, 840, 113_549]
        );
        assert!(decode_oid(&[0x86]).is_none());
    }

    #[test]
    fn name_parsing_refuses_truncated_input() {
        let ca = ca();
        let der = ca.cert_der().clone();
        let cert = webpki::EndEntityCert::try_from(&der).unwrap();
        let subject = cert.subject();
        assert!(parse_name(subject).is_some());
        for cut in 1..subject.len() {
            assert!(parse_name(&subject[..cut]).is_none(), "cut at {cut}");
        }
    }
}
