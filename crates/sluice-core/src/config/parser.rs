//! Placeholder: the Fluentd syntax front end is being written.
use super::{ConfigError, Element, Location};
use std::path::Path;

pub fn parse_str(_text: &str, file: &Path) -> Result<Element, ConfigError> {
    Ok(Element::new("ROOT", "", Location::new(file, 0)))
}

pub fn parse_file(path: &Path) -> Result<Element, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(None, format!("cannot read {}: {e}", path.display())))?;
    parse_str(&text, path)
}
