//! Agreement with Ethereum's published transaction fixtures (ethereum/tests `TransactionTests`,
//! shipped as `tests/vectors/ethereum_tests.json` by `tests/vectors/gen_ethereum_tests.py`).
//!
//! Each case carries the raw bytes and the result at the newest fork it was filled for (Cancun,
//! Shanghai or London): hash, sender and intrinsic gas, or an exception. Two configurations run
//! every case:
//!
//! - [`fixture_config`], the fixtures' own assumptions: chain 1, unprotected legacy accepted, no
//!   EIP-7825 gas cap and no EIP-7623 calldata floor (both came after Cancun). Valid cases must
//!   decode to the fixture's hash and sender; invalid ones must be refused with a failure that
//!   [`EXCEPTIONS`] allows for the fixture's exception. [`DIFFERENCES`] lists, with the reason,
//!   every case where mempulse deliberately answers otherwise; each entry pins the exact outcome,
//!   so it cannot go stale unnoticed.
//! - `CheckConfig::default()`, what the node runs: the same outcome for every case except those in
//!   [`STRICTER_BY_DEFAULT`] (newer forks' rules). A third run with `allow_unprotected` off turns
//!   exactly the valid pre-EIP-155 cases into `wrong_chain_id`.
//!
//! The tables here and in `docs/design/tx-decoding.md` are the same; keep them in step.

use std::collections::{BTreeMap, BTreeSet};

use alloy_consensus::{Transaction, TxEnvelope};
use alloy_eips::eip2718::Decodable2718;
use bytes::Bytes;
use mempulse_net::{
    CheckConfig, CheckFailure, TxError, decode_tx,
    gas::{GasInputs, intrinsic_gas},
};
use mempulse_primitives::{Address, Tx, TxHash};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct File {
    fixture_commit: String,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    file: String,
    name: String,
    commit: String,
    fork: String,
    txbytes: String,
    exception: Option<String>,
    hash: Option<String>,
    sender: Option<String>,
    intrinsic_gas: Option<String>,
}

impl Case {
    /// `group/file` without the directory and extension, e.g. `ttNonce/TransactionWithHighNonce32`.
    fn key(&self) -> &str {
        self.file
            .strip_prefix("TransactionTests/")
            .and_then(|rest| rest.strip_suffix(".json"))
            .unwrap_or_else(|| panic!("{}: unexpected file path", self.file))
    }

    fn raw(&self) -> Bytes {
        Bytes::from(hex::decode(self.txbytes.trim_start_matches("0x")).expect("fixture hex"))
    }

    /// The fixture's exception without its `TransactionException.` prefix.
    fn exception(&self) -> Option<&str> {
        self.exception.as_deref().map(|e| e.trim_start_matches("TransactionException."))
    }
}

/// Every decode failure name: what a mangled length or element count may surface as, since it
/// shifts every later field boundary.
const ANY_DECODE: &[&str] = &[
    "unsupported_type",
    "trailing_bytes",
    "non_canonical",
    "rlp_overflow",
    "rlp_leading_zero",
    "rlp_input_too_short",
    "rlp_non_canonical_single_byte",
    "rlp_non_canonical_size",
    "rlp_unexpected_length",
    "rlp_unexpected_string",
    "rlp_unexpected_list",
    "rlp_list_length_mismatch",
    "rlp_invalid_value",
];

