//! The one place randomness comes from: the operating system's CSPRNG.
//!
//! Why: a vault that silently falls back to a weak generator is worse than one that stops. If the OS cannot give
//! us random bytes we abort rather than continue with predictable keys or nonces.

/// Fills `buf` from the OS CSPRNG. Panics if the OS refuses: there is no safe way to continue without it.
pub fn fill(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}

/// `N` random bytes.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    fill(&mut b);
    b
}

/// A uniformly random integer in `0..bound` (rejection sampling, no modulo bias). `bound` must be non-zero.
pub fn below(bound: u32) -> u32 {
    assert!(bound > 0, "below(0)");
    let zone = u32::MAX - (u32::MAX % bound);
    loop {
        let v = u32::from_le_bytes(bytes::<4>());
        if v < zone {
            return v % bound;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut seen = [false; 7];
        for _ in 0..2000 {
            let v = super::below(7) as usize;
            assert!(v < 7);
            seen[v] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn successive_draws_differ() {
        assert_ne!(super::bytes::<32>(), super::bytes::<32>());
    }
}
