use super::Location;
use std::fmt;

/// A configuration error that names where it is and, when we know one, how to fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ConfigError {
    pub loc: Option<Location>,
    pub message: String,
    pub hint: Option<String>,
}

impl ConfigError {
    pub fn new(loc: Option<&Location>, message: impl Into<String>) -> Self {
        ConfigError { loc: loc.cloned(), message: message.into(), hint: None }
    }

    pub fn at(loc: &Location, message: impl Into<String>) -> Self {
        Self::new(Some(loc), message)
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.loc {
            write!(f, "{loc}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

/// Errors and warnings collected while checking a whole configuration, so `--dry-run` reports every
/// problem at once instead of stopping at the first.
#[derive(Debug, Default)]
pub struct Diagnostics {
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<ConfigError>,
}

impl Diagnostics {
    pub fn error(&mut self, e: ConfigError) {
        self.errors.push(e);
    }
    pub fn warn(&mut self, e: ConfigError) {
        self.warnings.push(e);
    }
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}
