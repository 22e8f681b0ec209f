//! Stateless rules that depend on the configuration, and the facts each failure maps to.

use bytes::Bytes;
use mempulse_net::{
    CheckConfig, CheckFailure, DecodeFailure, QueueDepth, TxError, Verdict, decode_tx,
    test_utils::{TxSpec, signed_tx},
};
use mempulse_primitives::{DropReason, EventKind, Lane, RejectReason, TxType};

fn tx(spec: &TxSpec) -> Bytes {
    signed_tx(spec).unwrap()
}

#[test]
fn every_type_round_trips_through_the_sample_signer() {
    for &tx_type in TxType::ALL {
        let spec = TxSpec { input_len: 40, ..TxSpec::transfer(tx_type, 3, 7) };
        let decoded = decode_tx(tx(&spec), &CheckConfig::default()).unwrap();
        assert_eq!(decoded.tx_type, tx_type);
        assert_eq!(decoded.nonce.get(), 7);
        assert_eq!(decoded.chain_id, Some(1));
        // Same key, same sender, whatever the type.
        let other = decode_tx(tx(&TxSpec::transfer(TxType::Legacy, 3, 0)), &CheckConfig::default());
        assert_eq!(decoded.sender, other.unwrap().sender);
    }
}

#[test]
fn oversize_input_is_dropped_before_decoding() {
    let config = CheckConfig { tx_bytes_max: 100, ..CheckConfig::default() };
    let raw = tx(&TxSpec { input_len: 200, ..TxSpec::transfer(TxType::DynamicFee, 0, 0) });
    let err = decode_tx(raw.clone(), &config).unwrap_err();
    assert_eq!(err, TxError::Decode(DecodeFailure::Oversize { len: raw.len() as u64, max: 100 }));
    assert_eq!(err.verdict(), Verdict::Drop(DropReason::Oversize));
    // Anything above the default limit, whatever it contains.
    let huge = Bytes::from(vec![0xf8; mempulse_net::TX_BYTES_MAX as usize + 1]);
    assert_eq!(decode_tx(huge, &CheckConfig::default()).unwrap_err().as_str(), "oversize");
}

#[test]
fn unprotected_legacy_follows_the_configuration() {
    let raw = tx(&TxSpec { chain_id: None, ..TxSpec::transfer(TxType::Legacy, 1, 0) });
    let accepted = decode_tx(raw.clone(), &CheckConfig::default()).unwrap();
    assert_eq!(accepted.chain_id, None);
    let strict = CheckConfig { allow_unprotected: false, ..CheckConfig::default() };
    let err = decode_tx(raw, &strict).unwrap_err();
    assert_eq!(
        err,
        TxError::Invalid {
            hash: accepted.hash,
            check: CheckFailure::WrongChainId { expected: 1, got: None },
        }
    );
    assert_eq!(err.verdict(), Verdict::Reject(RejectReason::WrongChainId));
}

#[test]
fn limits_on_gas_and_initcode_follow_the_configuration() {
    let raw = tx(&TxSpec { input_len: 64, ..TxSpec::transfer(TxType::DynamicFee, 0, 0) });
    let low_cap = CheckConfig { gas_limit_max: 21_000, ..CheckConfig::default() };
    let err = decode_tx(raw, &low_cap).unwrap_err();
    assert!(matches!(
        err,
        TxError::Invalid { check: CheckFailure::GasLimitTooHigh { max: 21_000, .. }, .. }
    ));
    assert_eq!(err.verdict(), Verdict::Reject(RejectReason::GasLimitTooHigh));
}

