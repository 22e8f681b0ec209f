//! The producer's decisions (who builds when, once per slot, missed slots), the notice, the
//! broadcast's targets and retry bounds, and the handler's answers, over fakes with a manual
//! time source.

use std::{collections::BTreeMap, sync::Mutex};

use mempulse_mempool::{BuiltBlock, Command, Mempool, MempoolConfig, test_utils::tx};
use mempulse_net::peer::{BlockAck, BlockHandler as _};
use mempulse_primitives::{NodeId, Nonce, TxHash};
use mempulse_schedule::{Round, ValidatorsConfig};

use super::{broadcast::*, slots::*, *};

const SLOT: Duration = Duration::from_millis(100);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Three validators (powers 1, 2, 1); validator 2's streams name nodes 4, 5 and 6, validator
/// 3's node 7, validator 1's nodes 1 and 2.
fn schedule() -> Schedule {
    let file = r#"
[[validators]]
id = 1
address = "0x00000000000000000000000000000000000000a1"
power = 1
streams = ["1@127.0.0.1:7501", "2@127.0.0.1:7502"]
[[validators]]
id = 2
address = "0x00000000000000000000000000000000000000a2"
power = 2
streams = ["4@127.0.0.1:7504", "5@127.0.0.1:7505", "6@127.0.0.1:7506"]
[[validators]]
id = 3
address = "0x00000000000000000000000000000000000000a3"
power = 1
streams = ["7@127.0.0.1:7507"]
"#;
    ValidatorsConfig::from_toml_str(file).unwrap().to_schedule().unwrap()
}

fn driver(validator: u64) -> SlotDriver {
    let config = SlotConfig { slot_duration: SLOT };
    SlotDriver::new(schedule(), config, ValidatorId(validator), Height(0), ms(0)).unwrap()
}

#[test]
fn the_proposer_builds_once_per_slot_from_half_the_slot_and_only_as_ready_leader() {
    let genesis = schedule();
    for height in 1..=8_u64 {
        let proposer = genesis.proposer(Height(height)).unwrap();
        for validator in 1..=3 {
            let mut driver = driver(validator);
            // Blocks 1 .. height - 1 committed on time, at 0 ms.
            driver.observe(Height(height - 1), ms(0)).unwrap();
            assert_eq!(driver.slot().height, Height(height));
            assert_eq!(driver.due(ms(49), true), None, "before half the slot");
            assert_eq!(driver.due(ms(50), false), None, "not the ready leader");
            let due = driver.due(ms(50), true);
            if ValidatorId(validator) == proposer {
                let slot = due.expect("the proposer builds");
                assert_eq!(
                    (slot.height, slot.round, slot.proposer),
                    (Height(height), Round(0), proposer)
                );
                assert_eq!(driver.due(ms(60), true), None, "once per (height, round)");
            } else {
                assert_eq!(due, None, "validator {validator} at height {height}");
            }
        }
    }
}

#[test]
fn a_missed_slot_moves_the_round_to_the_next_proposer() {
    let genesis = schedule();
    let first = genesis.proposer_at_round(Height(1), Round(0)).unwrap();
    let second = genesis.proposer_at_round(Height(1), Round(1)).unwrap();
    assert_ne!(first, second, "the schedule must change proposer between rounds");
    let mut driver = driver(second.0);
    assert_eq!(driver.due(ms(60), true), None, "round 0 is not ours");
    assert!(driver.observe(Height(0), ms(99)).unwrap().is_empty());
    let missed = driver.observe(Height(0), ms(100)).unwrap();
    assert_eq!(missed.len(), 1);
    assert_eq!(
        (missed[0].height, missed[0].round, missed[0].proposer),
        (Height(1), Round(0), first)
    );
    assert_eq!((missed[0].next.round, missed[0].next.proposer), (Round(1), second));
    assert_eq!(driver.due(ms(149), true), None);
    let slot = driver.due(ms(150), true).expect("round 1 is ours");
    assert_eq!((slot.height, slot.round), (Height(1), Round(1)));
    // Our block commits: the next height opens at round 0, one slot from the commit.
    driver.observe(Height(1), ms(160)).unwrap();
    assert_eq!((driver.slot().height, driver.slot().round), (Height(2), Round(0)));
    assert_eq!(driver.slot().deadline, ms(260));
    // A stalled node reports a bounded number of missed slots per observation.
    let missed = driver.observe(Height(1), Duration::from_secs(1000)).unwrap();
    assert_eq!(missed.len(), MISSED_PER_TICK_MAX);
    assert!(missed.windows(2).all(|w| w[1].round.get() == w[0].round.get() + 1));
}

