//! `[blocks]` section: whether this node produces blocks in its validator's turn, the limits
//! of the blocks it builds, and how long it tries to hand each block to the other clusters
//! (`docs/design/blocks.md`).

use std::time::Duration;

use anyhow::ensure;
use mempulse_mempool::BlockLimits;
use serde::Deserialize;

use super::ScheduleSection;

/// Default gas limit of a built block.
const GAS_LIMIT_DEFAULT: u64 = 30_000_000;
/// Default byte limit of a built block (1 MiB).
const BYTES_LIMIT_DEFAULT: u64 = 1 << 20;

/// `[blocks]` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct BlocksSection {
    /// Build, commit and broadcast a block in this validator's slots (needs `[schedule]`).
    pub(crate) produce: bool,
    /// Most total gas (sum of gas limits) of a built block.
    pub(crate) gas_limit: u64,
    /// Most total encoded bytes of a built block.
    pub(crate) bytes_limit: u64,
    /// How long a built block is offered to each other cluster (retries included); the slot
    /// duration when unset.
    pub(crate) broadcast_timeout_ms: Option<u64>,
}

impl Default for BlocksSection {
    fn default() -> Self {
        Self {
            produce: false,
            gas_limit: GAS_LIMIT_DEFAULT,
            bytes_limit: BYTES_LIMIT_DEFAULT,
            broadcast_timeout_ms: None,
        }
    }
}

impl BlocksSection {
    /// Checks the section against the schedule's: producing needs a validators file and this
    /// node's validator, and positive limits.
    pub(crate) fn check(&self, schedule: &ScheduleSection) -> anyhow::Result<()> {
        if !self.produce {
            return Ok(());
        }
        ensure!(
            schedule.validators.is_some() && schedule.validator_id.is_some(),
            "[blocks] produce = true needs [schedule] validators and validator-id (who proposes \
             when comes from the validators file)"
        );
        ensure!(self.gas_limit > 0, "[blocks] gas-limit must be at least 1");
        ensure!(self.bytes_limit > 0, "[blocks] bytes-limit must be at least 1");
        ensure!(
            self.broadcast_timeout_ms != Some(0),
            "[blocks] broadcast-timeout-ms must be at least 1"
        );
        Ok(())
    }

    /// The limits of every block this node builds.
    pub(crate) const fn limits(&self) -> BlockLimits {
        BlockLimits { max_bytes: Some(self.bytes_limit), max_gas: Some(self.gas_limit) }
    }

    /// How long a block is offered to each other cluster, given the slot duration.
    pub(crate) fn broadcast_timeout(&self, slot: Duration) -> Duration {
        self.broadcast_timeout_ms.map_or(slot, Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn defaults_parse_and_producing_needs_the_schedule() {
        let off = BlocksSection::default();
        assert!(!off.produce);
        assert_eq!(
            off.limits(),
            BlockLimits { max_bytes: Some(1 << 20), max_gas: Some(30_000_000) }
        );
        assert_eq!(off.broadcast_timeout(Duration::from_millis(400)), Duration::from_millis(400));
        off.check(&ScheduleSection::default()).unwrap();

        let on: BlocksSection =
            toml::from_str("produce = true\ngas-limit = 42000\nbroadcast-timeout-ms = 250\n")
                .unwrap();
        assert_eq!(on.limits().max_gas, Some(42_000));
        assert_eq!(on.broadcast_timeout(Duration::from_secs(1)), Duration::from_millis(250));
        let error = on.check(&ScheduleSection::default()).unwrap_err().to_string();
        assert!(error.contains("[blocks] produce = true needs [schedule]"), "{error}");
        let schedule = ScheduleSection {
            validators: Some(PathBuf::from("validators.toml")),
            validator_id: Some(1),
        };
        on.check(&schedule).unwrap();
        for bad in [
            BlocksSection { gas_limit: 0, ..on.clone() },
            BlocksSection { bytes_limit: 0, ..on.clone() },
            BlocksSection { broadcast_timeout_ms: Some(0), ..on },
        ] {
            assert!(bad.check(&schedule).is_err(), "{bad:?}");
        }
        assert!(toml::from_str::<BlocksSection>("gaslimit = 1\n").is_err());
    }
}
