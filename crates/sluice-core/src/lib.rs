//! sluice core: the pieces every plugin stands on.
//!
//! * [`event`]: events, records and their values, and the codecs (JSON, msgpack) on the hot path.
//! * [`config`]: Fluentd's configuration language, parsed into an [`config::Element`] tree.
//! * [`pattern`]: Fluentd tag patterns (`*`, `**`, `{a,b}`).
//! * [`accessor`]: record accessor syntax (`$.a.b`, `$['a'][0]`).
//! * [`timefmt`]: Ruby-compatible strptime/strftime.
//! * [`ruby`]: Ruby regexps and string conversions (and the embedded Ruby subset Fluentd configurations use).
//! * [`inject`]: `<inject>` for every output that formats records.
//! * [`plugin`]: the input, filter, output, parser and formatter interfaces and the plugin registry.
//! * [`router`]: Fluentd's routing (filters top to bottom, first `<match>` wins, labels).
//! * [`buffer`]: the buffered output engine (chunks, flushing, retries, secondary).
//! * [`engine`]: assembles a parsed configuration into running inputs, router and outputs.
//! * [`fs_check`]: `--dry-run`'s check that directories sluice writes are writable.
pub mod accessor;
pub mod buffer;
pub mod config;
pub mod engine;
pub mod event;
pub mod fs_check;
pub mod inject;
pub mod metrics;
pub mod pattern;
pub mod plugin;
pub mod router;
pub mod ruby;
pub mod timefmt;
pub mod util;
