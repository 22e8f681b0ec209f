//! `mempulse cluster status|add-learner|promote|remove|transfer-leader`: admin requests over the
//! node-to-node transport, authenticated as the local node (only members may connect).
//!
//! Every failure says what happened and what to do: whether the request reached the node, and
//! for a change whether it may have been applied.

use std::{collections::BTreeSet, net::SocketAddr, process::ExitCode, time::Duration};

use anyhow::{Context, bail};
use mempulse_cluster::{
    AdminError, AdminReply, AdminRequest, CallFailure, ChangeState, ClientError, ClusterNode,
    ClusterStatus, MEMBERSHIP_ANSWER_MARGIN, NodeRole, NotSentReason, RefusalReason, TcpConfig,
    TcpTransport,
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

/// What to ask, given the time left (the node's own waits are bounded by it).
#[derive(Clone, Debug)]
enum Ask {
    Status,
    AddLearner { id: NodeId, node: ClusterNode },
    Promote { ids: BTreeSet<NodeId> },
    Remove { id: NodeId },
    TransferLeader { to: NodeId },
}

impl Ask {
    /// The request; a node that waits (a learner catching up, a change committing) answers
    /// [`MEMBERSHIP_ANSWER_MARGIN`] before `left` runs out (at half of it, when shorter).
    fn request(&self, left: Duration) -> AdminRequest {
        let wait = left.saturating_sub(MEMBERSHIP_ANSWER_MARGIN).max(left / 2);
        match self {
            Self::Status => AdminRequest::Status,
            Self::AddLearner { id, node } => {
                AdminRequest::AddLearner { id: *id, node: node.clone(), catch_up_timeout: wait }
            }
            Self::Promote { ids } => AdminRequest::Promote { ids: ids.clone(), timeout: wait },
            Self::Remove { id } => AdminRequest::Remove { id: *id },
            Self::TransferLeader { to } => AdminRequest::TransferLeader { to: *to },
        }
    }

    /// Whether the request changes the cluster (so a lost answer leaves its outcome unknown).
    const fn is_change(&self) -> bool {
        match self {
            Self::Status => false,
            Self::AddLearner { .. }
            | Self::Promote { .. }
            | Self::Remove { .. }
            | Self::TransferLeader { .. } => true,
        }
    }
}

pub(crate) fn run(command: ClusterCommand) -> anyhow::Result<ExitCode> {
    let (target, ask) = match command {
        ClusterCommand::Status(target) => (target, Ask::Status),
        ClusterCommand::AddLearner { target, id, addr } => {
            let peer = parse_peer(&format!("{id}@{addr}"))?;
            (target, Ask::AddLearner { id: peer.id, node: ClusterNode::new(addr, "") })
        }
        ClusterCommand::Promote { target, ids } => {
            (target, Ask::Promote { ids: ids.into_iter().map(NodeId).collect() })
        }
        ClusterCommand::Remove { target, id } => (target, Ask::Remove { id: NodeId(id) }),
        ClusterCommand::TransferLeader { target, to } => {
            (target, Ask::TransferLeader { to: NodeId(to) })
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let reply = runtime.block_on(ask_node(&target, &ask))?;
    print_line(&reply_json(&reply).to_string());
    Ok(ExitCode::SUCCESS)
}

/// The node `--node` names: `(id, addresses)`.
fn target_node(
    target: &AdminTarget,
    me: NodeId,
    members: &std::collections::BTreeMap<NodeId, ClusterNode>,
) -> anyhow::Result<(NodeId, ClusterNode)> {
    Ok(match &target.node {
        None => {
            let node = members.get(&me).cloned().with_context(|| {
                format!("node {} (this configuration) is not among its own [cluster] peers", me.0)
            })?;
            (me, node)
        }
        Some(text) if text.contains('@') => {
            let peer = parse_peer(text)?;
            (peer.id, ClusterNode::new(peer.addr, ""))
        }
        Some(addr) => member_at(members, addr)?,
    })
}

/// The configured member whose raft address is `addr`.
fn member_at(
    members: &std::collections::BTreeMap<NodeId, ClusterNode>,
    addr: &str,
) -> anyhow::Result<(NodeId, ClusterNode)> {
    match members.iter().find(|(_, n)| n.raft_addr == addr) {
        Some((id, n)) => Ok((*id, n.clone())),
        None => bail!(
            "--node `{addr}` is not the raft address of a configured member; pass a member's \
             raft address as --node HOST:PORT, or any node as --node ID@HOST:PORT"
        ),
    }
}

/// Sends the request to the target node, following leader redirects for changes.
async fn ask_node(target: &AdminTarget, ask: &Ask) -> anyhow::Result<AdminReply> {
    let config = NodeConfig::load(&target.node_config)?;
    let me = config.cluster.id()?;
    let members = config.cluster.members()?;
    let (mut to, mut node) = target_node(target, me, &members)?;
    let tcp = TcpConfig::new(me, CLIENT_LISTEN_ADDR, config.tls.security()?);
    let transport = TcpTransport::bind(tcp).await.context("starting the admin client")?;
    let client = transport.client();
    let timeout = Duration::from_millis(target.timeout_ms);
    let deadline = tokio::time::Instant::now() + timeout;
    for _ in 0..=REDIRECTS_MAX {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let request = ask.request(left);
        let what = request.as_str();
        let answer = client.admin_call(to, &node, request, left).await;
        let failure = Failure { what, to, addr: &node.raft_addr, me, change: ask.is_change() };
        match answer {
            Ok(Ok(reply)) => return Ok(reply),
            Ok(Err(AdminError::Client(ClientError::ForwardToLeader {
                leader_id: Some(id),
                leader: Some(leader),
            }))) if id != to => {
                tracing::info!(from = to.0, leader = id.0, "following the leader");
                (to, node) = (id, leader);
            }
            Ok(Err(e)) => bail!("{}", failure.refused(&e)),
            Err(e) => bail!("{}", failure.unanswered(e, target.timeout_ms)),
        }
    }
    bail!("the leader kept moving ({} redirects); nothing more was sent; retry", REDIRECTS_MAX)
}

/// What a failed request was, to describe its failure.
struct Failure<'a> {
    what: &'static str,
    to: NodeId,
    addr: &'a str,
    me: NodeId,
    change: bool,
}

impl Failure<'_> {
    /// The node got no answer to us: why, whether it may have been applied, what to do.
    fn unanswered(&self, failure: CallFailure, timeout_ms: u64) -> String {
        let Self { what, to, addr, me, .. } = *self;
        let to = to.0;
        let not_sent = "nothing was sent";
        match failure {
            CallFailure::NotSent(NotSentReason::Connect) => format!(
                "{what}: cannot connect to node {to} at {addr} ({not_sent}): is the node running, \
                 and is {addr} its raft address ([cluster] raft-addr), not its HTTP or stream port?"
            ),
            CallFailure::NotSent(NotSentReason::Tls) => format!(
                "{what}: TLS handshake with {addr} failed ({not_sent}): {addr} is not a mempulse \
                 raft port (an HTTP or stream port?), or node {to} does not accept the \
                 certificate of node {me} (from --config)"
            ),
            CallFailure::NotSent(NotSentReason::WrongNode) => format!(
                "{what}: the node at {addr} is not node {to}: its certificate names another node \
                 ({not_sent}); fix the id in --node ID@HOST:PORT"
            ),
            CallFailure::NotSent(NotSentReason::Hello) => format!(
                "{what}: {addr} did not answer the mempulse raft hello ({not_sent}): is it node \
                 {to}'s raft address, not its HTTP or stream port, and does it run the same \
                 mempulse version?"
            ),
            CallFailure::NotSent(
                NotSentReason::BackingOff | NotSentReason::Closed | NotSentReason::PeerRecord,
            ) => format!("{what}: could not reach node {to} at {addr} ({not_sent}); retry"),
            CallFailure::Refused(reason) => self.refused_hello(reason),
            CallFailure::Lost => format!(
                "{what}: the connection to node {to} at {addr} failed after the request was \
                 sent{}",
                self.maybe_applied()
            ),
            CallFailure::TimedOut => format!(
                "{what}: no answer from node {to} at {addr} within {timeout_ms} ms{}",
                self.maybe_applied()
            ),
        }
    }

    fn maybe_applied(&self) -> String {
        if self.change {
            "; the change may or may not have been applied: check `mempulse cluster status`"
                .to_owned()
        } else {
            "; retry, or raise --timeout-ms".to_owned()
        }
    }

    fn refused_hello(&self, reason: RefusalReason) -> String {
        let Self { what, to, addr, me, .. } = *self;
        let (to, me) = (to.0, me.0);
        let why = match reason {
            RefusalReason::WrongTarget => {
                format!("the node at {addr} is not node {to}; fix the id in --node ID@HOST:PORT")
            }
            RefusalReason::NotAMember => format!(
                "node {me} (from --config) is not a member of its cluster; use the --config of \
                 one of its members"
            ),
            RefusalReason::TooManyConnections => "it has no connection slot free; retry".to_owned(),
            // The certificate and hello refusals, and any reason added later (the enum is
            // non-exhaustive): name it and point at the configuration.
            _ => format!(
                "reason `{}`; check that --config is a member's configuration of this \
                 deployment (same CA, or plaintext on loopback only)",
                reason.as_str()
            ),
        };
        format!("{what}: node {to} at {addr} refused this client (nothing was served): {why}")
    }

    /// The node answered with a refusal or a failure: the message and what to do.
    fn refused(&self, e: &AdminError) -> String {
        let to = self.to.0;
        let hint = match e {
            AdminError::LearnerNotCaughtUp { lag, .. } => format!(
                "; it stays a learner (it does not vote, so the cluster keeps its quorum): check \
                 that node {id} runs and listens on the address given, then wait for \
                 `mempulse cluster status` to show it, or remove it with `mempulse cluster \
                 remove --id {id}`",
                id = lag.id.0
            ),
            AdminError::LearnersBehind(_) => {
                "; wait until they catch up and answer, or remove them with \
                 `mempulse cluster remove --id N`"
                    .to_owned()
            }
            AdminError::ChangeTimedOut { state: ChangeState::Proposed { .. }, .. } => {
                "; the new voters must be up and reachable for it to commit: check `mempulse \
                 cluster status`"
                    .to_owned()
            }
            AdminError::ChangeTimedOut { .. } => "; check `mempulse cluster status`".to_owned(),
            AdminError::AlreadyMember { id, .. } => format!(
                "; nothing was changed (to re-add it, `mempulse cluster remove --id {}` first)",
                id.0
            ),
            AdminError::NotVoter(id) => {
                format!("; promote it first (`mempulse cluster promote --ids {}`)", id.0)
            }
            AdminError::InProgress => {
                "; retry once it is done (`mempulse cluster status`)".to_owned()
            }
            AdminError::Client(ClientError::Indeterminate { .. }) => {
                "; the change may or may not have been applied: check `mempulse cluster status`"
                    .to_owned()
            }
            AdminError::Client(_)
            | AdminError::EmptyMembership
            | AdminError::LearnerNotFound(_)
            | AdminError::UnknownNode(_)
            | AdminError::Refused => String::new(),
            other => {
                tracing::debug!(error = ?other, "admin error without a hint");
                String::new()
            }
        };
        format!("{}: node {to} answered: {e}{hint}", self.what)
    }
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
        // Only the leader knows; elsewhere `null`, not an empty list that would read as
        // "no other member".
        "replication": (s.role == NodeRole::Leader).then(|| {
            s.replication
                .iter()
                .map(|lag| {
                    json!({
                        "id": lag.id.0,
                        "matched": lag.matched,
                        "behind": lag.entries(),
                        "last_heard_ms": lag.ack_age_ms,
                    })
                })
                .collect::<Vec<_>>()
        }),
    })
}

