//! Ruby-compatible `strftime`/`strptime` for Fluentd's `time_format`, `localtime`/`utc` and `timezone`.
//!
//! * [`TimeFormatter`] renders an [`EventTime`](crate::event::EventTime) like Ruby's `Time#strftime` (flags `-`, `_`, `0`, `^`, `#`,
//!   widths, `%N`/`%3N`/`%L`, `%z`/`%:z`/`%::z`, `%Z`, `%s`, `%Q`, the composite `%c %D %F %T %R %r %x %X %v %+`).
//!   The text of the last second is cached: consecutive events mostly share a second, so the common case
//!   only writes the fraction digits.
//! * [`TimeParser`] parses like Ruby's `Time.strptime` (and `Time.parse`/`Time.iso8601` when no format is
//!   given): missing leading fields come from "now" in the target zone (no year means the current year),
//!   whitespace in the format matches any run of whitespace, `%z` accepts `Z`, `UTC`, `+09`, `+0900`,
//!   `+09:00`. Unlike `Time.strptime`, text left over after the format (other than whitespace) is an error,
//!   as with the `strptime` gem Fluentd uses.
//! * Zones: `+09:00`, `+0900`, `-05`, `UTC`, or an IANA name (`Asia/Seoul`). No zone means UTC, or the
//!   system zone when `localtime` is set. The buffer's time slices and strftime placeholders use the same
//!   [`Zone`].
//!
//! Parts: [`civil`] (calendar arithmetic), [`zone`] ([`Zone`]), `pattern` (format strings), `format`
//! ([`TimeFormatter`]) and `parse` ([`TimeParser`], [`parse_rfc3339`]).
pub mod civil;
mod format;
mod parse;
mod pattern;
pub mod zone;

pub use civil::days_from_civil;
pub use format::TimeFormatter;
pub use parse::{parse_rfc3339, TimeParser};
pub use zone::Zone;

#[cfg(test)]
mod tests;
