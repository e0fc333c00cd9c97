//! kubernetes_metadata against a local HTTPS fake of the Kubernetes API that answers with objects built by
//! the official `kubernetes` Python client's models: pods from list + watch (ADDED/MODIFIED/DELETED),
//! namespace metadata, GETs for unknown pods, a dropped watch, 410 Gone, a slow API, a rotated token,
//! an API down from the start, and the in-cluster defaults. Records are compared field by field with the
//! shape fluent-plugin-kubernetes_metadata_filter (2.x) documents and builds.
mod common;

use common::{emit, engine, eventually, have_peer, Fake};
use serde_json::json;
use sluice_core::event::{Map, Value};
use sluice_core::record;

const CID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const CID2: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

fn tag(pod: &str, ns: &str, container: &str, cid: &str) -> String {
    format!("kubernetes.var.log.containers.{pod}_{ns}_{container}-{cid}.log")
}

fn web_pod(labels: serde_json::Value) -> serde_json::Value {
    json!({
        "name": "web-7d9f8-abcde", "namespace": "prod", "uid": "11111111-2222-3333-4444-555555555555",
        "node": "node-1", "ip": "10.1.2.3",
        "labels": labels,
        "annotations": {"example.com/owner": "team-a", "kubectl.kubernetes.io/last-applied-configuration": "{}"},
        "containers": [{"name": "nginx", "image": "nginx:1.27", "image_id": "docker.io/library/nginx@sha256:abc",
                         "id": format!("containerd://{CID}")}]
    })
}

fn prod_ns() -> serde_json::Value {
    json!({"name": "prod", "uid": "99999999-8888-7777-6666-555555555555",
           "labels": {"kubernetes.io/metadata.name": "prod", "team": "a"},
           "annotations": {"example.com/cost-center": "42", "other": "x"}})
}

fn conf(fake: &Fake, extra: &str) -> String {
    format!(
        "  kubernetes_url {}\n  ca_file {}\n  annotation_match [\"^example\\\\.com/\"]\n  stats_interval 0\n{extra}",
        fake.url(),
        fake.ca().display()
    )
}

fn map(v: &Value) -> &Map {
    v.as_map().expect("a map")
}

/// The `kubernetes` map the plugin builds for the web pod's nginx container in prod, in its key order.
fn expected_web(fake: &Fake, labels: Map) -> Map {
    let mut k = record! {
        "container_name" => "nginx",
        "namespace_name" => "prod",
        "pod_name" => "web-7d9f8-abcde",
        "container_image" => "nginx:1.27",
        "container_image_id" => "docker.io/library/nginx@sha256:abc",
        "pod_id" => "11111111-2222-3333-4444-555555555555",
        "pod_ip" => "10.1.2.3",
        "host" => "node-1",
    };
    k.insert("annotations", Value::Map(record! {"example_com/owner" => "team-a"}));
    k.insert("labels", Value::Map(labels));
    k.insert("master_url", Value::from(fake.url().as_str()));
    k.insert("namespace_id", Value::from("99999999-8888-7777-6666-555555555555"));
    // de_dot (on by default) moves the renamed keys to the end, as the plugin's de_dot! does.
    k.insert("namespace_labels", Value::Map(record! {"team" => "a", "kubernetes_io/metadata_name" => "prod"}));
    k.insert("namespace_annotations", Value::Map(record! {"example_com/cost-center" => "42"}));
    k
}

fn gets_of(fake: &mut Fake, path: &str) -> usize {
    fake.requests().iter().filter(|(p, _)| p.starts_with(path) && !p.contains("watch=")).count()
}