/// Fixture exception -> the `TxError::as_str` names that agree with it.
const EXCEPTIONS: &[(&str, &[&str])] = &[
    // Field shapes: fixed-size fields of the wrong length, integers with leading zeros or wider
    // than their field, lists where a string belongs.
    ("ADDRESS_TOO_SHORT", &["rlp_unexpected_length"]),
    ("ADDRESS_TOO_LONG", &["rlp_unexpected_length"]),
    ("RLP_INVALID_ACCESS_LIST_ADDRESS_TOO_SHORT", &["rlp_unexpected_length"]),
    ("RLP_INVALID_ACCESS_LIST_ADDRESS_TOO_LONG", &["rlp_unexpected_length"]),
    ("RLP_INVALID_ACCESS_LIST_STORAGE_TOO_SHORT", &["rlp_unexpected_length"]),
    ("RLP_INVALID_ACCESS_LIST_STORAGE_TOO_LONG", &["rlp_unexpected_length"]),
    ("RLP_LEADING_ZEROS_NONCE", &["rlp_leading_zero"]),
    ("RLP_LEADING_ZEROS_GASPRICE", &["rlp_leading_zero"]),
    ("RLP_LEADING_ZEROS_GASLIMIT", &["rlp_leading_zero"]),
    ("RLP_LEADING_ZEROS_VALUE", &["rlp_leading_zero"]),
    ("RLP_LEADING_ZEROS_V", &["rlp_leading_zero"]),
    ("RLP_LEADING_ZEROS_R", &["rlp_leading_zero"]),
    ("RLP_LEADING_ZEROS_S", &["rlp_leading_zero"]),
    ("RLP_LEADING_ZEROS_DATA_SIZE", &["rlp_leading_zero"]),
    ("RLP_ERROR_SIZE_LEADING_ZEROS", &["rlp_leading_zero"]),
    // A 0x00-prefixed 32-byte fee is 33 bytes: wider than the u128 field before its zero counts.
    ("RLP_LEADING_ZEROS_BASEFEE", &["rlp_leading_zero", "rlp_overflow"]),
    ("RLP_LEADING_ZEROS_PRIORITY_FEE", &["rlp_leading_zero", "rlp_overflow"]),
    // A byte below 0x80 wrapped in a string header (0x81 0x00).
    ("RLP_LEADING_ZEROS_NONCE_SIZE", &["rlp_non_canonical_single_byte"]),
    ("NONCE_OVERFLOW", &["rlp_overflow"]),
    ("GASLIMIT_OVERFLOW", &["rlp_overflow"]),
    ("GASPRICE_OVERFLOW", &["rlp_overflow"]),
    ("PRIORITY_OVERFLOW", &["rlp_overflow"]),
    ("VALUE_OVERFLOW", &["rlp_overflow"]),
    // The fee is already wider than u128, so the gas * fee product is never formed.
    ("GASLIMIT_PRICE_PRODUCT_OVERFLOW", &["rlp_overflow"]),
    ("PRIORITY_GREATER_THAN_MAX_FEE_PER_GAS_2", &["fee_fields_inconsistent", "rlp_overflow"]),
    ("RLP_INVALID_NONCE", &["rlp_unexpected_list"]),
    ("RLP_INVALID_GASLIMIT", &["rlp_unexpected_list"]),
    ("RLP_INVALID_TO", &["rlp_unexpected_list"]),
    ("RLP_INVALID_DATA", &["rlp_unexpected_list"]),
    ("RLP_INVALID_SIGNATURE_R", &["rlp_unexpected_list"]),
    ("RLP_INVALID_SIGNATURE_S", &["rlp_unexpected_list"]),
    ("RLP_INVALID_HEADER", &["rlp_unexpected_string", "rlp_unexpected_list"]),
    // Structure: wrong lengths, counts or end of input.
    ("RLP_ERROR_SIZE", ANY_DECODE),
    ("RLP_ERROR_EOF", ANY_DECODE),
    ("RLP_TOO_FEW_ELEMENTS", ANY_DECODE),
    ("RLP_TOO_MANY_ELEMENTS", ANY_DECODE),
    // A type byte the fork lacks, or no envelope at all; mempulse knows types 1 to 4, so a known
    // type byte over a body of another type fails in its RLP.
    ("TYPE_NOT_SUPPORTED", ANY_DECODE),
    // Replay protection: a chain id other than 1, or a legacy `v` that is neither 27/28 nor
    // 35 + 2 * chain_id (alloy refuses those while decoding).
    ("INVALID_CHAINID", &["wrong_chain_id", "rlp_invalid_value"]),
    // Signature values: zero or out-of-range r/s, s in the upper half (EIP-2), r or s wider than
    // 32 bytes, an unusable `v`.
    (
        "INVALID_SIGNATURE_VRS",
        &["invalid_signature", "high_s", "rlp_overflow", "rlp_invalid_value"],
    ),
    ("EC_RECOVERY_FAIL", &["invalid_signature"]),
    ("INTRINSIC_GAS_TOO_LOW", &["intrinsic_gas_too_low"]),
    ("INITCODE_SIZE_EXCEEDED", &["initcode_too_large"]),
    // EIP-2681 (nonce 2^64 - 1): only in DIFFERENCES, the decoder accepts it.
    ("NONCE_TOO_BIG", &[]),
];

