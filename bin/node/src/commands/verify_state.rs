//! `mempulse verify-state`: replays a copied event log read-only and checks its replicated
//! state digest against a trusted root at one Raft index, or against a peer's roots over its
//! HTTP API, bisecting to the first divergent index. Exit 0 on a match, 1 on a mismatch, 2 on
//! a usage or IO error.

use std::{
    io::{Read as _, Write as _},
    net::{TcpStream, ToSocketAddrs as _},
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context, bail};
use mempulse_primitives::{Digest, RaftIndex, Seq};
use mempulse_replay::{
    Divergence, IndexedDigest, Probe, ReplayConfig, Replayer, first_divergence, replay_wal,
};
use serde_json::{Value, json};

use crate::cli::VerifyStateArgs;

/// Sealed index digests the replay keeps: the indexes a peer comparison can bisect over
/// (56 bytes each: 56 MB at the bound).
const INDEX_DIGESTS_MAX: usize = 1 << 20;
/// Bound on each request to the peer (connect, write, read).
const PEER_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on a peer's answer to one state-root request.
const PEER_RESPONSE_BYTES_MAX: u64 = 64 * 1024;

pub(crate) fn run(args: &VerifyStateArgs) -> anyhow::Result<ExitCode> {
    let ours = replay(args)?;
    let report = match (&args.trusted_root, args.at, &args.peer) {
        (Some(root), Some(at), None) => against_root(&ours, root, RaftIndex(at))?,
        (None, None, Some(peer)) => against_peer(&ours, &PeerApi::parse(peer)?)?,
        _ => bail!("give either --trusted-root HEX --at INDEX or --peer URL"),
    };
    let matched = report.get("result").and_then(Value::as_str) == Some("match");
    let mut out = std::io::stdout().lock();
    writeln!(out, "{report}").context("writing the report")?;
    Ok(if matched { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Replays the whole log from its first event (read-only), keeping every sealed digest up to
/// [`INDEX_DIGESTS_MAX`].
fn replay(args: &VerifyStateArgs) -> anyhow::Result<Replayer> {
    super::wal::require_segments(&args.wal)?;
    let reader = mempulse_wal::open_reader(&args.wal)
        .with_context(|| format!("opening the log in {}", args.wal.display()))?;
    let first = reader.first_seq();
    if first > Seq(1) {
        bail!("the log in {} starts at seq {first}: its start was purged", args.wal.display());
    }
    let config = ReplayConfig {
        digest_every_events: 0,
        index_digests_max: INDEX_DIGESTS_MAX,
        ..ReplayConfig::default()
    };
    let mut replayer = Replayer::new(config);
    replay_wal(&mut replayer, &reader, None, |_, _| Ok(()))
        .with_context(|| format!("replaying {}", args.wal.display()))?;
    Ok(replayer)
}

fn against_root(ours: &Replayer, root: &str, at: RaftIndex) -> anyhow::Result<Value> {
    let trusted = Digest::from_hex(root).with_context(|| format!("--trusted-root {root}"))?;
    let latest = ours.digest().raft_index;
    let Some(found) = ours.digest_at(at) else {
        bail!("raft index {at} is not sealed in this log (latest sealed: {latest})");
    };
    let matched = found.digest == trusted;
    Ok(json!({
        "result": if matched { "match" } else { "mismatch" },
        "at": at.get(),
        "raft_index": found.raft_index.get(),
        "ours": found.digest.to_string(),
        "trusted": trusted.to_string(),
        // One root cannot say where the states parted: somewhere at or before `at`.
        "diverged_at_or_before": (!matched).then_some(at.get()),
    }))
}

fn against_peer(ours: &Replayer, peer: &PeerApi) -> anyhow::Result<Value> {
    let theirs = peer.state_root(None)?.context("the peer has no sealed state root")?;
    let hi = ours.digest().raft_index.min(theirs.raft_index);
    let mut compared = 0u32;
    let found = first_divergence(RaftIndex(0), hi, |index| {
        compared += 1;
        let Some(mine) = ours.digest_at(index) else {
            return Ok::<_, anyhow::Error>(Probe::Missing);
        };
        Ok(match peer.state_root(Some(index))? {
            None => Probe::Missing,
            Some(theirs) if same(&mine, &theirs) => Probe::Match,
            Some(_) => Probe::Mismatch,
        })
    })?;
    let (result, first, at_or_before) = match found {
        Divergence::Agree { .. } => ("match", None, None),
        Divergence::FirstAt(first) => ("mismatch", Some(first.get()), None),
        Divergence::AtOrBefore(oldest) => ("mismatch", None, Some(oldest.get())),
        Divergence::NotComparable(at) => {
            bail!("raft index {at} is not held by both sides: nothing to compare")
        }
    };
    let root_at = |index: Option<u64>| index.and_then(|i| ours.digest_at(RaftIndex(i)));
    let ours_first = root_at(first.or(at_or_before)).map(|d| d.digest.to_string());
    Ok(json!({
        "result": result,
        "peer": peer.display,
        "through": hi.get(),
        "first_divergent_index": first,
        "diverged_at_or_before": at_or_before,
        "ours_at_first": ours_first,
        "compared": compared,
    }))
}

fn same(ours: &IndexedDigest, theirs: &IndexedDigest) -> bool {
    ours.raft_index == theirs.raft_index && ours.digest == theirs.digest
}

/// A peer's HTTP API (`http://host:port` or `host:port`), asked with one HTTP/1.0 request per
/// connection: the answer ends with the connection, so no chunked decoding is needed.
struct PeerApi {
    authority: String,
    display: String,
}

impl PeerApi {
    fn parse(url: &str) -> anyhow::Result<Self> {
        let rest = url.strip_prefix("http://").unwrap_or(url);
        if rest.contains("://") {
            bail!("--peer {url}: only http:// URLs are supported");
        }
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            bail!("--peer {url}: expected http://host:port");
        }
        Ok(Self { authority: authority.to_owned(), display: url.to_owned() })
    }

    /// The peer's digest through `index` (the latest sealed one for `None`); `None` when the
    /// peer answers 404 (not sealed yet, or older than the digests it keeps).
    fn state_root(&self, index: Option<RaftIndex>) -> anyhow::Result<Option<IndexedDigest>> {
        let path = index.map_or_else(
            || "/v1/state-root".to_owned(),
            |i| format!("/v1/state-root?index={}", i.get()),
        );
        let (status, body) = self.get(&path).with_context(|| format!("GET {path}"))?;
        match status {
            200 => {
                parse_root(&body).map(Some).with_context(|| format!("GET {path}: unexpected body"))
            }
            404 => Ok(None),
            other => bail!("GET {path}: the peer answered {other}: {}", body.trim()),
        }
    }

    fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let addr = self
            .authority
            .to_socket_addrs()
            .with_context(|| format!("resolving {}", self.authority))?
            .next()
            .with_context(|| format!("{} resolves to no address", self.authority))?;
        let mut stream = TcpStream::connect_timeout(&addr, PEER_TIMEOUT)
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_read_timeout(Some(PEER_TIMEOUT))?;
        stream.set_write_timeout(Some(PEER_TIMEOUT))?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.authority)?;
        let mut raw = Vec::new();
        stream.take(PEER_RESPONSE_BYTES_MAX).read_to_end(&mut raw)?;
        let text = String::from_utf8(raw).context("the answer is not UTF-8")?;
        let (head, body) = text.split_once("\r\n\r\n").context("the answer has no header end")?;
        let status = head
            .split_ascii_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("the answer has no status line")?;
        Ok((status, body.to_owned()))
    }
}

