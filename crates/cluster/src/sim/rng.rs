//! The simulation's own random streams: `SplitMix64`, seeded from the run's seed and a stream
//! name, so the network, the disks, the clients and the fault schedule each draw from their
//! own reproducible sequence (adding a draw to one never shifts another).

/// A `SplitMix64` generator (public-domain constants by Sebastiano Vigna).
#[derive(Clone, Debug)]
pub(crate) struct SimRng {
    state: u64,
}

impl SimRng {
    /// The stream `stream` of the run seeded with `seed`.
    pub(crate) const fn new(seed: u64, stream: u64) -> Self {
        Self { state: seed ^ stream.wrapping_mul(0xD6E8_FEB8_6659_FD93) }
    }

    /// The next 64 random bits.
    pub(crate) const fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (0 for `n == 0`); the slight modulo bias does not matter here.
    pub(crate) const fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// A value in `lo..=hi` (`lo` when `hi < lo`).
    pub(crate) const fn between(&mut self, lo: u64, hi: u64) -> u64 {
        if hi < lo { lo } else { lo + self.below(hi - lo + 1) }
    }

    /// `true` with probability `per_mille / 1000`.
    pub(crate) const fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

#[cfg(test)]
mod tests {
    use super::SimRng;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let draw = |seed, stream| {
            let mut rng = SimRng::new(seed, stream);
            (0..8).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7, 1), draw(7, 1));
        assert_ne!(draw(7, 1), draw(7, 2));
        assert_ne!(draw(7, 1), draw(8, 1));
        let mut rng = SimRng::new(1, 1);
        for _ in 0..1000 {
            assert!((3..=5).contains(&rng.between(3, 5)));
            assert!(rng.below(4) < 4);
        }
    }
}
