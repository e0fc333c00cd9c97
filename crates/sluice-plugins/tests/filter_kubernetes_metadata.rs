//! `kubernetes_metadata` without the API: names from the tag (in_tail of /var/log/containers) or from
//! journald fields, the plugin's `docker` and `kubernetes` maps, `host` from K8S_NODE_NAME, and records
//! left alone when nothing matches.
mod common;

use common::sink;
use parking_lot::Mutex;
use sluice_core::config::ConfigError;
use sluice_core::event::{Event, EventTime, Map, Value};
use sluice_core::record;
use std::sync::OnceLock;

/// K8S_NODE_NAME is process-wide: tests that build the filter take this lock.
fn env_lock() -> &'static Mutex<()> {
    static L: OnceLock<Mutex<()>> = OnceLock::new();
    L.get_or_init(Default::default)
}

fn assemble_conf(conf: &str) -> Result<sluice_core::engine::Engine, Vec<ConfigError>> {
    common::assemble_conf(conf, "k8s.conf")
}

/// Build `<filter **> @type kubernetes_metadata BODY </filter>` with `node` as K8S_NODE_NAME, emit each
/// (tag, records) batch, return the records the following `<match **>` got.
fn run(id: &str, body: &str, node: Option<&str>, batches: Vec<(&str, Vec<Map>)>) -> Vec<(String, Map)> {
    let conf = format!(
        "<filter **>\n  @type kubernetes_metadata\n{body}\n</filter>\n<match **>\n  @type capture\n  run {id}\n</match>\n"
    );
    let engine = {
        let _g = env_lock().lock();
        match node {
            Some(n) => std::env::set_var("K8S_NODE_NAME", n),
            None => std::env::remove_var("K8S_NODE_NAME"),
        }
        let e = assemble_conf(&conf).unwrap_or_else(|e| panic!("config errors: {e:?}"));
        std::env::remove_var("K8S_NODE_NAME");
        e
    };
    for (tag, recs) in batches {
        let events = recs.into_iter().map(|r| Event::new(EventTime::new(1, 0), r)).collect();
        engine.router.emit_to_label("@ROOT", tag, events).expect("emit");
    }
    sink(id).records()
}

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn kube(container: &str, ns: &str, pod: &str, host: Option<&str>) -> Value {
    let mut k = record! {"container_name" => container, "namespace_name" => ns, "pod_name" => pod};
    if let Some(h) = host {
        k.insert("host", Value::from(h));
    }
    Value::Map(k)
}

fn docker(id: &str) -> Value {
    Value::Map(record! {"container_id" => id})
}

#[test]
fn names_from_the_tag() {
    let tag = format!("var.log.containers.web-7d9f8-abcde_prod_nginx-{ID}.log");
    let dotted = format!("var.log.containers.api.v2-0_kube-system_side-car-{ID}.log");
    let got = run(
        "tag",
        "",
        Some("node-1"),
        vec![
            (tag.as_str(), vec![record! {"log" => "hello", "stream" => "stdout"}, record! {}]),
            (dotted.as_str(), vec![record! {"log" => "x"}]),
        ],
    );
    assert_eq!(
        got,
        vec![
            (
                tag.clone(),
                record! {
                    "log" => "hello",
                    "stream" => "stdout",
                    "docker" => docker(ID),
                    "kubernetes" => kube("nginx", "prod", "web-7d9f8-abcde", Some("node-1")),
                },
            ),
            (
                tag.clone(),
                record! {"docker" => docker(ID), "kubernetes" => kube("nginx", "prod", "web-7d9f8-abcde", Some("node-1"))},
            ),
            (
                dotted.clone(),
                record! {"log" => "x", "docker" => docker(ID), "kubernetes" => kube("side-car", "kube-system", "api.v2-0", Some("node-1"))},
            ),
        ]
    );
}

#[test]
fn tags_that_do_not_match_leave_records_alone() {
    let short_id = "var.log.containers.web_prod_nginx-0123abc.log";
    let upper = format!("var.log.containers.Web_prod_nginx-{ID}.log");
    let no_ns = format!("var.log.containers.web-nginx-{ID}.log");
    let got = run(
        "nomatch",
        "",
        None,
        vec![
            ("app.logs", vec![record! {"log" => "a"}]),
            (short_id, vec![record! {"log" => "b"}]),
            (upper.as_str(), vec![record! {"log" => "c"}]),
            (no_ns.as_str(), vec![record! {"log" => "d"}]),
        ],
    );
    let recs: Vec<Map> = got.into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        recs,
        vec![record! {"log" => "a"}, record! {"log" => "b"}, record! {"log" => "c"}, record! {"log" => "d"}]
    );
}

