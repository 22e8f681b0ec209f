//! Checks the `[tls]` files before anything uses them: each parses as PEM of the right kind,
//! the key belongs to the node certificate, and the node certificate chains to the CA. A
//! refused file is named with the cause, at start, before the data directory is touched.

use std::{path::Path, sync::Arc};

use anyhow::{Context, anyhow, bail};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject};
use tokio_rustls::rustls::{
    RootCertStore, crypto::ring, server::WebPkiClientVerifier, sign::CertifiedKey,
};

/// Checks the CA certificate, the node certificate and the node key named by `[tls]`.
///
/// # Errors
/// A file that cannot be read or holds no PEM item of its kind, a key that does not belong to
/// the node certificate, or a node certificate the CA did not issue (or that is expired, or not
/// for client authentication); each message names the file and the cause.
pub(crate) fn check(ca: &Path, cert: &Path, key: &Path) -> anyhow::Result<()> {
    let ca_certs = read_certs(ca, "ca-cert")?;
    let chain = read_certs(cert, "node-cert")?;
    let key_der = read_key(key)?;
    let mut roots = RootCertStore::empty();
    for der in ca_certs {
        roots.add(der).map_err(|e| {
            anyhow!("[tls] ca-cert {} is not a usable CA certificate: {e}", ca.display())
        })?;
    }
    let provider = Arc::new(ring::default_provider());
    let signing = provider.key_provider.load_private_key(key_der).map_err(|e| {
        anyhow!("[tls] node-key {} is not a supported private key: {e}", key.display())
    })?;
    CertifiedKey::new(chain.clone(), signing).keys_match().map_err(|e| {
        anyhow!(
            "[tls] node-key {} does not belong to node-cert {}: {e}",
            key.display(),
            cert.display()
        )
    })?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .with_context(|| {
        format!("[tls] ca-cert {} cannot verify certificates", ca.display())
    })?;
    let Some((leaf, intermediates)) = chain.split_first() else {
        bail!("[tls] node-cert {} holds no certificate", cert.display());
    };
    verifier.verify_client_cert(leaf, intermediates, UnixTime::now()).map_err(|e| {
        anyhow!(
            "[tls] node-cert {} does not chain to ca-cert {}: {e}",
            cert.display(),
            ca.display()
        )
    })?;
    Ok(())
}

/// Every certificate in the PEM file at `path` (at least one).
fn read_certs(path: &Path, key: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading [tls] {key} {}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("[tls] {key} {} is not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        bail!(
            "[tls] {key} {} holds no PEM certificate (empty, or another kind of file)",
            path.display()
        );
    }
    Ok(certs)
}

/// The private key in the PEM file at `path`.
fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("reading [tls] node-key {}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        anyhow!(
            "[tls] node-key {} holds no PEM private key (a certificate given as the key?): {e}",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use mempulse_cluster::certs::{CA_CERT_FILE, NodeCert, generate_ca, issue_node_cert};
    use mempulse_primitives::NodeId;

    use super::*;

    /// A CA with node 1's certificate in `dir`: (ca, cert, key) paths.
    fn deployment(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
        std::fs::create_dir_all(dir).unwrap();
        let ca = generate_ca("t").unwrap();
        ca.write_pem(dir).unwrap();
        issue_node_cert(&ca, NodeId(1), &["127.0.0.1".to_owned()]).unwrap().write_pem(dir).unwrap();
        (
            dir.join(CA_CERT_FILE),
            NodeCert::cert_path(dir, NodeId(1)),
            NodeCert::key_path(dir, NodeId(1)),
        )
    }

    fn refused(ca: &Path, cert: &Path, key: &Path) -> String {
        format!("{:#}", check(ca, cert, key).unwrap_err())
    }

    #[test]
    fn tls_files_are_checked_and_errors_name_the_file_and_cause() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = deployment(&dir.path().join("a"));
        let (other_ca, other_cert, other_key) = deployment(&dir.path().join("b"));
        check(&ca, &cert, &key).unwrap();

        let error = refused(&ca, &other_cert, &other_key);
        assert!(
            error.contains("does not chain to ca-cert") && error.contains("b/node-1.pem"),
            "{error}"
        );
        let error = refused(&other_ca, &cert, &key);
        assert!(error.contains("does not chain") && error.contains("b/ca.pem"), "{error}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let error = refused(&empty, &cert, &key);
        assert!(error.contains("ca-cert") && error.contains("empty.pem"), "{error}");
        assert!(error.contains("no PEM certificate"), "{error}");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();
        let error = refused(&garbage, &cert, &key);
        assert!(error.contains("garbage.pem") && error.contains("not valid PEM"), "{error}");

        let error = refused(&ca, &cert, &cert);
        assert!(error.contains("node-key") && error.contains("no PEM private key"), "{error}");
        let error = refused(&ca, &cert, &other_key);
        assert!(error.contains("does not belong to node-cert"), "{error}");
        assert!(error.contains("b/node-1-key.pem"), "{error}");
        let error = refused(&ca, &dir.path().join("missing.pem"), &key);
        assert!(
            error.contains("reading [tls] node-cert") && error.contains("missing.pem"),
            "{error}"
        );
    }
}
