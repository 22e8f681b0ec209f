//! Identifier and counter newtypes.
//!
//! An index, a count and a size are different things (`TIGER_STYLE.md`, "Off-By-One"): every
//! integer that names a position in some sequence gets its own type so the compiler keeps them
//! apart.

use core::fmt;

macro_rules! u64_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u64);

        impl $name {
            /// The zero value.
            pub const ZERO: Self = Self(0);

            /// The raw integer.
            #[must_use]
            pub const fn get(self) -> u64 {
                self.0
            }

            /// The next value, or `None` on overflow.
            #[must_use]
            pub const fn checked_next(self) -> Option<Self> {
                match self.0.checked_add(1) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl From<u64> for $name {
            fn from(v: u64) -> Self {
                Self(v)
            }
        }

        #[cfg(feature = "serde")]
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_u64(self.0)
            }
        }
    };
}

u64_newtype!(
    /// Position of a record in a log: assigned by the single writer, strictly increasing and
    /// gapless. The first record of a fresh log has seq 1; seq 0 means "before everything".
    Seq
);
u64_newtype!(
    /// Index of an entry in a Raft log.
    RaftIndex
);
u64_newtype!(
    /// Block height.
    Height
);
u64_newtype!(
    /// Account nonce of a transaction sender.
    Nonce
);
u64_newtype!(
    /// Identifier of one mempulse node (a Raft member).
    NodeId
);
u64_newtype!(
    /// Identifier of one validator (one Raft cluster of nodes).
    ValidatorId
);
u64_newtype!(
    /// Milliseconds since the Unix epoch. Recorded for analysis only: never used for ordering,
    /// and never read from a clock inside a pure crate (it is an input).
    UnixMillis
);

macro_rules! bytes_newtype {
    ($(#[$meta:meta])* $name:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// The raw bytes.
            #[must_use]
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Parses `0x`-prefixed or bare hex of exactly the right length.
            ///
            /// # Errors
            /// [`crate::ParseHexError`] when the text is not hex or has the wrong length.
            pub fn from_hex(s: &str) -> Result<Self, crate::ParseHexError> {
                let body = s.strip_prefix("0x").unwrap_or(s);
                let mut out = [0u8; $len];
                hex::decode_to_slice(body, &mut out).map_err(|_| crate::ParseHexError {
                    expected_len: $len,
                    got_chars: body.len(),
                })?;
                Ok(Self(out))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("0x")?;
                for b in &self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl From<[u8; $len]> for $name {
            fn from(v: [u8; $len]) -> Self {
                Self(v)
            }
        }

        #[cfg(feature = "serde")]
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

bytes_newtype!(
    /// Keccak-256 hash of a transaction's EIP-2718 encoding.
    TxHash,
    32
);
bytes_newtype!(
    /// A 20-byte account address.
    Address,
    20
);
bytes_newtype!(
    /// A SHA-256 digest of a canonical encoding (state digests, state roots, checkpoints).
    Digest,
    32
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let h = TxHash([0xab; 32]);
        let text = h.to_string();
        assert!(text.starts_with("0xabab"));
        assert_eq!(TxHash::from_hex(&text).unwrap(), h);
        assert!(TxHash::from_hex("0x12").is_err());
        assert!(Address::from_hex("zz").is_err());
    }

    #[test]
    fn checked_next_overflows_to_none() {
        assert_eq!(Seq(1).checked_next(), Some(Seq(2)));
        assert_eq!(Seq(u64::MAX).checked_next(), None);
    }
}
