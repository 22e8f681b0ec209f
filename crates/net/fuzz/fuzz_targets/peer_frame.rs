//! Any bytes, in any chunking, through the peer frame decoder: it must return, never panic,
//! decode the same frames whether fed whole or in chunks, and every frame it returns must
//! re-encode to exactly the bytes it came from.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mempulse_net::peer::{PeerFrame, PeerFrameDecoder, PeerFrameError};

const MAX: u32 = 64 * 1024;

fn decode(bytes: &[u8], chunk: usize) -> (Vec<PeerFrame>, Option<PeerFrameError>) {
    let mut decoder = PeerFrameDecoder::new(MAX);
    let mut frames = Vec::new();
    for piece in bytes.chunks(chunk) {
        decoder.extend(piece);
        assert!(decoder.buffered() <= 4 + MAX as usize + piece.len());
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(error) => return (frames, Some(error)),
            }
        }
    }
    (frames, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, bytes)) = data.split_first() else { return };
    let whole = decode(bytes, bytes.len().max(1));
    let chunked = decode(bytes, usize::from(chunk).max(1));
    assert_eq!(whole, chunked);
    let mut again = BytesMut::new();
    for frame in &whole.0 {
        frame.encode(&mut again, MAX).expect("a decoded frame encodes");
    }
    assert!(bytes.starts_with(&again));
});
