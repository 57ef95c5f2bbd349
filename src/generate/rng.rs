//! The run's random streams: every draw of step `k` (cutouts, augments, tile shifts) comes from
//! stream `k + 1` of a ChaCha8 generator seeded by `--seed`, and the start (init noise, random
//! codes, cells or spectrum) from stream 1, so a resumed run draws what a straight run draws.
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The per-step RNG: a pure function of (seed, step); step 0 is the start.
pub fn step_rng(seed: u64, step: i64) -> ChaCha8Rng {
    let mut s = ChaCha8Rng::seed_from_u64(seed);
    s.set_stream(step as u64 + 1);
    s
}

/// The style loss's draws at step `step` (its sample positions): streams of their own, above any
/// step's, so turning the loss on changes no other draw.
pub fn style_rng(seed: u64, step: i64) -> ChaCha8Rng {
    let mut s = ChaCha8Rng::seed_from_u64(seed);
    s.set_stream((1 << 48) + step as u64);
    s
}
