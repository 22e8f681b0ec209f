//! SHA-256 over canonical encodings: [`Digest::sha256`], [`Digest::of`] and [`DigestWriter`].

use sha2::{
    Digest as _,
    digest::{consts::U64, generic_array::GenericArray},
};

use crate::Digest;
use crate::codec::Encode;

/// SHA-256's initial hash value (FIPS 180-4, 5.3.3).
const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// Longest input [`Digest::sha256`] pads itself: two blocks hold it, its `0x80` byte and its
/// 8-byte length.
const SHORT_INPUT_MAX: usize = 2 * 64 - 1 - 8;

impl Digest {
    /// SHA-256 of `bytes`.
    ///
    /// Inputs of at most 119 bytes (the replayer's commitment entries and digest headers, one
    /// or two hashes per event) are padded here and go straight to the compression function:
    /// the streaming hasher's buffering and finalization cost as much as a compression block
    /// on such inputs. Same output (a unit test compares every length around the block
    /// boundaries with the streaming hasher).
    #[must_use]
    pub fn sha256(bytes: &[u8]) -> Self {
        if bytes.len() <= SHORT_INPUT_MAX {
            return Self::sha256_short(bytes);
        }
        Self(sha2::Sha256::digest(bytes).into())
    }

    /// SHA-256 of at most [`SHORT_INPUT_MAX`] bytes, padded by hand (FIPS 180-4, 5.1.1).
    fn sha256_short(bytes: &[u8]) -> Self {
        let len = bytes.len().min(SHORT_INPUT_MAX);
        let mut blocks = [GenericArray::<u8, U64>::default(); 2];
        let (first, second) = bytes[..len].split_at(len.min(64));
        blocks[0][..first.len()].copy_from_slice(first);
        blocks[1][..second.len()].copy_from_slice(second);
        blocks[len / 64][len % 64] = 0x80;
        // One block when the input, the 0x80 byte and the length fit in 64 bytes.
        let used = if len < 56 { 1 } else { 2 };
        blocks[used - 1][56..].copy_from_slice(&((len as u64) * 8).to_be_bytes());
        let mut state = SHA256_IV;
        // One call for both blocks: the state stays in registers between them.
        sha2::compress256(&mut state, &blocks[..used]);
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        Self(out)
    }

    /// SHA-256 of the canonical encoding of `value` (see [`crate::codec`]).
    #[must_use]
    pub fn of<T: Encode + ?Sized>(value: &T) -> Self {
        let mut w = DigestWriter::new();
        w.update_encoded(value);
        w.finish()
    }
}

/// A SHA-256 chaining value: the state after compressing whole 64-byte blocks, with no padding.
///
/// For hashes of fixed-length inputs made of whole blocks, where SHA-256's final length block
/// adds nothing: the replayer's commitment hashes each 64-byte entry with one compression from
/// the chaining value after a block naming the entry's kind, half the work of `Digest::sha256`
/// on the 62–65-byte entries it replaced (which padded to two blocks). Not SHA-256 of the same
/// bytes: [`Sha256Chain::digest`] is the raw chaining value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sha256Chain([u32; 8]);

impl Sha256Chain {
    /// SHA-256's initial value: nothing compressed yet.
    pub const INITIAL: Self = Self(SHA256_IV);

    /// The chaining value after compressing `block`.
    #[must_use]
    pub fn compress(self, block: &[u8; 64]) -> Self {
        let mut state = self.0;
        sha2::compress256(&mut state, core::slice::from_ref(GenericArray::from_slice(block)));
        Self(state)
    }

    /// The chaining value as 32 bytes (big-endian words, as a SHA-256 digest is written).
    #[must_use]
    pub fn digest(self) -> Digest {
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.0) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        Digest(out)
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
    fn short_inputs_hash_as_the_streaming_hasher_does() {
        let input: Vec<u8> = (0..=255u8).map(|b| b.wrapping_mul(151)).collect();
        for len in 0..=200 {
            let expected: [u8; 32] = sha2::Sha256::digest(&input[..len]).into();
            assert_eq!(Digest::sha256(&input[..len]).0, expected, "length {len}");
        }
    }

    #[test]
    fn a_chain_over_a_padded_block_is_sha256() {
        // "abc" padded by hand to one block: its chaining value is SHA-256("abc").
        let mut block = [0u8; 64];
        block[..3].copy_from_slice(b"abc");
        block[3] = 0x80;
        block[63] = 24;
        assert_eq!(Sha256Chain::INITIAL.compress(&block).digest(), Digest::sha256(b"abc"));
        let other = Sha256Chain::INITIAL.compress(&[7; 64]);
        assert_ne!(other.compress(&block), Sha256Chain::INITIAL.compress(&block));
    }

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