/// What the fixture expects, for the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fixture {
    Valid,
    Exception(&'static str),
}

/// A case where mempulse deliberately answers otherwise than the fixture, with why.
#[derive(Debug)]
struct Difference {
    case: &'static str,
    fixture: Fixture,
    /// `accepted`, or the exact `TxError::as_str`.
    mempulse: &'static str,
    reason: &'static str,
}

/// The u128 fee argument of the first three entries: inclusion needs a balance of at least
/// `gas_limit * fee`, and 21 000 * 2^128 wei is far above all the ether that exists (< 2^87 wei),
/// so a fee of 2^128 or more can never be paid; alloy and reth keep fees in u128.
const DIFFERENCES: &[Difference] = &[
    Difference {
        case: "ttGasPrice/TransactionWithHighGasPrice",
        fixture: Fixture::Valid,
        mempulse: "rlp_overflow",
        reason: "gas price of 248 bits: fee fields are u128 (an unpayable fee)",
    },
    Difference {
        case: "ttVValue/V_equals38",
        fixture: Fixture::Valid,
        mempulse: "rlp_overflow",
        reason: "same 248-bit gas price as TransactionWithHighGasPrice; v = 38 itself is fine",
    },
    Difference {
        case: "ttEIP1559/GasLimitPriceProductOverflowtMinusOne",
        fixture: Fixture::Valid,
        mempulse: "rlp_overflow",
        reason: "max fee of 250 bits: fee fields are u128 (an unpayable fee)",
    },
    Difference {
        case: "ttNonce/TransactionWithHighNonce64Minus1",
        fixture: Fixture::Exception("NONCE_TOO_BIG"),
        mempulse: "accepted",
        reason: "EIP-2681 nonce 2^64 - 1 is refused by crates/mempool (a nonce rule, with the \
                 other nonce rules), not by the decoder",
    },
    Difference {
        case: "ttWrongRLP/TRANSCT_rvalue_TooShort",
        fixture: Fixture::Exception("INVALID_SIGNATURE_VRS"),
        mempulse: "intrinsic_gas_too_low",
        reason: "refused too, for another of its faults: gas limit 2000 is below 21000 and the \
                 stateless checks run before recovery (cheapest first); its s is also above \
                 secp256k1n/2",
    },
];

/// Cases the fixture config accepts (agreeing with the fixture) that the node's default config
/// refuses under a newer fork's rule, with the exact failure.
const STRICTER_BY_DEFAULT: &[(&str, &str, &str)] = &[
    ("ttGasLimit/TransactionWithHighGasLimit63", "gas_limit_too_high", "EIP-7825 cap 2^24"),
    ("ttGasLimit/TransactionWithHighGasLimit63Minus1", "gas_limit_too_high", "EIP-7825 cap 2^24"),
    ("ttGasLimit/TransactionWithHighGasLimit63Plus1", "gas_limit_too_high", "EIP-7825 cap 2^24"),
    ("ttGasLimit/TransactionWithHighGasLimit64Minus1", "gas_limit_too_high", "EIP-7825 cap 2^24"),
    (
        "ttEIP2028/DataTestSufficientGas2028",
        "intrinsic_gas_too_low",
        "EIP-7623 floor: 21000 + 10 * (zero + 4 * nonzero bytes) = 22280 > gas limit 21512",
    ),
];

fn load() -> File {
    serde_json::from_str(include_str!("../vectors/ethereum_tests.json")).expect("fixture file")
}

/// The fixtures' assumptions: chain 1, Cancun rules (no EIP-7825 cap, no EIP-7623 floor).
fn fixture_config() -> CheckConfig {
    CheckConfig {
        chain_id: 1,
        allow_unprotected: true,
        gas_limit_max: u64::MAX,
        calldata_floor: false,
        ..CheckConfig::default()
    }
}

fn outcome(result: &Result<Tx, TxError>) -> &'static str {
    match result {
        Ok(_) => "accepted",
        Err(err) => err.as_str(),
    }
}

fn allowed(exception: &str) -> &'static [&'static str] {
    EXCEPTIONS
        .iter()
        .find(|(name, _)| *name == exception)
        .map(|(_, names)| *names)
        .unwrap_or_else(|| panic!("fixture exception {exception} is not in EXCEPTIONS"))
}

