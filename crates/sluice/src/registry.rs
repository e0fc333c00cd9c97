//! Every plugin this binary knows. A new plugin crate adds one line here.
use sluice_core::plugin::Registry;

pub fn build() -> Registry {
    let mut reg = Registry::new();
    sluice_plugins::register_all(&mut reg);
    sluice_aws::register(&mut reg);
    sluice_mask::register(&mut reg);
    sluice_gcp::register(&mut reg);
    sluice_slack::register(&mut reg);
    sluice_net::register(&mut reg);
    sluice_systemd::register(&mut reg);
    sluice_monitor::register(&mut reg);
    sluice_kube::register(&mut reg);
    reg
}
