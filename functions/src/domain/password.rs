//! [`Password`]: Django's default password validators, applied at parse time.

use secrecy::{ExposeSecret, SecretString};

use super::Username;

/// Shortest acceptable password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest accepted password, in bytes: bounds the work one request can ask of
/// the hasher.
pub const MAX_PASSWORD_BYTES: usize = 4096;

/// A new password that passed every rule. It never appears in `Debug` output
/// or logs; only [`crate::security::PasswordHasher`] looks inside.
pub struct Password(SecretString);

/// Why a candidate password is refused. Several can apply at once; the
/// `Display` texts are Django's and are shown to users.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Nothing was given.
    #[error("This field is required.")]
    Empty,
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters.
    #[error("This password is too short. It must contain at least 8 characters.")]
    TooShort,
    /// More than [`MAX_PASSWORD_BYTES`] bytes.
    #[error("This password is too long. It must contain at most 4096 bytes.")]
    TooLong,
    /// Only digits.
    #[error("This password is entirely numeric.")]
    EntirelyNumeric,
    /// Equal (ignoring case) to the username.
    #[error("The password is too similar to the username.")]
    SimilarToUsername,
}

impl Password {
    /// Checks `raw` against every rule and returns all that fail, in a stable
    /// order, so a form can show them together.
    pub fn parse(raw: &str, username: Option<&Username>) -> Result<Self, Vec<PasswordError>> {
        if raw.is_empty() {
            return Err(vec![PasswordError::Empty]);
        }
        let mut errors = Vec::new();
        if raw.len() > MAX_PASSWORD_BYTES {
            errors.push(PasswordError::TooLong);
        } else if raw.chars().count() < MIN_PASSWORD_CHARS {
            errors.push(PasswordError::TooShort);
        }
        if raw.chars().all(|c| c.is_numeric()) {
            errors.push(PasswordError::EntirelyNumeric);
        }
        if let Some(name) = username
            && raw.to_lowercase() == name.as_str().to_lowercase()
        {
            errors.push(PasswordError::SimilarToUsername);
        }
        if errors.is_empty() {
            Ok(Self(SecretString::from(raw.to_owned())))
        } else {
            Err(errors)
        }
    }

    /// The clear text, for the hasher only.
    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reasonable_password_is_accepted_and_never_printed() {
        let p = Password::parse("correct horse", None).unwrap();
        assert_eq!(format!("{p:?}"), "Password([REDACTED])");
    }

    #[test]
    fn weak_passwords_are_refused_with_every_reason() {
        assert_eq!(
            Password::parse("1234", None).unwrap_err(),
            vec![PasswordError::TooShort, PasswordError::EntirelyNumeric]
        );
        assert_eq!(
            Password::parse("", None).unwrap_err(),
            vec![PasswordError::Empty]
        );
        let name = Username::parse("Marguerite").unwrap();
        assert_eq!(
            Password::parse("marguerite", Some(&name)).unwrap_err(),
            vec![PasswordError::SimilarToUsername]
        );
        assert_eq!(
            Password::parse(&"x".repeat(5000), None).unwrap_err(),
            vec![PasswordError::TooLong]
        );
    }
}