fn hex_u64(text: &str) -> u64 {
    u64::from_str_radix(text.trim_start_matches("0x"), 16).expect("fixture intrinsic gas")
}

/// Intrinsic gas by `mempulse_net::gas` of the transaction alloy decodes from `raw`, if it does.
fn mempulse_intrinsic_gas(raw: &[u8]) -> Option<u64> {
    let envelope = TxEnvelope::decode_2718(&mut &raw[..]).ok()?;
    let access_list = envelope.access_list();
    let inputs = GasInputs {
        input: envelope.input(),
        is_create: envelope.is_create(),
        access_list_addresses: access_list.map_or(0, |list| list.0.len() as u64),
        access_list_storage_keys: access_list
            .map_or(0, |list| list.0.iter().map(|item| item.storage_keys.len() as u64).sum()),
        authorizations: envelope.authorization_list().map_or(0, |list| list.len() as u64),
    };
    Some(intrinsic_gas(&inputs))
}

/// Whether alloy decodes `raw` as a legacy transaction without EIP-155 replay protection.
fn is_unprotected(raw: &[u8]) -> bool {
    TxEnvelope::decode_2718(&mut &raw[..]).is_ok_and(|envelope| envelope.chain_id().is_none())
}

#[test]
fn the_shipped_set_is_representative_and_well_formed() {
    let file = load();
    let valid = file.cases.iter().filter(|c| c.exception.is_none()).count();
    let invalid = file.cases.len() - valid;
    assert!(valid >= 45 && invalid >= 150, "{valid} valid, {invalid} invalid: cases were lost");
    let keys: BTreeSet<&str> = file.cases.iter().map(Case::key).collect();
    assert_eq!(keys.len(), file.cases.len(), "one case per fixture file");
    let groups: BTreeSet<&str> =
        keys.iter().map(|key| key.split('/').next().unwrap_or_default()).collect();
    for group in [
        "ttAddress",
        "ttData",
        "ttEIP1559",
        "ttEIP2028",
        "ttEIP2930",
        "ttEIP3860",
        "ttGasLimit",
        "ttGasPrice",
        "ttNonce",
        "ttRSValue",
        "ttSignature",
        "ttVValue",
        "ttValue",
        "ttWrongRLP",
    ] {
        assert!(groups.contains(group), "group {group} missing");
    }
    for case in &file.cases {
        assert_eq!(case.commit, file.fixture_commit, "{}", case.key());
        // `fixture_config` encodes pre-Prague rules: a Prague or Osaka refill must revisit it.
        assert!(["London", "Shanghai", "Cancun"].contains(&case.fork.as_str()), "{}", case.key());
        assert!(!case.name.is_empty(), "{}", case.key());
        assert_eq!(case.exception.is_none(), case.hash.is_some() && case.sender.is_some());
    }
    // The tables name only cases and exceptions that exist, so they cannot rot unnoticed.
    let exceptions: BTreeSet<&str> = file.cases.iter().filter_map(Case::exception).collect();
    for (name, _) in EXCEPTIONS {
        assert!(exceptions.contains(name), "EXCEPTIONS entry {name} matches no case");
    }
    for case in DIFFERENCES.iter().map(|d| d.case).chain(STRICTER_BY_DEFAULT.iter().map(|s| s.0)) {
        assert!(keys.contains(case), "table entry {case} matches no case");
    }
}

