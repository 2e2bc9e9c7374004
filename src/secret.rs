//! A secret string (API key, hub token) that never prints: Debug and Display show `***`.

use std::fmt;

/// An API key or token. It prints as `***` (Debug and Display); [`Secret::expose`] is the only
/// way to read it, and callers use that only to fill an auth header.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself: for the auth header only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with the secret cut out (replaced by `***`).
    pub fn redact(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.0, "***")
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
