//! Random bytes from the operating system.

/// Fills `buf` from the OS CSPRNG.
///
/// # Panics
/// If the operating system cannot provide randomness: there is no safe way
/// to issue a session or a CSRF token without it.
pub fn fill(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the OS random number generator failed");
}

/// A random `u64` from the OS CSPRNG.
pub fn u64() -> u64 {
    let mut b = [0u8; 8];
    fill(&mut b);
    u64::from_le_bytes(b)
}
