//! SHA-256 over canonical encodings: [`Digest::sha256`], [`Digest::of`] and [`DigestWriter`].

use sha2::Digest as _;

use crate::Digest;
use crate::codec::Encode;

impl Digest {
    /// SHA-256 of `bytes`.
    #[must_use]
    pub fn sha256(bytes: &[u8]) -> Self {
        Self(sha2::Sha256::digest(bytes).into())
    }

    /// SHA-256 of the canonical encoding of `value` (see [`crate::codec`]).
    #[must_use]
    pub fn of<T: Encode + ?Sized>(value: &T) -> Self {
        let mut w = DigestWriter::new();
        w.update_encoded(value);
        w.finish()
    }
}

/// Incremental SHA-256: feed bytes or encodable values, then [`DigestWriter::finish`].
///
/// Feeding `a` then `b` gives the same digest as feeding their concatenation: callers that hash a
/// sequence of values must make the sequence self-delimiting (the canonical encodings of schema
/// types are, because lengths are prefixed).
#[derive(Debug, Clone, Default)]
pub struct DigestWriter {
    hasher: sha2::Sha256,
    /// Reused encoding buffer for [`DigestWriter::update_encoded`].
    scratch: Vec<u8>,
}

impl DigestWriter {
    /// A writer that has hashed nothing yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds raw bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
    }

    /// Feeds the canonical encoding of `value`.
    pub fn update_encoded<T: Encode + ?Sized>(&mut self, value: &T) {
        self.scratch.clear();
        value.encode(&mut self.scratch);
        self.hasher.update(&self.scratch);
    }

    /// The digest of everything fed so far.
    #[must_use]
    pub fn finish(self) -> Digest {
        Digest(self.hasher.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Height;

    #[test]
    fn sha256_matches_the_standard_test_vector() {
        // FIPS 180-2 example: SHA-256("abc").
        let expected = "0xba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(Digest::sha256(b"abc").to_string(), expected);
    }

    #[test]
    fn incremental_equals_one_shot_and_of_hashes_the_encoding() {
        let mut w = DigestWriter::new();
        w.update(b"a");
        w.update(b"bc");
        assert_eq!(w.finish(), Digest::sha256(b"abc"));
        assert_eq!(Digest::of(&Height(1)), Digest::sha256(&1u64.to_le_bytes()));
        let mut w = DigestWriter::new();
        w.update_encoded(&Height(1));
        w.update_encoded(&Height(2));
        let mut both = 1u64.to_le_bytes().to_vec();
        both.extend_from_slice(&2u64.to_le_bytes());
        assert_eq!(w.finish(), Digest::sha256(&both));
    }
}
