//! `mempulse schedule`: prints the proposer and every validator cluster's tags for a range of
//! heights, computed from the shared validators file (offline; the schedule crate does the
//! work, this module reads the file and formats).

use std::{
    collections::BTreeSet,
    io::{BufWriter, Write},
    process::ExitCode,
};

use anyhow::Context;
use mempulse_primitives::{Height, ValidatorId};
use mempulse_schedule::{HeightTags, Schedule, ValidatorsConfig};
use serde::Serialize;

use crate::cli::ScheduleArgs;

pub(crate) fn run(args: &ScheduleArgs) -> anyhow::Result<ExitCode> {
    let path = &args.validators;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading validators file {}", path.display()))?;
    let config = ValidatorsConfig::from_toml_str(&text)
        .and_then(|config| config.to_schedule().map(|s| (config, s)))
        .with_context(|| format!("validators file {}", path.display()));
    let (config, schedule) = config?;
    let from = args.from_height.map_or_else(|| config.initial_height(), Height);
    // Checked before any output, so a bad height prints only the error.
    schedule.set_at(from).with_context(|| format!("--from-height {from}"))?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if args.json {
        write_json(&mut out, &schedule, from, args.count)?;
    } else {
        write_table(&mut out, &schedule, from, args.count)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn rows(
    schedule: &Schedule,
    from: Height,
    count: u64,
) -> anyhow::Result<impl Iterator<Item = HeightTags> + '_> {
    let count = usize::try_from(count).context("--count does not fit this platform")?;
    Ok(schedule.tags(from)?.take(count))
}

/// One JSON line: `{"height":H,"proposer":ID,"tags":{"ID":["tag",...],...}}`, validators by
/// ascending id, tag names in canonical order.
#[derive(Serialize)]
struct Line {
    height: u64,
    proposer: u64,
    tags: std::collections::BTreeMap<u64, Vec<&'static str>>,
}

fn write_json(
    out: &mut impl Write,
    schedule: &Schedule,
    from: Height,
    count: u64,
) -> anyhow::Result<()> {
    for row in rows(schedule, from, count)? {
        let line = Line {
            height: row.height.get(),
            proposer: row.proposer.get(),
            tags: row.tags.iter().map(|(id, tags)| (id.get(), tags.names().collect())).collect(),
        };
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// An aligned table: `height`, `proposer`, then one column per validator (`v<id>`) holding its
/// tags, `-` for none, blank when the validator is not in that height's set. Two passes over
/// the schedule (widths, then rows) keep memory independent of `--count`.
fn write_table(
    out: &mut impl Write,
    schedule: &Schedule,
    from: Height,
    count: u64,
) -> anyhow::Result<()> {
    let mut ids = BTreeSet::new();
    let mut height_width = "height".len();
    for row in rows(schedule, from, count)? {
        ids.extend(row.tags.keys().copied());
        height_width = height_width.max(row.height.to_string().len());
    }
    let mut columns: Vec<(ValidatorId, usize)> = ids.iter().map(|id| (*id, 0)).collect();
    let proposer_width =
        ids.iter().map(|id| id.to_string().len()).fold("proposer".len(), usize::max);
    for row in rows(schedule, from, count)? {
        for (id, width) in &mut columns {
            *width = (*width).max(cell(&row, *id).len());
        }
    }
    let mut header = format!("{:>height_width$}  {:>proposer_width$}", "height", "proposer");
    for (id, width) in &mut columns {
        let name = format!("v{id}");
        *width = (*width).max(name.len());
        header.push_str(&format!("  {name:<width$}", width = *width));
    }
    writeln!(out, "{}", header.trim_end())?;
    for row in rows(schedule, from, count)? {
        let mut line = format!("{:>height_width$}  {:>proposer_width$}", row.height, row.proposer);
        for (id, width) in &columns {
            line.push_str(&format!("  {:<width$}", cell(&row, *id), width = *width));
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn cell(row: &HeightTags, id: ValidatorId) -> String {
    match row.tags.get(&id) {
        None => String::new(),
        Some(tags) if tags.is_empty() => "-".to_owned(),
        Some(tags) => tags.to_string(),
    }
}
