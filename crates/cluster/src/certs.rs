//! Certificates for node-to-node mutual TLS: a per-deployment CA and node certificates that
//! name their node, as PEM text or files. The library half of a `mempulse cert` command, and
//! what the tests use.
//!
//! # What a node certificate says
//! - Subject alternative name `DNS:node-<id>` (and common name `node-<id>`): the node's
//!   identity. A peer is accepted only if its certificate chains to the CA *and* is valid for
//!   `node-<id>` of the id it claims, and that id is a current member
//!   (`docs/design/cluster-transport.md`). Outbound, a node checks that the server it dialled
//!   is valid for `node-<target id>`, whatever address it dialled.
//! - The `hosts` given at issue time as further SANs (IP addresses or DNS names), so generic
//!   tools can check the certificate against an address. A host of the form `node-<n>` is
//!   refused: it would name another node.
//! - Extended key usage server *and* client authentication (every node is both).
//!
//! Keys are ECDSA P-256 (ring). Validity starts one day before issue (clock skew) and lasts
//! [`CA_VALIDITY_DAYS`] for a CA, [`NODE_VALIDITY_DAYS`] for a node.

use std::{
    fs, io,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use mempulse_primitives::NodeId;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// Days a generated CA is valid.
pub const CA_VALIDITY_DAYS: i64 = 3650;
/// Days an issued node certificate is valid.
pub const NODE_VALIDITY_DAYS: i64 = 825;

/// File name of the CA certificate written by [`CertAuthority::write_pem`].
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the CA key written by [`CertAuthority::write_pem`].
pub const CA_KEY_FILE: &str = "ca-key.pem";

/// The identity name of node `id` in certificates: `node-<id>`.
#[must_use]
pub fn node_name(id: NodeId) -> String {
    format!("node-{}", id.0)
}

/// Why a certificate could not be generated, loaded or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// Key generation, parsing or signing failed.
    #[error("certificate generation failed")]
    Generate(#[source] rcgen::Error),
    /// A host name is not a valid SAN or would name another node (`node-<n>`).
    #[error("host {host:?} cannot be a certificate name")]
    InvalidHost {
        /// The refused host.
        host: String,
    },
    /// Reading or writing a PEM file failed.
    #[error("certificate file io failed: {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// A deployment's certificate authority: its certificate and signing key.
pub struct CertAuthority {
    cert_pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("CertAuthority").finish_non_exhaustive()
    }
}

/// A node's certificate and private key, PEM encoded.
#[derive(Clone)]
pub struct NodeCert {
    /// The node the certificate names.
    pub id: NodeId,
    /// The certificate.
    pub cert_pem: String,
    /// The private key (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for NodeCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCert").field("id", &self.id).finish_non_exhaustive()
    }
}

/// Generates a new CA named `name` (its common name: `mempulse CA <name>`).
///
/// # Errors
/// [`CertError::Generate`] when key generation or signing fails.
pub fn generate_ca(name: &str) -> Result<CertAuthority, CertError> {
    let key = KeyPair::generate().map_err(CertError::Generate)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, format!("mempulse CA {name}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut params, CA_VALIDITY_DAYS);
    let cert = params.self_signed(&key).map_err(CertError::Generate)?;
    let key_pem = key.serialize_pem();
    Ok(CertAuthority { cert_pem: cert.pem(), key_pem, issuer: Issuer::new(params, key) })
}

/// Issues a certificate for node `id`, valid for `node-<id>` and for each of `hosts`.
///
/// # Errors
/// [`CertError::InvalidHost`] for a host that is not a valid name or names a node;
/// [`CertError::Generate`] when key generation or signing fails.
pub fn issue_node_cert(
    ca: &CertAuthority,
    id: NodeId,
    hosts: &[String],
) -> Result<NodeCert, CertError> {
    let name = node_name(id);
    let mut names = vec![san(&name)?];
    for host in hosts {
        let is_node_name =
            host.strip_prefix("node-").is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        if is_node_name {
            return Err(CertError::InvalidHost { host: host.clone() });
        }
        names.push(match host.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => san(host)?,
        });
    }
    let key = KeyPair::generate().map_err(CertError::Generate)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.subject_alt_names = names;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages =
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, NODE_VALIDITY_DAYS);
    let cert = params.signed_by(&key, &ca.issuer).map_err(CertError::Generate)?;
    Ok(NodeCert { id, cert_pem: cert.pem(), key_pem: key.serialize_pem() })
}

fn san(host: &str) -> Result<SanType, CertError> {
    let name =
        host.to_owned().try_into().map_err(|_| CertError::InvalidHost { host: host.into() })?;
    Ok(SanType::DnsName(name))
}

