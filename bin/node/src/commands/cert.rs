//! `mempulse cert`: a CA and node certificates (PEM) for a test cluster.

use std::process::ExitCode;

use anyhow::{Context, ensure};
use mempulse_cluster::certs::{NodeCert, generate_ca, issue_node_cert};
use mempulse_primitives::NodeId;

use crate::cli::CertArgs;

pub(crate) fn run(args: &CertArgs) -> anyhow::Result<ExitCode> {
    ensure!(args.nodes.iter().all(|id| *id > 0), "node ids must be at least 1");
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