#[test]
fn pods_from_list_and_watch() {
    if !have_peer() {
        return;
    }
    let mut fake = Fake::start();
    fake.namespace(prod_ns(), None);
    fake.pod(web_pod(json!({"app": "web", "app.kubernetes.io/name": "web"})), None);
    // A pod of another node: the field selector keeps it out of the list.
    let mut other = web_pod(json!({"app": "other"}));
    other["name"] = json!("other-1");
    other["node"] = json!("node-2");
    other["uid"] = json!("other-uid");
    fake.pod(other, None);
    let run = "listwatch";
    let e = engine(run, &conf(&fake, ""), &[("K8S_NODE_NAME", "node-1")]).expect("config");
    fake.wait_watchers(1, 1);
    let lists = fake.requests();
    assert!(
        lists.iter().any(|(p, _)| p.starts_with("/api/v1/pods?") && p.contains("fieldSelector=spec.nodeName%3Dnode-1")),
        "the pod list/watch is for this node only: {lists:?}"
    );

    let t = tag("web-7d9f8-abcde", "prod", "nginx", CID);
    let got = emit(&e, run, &t, vec![record! {"log" => "hello", "stream" => "stdout"}, record! {"log" => "two"}]);
    assert_eq!(got.len(), 2);
    let labels = record! {"app" => "web", "app_kubernetes_io/name" => "web"};
    let mut want = record! {"log" => "hello", "stream" => "stdout"};
    want.insert("docker", Value::Map(record! {"container_id" => CID}));
    want.insert("kubernetes", Value::Map(expected_web(&fake, labels)));
    assert_eq!(got[0], want);
    assert_eq!(got[1].get("kubernetes"), want.get("kubernetes"));
    assert_eq!(gets_of(&mut fake, "/api/v1/namespaces/prod/pods/"), 0, "served from the list, no GET");

    // MODIFIED: new labels arrive through the watch.
    fake.pod(web_pod(json!({"app": "web", "version": "2"})), Some("MODIFIED"));
    let labels = eventually("the MODIFIED labels", || {
        let got = emit(&e, run, &t, vec![record! {"log" => "x"}]);
        let l = map(map(got[0].get("kubernetes").unwrap()).get("labels").unwrap()).clone();
        (l.get("version").is_some()).then_some(l)
    });
    assert_eq!(labels, record! {"app" => "web", "version" => "2"});

    // ADDED: a new pod on this node is known without a GET.
    let mut api = web_pod(json!({"app": "api"}));
    api["name"] = json!("api-0");
    api["uid"] = json!("api-uid");
    api["ip"] = json!("10.1.2.4");
    api["containers"] =
        json!([{"name": "main", "image": "api:3", "image_id": "api@sha256:def", "id": format!("docker://{CID2}")}]);
    // Sent on the watch only (a GET would answer 404): the metadata can only come from the watch.
    fake.cmd(json!({"op": "pod", "pod": api, "event": "ADDED", "store": false}));
    let t2 = tag("api-0", "prod", "main", CID2);
    let k = eventually("the ADDED pod", || {
        let got = emit(&e, run, &t2, vec![record! {"log" => "x"}]);
        let k = map(got[0].get("kubernetes").unwrap()).clone();
        k.get("pod_id").is_some().then_some(k)
    });
    assert_eq!(k.get("pod_id"), Some(&Value::from("api-uid")));
    assert_eq!(k.get("container_image"), Some(&Value::from("api:3")));
    assert_eq!(k.get("pod_ip"), Some(&Value::from("10.1.2.4")));

    // DELETED: the pod's last lines still get its metadata.
    fake.pod(web_pod(json!({"app": "web", "version": "2"})), Some("DELETED"));
    std::thread::sleep(std::time::Duration::from_millis(200));
    let got = emit(&e, run, &t, vec![record! {"log" => "last words"}]);
    let k = map(got[0].get("kubernetes").unwrap());
    assert_eq!(k.get("pod_id"), Some(&Value::from("11111111-2222-3333-4444-555555555555")));
    assert_eq!(k.get("container_image"), Some(&Value::from("nginx:1.27")));
}

