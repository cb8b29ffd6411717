//! Security mechanisms, each small and testable on its own.
//!
//! * [`password_hash`] — Argon2id (OWASP parameters) on blocking threads.
//! * [`csrf`] — double-submit CSRF tokens, masked per form (BREACH-safe).
//! * [`cookies`] — reading `Cookie` and writing `Set-Cookie` headers.
//! * [`origin`] — the `Origin` allow-list for forms and WebSockets.
//! * [`random`] — the OS CSPRNG.

pub mod cookies;
pub mod csrf;
pub mod origin;
pub mod password_hash;
pub mod random;

pub use password_hash::PasswordHasher;