/// Sets `not_before` to the start of yesterday (UTC) and `not_after` `days` later.
fn set_validity(params: &mut CertificateParams, days: i64) {
    let today = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs() / 86_400).unwrap_or(0));
    let (y, m, d) = civil_from_days(today - 1);
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = civil_from_days(today - 1 + days);
    params.not_after = rcgen::date_time_ymd(y, m, d);
}

/// The proleptic Gregorian date `days` after 1970-01-01 (days-to-civil conversion over
/// 400-year eras).
fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        i32::try_from(year).unwrap_or(i32::MAX),
        u8::try_from(month).unwrap_or(1),
        u8::try_from(day).unwrap_or(1),
    )
}

fn write_file(path: &Path, contents: &str, private: bool) -> Result<(), CertError> {
    let io = |source| CertError::Io { path: path.to_path_buf(), source };
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(io)?;
    io::Write::write_all(&mut file, contents.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

fn read_file(path: &Path) -> Result<String, CertError> {
    fs::read_to_string(path).map_err(|source| CertError::Io { path: path.to_path_buf(), source })
}

impl CertAuthority {
    /// The CA certificate (what every node trusts).
    #[must_use]
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's private key (keep it off the nodes).
    #[must_use]
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// A CA from its certificate and key (as [`CertAuthority::write_pem`] wrote them).
    ///
    /// # Errors
    /// [`CertError::Generate`] when either does not parse.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CertError> {
        let key = KeyPair::from_pem(key_pem).map_err(CertError::Generate)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key).map_err(CertError::Generate)?;
        Ok(Self { cert_pem: cert_pem.to_owned(), key_pem: key_pem.to_owned(), issuer })
    }

    /// Reads a CA from `dir` ([`CA_CERT_FILE`], [`CA_KEY_FILE`]).
    ///
    /// # Errors
    /// [`CertError::Io`] when a file cannot be read; [`CertError::Generate`] when it does not
    /// parse.
    pub fn read_pem(dir: &Path) -> Result<Self, CertError> {
        Self::from_pem(&read_file(&dir.join(CA_CERT_FILE))?, &read_file(&dir.join(CA_KEY_FILE))?)
    }

    /// Writes `ca.pem` and `ca-key.pem` (mode 0600) into `dir`, replacing existing files.
    ///
    /// # Errors
    /// [`CertError::Io`] naming the file that could not be written.
    pub fn write_pem(&self, dir: &Path) -> Result<(), CertError> {
        write_file(&dir.join(CA_CERT_FILE), &self.cert_pem, false)?;
        write_file(&dir.join(CA_KEY_FILE), &self.key_pem, true)
    }
}

impl NodeCert {
    /// Path of the certificate file [`NodeCert::write_pem`] writes in `dir`: `node-<id>.pem`.
    #[must_use]
    pub fn cert_path(dir: &Path, id: NodeId) -> PathBuf {
        dir.join(format!("{}.pem", node_name(id)))
    }

    /// Path of the key file [`NodeCert::write_pem`] writes in `dir`: `node-<id>-key.pem`.
    #[must_use]
    pub fn key_path(dir: &Path, id: NodeId) -> PathBuf {
        dir.join(format!("{}-key.pem", node_name(id)))
    }

    /// Writes the certificate and the key (mode 0600) into `dir`, replacing existing files.
    ///
    /// # Errors
    /// [`CertError::Io`] naming the file that could not be written.
    pub fn write_pem(&self, dir: &Path) -> Result<(), CertError> {
        write_file(&Self::cert_path(dir, self.id), &self.cert_pem, false)?;
        write_file(&Self::key_path(dir, self.id), &self.key_pem, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
    }

    #[test]
    fn node_names_are_refused_as_hosts() {
        let ca = generate_ca("test").unwrap();
        let err = issue_node_cert(&ca, NodeId(1), &["node-2".to_owned()]).unwrap_err();
        assert!(matches!(err, CertError::InvalidHost { host } if host == "node-2"));
        let cert = issue_node_cert(&ca, NodeId(1), &["127.0.0.1".to_owned(), "node-x".to_owned()])
            .unwrap();
        assert!(cert.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }

    #[test]
    fn a_ca_written_and_read_back_issues_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let ca = generate_ca("test").unwrap();
        ca.write_pem(dir.path()).unwrap();
        let again = CertAuthority::read_pem(dir.path()).unwrap();
        assert_eq!(again.cert_pem(), ca.cert_pem());
        let cert = issue_node_cert(&again, NodeId(3), &[]).unwrap();
        cert.write_pem(dir.path()).unwrap();
        assert!(NodeCert::cert_path(dir.path(), NodeId(3)).ends_with("node-3.pem"));
        assert!(fs::read_to_string(NodeCert::key_path(dir.path(), NodeId(3))).is_ok());
    }
}
