//! `kubernetes` and `multiline_kubernetes`: the klog (glog) parsers the fluentd-kubernetes-daemonset images
//! ship for the logs of kubelet, kube-proxy, kube-apiserver, kube-controller-manager, kube-scheduler, ...:
//!
//! `I0504 12:00:00.123456    3368 server.go:1048] message` gives `severity` (`I`), `time` (month, day and
//! time of day, `%m%d %H:%M:%S.%N`, in the current year), `pid`, `source` (`server.go:1048`) and `message`.
//!
//! As in the images, the klog expression and time format replace any `expression`/`time_format` given;
//! every other parser parameter (`time_key`, `keep_time_key`, `types`, `utc`, `timezone`, ...) applies.
//! `multiline_kubernetes` joins the lines that follow a klog line (an object dump, a stack) into its
//! message, like `format multiline` with `format_firstline /^\w\d{4}/`.
use super::multiline::MultilineParser;
use super::regexp::RegexpParser;
use sluice_core::config::{ConfigError, Element};
use sluice_core::plugin::{BuildCtx, Parser};

/// A klog line starts with the severity letter and `MMDD`.
pub const KLOG_FIRSTLINE: &str = r"/^\w\d{4}/";
/// The images' expression; `/m` lets the message span the joined lines.
pub const KLOG_EXPRESSION: &str =
    r"/^(?<severity>\w)(?<time>\d{4} [^\s]*)\s+(?<pid>\d+)\s+(?<source>[^ \]]+)\] (?<message>.*)/m";
/// The same for `format1` of the multiline form (its formats always let `.` match newlines).
pub const KLOG_FORMAT1: &str =
    r"/^(?<severity>\w)(?<time>\d{4} [^\s]*)\s+(?<pid>\d+)\s+(?<source>[^ \]]+)\] (?<message>.*)/";
pub const KLOG_TIME_FORMAT: &str = "%m%d %H:%M:%S.%N";

/// `e` with the preset parameters in place of the user's; `f` builds from it. Parameters the builder read
/// on the copy count as read on `e` (so they are not reported as unused); the replaced ones are, since
/// they have no effect.
fn with_preset<T>(
    e: &Element,
    preset: &[(&str, &str)],
    f: impl FnOnce(&Element) -> Result<T, ConfigError>,
) -> Result<T, ConfigError> {
    let mut el = e.clone();
    for (k, v) in preset {
        el.attrs.retain(|a| a.key != *k);
        el.set(*k, *v, e.loc.clone());
    }
    let built = f(&el);
    for a in el.attrs.iter().filter(|a| a.used.get()) {
        if preset.iter().any(|(k, _)| *k == a.key) {
            continue;
        }
        if let Some(orig) = e.attrs.iter().find(|o| o.key == a.key) {
            orig.used.set(true);
        }
    }
    built
}

pub fn build(e: &Element, _ctx: &BuildCtx) -> Result<Box<dyn Parser>, ConfigError> {
    let p = with_preset(e, &[("expression", KLOG_EXPRESSION), ("time_format", KLOG_TIME_FORMAT)], |el| {
        RegexpParser::from_element(el, None, None)
    })?;
    Ok(Box::new(p))
}

pub fn build_multiline(e: &Element, _ctx: &BuildCtx) -> Result<Box<dyn Parser>, ConfigError> {
    let preset = [("format_firstline", KLOG_FIRSTLINE), ("format1", KLOG_FORMAT1), ("time_format", KLOG_TIME_FORMAT)];
    let p = with_preset(e, &preset, MultilineParser::from_element)?;
    Ok(Box::new(p))
}
