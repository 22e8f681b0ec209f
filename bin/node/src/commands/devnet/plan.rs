//! The devnet's layout: node and source ids, loopback ports, directories, and the files every
//! child reads (certificates, the validators file, one node configuration each). Building the
//! plan is pure; [`Plan::write`] puts it on disk.

use std::{
    fmt::Write as _,
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
};

use anyhow::{Context, ensure};
use mempulse_primitives::NodeId;

use crate::cli::CertArgs;

/// Source ids start here, above every node id (a source is certified like a node).
pub(crate) const SOURCE_ID_BASE: u64 = 1000;
/// Voting power of every devnet validator (equal powers: the proposer rotates round-robin).
pub(crate) const VALIDATOR_POWER: u64 = 10;
/// Loopback ports each node listens on: Raft, HTTP API, stream/peer listener.
const PORTS_PER_NODE: usize = 3;
/// Event-log and Raft-log segment size of the devnet nodes (nine nodes on one disk: small
/// segments).
const SEGMENT_SIZE_BYTES: u64 = 8 * 1024 * 1024;

/// How many of what the devnet runs, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Validator clusters.
    pub(crate) validators: u32,
    /// Nodes per cluster.
    pub(crate) nodes: u32,
    /// Tx sources.
    pub(crate) sources: u32,
    /// Slot duration of the validators file.
    pub(crate) slot_ms: u64,
    /// Chain id of the nodes and the generated transactions.
    pub(crate) chain_id: u64,
    /// First port of a contiguous range (`None`: free ports picked by the OS).
    pub(crate) base_port: Option<u16>,
    /// Raft timings written into every node configuration.
    pub(crate) raft: RaftTimings,
    /// `[blocks] gas-limit` of every node.
    pub(crate) block_gas_limit: u64,
    /// `[blocks] bytes-limit` of every node.
    pub(crate) block_bytes_limit: u64,
    /// Each source's `mempulse txsource --subscribe` (one entry for all, or one per source).
    pub(crate) source_subscribe: Vec<String>,
}

/// The Raft timings of the devnet nodes: many processes on a few cores need more slack than
/// the defaults of a dedicated machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RaftTimings {
    pub(crate) heartbeat_interval_ms: u64,
    pub(crate) election_timeout_min_ms: u64,
    pub(crate) election_timeout_max_ms: u64,
    pub(crate) send_timeout_ms: u64,
}

impl Default for RaftTimings {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 500,
            election_timeout_max_ms: 1000,
            send_timeout_ms: 400,
        }
    }
}

/// One node of the devnet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NodePlan {
    /// Unique across the devnet: validator `v`'s nodes are `N(v-1)+1 ..= Nv`.
    pub(crate) id: NodeId,
    /// Its cluster's validator id (1-based).
    pub(crate) validator: u64,
    pub(crate) raft: SocketAddr,
    pub(crate) http: SocketAddr,
    pub(crate) stream: SocketAddr,
    /// The first node of each cluster initializes it.
    pub(crate) bootstrap: bool,
    pub(crate) data_dir: PathBuf,
    pub(crate) config: PathBuf,
    pub(crate) log: PathBuf,
}

/// One tx source of the devnet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SourcePlan {
    /// Its id: [`SOURCE_ID_BASE`] + its 1-based index.
    pub(crate) id: NodeId,
    /// Seed of its generated senders (distinct per source).
    pub(crate) seed: u64,
    /// Its `--subscribe` (`default`, `reactive`, `any:TAG,..`, `all:TAG,..`).
    pub(crate) subscribe: String,
    /// Its stderr.
    pub(crate) log: PathBuf,
    /// Its stdout (JSON lines).
    pub(crate) out: PathBuf,
}

/// Everything the devnet writes and starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) dir: PathBuf,
    pub(crate) certs: PathBuf,
    pub(crate) validators_file: PathBuf,
    pub(crate) shape: Shape,
    pub(crate) nodes: Vec<NodePlan>,
    pub(crate) sources: Vec<SourcePlan>,
}