#[test]
fn a_reorg_restarts_the_clock_and_the_height_may_be_built_again() {
    let genesis = schedule();
    let proposer = genesis.proposer(Height(3)).unwrap();
    let mut driver = driver(proposer.0);
    driver.observe(Height(2), ms(0)).unwrap();
    assert!(driver.due(ms(50), true).is_some());
    driver.observe(Height(3), ms(60)).unwrap();
    assert_eq!(driver.slot().height, Height(4));
    // The pool went back to height 2: height 3 is open again, round 0.
    driver.observe(Height(2), ms(70)).unwrap();
    assert_eq!((driver.slot().height, driver.slot().round), (Height(3), Round(0)));
    assert_eq!(driver.slot().proposer, proposer);
    assert!(driver.due(ms(120), true).is_some(), "a new block for the reopened height");
    // Far ahead: the clock follows a pool that jumped many heights at once.
    driver.observe(Height(500), ms(130)).unwrap();
    assert_eq!(driver.slot().height, Height(501));
    assert_eq!(driver.slot().proposer, genesis.proposer(Height(501)).unwrap());
}

#[test]
fn the_notice_comes_from_the_block_alone() {
    // Senders 9 and 2, out of address order, sender 2 twice.
    let txs = vec![tx(9, 4, 10), tx(2, 0, 10), tx(2, 1, 10)];
    let block = BuiltBlock { txs: txs.clone(), total_bytes: 300, total_gas: 63_000 };
    let slot =
        Slot { height: Height(7), round: Round(2), proposer: ValidatorId(3), deadline: ms(5) };
    let notice = notice(&slot, &block);
    assert_eq!((notice.height, notice.round, notice.proposer), (Height(7), 2, ValidatorId(3)));
    assert_eq!(notice.txs, txs.iter().map(|t| t.hash).collect::<Vec<_>>(), "block order");
    assert_eq!(notice.nonces, [(txs[1].sender, Nonce(2)), (txs[0].sender, Nonce(5))]);
    assert_eq!(notice.base_fee_per_gas, None);
    let later = Slot { deadline: ms(999), ..slot };
    assert_eq!(super::notice(&later, &block), notice, "no clock in the content");
    let commit = commit_of(&notice);
    assert_eq!(
        (commit.height, &commit.txs, &commit.nonces),
        (Height(7), &notice.txs, &notice.nonces)
    );
}

#[test]
fn every_other_validator_is_a_target_with_its_stream_nodes() {
    let set = schedule().set_at(Height(1)).unwrap();
    let targets = targets(&set, ValidatorId(2));
    assert_eq!(
        targets,
        [(ValidatorId(1), vec![NodeId(1), NodeId(2)]), (ValidatorId(3), vec![NodeId(7)])]
    );
}

#[test]
fn attempts_go_to_the_leader_then_to_the_next_member() {
    let (n4, n5, n6) = (NodeId(4), NodeId(5), NodeId(6));
    let members = [n4, n5, n6];
    assert_eq!(pick(Some(n5), &[], &members, 0), Some(n5));
    assert_eq!(pick(Some(n5), &[n5], &members, 1), Some(n6), "a failed leader is skipped");
    assert_eq!(pick(None, &[], &members, 4), Some(n5), "from the cursor, wrapping");
    assert_eq!(pick(None, &[n4], &members, 0), Some(n5));
    assert_eq!(pick(Some(n4), &[n4, n5], &members, 0), Some(n6));
    assert_eq!(pick(Some(n4), &[n4, n5, n6], &members, 0), None, "everyone failed");
    assert_eq!(pick(Some(NodeId(9)), &[], &[], 0), Some(NodeId(9)), "a leader outside the file");
    assert_eq!(pick(None, &[], &[], 3), None);
}

/// Time that moves only when the code under test sleeps or a fake send takes time.
#[derive(Debug, Default)]
struct ManualTime {
    now: Mutex<Duration>,
}

impl ManualTime {
    fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap();
        *now += by;
    }
}

impl TimeSource for ManualTime {
    fn now(&self) -> Duration {
        *self.now.lock().unwrap()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.advance(duration);
        Box::pin(future::ready(()))
    }
}

/// How a fake node answers.
#[derive(Clone, Debug)]
enum Answer {
    Ack(BlockAck),
    Unreachable,
}