#[test]
fn decoding_agrees_with_the_fixtures_under_their_fork_rules() {
    let file = load();
    let config = fixture_config();
    let differences: BTreeMap<&str, &Difference> =
        DIFFERENCES.iter().map(|d| (d.case, d)).collect();
    let (mut agreed_valid, mut agreed_invalid, mut differed) = (0, 0, 0);
    for case in &file.cases {
        let key = case.key();
        let result = decode_tx(case.raw(), &config);
        let fixture = case.exception().map_or(Fixture::Valid, |e| {
            Fixture::Exception(
                EXCEPTIONS.iter().find(|(name, _)| *name == e).map_or("unmapped", |(name, _)| name),
            )
        });
        if let Some(difference) = differences.get(key) {
            assert_eq!(fixture, difference.fixture, "{key}: the fixture changed");
            assert_eq!(outcome(&result), difference.mempulse, "{key}: {}", difference.reason);
            differed += 1;
            continue;
        }
        match (case.exception(), &result) {
            (None, Ok(tx)) => {
                let hash = TxHash::from_hex(case.hash.as_deref().unwrap_or_default()).unwrap();
                let sender = Address::from_hex(case.sender.as_deref().unwrap_or_default()).unwrap();
                assert_eq!(tx.hash, hash, "{key}: hash");
                assert_eq!(tx.sender, sender, "{key}: sender");
                assert_eq!(tx.raw, case.raw(), "{key}: raw bytes kept");
                agreed_valid += 1;
            }
            (None, Err(err)) => panic!("{key}: the fixture accepts it, mempulse says {err:?}"),
            (Some(exception), Ok(tx)) => {
                panic!("{key}: the fixture says {exception}, mempulse accepted {}", tx.hash)
            }
            (Some(exception), Err(err)) => {
                assert!(
                    allowed(exception).contains(&err.as_str()),
                    "{key}: fixture {exception}, mempulse {} ({err:?})",
                    err.as_str()
                );
                agreed_invalid += 1;
            }
        }
    }
    assert_eq!(differed, DIFFERENCES.len());
    assert_eq!(agreed_valid + agreed_invalid + differed, file.cases.len());
    assert!(agreed_valid >= 45 && agreed_invalid >= 150, "{agreed_valid} / {agreed_invalid}");
}

#[test]
fn intrinsic_gas_agrees_with_the_fixtures() {
    let file = load();
    let mut checked = 0;
    for case in &file.cases {
        let Some(want) = case.intrinsic_gas.as_deref().map(hex_u64) else { continue };
        // Cases whose fee does not fit u128 do not decode (see DIFFERENCES); nothing to compare.
        let Some(got) = mempulse_intrinsic_gas(&case.raw()) else { continue };
        assert_eq!(got, want, "{}: intrinsic gas", case.key());
        // The decoder's own check uses the same number.
        if let Err(TxError::Invalid {
            check: CheckFailure::IntrinsicGasTooLow { intrinsic, .. },
            ..
        }) = decode_tx(case.raw(), &fixture_config())
        {
            assert_eq!(intrinsic, want, "{}: intrinsic gas in the failure", case.key());
        }
        checked += 1;
    }
    assert!(checked >= 50, "only {checked} cases compared intrinsic gas");
}

#[test]
fn the_node_defaults_differ_only_by_newer_fork_rules() {
    let file = load();
    let stricter: BTreeMap<&str, (&str, &str)> =
        STRICTER_BY_DEFAULT.iter().map(|&(case, name, why)| (case, (name, why))).collect();
    let fixture = fixture_config();
    let defaults = CheckConfig::default();
    let protected_only = CheckConfig { allow_unprotected: false, ..CheckConfig::default() };
    let (mut unprotected, mut stricter_seen) = (0, 0);
    for case in &file.cases {
        let key = case.key();
        let under_fixture = decode_tx(case.raw(), &fixture);
        let under_defaults = decode_tx(case.raw(), &defaults);
        match stricter.get(key) {
            Some(&(name, why)) => {
                assert_eq!(outcome(&under_fixture), "accepted", "{key}");
                assert_eq!(outcome(&under_defaults), name, "{key}: {why}");
                stricter_seen += 1;
            }
            None => assert_eq!(outcome(&under_defaults), outcome(&under_fixture), "{key}"),
        }
        // Refusing unprotected legacy transactions (geth's RPC default) refuses exactly those
        // that decode, first of all rules.
        let under_protected_only = decode_tx(case.raw(), &protected_only);
        match &under_defaults {
            Err(TxError::Decode(_)) => {
                assert_eq!(outcome(&under_protected_only), outcome(&under_defaults), "{key}");
            }
            _ if is_unprotected(&case.raw()) => {
                assert_eq!(outcome(&under_protected_only), "wrong_chain_id", "{key}");
                unprotected += usize::from(under_defaults.is_ok());
            }
            _ => assert_eq!(outcome(&under_protected_only), outcome(&under_defaults), "{key}"),
        }
    }
    assert_eq!(stricter_seen, STRICTER_BY_DEFAULT.len());
    assert!(unprotected >= 20, "only {unprotected} accepted pre-EIP-155 cases");
}
