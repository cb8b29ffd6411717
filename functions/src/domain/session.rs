//! [`SessionToken`] (the bearer secret a client holds) and [`SessionKey`]
//! (what the store keeps: a SHA-256 of the token, so a copy of the store does
//! not hand out live sessions).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Length of an encoded token: 32 random bytes in unpadded base64url.
const TOKEN_CHARS: usize = 43;

/// A session token: 256 random bits, base64url. Redacted in `Debug`.
#[derive(Clone)]
pub struct SessionToken(SecretString);

/// The string is not a token this server could have issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed session token")]
pub struct SessionTokenError;

impl SessionToken {
    /// A fresh random token from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        crate::security::random::fill(&mut bytes);
        Self(SecretString::from(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Accepts exactly the shape [`SessionToken::generate`] produces.
    pub fn parse(raw: &str) -> Result<Self, SessionTokenError> {
        let ok = raw.len() == TOKEN_CHARS
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(SecretString::from(raw.to_owned())))
        } else {
            Err(SessionTokenError)
        }
    }

    /// The secret itself, to put in a cookie or a JSON reply.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The store key for this token.
    pub fn key(&self) -> SessionKey {
        let digest = Sha256::digest(self.0.expose_secret().as_bytes());
        SessionKey(hex(&digest))
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken([REDACTED])")
    }
}

/// The SHA-256 (hex) of a [`SessionToken`]: how stores name a session. Not a
/// secret by itself (it cannot be turned back into the token).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey(String);

impl SessionKey {
    /// Accepts the 64 lowercase hex digits a store hands back.
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == 64 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Self(raw.to_owned()))
    }

    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_hash_to_a_stable_key() {
        let t = SessionToken::generate();
        let again = SessionToken::parse(t.expose()).unwrap();
        assert_eq!(t.key(), again.key());
        assert_eq!(SessionKey::parse(t.key().as_str()), Some(t.key()));
        assert_ne!(t.key(), SessionToken::generate().key());
        assert_eq!(format!("{t:?}"), "SessionToken([REDACTED])");
    }

    #[test]
    fn anything_else_is_not_a_token() {
        for bad in [
            "",
            "abc",
            &"a".repeat(44),
            &format!("{}=", "a".repeat(42)),
            &"é".repeat(22),
        ] {
            assert!(SessionToken::parse(bad).is_err(), "{bad}");
        }
    }
}
