//! The replayed pool view equals the pool of the mempool that wrote the log (but for the
//! transactions' raw bytes, which the view leaves in the log).

use mempulse_primitives::{Seq, Tx};
use mempulse_replay::{
    Replayer,
    test_utils::{MixConfig, generate_with_pool},
};

#[test]
fn replayed_view_equals_the_mempool_that_wrote_the_log() {
    for seed in [1, 2, 3] {
        let mix =
            MixConfig { seed, reorg_every_blocks: 3, pool_txs_max: 1_024, ..MixConfig::default() };
        let (events, pool) = generate_with_pool(&mix, 30_000).unwrap();
        let mut replayer = Replayer::new(crate::config(0));
        for (i, event) in events.iter().enumerate() {
            replayer.apply_event(Seq(i as u64 + 1), event).unwrap();
        }
        assert_eq!(replayer.anomalies(), 0, "seed {seed}");
        assert_eq!(replayer.pool_len(), pool.len(), "seed {seed}");
        assert_eq!(replayer.pending_len(), pool.pending_len() as u64, "seed {seed}");
        for sender in pool.senders() {
            let chain: Vec<_> = replayer
                .nonce_chain(*sender.sender())
                .filter_map(|slot| slot.current.map(|p| (p.tx.clone(), p.subpool)))
                .collect();
            // The view keeps every field and the size, not the bytes (they stay in the log).
            let expected: Vec<_> = sender
                .txs()
                .map(|(tx, sub)| {
                    assert_eq!(tx.encoded_size as usize, tx.raw.len());
                    (Tx { raw: Default::default(), ..tx.clone() }, sub)
                })
                .collect();
            assert_eq!(chain, expected, "seed {seed}, sender {}", sender.sender());
        }
    }
}
