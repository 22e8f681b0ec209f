//! `mempulse cluster status|add-learner|promote|remove|transfer-leader`: admin requests over the
//! node-to-node transport, authenticated as the local node (only members may connect).

use std::{collections::BTreeSet, net::SocketAddr, process::ExitCode, time::Duration};

use anyhow::{Context, bail};
use mempulse_cluster::{
    AdminError, AdminReply, AdminRequest, ClientError, ClusterNode, ClusterStatus, PeerClient,
    TcpConfig, TcpTransport,
};
use mempulse_primitives::NodeId;
use serde_json::json;

use crate::{
    cli::{AdminTarget, ClusterCommand},
    config::{NodeConfig, parse_peer},
};

/// The admin client's own listener: never served, bound only because the client side of the
/// transport comes with one (loopback, any port).
const CLIENT_LISTEN_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// Leader redirects followed for one request (the leader may move while it runs).
const REDIRECTS_MAX: usize = 3;

pub(crate) fn run(command: ClusterCommand) -> anyhow::Result<ExitCode> {
    let (target, request) = match command {
        ClusterCommand::Status(target) => (target, AdminRequest::Status),
        ClusterCommand::AddLearner { target, id, addr } => {
            let peer = parse_peer(&format!("{id}@{addr}"))?;
            (target, AdminRequest::AddLearner { id: peer.id, node: ClusterNode::new(addr, "") })
        }
        ClusterCommand::Promote { target, ids } => {
            (target, AdminRequest::Promote { ids: ids.into_iter().map(NodeId).collect() })
        }
        ClusterCommand::Remove { target, id } => (target, AdminRequest::Remove { id: NodeId(id) }),
        ClusterCommand::TransferLeader { target, to } => {
            (target, AdminRequest::TransferLeader { to: NodeId(to) })
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let reply = runtime.block_on(ask(&target, request))?;
    print_line(&reply_json(&reply).to_string());
    Ok(ExitCode::SUCCESS)
}

/// Sends `request` to the target node, following leader redirects for changes.
async fn ask(target: &AdminTarget, request: AdminRequest) -> anyhow::Result<AdminReply> {
    let config = NodeConfig::load(&target.node_config)?;
    let me = config.cluster.id()?;
    let members = config.cluster.members()?;
    let (mut to, mut node) = match &target.node {
        None => (me, members.get(&me).cloned().context("this node is not a member")?),
        Some(text) if text.contains('@') => {
            let peer = parse_peer(text)?;
            (peer.id, ClusterNode::new(peer.addr, ""))
        }
        Some(addr) => match members.iter().find(|(_, n)| n.raft_addr == *addr) {
            Some((id, n)) => (*id, n.clone()),
            None => bail!("no configured member has raft address {addr}; pass --node id@{addr}"),
        },
    };
    let tcp = TcpConfig::new(me, CLIENT_LISTEN_ADDR, config.tls.security()?);
    let transport = TcpTransport::bind(tcp).await.context("starting the admin client")?;
    let client = transport.client();
    let timeout = Duration::from_millis(target.timeout_ms);
    let deadline = tokio::time::Instant::now() + timeout;
    for _ in 0..=REDIRECTS_MAX {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match call(&client, to, &node, request.clone(), left).await? {
            Ok(reply) => return Ok(reply),
            Err(AdminError::Client(ClientError::ForwardToLeader {
                leader_id: Some(id),
                leader: Some(leader),
            })) if id != to => {
                tracing::info!(from = to.0, leader = id.0, "following the leader");
                (to, node) = (id, leader);
            }
            Err(e) => return Err(e).with_context(|| format!("node {} refused", to.0)),
        }
    }
    bail!("the leader kept moving; try again")
}

async fn call(
    client: &PeerClient,
    to: NodeId,
    node: &ClusterNode,
    request: AdminRequest,
    timeout: Duration,
) -> anyhow::Result<Result<AdminReply, AdminError>> {
    let what = request.as_str();
    client.admin(to, node, request, timeout).await.map_err(|failure| {
        anyhow::anyhow!("{what} to node {} at {} failed: {failure:?}", to.0, node.raft_addr)
    })
}

fn reply_json(reply: &AdminReply) -> serde_json::Value {
    match reply {
        AdminReply::Status(status) => status_json(status),
        AdminReply::Done { log_index } => json!({ "ok": true, "log_index": log_index }),
        other => json!({ "ok": true, "reply": format!("{other:?}") }),
    }
}

/// The status as one JSON object; lists are in ascending id order.
fn status_json(s: &ClusterStatus) -> serde_json::Value {
    let learners: BTreeSet<u64> = s.learners().into_iter().map(|id| id.0).collect();
    let members: Vec<_> = s
        .members
        .iter()
        .map(|(id, n)| json!({ "id": id.0, "raft_addr": n.raft_addr, "api_addr": n.api_addr }))
        .collect();
    json!({
        "node": s.node.0,
        "role": s.role.as_str(),
        "leader": s.leader.map(|l| l.0),
        "term": s.term,
        "last_log_index": s.last_log_index,
        "committed": s.committed,
        "applied": s.applied,
        "voters": s.voters.iter().map(|id| id.0).collect::<Vec<_>>(),
        "learners": learners,
        "members": members,
    })
}

#[expect(clippy::print_stdout, reason = "a CLI command's output goes to stdout")]
fn print_line(line: &str) {
    println!("{line}");
}