#[test]
fn old_maps_are_replaced_without_host_when_unset() {
    let tag = format!("var.log.containers.p_ns_c-{ID}.log");
    let got = run(
        "replace",
        "  lookup_from_k8s_field false",
        None,
        vec![(
            tag.as_str(),
            vec![record! {"kubernetes" => "old", "log" => "x", "docker" => Value::Map(record! {"a" => 1i64})}],
        )],
    );
    assert_eq!(
        got,
        vec![(tag.clone(), record! {"kubernetes" => kube("c", "ns", "p", None), "log" => "x", "docker" => docker(ID)})]
    );
}

#[test]
fn records_carrying_their_names_are_kept() {
    let tag = format!("var.log.containers.p_ns_c-{ID}.log");
    let mut k = record! {"namespace_name" => "other", "pod_name" => "q", "container_name" => "d"};
    k.insert("labels", Value::Map(record! {"app" => "x"}));
    let rec = record! {"log" => "x", "kubernetes" => Value::Map(k), "docker" => docker("abc")};
    let got = run("fields", "", None, vec![(tag.as_str(), vec![rec.clone()])]);
    assert_eq!(got, vec![(tag, rec)]);
}

#[test]
fn journald_records() {
    let journal = record! {
        "MESSAGE" => "hi",
        "CONTAINER_NAME" => "k8s_nginx.abc123_web-1_prod_0c1d2e3f-uid_0",
        "CONTAINER_ID_FULL" => ID,
    };
    let bad = record! {"MESSAGE" => "hi", "CONTAINER_NAME" => "not-k8s", "CONTAINER_ID_FULL" => ID};
    let got = run("journal", "", None, vec![("journal.kube", vec![journal.clone(), bad.clone()])]);
    let mut want = journal.clone();
    want.insert("docker", docker(ID));
    want.insert("kubernetes", kube("nginx", "prod", "web-1", None));
    assert_eq!(got, vec![("journal.kube".to_string(), want), ("journal.kube".to_string(), bad)]);

    // use_journal false: journald fields are not looked at.
    let got = run("journal-off", "  use_journal false", None, vec![("journal.kube", vec![journal.clone()])]);
    assert_eq!(got, vec![("journal.kube".to_string(), journal)]);
}

#[test]
fn custom_regexp_and_api_parameters_are_accepted() {
    let body = r#"  kubernetes_url https://10.0.0.1:443/api
  watch false
  annotation_match ["^fluentd"]
  tag_to_kubernetes_name_regexp ^k8s\.(?<namespace>[^.]+)\.(?<pod_name>[^.]+)\.(?<container_name>[^.]+)$"#;
    let got = run("custom", body, None, vec![("k8s.prod.web-1.app", vec![record! {"log" => "x"}])]);
    // No docker id in the pattern: the plugin writes an empty container_id.
    assert_eq!(
        got,
        vec![(
            "k8s.prod.web-1.app".to_string(),
            record! {"log" => "x", "docker" => docker(""), "kubernetes" => kube("app", "prod", "web-1", None)}
        )]
    );
}

#[test]
fn bad_regexp_is_a_config_error_naming_the_line() {
    let conf =
        "<filter **>\n  @type kubernetes_metadata\n  tag_to_kubernetes_name_regexp /(?<pod_name>[a-z/\n</filter>\n";
    let e = common::config_errors(conf, "k8s.conf");
    assert!(e.contains("k8s.conf:3") && e.contains("tag_to_kubernetes_name_regexp"), "{e}");
}

#[test]
fn default_pattern_matches_prefixed_tags() {
    let tag = format!("kubernetes.var.log.containers.web-1_prod_app-{ID}.log");
    let got = run("prefixed", "  use_journal false", None, vec![(tag.as_str(), vec![record! {"log" => "x"}])]);
    assert_eq!(
        got,
        vec![(
            tag.clone(),
            record! {"log" => "x", "docker" => docker(ID), "kubernetes" => kube("app", "prod", "web-1", None)}
        )]
    );
    // use_journal true: the tag is not looked at.
    let got = run("journal-only", "  use_journal true", None, vec![(tag.as_str(), vec![record! {"log" => "x"}])]);
    assert_eq!(got, vec![(tag.clone(), record! {"log" => "x"})]);
}
