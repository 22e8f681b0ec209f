//! Admit, build, commit and snapshot with the mempool state machine.
//!
//! Run with `cargo run -p mempulse-mempool --example pool_lifecycle`.

use mempulse_mempool::test_utils::{TxSpec, tx};
use mempulse_mempool::{BlockLimits, Command, CommitBlock, Mempool, MempoolConfig, OrderingPolicy};
use mempulse_primitives::{Height, ValidatorId};

fn main() -> Result<(), mempulse_mempool::Error> {
    let config = MempoolConfig { ordering: OrderingPolicy::Priority, ..MempoolConfig::default() };
    let mut pool = Mempool::new(config)?;

    // Two senders; sender 2 pays more. Sender 1's nonce 2 waits for nonce 1.
    let batch = vec![tx(1, 0, 10), tx(1, 2, 10), tx(2, 0, 50), tx(1, 1, 10)];
    let outcome = pool.apply(Command::AddTxs(batch))?;
    for fact in &outcome.facts {
        eprintln!("{}", fact.as_str());
    }

    // A replacement needs a 10 % bump on both fees.
    let bump = TxSpec { max_fee: 11, tip: 11, ..TxSpec::new(1, 0, 10) }.build();
    let outcome = pool.apply(Command::AddTxs(vec![bump]))?;
    eprintln!("replacement: {:?}", outcome.facts.first().map(|f| f.as_str()));

    let limits = BlockLimits::from_cometbft(-1, 63_000);
    let built = pool.apply(Command::BuildBlock { limits, proposer: ValidatorId(0) })?;
    let block = built.block.unwrap_or_default();
    eprintln!("block: {} txs, {} gas", block.txs.len(), block.total_gas);

    let txs = block.txs.iter().map(|t| t.hash).collect();
    let commit = CommitBlock { height: Height(1), txs, ..CommitBlock::default() };
    let outcome = pool.apply(Command::CommitBlock(commit))?;
    eprintln!("commit facts: {}", outcome.facts.len());

    let restored = Mempool::restore(&pool.snapshot())?;
    eprintln!("digest {} (restored {})", pool.digest(), restored.digest());
    Ok(())
}
