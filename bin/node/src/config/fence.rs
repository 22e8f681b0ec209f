//! `[fence]` section: how this node compares its replicated state with its peers and when it
//! fences itself (design rule 6; `docs/design/divergence.md`).

use std::time::Duration;

use serde::Deserialize;

use crate::wiring::FenceOptions;

/// Default time between two comparison rounds with the peers.
const COMPARE_INTERVAL_MS_DEFAULT: u64 = 2_000;

/// `[fence]` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct FenceSection {
    /// Peers whose state root must disagree with this node's for it to fence itself (0: a
    /// majority of the other members).
    pub(crate) peers_disagree_min: usize,
    /// Milliseconds between two comparison rounds (at least 100).
    pub(crate) compare_interval_ms: u64,
}

impl Default for FenceSection {
    fn default() -> Self {
        Self { peers_disagree_min: 0, compare_interval_ms: COMPARE_INTERVAL_MS_DEFAULT }
    }
}

impl FenceSection {
    /// The options of the comparison rounds.
    pub(crate) fn options(&self) -> FenceOptions {
        FenceOptions {
            peers_disagree_min: (self.peers_disagree_min > 0).then_some(self.peers_disagree_min),
            compare_interval: Duration::from_millis(self.compare_interval_ms.max(100)),
        }
    }
}