/// Peer links whose nodes answer as configured, each send taking `cost` of manual time.
#[derive(Debug)]
struct FakeLink {
    time: Arc<ManualTime>,
    cost: Duration,
    leader: Mutex<Option<NodeId>>,
    answers: Mutex<BTreeMap<NodeId, Answer>>,
    /// (node, timeout, remaining before the deadline when sent)
    sent: Mutex<Vec<(NodeId, Duration, Duration)>>,
    deadline: Mutex<Duration>,
}

impl FakeLink {
    fn new(time: &Arc<ManualTime>, answers: &[(u64, Answer)]) -> Arc<Self> {
        Arc::new(Self {
            time: Arc::clone(time),
            cost: ms(10),
            leader: Mutex::new(None),
            answers: Mutex::new(answers.iter().map(|(n, a)| (NodeId(*n), a.clone())).collect()),
            sent: Mutex::default(),
            deadline: Mutex::new(Duration::MAX),
        })
    }

    fn sent_to(&self) -> Vec<u64> {
        self.sent.lock().unwrap().iter().map(|(n, _, _)| n.0).collect()
    }
}

impl BlockLink for FakeLink {
    fn leader_of(&self, _validator: ValidatorId) -> Option<NodeId> {
        *self.leader.lock().unwrap()
    }

    fn send(
        &self,
        node: NodeId,
        _notice: BlockNotice,
        timeout: Duration,
    ) -> BoxFuture<'static, anyhow::Result<BlockAck>> {
        let remaining = self.deadline.lock().unwrap().saturating_sub(self.time.now());
        self.sent.lock().unwrap().push((node, timeout, remaining));
        self.time.advance(self.cost.min(timeout));
        let answer = self.answers.lock().unwrap().get(&node).cloned();
        Box::pin(future::ready(match answer {
            Some(Answer::Ack(ack)) => Ok(ack),
            Some(Answer::Unreachable) | None => Err(anyhow::anyhow!("connection refused")),
        }))
    }
}

fn offer(members: &[u64], deadline: Duration) -> Offer {
    let slot = Slot { height: Height(3), round: Round(0), proposer: ValidatorId(1), deadline };
    Offer {
        notice: Arc::new(notice(&slot, &BuiltBlock::default())),
        members: members.iter().map(|n| NodeId(*n)).collect(),
        deadline,
    }
}

fn deliver_now(link: &FakeLink, time: &ManualTime, offer: &Offer, cursor: &mut usize) -> Delivery {
    *link.deadline.lock().unwrap() = offer.deadline;
    futures_util::FutureExt::now_or_never(deliver(
        link,
        time,
        ValidatorId(2),
        offer,
        cursor,
        ms(100),
    ))
    .expect("fakes never wait")
}

#[test]
fn a_block_goes_to_the_leader_and_past_a_dead_one_to_the_next_member() {
    let time = Arc::new(ManualTime::default());
    let committed = Answer::Ack(BlockAck::Committed);
    let link =
        FakeLink::new(&time, &[(4, Answer::Unreachable), (5, committed.clone()), (6, committed)]);
    let mut cursor = 0;
    *link.leader.lock().unwrap() = Some(NodeId(6));
    let first = deliver_now(&link, &time, &offer(&[4, 5, 6], ms(500)), &mut cursor);
    assert_eq!(
        (first.outcome, first.node, first.attempts),
        (BroadcastOutcome::Committed, Some(NodeId(6)), 1)
    );
    assert_eq!(cursor, 2, "the member that answered comes first next time");

    // The leader (node 4) died; the catalog still names it.
    *link.leader.lock().unwrap() = Some(NodeId(4));
    cursor = 0;
    let second = deliver_now(&link, &time, &offer(&[4, 5, 6], time.now() + ms(500)), &mut cursor);
    assert_eq!((second.outcome, second.node), (BroadcastOutcome::Committed, Some(NodeId(5))));
    assert_eq!(link.sent_to(), [6, 4, 5]);
    assert_eq!(cursor, 1);
    // No leader known: the member that answered last.
    *link.leader.lock().unwrap() = None;
    let third = deliver_now(&link, &time, &offer(&[4, 5, 6], time.now() + ms(500)), &mut cursor);
    assert_eq!((third.node, third.attempts), (Some(NodeId(5)), 1));
}