#[test]
fn watch_reconnects_after_a_drop_and_lists_again_after_410() {
    if !have_peer() {
        return;
    }
    let mut fake = Fake::start();
    fake.namespace(prod_ns(), None);
    let run = "reconnect";
    let e = engine(run, &conf(&fake, "  watch_retry_interval 0.2\n"), &[("K8S_NODE_NAME", "node-1")]).expect("config");
    fake.wait_watchers(1, 1);
    let lists = |fake: &mut Fake| {
        fake.requests().iter().filter(|(p, _)| p.starts_with("/api/v1/pods?") && !p.contains("watch=")).count()
    };
    assert_eq!(lists(&mut fake), 1);

    // A pod arrives, then the connection drops: the watch comes back from the last version, no new list.
    fake.pod(web_pod(json!({"app": "web"})), Some("ADDED"));
    let t = tag("web-7d9f8-abcde", "prod", "nginx", CID);
    eventually("the ADDED pod", || {
        let got = emit(&e, run, &t, vec![record! {"log" => "x"}]);
        map(got[0].get("kubernetes").unwrap()).get("pod_id").map(|_| ())
    });
    fake.cmd(json!({"op": "disconnect"}));
    eventually("the watch to reopen", || {
        let watches =
            fake.requests().iter().filter(|(p, _)| p.starts_with("/api/v1/pods?") && p.contains("watch=")).count();
        (watches >= 2 && fake.watchers().0 >= 1).then_some(())
    });
    assert_eq!(lists(&mut fake), 1, "a dropped watch resumes without listing again");
    let last_watch = fake
        .requests()
        .into_iter()
        .rev()
        .find(|(p, _)| p.starts_with("/api/v1/pods?") && p.contains("watch="))
        .unwrap()
        .0;
    assert!(!last_watch.contains("resourceVersion=0&") && last_watch.contains("resourceVersion="), "{last_watch}");

    // 410 Gone inside the stream: list again, then watch.
    fake.cmd(json!({"op": "gone"}));
    eventually("a new list after 410", || (lists(&mut fake) >= 2).then_some(()));
    fake.wait_watchers(1, 1);
    // 410 as the watch request's answer: list again too.
    fake.cmd(json!({"op": "watch_gone_once"}));
    fake.cmd(json!({"op": "disconnect"}));
    eventually("a new list after HTTP 410", || (lists(&mut fake) >= 3).then_some(()));
    fake.wait_watchers(1, 1);

    // And the watch works after all that: a MODIFIED label shows.
    fake.pod(web_pod(json!({"app": "web", "after": "gone"})), Some("MODIFIED"));
    eventually("the MODIFIED pod after the restarts", || {
        let got = emit(&e, run, &t, vec![record! {"log" => "x"}]);
        let k = map(got[0].get("kubernetes").unwrap());
        k.get("labels").and_then(|l| map(l).get("after")).map(|_| ())
    });
}

#[test]
fn unknown_pods_are_looked_up_and_orphans_marked() {
    if !have_peer() {
        return;
    }
    let mut fake = Fake::start();
    fake.namespace(prod_ns(), None);
    fake.pod(web_pod(json!({"app": "web"})), None);
    let run = "lookup";
    let e = engine(run, &conf(&fake, "  watch false\n"), &[]).expect("config");
    let t = tag("web-7d9f8-abcde", "prod", "nginx", CID);
    let got = emit(&e, run, &t, vec![record! {"log" => "hello"}]);
    let mut want = record! {"log" => "hello"};
    want.insert("docker", Value::Map(record! {"container_id" => CID}));
    want.insert("kubernetes", Value::Map(expected_web(&fake, record! {"app" => "web"})));
    assert_eq!(got[0], want);
    assert_eq!(gets_of(&mut fake, "/api/v1/namespaces/prod/pods/web-7d9f8-abcde"), 1);
    // Cached now: no second GET.
    emit(&e, run, &t, vec![record! {"log" => "again"}]);
    assert_eq!(gets_of(&mut fake, "/api/v1/namespaces/prod/pods/web-7d9f8-abcde"), 1);
    assert!(!fake.requests().iter().any(|(p, _)| p.contains("watch=")), "watch false: no watch");

    // A pod that does not exist in a namespace that does: the container id stands for the pod id.
    let got = emit(&e, run, &tag("gone-1", "prod", "c", CID2), vec![record! {"log" => "x"}]);
    let k = map(got[0].get("kubernetes").unwrap());
    assert_eq!(k.get("pod_id"), Some(&Value::from(CID2)));
    assert_eq!(k.get("namespace_id"), Some(&Value::from("99999999-8888-7777-6666-555555555555")));
    // Neither pod nor namespace: the plugin's orphaned record.
    let got = emit(&e, run, &tag("ghost-1", "nowhere", "c", CID2), vec![record! {"log" => "x"}]);
    assert_eq!(
        map(got[0].get("kubernetes").unwrap()),
        &record! {"container_name" => "c", "namespace_name" => ".orphaned", "pod_name" => "ghost-1",
        "orphaned_namespace" => "nowhere", "namespace_id" => "orphaned"}
    );
}

