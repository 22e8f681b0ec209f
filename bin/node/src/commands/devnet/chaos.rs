//! The devnet's fault timers: every `--kill-leader-every-s` the leader of the proposer cluster
//! and every `--kill-node-every-s` a node drawn from a seeded generator get `kill -9`; each
//! comes back after `--restart-after-ms`. Decisions take the time and the candidates as
//! inputs, so the same seed and the same candidates give the same choices.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use mempulse_primitives::NodeId;

/// What a timer asks to kill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KillTarget {
    /// The leader of the proposer cluster (of any cluster with a known leader when none is
    /// tagged `proposer`).
    Leader,
    /// Any running node.
    Node,
}

impl KillTarget {
    /// Stable name, as the JSON summary prints it.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Leader => "leader",
            Self::Node => "node",
        }
    }
}

/// A node as the chooser sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub(crate) node: NodeId,
    pub(crate) validator: u64,
    /// Whether the process runs (not killed and waiting for its restart).
    pub(crate) running: bool,
    /// Whether it reported itself leader in the last sample.
    pub(crate) leader: bool,
    /// Whether its cluster carried `proposer` in the last sample.
    pub(crate) proposer: bool,
}

/// The two kill timers and the restarts they owe.
#[derive(Debug)]
pub(crate) struct Chaos {
    leader_every: Option<Duration>,
    node_every: Option<Duration>,
    restart_after: Duration,
    next_leader: Option<Instant>,
    next_node: Option<Instant>,
    rng: SplitMix64,
    restarts: BTreeMap<NodeId, Instant>,
}

impl Chaos {
    /// Timers starting at `start`; `seed` drives every random choice.
    pub(crate) fn new(
        start: Instant,
        leader_every: Option<Duration>,
        node_every: Option<Duration>,
        restart_after: Duration,
        seed: u64,
    ) -> Self {
        Self {
            leader_every,
            node_every,
            restart_after,
            next_leader: leader_every.and_then(|every| start.checked_add(every)),
            next_node: node_every.and_then(|every| start.checked_add(every)),
            rng: SplitMix64(seed),
            restarts: BTreeMap::new(),
        }
    }

    /// The kills due at `now` among `candidates`, each with its target kind; the victims are
    /// owed a restart at `now + restart_after`. A timer whose kill finds no victim (no leader
    /// known yet, or every candidate's cluster already has a node down) fires again at the
    /// next call; otherwise it re-arms one period later.
    pub(crate) fn due(
        &mut self,
        now: Instant,
        candidates: &[Candidate],
    ) -> Vec<(NodeId, KillTarget)> {
        let mut out = Vec::new();
        for target in [KillTarget::Leader, KillTarget::Node] {
            let (next, every) = match target {
                KillTarget::Leader => (&mut self.next_leader, self.leader_every),
                KillTarget::Node => (&mut self.next_node, self.node_every),
            };
            let (Some(at), Some(every)) = (*next, every) else { continue };
            if now < at {
                continue;
            }
            let victim = choose(&mut self.rng, target, candidates, &self.restarts);
            if let Some(node) = victim {
                *next = now.checked_add(every);
                self.restarts.insert(node, now + self.restart_after);
                out.push((node, target));
            }
        }
        out
    }

    /// A kill asked for outside the timers (a signal): the victim, owed a restart at
    /// `now + restart_after`; `None` when there is none.
    pub(crate) fn choose_now(
        &mut self,
        now: Instant,
        target: KillTarget,
        candidates: &[Candidate],
    ) -> Option<NodeId> {
        let node = choose(&mut self.rng, target, candidates, &self.restarts)?;
        self.restarts.insert(node, now + self.restart_after);
        Some(node)
    }

    /// The delay before a killed node is started again, in milliseconds.
    pub(crate) fn restart_after_ms(&self) -> u64 {
        u64::try_from(self.restart_after.as_millis()).unwrap_or(u64::MAX)
    }

    /// The nodes whose restart is due at `now`, ascending (forgotten once returned).
    pub(crate) fn restarts_due(&mut self, now: Instant) -> Vec<NodeId> {
        let due: Vec<NodeId> =
            self.restarts.iter().filter(|(_, at)| **at <= now).map(|(node, _)| *node).collect();
        for node in &due {
            self.restarts.remove(node);
        }
        due
    }
}

