//! Crash test with real processes: a child appends through the sequencer (`SyncPolicy::Always`)
//! and prints each acknowledged seq; the parent kills it with SIGKILL at seeded moments and
//! checks, after every reopen, that each acknowledged record is present, byte-exact, in order.
//!
//! The child is this same test binary, re-executed with `--exact crash::crash_child` and an env
//! var, so it works under both `cargo test` and `cargo nextest run`.
//! `MEMPULSE_CRASH_CYCLES` (default 1000) and `MEMPULSE_CRASH_SEED` tune it.

use std::{
    collections::VecDeque,
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    sync::mpsc::{self, Receiver, RecvTimeoutError},
    time::{Duration, Instant},
};

use mempulse_wal::{Seq, Sequencer, SequencerConfig, SyncPolicy, Wal, WalConfig};
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::common::{ALL_PREALLOCATE, assert_prefix, payloads};

const CHILD_DIR_ENV: &str = "MEMPULSE_WAL_CRASH_CHILD_DIR";
const CHILD_PREALLOC_ENV: &str = "MEMPULSE_WAL_CRASH_CHILD_PREALLOC";
const CYCLE_DEADLINE: Duration = Duration::from_secs(60);
/// Records the child keeps behind its purge point (exercises purge and recycling).
const KEEP_RECORDS: u64 = 2000;

fn config(dir: &str, prealloc: usize) -> WalConfig {
    WalConfig::new(dir)
        .with_segment_size_bytes(64 << 10)
        .with_sync(SyncPolicy::Always)
        .with_preallocate(ALL_PREALLOCATE[prealloc % ALL_PREALLOCATE.len()])
}

/// The child: appends until killed (or until its own bound, should the parent be gone).
#[test]
#[ignore = "child process of crash_kill_loop"]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else { return };
    let prealloc = std::env::var(CHILD_PREALLOC_ENV).unwrap().parse().unwrap();
    let wal = Wal::open(config(&dir, prealloc)).unwrap();
    let mut next = wal.last_seq().0 + 1;
    let stop_at = next + 200_000;
    let seq = Sequencer::start(wal, SequencerConfig::default()).unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY {}", next - 1).unwrap();
    out.flush().unwrap();
    let mut inflight = VecDeque::new();
    let started = Instant::now();
    while next < stop_at && started.elapsed() < CYCLE_DEADLINE {
        while inflight.len() < 4 {
            let n = 1 + next % 13;
            let ticket = seq.try_submit(payloads(next, n)).unwrap();
            inflight.push_back((next, next + n - 1, ticket));
            next += n;
        }
        let (first, last, ticket) = inflight.pop_front().unwrap();
        let range = ticket.wait().unwrap();
        assert_eq!((range.first, range.last), (Seq(first), Seq(last)));
        writeln!(out, "ACK {last}").unwrap();
        out.flush().unwrap();
        if last % 700 < 13 && last > KEEP_RECORDS {
            drop(seq.try_purge_before(Seq(last - KEEP_RECORDS)).unwrap());
        }
    }
}

/// Reads the child's lines until `acks` ACK lines arrived or the stream ended.
fn read_acks(rx: &Receiver<String>, acks: usize, max_acked: &mut u64, deadline: Instant) -> bool {
    let mut seen = 0;
    while seen < acks {
        let wait = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(line) => {
                if let Some(seq) = line.strip_prefix("ACK ") {
                    *max_acked = (*max_acked).max(seq.parse().unwrap());
                    seen += 1;
                } else if let Some(last) = line.strip_prefix("READY ") {
                    let last: u64 = last.parse().unwrap();
                    assert!(last >= *max_acked, "child reopened at {last}, acked {max_acked}");
                }
            }
            Err(RecvTimeoutError::Disconnected) => return false,
            Err(RecvTimeoutError::Timeout) => panic!("child silent past the deadline"),
        }
    }
    true
}

#[test]
fn crash_kill_loop() {
    let cycles: u32 = std::env::var("MEMPULSE_CRASH_CYCLES").map_or(1000, |v| v.parse().unwrap());
    let seed: u64 =
        std::env::var("MEMPULSE_CRASH_SEED").map_or(0x6B11_1000, |v| v.parse().unwrap());
    println!("crash test: {cycles} cycles, seed {seed} (MEMPULSE_CRASH_SEED)");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let dir_str = dir.path().to_str().unwrap().to_owned();
    let exe = std::env::current_exe().unwrap();
    let mut max_acked = 0u64;
    for cycle in 0..cycles {
        let prealloc = rng.random_range(0..ALL_PREALLOCATE.len());
        let kill_after = rng.random_range(0..24usize);
        let mut child = Command::new(&exe)
            .args(["crash::crash_child", "--exact", "--nocapture", "--ignored", "--test-threads=1"])
            .env(CHILD_DIR_ENV, &dir_str)
            .env(CHILD_PREALLOC_ENV, prealloc.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::sync_channel(1024);
        let lines = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + CYCLE_DEADLINE;
        let alive = read_acks(&rx, kill_after, &mut max_acked, deadline);
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(alive, "cycle {cycle} (seed {seed}): child exited early: {status}");
        // Lines printed before the kill: everything acknowledged must survive too.
        read_acks(&rx, usize::MAX, &mut max_acked, deadline);
        lines.join().unwrap();
        let wal = Wal::open(config(&dir_str, prealloc))
            .unwrap_or_else(|e| panic!("cycle {cycle} (seed {seed}): reopen failed: {e}"));
        let (first, last) = (wal.first_seq().0, wal.last_seq().0);
        assert!(
            last >= max_acked,
            "cycle {cycle} (seed {seed}): lost acked {max_acked}, log ends {last}"
        );
        assert!(first <= max_acked.saturating_sub(KEEP_RECORDS).max(1), "purged too much");
        assert_prefix(&wal.reader(), first, last);
    }
    println!("crash test: {cycles} cycles passed, {max_acked} records acknowledged");
}
