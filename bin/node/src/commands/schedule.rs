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
    let range =
        Range::new(&schedule, from, args.count).with_context(|| format!("--from-height {from}"))?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if args.json {
        write_json(&mut out, &schedule, range)?;
    } else {
        write_table(&mut out, &schedule, range)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Heights the schedule is walked one by one at most (about a second): the proposer of a
/// height costs one increment per height above the base. Beyond the last validator change the
/// schedule repeats with a period (the priorities return to a state they had), so a far height
/// is folded back by that period; a schedule with changes further than this above its initial
/// height, or without a period within this many heights, refuses heights that far out.
pub(crate) const WALKED_HEIGHTS_MAX: u64 = 1 << 24;

/// Heights after the last validator change before the period is measured, so the priorities
/// have settled (rescaled into the window and centred) and the state is on its cycle.
const SETTLE_HEIGHTS: u64 = 64;

/// The heights to print: `count` heights from `from`, computed from `from - shift`.
#[derive(Clone, Copy, Debug)]
struct Range {
    from: Height,
    /// How far the computed heights lie below the printed ones (a multiple of the period).
    shift: u64,
    count: usize,
}

impl Range {
    /// Checks `from` and folds it back by the schedule's period when it is far out.
    fn new(schedule: &Schedule, from: Height, count: u64) -> anyhow::Result<Self> {
        let base = schedule.base_height();
        if from < base {
            schedule.set_at(from)?;
        }
        // Never past the last height: `u64::MAX` is printed at most once.
        let count = count.min((u64::MAX - from.get()).saturating_add(1));
        let count = usize::try_from(count).context("--count does not fit this platform")?;
        let last_change = schedule.change_heights().last().unwrap_or(base);
        let anchor = last_change.get().saturating_add(SETTLE_HEIGHTS);
        let walked = |h: u64| h.saturating_sub(base.get()) <= WALKED_HEIGHTS_MAX;
        if walked(from.get()) {
            return Ok(Self { from, shift: 0, count });
        }
        anyhow::ensure!(
            walked(anchor),
            "the last validator change ({last_change}) is more than {WALKED_HEIGHTS_MAX} heights \
             above the initial height ({base}); heights beyond it are not computed"
        );
        let Some(period) = period_after(schedule, Height(anchor))? else {
            anyhow::bail!(
                "the schedule does not repeat within {WALKED_HEIGHTS_MAX} heights after its last \
                 validator change ({last_change}); heights more than {WALKED_HEIGHTS_MAX} above \
                 the initial height ({base}) are not computed"
            );
        };
        let shift = (from.get() - anchor) / period * period;
        Ok(Self { from, shift, count })
    }

    /// The rows, with the heights they are printed under.
    fn rows<'a>(
        self,
        schedule: &'a Schedule,
    ) -> anyhow::Result<impl Iterator<Item = HeightTags> + 'a> {
        let start = Height(self.from.get() - self.shift);
        Ok(schedule.tags(start)?.take(self.count).map(move |mut row| {
            row.height = Height(row.height.get().saturating_add(self.shift));
            row
        }))
    }
}

/// The number of heights after which the validator set of `anchor` recurs, if within
/// [`WALKED_HEIGHTS_MAX`] (with no change after `anchor`, every later height then repeats).
fn period_after(schedule: &Schedule, anchor: Height) -> anyhow::Result<Option<u64>> {
    let mut proposers = schedule.proposers(anchor)?;
    proposers.next();
    let Some(start) = proposers.current_set().cloned() else { return Ok(None) };
    for steps in 1..=WALKED_HEIGHTS_MAX {
        if proposers.next().is_none() {
            return Ok(None);
        }
        if proposers.current_set() == Some(&start) {
            return Ok(Some(steps));
        }
    }
    Ok(None)
}

/// One JSON line: `{"height":H,"proposer":ID,"tags":{"ID":["tag",...],...}}`, validators by
/// ascending id, tag names in canonical order.
#[derive(Serialize)]
struct Line {
    height: u64,
    proposer: u64,
    tags: std::collections::BTreeMap<u64, Vec<&'static str>>,
}

fn write_json(out: &mut impl Write, schedule: &Schedule, range: Range) -> anyhow::Result<()> {
    for row in range.rows(schedule)? {
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
fn write_table(out: &mut impl Write, schedule: &Schedule, range: Range) -> anyhow::Result<()> {
    let mut ids = BTreeSet::new();
    let mut height_width = "height".len();
    for row in range.rows(schedule)? {
        ids.extend(row.tags.keys().copied());
        height_width = height_width.max(row.height.to_string().len());
    }
    let mut columns: Vec<(ValidatorId, usize)> = ids.iter().map(|id| (*id, 0)).collect();
    let proposer_width =
        ids.iter().map(|id| id.to_string().len()).fold("proposer".len(), usize::max);
    for row in range.rows(schedule)? {
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
    for row in range.rows(schedule)? {
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

#[cfg(test)]
mod tests {
    use mempulse_primitives::Address;
    use mempulse_schedule::Validator;

    use super::*;

    fn validator(id: u64, power: u64) -> Validator {
        let mut address = [0u8; 20];
        address[19] = u8::try_from(id).unwrap();
        Validator {
            id: ValidatorId(id),
            address: Address(address),
            power,
            nodes: Vec::new(),
            streams: Vec::new(),
        }
    }

    #[test]
    fn far_heights_are_folded_back_by_the_period() {
        let mut schedule =
            Schedule::genesis(Height(1), &[validator(1, 1), validator(2, 3), validator(3, 2)])
                .unwrap();
        schedule.add_changes(Height(6), &[validator(4, 5)]).unwrap();
        let anchor = Height(6 + SETTLE_HEIGHTS);
        let period = period_after(&schedule, anchor).unwrap().unwrap();
        let direct = |from: u64| -> Vec<HeightTags> {
            schedule.tags(Height(from)).unwrap().take(40).collect()
        };
        let (first, second) = (direct(anchor.get() + 3), direct(anchor.get() + 3 + period));
        for (a, b) in first.iter().zip(&second) {
            assert_eq!((a.proposer, &a.tags), (b.proposer, &b.tags), "period {period}");
        }
        let far = Height(u64::MAX - 1);
        let range = Range::new(&schedule, far, 3).unwrap();
        assert_eq!((range.count, range.shift % period), (2, 0));
        let rows: Vec<HeightTags> = range.rows(&schedule).unwrap().collect();
        assert_eq!(rows.iter().map(|r| r.height).collect::<Vec<_>>(), [far, Height(u64::MAX)]);
        let folded = direct(far.get() - range.shift);
        assert_eq!(rows[0].tags, folded[0].tags);
        let near = Range::new(&schedule, Height(100), 5).unwrap();
        assert_eq!(near.shift, 0);
    }
}