/// The victim for `target`: never a node whose cluster already has one down (a 3-node
/// cluster keeps its quorum).
fn choose(
    rng: &mut SplitMix64,
    target: KillTarget,
    candidates: &[Candidate],
    down: &BTreeMap<NodeId, Instant>,
) -> Option<NodeId> {
    let cluster_down = |v: u64| {
        candidates.iter().any(|c| c.validator == v && (!c.running || down.contains_key(&c.node)))
    };
    let mut pool: Vec<&Candidate> =
        candidates.iter().filter(|c| c.running && !cluster_down(c.validator)).collect();
    pool.sort_by_key(|c| c.node);
    if target == KillTarget::Leader {
        pool.retain(|c| c.leader);
        if pool.iter().any(|c| c.proposer) {
            pool.retain(|c| c.proposer);
        }
    }
    let len = u64::try_from(pool.len()).ok().filter(|len| *len > 0)?;
    let pick = usize::try_from(rng.next() % len).ok()?;
    pool.get(pick).map(|c| c.node)
}

/// `SplitMix64`: a tiny seeded generator (the choice must be reproducible, not secret).
#[derive(Clone, Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(leaders: &[u64], proposer: u64) -> Vec<Candidate> {
        (1..=9)
            .map(|id| Candidate {
                node: NodeId(id),
                validator: (id - 1) / 3 + 1,
                running: true,
                leader: leaders.contains(&id),
                proposer: (id - 1) / 3 + 1 == proposer,
            })
            .collect()
    }

    #[test]
    fn the_leader_timer_kills_the_proposer_clusters_leader_and_restarts_it() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut chaos = Chaos::new(t0, Some(5 * s), None, 2 * s, 7);
        let all = nodes(&[2, 4, 9], 2);
        assert!(chaos.due(t0 + 4 * s, &all).is_empty(), "not yet due");
        assert_eq!(chaos.due(t0 + 5 * s, &all), [(NodeId(4), KillTarget::Leader)]);
        assert!(chaos.due(t0 + 6 * s, &all).is_empty(), "re-armed one period later");
        assert!(chaos.restarts_due(t0 + 6 * s).is_empty());
        assert_eq!(chaos.restarts_due(t0 + 7 * s), [NodeId(4)]);
        assert!(chaos.restarts_due(t0 + 8 * s).is_empty(), "restarted once");
        // No proposer tag known: some cluster's leader.
        let untagged = nodes(&[2, 4, 9], 0);
        let (victim, _) = chaos.due(t0 + 10 * s, &untagged)[0];
        assert!([2, 4, 9].contains(&victim.0));
    }

    #[test]
    fn a_timer_without_a_victim_retries_and_never_takes_a_second_node_of_a_cluster() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut chaos = Chaos::new(t0, Some(s), None, 10 * s, 1);
        assert!(chaos.due(t0 + s, &nodes(&[], 1)).is_empty(), "no leader known yet");
        let mut all = nodes(&[1], 1);
        assert_eq!(chaos.due(t0 + 2 * s, &all), [(NodeId(1), KillTarget::Leader)]);
        // Cluster 1 elected node 2 while node 1 is down: not killed again.
        all[0].running = false;
        all[0].leader = false;
        all[1].leader = true;
        assert!(chaos.due(t0 + 3 * s, &all).is_empty());
    }

    #[test]
    fn random_choices_follow_the_seed() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let picks = |seed| {
            let mut chaos = Chaos::new(t0, None, Some(s), Duration::ZERO, seed);
            (1..=20)
                .map(|i| {
                    let due = chaos.due(t0 + i * s, &nodes(&[], 1));
                    chaos.restarts_due(t0 + i * s);
                    due[0].0.0
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(picks(3), picks(3));
        assert_ne!(picks(3), picks(4));
        assert!(picks(3).iter().all(|id| (1..=9).contains(id)));
        assert!(picks(3).iter().collect::<std::collections::BTreeSet<_>>().len() > 3);
    }
}
