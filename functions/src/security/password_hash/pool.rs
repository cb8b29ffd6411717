//! Argon2id over a fixed pool of reusable memory blocks.
//!
//! Each hash needs 19 MiB of working memory. Allocating it per hash lets
//! glibc keep every freed 19 MiB area resident (its mmap threshold rises
//! after the first free), on every blocking thread that ever hashed: RSS
//! grew to 1.5 GB. Here the memory is allocated at most once per permit and
//! reused, so hashing holds at most `permits × 19 MiB`, whatever the load.
//!
//! Hashing and verifying with our parameters go through
//! [`Argon2::hash_password_into_with_memory`] with a pooled block; a stored
//! hash with other parameters (an older cost, say) falls back to argon2's
//! own verifier, which allocates.

use std::sync::Mutex;

use argon2::password_hash::PasswordVerifier as _;
use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq as _;

/// Memory cost in KiB (OWASP: 19 MiB).
pub(super) const M_COST_KIB: u32 = 19 * 1024;
/// Iterations (OWASP: 2).
pub(super) const T_COST: u32 = 2;
/// Lanes (OWASP: 1).
pub(super) const P_COST: u32 = 1;
/// Hash length in bytes (argon2's default).
const OUTPUT_LEN: usize = Params::DEFAULT_OUTPUT_LEN;
/// Salt length in bytes (the PHC format's recommendation).
const SALT_LEN: usize = Salt::RECOMMENDED_LENGTH;

/// One hash's working memory.
type Memory = Box<[Block]>;

/// Reusable Argon2 working memory: at most one block per permit is ever
/// allocated (callers take a block only while holding a permit).
pub(super) struct MemoryPool {
    free: Mutex<Vec<Memory>>,
}

impl MemoryPool {
    /// An empty pool; blocks are allocated on first use, so a cold Lambda
    /// that never hashes allocates nothing.
    pub(super) fn new() -> Self {
        Self {
            free: Mutex::new(Vec::new()),
        }
    }

    /// A block (a free one, or a new one), returned to the pool when the
    /// guard drops.
    fn take(&self) -> PooledMemory<'_> {
        let reused = self.free.lock().ok().and_then(|mut f| f.pop());
        let memory =
            reused.unwrap_or_else(|| vec![Block::new(); params().block_count()].into_boxed_slice());
        PooledMemory {
            pool: self,
            memory: Some(memory),
        }
    }

    /// How many blocks the pool holds now (allocated and free).
    #[cfg(test)]
    pub(super) fn free_blocks(&self) -> usize {
        self.free.lock().map(|f| f.len()).unwrap_or(0)
    }

    /// The PHC string of `password` with a fresh random salt.
    pub(super) fn hash(&self, password: &[u8]) -> Result<String, String> {
        let mut salt = [0u8; SALT_LEN];
        crate::security::random::fill(&mut salt);
        let mut out = [0u8; OUTPUT_LEN];
        self.compute(password, &salt, &mut out)?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params()).map_err(|e| e.to_string())?,
            salt: Some(Salt::new(&salt).map_err(|e| e.to_string())?),
            hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
        };
        Ok(phc.to_string())
    }

    /// Whether `password` matches the PHC string `phc`. Ours (Argon2id,
    /// v19, our m/t/p, 32-byte output, no key id or data) is computed with a
    /// pooled block and compared in constant time; any other well-formed
    /// Argon2 hash goes through argon2's verifier; garbage is `false`.
    pub(super) fn verify(&self, password: &[u8], phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        match ours(&parsed) {
            Some((salt, expected)) => {
                let mut out = [0u8; OUTPUT_LEN];
                self.compute(password, salt, &mut out).is_ok()
                    && bool::from(out.as_slice().ct_eq(expected))
            }
            None => argon2_default().verify_password(password, &parsed).is_ok(),
        }
    }

    fn compute(&self, password: &[u8], salt: &[u8], out: &mut [u8]) -> Result<(), String> {
        let mut memory = self.take();
        argon2_default()
            .hash_password_into_with_memory(password, salt, out, memory.blocks())
            .map_err(|e| e.to_string())
    }
}

/// A block on loan from the pool.
struct PooledMemory<'a> {
    pool: &'a MemoryPool,
    memory: Option<Memory>,
}

impl PooledMemory<'_> {
    fn blocks(&mut self) -> &mut [Block] {
        self.memory.as_deref_mut().unwrap_or_default()
    }
}

impl Drop for PooledMemory<'_> {
    fn drop(&mut self) {
        if let (Some(m), Ok(mut free)) = (self.memory.take(), self.pool.free.lock()) {
            free.push(m);
        }
    }
}

/// Salt and expected output of `phc` if it uses exactly our parameters.
fn ours(phc: &PasswordHash) -> Option<(&[u8], &[u8])> {
    let p = Params::try_from(phc).ok()?;
    let (salt, hash) = (phc.salt.as_ref()?, phc.hash.as_ref()?);
    let same = phc.algorithm == Algorithm::Argon2id.ident()
        && phc.version == Some(Version::V0x13.into())
        && (p.m_cost(), p.t_cost(), p.p_cost()) == (M_COST_KIB, T_COST, P_COST)
        && hash.len() == OUTPUT_LEN
        && p.keyid().is_empty()
        && p.data().is_empty();
    same.then(|| (salt.as_ref(), hash.as_bytes()))
}

fn params() -> Params {
    // These constants are valid Argon2 parameters.
    Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT_LEN)).unwrap_or_default()
}

fn argon2_default() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_hashes_verify_with_argon2s_own_verifier_and_back() {
        let pool = MemoryPool::new();
        let phc = pool.hash(b"correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        // argon2's allocating verifier agrees with the pooled hash…
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(
            argon2_default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        // …and the pooled verifier agrees with argon2's own hash.
        let theirs = argon2::password_hash::PasswordHasher::hash_password(
            &argon2_default(),
            b"battery staple",
        )
        .unwrap()
        .to_string();
        assert!(pool.verify(b"battery staple", &theirs));
        assert!(!pool.verify(b"battery stapler", &theirs));
        assert!(pool.verify(b"correct horse", &phc));
        assert!(!pool.verify(b"correct horsf", &phc));
        assert!(!pool.verify(b"x", "not a phc string"));
        // One block was ever allocated and it is back in the pool.
        assert_eq!(pool.free_blocks(), 1);
    }

    #[test]
    fn hashes_with_other_parameters_still_verify_through_the_fallback() {
        let cheap = Params::new(1024, 1, 1, None).unwrap();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, cheap);
        let phc = argon2::password_hash::PasswordHasher::hash_password(&argon, b"old cost")
            .unwrap()
            .to_string();
        assert!(phc.contains("m=1024,t=1,p=1"), "{phc}");
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(ours(&parsed).is_none());
        let pool = MemoryPool::new();
        assert!(pool.verify(b"old cost", &phc));
        assert!(!pool.verify(b"new cost", &phc));
        assert_eq!(pool.free_blocks(), 0, "the fallback does not use the pool");
    }
}
