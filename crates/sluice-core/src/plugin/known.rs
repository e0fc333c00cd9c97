//! What sluice says about an `@type` it does not have: whether it is a Fluentd plugin sluice knows of
//! (and which gem provides it), or a likely misspelling of one it has.

/// Fluentd plugins that real configurations use and sluice does not run, by kind, with their gem.
const NOT_SUPPORTED: &[(&str, &str, &str)] = &[
    ("input", "exec", "Fluentd's in_exec"),
    ("input", "windows_eventlog", "fluent-plugin-windows-eventlog"),
    ("input", "windows_eventlog2", "fluent-plugin-windows-eventlog"),
    ("input", "cloudwatch_logs", "fluent-plugin-cloudwatch-logs"),
    ("input", "kafka", "fluent-plugin-kafka"),
    ("input", "kafka_group", "fluent-plugin-kafka"),
    ("input", "sqs", "fluent-plugin-sqs"),
    ("input", "s3", "fluent-plugin-s3"),
    ("input", "gcloud_pubsub", "fluent-plugin-gcloud-pubsub-custom"),
    ("input", "kubernetes_objects", "fluent-plugin-kubernetes-objects"),
    ("input", "kubernetes_events", "fluent-plugin-kubernetes-objects"),
    ("input", "kubernetes_metrics", "fluent-plugin-kubernetes-metrics"),
    ("input", "object_space", "Fluentd's in_object_space"),
    ("input", "debug_agent", "Fluentd's in_debug_agent"),
    ("input", "unix", "Fluentd's in_unix"),
    ("output", "secure_forward", "fluent-plugin-secure-forward"),
    ("output", "exec", "Fluentd's out_exec"),
    ("output", "exec_filter", "Fluentd's out_exec_filter"),
    ("output", "elasticsearch", "fluent-plugin-elasticsearch"),
    ("output", "elasticsearch_dynamic", "fluent-plugin-elasticsearch"),
    ("output", "elasticsearch_data_stream", "fluent-plugin-elasticsearch"),
    ("output", "opensearch", "fluent-plugin-opensearch"),
    ("output", "kinesis_streams_aggregated", "fluent-plugin-kinesis"),
    ("output", "kafka", "fluent-plugin-kafka"),
    ("output", "kafka2", "fluent-plugin-kafka"),
    ("output", "kafka_buffered", "fluent-plugin-kafka"),
    ("output", "rdkafka", "fluent-plugin-kafka"),
    ("output", "rdkafka2", "fluent-plugin-kafka"),
    ("output", "loki", "fluent-plugin-grafana-loki"),
    ("output", "datadog", "fluent-plugin-datadog"),
    ("output", "splunk_hec", "fluent-plugin-splunk-hec"),
    ("output", "splunk-http-eventcollector", "fluent-plugin-splunk-http-eventcollector"),
    ("output", "newrelic", "fluent-plugin-newrelic"),
    ("output", "sumologic", "fluent-plugin-sumologic_output"),
    ("output", "logzio_buffered", "fluent-plugin-logzio"),
    ("output", "bigquery", "fluent-plugin-bigquery"),
    ("output", "bigquery_insert", "fluent-plugin-bigquery"),
    ("output", "bigquery_load", "fluent-plugin-bigquery"),
    ("output", "gcs", "fluent-plugin-gcs"),
    ("output", "gcloud_pubsub", "fluent-plugin-gcloud-pubsub-custom"),
    ("output", "azure-loganalytics", "fluent-plugin-azure-loganalytics"),
    ("output", "azure_storage_append_blob", "fluent-plugin-azure-storage-append-blob"),
    ("output", "mongo", "fluent-plugin-mongo"),
    ("output", "webhdfs", "fluent-plugin-webhdfs"),
    ("output", "td", "fluent-plugin-td"),
    ("output", "tdlog", "fluent-plugin-td"),
    ("output", "influxdb", "fluent-plugin-influxdb"),
    ("output", "remote_syslog", "fluent-plugin-remote_syslog"),
    ("output", "syslog", "fluent-plugin-syslog"),
    ("output", "gelf", "fluent-plugin-gelf"),
    ("output", "sqs", "fluent-plugin-sqs"),
    ("output", "sns", "fluent-plugin-sns"),
    ("output", "redis", "fluent-plugin-redis"),
    ("output", "flowcounter", "fluent-plugin-flowcounter"),
    ("output", "record_reformer", "fluent-plugin-record-reformer"),
    ("output", "retag", "fluent-plugin-retag"),
    ("output", "route", "fluent-plugin-route"),
    ("output", "google_cloud_logging", "fluent-plugin-google-cloud"),
    ("filter", "detect_exceptions", "fluent-plugin-detect-exceptions"),
    ("filter", "record_modifier", "fluent-plugin-record-modifier"),
    ("filter", "geoip", "fluent-plugin-geoip"),
    ("filter", "throttle", "fluent-plugin-throttle"),
    ("filter", "dedot", "fluent-plugin-dedot_filter"),
    ("filter", "elasticsearch_genid", "fluent-plugin-elasticsearch"),
    ("filter", "add_insert_ids", "fluent-plugin-google-cloud"),
    ("filter", "kubernetes_sumologic", "fluent-plugin-kubernetes-sumologic"),
    ("filter", "systemd_entry", "fluent-plugin-systemd"),
    ("filter", "multiline_grep", "fluent-plugin-multiline-grep"),
    ("filter", "sampling", "fluent-plugin-sampling-filter"),
    ("filter", "sampling_filter", "fluent-plugin-sampling-filter"),
    ("filter", "kube_metadata", "fluent-plugin-kubernetes_metadata_filter"),
    ("filter", "typecast", "fluent-plugin-typecast"),
    ("filter", "anonymizer", "fluent-plugin-anonymizer"),
    ("filter", "ec2_metadata", "fluent-plugin-ec2-metadata"),
    ("parser", "grok", "fluent-plugin-grok-parser"),
    ("parser", "multiline_grok", "fluent-plugin-grok-parser"),
    ("parser", "logfmt", "fluent-plugin-logfmt-parser"),
    ("parser", "msgpack", "Fluentd's parser_msgpack"),
    ("parser", "cloudwatch_logs", "fluent-plugin-cloudwatch-logs"),
    ("formatter", "single_value_json", "a third-party formatter"),
];

