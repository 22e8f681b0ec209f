//! `mempulse-bench`: one subcommand per benchmark, one JSON line per run.

fn main() -> anyhow::Result<()> {
    Ok(())
}
