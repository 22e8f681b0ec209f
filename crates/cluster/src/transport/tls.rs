//! Mutual TLS for the node-to-node transport: rustls on the ring provider, TLS 1.3 only, one
//! deployment CA as the only root, and the identity rule (a certificate names `node-<id>`).

use std::{path::Path, sync::Arc};

use mempulse_primitives::NodeId;
use rustls::{
    ClientConfig, RootCertStore, ServerConfig, crypto::CryptoProvider, server::WebPkiClientVerifier,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};

use crate::{certs::node_name, metrics::RefusalReason};

use super::TransportError;

/// A node's TLS identity: the deployment CA it trusts, its certificate chain and its key.
#[derive(Clone)]
pub struct TlsIdentity {
    roots: Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity").field("chain_len", &self.chain.len()).finish_non_exhaustive()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsIdentity {
    /// An identity from PEM text: the CA certificate(s), this node's certificate chain (leaf
    /// first) and its private key.
    ///
    /// # Errors
    /// [`TransportError::Tls`] when a PEM section is missing or does not parse.
    pub fn from_pem(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<Self, TransportError> {
        let bad = |what: &'static str| TransportError::Tls { what };
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots
                .add(cert.map_err(|_| bad("ca certificate pem"))?)
                .map_err(|_| bad("ca certificate"))?;
        }
        if roots.is_empty() {
            return Err(bad("ca certificate pem"));
        }
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad("node certificate pem"))?;
        if chain.is_empty() {
            return Err(bad("node certificate pem"));
        }
        let key =
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| bad("node key pem"))?;
        Ok(Self { roots: Arc::new(roots), chain, key: Arc::new(key) })
    }

    /// An identity from PEM files.
    ///
    /// # Errors
    /// [`TransportError::Read`] when a file cannot be read; as [`TlsIdentity::from_pem`].
    pub fn from_files(ca: &Path, cert: &Path, key: &Path) -> Result<Self, TransportError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path)
                .map_err(|source| TransportError::Read { path: path.to_path_buf(), source })
        };
        Self::from_pem(&read(ca)?, &read(cert)?, &read(key)?)
    }

    /// Whether this identity's own certificate names node `id` and chains to its CA.
    pub(crate) fn check_own(&self, id: NodeId) -> Result<(), TransportError> {
        let leaf = self.chain.first().ok_or(TransportError::Tls { what: "node certificate" })?;
        match verify_names(leaf, id) {
            Ok(()) => Ok(()),
            Err(_) => Err(TransportError::CertificateNotForNode { id }),
        }
    }

    /// The rustls server side of this identity: TLS 1.3, this node's certificate, and a client
    /// certificate required and verified against the deployment CA (any name; the caller
    /// checks which node it names, as with [`certificate_names_node`]). The node's tx-stream
    /// listener serves with it too.
    ///
    /// # Errors
    /// [`TransportError::Tls`] when the certificate or key does not fit rustls.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TransportError> {
        let bad = |what: &'static str| TransportError::Tls { what };
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider())
            .build()
            .map_err(|_| bad("client verifier"))?;
        let config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|_| bad("protocol versions"))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|_| bad("node certificate or key"))?;
        Ok(Arc::new(config))
    }

    /// The rustls client side of this identity: TLS 1.3, the deployment CA as the only root,
    /// this node's certificate as the client certificate. Dial a node by the server name
    /// `node-<id>` ([`crate::certs::node_name`]) or by a host its certificate lists.
    ///
    /// # Errors
    /// [`TransportError::Tls`] when the certificate or key does not fit rustls.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TransportError> {
        let bad = |what: &'static str| TransportError::Tls { what };
        let config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|_| bad("protocol versions"))?
            .with_root_certificates(self.roots.clone())
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|_| bad("node certificate or key"))?;
        Ok(Arc::new(config))
    }
}

/// The TLS server name a node dials peer `id` by (its identity, not its address).
pub(crate) fn server_name(id: NodeId) -> Result<ServerName<'static>, TransportError> {
    ServerName::try_from(node_name(id)).map_err(|_| TransportError::Tls { what: "server name" })
}

/// Whether certificate `leaf` (already verified to chain to the CA) names node `id`.
pub(crate) fn verify_names(leaf: &CertificateDer<'_>, id: NodeId) -> Result<(), RefusalReason> {
    let cert =
        webpki::EndEntityCert::try_from(leaf).map_err(|_| RefusalReason::IdentityMismatch)?;
    let name = ServerName::try_from(node_name(id)).map_err(|_| RefusalReason::IdentityMismatch)?;
    cert.verify_is_valid_for_subject_name(&name).map_err(|_| RefusalReason::IdentityMismatch)
}

/// Whether certificate `leaf`, already verified to chain to the deployment CA (by a
/// [`TlsIdentity::server_config`] handshake), names node `id` (`node-<id>`): the identity rule
/// of the cluster transport, for other listeners authenticating nodes the same way.
#[must_use]
pub fn certificate_names_node(leaf: &CertificateDer<'_>, id: NodeId) -> bool {
    verify_names(leaf, id).is_ok()
}

/// The refusal reason of a failed server-side handshake (no certificate, one the CA did not
/// sign, or another TLS failure).
#[must_use]
pub fn handshake_refusal(e: &std::io::Error) -> RefusalReason {
    let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) else {
        return RefusalReason::TlsHandshake;
    };
    match tls {
        rustls::Error::NoCertificatesPresented => RefusalReason::NoCertificate,
        rustls::Error::InvalidCertificate(_) => RefusalReason::UntrustedCertificate,
        _ => RefusalReason::TlsHandshake,
    }
}