impl Plan {
    /// Lays out `shape` under `dir`, ports from the shape's base or free ones.
    ///
    /// # Errors
    /// Zero validators, nodes or slot duration, a port range past 65535, no free port, or
    /// subscribe modes that are not one for all or one per source, or do not parse.
    pub(crate) fn new(dir: &Path, shape: Shape) -> anyhow::Result<Self> {
        ensure!(shape.validators > 0, "--validators must be at least 1");
        ensure!(shape.nodes > 0, "--nodes must be at least 1");
        ensure!(shape.slot_ms > 0, "--slot-ms must be at least 1");
        let subscribe = source_subscribe(&shape.source_subscribe, shape.sources)?;
        let count = usize::try_from(u64::from(shape.validators) * u64::from(shape.nodes))
            .context("too many nodes")?;
        let ports = match shape.base_port {
            Some(base) => base_ports(base, count * PORTS_PER_NODE)?,
            None => free_ports(count * PORTS_PER_NODE)?,
        };
        let logs = dir.join("logs");
        let mut nodes = Vec::with_capacity(count);
        for v in 1..=u64::from(shape.validators) {
            for k in 0..u64::from(shape.nodes) {
                let id = (v - 1) * u64::from(shape.nodes) + k + 1;
                let slot = usize::try_from(id - 1)? * PORTS_PER_NODE;
                let addr = |i: usize| SocketAddr::from(([127, 0, 0, 1], ports[slot + i]));
                nodes.push(NodePlan {
                    id: NodeId(id),
                    validator: v,
                    raft: addr(0),
                    http: addr(1),
                    stream: addr(2),
                    bootstrap: k == 0,
                    data_dir: dir.join(format!("node-{id}")),
                    config: dir.join(format!("node-{id}.toml")),
                    log: logs.join(format!("node-{id}.log")),
                });
            }
        }
        let sources = (1..=u64::from(shape.sources))
            .zip(subscribe)
            .map(|(k, subscribe)| SourcePlan {
                id: NodeId(SOURCE_ID_BASE + k),
                seed: k,
                subscribe,
                log: logs.join(format!("source-{k}.log")),
                out: logs.join(format!("source-{k}.jsonl")),
            })
            .collect();
        Ok(Self {
            dir: dir.to_owned(),
            certs: dir.join("certs"),
            validators_file: dir.join("validators.toml"),
            shape,
            nodes,
            sources,
        })
    }

    /// The nodes of validator `v`.
    pub(crate) fn cluster(&self, v: u64) -> impl Iterator<Item = &NodePlan> {
        self.nodes.iter().filter(move |n| n.validator == v)
    }

    /// Every validator id, ascending.
    pub(crate) fn validator_ids(&self) -> impl Iterator<Item = u64> {
        1..=u64::from(self.shape.validators)
    }

    /// Writes the certificates (through `mempulse cert`), the validators file and every
    /// node's configuration, and creates the log directory. `dir` must be absent or empty.
    ///
    /// # Errors
    /// A non-empty directory, a path that is not UTF-8, or any IO or certificate error.
    pub(crate) fn write(&self) -> anyhow::Result<()> {
        let occupied = std::fs::read_dir(&self.dir).is_ok_and(|mut d| d.next().is_some());
        ensure!(
            !occupied,
            "{} is not empty (a devnet starts from scratch): remove it or pick another --dir",
            self.dir.display()
        );
        std::fs::create_dir_all(self.dir.join("logs"))
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let ids = self.nodes.iter().map(|n| n.id.0).chain(self.sources.iter().map(|s| s.id.0));
        let certs = CertArgs {
            out: self.certs.clone(),
            nodes: ids.collect(),
            hosts: vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
        };
        super::super::cert::run(&certs).context("writing the certificates")?;
        write_file(&self.validators_file, &self.validators_toml())?;
        for node in &self.nodes {
            write_file(&node.config, &self.node_toml(node)?)?;
        }
        Ok(())
    }

