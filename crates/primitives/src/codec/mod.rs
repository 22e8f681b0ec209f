//! The stable, versioned, deterministic binary encoding of every schema type.
//!
//! # Rules of the format
//! - Integers are fixed-width little-endian (`u8`, `u16`, `u32`, `u64`, `u128`); `usize` never
//!   appears on the wire.
//! - `bool` is one byte, `0` or `1`; any other byte is [`DecodeError::InvalidValue`].
//! - Fixed-size byte arrays (`TxHash`, `Address`, `Digest`) are their raw bytes, no prefix.
//! - Byte strings are `u32 len | len bytes`; lists are `u32 count | count items`. A declared
//!   length or count that the rest of the input cannot hold is [`DecodeError::LengthTooLarge`],
//!   checked *before* anything is allocated.
//! - `Option<T>` is `u8 0` (none) or `u8 1 | T`.
//! - Enums are a `u8` tag then the variant's fields in declaration order. Tags are the stable
//!   codes of `reason.rs` / `KindCode`; tag `0` is never assigned to a schema enum (except
//!   `TxType`, whose code is the EIP-2718 type byte, `0` for legacy).
//! - Decoding is strict: every value has exactly one encoding, so any bytes that decode
//!   re-encode to themselves, and `encode` is a pure function of the value.
//!
//! Per-type layouts are written above each implementation (`ids.rs`, `tx.rs`, `event.rs`).
//!
//! # Versioning
//! A stored event payload starts with one schema-version byte ([`SCHEMA_VERSION`]); see
//! [`crate::Event::to_bytes`]. Any change to any layout here is a format change: bump the version,
//! keep a decoder for the old one, and re-bless the golden vectors in `tests/vectors/`.

mod event;
mod ids;
mod reader;
mod tx;

use bytes::Bytes;

pub use reader::Reader;
pub use tx::{decode_tx_without_raw, encode_tx_without_raw};

use crate::DecodeError;

/// Version byte that opens every stored event payload ([`crate::Event::to_bytes`]).
pub const SCHEMA_VERSION: u8 = 1;

/// A value with a canonical byte encoding.
pub trait Encode {
    /// Appends the encoding of `self` to `out`.
    ///
    /// # Panics
    /// Only for a byte string or list longer than `u32::MAX`, which no decoded or ingested value
    /// can be (ingest limits are far smaller); see [`put_len`].
    fn encode(&self, out: &mut Vec<u8>);

    /// Length of the encoding in bytes. The default encodes into a scratch buffer; fixed-size
    /// types override it.
    fn encoded_len(&self) -> usize {
        let mut scratch = Vec::new();
        self.encode(&mut scratch);
        scratch.len()
    }
}

/// A value that can be read back from its canonical encoding.
pub trait Decode: Sized {
    /// Reads one value from `r`, leaving `r` just past it.
    ///
    /// # Errors
    /// A [`DecodeError`] describing the first byte that does not fit the layout.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// The encoding of `v` as a new vector.
#[must_use]
pub fn encode_to_vec<T: Encode + ?Sized>(v: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.encoded_len());
    v.encode(&mut out);
    out
}

/// Decodes exactly one `T` from `bytes`.
///
/// # Errors
/// Any [`DecodeError`] of `T::decode`, or [`DecodeError::TrailingBytes`] if input remains.
pub fn decode_exact<T: Decode>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut r = Reader::new(bytes);
    let v = T::decode(&mut r)?;
    r.finish()?;
    Ok(v)
}

/// Appends a `u32` little-endian length or count prefix.
///
/// # Panics
/// If `len > u32::MAX`. The format cannot express such a length, and silently truncating it
/// would write a record that decodes to a different value; no value built from decoded or
/// ingested input comes near this size.
pub fn put_len(out: &mut Vec<u8>, len: usize) {
    let Ok(len) = u32::try_from(len) else {
        // Broken invariant, not bad input: nothing decoded or ingested reaches 4 GiB.
        unreachable!("length {len} does not fit the u32 length prefix");
    };
    out.extend_from_slice(&len.to_le_bytes());
}

