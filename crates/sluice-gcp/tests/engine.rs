//! `@type google_cloud` built through the registry on the buffered output engine.
mod common;

use common::{rec, Fake};
use serde_json::json;
use sluice_core::event::{Event, EventTime};
use sluice_core::plugin::{BuildCtx, Registry, SystemConfig};
use std::sync::Arc;
use std::time::Duration;

fn ctx() -> BuildCtx {
    let mut reg = Registry::new();
    sluice_gcp::register(&mut reg);
    BuildCtx {
        system: Arc::new(SystemConfig { hostname: "testhost".into(), ..Default::default() }),
        ..BuildCtx::new(Arc::new(reg))
    }
}

#[tokio::test]
async fn registered_output_flushes_through_the_buffer() {
    let fake = Fake::start();
    let conf = fake.conf("project_id proj\n  <buffer>\n    flush_interval 0.2s\n  </buffer>");
    let c = ctx();
    let out = c.registry.build_output(&conf, &c).expect("google_cloud builds");
    out.start().await.unwrap();
    let events = vec![
        Event::new(EventTime::now(), rec(json!({"message": "boom", "severity": "error"}))),
        Event::new(EventTime::now(), rec(json!({"message": "ok", "severity": "info"}))),
    ];
    out.emit("app.errors", events).unwrap();
    let mut got = Vec::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        got = fake.entries().await;
        if got.len() == 2 {
            break;
        }
    }
    out.shutdown().await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["severity"], "ERROR");
    assert_eq!(got[0]["textPayload"], "boom");
    assert_eq!(got[0]["logName"], "projects/proj/logs/app.errors");
}
