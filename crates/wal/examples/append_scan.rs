//! Append through the sequencer, follow the log with a cursor, then reopen and verify.
//!
//! Run: `cargo run -p mempulse-wal --example append_scan`.

use std::ops::ControlFlow;

use mempulse_wal::{Seq, Sequencer, SequencerConfig, SubmitError, SyncPolicy, Wal, WalConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("mempulse-wal-example-{}", std::process::id()));
    let config =
        WalConfig::new(&dir).with_segment_size_bytes(1 << 20).with_sync(SyncPolicy::Always);
    let wal = Wal::open(config.clone())?;
    let sequencer = Sequencer::start(wal, SequencerConfig::default())?;

    // Producers never block: a full queue is a typed error the caller records as a drop.
    let mut tickets = Vec::new();
    for i in 0..100u32 {
        match sequencer.try_submit(vec![format!("event {i}").into_bytes()]) {
            Ok(ticket) => tickets.push(ticket),
            Err(SubmitError::Full { depth, capacity }) => {
                eprintln!("dropped event {i}: queue {depth}/{capacity}");
            }
            Err(other) => return Err(other.into()),
        }
    }
    for ticket in tickets {
        ticket.wait()?; // durable once this returns
    }

    // A cursor reads what is durable; `next_batch` would wait for more.
    let mut cursor = sequencer.cursor(Seq(1));
    let first = cursor.try_next_batch(10)?;
    eprintln!("first record: {:?}", String::from_utf8_lossy(&first[0].payload));
    sequencer.shutdown_blocking()?;

    // Reopen: headers only, plus the active segment's tail.
    let wal = Wal::open(config)?;
    let mut bytes = 0;
    wal.reader().scan_with(Seq(1), usize::MAX, |_, payload| {
        bytes += payload.len();
        ControlFlow::Continue(())
    })?;
    let report = mempulse_wal::verify(&dir)?;
    eprintln!("{} records, {bytes} payload bytes, last seq {}", report.records, wal.last_seq());
    drop(wal);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
