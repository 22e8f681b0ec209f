//! Driving a [`Replayer`] from a WAL: offline replays, start-up from the newest checkpoint, and
//! the full-history lifecycle lookup the bounded index falls back to.

use std::ops::ControlFlow;

use mempulse_primitives::{Event, Seq, SequencedEvent, TxHash};
use mempulse_wal::WalReader;

use crate::{CheckpointStore, DigestPoint, Error, ReplayConfig, Replayer, Result};

/// Applies the records of `reader` after `replayer`'s last seq (or from the first record of the
/// log, for a fresh replayer) through `to` (inclusive; the end of the log when `None`), calling
/// `on_point` at every digest point. Returns the number of events applied.
///
/// # Errors
/// [`Error::Purged`] when the log no longer holds the next seq; [`Error::Wal`] when a read
/// fails; [`Error::Decode`] for a record that is not an event; any error of `on_point`, which
/// stops the replay there.
pub fn replay_wal<F>(
    replayer: &mut Replayer,
    reader: &WalReader,
    to: Option<Seq>,
    mut on_point: F,
) -> Result<u64>
where
    F: FnMut(&Replayer, &DigestPoint) -> Result<()>,
{
    let first = reader.first_seq();
    let from = replayer.next_seq().unwrap_or(first);
    if from < first {
        return Err(Error::Purged { first, needed: from });
    }
    let last = to.map_or(reader.last_seq(), |to| to.min(reader.last_seq()));
    if from > last {
        return Ok(0);
    }
    let limit = usize::try_from(last.0 - from.0 + 1).unwrap_or(usize::MAX);
    let mut failure = None;
    let scanned = reader
        .scan_with(from, limit, |seq, payload| match replayer.apply_payload(seq, payload) {
            Ok(None) => ControlFlow::Continue(()),
            Ok(Some(point)) => match on_point(replayer, &point) {
                Ok(()) => ControlFlow::Continue(()),
                Err(err) => {
                    failure = Some(err);
                    ControlFlow::Break(())
                }
            },
            Err(err) => {
                failure = Some(err);
                ControlFlow::Break(())
            }
        })
        .map_err(|e| match e {
            mempulse_wal::Error::Purged { first, requested } => {
                Error::Purged { first, needed: requested }
            }
            other => Error::Wal(other),
        })?;
    if let Some(err) = failure {
        return Err(err);
    }
    Ok(scanned as u64)
}

/// Where a resumed replayer starts.
#[derive(Debug)]
pub struct Resumed {
    /// The replayer, ready for the event after its last seq.
    pub replayer: Replayer,
    /// The checkpoint it was restored from (`None`: the start of the log).
    pub checkpoint: Option<crate::CheckpointMeta>,
}

/// The start-up step: a replayer restored from the newest valid checkpoint in `store` that the
/// log can continue (its next seq is still in the log, and it is past neither the log's end nor
/// `to`), or a fresh one when there is none. The WAL tail is then applied with [`replay_wal`].
///
/// # Errors
/// [`Error::Io`] when the checkpoint directory cannot be listed.
pub fn resume(
    reader: &WalReader,
    store: Option<&CheckpointStore>,
    config: ReplayConfig,
    to: Option<Seq>,
) -> Result<Resumed> {
    let Some(store) = store else {
        return Ok(Resumed { replayer: Replayer::new(config), checkpoint: None });
    };
    let first = reader.first_seq();
    let mut max_seq = to.map_or(reader.last_seq(), |to| to.min(reader.last_seq()));
    while let Some(loaded) = store.load_newest_valid(config, Some(max_seq))?.loaded {
        if loaded.meta.seq.0.saturating_add(1) >= first.0 {
            return Ok(Resumed { replayer: loaded.replayer, checkpoint: Some(loaded.meta) });
        }
        tracing::warn!(
            seq = loaded.meta.seq.0,
            first_seq = first.0,
            "checkpoint skipped: the log no longer holds the events after it"
        );
        let Some(below) = loaded.meta.seq.0.checked_sub(1) else { break };
        max_seq = Seq(below);
    }
    Ok(Resumed { replayer: Replayer::new(config), checkpoint: None })
}

/// Every fact about `hash` in the log between `from` and `to` (inclusive; `Seq(0)` and `None`
/// for the whole log), by a full scan: the answer for transactions the bounded lifecycle index
/// no longer holds. O(log length); records that are not events are skipped.
///
/// # Errors
/// [`Error::Wal`] when a read fails, [`Error::Purged`] when `from` was purged.
pub fn scan_lifecycle(
    reader: &WalReader,
    hash: &TxHash,
    from: Seq,
    to: Option<Seq>,
) -> Result<Vec<SequencedEvent>> {
    let first = reader.first_seq();
    let from = from.max(first);
    let last = to.map_or(reader.last_seq(), |to| to.min(reader.last_seq()));
    if from > last {
        return Ok(Vec::new());
    }
    let limit = usize::try_from(last.0 - from.0 + 1).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    reader
        .scan_with(from, limit, |seq, payload| {
            if let Ok(event) = Event::from_bytes(payload) {
                let about = event.kind.tx_hash() == Some(*hash)
                    || matches!(&event.kind,
                        mempulse_primitives::EventKind::TxReplaced { new, .. } if new == hash);
                if about {
                    out.push(SequencedEvent { seq, event });
                }
            }
            ControlFlow::Continue(())
        })
        .map_err(|e| match e {
            mempulse_wal::Error::Purged { first, requested } => {
                Error::Purged { first, needed: requested }
            }
            other => Error::Wal(other),
        })?;
    Ok(out)
}
