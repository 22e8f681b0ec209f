//! `mempulse cert`: a CA and node certificates (PEM) for a test cluster. Existing files are
//! never replaced without `--force`: a new CA would orphan every certificate the old one
//! issued.

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context, bail, ensure};
use mempulse_cluster::certs::{CA_CERT_FILE, CA_KEY_FILE, NodeCert, generate_ca, issue_node_cert};
use mempulse_primitives::NodeId;
use rustls_pki_types::ServerName;

use crate::cli::CertArgs;

/// Writes the CA and the node certificates into a directory that holds none of them yet.
pub(crate) fn run(args: &CertArgs) -> anyhow::Result<ExitCode> {
    write(args, false)
}

/// Writes the CA and the node certificates; with `force`, files already there are replaced.
pub(crate) fn write(args: &CertArgs, force: bool) -> anyhow::Result<ExitCode> {
    ensure!(args.nodes.iter().all(|id| *id > 0), "node ids must be at least 1");
    for host in &args.hosts {
        check_host(host)?;
    }
    let existing: Vec<PathBuf> = files(args).into_iter().filter(|path| path.exists()).collect();
    if !existing.is_empty() && !force {
        let names: Vec<String> = existing.iter().map(|p| p.display().to_string()).collect();
        bail!(
            "refusing to overwrite {} (a new CA breaks every certificate the old one issued); \
             pass --force to replace them",
            names.join(", ")
        );
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let name = args.out.file_name().and_then(|n| n.to_str()).unwrap_or("test");
    let ca = generate_ca(name).context("generating the CA")?;
    ca.write_pem(&args.out).context("writing the CA")?;
    for id in &args.nodes {
        let id = NodeId(*id);
        let cert = issue_node_cert(&ca, id, &args.hosts)
            .with_context(|| format!("issuing the certificate of node {}", id.0))?;
        cert.write_pem(&args.out)
            .with_context(|| format!("writing the certificate of node {}", id.0))?;
        tracing::info!(
            node = id.0,
            cert = %NodeCert::cert_path(&args.out, id).display(),
            key = %NodeCert::key_path(&args.out, id).display(),
            "node certificate written"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Every file the command writes.
fn files(args: &CertArgs) -> Vec<PathBuf> {
    let mut files = vec![args.out.join(CA_CERT_FILE), args.out.join(CA_KEY_FILE)];
    for id in &args.nodes {
        files.push(NodeCert::cert_path(&args.out, NodeId(*id)));
        files.push(NodeCert::key_path(&args.out, NodeId(*id)));
    }
    files
}

/// A `--hosts` entry must be an IP address (an IP SAN) or a valid DNS name (a DNS SAN).
fn check_host(host: &str) -> anyhow::Result<()> {
    ensure!(!host.is_empty(), "--hosts has an empty entry (check for doubled or trailing commas)");
    if host.parse::<std::net::IpAddr>().is_err() && ServerName::try_from(host).is_err() {
        bail!("--hosts entry `{host}` is neither an IP address nor a valid DNS name");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_must_be_ips_or_dns_names() {
        for good in ["127.0.0.1", "::1", "localhost", "node-b.internal", "a-1.example.com"] {
            check_host(good).unwrap();
        }
        for bad in ["", "bad host!", "-a.com", "a..b", "under_score!"] {
            assert!(check_host(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn existing_certificates_are_replaced_only_with_force() {
        let dir = tempfile::tempdir().unwrap();
        let args = |nodes: Vec<u64>, hosts: &[&str]| CertArgs {
            out: dir.path().to_path_buf(),
            nodes,
            hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        };
        write(&args(vec![1, 2], &["127.0.0.1"]), false).unwrap();
        let ca = std::fs::read(dir.path().join(CA_CERT_FILE)).unwrap();
        let error = format!("{:#}", write(&args(vec![1, 2], &["127.0.0.1"]), false).unwrap_err());
        assert!(error.contains("ca.pem") && error.contains("--force"), "{error}");
        assert!(run(&args(vec![3], &["127.0.0.1"])).is_err(), "the CA files exist");
        assert!(!NodeCert::cert_path(dir.path(), NodeId(3)).exists());
        assert_eq!(std::fs::read(dir.path().join(CA_CERT_FILE)).unwrap(), ca, "CA replaced");
        let error =
            format!("{:#}", write(&args(vec![4], &["bad host!", "", ""]), true).unwrap_err());
        assert!(error.contains("bad host!"), "{error}");
        write(&args(vec![1, 2], &["127.0.0.1"]), true).unwrap();
        assert_ne!(std::fs::read(dir.path().join(CA_CERT_FILE)).unwrap(), ca, "--force kept it");
    }
}
