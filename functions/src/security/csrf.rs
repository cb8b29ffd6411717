//! CSRF protection for the HTML forms (Django's scheme).
//!
//! A random secret lives in the `csrftoken` cookie (HttpOnly, SameSite=Lax);
//! every form embeds a *masked* copy (`mask ‖ mask⊕secret`, fresh per render,
//! so compressed pages leak nothing: BREACH). A POST is accepted only if the
//! form's token unmasks to the cookie's secret. A cross-site page can neither
//! read the cookie nor a rendered form, so it cannot forge the pair. The
//! `Origin` check in [`super::origin`] is a second, independent line.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

/// Name of the cookie holding the secret.
pub const COOKIE: &str = "csrftoken";
/// Name of the hidden form field holding the masked token.
pub const FIELD: &str = "csrfmiddlewaretoken";

const LEN: usize = 32;

/// The per-browser CSRF secret.
#[derive(Clone, PartialEq, Eq)]
pub struct CsrfSecret([u8; LEN]);

impl CsrfSecret {
    /// A fresh secret.
    pub fn generate() -> Self {
        let mut b = [0u8; LEN];
        super::random::fill(&mut b);
        Self(b)
    }

    /// Reads the cookie value; `None` if it is not one of ours.
    pub fn from_cookie(value: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// The cookie value.
    pub fn cookie_value(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// A masked token for one form.
    pub fn form_token(&self) -> String {
        let mut mask = [0u8; LEN];
        super::random::fill(&mut mask);
        let mut out = Vec::with_capacity(2 * LEN);
        out.extend_from_slice(&mask);
        out.extend(mask.iter().zip(self.0.iter()).map(|(m, s)| m ^ s));
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Whether a submitted form token belongs to this secret (constant time).
    pub fn verify(&self, form_token: &str) -> bool {
        let Ok(raw) = URL_SAFE_NO_PAD.decode(form_token) else {
            return false;
        };
        if raw.len() != 2 * LEN {
            return false;
        }
        let (mask, masked) = raw.split_at(LEN);
        let unmasked: Vec<u8> = mask.iter().zip(masked).map(|(m, x)| m ^ x).collect();
        unmasked.ct_eq(&self.0).into()
    }
}

impl std::fmt::Debug for CsrfSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfSecret([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_tokens_differ_per_render_but_all_verify() {
        let s = CsrfSecret::generate();
        let (a, b) = (s.form_token(), s.form_token());
        assert_ne!(a, b);
        assert!(s.verify(&a) && s.verify(&b));
        let back = CsrfSecret::from_cookie(&s.cookie_value()).unwrap();
        assert!(back.verify(&a));
    }

    #[test]
    fn tokens_of_another_secret_or_garbage_fail() {
        let s = CsrfSecret::generate();
        assert!(!s.verify(&CsrfSecret::generate().form_token()));
        assert!(!s.verify(""));
        assert!(!s.verify("!!!"));
        assert!(!s.verify(&s.cookie_value()));
        assert!(CsrfSecret::from_cookie("short").is_none());
    }
}