macro_rules! int_codec {
    ($($ty:ident),+) => {$(
        impl Encode for $ty {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn encoded_len(&self) -> usize {
                core::mem::size_of::<$ty>()
            }
        }

        impl Decode for $ty {
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                r.$ty()
            }
        }
    )+};
}
int_codec!(u8, u16, u32, u64, u128);

/// `u8 0 | u8 1`.
impl Encode for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn encoded_len(&self) -> usize {
        1
    }
}

impl Decode for bool {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.bool()
    }
}

/// `N raw bytes`, no prefix.
impl<const N: usize> Encode for [u8; N] {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn encoded_len(&self) -> usize {
        N
    }
}

impl<const N: usize> Decode for [u8; N] {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array()
    }
}

/// `u32 len | len bytes`.
impl Encode for Bytes {
    fn encode(&self, out: &mut Vec<u8>) {
        put_len(out, self.len());
        out.extend_from_slice(self);
    }
    fn encoded_len(&self) -> usize {
        4 + self.len()
    }
}

impl Decode for Bytes {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.byte_string().map(Self::copy_from_slice)
    }
}

/// `u8 0` for none, `u8 1 | T` for some.
impl<T: Encode> Encode for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.encode(out);
            }
        }
    }
    fn encoded_len(&self) -> usize {
        1 + self.as_ref().map_or(0, Encode::encoded_len)
    }
}

impl<T: Decode> Decode for Option<T> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.position();
        match r.u8()? {
            0 => Ok(None),
            1 => T::decode(r).map(Some),
            tag => Err(DecodeError::UnknownTag { offset, what: "option", tag }),
        }
    }
}

/// `u32 count | count items`.
impl<T: Encode> Encode for [T] {
    fn encode(&self, out: &mut Vec<u8>) {
        put_len(out, self.len());
        for item in self {
            item.encode(out);
        }
    }
    fn encoded_len(&self) -> usize {
        4 + self.iter().map(Encode::encoded_len).sum::<usize>()
    }
}

/// Same layout as `[T]`: `u32 count | count items`.
impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.as_slice().encode(out);
    }
    fn encoded_len(&self) -> usize {
        self.as_slice().encoded_len()
    }
}

/// Every schema type encodes to at least one byte, so a count larger than the remaining input is
/// rejected before any allocation.
impl<T: Decode> Decode for Vec<T> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let count = r.count(1)?;
        let mut out = Self::with_capacity(count);
        for _ in 0..count {
            out.push(T::decode(r)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Encode + Decode + PartialEq + core::fmt::Debug>(v: &T, expected: &[u8]) {
        let bytes = encode_to_vec(v);
        assert_eq!(bytes, expected);
        assert_eq!(v.encoded_len(), expected.len());
        assert_eq!(&decode_exact::<T>(&bytes).unwrap(), v);
    }

    #[test]
    fn primitive_layouts() {
        round_trip(&0x0102_0304u32, &[4, 3, 2, 1]);
        round_trip(&0x0102u16, &[2, 1]);
        round_trip(&true, &[1]);
        round_trip(&Some(5u8), &[1, 5]);
        round_trip(&None::<u8>, &[0]);
        round_trip(&vec![1u16, 2], &[2, 0, 0, 0, 1, 0, 2, 0]);
        round_trip(&Bytes::from_static(b"ab"), &[2, 0, 0, 0, b'a', b'b']);
        round_trip(&[9u8, 8], &[9, 8]);
    }

    #[test]
    fn option_tag_is_strict() {
        assert_eq!(
            decode_exact::<Option<u8>>(&[2, 0]),
            Err(DecodeError::UnknownTag { offset: 0, what: "option", tag: 2 })
        );
    }

    #[test]
    fn huge_vec_count_is_rejected_before_allocation() {
        let bytes = [0xff, 0xff, 0xff, 0xff, 0];
        assert_eq!(
            decode_exact::<Vec<u64>>(&bytes),
            Err(DecodeError::LengthTooLarge { offset: 0, declared: u32::MAX, limit: 1 })
        );
    }

    #[test]
    fn decode_exact_rejects_trailing_bytes() {
        assert_eq!(
            decode_exact::<u8>(&[1, 2]),
            Err(DecodeError::TrailingBytes { offset: 1, count: 1 })
        );
    }
}
