//! [`Reader`]: a bounds-checked cursor over untrusted bytes.

use crate::DecodeError;

/// A cursor over an input slice. Every read checks the remaining length first and returns a
/// [`DecodeError`] carrying the offset instead of panicking or over-allocating.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader positioned at the start of `input`.
    #[must_use]
    pub const fn new(input: &'a [u8]) -> Self {
        Self { input, pos: 0 }
    }

    /// Offset of the next byte to read, from the start of the input.
    #[must_use]
    pub const fn position(&self) -> usize {
        self.pos
    }

    /// Number of bytes not yet read.
    #[must_use]
    pub const fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    /// Reads exactly `len` bytes, borrowed from the input.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEnd`] when fewer than `len` bytes remain.
    pub fn bytes(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(len);
        let Some(out) = end.and_then(|end| self.input.get(self.pos..end)) else {
            return Err(DecodeError::UnexpectedEnd { offset: self.pos, needed: len });
        };
        self.pos += len;
        Ok(out)
    }

    /// Reads a fixed-size byte array.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEnd`] when fewer than `N` bytes remain.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let offset = self.pos;
        let slice = self.bytes(N)?;
        <[u8; N]>::try_from(slice).map_err(|_| DecodeError::UnexpectedEnd { offset, needed: N })
    }

    /// Reads one byte.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEnd`] at the end of the input.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads a little-endian `u16`.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEnd`] when fewer than 2 bytes remain.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_le_bytes)
    }

    /// Reads a little-endian `u32`.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEnd`] when fewer than 4 bytes remain.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_le_bytes)
    }

    /// Reads a little-endian `u64`.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEnd`] when fewer than 8 bytes remain.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_le_bytes)
    }

    /// Reads a little-endian `u128`.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEnd`] when fewer than 16 bytes remain.
    pub fn u128(&mut self) -> Result<u128, DecodeError> {
        self.array().map(u128::from_le_bytes)
    }

    /// Reads a bool: exactly `0` or `1`, so every bool has one encoding.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEnd`] at the end of the input, [`DecodeError::InvalidValue`] for
    /// any other byte.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        let offset = self.pos;
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::InvalidValue { offset, what: "bool" }),
        }
    }

    /// Reads a `u32` length prefix and then that many bytes.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEnd`] when the prefix is cut off, and
    /// [`DecodeError::LengthTooLarge`] when it declares more bytes than remain.
    pub fn byte_string(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.count(1)?;
        self.bytes(len)
    }

    /// Reads a `u32` element count for items that each encode to at least `min_item_len` bytes,
    /// and checks that the rest of the input can hold that many, so a caller may reserve
    /// capacity for the count without trusting it.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedEnd`] when the prefix is cut off, and
    /// [`DecodeError::LengthTooLarge`] when `count * min_item_len` exceeds the remaining input.
    pub fn count(&mut self, min_item_len: usize) -> Result<usize, DecodeError> {
        let offset = self.pos;
        let declared = self.u32()?;
        let limit = self.remaining().checked_div(min_item_len).unwrap_or(usize::MAX);
        match usize::try_from(declared) {
            Ok(count) if count <= limit => Ok(count),
            _ => Err(DecodeError::LengthTooLarge { offset, declared, limit }),
        }
    }

    /// Succeeds only when the whole input has been read.
    ///
    /// # Errors
    /// [`DecodeError::TrailingBytes`] when bytes remain.
    pub const fn finish(self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { offset: self.pos, count }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_and_tracks_position() {
        let mut input = vec![7u8];
        input.extend_from_slice(&0x0102u16.to_le_bytes());
        input.extend_from_slice(&0x0304_0506u32.to_le_bytes());
        input.extend_from_slice(&u64::MAX.to_le_bytes());
        input.extend_from_slice(&(u128::MAX - 1).to_le_bytes());
        input.push(1);
        let mut r = Reader::new(&input);
        assert_eq!(r.u8().unwrap(), 7);
        assert_eq!(r.u16().unwrap(), 0x0102);
        assert_eq!(r.u32().unwrap(), 0x0304_0506);
        assert_eq!(r.position(), 7);
        assert_eq!(r.u64().unwrap(), u64::MAX);
        assert_eq!(r.u128().unwrap(), u128::MAX - 1);
        assert!(r.bool().unwrap());
        assert_eq!(r.remaining(), 0);
        r.finish().unwrap();
    }

    #[test]
    fn short_input_is_unexpected_end_at_the_read_offset() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u8().unwrap(), 1);
        assert_eq!(r.u32(), Err(DecodeError::UnexpectedEnd { offset: 1, needed: 4 }));
        // A failed read consumes nothing.
        assert_eq!(r.remaining(), 2);
        assert_eq!(
            r.bytes(usize::MAX),
            Err(DecodeError::UnexpectedEnd { offset: 1, needed: usize::MAX })
        );
    }

    #[test]
    fn bool_accepts_only_zero_and_one() {
        assert!(!Reader::new(&[0]).bool().unwrap());
        assert_eq!(
            Reader::new(&[2]).bool(),
            Err(DecodeError::InvalidValue { offset: 0, what: "bool" })
        );
    }

    #[test]
    fn declared_length_beyond_input_is_rejected_without_allocating() {
        let mut input = u32::MAX.to_le_bytes().to_vec();
        input.extend_from_slice(&[9, 9]);
        assert_eq!(
            Reader::new(&input).byte_string(),
            Err(DecodeError::LengthTooLarge { offset: 0, declared: u32::MAX, limit: 2 })
        );
        let mut ok = 2u32.to_le_bytes().to_vec();
        ok.extend_from_slice(&[9, 9]);
        assert_eq!(Reader::new(&ok).byte_string().unwrap(), &[9, 9]);
        // 2 remaining bytes hold at most one 2-byte item.
        assert_eq!(
            Reader::new(&input).count(2),
            Err(DecodeError::LengthTooLarge { offset: 0, declared: u32::MAX, limit: 1 })
        );
    }

    #[test]
    fn finish_reports_trailing_bytes() {
        let mut r = Reader::new(&[1, 2, 3]);
        r.u8().unwrap();
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes { offset: 1, count: 2 }));
    }
}
