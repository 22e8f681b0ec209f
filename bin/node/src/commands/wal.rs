//! `mempulse wal verify|dump|stats`: offline, read-only inspection of a log directory.

use std::{
    io::{BufWriter, Write},
    ops::ControlFlow,
    process::ExitCode,
};

use anyhow::Context;
use mempulse_primitives::{Event, Seq, SequencedEvent};
use mempulse_wal::Error;
use serde_json::json;

use crate::cli::WalCommand;

pub(crate) fn run(command: WalCommand) -> anyhow::Result<ExitCode> {
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
