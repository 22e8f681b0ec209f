//! Commands and outcomes: the replicated interface of the state machine.
//!
//! `apply(state, command) -> facts` is a function: the same commands in the same order give
//! the same facts and the same digest on every machine.

use core::fmt;

use mempulse_primitives::{EventKind, Tx, ValidatorId};

use crate::{BlockLimits, BuiltBlock, CommitBlock, Mempool, Reorg, Result};

/// One replicated command: the command set carried in the Raft log (`mempulse-cluster` uses
/// this type directly) and encoded by the `command_codec` layout.
///
/// Deliberately exhaustive: a new variant is a change of the replicated log format (a new tag in
/// the codec, and replicas that do not know it cannot apply the log), so every `match` on it
/// must be revisited rather than fall into a wildcard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Check and admit a batch, in order.
    AddTxs(Vec<Tx>),
    /// Build a block proposal for the next height (read-only).
    BuildBlock {
        /// Block limits.
        limits: BlockLimits,
        /// Validator the proposal is for (recorded in the `block_proposed` fact).
        proposer: ValidatorId,
    },
    /// Commit a block, then recheck.
    CommitBlock(CommitBlock),
    /// Apply a reorg.
    Reorg(Reorg),
}

impl Command {
    /// Stable lowercase name of the variant (for logs and metric labels).
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::AddTxs(_) => "add_txs",
            Self::BuildBlock { .. } => "build_block",
            Self::CommitBlock(_) => "commit_block",
            Self::Reorg(_) => "reorg",
        }
    }
}

/// A short summary for logs: the variant and its sizes, not its contents.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AddTxs(txs) => write!(f, "add_txs(n={})", txs.len()),
            Self::BuildBlock { proposer, .. } => write!(f, "build_block(proposer={proposer})"),
            Self::CommitBlock(block) => {
                write!(f, "commit_block(height={}, txs={})", block.height, block.txs.len())
            }
            Self::Reorg(reorg) => write!(
                f,
                "reorg(fork_height={}, orphaned={})",
                reorg.fork_height,
                reorg.orphaned.len()
            ),
        }
    }
}

/// What applying a command produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Derived facts, in order.
    pub facts: Vec<EventKind>,
    /// The proposal, for [`Command::BuildBlock`].
    pub block: Option<BuiltBlock>,
}

impl Mempool {
    /// Applies one command. On error the state is unchanged and no fact is produced.
    ///
    /// # Errors
    /// [`crate::Error::HeightNotAscending`] for a commit that does not move the height up,
    /// [`crate::Error::InvalidReorg`] for a malformed reorg.
    pub fn apply(&mut self, command: Command) -> Result<Outcome> {
        match command {
            Command::AddTxs(txs) => Ok(Outcome { facts: self.add_txs(txs), block: None }),
            Command::BuildBlock { limits, proposer } => {
                let block = self.build_block(limits);
                let fact = EventKind::BlockProposed {
                    height: self.height.checked_next().unwrap_or(self.height),
                    proposer,
                    txs: block.txs.iter().map(|tx| tx.hash).collect(),
                    total_bytes: block.total_bytes,
                    total_gas: block.total_gas,
                };
                Ok(Outcome { facts: vec![fact], block: Some(block) })
            }
            Command::CommitBlock(block) => {
                Ok(Outcome { facts: self.commit_block(&block)?, block: None })
            }
            Command::Reorg(reorg) => Ok(Outcome { facts: self.reorg(reorg)?, block: None }),
        }
    }
}
