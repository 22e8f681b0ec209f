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

/// Bytes that do not decode as the expected value.
///
/// Every variant says where in the input decoding stopped (`offset`, counted from the start of
/// the slice given to [`crate::Reader::new`]) and what was expected there. Decoding never panics
/// and never allocates more than the input could justify: any failure is one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended in the middle of a value.
    #[error("unexpected end of input at offset {offset}: needed {needed} bytes")]
    UnexpectedEnd {
        /// Where the read started.
        offset: usize,
        /// How many bytes the read needed.
        needed: usize,
    },
    /// A tag byte (enum variant, reason code, option marker) has no meaning here.
    #[error("unknown {what} tag {tag} at offset {offset}")]
    UnknownTag {
        /// Where the tag byte is.
        offset: usize,
        /// Which type's tag it was meant to be.
        what: &'static str,
        /// The byte found.
        tag: u8,
    },
    /// The payload was written by a schema version this build does not read.
    #[error("unsupported schema version {found} (this build reads {supported})")]
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
        /// The version this build reads ([`crate::SCHEMA_VERSION`]).
        supported: u8,
    },
    /// A complete value was decoded but input remains after it.
    #[error("{count} trailing bytes at offset {offset}")]
    TrailingBytes {
        /// Where the unread bytes start.
        offset: usize,
        /// How many bytes were left.
        count: usize,
    },
    /// A declared length or element count is larger than the rest of the input could hold.
    #[error("declared length {declared} at offset {offset} exceeds the limit {limit}")]
    LengthTooLarge {
        /// Where the length prefix is.
        offset: usize,
        /// The declared length (bytes) or count (elements).
        declared: u32,
        /// The largest length the remaining input allows.
        limit: usize,
    },
    /// A field holds a value outside its domain (a bool byte other than 0 or 1, ...).
    #[error("invalid {what} at offset {offset}")]
    InvalidValue {
        /// Where the value starts.
        offset: usize,
        /// Which field it was.
        what: &'static str,
    },
}

impl DecodeError {
    /// Offset into the input where decoding stopped, when the error has one.
    #[must_use]
    pub const fn offset(&self) -> Option<usize> {
        match *self {
            Self::UnexpectedEnd { offset, .. }
            | Self::UnknownTag { offset, .. }
            | Self::TrailingBytes { offset, .. }
            | Self::LengthTooLarge { offset, .. }
            | Self::InvalidValue { offset, .. } => Some(offset),
            Self::UnsupportedVersion { .. } => None,
        }
    }
}
