//! Closed enums with stable wire codes and stable names: reasons, lanes, subpools, sources.
//!
//! Every enum here is stored in the log and used as a metric label, so its codes and names are
//! part of the format: never renumber or rename a variant, only add new ones at new codes.

/// Defines a closed enum with a stable `u8` wire code and a stable `as_str` name.
macro_rules! coded_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $code:literal => $text:literal, )+ }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in code order.
            pub const ALL: &'static [Self] = &[ $( Self::$variant, )+ ];

            /// Stable wire code.
            #[must_use]
            pub const fn code(self) -> u8 {
                match self { $( Self::$variant => $code, )+ }
            }

            /// Parses a stable wire code.
            #[must_use]
            pub const fn from_code(code: u8) -> Option<Self> {
                match code { $( $code => Some(Self::$variant), )+ _ => None }
            }

            /// Stable snake-case name (log output, API, metric labels).
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self { $( Self::$variant => $text, )+ }
            }

            /// Parses a stable name.
            #[must_use]
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $( $text => Some(Self::$variant), )+ _ => None }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        #[cfg(feature = "serde")]
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}
pub(crate) use coded_enum;

coded_enum!(
    /// Why a transaction was not admitted to the pool. Rejections are facts, not errors.
    RejectReason {
        /// Already in the pool.
        Duplicate = 1 => "duplicate",
        /// In the recently-committed cache.
        AlreadyCommitted = 2 => "already_committed",
        /// Nonce below the sender's committed nonce.
        NonceTooLow = 3 => "nonce_too_low",
        /// Nonce further ahead of the sender's next nonce than the allowed window.
        NonceGapTooLarge = 4 => "nonce_gap_too_large",
        /// Gas limit above the maximum block gas.
        GasLimitTooHigh = 5 => "gas_limit_too_high",
        /// Encoded size above the maximum transaction bytes.
        TxTooLarge = 6 => "tx_too_large",
        /// Fee below the pool minimum.
        FeeTooLow = 7 => "fee_too_low",
        /// Sender already holds its maximum number of slots.
        SenderSlotsFull = 8 => "sender_slots_full",
        /// Pool full and the transaction is not good enough to evict anyone.
        PoolFull = 9 => "pool_full",
        /// Same sender and nonce with a fee bump below the configured percent.
        ReplacementUnderpriced = 10 => "replacement_underpriced",
        /// Signature invalid or not recoverable.
        InvalidSignature = 11 => "invalid_signature",
        /// Chain id does not match the node's.
        WrongChainId = 12 => "wrong_chain_id",
        /// Gas limit below the intrinsic gas of the transaction.
        IntrinsicGasTooLow = 13 => "intrinsic_gas_too_low",
        /// Fee fields inconsistent (priority fee above max fee).
        FeeFieldsInconsistent = 14 => "fee_fields_inconsistent",
        /// Signature `s` value in the upper half of the curve order.
        HighS = 15 => "high_s",
        /// A reopened transaction conflicts with the post-reorg state.
        ReorgConflict = 16 => "reorg_conflict",
    }
);

coded_enum!(
    /// Why an ingest lane dropped a transaction before it reached the pool.
    DropReason {
        /// The lane's bounded queue was full.
        QueueFull = 1 => "queue_full",
        /// The request or frame exceeded the size limit.
        Oversize = 2 => "oversize",
        /// The bytes did not decode as a transaction.
        DecodeFailed = 3 => "decode_failed",
        /// Seen recently by the dedup cache.
        Duplicate = 4 => "duplicate",
        /// The source exceeded its rate limit.
        Throttled = 5 => "throttled",
        /// The node was shutting down.
        ShuttingDown = 6 => "shutting_down",
    }
);

coded_enum!(
    /// Why a transaction left the pool without being included.
    EvictReason {
        /// Displaced by a better transaction while the pool was full.
        PoolFull = 1 => "pool_full",
        /// Its nonce fell below the sender's committed nonce after a commit.
        Stale = 2 => "stale",
        /// Older than the time-to-live in heights.
        Expired = 3 => "expired",
        /// Its sender's chain broke and it can no longer become pending.
        SenderReset = 4 => "sender_reset",
    }
);

coded_enum!(
    /// Ingest lane a transaction arrived on.
    Lane {
        /// JSON-RPC (`eth_sendRawTransaction`).
        Rpc = 1 => "rpc",
        /// REST (`POST /v1/txs`).
        Rest = 2 => "rest",
        /// Node-to-node or tx-source stream.
        Stream = 3 => "stream",
    }
);

coded_enum!(
    /// Which part of the pool a transaction sits in.
    Subpool {
        /// Contiguous from the sender's committed nonce: buildable.
        Pending = 1 => "pending",
        /// Waiting for a nonce gap to close.
        Queued = 2 => "queued",
    }
);

coded_enum!(
    /// Why a node fenced itself.
    FenceReason {
        /// Enough peers disagreed with this node's state root.
        Divergence = 1 => "divergence",
        /// An operator fenced the node.
        Operator = 2 => "operator",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    fn check<T: Copy + PartialEq + core::fmt::Debug>(
        all: &[T],
        code: impl Fn(T) -> u8,
        from_code: impl Fn(u8) -> Option<T>,
        name: impl Fn(T) -> &'static str,
        from_name: impl Fn(&str) -> Option<T>,
    ) {
        let mut names = std::collections::BTreeSet::new();
        for &v in all {
            assert_eq!(from_code(code(v)), Some(v));
            assert_eq!(from_name(name(v)), Some(v));
            assert!(names.insert(name(v)), "duplicate name {}", name(v));
        }
        assert_eq!(from_code(0), None);
    }

    #[test]
    fn codes_and_names_round_trip() {
        check(
            RejectReason::ALL,
            RejectReason::code,
            RejectReason::from_code,
            RejectReason::as_str,
            RejectReason::from_name,
        );
        check(
            DropReason::ALL,
            DropReason::code,
            DropReason::from_code,
            DropReason::as_str,
            DropReason::from_name,
        );
        check(
            EvictReason::ALL,
            EvictReason::code,
            EvictReason::from_code,
            EvictReason::as_str,
            EvictReason::from_name,
        );
        check(Lane::ALL, Lane::code, Lane::from_code, Lane::as_str, Lane::from_name);
        check(Subpool::ALL, Subpool::code, Subpool::from_code, Subpool::as_str, Subpool::from_name);
        check(
            FenceReason::ALL,
            FenceReason::code,
            FenceReason::from_code,
            FenceReason::as_str,
            FenceReason::from_name,
        );
    }
}