#[test]
fn a_stale_answer_settles_the_offer() {
    let time = Arc::new(ManualTime::default());
    let stale = Answer::Ack(BlockAck::Stale { height: Height(9) });
    let link = FakeLink::new(&time, &[(7, stale)]);
    let delivery = deliver_now(&link, &time, &offer(&[7], ms(500)), &mut 0);
    assert_eq!((delivery.outcome, delivery.attempts), (BroadcastOutcome::Stale, 1));
}

#[test]
fn retries_are_bounded_by_the_deadline_and_by_the_attempts() {
    let time = Arc::new(ManualTime::default());
    let refused = Answer::Ack(BlockAck::refused("no leader"));
    let link = FakeLink::new(&time, &[(4, Answer::Unreachable), (5, refused)]);
    let within = offer(&[4, 5], ms(300));
    let delivery = deliver_now(&link, &time, &within, &mut 0);
    assert_eq!(delivery.outcome, BroadcastOutcome::Failed);
    assert!(delivery.attempts > 1 && delivery.attempts < ATTEMPTS_MAX, "{delivery:?}");
    assert!(time.now() <= within.deadline, "gave up at {:?}", time.now());
    for (node, timeout, remaining) in link.sent.lock().unwrap().iter() {
        assert!(!remaining.is_zero(), "an attempt to {node} after the deadline");
        assert!(*timeout <= *remaining && *timeout <= ms(100), "{timeout:?} of {remaining:?}");
    }
    let sent = link.sent_to();
    assert!(sent.windows(2).all(|w| w[0] != w[1]), "alternates members: {sent:?}");

    // A long window: the attempts run out first.
    let long = offer(&[4, 5], time.now() + Duration::from_secs(60));
    let delivery = deliver_now(&link, &time, &long, &mut 0);
    assert_eq!((delivery.outcome, delivery.attempts), (BroadcastOutcome::Failed, ATTEMPTS_MAX));

    // A dead leader the catalog still names is tried once per round over the members.
    let link = FakeLink::new(&time, &[]);
    *link.leader.lock().unwrap() = Some(NodeId(4));
    let dead = offer(&[4, 5, 6], time.now() + Duration::from_secs(60));
    let delivery = deliver_now(&link, &time, &dead, &mut 1);
    assert_eq!(delivery.attempts, ATTEMPTS_MAX);
    assert_eq!(link.sent_to(), [4, 5, 6, 4, 5, 6, 4, 5]);

    // Nobody to ask, or no time left: no attempt at all.
    *link.leader.lock().unwrap() = None;
    let nobody = deliver_now(&link, &time, &offer(&[], time.now() + ms(500)), &mut 0);
    assert_eq!((nobody.outcome, nobody.attempts), (BroadcastOutcome::Failed, 0));
    let late = deliver_now(&link, &time, &offer(&[5], time.now()), &mut 0);
    assert_eq!(late.attempts, 0);
}

/// Block commands over a real pool, failing on demand.
#[derive(Debug)]
struct FakeBlocks {
    pool: Mutex<Mempool>,
    unavailable: Mutex<bool>,
    commits: Mutex<Vec<CommitBlock>>,
}

impl FakeBlocks {
    fn with(txs: Vec<mempulse_primitives::Tx>) -> Arc<Self> {
        let mut pool = Mempool::new(MempoolConfig::default()).unwrap();
        pool.apply(Command::AddTxs(txs)).unwrap();
        Arc::new(Self {
            pool: Mutex::new(pool),
            unavailable: Mutex::new(false),
            commits: Mutex::default(),
        })
    }

    fn apply(&self, command: Command) -> ServiceResult<BlockOutcome> {
        if *self.unavailable.lock().unwrap() {
            return Err(ServiceError::Unavailable(Unavailable::NoLeader));
        }
        let outcome = self.pool.lock().unwrap().apply(command).map_err(ServiceError::Conflict)?;
        Ok(BlockOutcome { raft_index: None, facts: outcome.facts, block: outcome.block })
    }

    fn height(&self) -> Height {
        self.pool.lock().unwrap().height()
    }

    fn contains(&self, hash: &TxHash) -> bool {
        self.pool.lock().unwrap().get(hash).is_some()
    }
}

impl BlockOps for FakeBlocks {
    fn build(&self, request: BuildRequest) -> BoxFuture<'_, ServiceResult<BlockOutcome>> {
        let command = Command::BuildBlock { limits: request.limits, proposer: request.proposer };
        Box::pin(future::ready(self.apply(command)))
    }

    fn commit(&self, request: CommitBlock) -> BoxFuture<'_, ServiceResult<BlockOutcome>> {
        self.commits.lock().unwrap().push(request.clone());
        Box::pin(future::ready(self.apply(Command::CommitBlock(request))))
    }

    fn reorg(&self, _request: ReorgRequest) -> BoxFuture<'_, ServiceResult<BlockOutcome>> {
        Box::pin(future::ready(Err(ServiceError::Unavailable(Unavailable::Overloaded))))
    }
}

