//! Agreement with transactions signed by eth-account (`tests/vectors/gen.py`), a library that
//! shares no code with alloy: hashes, senders and fields of valid ones, the precise failure of
//! invalid ones.

use bytes::Bytes;
use mempulse_net::{CheckConfig, decode_tx};
use mempulse_primitives::{Address, TxHash};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct File {
    chain_id: u64,
    valid: Vec<Valid>,
    invalid: Vec<Invalid>,
}

#[derive(Debug, Deserialize)]
struct Valid {
    name: String,
    raw: String,
    hash: String,
    sender: String,
    tx_type: String,
    nonce: u64,
    gas_limit: u64,
    max_fee_per_gas: String,
    max_priority_fee_per_gas: String,
    chain_id: Option<u64>,
    encoded_size: u32,
}

#[derive(Debug, Deserialize)]
struct Invalid {
    name: String,
    raw: String,
    error: String,
    hash: Option<String>,
}

fn load() -> File {
    serde_json::from_str(include_str!("../vectors/txs.json")).expect("vector file parses")
}

fn raw(hex_text: &str) -> Bytes {
    Bytes::from(hex::decode(hex_text.trim_start_matches("0x")).expect("vector hex"))
}

#[test]
fn valid_vectors_decode_to_what_eth_account_signed() {
    let file = load();
    let config = CheckConfig { chain_id: file.chain_id, ..CheckConfig::default() };
    assert!(file.valid.len() >= 40, "the vector file lost entries");
    let mut types_seen = std::collections::BTreeSet::new();
    for v in &file.valid {
        let tx = decode_tx(raw(&v.raw), &config)
            .unwrap_or_else(|err| panic!("{}: {err} ({})", v.name, err.as_str()));
        assert_eq!(tx.hash, TxHash::from_hex(&v.hash).unwrap(), "{}: hash", v.name);
        assert_eq!(tx.sender, Address::from_hex(&v.sender).unwrap(), "{}: sender", v.name);
        assert_eq!(tx.tx_type.as_str(), v.tx_type, "{}: type", v.name);
        assert_eq!(tx.nonce.get(), v.nonce, "{}: nonce", v.name);
        assert_eq!(tx.gas_limit, v.gas_limit, "{}: gas limit", v.name);
        assert_eq!(tx.fees.max_fee_per_gas.to_string(), v.max_fee_per_gas, "{}: max fee", v.name);
        assert_eq!(
            tx.fees.max_priority_fee_per_gas.to_string(),
            v.max_priority_fee_per_gas,
            "{}: priority fee",
            v.name
        );
        assert_eq!(tx.chain_id, v.chain_id, "{}: chain id", v.name);
        assert_eq!(tx.encoded_size, v.encoded_size, "{}: size", v.name);
        assert_eq!(tx.raw, raw(&v.raw), "{}: raw bytes kept", v.name);
        types_seen.insert(v.tx_type.clone());
    }
    assert_eq!(types_seen.len(), 5, "every envelope type is covered: {types_seen:?}");
}

#[test]
fn eip155_example_matches_the_eip_text() {
    // Signed transaction and hash as printed in EIP-155 (key 0x4646..46, nonce 9, 20 gwei,
    // 21000 gas, to 0x3535..35, 1 ether, chain 1).
    let tx = decode_tx(
        raw(
            "0xf86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a7640000\
             8025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f\
             761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83",
        ),
        &CheckConfig::default(),
    )
    .unwrap();
    assert_eq!(
        tx.hash,
        TxHash::from_hex("0x33469b22e9f636356c4160a87eb19df52b7412e8eac32a4a55ffe88ea8350788")
            .unwrap()
    );
    assert_eq!(tx.sender, Address::from_hex("0x9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f").unwrap());
    assert_eq!(tx.chain_id, Some(1));
    assert_eq!(tx.nonce.get(), 9);
}

#[test]
fn invalid_vectors_fail_with_the_expected_reason() {
    let file = load();
    let config = CheckConfig { chain_id: file.chain_id, ..CheckConfig::default() };
    assert!(file.invalid.len() >= 30, "the vector file lost entries");
    for v in &file.invalid {
        let err = decode_tx(raw(&v.raw), &config)
            .map(|tx| tx.hash)
            .expect_err(&format!("{} must fail", v.name));
        assert_eq!(err.as_str(), v.error, "{}: {err}", v.name);
        let want_hash = v.hash.as_deref().map(|h| TxHash::from_hex(h).unwrap());
        assert_eq!(err.hash(), want_hash, "{}: hash", v.name);
    }
}