#[test]
fn skip_options_leave_fields_out() {
    if !have_peer() {
        return;
    }
    let mut fake = Fake::start();
    fake.namespace(prod_ns(), None);
    fake.pod(web_pod(json!({"app.kubernetes.io/name": "web"})), None);
    let run = "skips";
    let extra = "  watch false\n  skip_labels true\n  skip_container_metadata true\n  skip_master_url true\n  skip_namespace_metadata true\n";
    let e = engine(run, &conf(&fake, extra), &[]).expect("config");
    let got = emit(&e, run, &tag("web-7d9f8-abcde", "prod", "nginx", CID), vec![record! {"log" => "x"}]);
    let mut k = record! {
        "container_name" => "nginx", "namespace_name" => "prod", "pod_name" => "web-7d9f8-abcde",
        "pod_id" => "11111111-2222-3333-4444-555555555555", "pod_ip" => "10.1.2.3", "host" => "node-1",
    };
    k.insert("annotations", Value::Map(record! {"example_com/owner" => "team-a"}));
    assert_eq!(map(got[0].get("kubernetes").unwrap()), &k);
    assert_eq!(gets_of(&mut fake, "/api/v1/namespaces/prod?"), 0, "skip_namespace_metadata: no namespace GET");

    // de_dot false keeps the dots; de_slash replaces slashes.
    let run = "dedot";
    let e = engine(run, &conf(&fake, "  watch false\n  de_dot false\n  de_slash true\n"), &[]).expect("config");
    let got = emit(&e, run, &tag("web-7d9f8-abcde", "prod", "nginx", CID), vec![record! {"log" => "x"}]);
    let k = map(got[0].get("kubernetes").unwrap());
    assert_eq!(map(k.get("labels").unwrap()), &record! {"app.kubernetes.io__name" => "web"});
    assert_eq!(map(k.get("annotations").unwrap()), &record! {"example.com__owner" => "team-a"});
}

/// What a record gets when the API cannot help: the names from the tag (and host from K8S_NODE_NAME).
fn names_only(cid: &str) -> Map {
    let mut r = record! {"log" => "x"};
    r.insert("docker", Value::Map(record! {"container_id" => cid}));
    r.insert(
        "kubernetes",
        Value::Map(record! {"container_name" => "nginx", "namespace_name" => "prod", "pod_name" => "web-7d9f8-abcde", "host" => "node-1"}),
    );
    r
}

#[test]
fn a_slow_api_does_not_hold_records() {
    if !have_peer() {
        return;
    }
    let mut fake = Fake::start();
    fake.namespace(prod_ns(), None);
    fake.pod(web_pod(json!({"app": "web"})), None);
    fake.cmd(json!({"op": "config", "delay": 3}));
    let run = "slow";
    let e = engine(run, &conf(&fake, "  watch false\n  read_timeout 0.5\n"), &[("K8S_NODE_NAME", "node-1")])
        .expect("config");
    let t = tag("web-7d9f8-abcde", "prod", "nginx", CID);
    let got = emit(&e, run, &t, vec![record! {"log" => "x"}]);
    assert_eq!(got, vec![names_only(CID)]);
    // Once the API is quick again, the metadata comes.
    fake.cmd(json!({"op": "config", "delay": 0}));
    eventually("metadata once the API answers", || {
        let got = emit(&e, run, &t, vec![record! {"log" => "x"}]);
        assert_eq!(got.len(), 1, "no record lost");
        map(got[0].get("kubernetes").unwrap()).get("pod_id").map(|_| ())
    });
}

