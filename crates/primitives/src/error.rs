//! Errors of the primitives crate.

/// Text that should have been hex of a fixed length was not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected_len} bytes of hex, got {got_chars} characters that do not parse")]
pub struct ParseHexError {
    /// Expected decoded length in bytes.
    pub expected_len: usize,
    /// Length of the offending text in characters.
    pub got_chars: usize,
}