    /// The validators file: every validator with equal power, its members' Raft addresses
    /// (`nodes`) and stream/peer listeners (`streams`).
    pub(crate) fn validators_toml(&self) -> String {
        let mut out =
            String::from("# mempulse devnet: the validators file every node and source shares\n");
        let _ = writeln!(out, "initial-height = 1\nslot-duration-ms = {}", self.shape.slot_ms);
        for v in self.validator_ids() {
            let members = |addr: fn(&NodePlan) -> SocketAddr| {
                let list: Vec<String> =
                    self.cluster(v).map(|n| quote(&format!("{}@{}", n.id.0, addr(n)))).collect();
                list.join(", ")
            };
            let _ = writeln!(
                out,
                "\n[[validators]]\nid = {v}\naddress = \"{}\"\npower = {VALIDATOR_POWER}\n\
                 nodes = [{}]\nstreams = [{}]",
                validator_address(v),
                members(|n| n.raft),
                members(|n| n.stream),
            );
        }
        out
    }

    /// One node's configuration.
    ///
    /// # Errors
    /// A path that is not UTF-8.
    pub(crate) fn node_toml(&self, node: &NodePlan) -> anyhow::Result<String> {
        let path = |p: &Path| {
            p.to_str().map(quote).with_context(|| format!("{} is not UTF-8", p.display()))
        };
        let peers: Vec<String> = self
            .cluster(node.validator)
            .map(|n| quote(&format!("{}@{}", n.id.0, n.raft)))
            .collect();
        let cert = |suffix: &str| path(&self.certs.join(format!("node-{}{suffix}.pem", node.id.0)));
        let t = self.shape.raft;
        Ok(format!(
            "# mempulse devnet: node {id} of validator {v}\n\
             data-dir = {data}\nchain-id = {chain}\n\n\
             [wal]\nsegment-size-bytes = {SEGMENT_SIZE_BYTES}\n\n\
             [cluster]\nnode-id = {id}\nraft-addr = \"{raft}\"\nraft-dir = {raft_dir}\n\
             log-segment-size-bytes = {SEGMENT_SIZE_BYTES}\n\
             peers = [{peers}]\nbootstrap = {bootstrap}\n\
             heartbeat-interval-ms = {hb}\nelection-timeout-min-ms = {emin}\n\
             election-timeout-max-ms = {emax}\nsend-timeout-ms = {send}\n\n\
             [tls]\nca-cert = {ca}\nnode-cert = {cert}\nnode-key = {key}\n\n\
             [api]\nhttp-addr = \"{http}\"\n\n\
             [stream]\nlisten-addr = \"{stream}\"\n\n\
             [schedule]\nvalidators = {validators}\nvalidator-id = {v}\n\n\
             [blocks]\nproduce = true\ngas-limit = {gas}\nbytes-limit = {bytes}\n",
            id = node.id.0,
            v = node.validator,
            data = path(&node.data_dir)?,
            chain = self.shape.chain_id,
            raft = node.raft,
            raft_dir = path(&node.data_dir.join("raft"))?,
            peers = peers.join(", "),
            bootstrap = node.bootstrap,
            hb = t.heartbeat_interval_ms,
            emin = t.election_timeout_min_ms,
            emax = t.election_timeout_max_ms,
            send = t.send_timeout_ms,
            ca = path(&self.certs.join("ca.pem"))?,
            cert = cert("")?,
            key = cert("-key")?,
            http = node.http,
            stream = node.stream,
            validators = path(&self.validators_file)?,
            gas = self.shape.block_gas_limit,
            bytes = self.shape.block_bytes_limit,
        ))
    }
}

/// Each source's `--subscribe`: `modes` has one entry for every source or one per source; a
/// tag list inside `any:`/`all:` is written with `+` (the devnet flag's entries are separated
/// by commas) and handed to the source with commas.
///
/// # Errors
/// Another number of entries, or an entry `mempulse txsource` would refuse.
pub(crate) fn source_subscribe(modes: &[String], sources: u32) -> anyhow::Result<Vec<String>> {
    let count = usize::try_from(sources).context("too many sources")?;
    let modes: Vec<String> = match modes {
        [] => vec!["default".to_owned(); count],
        [one] => vec![one.clone(); count],
        many => {
            ensure!(
                many.len() == count,
                "--source-subscribe has {} entries for {count} sources (give one for all, or one \
                 per source)",
                many.len()
            );
            many.to_vec()
        }
    };
    modes
        .into_iter()
        .map(|mode| {
            let mode = mode.trim().replace('+', ",");
            crate::commands::txsource::predicate(&mode)
                .with_context(|| format!("--source-subscribe entry `{mode}`"))?;
            Ok(mode)
        })
        .collect()
}

