//! Mask filter throughput on the shared PII corpus: MB/s and records/s with every detector on and
//! `scan_all true`, on the whole corpus and on its clean lines only (the common case in real logs).
//! Run: `cargo bench -p sluice-mask --bench mask`.
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sluice_core::event::{Event, EventTime, Events, Map, Value};
use sluice_core::plugin::{ErrorEvents, Filter};
use sluice_mask::MaskFilter;
use std::path::PathBuf;

fn corpus() -> Vec<(String, bool)> {
    let path = std::env::var("SLUICE_PII_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/pii/corpus.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("corpus {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("corpus line");
            let clean = v["pii"].as_array().is_some_and(|a| a.is_empty());
            (v["text"].as_str().unwrap_or_default().to_string(), clean)
        })
        .collect()
}

fn filter(body: &str) -> MaskFilter {
    let text = format!("<filter **>\n  @type mask\n{body}\n</filter>\n");
    let root = sluice_core::config::parse_str(&text, std::path::Path::new("bench.conf")).expect("config");
    MaskFilter::from_conf(&root.children[0]).expect("filter")
}

/// Records shaped like an application log line after parsing.
fn events(lines: &[&str]) -> Events {
    lines
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut m = Map::new();
            m.insert("level", Value::from("info"));
            m.insert("host", Value::from("web-01"));
            m.insert("request_id", Value::from(format!("req-{i:08}")));
            m.insert("status", Value::Int(200));
            m.insert("message", Value::from(*t));
            Event::new(EventTime::default(), m)
        })
        .collect()
}

fn bytes_of(ev: &Events) -> u64 {
    ev.iter()
        .map(|e| e.record.iter().map(|(k, v)| k.len() + v.as_str().map_or(8, str::len)).sum::<usize>() as u64)
        .sum()
}

fn bench(c: &mut Criterion) {
    let corpus = corpus();
    let all: Vec<&str> = corpus.iter().map(|(t, _)| t.as_str()).collect();
    let clean: Vec<&str> = corpus.iter().filter(|(_, c)| *c).map(|(t, _)| t.as_str()).collect();
    let cases = [
        ("all_detectors_scan_all/corpus", "detectors all\n  scan_all true", &all),
        ("all_detectors_scan_all/clean_only", "detectors all\n  scan_all true", &clean),
        ("default_detectors/corpus", "", &all),
    ];
    for (name, conf, lines) in cases {
        let f = filter(conf);
        let ev = events(lines);
        let mut g = c.benchmark_group(format!("mask_bytes/{name}"));
        g.throughput(Throughput::Bytes(bytes_of(&ev)));
        g.bench_function("filter", |b| {
            b.iter_batched(
                || ev.clone(),
                |mut batch| {
                    let mut errors = ErrorEvents::default();
                    f.filter("app", &mut batch, &mut errors);
                    batch
                },
                BatchSize::LargeInput,
            )
        });
        g.finish();
        let mut g = c.benchmark_group(format!("mask_records/{name}"));
        g.throughput(Throughput::Elements(ev.len() as u64));
        g.bench_function("filter", |b| {
            b.iter_batched(
                || ev.clone(),
                |mut batch| {
                    let mut errors = ErrorEvents::default();
                    f.filter("app", &mut batch, &mut errors);
                    batch
                },
                BatchSize::LargeInput,
            )
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
