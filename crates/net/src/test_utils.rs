//! Deterministic signed transactions for tests, benches and `mempulse-bench recover`.
//!
//! Keys are fixed byte patterns and signing is RFC 6979 (deterministic), so the same arguments
//! always give the same bytes.

use alloy_consensus::{
    EthereumTxEnvelope, SignableTransaction, TxEip1559, TxEip2930, TxEip4844, TxEip7702, TxLegacy,
    crypto::secp256k1::sign_message,
};
use alloy_eips::{
    eip2718::Encodable2718,
    eip2930::{AccessList, AccessListItem},
    eip7702::Authorization,
};
use alloy_primitives::{Address, B256, Bytes as AlloyBytes, TxKind, U256, keccak256};
use bytes::Bytes;
use mempulse_primitives::TxType;

use crate::stream::{LengthPrefixed, WireFrame};

/// A valid secp256k1 private key for sender `index`: a keccak of the index with the top bit
/// cleared (so below the curve order) and the low bit set (so never zero).
#[must_use]
pub fn sample_key(index: u32) -> B256 {
    let mut key =
        keccak256([b"mempulse-sample-sender".as_slice(), &index.to_le_bytes()].concat()).0;
    key[0] &= 0x7f;
    key[31] |= 1;
    B256::from(key)
}

/// What [`signed_tx`] builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxSpec {
    /// Envelope type.
    pub tx_type: TxType,
    /// Index of the sender key ([`sample_key`]).
    pub sender: u32,
    /// Nonce.
    pub nonce: u64,
    /// Chain id (`None` signs a pre-EIP-155 legacy transaction).
    pub chain_id: Option<u64>,
    /// Calldata length in bytes (non-zero bytes).
    pub input_len: usize,
}

impl TxSpec {
    /// A plain transfer of `tx_type` on chain 1.
    #[must_use]
    pub const fn transfer(tx_type: TxType, sender: u32, nonce: u64) -> Self {
        Self { tx_type, sender, nonce, chain_id: Some(1), input_len: 0 }
    }
}

const GWEI: u128 = 1_000_000_000;

/// A versioned hash with the KZG version byte.
const BLOB_HASH: B256 = {
    let mut hash = [7u8; 32];
    hash[0] = 0x01;
    B256::new(hash)
};

fn sign<T: SignableTransaction<alloy_primitives::Signature>>(tx: T, key: B256) -> Option<Bytes>
where
    EthereumTxEnvelope<TxEip4844>: From<alloy_consensus::Signed<T>>,
{
    let signature = sign_message(key, tx.signature_hash()).ok()?;
    let envelope = EthereumTxEnvelope::<TxEip4844>::from(tx.into_signed(signature));
    Some(Bytes::from(envelope.encoded_2718()))
}

/// The fields every builder below shares.
struct Parts {
    key: B256,
    chain_id: u64,
    nonce: u64,
    gas_limit: u64,
    to: Address,
    value: U256,
    input: AlloyBytes,
    access_list: AccessList,
}

const MAX_FEE_PER_GAS: u128 = 30 * GWEI;
const MAX_PRIORITY_FEE_PER_GAS: u128 = 2 * GWEI;
const GAS_PRICE: u128 = 20 * GWEI;

/// Signs one transaction as `spec` describes, with enough gas for its intrinsic cost.
///
/// Returns `None` only for a type this builder does not know (none today) or a key the curve
/// refuses (never for [`sample_key`]).
#[must_use]
pub fn signed_tx(spec: &TxSpec) -> Option<Bytes> {
    let p = Parts {
        key: sample_key(spec.sender),
        chain_id: spec.chain_id.unwrap_or(1),
        nonce: spec.nonce,
        gas_limit: 60_000 + 40 * u64::try_from(spec.input_len).unwrap_or(u64::MAX / 80),
        to: Address::repeat_byte(0x35),
        value: U256::from(1_000u64),
        input: AlloyBytes::from(vec![0xab; spec.input_len]),
        access_list: AccessList(vec![AccessListItem {
            address: Address::repeat_byte(0xde),
            storage_keys: vec![B256::repeat_byte(0x01)],
        }]),
    };
    let key = p.key;
    match spec.tx_type {
        TxType::Legacy => sign(
            TxLegacy {
                chain_id: spec.chain_id,
                nonce: p.nonce,
                gas_price: GAS_PRICE,
                gas_limit: p.gas_limit,
                to: TxKind::Call(p.to),
                value: p.value,
                input: p.input,
            },
            key,
        ),
        TxType::AccessList => sign(
            TxEip2930 {
                chain_id: p.chain_id,
                nonce: p.nonce,
                gas_price: GAS_PRICE,
                gas_limit: p.gas_limit,
                to: TxKind::Call(p.to),
                value: p.value,
                access_list: p.access_list,
                input: p.input,
            },
            key,
        ),
        TxType::DynamicFee => sign(
            TxEip1559 {
                chain_id: p.chain_id,
                nonce: p.nonce,
                gas_limit: p.gas_limit,
                max_fee_per_gas: MAX_FEE_PER_GAS,
                max_priority_fee_per_gas: MAX_PRIORITY_FEE_PER_GAS,
                to: TxKind::Call(p.to),
                value: p.value,
                access_list: p.access_list,
                input: p.input,
            },
            key,
        ),
        TxType::Blob => signed_blob(p),
        TxType::SetCode => signed_set_code(p),
        _ => None,
    }
}

