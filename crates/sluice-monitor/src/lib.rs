//! sluice's monitoring plugins, built on the core's metrics interface (`sluice_core::metrics`):
//! fluent-plugin-prometheus (`prometheus` input, filter and output, `prometheus_monitor`,
//! `prometheus_output_monitor`, `prometheus_tail_monitor`), Fluentd's `monitor_agent`, and the
//! `/api/health` endpoint every monitoring port answers.
mod exposition;
mod labels;
mod monitor;
mod monitor_agent;
mod prometheus;
mod record_plugins;
mod server;
mod user_metrics;

pub use exposition::Families;
use sluice_core::plugin::Registry;

pub fn register(reg: &mut Registry) {
    reg.register_input("prometheus", prometheus::build);
    reg.register_input("prometheus_monitor", monitor::build_status);
    reg.register_input("prometheus_output_monitor", monitor::build_output);
    reg.register_input("prometheus_tail_monitor", monitor::build_tail);
    reg.register_input("monitor_agent", monitor_agent::build);
    reg.register_filter("prometheus", record_plugins::build_filter);
    reg.register_output("prometheus", record_plugins::build_output);
}
