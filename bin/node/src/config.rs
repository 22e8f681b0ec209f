//! Node configuration: TOML file, then environment variables and flags on top.
//! `NodeConfig::default()` is the embedded default: one node, data in `./mempulse-data`.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use mempulse_wal::{DEFAULT_SEGMENT_SIZE_BYTES, Preallocate, SyncPolicy, WalConfig};
use serde::Deserialize;

use crate::cli::RunArgs;

/// Everything a node reads at start-up.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct NodeConfig {
    /// Data directory; the event log lives in `events/` below it.
    pub(crate) data_dir: PathBuf,
    /// The canonical event log.
    pub(crate) wal: WalSection,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self { data_dir: PathBuf::from("mempulse-data"), wal: WalSection::default() }
    }
}

/// `[wal]` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct WalSection {
    /// `always` (fdatasync per group), `never`, or an interval such as `10ms`.
    pub(crate) sync: String,
    /// Segment file size in bytes.
    pub(crate) segment_size_bytes: u64,
    /// `zero-fill`, `fallocate` or `recycle`.
    pub(crate) preallocate: String,
}

impl Default for WalSection {
    fn default() -> Self {
        Self {
            sync: "always".to_owned(),
            segment_size_bytes: DEFAULT_SEGMENT_SIZE_BYTES,
            preallocate: "fallocate".to_owned(),
        }
    }
}

impl NodeConfig {
    /// Loads the file named by `--config` (if any), then applies flags and environment.
    pub(crate) fn load(args: &RunArgs) -> anyhow::Result<Self> {
        let mut config = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => Self::default(),
        };
        if let Some(dir) = &args.data_dir {
            config.data_dir.clone_from(dir);
        }
        if let Some(sync) = &args.wal_sync {
            config.wal.sync.clone_from(sync);
        }
        Ok(config)
    }

    /// The event log's configuration.
    pub(crate) fn event_log(&self) -> anyhow::Result<WalConfig> {
        let config = WalConfig::new(self.data_dir.join("events"))
            .with_segment_size_bytes(self.wal.segment_size_bytes)
            .with_sync(parse_sync(&self.wal.sync)?)
            .with_preallocate(parse_preallocate(&self.wal.preallocate)?);
        config.validate().context("invalid [wal] configuration")?;
        Ok(config)
    }
}

fn parse_sync(text: &str) -> anyhow::Result<SyncPolicy> {
    Ok(match text {
        "always" => SyncPolicy::Always,
        "never" => SyncPolicy::Never,
        other => {
            let Some(ms) = other.strip_suffix("ms").and_then(|n| n.parse::<u64>().ok()) else {
                bail!("wal sync must be `always`, `never` or `<N>ms`, got `{other}`");
            };
            if ms == 0 {
                bail!("wal sync interval must be at least 1ms");
            }
            SyncPolicy::Interval(Duration::from_millis(ms))
        }
    })
}

fn parse_preallocate(text: &str) -> anyhow::Result<Preallocate> {
    Ok(match text {
        "zero-fill" => Preallocate::ZeroFill,
        "fallocate" => Preallocate::Fallocate,
        "recycle" => Preallocate::Recycle,
        other => bail!("wal preallocate must be zero-fill, fallocate or recycle, got `{other}`"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_policies_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_sync("always").unwrap(), SyncPolicy::Always);
        assert_eq!(parse_sync("never").unwrap(), SyncPolicy::Never);
        assert_eq!(parse_sync("25ms").unwrap(), SyncPolicy::Interval(Duration::from_millis(25)));
        for bad in ["", "0ms", "sometimes", "10s", "-1ms"] {
            assert!(parse_sync(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn toml_is_kebab_case_and_rejects_unknown_keys() {
        let c: NodeConfig =
            toml::from_str("data-dir = \"/x\"\n[wal]\nsync = \"5ms\"\nsegment-size-bytes = 8192\n")
                .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/x"));
        assert_eq!(c.event_log().unwrap().segment_size_bytes, 8192);
        assert!(toml::from_str::<NodeConfig>("datadir = \"/x\"").is_err());
        let tiny: NodeConfig = toml::from_str("[wal]\nsegment-size-bytes = 1\n").unwrap();
        assert!(tiny.event_log().is_err());
    }
}