/// The hint for an unknown `@type` of `kind`: a known Fluentd plugin sluice does not have, or a close
/// spelling of one it has, followed by the list of what it has.
pub fn unknown_type_hint<'a>(kind: &str, name: &str, known: impl Iterator<Item = &'a str> + Clone) -> String {
    let list = known.clone().collect::<Vec<_>>().join(", ");
    if let Some((_, _, gem)) = NOT_SUPPORTED.iter().find(|(k, n, _)| *k == kind && *n == name) {
        return format!("'{name}' ({gem}) is not supported by sluice; sluice's {kind} plugins: {list}");
    }
    if let Some(best) = closest(name, known) {
        return format!("did you mean '{best}'? sluice's {kind} plugins: {list}");
    }
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("sluice does not know {article} {kind} plugin named '{name}'; sluice's {kind} plugins: {list}")
}

/// The known name within edit distance 2 (or 1 for short names) of `name`, if one is clearly closest.
fn closest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let max = if name.chars().count() <= 4 { 1 } else { 2 };
    let mut best: Option<(usize, &str)> = None;
    for k in known {
        let d = distance(&name.to_ascii_lowercase(), k);
        if d <= max && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, k));
        }
    }
    best.map(|(_, k)| k)
}

/// Damerau-Levenshtein distance (optimal string alignment), on chars.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: [&str; 4] = ["file", "kinesis_streams", "s3", "stdout"];

    #[test]
    fn known_fluentd_plugins_are_named_as_not_supported() {
        let h = unknown_type_hint("output", "elasticsearch", OUT.iter().copied());
        assert!(h.starts_with("'elasticsearch' (fluent-plugin-elasticsearch) is not supported by sluice"), "{h}");
    }

    #[test]
    fn misspellings_get_a_suggestion() {
        let h = unknown_type_hint("output", "kinesis_stream", OUT.iter().copied());
        assert!(h.starts_with("did you mean 'kinesis_streams'?"), "{h}");
        let h = unknown_type_hint("output", "stdot", OUT.iter().copied());
        assert!(h.starts_with("did you mean 'stdout'?"), "{h}");
        let h = unknown_type_hint("output", "nothing_like_it", OUT.iter().copied());
        assert!(h.starts_with("sluice does not know"), "{h}");
        assert_eq!(distance("fiel", "file"), 1);
    }
}