fn parse_root(body: &str) -> anyhow::Result<IndexedDigest> {
    let value: Value = serde_json::from_str(body)?;
    let raft_index = value.get("raft_index").and_then(Value::as_u64).context("raft_index")?;
    let seq = value.get("seq").and_then(Value::as_u64).context("seq")?;
    let digest = value.get("digest").and_then(Value::as_str).context("digest")?;
    Ok(IndexedDigest {
        raft_index: RaftIndex(raft_index),
        seq: Seq(seq),
        digest: Digest::from_hex(digest)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_urls() {
        assert_eq!(PeerApi::parse("http://127.0.0.1:8545/").unwrap().authority, "127.0.0.1:8545");
        assert_eq!(PeerApi::parse("127.0.0.1:8545").unwrap().authority, "127.0.0.1:8545");
        assert!(PeerApi::parse("https://127.0.0.1:8545").is_err());
        assert!(PeerApi::parse("http://h:1/v1").is_err());
        assert!(PeerApi::parse("http://").is_err());
    }

    #[test]
    fn roots_parse_from_the_api_body() {
        let digest = format!("0x{}", "ab".repeat(32));
        let body = format!(r#"{{"requested":5,"raft_index":4,"seq":9,"digest":"{digest}"}}"#);
        let root = parse_root(&body).unwrap();
        assert_eq!((root.raft_index, root.seq), (RaftIndex(4), Seq(9)));
        assert_eq!(root.digest.to_string(), digest);
        assert!(parse_root(r#"{"raft_index":4}"#).is_err());
    }
}