#[expect(clippy::print_stdout, reason = "a CLI command's output goes to stdout")]
fn print_line(line: &str) {
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use mempulse_cluster::LearnerLag;

    use super::*;

    fn failure(change: bool) -> Failure<'static> {
        Failure { what: "promote", to: NodeId(2), addr: "127.0.0.1:7402", me: NodeId(1), change }
    }

    #[test]
    fn unanswered_requests_say_what_happened_and_what_to_do() {
        let say = |f: CallFailure| failure(true).unanswered(f, 4000);
        let connect = say(CallFailure::NotSent(NotSentReason::Connect));
        assert!(connect.contains("cannot connect to node 2 at 127.0.0.1:7402"), "{connect}");
        assert!(connect.contains("nothing was sent") && connect.contains("running"), "{connect}");
        let tls = say(CallFailure::NotSent(NotSentReason::Tls));
        assert!(tls.contains("not a mempulse raft port (an HTTP or stream port?)"), "{tls}");
        let wrong = say(CallFailure::NotSent(NotSentReason::WrongNode));
        assert!(
            wrong.contains("is not node 2") && wrong.contains("--node ID@HOST:PORT"),
            "{wrong}"
        );
        let hello = say(CallFailure::NotSent(NotSentReason::Hello));
        assert!(hello.contains("did not answer the mempulse raft hello"), "{hello}");
        let wrong_target = say(CallFailure::Refused(RefusalReason::WrongTarget));
        assert!(wrong_target.contains("is not node 2; fix the id"), "{wrong_target}");
        let timed_out = say(CallFailure::TimedOut);
        assert!(timed_out.contains("no answer from node 2 at 127.0.0.1:7402 within 4000 ms"));
        assert!(timed_out.contains("may or may not have been applied"), "{timed_out}");
        let lost = say(CallFailure::Lost);
        assert!(lost.contains("after the request was sent; the change may"), "{lost}");
        // A status is not a change: no word about applying it.
        let status = failure(false).unanswered(CallFailure::TimedOut, 1000);
        assert!(status.ends_with("retry, or raise --timeout-ms"), "{status}");
        for text in [connect, tls, wrong, hello, wrong_target, timed_out, lost, status] {
            assert!(!text.contains("NotSent") && !text.contains("Lost"), "{text}");
        }
    }

    #[test]
    fn refusals_name_the_problem_and_the_next_step() {
        let lag = LearnerLag { id: NodeId(2), matched: None, target: Some(4), ack_age_ms: None };
        let caught = failure(true).refused(&AdminError::LearnerNotCaughtUp {
            lag,
            log_index: 4,
            waited_ms: 3500,
        });
        assert!(caught.contains("was added as a learner (membership entry 4)"), "{caught}");
        assert!(caught.contains("mempulse cluster remove --id 2"), "{caught}");
        let behind = failure(true).refused(&AdminError::LearnersBehind(vec![lag]));
        assert!(
            behind.contains("not promoted, nothing proposed: node 2 has acknowledged no entry")
        );
        let learner = failure(true).refused(&AdminError::NotVoter(NodeId(2)));
        assert!(
            learner.contains("node 2 is a learner, not a voter; promote it first"),
            "{learner}"
        );
        let member =
            failure(true).refused(&AdminError::AlreadyMember { id: NodeId(1), voter: true });
        assert!(member.contains("node 1 is already a voter of the cluster; nothing was changed"));
        let proposed = failure(true).refused(&AdminError::ChangeTimedOut {
            state: ChangeState::Proposed { log_index: 5 },
            waited_ms: 3500,
        });
        assert!(proposed.contains("within 3500 ms: proposed at log index 5 but not committed"));
    }

    #[test]
    fn an_unknown_node_address_is_not_echoed_into_the_suggested_form() {
        let members =
            std::collections::BTreeMap::from([(NodeId(1), ClusterNode::new("127.0.0.1:7400", ""))]);
        assert_eq!(member_at(&members, "127.0.0.1:7400").unwrap().0, NodeId(1));
        let text = member_at(&members, "not a url").unwrap_err().to_string();
        assert!(text.contains("--node ID@HOST:PORT"), "{text}");
        assert!(!text.contains("@not a url"), "{text}");
    }
}