#[test]
fn api_down_from_the_start() {
    if !have_peer() {
        return;
    }
    let fake = Fake::start();
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let body = format!(
        "  kubernetes_url https://127.0.0.1:{port}/api\n  ca_file {}\n  stats_interval 0\n",
        fake.ca().display()
    );
    let run = "down";
    let e = engine(run, &body, &[("K8S_NODE_NAME", "node-1")]).expect("an unreachable API is not a config error");
    let t = tag("web-7d9f8-abcde", "prod", "nginx", CID);
    for _ in 0..3 {
        let got = emit(&e, run, &t, vec![record! {"log" => "x"}]);
        assert_eq!(got, vec![names_only(CID)]);
    }
    // Journal-style records pass too.
    let mut j = record! {"log" => "x"};
    j.insert("CONTAINER_NAME", Value::from("k8s_nginx.abc_web-7d9f8-abcde_prod_uid_0"));
    j.insert("CONTAINER_ID_FULL", Value::from(CID));
    let got = emit(&e, run, "journal", vec![j]);
    assert_eq!(map(got[0].get("kubernetes").unwrap()).get("pod_name"), Some(&Value::from("web-7d9f8-abcde")));
    // Every such record is counted.
    assert_eq!(metric(&e, "sluice_kubernetes_metadata_records_without_api_metadata_total"), Some(4.0));
    assert!(metric(&e, "sluice_kubernetes_metadata_api_errors_total").is_some_and(|v| v >= 1.0));
}

/// A metric the filter reports (as a scrape would read it).
fn metric(e: &sluice_core::engine::Engine, name: &str) -> Option<f64> {
    use sluice_core::metrics::{Kind, MetricSink};
    struct Find<'a>(&'a str, Option<f64>);
    impl MetricSink for Find<'_> {
        fn sample(&mut self, name: &str, _: &str, _: Kind, _: &str, _: &[(&str, &str)], value: f64) {
            if name == self.0 {
                self.1 = Some(value);
            }
        }
    }
    let mut f = Find(name, None);
    for filter in e.router.filters() {
        filter.report(&mut f);
    }
    f.1
}

#[test]
fn a_rotated_token_is_read_again() {
    if !have_peer() {
        return;
    }
    let mut fake = Fake::start();
    fake.namespace(prod_ns(), None);
    fake.pod(web_pod(json!({"app": "web"})), None);
    let mut api = web_pod(json!({"app": "api"}));
    api["name"] = json!("api-0");
    api["uid"] = json!("api-uid");
    fake.pod(api, None);
    let token = fake.dir.path().join("token");
    std::fs::write(&token, "first-token\n").unwrap();
    fake.cmd(json!({"op": "config", "token": "first-token"}));
    let run = "token";
    let e = engine(run, &conf(&fake, &format!("  watch false\n  bearer_token_file {}\n", token.display())), &[])
        .expect("config");
    let got = emit(&e, run, &tag("web-7d9f8-abcde", "prod", "nginx", CID), vec![record! {"log" => "x"}]);
    assert!(map(got[0].get("kubernetes").unwrap()).get("pod_id").is_some());

    std::fs::write(&token, "second-token\n").unwrap();
    fake.cmd(json!({"op": "config", "token": "second-token"}));
    let got = emit(&e, run, &tag("api-0", "prod", "nginx", CID2), vec![record! {"log" => "x"}]);
    assert_eq!(map(got[0].get("kubernetes").unwrap()).get("pod_id"), Some(&Value::from("api-uid")));
    let auth: Vec<_> = fake.requests().into_iter().filter(|(p, _)| p.contains("/pods/api-0")).map(|(_, a)| a).collect();
    assert_eq!(auth, vec![Some("Bearer second-token".to_string())]);
}

