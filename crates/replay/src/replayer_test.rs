#![allow(
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "test code: fixed small values, and a failed assumption is a failed test"
)]

use mempulse_primitives::{
    Address, DropReason, Event, EventKind, Fees, KindCode, Lane, Origin, RaftIndex, Seq,
    SequencedEvent, Source, Subpool, Tx, TxHash, TxType, UnixMillis,
};

use super::*;

fn tx(sender: u8, nonce: u64) -> Tx {
    Tx {
        hash: TxHash([sender.wrapping_add((nonce as u8).wrapping_mul(16)); 32]),
        sender: Address([sender; 20]),
        nonce: Nonce(nonce),
        gas_limit: 21_000,
        fees: Fees::legacy(10),
        tx_type: TxType::Legacy,
        chain_id: None,
        encoded_size: 0,
        raw: Default::default(),
    }
}

fn replicated(index: u64, kind: EventKind) -> Event {
    Event {
        observed_at: UnixMillis(index),
        source: Source::Mempool,
        origin: Origin::Replicated { raft_index: RaftIndex(index) },
        kind,
    }
}

fn local(kind: EventKind) -> Event {
    Event {
        observed_at: UnixMillis(0),
        source: Source::Lane(Lane::Rpc),
        origin: Origin::Local,
        kind,
    }
}

fn dropped(hash: TxHash) -> EventKind {
    EventKind::TxDropped {
        hash: Some(hash),
        reason: DropReason::QueueFull,
        lane: Lane::Rpc,
        depth_current: 1,
        depth_peak: 1,
    }
}

fn run(replayer: &mut Replayer, events: Vec<Event>) -> Vec<DigestPoint> {
    let first = replayer.next_seq().unwrap_or(Seq(1)).0;
    let mut points = Vec::new();
    for (i, event) in events.into_iter().enumerate() {
        let seq = Seq(first + i as u64);
        if let Some(p) = replayer.apply(&SequencedEvent { seq, event }).unwrap() {
            points.push(p);
        }
    }
    points
}

fn config(every: u64) -> ReplayConfig {
    ReplayConfig { digest_every_events: every, ..ReplayConfig::default() }
}

#[test]
fn local_events_never_change_the_replicated_digest() {
    let (a, b) = (tx(1, 0), tx(2, 0));
    let replicated_only = vec![
        replicated(1, EventKind::TxAdmitted { tx: a.clone(), subpool: Subpool::Pending }),
        replicated(2, EventKind::TxAdmitted { tx: b.clone(), subpool: Subpool::Pending }),
        replicated(3, EventKind::TxPromoted { hash: b.hash }),
    ];
    let mut with_local = replicated_only.clone();
    with_local.insert(1, local(dropped(TxHash([9; 32]))));
    with_local.insert(0, local(EventKind::TxReceived { tx: a, lane: Lane::Rpc }));
    let mut x = Replayer::new(config(0));
    let mut y = Replayer::new(config(0));
    run(&mut x, replicated_only);
    run(&mut y, with_local);
    assert_eq!(x.digest().raft_index, RaftIndex(2));
    assert_eq!(x.digest().digest, y.digest().digest);
    assert_eq!(x.open_digest().digest, y.open_digest().digest);
    assert_eq!(
        x.index_digests().map(|d| (d.raft_index, d.digest)).collect::<Vec<_>>(),
        y.index_digests().map(|d| (d.raft_index, d.digest)).collect::<Vec<_>>()
    );
    // Their seqs differ: the local events shifted them.
    assert_ne!(x.digest().seq, y.digest().seq);
    assert_ne!(x.local_digest(), y.local_digest());
}

