//! [`Username`]: the rules of Django's `UnicodeUsernameValidator`.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// Longest username, in characters (after NFKC normalisation), as in Django.
pub const MAX_USERNAME_CHARS: usize = 150;

/// A valid username: 1–150 characters, each a letter (any script), a digit or
/// one of `@ . + - _`, NFKC-normalised so that look-alike spellings compare
/// equal (`ｊｏｓé` and `josé` are the same user).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Username(String);

/// Why a string is not a [`Username`]. The `Display` text is shown to users.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    /// Nothing was given.
    #[error("This field is required.")]
    Empty,
    /// More than [`MAX_USERNAME_CHARS`] characters.
    #[error("Ensure this value has at most 150 characters (it has {0}).")]
    TooLong(usize),
    /// A character outside letters, digits and `@ . + - _`.
    #[error(
        "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."
    )]
    InvalidCharacter,
}

impl Username {
    /// Normalises (NFKC) and checks `raw`. This is the only way to make one.
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        let normalized: String = raw.nfkc().collect();
        if normalized.is_empty() {
            return Err(UsernameError::Empty);
        }
        let chars = normalized.chars().count();
        if chars > MAX_USERNAME_CHARS {
            return Err(UsernameError::TooLong(chars));
        }
        if !normalized.chars().all(is_username_char) {
            return Err(UsernameError::InvalidCharacter);
        }
        Ok(Self(normalized))
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Python's `\w` (letters, digits, `_` in any script) plus `@ . + -`.
fn is_username_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '@' | '.' | '+' | '-' | '_')
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Username({:?})", self.0)
    }
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for Username {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Username::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_but_valid_names_are_accepted() {
        for name in ["a.b", "josé", "1e3", "true", "@x", "日本語", "a+b-c_d", "ω"] {
            assert_eq!(Username::parse(name).unwrap().as_str(), name, "{name}");
        }
    }

    #[test]
    fn names_are_nfkc_normalised_before_checking_and_comparing() {
        let wide = Username::parse("ｊｏｓé").unwrap();
        assert_eq!(wide, Username::parse("josé").unwrap());
        // U+FB01 LATIN SMALL LIGATURE FI becomes "fi".
        assert_eq!(Username::parse("\u{FB01}x").unwrap().as_str(), "fix");
    }

    #[test]
    fn invalid_names_are_rejected_with_a_message() {
        assert_eq!(Username::parse(""), Err(UsernameError::Empty));
        for bad in [
            "a b", "<script>", "a/b", "x\u{0}", "tab\t", "quote\"", "a'b", "é!",
        ] {
            assert_eq!(
                Username::parse(bad),
                Err(UsernameError::InvalidCharacter),
                "{bad:?}"
            );
        }
        assert_eq!(
            Username::parse(&"a".repeat(151)),
            Err(UsernameError::TooLong(151))
        );
        assert!(Username::parse(&"é".repeat(150)).is_ok());
        assert!(
            UsernameError::InvalidCharacter
                .to_string()
                .contains("@/./+/-/_")
        );
    }

    #[test]
    fn length_is_counted_in_characters_after_normalisation() {
        // 75 ligatures expand to 150 characters: still valid; 76 do not.
        assert!(Username::parse(&"\u{FB01}".repeat(75)).is_ok());
        assert_eq!(
            Username::parse(&"\u{FB01}".repeat(76)),
            Err(UsernameError::TooLong(152))
        );
    }
}