#[test]
fn calldata_floor_can_be_switched_off() {
    // eth-account vector `gas_below_calldata_floor`: 4 non-zero bytes, gas 21 100, between the
    // intrinsic 21 064 and the EIP-7623 floor 21 160.
    let file: serde_json::Value =
        serde_json::from_str(include_str!("../vectors/txs.json")).unwrap();
    let raw = file["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "gas_below_calldata_floor")
        .unwrap()["raw"]
        .as_str()
        .unwrap()
        .trim_start_matches("0x")
        .to_owned();
    let raw = Bytes::from(hex::decode(raw).unwrap());
    let err = decode_tx(raw.clone(), &CheckConfig::default()).unwrap_err();
    assert!(matches!(
        err,
        TxError::Invalid {
            check: CheckFailure::IntrinsicGasTooLow { gas_limit: 21_100, intrinsic: 21_160 },
            ..
        }
    ));
    let pre_prague = CheckConfig { calldata_floor: false, ..CheckConfig::default() };
    assert!(decode_tx(raw, &pre_prague).is_ok());
}

#[test]
fn failures_become_the_facts_the_design_names() {
    let depth = QueueDepth { current: 3, peak: 9 };
    let undecodable = TxError::Decode(DecodeFailure::Empty);
    assert_eq!(
        undecodable.to_event_kind(Lane::Rpc, depth),
        EventKind::TxDropped {
            hash: None,
            reason: DropReason::DecodeFailed,
            lane: Lane::Rpc,
            depth_current: 3,
            depth_peak: 9,
        }
    );
    let hash = mempulse_primitives::TxHash([5; 32]);
    let high_s = TxError::Invalid { hash, check: CheckFailure::HighS };
    assert_eq!(
        high_s.to_event_kind(Lane::Stream, depth),
        EventKind::TxRejected { hash, reason: RejectReason::HighS }
    );
    let no_auths = TxError::Invalid { hash, check: CheckFailure::EmptyAuthorizationList };
    assert!(matches!(
        no_auths.to_event_kind(Lane::Rest, depth),
        EventKind::TxDropped { hash: Some(_), reason: DropReason::DecodeFailed, .. }
    ));
}

#[test]
fn failure_codes_and_names_are_distinct() {
    let hash = mempulse_primitives::TxHash([0; 32]);
    let rlp = [
        mempulse_net::RlpFailure::Overflow,
        mempulse_net::RlpFailure::LeadingZero,
        mempulse_net::RlpFailure::InputTooShort,
        mempulse_net::RlpFailure::NonCanonicalSingleByte,
        mempulse_net::RlpFailure::NonCanonicalSize,
        mempulse_net::RlpFailure::UnexpectedLength,
        mempulse_net::RlpFailure::UnexpectedString,
        mempulse_net::RlpFailure::UnexpectedList,
        mempulse_net::RlpFailure::ListLengthMismatch,
        mempulse_net::RlpFailure::InvalidValue,
    ];
    let mut all: Vec<TxError> = vec![
        TxError::Decode(DecodeFailure::Empty),
        TxError::Decode(DecodeFailure::Oversize { len: 1, max: 0 }),
        TxError::Decode(DecodeFailure::UnsupportedType { type_byte: 9 }),
        TxError::Decode(DecodeFailure::TrailingBytes { extra: 1 }),
        TxError::Decode(DecodeFailure::NonCanonical),
        TxError::Decode(DecodeFailure::Internal),
    ];
    all.extend(rlp.iter().map(|r| TxError::Decode(DecodeFailure::Rlp(*r))));
    all.extend(
        [
            CheckFailure::WrongChainId { expected: 1, got: None },
            CheckFailure::FeeFieldsInconsistent { max_fee_per_gas: 0, max_priority_fee_per_gas: 1 },
            CheckFailure::GasLimitTooHigh { gas_limit: 0, max: 0 },
            CheckFailure::IntrinsicGasTooLow { gas_limit: 0, intrinsic: 0 },
            CheckFailure::InitcodeTooLarge { len: 0, max: 0 },
            CheckFailure::BlobCount { count: 0, max: 0 },
            CheckFailure::BlobHashVersion { index: 0, version: 0 },
            CheckFailure::EmptyAuthorizationList,
            CheckFailure::HighS,
            CheckFailure::InvalidSignature,
        ]
        .map(|check| TxError::Invalid { hash, check }),
    );
    let codes: std::collections::BTreeSet<_> = all.iter().map(TxError::code).collect();
    let names: std::collections::BTreeSet<_> = all.iter().map(TxError::as_str).collect();
    assert_eq!(codes.len(), all.len());
    assert_eq!(names.len(), all.len());
}