#[test]
fn in_cluster_defaults_without_parameters() {
    if !have_peer() {
        return;
    }
    let mut fake = Fake::start();
    fake.namespace(prod_ns(), None);
    fake.pod(web_pod(json!({"app": "web"})), None);
    let secrets = tempfile::tempdir().unwrap();
    std::fs::copy(fake.ca(), secrets.path().join("ca.crt")).unwrap();
    std::fs::write(secrets.path().join("token"), "sa-token").unwrap();
    fake.cmd(json!({"op": "config", "token": "sa-token"}));
    let port = fake.port.to_string();
    let run = "incluster";
    // secret_dir stands in for /var/run/secrets/kubernetes.io/serviceaccount.
    let body = format!("  secret_dir {}\n  stats_interval 0\n", secrets.path().display());
    let env = [
        ("KUBERNETES_SERVICE_HOST", "127.0.0.1"),
        ("KUBERNETES_SERVICE_PORT", port.as_str()),
        ("K8S_NODE_NAME", "node-1"),
    ];
    let e = engine(run, &body, &env).expect("config");
    fake.wait_watchers(1, 1);
    let got = emit(&e, run, &tag("web-7d9f8-abcde", "prod", "nginx", CID), vec![record! {"log" => "x"}]);
    let k = map(got[0].get("kubernetes").unwrap());
    assert_eq!(k.get("master_url"), Some(&Value::from(format!("https://127.0.0.1:{port}/api").as_str())));
    assert_eq!(k.get("pod_id"), Some(&Value::from("11111111-2222-3333-4444-555555555555")));
    assert_eq!(k.get("namespace_id"), Some(&Value::from("99999999-8888-7777-6666-555555555555")));
}

#[test]
fn names_from_the_record_are_looked_up() {
    if !have_peer() {
        return;
    }
    let mut fake = Fake::start();
    fake.namespace(prod_ns(), None);
    fake.pod(web_pod(json!({"app": "web"})), None);
    let run = "k8sfield";
    let e = engine(run, &conf(&fake, "  watch false\n"), &[]).expect("config");
    let mut r = record! {"log" => "x"};
    r.insert("docker", Value::Map(record! {"container_id" => CID}));
    r.insert(
        "kubernetes",
        Value::Map(record! {"namespace_name" => "prod", "pod_name" => "web-7d9f8-abcde", "container_name" => "nginx"}),
    );
    let got = emit(&e, run, "app.logs", vec![r]);
    assert_eq!(map(got[0].get("kubernetes").unwrap()), &expected_web(&fake, record! {"app" => "web"}));

    // journald's CONTAINER_NAME / CONTAINER_ID_FULL (docker's journald log driver).
    let mut j = record! {"MESSAGE" => "x"};
    j.insert("CONTAINER_NAME", Value::from("k8s_nginx.a49f5318_web-7d9f8-abcde_prod_ae3a9bdc_799e4035"));
    j.insert("CONTAINER_ID_FULL", Value::from(CID));
    let got = emit(&e, run, "journal", vec![j]);
    assert_eq!(got[0].get("docker"), Some(&Value::Map(record! {"container_id" => CID})));
    assert_eq!(map(got[0].get("kubernetes").unwrap()), &expected_web(&fake, record! {"app" => "web"}));
}

