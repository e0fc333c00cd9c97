//! The GCE/GKE metadata server path (workload identity): token, project, zone, instance and cluster
//! from GCE_METADATA_HOST. Its own test binary because it sets process environment variables.
mod common;

use common::{chunk, Fake};
use serde_json::json;
use sluice_core::buffer::ChunkWriter;
use sluice_core::config::parse_str;
use std::path::Path;

#[tokio::test]
async fn metadata_server_provides_token_and_platform() {
    let fake = Fake::start();
    let home = tempfile::tempdir().unwrap();
    // SAFETY-free in edition 2021; this binary has a single test, so nothing reads the environment
    // concurrently.
    std::env::set_var("GCE_METADATA_HOST", format!("127.0.0.1:{}", fake.port));
    std::env::remove_var("GOOGLE_APPLICATION_CREDENTIALS");
    std::env::set_var("HOME", home.path());
    std::env::set_var("CLOUDSDK_CONFIG", home.path());
    let text = format!("<match **>\n  @type google_cloud\n  logging_api_url {}\n</match>\n", fake.url());
    let root = parse_str(&text, Path::new("test.conf")).unwrap();
    let conf = root.children.into_iter().next().unwrap();
    let w = sluice_gcp::writer_from_conf(&conf).unwrap();
    let events = vec![
        ("app", json!({"message": "on the node"})),
        ("kubernetes.var.log.containers.api-0_default_api.log", json!({"log": "in a pod"})),
    ];
    w.write(&chunk(&events)).await.unwrap();
    let got = fake.entries().await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["logName"], "projects/meta-project/logs/app");
    assert_eq!(
        got[0]["resource"],
        json!({"type": "gce_instance", "labels": {"instance_id": "4242424242", "zone": "europe-west1-b"}})
    );
    assert_eq!(
        got[1]["resource"],
        json!({"type": "k8s_container", "labels": {"project_id": "meta-project", "location": "europe-west1",
               "cluster_name": "prod-cluster", "namespace_name": "default", "pod_name": "api-0", "container_name": "api"}})
    );
    let st = fake.state().await;
    assert_eq!(st["token_requests"], json!([{"grant": "metadata", "ok": true}]));
    assert_eq!(st["attempts"][0]["auth"], "token");
}
