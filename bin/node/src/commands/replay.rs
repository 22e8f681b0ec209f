//! `mempulse replay`: rebuild the derived state offline from segments copied off any node and
//! print its digests. The log (and a `--from-checkpoint` directory) is opened read-only.

use std::{
    io::{BufWriter, Write},
    path::Path,
    process::ExitCode,
};

use anyhow::{Context, bail};
use mempulse_primitives::Seq;
use mempulse_replay::{CheckpointStore, DigestPoint, ReplayConfig, Replayer, replay_wal, resume};
use serde_json::json;

use crate::cli::ReplayArgs;

pub(crate) fn run(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    if let Some(out) = &args.write_checkpoints
        && same_dir(out, &args.wal)
    {
        bail!(
            "--write-checkpoints must not be the --wal directory ({}): replay never writes to the log",
            out.display()
        );
    }
    super::wal::require_segments(&args.wal)?;
    let reader = mempulse_wal::open_reader(&args.wal)
        .with_context(|| format!("opening the log in {}", args.wal.display()))?;
    if args.from_checkpoint.is_none() && reader.first_seq() > Seq(1) {
        bail!(
            "the log in {} starts at seq {}: its beginning was purged, so a replay from it is not \
             the state from genesis; pass --from-checkpoint with a checkpoint at or after seq {}",
            args.wal.display(),
            reader.first_seq(),
            reader.first_seq().get().saturating_sub(1)
        );
    }
    let config = ReplayConfig { digest_every_events: args.every, ..ReplayConfig::default() };
    let to = args.to.map(Seq);
    let source = args.from_checkpoint.as_deref().map(CheckpointStore::open_read_only);
    let resumed = resume(&reader, source.as_ref(), config, to).context("loading a checkpoint")?;
    // Opened (and its directory created) at the first checkpoint written, not before.
    let mut sink: Option<CheckpointStore> = None;
    let retain = usize::try_from(args.keep).unwrap_or(usize::MAX);
    let mut replayer = resumed.replayer;
    let start = replayer.next_seq().unwrap_or(reader.first_seq());
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut write_err = None;
    let applied = replay_wal(&mut replayer, &reader, to, |r, point| {
        if let Some(dir) = &args.write_checkpoints {
            let store = match sink.take() {
                Some(store) => store,
                None => CheckpointStore::open(dir, retain)?,
            };
            store.write(r)?;
            sink = Some(store);
        }
        if write_err.is_none()
            && let Err(e) = print_point(&mut out, point, args.json)
        {
            write_err = Some(e);
        }
        Ok(())
    })
    .with_context(|| format!("replaying {}", args.wal.display()))?;
    if let Some(err) = write_err {
        return Err(err);
    }
    let from = resumed.checkpoint.map(|m| m.seq.0);
    print_summary(&mut out, &replayer, applied, start, from, args.json)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn print_point(out: &mut impl Write, p: &DigestPoint, json: bool) -> anyhow::Result<()> {
    if json {
        let line = json!({
            "seq": p.seq.get(),
            "raft_index": p.raft_index.get(),
            "digest": p.digest.to_string(),
            "events": p.events,
        });
        writeln!(out, "{line}")?;
    } else {
        writeln!(
            out,
            "seq={} raft_index={} digest={} events={}",
            p.seq, p.raft_index, p.digest, p.events
        )?;
    }
    Ok(())
}

fn print_summary(
    out: &mut impl Write,
    r: &Replayer,
    applied: u64,
    start: Seq,
    from_checkpoint: Option<u64>,
    json: bool,
) -> anyhow::Result<()> {
    let (sealed, open) = (r.digest(), r.open_digest());
    if json {
        let line = json!({
            "summary": true,
            "from_checkpoint": from_checkpoint,
            "start_seq": start.get(),
            "last_seq": r.last_seq().get(),
            "events": r.events(),
            "applied": applied,
            "raft_index": sealed.raft_index.get(),
            "digest": sealed.digest.to_string(),
            "open_raft_index": open.raft_index.get(),
            "open_digest": open.digest.to_string(),
            "pool_txs": r.pool_len(),
            "pending_txs": r.pending_len(),
            "height": r.height().get(),
            "anomalies": r.anomalies(),
        });
        writeln!(out, "{line}")?;
    } else {
        writeln!(
            out,
            "replayed {applied} events (seq {start}..={last}{from}): raft_index={} digest={} \
             open_raft_index={} open_digest={} pool_txs={} height={} anomalies={}",
            sealed.raft_index,
            sealed.digest,
            open.raft_index,
            open.digest,
            r.pool_len(),
            r.height(),
            r.anomalies(),
            last = r.last_seq(),
            from = from_checkpoint.map_or(String::new(), |s| format!(", from checkpoint {s}")),
        )?;
    }
    Ok(())
}

/// Whether two paths name the same directory (by their canonical form when both exist).
fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
