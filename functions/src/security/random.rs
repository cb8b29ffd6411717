//! Random bytes from the operating system.

/// Fills `buf` from the OS CSPRNG.
///
/// # Panics
/// If the operating system cannot provide randomness: there is no safe way
/// to issue a session or a CSRF token without it.
pub fn fill(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the OS random number generator failed");
}
