//! Any bytes through the transaction decoder: it must return, never panic, and an accepted
//! transaction must keep its exact bytes with the hash of them.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use mempulse_net::{CheckConfig, decode_tx};

fuzz_target!(|data: &[u8]| {
    let raw = Bytes::copy_from_slice(data);
    if let Ok(tx) = decode_tx(raw.clone(), &CheckConfig::default()) {
        assert_eq!(tx.raw, raw);
        assert_eq!(tx.encoded_size as usize, raw.len());
    }
    // A strict configuration walks the same paths with different verdicts.
    let strict = CheckConfig { allow_unprotected: false, chain_id: 5, ..CheckConfig::default() };
    let _ = decode_tx(raw, &strict);
});
