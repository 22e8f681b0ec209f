//! Replay from any checkpoint equals replay from genesis (bounded cases).

use std::sync::Arc;

use mempulse_replay::{
    CheckpointStore, Replayer,
    test_utils::{MixConfig, generate},
};
use mempulse_wal::test_utils::SimStorage;
use proptest::prelude::*;

use crate::{apply_all, config};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn replay_from_any_checkpoint_equals_replay_from_genesis(
        seed in any::<u64>(),
        len in 200usize..2_500,
        cut_per_mille in 0u64..=1000,
        every in 1u64..200,
    ) {
        let mix = MixConfig {
            seed,
            senders: 50,
            batch_txs: 8,
            block_txs: 20,
            pool_txs_max: 64,
            reorg_every_blocks: 4,
            ..MixConfig::default()
        };
        let events = generate(&mix, len).unwrap();
        let cut = (len as u64 * cut_per_mille / 1000) as usize;
        let mut genesis = Replayer::new(config(every));
        let all_points = apply_all(&mut genesis, 1, &events);

        let mut first_half = Replayer::new(config(every));
        apply_all(&mut first_half, 1, &events[..cut]);
        let store = CheckpointStore::with_storage(Arc::new(SimStorage::new()), 2).unwrap();
        let written = store.write(&first_half).unwrap();
        let newest = store.load_newest_valid(config(every), None).unwrap();
        prop_assert!(newest.skipped.is_empty());
        let loaded = newest.loaded.unwrap();
        prop_assert_eq!(loaded.meta, written);
        let mut resumed = loaded.replayer;
        let later_points = apply_all(&mut resumed, cut as u64 + 1, &events[cut..]);

        let expected: Vec<_> = all_points.iter().filter(|p| p.seq.0 > cut as u64).copied().collect();
        prop_assert_eq!(later_points, expected);
        prop_assert_eq!(resumed.digest(), genesis.digest());
        prop_assert_eq!(resumed.open_digest(), genesis.open_digest());
        prop_assert_eq!(resumed.local_digest(), genesis.local_digest());
        prop_assert_eq!(resumed.events(), genesis.events());
        prop_assert!(resumed.index_digests().eq(genesis.index_digests()));
        prop_assert_eq!(resumed.anomalies(), 0);
    }
}
