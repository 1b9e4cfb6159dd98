//! Configuration from environment variables, with one clear error per missing
//! or invalid value.

use std::fmt;

/// One missing or invalid variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    Missing {
        /// The variable's name.
        var: &'static str,
        /// What it is for, so the message says how to fix it.
        what: &'static str,
    },
    /// A variable is set to something unusable.
    Invalid {
        /// The variable's name.
        var: &'static str,
        /// The value as given (configuration, never a secret).
        value: String,
        /// Why it is unusable.
        reason: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { var, what } => write!(f, "{var} is not set: {what}"),
            Self::Invalid { var, value, reason } => {
                write!(f, "{var}={value:?} is invalid: {reason}")
            }
        }
    }
}

/// Every problem found, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration:")?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

/// Reads variables through `get` (the process environment in production).
pub struct Env<F: Fn(&str) -> Option<String>> {
    get: F,
    errors: Vec<ConfigError>,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// Reads through `get`, e.g. `|k| std::env::var(k).ok()`.
    pub fn new(get: F) -> Self {
        Self {
            get,
            errors: Vec::new(),
        }
    }

    fn value(&self, var: &str) -> Option<String> {
        (self.get)(var)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// A required string; records an error when unset.
    pub fn required(&mut self, var: &'static str, what: &'static str) -> String {
        self.value(var).unwrap_or_else(|| {
            self.errors.push(ConfigError::Missing { var, what });
            String::new()
        })
    }

    /// An optional string (unset and empty are the same).
    pub fn optional(&self, var: &'static str) -> Option<String> {
        self.value(var)
    }

    /// A whole number in `range`, `default` when unset.
    pub fn number(
        &mut self,
        var: &'static str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> u64 {
        let Some(raw) = self.value(var) else {
            return default;
        };
        match raw.parse::<u64>() {
            Ok(v) if range.contains(&v) => v,
            _ => {
                self.errors.push(ConfigError::Invalid {
                    var,
                    value: raw,
                    reason: format!(
                        "expected a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ),
                });
                default
            }
        }
    }

    /// Records an invalid value found by the caller's own check.
    pub fn invalid(&mut self, var: &'static str, value: String, reason: String) {
        self.errors
            .push(ConfigError::Invalid { var, value, reason });
    }

    /// Records errors found by a nested reader.
    pub fn extend(&mut self, errors: ConfigErrors) {
        self.errors.extend(errors.0);
    }

    /// `value` if nothing was wrong, else every error found.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(ConfigErrors(self.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_once_each() {
        let get = |k: &str| match k {
            "SET" => Some(" value ".to_string()),
            "EMPTY" => Some("  ".to_string()),
            "BIG" => Some("99".to_string()),
            "WORD" => Some("ten".to_string()),
            _ => None,
        };
        let mut env = Env::new(get);
        assert_eq!(env.required("SET", "x"), "value");
        assert_eq!(env.optional("EMPTY"), None);
        assert_eq!(env.required("UNSET", "the thing"), "");
        assert_eq!(env.number("BIG", 1, 1..=10), 1);
        assert_eq!(env.number("WORD", 2, 1..=10), 2);
        assert_eq!(env.number("UNSET2", 3, 1..=10), 3);
        let e = env.finish(()).expect_err("three problems");
        assert_eq!(e.0.len(), 3);
        let text = e.to_string();
        assert!(text.contains("UNSET is not set: the thing"), "{text}");
        assert!(text.contains("BIG=\"99\" is invalid"), "{text}");
        assert!(Env::new(|_| None).finish(7) == Ok(7));
    }
}
