//! [`ConnectionId`]: names one WebSocket connection, API Gateway's or ours.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A WebSocket connection id: 1–128 characters of base64/base64url
/// (API Gateway's look like `L0SM9cOFvHcCIhw=`; the local server makes 22
/// random base64url characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ConnectionId(String);

impl<'de> serde::Deserialize<'de> for ConnectionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        ConnectionId::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// The string cannot be a connection id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed connection id")]
pub struct ConnectionIdError;

impl ConnectionId {
    /// Checks the shape; anything that could break a key or a URL is refused.
    pub fn parse(raw: &str) -> Result<Self, ConnectionIdError> {
        let ok = (1..=128).contains(&raw.len())
            && raw.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_')
            });
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ConnectionIdError)
        }
    }

    /// A fresh random id (128 bits) for a locally accepted socket.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        crate::security::random::fill(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_gateway_and_local_ids_parse() {
        assert!(ConnectionId::parse("L0SM9cOFvHcCIhw=").is_ok());
        let local = ConnectionId::generate();
        assert_eq!(ConnectionId::parse(local.as_str()), Ok(local));
    }

    #[test]
    fn ids_that_could_break_keys_are_refused() {
        for bad in ["", "a b", "a:b", "../x", &"a".repeat(129)] {
            assert!(ConnectionId::parse(bad).is_err(), "{bad}");
        }
    }
}
