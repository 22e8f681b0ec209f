//! Any bytes, in any chunking, through the stream frame decoder: it must return, never panic,
//! decode the same frames whether fed whole or in chunks, and every frame it returns must
//! re-encode to exactly the bytes it came from (`test_utils::check_any_bytes`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mempulse_net::{StreamFrame, test_utils::check_any_bytes};

const MAX: u32 = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, bytes)) = data.split_first() else { return };
    check_any_bytes::<StreamFrame>(MAX, bytes, &[usize::from(chunk)]);
});