fn signed_blob(p: Parts) -> Option<Bytes> {
    let tx = TxEip4844 {
        chain_id: p.chain_id,
        nonce: p.nonce,
        gas_limit: p.gas_limit,
        max_fee_per_gas: MAX_FEE_PER_GAS,
        max_priority_fee_per_gas: MAX_PRIORITY_FEE_PER_GAS,
        to: p.to,
        value: p.value,
        access_list: p.access_list,
        blob_versioned_hashes: vec![BLOB_HASH],
        max_fee_per_blob_gas: GWEI,
        input: p.input,
    };
    sign(tx, p.key)
}

fn signed_set_code(p: Parts) -> Option<Bytes> {
    let authorization = Authorization {
        chain_id: U256::from(p.chain_id),
        address: p.to,
        nonce: p.nonce.saturating_add(1),
    };
    let auth_signature = sign_message(p.key, authorization.signature_hash()).ok()?;
    let tx = TxEip7702 {
        chain_id: p.chain_id,
        nonce: p.nonce,
        gas_limit: p.gas_limit,
        max_fee_per_gas: MAX_FEE_PER_GAS,
        max_priority_fee_per_gas: MAX_PRIORITY_FEE_PER_GAS,
        to: p.to,
        value: p.value,
        access_list: p.access_list,
        authorization_list: vec![authorization.into_signed(auth_signature)],
        input: p.input,
    };
    sign(tx, p.key)
}

/// `count` signed transactions cycling through every type and `senders` senders, nonces rising per
/// sender: a stand-in for real ingest traffic.
#[must_use]
pub fn sample_txs(count: usize, senders: u32) -> Vec<Bytes> {
    let senders = senders.max(1);
    (0..count)
        .filter_map(|i| {
            let i = u64::try_from(i).ok()?;
            let sender = u32::try_from(i % u64::from(senders)).ok()?;
            let type_index = usize::try_from(i % 5).ok()?;
            let tx_type = *TxType::ALL.get(type_index)?;
            let spec = TxSpec {
                input_len: usize::try_from(i % 4).ok()? * 32,
                ..TxSpec::transfer(tx_type, sender, i / u64::from(senders))
            };
            signed_tx(&spec)
        })
        .collect()
}

/// Feeds `bytes` to a fresh decoder of frames up to `frame_bytes_max` in chunks of the sizes in
/// `chunks` (cycled; each at least 1, an empty list meaning 1), collecting frames until the first
/// error. Works for both protocols: `decode_in_chunks::<StreamFrame>` or `::<PeerFrame>`.
///
/// # Panics
/// When the decoder ever holds more than one partial frame plus the chunk just added.
#[must_use]
pub fn decode_in_chunks<F: WireFrame>(
    frame_bytes_max: u32,
    bytes: &[u8],
    chunks: &[usize],
) -> (Vec<F>, Option<F::Error>) {
    let mut decoder = LengthPrefixed::<F>::new(frame_bytes_max);
    let limit = usize::try_from(frame_bytes_max).unwrap_or(usize::MAX);
    let mut sizes = chunks.iter().copied().cycle();
    let mut frames = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(1).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        decoder.extend(chunk);
        assert!(decoder.buffered() <= 4 + limit + n, "decoder buffered past one frame and a chunk");
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(error) => return (frames, Some(error)),
            }
        }
    }
    (frames, None)
}

/// Checks what any bytes must satisfy in a frame decoder (the fuzz targets' and property
/// tests' oracle): decoding returns, whole or in `chunks` (see [`decode_in_chunks`]) it gives
/// the same frames and error, and the frames re-encode to exactly a prefix of `bytes`.
///
/// # Panics
/// When one of those fails.
pub fn check_any_bytes<F>(frame_bytes_max: u32, bytes: &[u8], chunks: &[usize])
where
    F: WireFrame + PartialEq + core::fmt::Debug,
    F::Error: PartialEq,
{
    let whole = decode_in_chunks::<F>(frame_bytes_max, bytes, &[bytes.len()]);
    let chunked = decode_in_chunks::<F>(frame_bytes_max, bytes, chunks);
    assert_eq!(whole, chunked, "decoding depends on the chunking");
    let mut again = bytes::BytesMut::new();
    for frame in &whole.0 {
        let encoded = frame.encode_frame(&mut again, frame_bytes_max);
        assert!(encoded.is_ok(), "a decoded frame does not encode: {encoded:?}");
    }
    assert!(bytes.starts_with(&again), "decoded frames do not re-encode to their bytes");
}
