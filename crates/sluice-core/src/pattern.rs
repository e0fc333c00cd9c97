//! (being written) Fluentd tag patterns.
//! NOTE for the author of this module: the router already uses exactly this API:
//! `TagMatcher::new(arg: &str) -> Result<TagMatcher, PatternError>` (arg = a directive's argument, several
//! space-separated patterns; empty means `**`) and `TagMatcher::matches(&self, tag: &str) -> bool`.
//! Keep those signatures (TagMatcher must be Send + Sync + Debug).

#[derive(Debug, thiserror::Error)]
#[error("invalid tag pattern: {0}")]
pub struct PatternError(pub String);

#[derive(Debug, Clone)]
pub struct TagMatcher {
    pats: Vec<String>,
}

impl TagMatcher {
    pub fn new(arg: &str) -> Result<TagMatcher, PatternError> {
        Ok(TagMatcher { pats: arg.split_whitespace().map(str::to_string).collect() })
    }

    pub fn matches(&self, tag: &str) -> bool {
        self.pats.is_empty() || self.pats.iter().any(|p| p == "**" || p == tag)
    }
}
