//! Scenario tests: one per rejection code, building policies, commit, TTL, reorg, snapshot.
