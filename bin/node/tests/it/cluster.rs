//! Real `mempulse` processes forming a 3-node cluster over mutual TLS on 127.0.0.1: election,
//! `kill -9` of the leader with failover and rejoin, and the leadership hand-over on SIGTERM.
//! Every wait polls `mempulse cluster status` in a loop bounded by a deadline.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::support::{BIN, LOG_SEGMENT_BYTES, Process, SEGMENT_BYTES, free_ports, wait_until};

/// One node's files and, while it runs, its process.
pub(crate) struct Node {
    pub(crate) id: u64,
    /// Raft address.
    pub(crate) addr: String,
    /// HTTP API address.
    pub(crate) http: SocketAddr,
    /// `data-dir` (the event log is `events/`, the Raft directory `raft/`).
    pub(crate) data: PathBuf,
    pub(crate) config: PathBuf,
    pub(crate) process: Option<Process>,
}

impl Node {
    pub(crate) fn start(&mut self) {
        assert!(!self.process.as_ref().is_some_and(Process::is_running), "node {} runs", self.id);
        let args = ["run".as_ref(), "--config".as_ref(), self.config.as_os_str()];
        self.process = Some(Process::spawn(format!("node {}", self.id), &args));
    }

    pub(crate) fn signal(&self, name: &str) {
        self.process.as_ref().unwrap().signal(name);
    }

    /// Waits for the process to exit (bounded) and returns whether it exited with 0.
    pub(crate) fn wait_exit(&mut self) -> bool {
        self.process.as_mut().unwrap().wait_exit()
    }

    pub(crate) fn logged(&self, needle: &str) -> bool {
        self.process.as_ref().is_some_and(|p| p.logged(needle))
    }

    /// Every logged line containing `needle`.
    pub(crate) fn logged_lines(&self, needle: &str) -> Vec<String> {
        self.process.as_ref().map(|p| p.logged_lines(needle)).unwrap_or_default()
    }

    /// The value of `key=` on the first logged line containing `needle`.
    pub(crate) fn logged_field(&self, needle: &str, key: &str) -> Option<String> {
        self.process.as_ref()?.logged_field(needle, key)
    }

    /// This node's status as it reports it, or `None` when it does not answer.
    pub(crate) fn status(&self) -> Option<Value> {
        self.status_of(&self.addr)
    }