/// Validator `v`'s 20-byte address: `v` big-endian in the last 8 bytes.
pub(crate) fn validator_address(v: u64) -> String {
    format!("0x{}{}", "00".repeat(12), hex::encode(v.to_be_bytes()))
}

/// A TOML basic string (JSON string escapes are valid TOML ones).
fn quote(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// `count` ports from `base` on.
fn base_ports(base: u16, count: usize) -> anyhow::Result<Vec<u16>> {
    let count = u16::try_from(count).context("too many ports")?;
    ensure!(base > 0, "--base-port must be at least 1");
    let last = base.checked_add(count - 1);
    ensure!(last.is_some(), "--base-port {base} + {count} ports passes 65535");
    Ok((base..base + count).collect())
}

/// `count` distinct free loopback ports: all bound to port 0 at once, then released.
fn free_ports(count: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .context("finding free loopback ports")?;
    listeners.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use mempulse_schedule::ValidatorsConfig;

    use super::*;
    use crate::config::NodeConfig;

    fn shape(base_port: Option<u16>) -> Shape {
        Shape {
            validators: 3,
            nodes: 3,
            sources: 2,
            slot_ms: 500,
            chain_id: 1,
            base_port,
            raft: RaftTimings::default(),
            block_gas_limit: 420_000,
            block_bytes_limit: 65_536,
            source_subscribe: vec!["default".to_owned(), "reactive".to_owned()],
        }
    }

    #[test]
    fn ids_and_ports_are_unique_and_grouped_by_validator() {
        let plan = Plan::new(Path::new("/d"), shape(Some(20_000))).unwrap();
        let ids: Vec<u64> = plan.nodes.iter().map(|n| n.id.0).collect();
        assert_eq!(ids, (1..=9).collect::<Vec<_>>());
        assert_eq!(plan.cluster(2).map(|n| n.id.0).collect::<Vec<_>>(), [4, 5, 6]);
        let bootstraps: Vec<u64> =
            plan.nodes.iter().filter(|n| n.bootstrap).map(|n| n.id.0).collect();
        assert_eq!(bootstraps, [1, 4, 7]);
        let ports: BTreeSet<u16> =
            plan.nodes.iter().flat_map(|n| [n.raft, n.http, n.stream]).map(|a| a.port()).collect();
        assert_eq!(ports, (20_000..20_027).collect());
        let sources: Vec<(u64, &str)> =
            plan.sources.iter().map(|s| (s.id.0, s.subscribe.as_str())).collect();
        assert_eq!(sources, [(1001, "default"), (1002, "reactive")]);
        let free = Plan::new(Path::new("/d"), shape(None)).unwrap();
        let ports: BTreeSet<u16> =
            free.nodes.iter().flat_map(|n| [n.raft, n.http, n.stream]).map(|a| a.port()).collect();
        assert_eq!(ports.len(), 27);
    }

    #[test]
    fn bad_shapes_are_refused() {
        assert!(Plan::new(Path::new("/d"), Shape { validators: 0, ..shape(None) }).is_err());
        assert!(Plan::new(Path::new("/d"), Shape { nodes: 0, ..shape(None) }).is_err());
        assert!(Plan::new(Path::new("/d"), Shape { slot_ms: 0, ..shape(None) }).is_err());
        assert!(Plan::new(Path::new("/d"), shape(Some(65_520))).is_err());
        assert!(Plan::new(Path::new("/d"), shape(Some(0))).is_err());
        let three = vec!["default".to_owned(); 3];
        assert!(
            Plan::new(Path::new("/d"), Shape { source_subscribe: three, ..shape(None) }).is_err()
        );
        let bad = vec!["default".to_owned(), "sometimes".to_owned()];
        assert!(
            Plan::new(Path::new("/d"), Shape { source_subscribe: bad, ..shape(None) }).is_err()
        );
    }

    #[test]
    fn subscribe_modes_are_one_for_all_or_one_per_source() {
        let modes = |list: &[&str], n| {
            source_subscribe(&list.iter().map(|m| (*m).to_owned()).collect::<Vec<_>>(), n)
        };
        assert_eq!(modes(&[], 2).unwrap(), ["default", "default"]);
        assert_eq!(modes(&["reactive"], 3).unwrap(), ["reactive"; 3]);
        assert_eq!(
            modes(&["default", "any:proposer+proposer-next"], 2).unwrap(),
            ["default", "any:proposer,proposer-next"]
        );
        assert!(modes(&["default", "reactive"], 3).is_err());
        assert!(modes(&["any:leader"], 1).is_err());
        assert_eq!(modes(&["default"], 0).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn the_validators_file_is_what_the_schedule_reads() {
        let plan = Plan::new(Path::new("/d"), shape(Some(20_000))).unwrap();
        let file = ValidatorsConfig::from_toml_str(&plan.validators_toml()).unwrap();
        assert_eq!(file.slot_duration_ms, 500);
        let validators = file.validators().unwrap();
        assert_eq!(validators.iter().map(|v| v.id.0).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(validators[1].nodes[0].to_string(), "4@127.0.0.1:20009");
        assert_eq!(validators[1].streams[2].to_string(), "6@127.0.0.1:20017");
        assert!(validators.iter().all(|v| v.power == VALIDATOR_POWER));
        file.to_schedule().unwrap();
    }

    #[test]
    fn node_configs_are_what_the_node_reads() {
        let plan = Plan::new(Path::new("/tmp/dev \"net\""), shape(Some(20_000))).unwrap();
        for node in &plan.nodes {
            let text = plan.node_toml(node).unwrap();
            let config: NodeConfig = toml::from_str(&text).unwrap();
            assert_eq!(config.cluster.node_id, node.id.0);
            assert_eq!(config.cluster.bootstrap, node.bootstrap);
            let members = config.cluster.members().unwrap();
            let expect: Vec<u64> = plan.cluster(node.validator).map(|n| n.id.0).collect();
            assert_eq!(members.keys().map(|id| id.0).collect::<Vec<_>>(), expect);
            assert_eq!(config.api.listen_addr().unwrap(), node.http);
            assert_eq!(config.stream.listen_addr().unwrap(), node.stream);
            assert_eq!(config.schedule.validator_id, Some(node.validator));
            assert_eq!(config.schedule.validators.as_deref(), Some(&*plan.validators_file));
            assert_eq!(config.data_dir, node.data_dir);
            config.cluster.raft().unwrap();
            config.event_log().unwrap();
            assert!(config.blocks.produce);
            assert_eq!(config.blocks.limits().max_gas, Some(420_000));
            assert_eq!(config.blocks.limits().max_bytes, Some(65_536));
            config.blocks.check(&config.schedule).unwrap();
        }
    }

    #[test]
    fn write_issues_certificates_and_refuses_a_used_directory() {
        let dir = tempfile::tempdir().unwrap();
        let plan = Plan::new(&dir.path().join("devnet"), shape(Some(20_000))).unwrap();
        plan.write().unwrap();
        for id in [1, 9, 1001, 1002] {
            assert!(plan.certs.join(format!("node-{id}.pem")).exists(), "node {id}");
        }
        for node in &plan.nodes {
            use clap::Parser as _;
            let cli = crate::cli::Cli::try_parse_from([
                "mempulse".as_ref(),
                "run".as_ref(),
                "--config".as_ref(),
                node.config.as_os_str(),
            ])
            .unwrap();
            let crate::cli::Command::Run(args) = cli.command else { unreachable!("not run") };
            let config = NodeConfig::load(&args).unwrap();
            config.tls.security().unwrap();
            assert_eq!(config.schedule.load().unwrap().unwrap().1, node.validator);
        }
        assert!(plan.write().is_err(), "a second write into the same directory");
    }
}
