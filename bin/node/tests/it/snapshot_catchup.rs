//! A follower killed long enough for the leader to purge its Raft log past it catches up by a
//! snapshot, and before installing it fetches the facts of the entries the snapshot covers from
//! the leader's event log (`docs/design/cluster-state-machine.md`): three real `mempulse`
//! processes over mutual TLS, snapshots every 10 entries, no log kept behind them.

use std::net::SocketAddr;

use crate::{
    cluster::Cluster,
    failover_load::{
        check_replays, http_leader, replicated_events, send_raw, transaction, wait_applied_equal,
    },
    support::wait_until,
};

/// Writes while the follower is down: several snapshots' worth.
const WRITES_WHILE_DOWN: u32 = 60;

#[test]
fn a_follower_caught_up_by_snapshot_holds_the_leaders_facts() {
    let mut cluster = Cluster::start_with(
        "snapshot-every-entries = 10\nlog-kept-after-snapshot-entries = 0\n\
         snapshot-catch-up-lag-entries = 10\n",
    );
    let nodes: Vec<(u64, SocketAddr)> = cluster.nodes.iter().map(|n| (n.id, n.http)).collect();
    let https: Vec<SocketAddr> = nodes.iter().map(|(_, http)| *http).collect();
    let leader = http_leader(&nodes);
    let leader_http = cluster.node(leader).http;
    let lagging = (1..=3).find(|id| *id != leader).unwrap();
    let (raw, hash) = transaction(1, 0);
    assert!(send_raw(leader_http, &raw, hash), "the first write was not acknowledged");
    wait_applied_equal(&https);

    cluster.node(lagging).signal("-KILL");
    assert!(!cluster.node(lagging).wait_exit());
    for sender in 2..2 + WRITES_WHILE_DOWN {
        let (raw, hash) = transaction(sender, 0);
        assert!(send_raw(leader_http, &raw, hash), "write of sender {sender} not acknowledged");
    }
    // The leader purges its log past the killed node once its replication to it gave up on
    // the entries in flight; only then is a snapshot the way back.
    wait_until("the leader to purge its Raft log past the killed node", || {
        let leader = cluster.nodes.iter().find(|n| n.id == leader)?;
        let purged = leader.logged_lines("raft log purged").into_iter().filter_map(|line| {
            let upto = line.split_whitespace().find_map(|w| w.strip_prefix("upto="))?;
            upto.parse::<u64>().ok()
        });
        purged.max().filter(|upto| *upto > 20)
    });
    cluster.node(lagging).start();
    wait_applied_equal(&https);
    let filled = "facts the snapshot covers filled from a peer";
    let node = cluster.node(lagging);
    let facts = node.logged_field(filled, "facts").expect("no snapshot was installed");
    assert!(facts.parse::<u64>().unwrap() > 0, "the install fetched no facts");
    assert_eq!(node.logged_field(filled, "complete").as_deref(), Some("true"));

    for node in &mut cluster.nodes {
        node.signal("-TERM");
    }
    for node in &mut cluster.nodes {
        assert!(node.wait_exit(), "node {} did not stop cleanly", node.id);
    }
    let log = |id: u64| {
        let node = cluster.nodes.iter().find(|n| n.id == id).unwrap();
        replicated_events(&node.data.join("events"))
    };
    let (ours, theirs) = (log(lagging), log(leader));
    assert_eq!(ours.len(), theirs.len(), "replicated facts: {} against the leader's", ours.len());
    assert!(ours == theirs, "the lagging node's replicated facts differ from the leader's");
    check_replays(&cluster);
}
