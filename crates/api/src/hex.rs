//! `0x` hex text: strict parsing with typed errors (the messages follow geth's `hexutil`, which
//! wallets show to users) and rendering of quantities.

use core::fmt;

use mempulse_primitives::TxHash;

/// Why text is not `0x`-prefixed hex bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HexError {
    /// Empty text.
    #[error("empty hex string")]
    Empty,
    /// No `0x` prefix.
    #[error("hex string without 0x prefix")]
    MissingPrefix,
    /// An odd number of digits.
    #[error("hex string of odd length")]
    OddLength,
    /// A character that is not a hex digit.
    #[error("invalid hex string")]
    InvalidDigit,
}

/// Parses `0x`-prefixed hex bytes (`0x` alone is the empty byte string).
pub(crate) fn parse_bytes(text: &str) -> Result<Vec<u8>, HexError> {
    if text.is_empty() {
        return Err(HexError::Empty);
    }
    let body = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .ok_or(HexError::MissingPrefix)?;
    if body.len() % 2 != 0 {
        return Err(HexError::OddLength);
    }
    hex::decode(body).map_err(|_| HexError::InvalidDigit)
}

/// Why text is not a transaction hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HashError {
    /// Not hex.
    #[error("{0}")]
    Hex(HexError),
    /// Hex of the wrong length.
    #[error("hex string has length {0}, want 64 for a 32-byte hash")]
    Length(usize),
}

/// Parses a `0x`-prefixed 32-byte transaction hash.
pub(crate) fn parse_hash(text: &str) -> Result<TxHash, HashError> {
    let bytes = parse_bytes(text).map_err(HashError::Hex)?;
    let array: [u8; 32] =
        bytes.try_into().map_err(|b: Vec<u8>| HashError::Length(b.len().saturating_mul(2)))?;
    Ok(TxHash(array))
}

/// An unsigned integer rendered as an Ethereum JSON-RPC quantity (`0x0`, `0x1a`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Quantity(pub(crate) u128);

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A quantity as a JSON string value.
pub(crate) fn quantity(value: impl Into<u128>) -> serde_json::Value {
    serde_json::Value::String(Quantity(value.into()).to_string())
}

/// Bytes as a `0x` hex JSON string value.
pub(crate) fn data(bytes: &[u8]) -> serde_json::Value {
    serde_json::Value::String(format!("0x{}", hex::encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_like_hexutil() {
        assert_eq!(parse_bytes("0x"), Ok(vec![]));
        assert_eq!(parse_bytes("0x0aFF"), Ok(vec![0x0a, 0xff]));
        assert_eq!(parse_bytes(""), Err(HexError::Empty));
        assert_eq!(parse_bytes("0aff"), Err(HexError::MissingPrefix));
        assert_eq!(parse_bytes("0xabc"), Err(HexError::OddLength));
        assert_eq!(parse_bytes("0xzz"), Err(HexError::InvalidDigit));
        assert_eq!(parse_bytes("0x\u{e9}\u{e9}"), Err(HexError::InvalidDigit));
    }

    #[test]
    fn hashes_need_32_bytes() {
        let text = format!("0x{}", "ab".repeat(32));
        assert_eq!(parse_hash(&text), Ok(TxHash([0xab; 32])));
        assert_eq!(parse_hash("0xabcd"), Err(HashError::Length(4)));
        assert_eq!(parse_hash("abcd"), Err(HashError::Hex(HexError::MissingPrefix)));
    }

    #[test]
    fn quantities_have_no_leading_zeros() {
        assert_eq!(Quantity(0).to_string(), "0x0");
        assert_eq!(Quantity(26).to_string(), "0x1a");
        assert_eq!(Quantity(u128::MAX).to_string(), format!("0x{}", "f".repeat(32)));
    }
}