#[test]
fn a_client_certificate_is_presented_when_configured() {
    if !have_peer() {
        return;
    }
    let mut fake = Fake::start();
    fake.namespace(prod_ns(), None);
    fake.pod(web_pod(json!({"app": "web"})), None);
    let t = tag("web-7d9f8-abcde", "prod", "nginx", CID);
    let dir = fake.dir.path().to_path_buf();
    let e = engine("mtls", &conf(&fake, "  watch false\n"), &[("K8S_NODE_NAME", "node-1")]).expect("config");
    emit(&e, "mtls", &t, vec![record! {"log" => "x"}]);
    let extra = format!(
        "  watch false\n  client_cert {}\n  client_key {}\n",
        dir.join("client.crt").display(),
        dir.join("client.key").display()
    );
    let e = engine("mtls", &conf(&fake, &extra), &[("K8S_NODE_NAME", "node-1")]).expect("config");
    let got = emit(&e, "mtls", &t, vec![record! {"log" => "x"}]);
    assert_eq!(
        map(got[0].get("kubernetes").unwrap()).get("pod_id"),
        Some(&Value::from("11111111-2222-3333-4444-555555555555"))
    );
    let names = fake.client_names();
    assert!(!names.is_empty() && names.len() < 10, "{names:?}");
    // The first engine had no certificate to show; the second showed the node's on every request.
    let first = names.iter().take_while(|n| n.is_none()).count();
    assert!(first >= 1, "{names:?}");
    assert!(names[first..].iter().all(|n| n.as_deref() == Some("sluice-node")), "{names:?}");
    // A key that does not load is a configuration error at the filter.
    let bad = format!("  client_cert {}\n  client_key {}\n", dir.join("client.crt").display(), fake.ca().display());
    let errs = match engine("mtls", &conf(&fake, &bad), &[]) {
        Ok(_) => panic!("a certificate as client_key was accepted"),
        Err(e) => e,
    };
    assert!(format!("{errs:?}").contains("client_key"), "{errs:?}");
}

#[test]
fn unsupported_and_invalid_parameters_are_errors_with_their_line() {
    let cases = [
        ("  kubernetes_url https://127.0.0.1:1/api\n  de_dot_separator .\n", "de_dot_separator"),
        ("  kubernetes_url https://127.0.0.1:1/api\n  apiVersion v2\n", "apiVersion"),
        ("  kubernetes_url https://127.0.0.1:1/api\n  test_api_adapter Foo\n", "test_api_adapter"),
        ("  kubernetes_url https://127.0.0.1:1/api\n  ca_file /nonexistent/ca.crt\n", "ca_file"),
        ("  kubernetes_url not a url\n", "kubernetes_url"),
    ];
    for (i, (body, key)) in cases.into_iter().enumerate() {
        let line = if i == 4 { "kube.conf:3" } else { "kube.conf:4" };
        let errs = match engine("errors", body, &[]) {
            Ok(_) => panic!("{key}: accepted"),
            Err(e) => e,
        };
        let text = format!("{errs:?}");
        assert!(text.contains(key), "{key}: {text}");
        assert!(errs.iter().any(|e| e.to_string().contains(line)), "{key}: no {line} in {text}");
    }
}

#[test]
fn the_server_certificate_is_checked_unless_verify_ssl_is_false() {
    if !have_peer() {
        return;
    }
    let mut fake = Fake::start();
    fake.namespace(prod_ns(), None);
    fake.pod(web_pod(json!({"app": "web"})), None);
    let t = tag("web-7d9f8-abcde", "prod", "nginx", CID);
    let empty = tempfile::tempdir().unwrap();
    let base = format!(
        "  kubernetes_url {}\n  watch false\n  stats_interval 0\n  secret_dir {}\n",
        fake.url(),
        empty.path().display()
    );
    // No CA for the fake's certificate: TLS fails, the records pass with their names only.
    let e = engine("tls-strict", &base, &[("K8S_NODE_NAME", "node-1")]).expect("config");
    assert_eq!(emit(&e, "tls-strict", &t, vec![record! {"log" => "x"}]), vec![names_only(CID)]);
    assert_eq!(gets_of(&mut fake, "/api/v1/namespaces/prod/pods/"), 0, "no request got through TLS");
    // verify_ssl false: any certificate is accepted.
    let e = engine("tls-off", &format!("{base}  verify_ssl false\n"), &[]).expect("config");
    let got = emit(&e, "tls-off", &t, vec![record! {"log" => "x"}]);
    assert_eq!(
        map(got[0].get("kubernetes").unwrap()).get("pod_id"),
        Some(&Value::from("11111111-2222-3333-4444-555555555555"))
    );
}