impl Chain for FakeBlocks {
    fn height(&self) -> Option<Height> {
        Some(Self::height(self))
    }

    fn is_ready_leader(&self) -> bool {
        true
    }
}

fn now_or_never<T>(f: impl std::future::Future<Output = T>) -> T {
    futures_util::FutureExt::now_or_never(f).expect("fakes never wait")
}

#[test]
fn a_produced_block_respects_the_limits_and_leaves_the_pool() {
    let txs = vec![tx(2, 0, 10), tx(1, 0, 10), tx(2, 1, 10)];
    let blocks = FakeBlocks::with(txs);
    let slot =
        Slot { height: Height(1), round: Round(0), proposer: ValidatorId(1), deadline: ms(0) };
    let limits = BlockLimits { max_bytes: None, max_gas: Some(42_000) };
    let Produced::Committed(notice) = now_or_never(produce(&*blocks, slot, limits)) else {
        unreachable!("not committed")
    };
    assert_eq!(notice.txs.len(), 2, "two transfers fit in 42 000 gas");
    assert_eq!(blocks.height(), Height(1));
    for hash in &notice.txs {
        assert!(!blocks.contains(hash), "an included transaction stayed in the pool");
    }
    let commit = blocks.commits.lock().unwrap().pop().unwrap();
    assert_eq!(commit, commit_of(&notice));
    assert!(notice.nonces.windows(2).all(|w| w[0].0 < w[1].0));

    // The pool moved past the slot's height first: no second block for it.
    assert!(matches!(
        now_or_never(produce(&*blocks, slot, limits)),
        Produced::Overtaken { height: Height(1) }
    ));
    *blocks.unavailable.lock().unwrap() = true;
    let next = Slot { height: Height(2), ..slot };
    assert!(matches!(
        now_or_never(produce(&*blocks, next, limits)),
        Produced::Failed { stage: Stage::Build, .. }
    ));
}

#[test]
fn a_received_block_is_committed_once_and_bad_or_stale_ones_are_answered() {
    let txs = vec![tx(1, 0, 10), tx(1, 1, 10), tx(3, 0, 10)];
    let blocks = FakeBlocks::with(txs.clone());
    let handler = NodeBlockHandler {
        chain: Arc::clone(&blocks) as Arc<dyn Chain>,
        blocks: Arc::clone(&blocks) as Arc<dyn BlockOps>,
    };
    let slot =
        Slot { height: Height(4), round: Round(1), proposer: ValidatorId(2), deadline: ms(0) };
    let built = BuiltBlock { txs: txs[..2].to_vec(), ..BuiltBlock::default() };
    let block = notice(&slot, &built);
    assert_eq!(now_or_never(handler.on_block(NodeId(4), block.clone())), BlockAck::Committed);
    assert_eq!(blocks.height(), Height(4));
    assert!(!blocks.contains(&txs[0].hash) && !blocks.contains(&txs[1].hash));
    assert!(blocks.contains(&txs[2].hash), "not in the block");
    let stale = BlockAck::Stale { height: Height(4) };
    assert_eq!(now_or_never(handler.on_block(NodeId(5), block.clone())), stale);
    let older = BlockNotice { height: Height(2), ..block.clone() };
    assert_eq!(now_or_never(handler.on_block(NodeId(5), older)), stale);
    assert_eq!(blocks.commits.lock().unwrap().len(), 1, "stale blocks never reach the log");

    let mut unsorted = BlockNotice { height: Height(5), ..block.clone() };
    unsorted.nonces = vec![(txs[2].sender, Nonce(1)), (txs[0].sender, Nonce(2))];
    if unsorted.nonces[0].0 < unsorted.nonces[1].0 {
        unsorted.nonces.reverse();
    }
    assert!(matches!(
        now_or_never(handler.on_block(NodeId(4), unsorted)),
        BlockAck::Refused { .. }
    ));
    *blocks.unavailable.lock().unwrap() = true;
    let next = BlockNotice { height: Height(5), ..block };
    let BlockAck::Refused { reason } = now_or_never(handler.on_block(NodeId(4), next)) else {
        unreachable!("not refused")
    };
    assert!(reason.contains("no leader"), "{reason}");
}
