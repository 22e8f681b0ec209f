//! The worker pool: arrival order, all-or-nothing refusal when full, shutdown.

use std::{num::NonZeroUsize, time::Duration};

use bytes::Bytes;
use mempulse_net::{
    BatchDecoder, CheckConfig, Error, PoolConfig, RecvError, Submission, decode_tx, spawn,
    test_utils::sample_txs,
};

fn config(threads: usize, capacity: usize) -> PoolConfig {
    PoolConfig {
        threads: NonZeroUsize::new(threads),
        capacity: NonZeroUsize::new(capacity).unwrap(),
    }
}

/// Valid transactions interleaved with junk of very different decode cost, so workers finish
/// out of order.
fn mixed_batch(n: usize) -> Vec<Bytes> {
    let valid = sample_txs(n, 7);
    valid
        .into_iter()
        .enumerate()
        .map(|(i, raw)| if i % 3 == 1 { raw.slice(..raw.len() / 2) } else { raw })
        .collect()
}

#[test]
fn results_come_back_in_arrival_order_with_their_tags() {
    let raws = mixed_batch(60);
    let (submitter, mut completions) =
        spawn::<usize>(config(4, 64), CheckConfig::default()).unwrap();
    let batch: Vec<_> =
        raws.iter().cloned().enumerate().map(|(tag, raw)| Submission { tag, raw }).collect();
    let first = submitter.submit(batch).map_err(|r| r.error).unwrap();
    assert_eq!(first.0, 0);
    drop(submitter);
    let mut seen = 0;
    while let Some(done) = completions.recv() {
        assert_eq!(done.arrival.0, seen as u64);
        assert_eq!(done.tag, seen);
        // Same answer as the single-threaded decoder.
        assert_eq!(done.result, decode_tx(raws[seen].clone(), &CheckConfig::default()));
        seen += 1;
    }
    assert_eq!(seen, raws.len());
}

#[test]
fn a_full_pool_refuses_the_whole_batch_and_hands_it_back() {
    let raws = sample_txs(6, 2);
    let (submitter, mut completions) = spawn::<u8>(config(1, 4), CheckConfig::default()).unwrap();
    let batch = |tags: &[u8]| -> Vec<Submission<u8>> {
        tags.iter().map(|&tag| Submission { tag, raw: raws[usize::from(tag)].clone() }).collect()
    };
    submitter.submit(batch(&[0, 1, 2])).map_err(|r| r.error).unwrap();
    let refused = submitter.submit(batch(&[3, 4])).unwrap_err();
    assert_eq!(refused.error, Error::Full { requested: 2, in_flight: 3, capacity: 4 });
    assert!(refused.error.is_retryable());
    assert_eq!(refused.batch.iter().map(|s| s.tag).collect::<Vec<_>>(), vec![3, 4]);
    assert_eq!(submitter.depth().current, 3);
    // Handing results out frees the room; arrivals stay gapless.
    for want in 0..3 {
        assert_eq!(completions.recv().unwrap().tag, want);
    }
    assert_eq!(submitter.depth().current, 0);
    assert_eq!(submitter.depth().peak, 3);
    let next = submitter.submit(refused.batch).map_err(|r| r.error).unwrap();
    assert_eq!(next.0, 3);
    assert_eq!(completions.recv().unwrap().tag, 3);
    assert_eq!(completions.recv().unwrap().tag, 4);
}

#[test]
fn a_batch_larger_than_the_pool_is_refused_at_once() {
    let (submitter, _completions) = spawn::<()>(config(1, 2), CheckConfig::default()).unwrap();
    let batch = sample_txs(3, 1).into_iter().map(|raw| Submission { tag: (), raw }).collect();
    let refused = submitter.submit(batch).unwrap_err();
    assert!(matches!(refused.error, Error::Full { requested: 3, in_flight: 0, capacity: 2 }));
}

#[test]
fn recv_times_out_when_idle_and_closes_when_drained() {
    let (submitter, mut completions) = spawn::<()>(config(1, 2), CheckConfig::default()).unwrap();
    assert!(completions.try_recv().is_none());
    assert_eq!(completions.recv_timeout(Duration::from_millis(10)), Err(RecvError::Timeout));
    drop(submitter);
    assert_eq!(completions.recv_timeout(Duration::from_secs(30)), Err(RecvError::Closed));
}

#[test]
fn submitting_after_the_consumer_is_gone_is_refused() {
    let (submitter, completions) = spawn::<()>(config(1, 2), CheckConfig::default()).unwrap();
    drop(completions);
    let refused = submitter
        .submit(vec![Submission { tag: (), raw: Bytes::from_static(b"\xc0") }])
        .unwrap_err();
    assert_eq!(refused.error, Error::Closed);
    assert!(!refused.error.is_retryable());
}

#[test]
fn batch_decoder_chunks_by_capacity_and_keeps_order() {
    let raws = mixed_batch(25);
    let mut decoder = BatchDecoder::new(config(2, 4), CheckConfig::default()).unwrap();
    let results = decoder.decode_all(raws.clone()).unwrap();
    let expected: Vec<_> =
        raws.into_iter().map(|raw| decode_tx(raw, &CheckConfig::default())).collect();
    assert_eq!(results, expected);
    assert!(results.iter().any(Result::is_err) && results.iter().any(Result::is_ok));
}
