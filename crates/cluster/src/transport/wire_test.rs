//! Round trips, truncations and arbitrary bytes for the wire protocol.
