//! `mempulse wal verify|dump|stats`: offline, read-only inspection of a log directory.

use std::{
    io::{BufWriter, Write},
    ops::ControlFlow,
    path::Path,
    process::ExitCode,
};

use anyhow::{Context, bail};
use mempulse_primitives::{Event, Seq, SequencedEvent};
use mempulse_wal::Error;
use serde_json::json;

use crate::cli::WalCommand;

/// Suffix of an event-log segment file (`<20-digit first seq>.seg`).
const SEGMENT_SUFFIX: &str = ".seg";

/// Refuses a directory that holds no segment file: an empty or wrong directory would otherwise
/// read as an empty log (`ok`, zero segments) and a replay of it as a state. Names the likely
/// intended directory when `dir/events` exists (a node's data directory was given).
///
/// # Errors
/// When `dir` cannot be listed or holds no segment file.
pub(crate) fn require_segments(dir: &Path) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("listing the log directory {}", dir.display()))?;
    for entry in entries {
        let entry =
            entry.with_context(|| format!("listing the log directory {}", dir.display()))?;
        let name = entry.file_name();
        let is_segment = name
            .to_str()
            .and_then(|n| n.strip_suffix(SEGMENT_SUFFIX))
            .is_some_and(|stem| stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()));
        if is_segment {
            return Ok(());
        }
    }
    let events = dir.join("events");
    if events.is_dir() {
        bail!(
            "{} holds no log segment file (*.seg): did you mean {}? (a node keeps its event log \
             in <data-dir>/events)",
            dir.display(),
            events.display()
        );
    }
    bail!("{} holds no log segment file (*.seg): not an event log directory", dir.display())
}

pub(crate) fn run(command: WalCommand) -> anyhow::Result<ExitCode> {
    let (WalCommand::Verify { dir } | WalCommand::Stats { dir } | WalCommand::Dump { dir, .. }) =
        &command;
    require_segments(dir)?;
    match command {
        WalCommand::Verify { dir } => verify(&dir),
        WalCommand::Stats { dir } => {
            let s = mempulse_wal::stats(&dir)
                .with_context(|| format!("reading log stats in {}", dir.display()))?;
            let line = json!({
                "segments": s.segments,
                "records": s.records,
                "file_bytes": s.file_bytes,
                "first_seq": s.first_seq.get(),
                "last_seq": s.last_seq.get(),
            });
            print_line(&line.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        WalCommand::Dump { dir, from, limit } => dump(&dir, Seq(from), limit),
    }
}

fn verify(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    match mempulse_wal::verify(dir) {
        Ok(report) => {
            let torn = report
                .torn_tail
                .as_ref()
                .map(|t| json!({"segment": t.segment, "offset": t.offset}));
            let line = json!({
                "ok": true,
                "segments": report.segments,
                "records": report.records,
                "payload_bytes": report.payload_bytes,
                "first_seq": report.first_seq.get(),
                "last_seq": report.last_seq.get(),
                "torn_tail": torn,
            });
            print_line(&line.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(Error::Corrupt { segment, offset, kind }) => {
            let line = json!({
                "ok": false,
                "segment": segment,
                "offset": offset,
                "kind": kind.as_str(),
            });
            print_line(&line.to_string())?;
            eprintln!("damaged log: segment {segment} at byte offset {offset}: {kind}");
            Ok(ExitCode::FAILURE)
        }
        Err(other) => Err(other).with_context(|| format!("verifying {}", dir.display())),
    }
}

/// Prints records from `from` as JSON lines: the decoded event, or the undecodable bytes as hex
/// with the decode error (a dump is a diagnostic tool and must show what is there).
fn dump(dir: &std::path::Path, from: Seq, limit: usize) -> anyhow::Result<ExitCode> {
    let reader =
        mempulse_wal::open_reader(dir).with_context(|| format!("opening {}", dir.display()))?;
    require_events(&reader, dir)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut write_err = None;
    reader
        .scan_with(from, limit, |seq, payload| {
            let line = match Event::from_bytes(payload) {
                Ok(event) => serde_json::to_string(&SequencedEvent { seq, event }),
                Err(err) => serde_json::to_string(&json!({
                    "seq": seq.get(),
                    "error": err.to_string(),
                    "payload_hex": hex_string(payload),
                })),
            };
            match line.map_err(anyhow::Error::from).and_then(|l| Ok(writeln!(out, "{l}")?)) {
                Ok(()) => ControlFlow::Continue(()),
                Err(err) => {
                    write_err = Some(err);
                    ControlFlow::Break(())
                }
            }
        })
        .with_context(|| format!("scanning {}", dir.display()))?;
    if let Some(err) = write_err {
        return Err(err);
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Refuses a log whose first record does not decode as an event: another log in the same
/// frame format (a node's Raft log) would otherwise print one decode error per record.
fn require_events(reader: &mempulse_wal::WalReader, dir: &Path) -> anyhow::Result<()> {
    let first = reader.first_seq();
    let mut decoded = None;
    reader
        .scan_with(first, 1, |_, payload| {
            decoded = Some(Event::from_bytes(payload).map(drop));
            ControlFlow::Break(())
        })
        .with_context(|| format!("reading the first record of {}", dir.display()))?;
    if let Some(Err(error)) = decoded {
        bail!(
            "{} is not an event log: its first record (seq {first}) does not decode as an event \
             ({error}); a Raft log directory?",
            dir.display()
        );
    }
    Ok(())
}

fn hex_string(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[expect(clippy::print_stdout, reason = "a CLI command's output goes to stdout")]
fn print_line(line: &str) -> anyhow::Result<()> {
    println!("{line}");
    Ok(())
}
