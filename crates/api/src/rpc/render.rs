//! Geth's RPC transaction object and `txpool_inspect` summary, rendered from a pooled [`Tx`] by
//! decoding its raw EIP-2718 bytes (the normalized `Tx` does not carry `to`, `value`, `input`
//! or the signature).

use alloy_consensus::{EthereumTxEnvelope, Transaction as _, TxEip4844};
use alloy_eips::eip2718::Decodable2718 as _;
use alloy_primitives::U256;
use mempulse_primitives::Tx;
use serde_json::{Map, Value};

use crate::hex::{data, quantity};

/// The envelopes the node's decoder accepts: a blob transaction without its sidecar.
type Envelope = EthereumTxEnvelope<TxEip4844>;

/// A pooled transaction's raw bytes do not decode (they were checked on the way in, so this is
/// a bug or a corrupted record).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("pooled transaction bytes do not decode")]
pub(crate) struct RenderError;

fn decode(tx: &Tx) -> Result<Envelope, RenderError> {
    let mut raw: &[u8] = &tx.raw;
    let envelope = Envelope::decode_2718(&mut raw).map_err(|_| RenderError)?;
    if raw.is_empty() { Ok(envelope) } else { Err(RenderError) }
}

fn u256(value: U256) -> Value {
    Value::String(format!("{value:#x}"))
}

fn address(a: alloy_primitives::Address) -> Value {
    data(a.as_slice())
}

/// Geth's `RPCTransaction` for a pending transaction: block fields are `null`, and `gasPrice` of
/// a dynamic-fee transaction is its fee cap (geth's choice while no block is known).
pub(crate) fn tx_object(tx: &Tx) -> Result<Value, RenderError> {
    let env = decode(tx)?;
    let sig = env.signature();
    let mut o = Map::new();
    o.insert("blockHash".into(), Value::Null);
    o.insert("blockNumber".into(), Value::Null);
    o.insert("transactionIndex".into(), Value::Null);
    o.insert("hash".into(), Value::String(tx.hash.to_string()));
    o.insert("from".into(), Value::String(tx.sender.to_string()));
    o.insert("to".into(), env.to().map_or(Value::Null, address));
    o.insert("nonce".into(), quantity(env.nonce()));
    o.insert("gas".into(), quantity(env.gas_limit()));
    o.insert("value".into(), u256(env.value()));
    o.insert("input".into(), data(env.input()));
    o.insert("type".into(), quantity(tx.tx_type.code()));
    o.insert("r".into(), u256(sig.r()));
    o.insert("s".into(), u256(sig.s()));
    let parity = u128::from(sig.v());
    if let Some(chain_id) = env.chain_id() {
        o.insert("chainId".into(), quantity(chain_id));
    }
    match &env {
        EthereumTxEnvelope::Legacy(_) => {
            o.insert("gasPrice".into(), quantity(env.max_fee_per_gas()));
            // EIP-155: v = chain_id * 2 + 35 + parity; unprotected: 27 + parity.
            let v = env.chain_id().map_or(27 + parity, |id| {
                u128::from(id).saturating_mul(2).saturating_add(35).saturating_add(parity)
            });
            o.insert("v".into(), quantity(v));
        }
        EthereumTxEnvelope::Eip2930(_)
        | EthereumTxEnvelope::Eip1559(_)
        | EthereumTxEnvelope::Eip4844(_)
        | EthereumTxEnvelope::Eip7702(_) => {
            o.insert("v".into(), quantity(parity));
            o.insert("yParity".into(), quantity(parity));
            o.insert("gasPrice".into(), quantity(env.max_fee_per_gas()));
            insert_typed_fields(&env, &mut o);
        }
    }
    Ok(Value::Object(o))
}

fn insert_typed_fields(env: &Envelope, o: &mut Map<String, Value>) {
    if let Some(list) = env.access_list() {
        let items = list
            .iter()
            .map(|item| {
                let keys = item.storage_keys.iter().map(|k| data(k.as_slice())).collect();
                let mut m = Map::new();
                m.insert("address".into(), address(item.address));
                m.insert("storageKeys".into(), Value::Array(keys));
                Value::Object(m)
            })
            .collect();
        o.insert("accessList".into(), Value::Array(items));
    }
    if env.is_dynamic_fee() {
        o.insert("maxFeePerGas".into(), quantity(env.max_fee_per_gas()));
        let tip = env.max_priority_fee_per_gas().unwrap_or_default();
        o.insert("maxPriorityFeePerGas".into(), quantity(tip));
    }
    if let Some(blob_fee) = env.max_fee_per_blob_gas() {
        o.insert("maxFeePerBlobGas".into(), quantity(blob_fee));
    }
    if let Some(hashes) = env.blob_versioned_hashes() {
        let list = hashes.iter().map(|h| data(h.as_slice())).collect();
        o.insert("blobVersionedHashes".into(), Value::Array(list));
    }
    if let Some(auths) = env.authorization_list() {
        let list = auths
            .iter()
            .map(|a| {
                let mut m = Map::new();
                m.insert("chainId".into(), u256(*a.chain_id()));
                m.insert("address".into(), address(*a.address()));
                m.insert("nonce".into(), quantity(a.nonce()));
                m.insert("yParity".into(), quantity(a.y_parity()));
                m.insert("r".into(), u256(a.r()));
                m.insert("s".into(), u256(a.s()));
                Value::Object(m)
            })
            .collect();
        o.insert("authorizationList".into(), Value::Array(list));
    }
}

/// Geth's `txpool_inspect` line: `"0xTo: 1 wei + 21000 gas × 2 wei"` (checksummed `to`, or
/// `contract creation` for a create), with the fee cap as the gas price.
pub(crate) fn summary(tx: &Tx) -> Result<String, RenderError> {
    let env = decode(tx)?;
    let to = env.to().map_or_else(|| "contract creation".to_owned(), |a| a.to_checksum(None));
    Ok(format!(
        "{to}: {} wei + {} gas × {} wei",
        env.value(),
        env.gas_limit(),
        env.max_fee_per_gas()
    ))
}
