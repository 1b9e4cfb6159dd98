//! A string that holds a secret. Its `Debug` and `Display` never print the value.

use std::fmt;
use std::sync::Arc;

/// A secret string. Cheap to clone; shows as `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(Arc<str>);

impl Redacted {
    /// Wraps a secret value.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call only where it leaves the process on purpose
    /// (an HTTP header, a DynamoDB attribute).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::Redacted;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let r = Redacted::new("hunter2-token");
        assert_eq!(format!("{r:?}"), "[redacted]");
        assert_eq!(r.to_string(), "[redacted]");
        assert_eq!(r.expose(), "hunter2-token");
    }
}