#[test]
fn digest_points_are_seq_aligned_and_report_the_last_complete_index() {
    let a = tx(1, 0);
    let mut r = Replayer::new(config(2));
    let points = run(
        &mut r,
        vec![
            replicated(5, EventKind::TxAdmitted { tx: a.clone(), subpool: Subpool::Queued }),
            replicated(5, EventKind::TxPromoted { hash: a.hash }),
            replicated(
                6,
                EventKind::TxEvicted {
                    hash: a.hash,
                    reason: mempulse_primitives::EvictReason::Stale,
                },
            ),
            local(dropped(a.hash)),
        ],
    );
    assert_eq!(points.iter().map(|p| p.seq).collect::<Vec<_>>(), [Seq(2), Seq(4)]);
    // At seq 2 index 5 may still get facts: the point reports the empty state (index 0).
    assert_eq!(points[0].raft_index, RaftIndex(0));
    assert_eq!(points[1].raft_index, RaftIndex(5));
    assert_eq!(points[1].events, 4);
    assert_eq!(r.digest_at(RaftIndex(5)).map(|d| d.seq), Some(Seq(2)));
    assert_eq!(r.digest_at(RaftIndex(6)), None, "index 6 is still open");
    let sealed = r.seal_through(RaftIndex(6));
    assert_eq!((sealed.raft_index, sealed.seq), (RaftIndex(6), Seq(3)));
    assert_eq!(r.digest_at(RaftIndex(100)), Some(sealed));
    assert_eq!(r.digest_at(RaftIndex(4)), None, "before the first kept index");
}

#[test]
fn out_of_order_and_undecodable_input_are_errors_that_change_nothing() {
    let mut r = Replayer::new(config(1));
    run(&mut r, vec![local(dropped(TxHash([1; 32])))]);
    let before = (r.open_digest(), r.local_digest(), r.events());
    let err = r.apply(&SequencedEvent { seq: Seq(3), event: local(dropped(TxHash([2; 32]))) });
    assert!(matches!(err, Err(Error::OutOfOrder { expected: Seq(2), found: Seq(3) })));
    let err = r.apply_payload(Seq(2), &[1, 0xff]);
    assert!(matches!(err, Err(Error::Decode { seq: Seq(2), .. })));
    assert_eq!(before, (r.open_digest(), r.local_digest(), r.events()));
}

#[test]
fn lifecycle_follows_a_transaction_through_replacement() {
    let old = tx(1, 0);
    let new = Tx { hash: TxHash([0xab; 32]), ..old.clone() };
    let mut r = Replayer::new(config(0));
    run(
        &mut r,
        vec![
            local(EventKind::TxReceived { tx: old.clone(), lane: Lane::Rpc }),
            replicated(1, EventKind::TxAdmitted { tx: old.clone(), subpool: Subpool::Pending }),
            replicated(
                2,
                EventKind::TxReplaced {
                    old: old.hash,
                    new: new.hash,
                    sender: old.sender,
                    nonce: old.nonce,
                },
            ),
            replicated(2, EventKind::TxAdmitted { tx: new.clone(), subpool: Subpool::Pending }),
        ],
    );
    let LifecycleLookup::Found(life) = r.lifecycle(&old.hash) else { panic!("old is kept") };
    assert!(!life.in_pool);
    let kinds: Vec<KindCode> = life.facts.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [KindCode::TxReceived, KindCode::TxAdmitted, KindCode::TxReplaced]);
    let LifecycleLookup::Found(life) = r.lifecycle(&new.hash) else { panic!("new is kept") };
    assert!(life.in_pool);
    assert_eq!(life.facts.iter().map(|f| f.seq.0).collect::<Vec<_>>(), [3, 4]);
    let slot = r.nonce_slot(&old.sender, old.nonce).unwrap();
    assert_eq!(slot.replaced, [old.hash]);
    assert_eq!(slot.current.map(|p| p.tx.hash), Some(new.hash));
    assert_eq!(r.nonce_chain(old.sender).count(), 1);
    assert_eq!(r.pooled(&new.hash).map(|p| p.subpool), Some(Subpool::Pending));
    assert_eq!(r.lifecycle(&TxHash([0xee; 32])), LifecycleLookup::Unknown);
}

#[test]
fn a_log_that_starts_late_reports_the_missing_prefix_as_pruned() {
    let mut r = Replayer::new(config(0));
    r.apply(&SequencedEvent { seq: Seq(10), event: local(dropped(TxHash([1; 32]))) }).unwrap();
    assert_eq!(r.lifecycle(&TxHash([2; 32])), LifecycleLookup::Pruned { pruned_through: Seq(9) });
    assert_eq!(r.last_seq(), Seq(10));
}
