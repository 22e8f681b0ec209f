//! The ingest pipeline against a real event log: order into the admission, every drop reason
//! with its fact, dedup and resubmission, rate limits, admission failures and shutdown.

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join_all;
use mempulse_net::{
    AdmissionError, CheckConfig, Error, IngestConfig, PoolVerdict, SourceId, ThrottleConfig,
    TxOutcome,
    test_utils::{TxSpec, sample_txs, signed_tx},
};
use mempulse_primitives::{
    DropReason, EventKind, Lane, NodeId, Origin, RejectReason, Source, Subpool, TxHash, TxType,
    UnixMillis,
};

use super::support::{Recording, T0, config, eventually, kinds, start};

fn hash_of(raw: &Bytes) -> TxHash {
    TxHash(alloy_primitives::keccak256(raw).0)
}

const ADMITTED: PoolVerdict = PoolVerdict::Admitted { subpool: Subpool::Pending };

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_txs_reach_the_admission_in_submission_order_with_received_facts() {
    let (admission, _gate) = Recording::admitting();
    let rig = start(config(), CheckConfig::default(), admission.clone());
    let raws = sample_txs(60, 9);
    let submitted: Vec<_> =
        raws.iter().map(|raw| rig.ingest.submit(Lane::Rpc, SourceId::Local, raw.clone())).collect();
    let outcomes = join_all(submitted).await;
    let hashes: Vec<TxHash> = raws.iter().map(hash_of).collect();
    for (outcome, hash) in outcomes.iter().zip(&hashes) {
        assert_eq!(*outcome, TxOutcome::Accepted { hash: *hash, verdict: ADMITTED });
    }
    assert_eq!(admission.hashes(), hashes, "arrival order preserved into the admission");
    assert!(admission.batch_sizes().iter().all(|&n| (1..=8).contains(&n)));
    rig.ingest.shutdown(Duration::from_secs(10)).await.unwrap();

    let events = rig.log.events().await;
    assert_eq!(events.len(), 60);
    for (event, hash) in events.iter().zip(&hashes) {
        assert_eq!(event.origin, Origin::Local);
        assert_eq!(event.source, Source::Lane(Lane::Rpc));
        assert_eq!(event.observed_at, T0, "arrival time from the clock");
        let EventKind::TxReceived { tx, lane } = &event.kind else { panic!("{event:?}") };
        assert_eq!((tx.hash, *lane), (*hash, Lane::Rpc));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_in_flight_are_called_and_first_polled_in_order() {
    let (admission, gate) = Recording::admitting();
    gate.send_replace(false);
    let config = IngestConfig { batch_txs_max: 1, batches_in_flight_max: 4, ..config() };
    let rig = start(config, CheckConfig::default(), admission.clone());
    let raws = sample_txs(12, 12);
    let submitted: Vec<_> =
        raws.iter().map(|raw| rig.ingest.submit(Lane::Rpc, SourceId::Local, raw.clone())).collect();
    eventually("four batches in flight", || admission.first_polls.lock().unwrap().len() == 4).await;
    assert_eq!(admission.hashes().len(), 4, "no more than four in flight");
    gate.send_replace(true);
    for outcome in join_all(submitted).await {
        assert!(matches!(outcome, TxOutcome::Accepted { verdict: ADMITTED, .. }), "{outcome:?}");
    }
    let hashes: Vec<TxHash> = raws.iter().map(hash_of).collect();
    assert_eq!(admission.hashes(), hashes);
    assert_eq!(*admission.first_polls.lock().unwrap(), hashes);
    rig.ingest.shutdown(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_lane_drops_with_its_depth_recorded_in_the_log() {
    let (admission, gate) = Recording::admitting();
    gate.send_replace(false);
    let config = IngestConfig {
        rpc_queue_capacity: 2,
        batch_txs_max: 1,
        batches_in_flight_max: 1,
        ..config()
    };
    let rig = start(config, CheckConfig::default(), admission.clone());
    let raws = sample_txs(40, 40);
    let mut submitted: Vec<_> =
        raws.iter().map(|raw| rig.ingest.submit(Lane::Rpc, SourceId::Local, raw.clone())).collect();
    // With the admission stuck, at most lane + channel + order thread + flight can be held:
    // 2 + 2 + 1 + 1.
    let dropped: Vec<usize> = submitted
        .iter_mut()
        .enumerate()
        .filter_map(|(i, s)| match s.try_outcome() {
            Some(TxOutcome::Dropped { reason: DropReason::QueueFull, hash: None }) => Some(i),
            Some(other) => panic!("unexpected {other:?}"),
            None => None,
        })
        .collect();
    assert!(dropped.len() >= 40 - 6, "{} dropped", dropped.len());
    assert_eq!(rig.ingest.depth(Lane::Rpc).peak, 2);
    gate.send_replace(true);
    let held: Vec<_> = submitted
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !dropped.contains(i))
        .map(|(_, s)| s)
        .collect();
    let held_count = held.len();
    for outcome in join_all(held).await {
        assert!(matches!(outcome, TxOutcome::Accepted { verdict: ADMITTED, .. }), "{outcome:?}");
    }
    rig.ingest.shutdown(Duration::from_secs(10)).await.unwrap();

    let kinds = kinds(&rig.log.events().await);
    let full = EventKind::TxDropped {
        hash: None,
        reason: DropReason::QueueFull,
        lane: Lane::Rpc,
        depth_current: 2,
        depth_peak: 2,
    };
    assert_eq!(kinds.iter().filter(|k| **k == full).count(), dropped.len());
    let received = kinds.iter().filter(|k| matches!(k, EventKind::TxReceived { .. })).count();
    assert_eq!(received, held_count);
    assert_eq!(kinds.len(), dropped.len() + held_count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_input_is_dropped_before_decoding() {
    let (admission, _gate) = Recording::admitting();
    let check = CheckConfig { tx_bytes_max: 64, ..CheckConfig::default() };
    let rig = start(config(), check, admission.clone());
    let raw = sample_txs(1, 1).remove(0);
    assert!(raw.len() > 64);
    let outcome = rig.ingest.submit(Lane::Rest, SourceId::Local, raw).await;
    assert_eq!(outcome, TxOutcome::Dropped { reason: DropReason::Oversize, hash: None });
    rig.ingest.shutdown(Duration::from_secs(10)).await.unwrap();
    assert!(admission.hashes().is_empty());
    let events = rig.log.events().await;
    assert_eq!(
        kinds(&events),
        vec![EventKind::TxDropped {
            hash: None,
            reason: DropReason::Oversize,
            lane: Lane::Rest,
            depth_current: 0,
            depth_peak: 0,
        }]
    );
    assert_eq!(events[0].source, Source::Lane(Lane::Rest));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sighting_is_a_duplicate_and_first_seen_is_remembered() {
    let (admission, _gate) = Recording::admitting();
    let rig = start(config(), CheckConfig::default(), admission.clone());
    let raw = sample_txs(1, 1).remove(0);
    let hash = hash_of(&raw);
    let first = rig.ingest.submit(Lane::Rpc, SourceId::Local, raw.clone()).await;
    assert_eq!(first, TxOutcome::Accepted { hash, verdict: ADMITTED });
    rig.clock.advance_ms(250);
    let peer = SourceId::Peer(NodeId(7));
    let again = rig.ingest.submit(Lane::Stream, peer, raw).await;
    assert_eq!(again, TxOutcome::Dropped { reason: DropReason::Duplicate, hash: Some(hash) });
    let seen = rig.ingest.first_seen(&hash).unwrap();
    assert_eq!((seen.at, seen.source, seen.lane), (T0, SourceId::Local, Lane::Rpc));
    assert_eq!(admission.hashes(), vec![hash], "the duplicate never reached the pool");
    rig.ingest.shutdown(Duration::from_secs(10)).await.unwrap();

    let events = rig.log.events().await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].source, Source::Peer(NodeId(7)));
    assert_eq!(events[1].observed_at, UnixMillis(T0.0 + 250));
    assert_eq!(
        events[1].kind,
        EventKind::TxDropped {
            hash: Some(hash),
            reason: DropReason::Duplicate,
            lane: Lane::Stream,
            depth_current: 0,
            depth_peak: 0,
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tx_the_pool_rejected_may_be_resubmitted_but_not_one_it_holds() {
    let fee_too_low = signed_tx(&TxSpec::transfer(TxType::DynamicFee, 1, 0)).unwrap();
    let low = hash_of(&fee_too_low);
    let (admission, _gate) = Recording::with(move |tx| {
        Ok(if tx.hash == low {
            PoolVerdict::Rejected { reason: RejectReason::FeeTooLow }
        } else {
            PoolVerdict::Rejected { reason: RejectReason::Duplicate }
        })
    });
    let rig = start(config(), CheckConfig::default(), admission.clone());
    let rejected = PoolVerdict::Rejected { reason: RejectReason::FeeTooLow };
    for _ in 0..2 {
        let outcome = rig.ingest.submit(Lane::Rpc, SourceId::Local, fee_too_low.clone()).await;
        assert_eq!(outcome, TxOutcome::Accepted { hash: low, verdict: rejected });
    }
    assert_eq!(admission.hashes(), vec![low, low], "offered to the pool again");
    assert_eq!(rig.ingest.first_seen(&low), None, "forgotten after the rejection");

    // `duplicate` means the pool holds it: the cache keeps it.
    let held = signed_tx(&TxSpec::transfer(TxType::Legacy, 2, 0)).unwrap();
    let outcome = rig.ingest.submit(Lane::Rpc, SourceId::Local, held.clone()).await;
    assert!(matches!(outcome, TxOutcome::Accepted { .. }));
    let again = rig.ingest.submit(Lane::Rpc, SourceId::Local, held.clone()).await;
    assert_eq!(
        again,
        TxOutcome::Dropped { reason: DropReason::Duplicate, hash: Some(hash_of(&held)) }
    );
    rig.ingest.shutdown(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_over_its_rate_is_throttled_until_its_bucket_refills() {
    let (admission, _gate) = Recording::admitting();
    let throttle = ThrottleConfig { rate_per_s: 1, burst: 2, sources_max: 4 };
    let rig = start(IngestConfig { throttle, ..config() }, CheckConfig::default(), admission);
    let raws = sample_txs(5, 5);
    let client = SourceId::Client("192.0.2.1".parse().unwrap());
    for raw in &raws[..2] {
        let outcome = rig.ingest.submit(Lane::Rpc, client, raw.clone()).await;
        assert!(matches!(outcome, TxOutcome::Accepted { .. }), "{outcome:?}");
    }
    let throttled = rig.ingest.submit(Lane::Rpc, client, raws[2].clone()).await;
    assert_eq!(throttled, TxOutcome::Dropped { reason: DropReason::Throttled, hash: None });
    let other = SourceId::Client("192.0.2.2".parse().unwrap());
    let outcome = rig.ingest.submit(Lane::Rpc, other, raws[3].clone()).await;
    assert!(matches!(outcome, TxOutcome::Accepted { .. }), "another source has its own bucket");
    rig.clock.advance_ms(1_000);
    let outcome = rig.ingest.submit(Lane::Rpc, client, raws[2].clone()).await;
    assert!(matches!(outcome, TxOutcome::Accepted { .. }), "refilled: {outcome:?}");
    rig.ingest.shutdown(Duration::from_secs(10)).await.unwrap();

    let throttled_facts = kinds(&rig.log.events().await)
        .into_iter()
        .filter(|k| matches!(k, EventKind::TxDropped { reason: DropReason::Throttled, .. }))
        .count();
    assert_eq!(throttled_facts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_failures_answer_invalid_and_write_their_verdicts_facts() {
    let (admission, _gate) = Recording::admitting();
    let rig = start(config(), CheckConfig::default(), admission.clone());
    let junk = rig.ingest.submit(Lane::Rpc, SourceId::Local, Bytes::from_static(b"\x02\xc0")).await;
    let TxOutcome::Invalid(junk_error) = junk else { panic!("{junk:?}") };
    assert_eq!(junk_error.hash(), None);
    let spec = TxSpec { chain_id: Some(5), ..TxSpec::transfer(TxType::DynamicFee, 3, 0) };
    let other_chain = signed_tx(&spec).unwrap();
    let hash = hash_of(&other_chain);
    let outcome = rig.ingest.submit(Lane::Rest, SourceId::Local, other_chain.clone()).await;
    let TxOutcome::Invalid(error) = outcome else { panic!("{outcome:?}") };
    assert_eq!(error.hash(), Some(hash));
    assert_eq!(rig.ingest.first_seen(&hash), None, "invalid transactions are not remembered");
    // The same bytes are checked again (and fail again), not dropped as duplicates.
    let again = rig.ingest.submit(Lane::Rest, SourceId::Local, other_chain).await;
    assert!(matches!(again, TxOutcome::Invalid(_)), "{again:?}");
    rig.ingest.shutdown(Duration::from_secs(10)).await.unwrap();
    assert!(admission.hashes().is_empty());

    let kinds = kinds(&rig.log.events().await);
    assert_eq!(
        kinds[0],
        EventKind::TxDropped {
            hash: None,
            reason: DropReason::DecodeFailed,
            lane: Lane::Rpc,
            depth_current: 0,
            depth_peak: 1,
        }
    );
    let wrong_chain = EventKind::TxRejected { hash, reason: RejectReason::WrongChainId };
    assert_eq!(kinds[1..], [wrong_chain.clone(), wrong_chain]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_refuses_new_work_and_drains_what_was_queued() {
    let (admission, gate) = Recording::admitting();
    gate.send_replace(false);
    let rig = start(config(), CheckConfig::default(), admission.clone());
    let raws = sample_txs(12, 4);
    let submitted: Vec<_> = raws[..10]
        .iter()
        .map(|raw| rig.ingest.submit(Lane::Rpc, SourceId::Local, raw.clone()))
        .collect();
    let ingest = rig.ingest.clone();
    let shutdown = tokio::spawn(async move { ingest.shutdown(Duration::from_secs(20)).await });
    eventually("shutdown to begin", || rig.ingest.is_closing()).await;
    let late = rig.ingest.submit(Lane::Rpc, SourceId::Local, raws[10].clone()).await;
    assert_eq!(late, TxOutcome::Dropped { reason: DropReason::ShuttingDown, hash: None });
    assert!(!shutdown.is_finished());
    gate.send_replace(true);
    shutdown.await.unwrap().unwrap();
    for outcome in join_all(submitted).await {
        assert!(matches!(outcome, TxOutcome::Accepted { verdict: ADMITTED, .. }), "{outcome:?}");
    }
    assert_eq!(admission.hashes().len(), 10);
    // A second shutdown returns at once.
    rig.ingest.shutdown(Duration::from_secs(1)).await.unwrap();
    let kinds = kinds(&rig.log.events().await);
    assert_eq!(kinds.len(), 11);
    let late_drops = kinds.iter().filter(|k| {
        matches!(
            k,
            EventKind::TxDropped {
                hash: None,
                reason: DropReason::ShuttingDown,
                lane: Lane::Rpc,
                ..
            }
        )
    });
    assert_eq!(late_drops.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_admission_bounds_shutdown_and_answers_shutting_down() {
    let (admission, gate) = Recording::admitting();
    gate.send_replace(false);
    let rig = start(config(), CheckConfig::default(), admission.clone());
    let raw = sample_txs(1, 1).remove(0);
    let submitted = rig.ingest.submit(Lane::Rpc, SourceId::Local, raw);
    eventually("the admission call", || !admission.hashes().is_empty()).await;
    let result = rig.ingest.shutdown(Duration::from_millis(50)).await;
    assert_eq!(result, Err(Error::ShutdownTimedOut));
    assert_eq!(submitted.await, TxOutcome::Unavailable(AdmissionError::ShuttingDown));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_failures_answer_unavailable_and_allow_a_retry() {
    let (admission, _gate) = Recording::with(|_| Err(AdmissionError::NoLeader));
    let rig = start(config(), CheckConfig::default(), admission.clone());
    let raw = sample_txs(1, 1).remove(0);
    for _ in 0..2 {
        let outcome = rig.ingest.submit(Lane::Rpc, SourceId::Local, raw.clone()).await;
        assert_eq!(outcome, TxOutcome::Unavailable(AdmissionError::NoLeader));
    }
    assert_eq!(admission.hashes().len(), 2, "retried, not dropped as a duplicate");
    rig.ingest.shutdown(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_verdict_count_fails_the_batch() {
    let (admission, _gate) = Recording::admitting();
    *admission.verdict_count.lock().unwrap() = Some(0);
    let rig = start(config(), CheckConfig::default(), admission.clone());
    let raw = sample_txs(1, 1).remove(0);
    let outcome = rig.ingest.submit(Lane::Rpc, SourceId::Local, raw).await;
    assert_eq!(outcome, TxOutcome::Unavailable(AdmissionError::VerdictCountMismatch));
    rig.ingest.shutdown(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admission_past_its_deadline_times_out() {
    let (admission, gate) = Recording::admitting();
    gate.send_replace(false);
    let config = IngestConfig { admission_timeout: Duration::from_millis(20), ..config() };
    let rig = start(config, CheckConfig::default(), admission.clone());
    let raw = sample_txs(1, 1).remove(0);
    let outcome = rig.ingest.submit(Lane::Rpc, SourceId::Local, raw).await;
    assert_eq!(outcome, TxOutcome::Unavailable(AdmissionError::Timeout));
    rig.ingest.shutdown(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_event_log_never_blocks_ingest() {
    let (admission, _gate) = Recording::admitting();
    let rig = start(config(), CheckConfig::default(), admission);
    rig.log.sequencer.shutdown().await.unwrap();
    let raws = sample_txs(3, 3);
    for raw in &raws {
        let outcome = rig.ingest.submit(Lane::Rpc, SourceId::Local, raw.clone()).await;
        assert!(matches!(outcome, TxOutcome::Accepted { .. }), "{outcome:?}");
    }
    let dup = rig.ingest.submit(Lane::Rpc, SourceId::Local, raws[0].clone()).await;
    assert!(matches!(dup, TxOutcome::Dropped { reason: DropReason::Duplicate, .. }));
    rig.ingest.shutdown(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn bad_configs_are_refused() {
    let (admission, _gate) = Recording::admitting();
    let log = super::support::EventLog::open();
    let zero = IngestConfig { batch_txs_max: 0, ..config() };
    let err = mempulse_net::Ingest::start(zero, CheckConfig::default(), admission, log.writer());
    assert_eq!(err.err(), Some(Error::Config { field: "batch_txs_max" }));
    let zero = IngestConfig { admission_timeout: Duration::ZERO, ..config() };
    assert_eq!(zero.validate(), Err(Error::Config { field: "admission_timeout" }));
    assert_eq!(config().validate(), Ok(()));
    assert_eq!(IngestConfig::default().validate(), Ok(()));
}

#[test]
fn ingest_needs_a_runtime() {
    let (admission, _gate) = Recording::admitting();
    let log = super::support::EventLog::open();
    let err =
        mempulse_net::Ingest::start(config(), CheckConfig::default(), admission, log.writer());
    assert_eq!(err.err(), Some(Error::NoRuntime));
    log.sequencer.shutdown_blocking().unwrap();
}