    /// The status of the member at `addr`, asked as this node (`--node ADDR`).
    pub(crate) fn status_of(&self, addr: &str) -> Option<Value> {
        let out = Command::new(BIN)
            .args(["cluster", "status", "--timeout-ms", "1000", "--node", addr, "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }
}

impl Node {
    /// Runs `mempulse cluster <args>` as this node and returns its JSON answer.
    pub(crate) fn admin(&self, args: &[&str]) -> Value {
        let out = Command::new(BIN)
            .arg("cluster")
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "cluster {args:?}: {stderr}");
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

pub(crate) struct Cluster {
    _root: tempfile::TempDir,
    pub(crate) nodes: Vec<Node>,
}

impl Cluster {
    /// `mempulse cert`, three configs with mutual TLS (node 1 bootstraps), three processes.
    pub(crate) fn start() -> Self {
        Self::start_with("")
    }

    /// As [`Cluster::start`], with `cluster_keys` (TOML lines) added to every `[cluster]`.
    pub(crate) fn start_with(cluster_keys: &str) -> Self {
        let root = tempfile::tempdir().unwrap();
        let certs = root.path().join("certs");
        let out = Command::new(BIN)
            .args(["cert", "--nodes", "1,2,3", "--out"])
            .arg(&certs)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(out.status.success(), "cert: {}", String::from_utf8_lossy(&out.stderr));
        let all = free_ports(6);
        let (ports, http_ports) = all.split_at(3);
        let peers: Vec<String> =
            ports.iter().enumerate().map(|(i, p)| format!("\"{}@127.0.0.1:{p}\"", i + 1)).collect();
        let mut nodes = Vec::new();
        for (i, port) in ports.iter().enumerate() {
            let id = i as u64 + 1;
            let config = root.path().join(format!("node-{id}.toml"));
            let toml = node_toml(root.path(), &certs, (id, *port, http_ports[i]), &peers)
                .replace("[tls]\n", &format!("{cluster_keys}[tls]\n"));
            std::fs::write(&config, toml).unwrap();
            nodes.push(Node {
                id,
                addr: format!("127.0.0.1:{port}"),
                http: SocketAddr::from(([127, 0, 0, 1], http_ports[i])),
                data: root.path().join(format!("data-{id}")),
                config,
                process: None,
            });
        }
        for node in &mut nodes {
            node.start();
        }
        Self { _root: root, nodes }
    }

    pub(crate) fn node(&mut self, id: u64) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.id == id).unwrap()
    }

    /// Waits until every node in `ids` answers with the same leader and term, that leader is
    /// one of them and says it leads, and the others follow; returns (leader, term).
    pub(crate) fn agreed_leader(&self, ids: &[u64]) -> (u64, u64) {
        wait_until(&format!("nodes {ids:?} to agree on a leader"), || {
            let mut seen = None;
            for node in self.nodes.iter().filter(|n| ids.contains(&n.id)) {
                let s = node.status()?;
                let view = (s["leader"].as_u64()?, s["term"].as_u64()?);
                let role = s["role"].as_str()?;
                let expected = if view.0 == node.id { "leader" } else { "follower" };
                if role != expected || seen.is_some_and(|v| v != view) {
                    return None;
                }
                seen = Some(view);
            }
            seen.filter(|(leader, _)| ids.contains(leader))
        })
    }
}

/// One node's configuration; `(id, raft port, http port)`.
fn node_toml(
    root: &Path,
    certs: &Path,
    (id, port, http): (u64, u16, u16),
    peers: &[String],
) -> String {
    let data = root.join(format!("data-{id}"));
    format!(
        "data-dir = {data:?}\n\
         [api]\nhttp-addr = \"127.0.0.1:{http}\"\n\
         [wal]\nsegment-size-bytes = {SEGMENT_BYTES}\n\
         [cluster]\nnode-id = {id}\nlog-segment-size-bytes = {LOG_SEGMENT_BYTES}\nraft-addr = \"127.0.0.1:{port}\"\npeers = [{peers}]\n\
         bootstrap = {bootstrap}\nheartbeat-interval-ms = 50\nelection-timeout-min-ms = 300\n\
         election-timeout-max-ms = 600\nsend-timeout-ms = 200\n\
         [tls]\nca-cert = {ca:?}\nnode-cert = {cert:?}\nnode-key = {key:?}\n",
        peers = peers.join(", "),
        bootstrap = id == 1,
        ca = certs.join("ca.pem"),
        cert = certs.join(format!("node-{id}.pem")),
        key = certs.join(format!("node-{id}-key.pem")),
    )
}

#[test]
fn kill_9_of_the_leader_elects_another_and_the_restarted_node_rejoins() {
    let mut cluster = Cluster::start();
    let (leader, term) = cluster.agreed_leader(&[1, 2, 3]);
    let status = cluster.node(leader).status().unwrap();
    assert_eq!(status["voters"], serde_json::json!([1, 2, 3]), "{status}");
    assert_eq!(status["members"].as_array().unwrap().len(), 3);

    cluster.node(leader).signal("-KILL");
    assert!(!cluster.node(leader).wait_exit(), "a SIGKILLed process cannot exit 0");
    let others: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let started = Instant::now();
    let (new_leader, new_term) = cluster.agreed_leader(&others);
    assert_ne!(new_leader, leader);
    assert!(new_term > term, "term {new_term} after {term}");
    eprintln!("new leader {new_leader} after {:?}", started.elapsed());

    cluster.node(leader).start();
    let (after, after_term) = cluster.agreed_leader(&[1, 2, 3]);
    let rejoined_addr = cluster.node(leader).addr.clone();
    let rejoined = cluster.node(after).status_of(&rejoined_addr).unwrap();
    assert_eq!(rejoined["node"], leader, "{rejoined}");
    assert_eq!(rejoined["role"], "follower", "{rejoined}");
    assert!(after_term >= new_term);
    assert_ne!(after, 0);
    // It has caught up: it applied at least what the new leader had committed when it won.
    let committed = cluster.node(after).status().unwrap()["committed"].as_u64().unwrap();
    wait_until("the restarted node to apply the leader's log", || {
        let applied =
            cluster.nodes.iter().find(|n| n.id == leader)?.status()?["applied"].as_u64()?;
        (applied >= committed).then_some(())
    });
}

#[test]
fn sigterm_on_the_leader_hands_leadership_over_and_exits_0() {
    let mut cluster = Cluster::start();
    let (leader, term) = cluster.agreed_leader(&[1, 2, 3]);
    cluster.node(leader).signal("-TERM");
    assert!(cluster.node(leader).wait_exit(), "the old leader did not exit 0");
    let old = cluster.node(leader);
    assert!(old.logged("handing leadership over"), "no hand-over attempted");
    assert!(old.logged("leadership handed over"), "the hand-over did not finish before exit");
    assert!(old.logged("node stopped"));
    let others: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let (new_leader, new_term) = cluster.agreed_leader(&others);
    assert_ne!(new_leader, leader);
    assert!(new_term > term, "term {new_term} after {term}");
}

#[test]
fn admin_commands_move_leadership_and_change_membership() {
    let mut cluster = Cluster::start();
    let (leader, _) = cluster.agreed_leader(&[1, 2, 3]);
    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let (to, asker) = (followers[0], followers[1]);
    // Sent to a follower, which redirects the command to the leader.
    let done = cluster.node(asker).admin(&["transfer-leader", "--to", &to.to_string()]);
    assert_eq!(done["ok"], true, "{done}");
    assert_eq!(cluster.agreed_leader(&[1, 2, 3]).0, to);

    let voters = |cluster: &mut Cluster, want: Value, learners: Value| {
        let node = cluster.node(to);
        wait_until(&format!("voters {want} learners {learners}"), || {
            let s = node.status()?;
            (s["voters"] == want && s["learners"] == learners).then_some(())
        });
    };
    let gone = asker;
    let gone_addr = cluster.node(gone).addr.clone();
    let done = cluster.node(to).admin(&["remove", "--id", &gone.to_string()]);
    assert!(done["log_index"].as_u64().is_some(), "{done}");
    let rest: Vec<u64> = (1..=3).filter(|id| *id != gone).collect();
    voters(&mut cluster, serde_json::json!(rest), serde_json::json!([]));

    let done =
        cluster.node(to).admin(&["add-learner", "--id", &gone.to_string(), "--addr", &gone_addr]);
    assert_eq!(done["ok"], true, "{done}");
    voters(&mut cluster, serde_json::json!(rest), serde_json::json!([gone]));
    cluster.node(to).admin(&["promote", "--ids", &gone.to_string()]);
    voters(&mut cluster, serde_json::json!([1, 2, 3]), serde_json::json!([]));
    assert_eq!(cluster.agreed_leader(&[1, 2, 3]).0, to);
}

#[test]
fn a_caught_up_learner_that_stopped_is_not_promoted() {
    let mut cluster = Cluster::start();
    let (leader, _) = cluster.agreed_leader(&[1, 2, 3]);
    let gone = (1..=3).find(|id| *id != leader).unwrap();
    let rest: Vec<u64> = (1..=3).filter(|id| *id != gone).collect();
    let gone_addr = cluster.node(gone).addr.clone();
    cluster.node(leader).admin(&["remove", "--id", &gone.to_string()]);
    // Re-added as a learner while it runs: it catches up, so add-learner succeeds.
    let done = cluster.node(leader).admin(&[
        "add-learner",
        "--id",
        &gone.to_string(),
        "--addr",
        &gone_addr,
        "--timeout-ms",
        "10000",
    ]);
    assert_eq!(done["ok"], true, "{done}");
    cluster.node(gone).signal("-KILL");
    assert!(!cluster.node(gone).wait_exit());
    // The guard is defined by time: wait it out (1 s, or twice the 600 ms election timeout).
    std::thread::sleep(Duration::from_millis(1500));
    let out = Command::new(BIN)
        .args(["cluster", "promote", "--ids", &gone.to_string(), "--config"])
        .arg(&cluster.node(leader).config)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "promoted a stopped learner: {stderr}");
    assert!(stderr.contains("not promoted, nothing proposed"), "{stderr}");
    assert!(stderr.contains("ms ago"), "{stderr}");
    let status = cluster.node(leader).status().unwrap();
    assert_eq!(status["voters"], serde_json::json!(rest), "{status}");
    assert_eq!(status["learners"], serde_json::json!([gone]), "{status}");
    // The leader's status shows every other member's progress; the stopped learner was last
    // heard from before the wait above.
    let others: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let replication = status["replication"].as_array().expect("the leader reports replication");
    let ids: Vec<u64> = replication.iter().filter_map(|r| r["id"].as_u64()).collect();
    assert_eq!(ids, others, "{status}");
    let of = |id: u64| replication.iter().find(|r| r["id"] == id).unwrap();
    assert!(of(gone)["matched"].as_u64().is_some(), "{status}");
    assert!(of(gone)["last_heard_ms"].as_u64().is_some_and(|ms| ms >= 1000), "{status}");
    let follower = others.iter().copied().find(|id| *id != gone).unwrap();
    assert!(of(follower)["last_heard_ms"].as_u64().is_some_and(|ms| ms < 1000), "{status}");
    for id in [gone, follower] {
        assert!(of(id)["behind"].as_u64().is_some(), "{status}");
    }
    let status = cluster.node(follower).status().unwrap();
    assert_eq!(status["replication"], Value::Null, "a follower does not know: {status}");
}

#[test]
fn a_promote_that_cannot_commit_says_it_was_proposed_and_not_committed() {
    let mut cluster = Cluster::start();
    let (leader, _) = cluster.agreed_leader(&[1, 2, 3]);
    let followers: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let (voter, learner) = (followers[0], followers[1]);
    let learner_addr = cluster.node(learner).addr.clone();
    cluster.node(leader).admin(&["remove", "--id", &learner.to_string()]);
    let add = ["add-learner", "--id", &learner.to_string(), "--addr", &learner_addr];
    assert_eq!(cluster.node(leader).admin(&add)["ok"], true);
    // The other voter goes: the old voters {leader, voter} can no longer commit anything, and
    // the learner, caught up and answering, passes the promote guard.
    cluster.node(voter).signal("-KILL");
    assert!(!cluster.node(voter).wait_exit());
    let out = Command::new(BIN)
        .args(["cluster", "promote", "--ids", &learner.to_string(), "--timeout-ms", "3000"])
        .arg("--config")
        .arg(&cluster.node(leader).config)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("membership change not finished within"), "{stderr}");
    assert!(stderr.contains("but not committed"), "{stderr}");
    assert!(!stderr.contains("Lost"), "{stderr}");
}
