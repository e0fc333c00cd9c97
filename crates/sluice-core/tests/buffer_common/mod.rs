//! Test harness for the buffer engine: a fake destination that fails on command, a capturing output for
//! `<secondary>` and `@ERROR`, and a builder from real Fluentd configuration text.
#![allow(dead_code)]
use async_trait::async_trait;
use parking_lot::Mutex;
use sluice_core::buffer::{BufferDefaults, BufferedOutput, Chunk, ChunkMetadata, ChunkWriter, WriteError};
use sluice_core::config::{parse_str, ConfigError, Element};
use sluice_core::event::{Event, EventTime, Events, Value};
use sluice_core::pattern::TagMatcher;
use sluice_core::plugin::{BuildCtx, EmitError, Output, Registry};
use sluice_core::record;
use sluice_core::router::{Pipeline, Router, RouterHandle, Step};
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub enum Resp {
    Ok,
    Retry,
    Unrecoverable,
    Partial { retry: Vec<usize>, rejected: Vec<usize> },
    Hang(Duration),
}

/// A destination that answers from a script, then with `default`.
pub struct Fake {
    pub script: Mutex<VecDeque<Resp>>,
    pub default: Mutex<Resp>,
    /// Every chunk that was accepted (fully or partly): metadata and the `n` field of delivered records.
    pub delivered: Mutex<Vec<(ChunkMetadata, Vec<i64>)>>,
    pub attempts: Mutex<Vec<Instant>>,
}

impl Fake {
    pub fn new(script: Vec<Resp>, default: Resp) -> Arc<Self> {
        Arc::new(Fake {
            script: Mutex::new(script.into()),
            default: Mutex::new(default),
            delivered: Mutex::new(Vec::new()),
            attempts: Mutex::new(Vec::new()),
        })
    }

    pub fn delivered_ns(&self) -> Vec<i64> {
        let mut v: Vec<i64> = self.delivered.lock().iter().flat_map(|(_, n)| n.clone()).collect();
        v.sort_unstable();
        v
    }

    pub fn set_default(&self, r: Resp) {
        *self.default.lock() = r;
    }
}

fn ns(chunk: &Chunk) -> Vec<i64> {
    chunk.events().map(|e| e.expect("entry decodes").record.get("n").and_then(Value::as_i64).unwrap_or(-1)).collect()
}

#[async_trait]
impl ChunkWriter for Fake {
    async fn write(&self, chunk: &Chunk) -> Result<(), WriteError> {
        self.attempts.lock().push(Instant::now());
        let r = self.script.lock().pop_front().unwrap_or_else(|| self.default.lock().clone());
        match r {
            Resp::Ok => {
                self.delivered.lock().push((chunk.metadata.clone(), ns(chunk)));
                Ok(())
            }
            Resp::Retry => Err(WriteError::retryable("503 from fake")),
            Resp::Unrecoverable => Err(WriteError::unrecoverable("400 from fake")),
            Resp::Partial { retry, rejected } => {
                let all = ns(chunk);
                let ok: Vec<i64> = all
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !retry.contains(i) && !rejected.contains(i))
                    .map(|(_, n)| *n)
                    .collect();
                self.delivered.lock().push((chunk.metadata.clone(), ok));
                Err(WriteError::Partial {
                    message: "some records failed".into(),
                    retry,
                    rejected: rejected.into_iter().map(|i| (i, "invalid record".to_string())).collect(),
                })
            }
            Resp::Hang(d) => {
                tokio::time::sleep(d).await;
                Err(WriteError::retryable("slow"))
            }
        }
    }
}

pub type Sink = Mutex<Vec<(String, Event)>>;

fn sinks() -> &'static Mutex<HashMap<String, Arc<Sink>>> {
    static S: OnceLock<Mutex<HashMap<String, Arc<Sink>>>> = OnceLock::new();
    S.get_or_init(Default::default)
}

pub fn sink(name: &str) -> Arc<Sink> {
    sinks().lock().entry(name.to_string()).or_default().clone()
}

pub fn sink_ns(name: &str) -> Vec<i64> {
    let mut v: Vec<i64> =
        sink(name).lock().iter().map(|(_, e)| e.record.get("n").and_then(Value::as_i64).unwrap_or(-1)).collect();
    v.sort_unstable();
    v
}

/// `@type capture sink NAME`
struct Capture {
    sink: Arc<Sink>,
    fail: bool,
}

impl Output for Capture {
    fn emit(&self, tag: &str, events: Events) -> Result<(), EmitError> {
        if self.fail {
            return Err(EmitError::BufferOverflow { output: "capture".into(), reason: "told to fail".into() });
        }
        let mut s = self.sink.lock();
        for e in events {
            s.push((tag.to_string(), e));
        }
        Ok(())
    }
}

fn build_capture(s: &Element, _ctx: &BuildCtx) -> Result<Arc<dyn Output>, ConfigError> {
    let name = s.required_str("sink")?;
    Ok(Arc::new(Capture { sink: sink(&name), fail: s.bool_or("fail", false)? }))
}

pub struct Harness {
    pub out: Arc<BufferedOutput>,
    pub fake: Arc<Fake>,
    pub router: Arc<Router>,
    /// Name of the sink that `@ERROR` writes to.
    pub errors: String,
}

/// Build a BufferedOutput from `<match>` text. `@ERROR` events land in sink `<test>-errors`.
pub fn build(test: &str, match_text: &str, fake: Arc<Fake>) -> Result<Harness, ConfigError> {
    build_with(test, match_text, fake, BufferDefaults::default())
}

pub fn build_with(
    test: &str,
    match_text: &str,
    fake: Arc<Fake>,
    defaults: BufferDefaults,
) -> Result<Harness, ConfigError> {
    build_in(test, match_text, fake, defaults, None)
}

/// [`build_with`] with `<system> root_dir`.
pub fn build_in(
    test: &str,
    match_text: &str,
    fake: Arc<Fake>,
    defaults: BufferDefaults,
    root_dir: Option<&Path>,
) -> Result<Harness, ConfigError> {
    let sys = sluice_core::plugin::SystemConfig { root_dir: root_dir.map(Path::to_path_buf), ..Default::default() };
    build_with_system(test, match_text, fake, defaults, sys)
}

/// As [`build_in`], with the whole `<system>` given (root_dir, state directory).
pub fn build_with_system(
    test: &str,
    match_text: &str,
    fake: Arc<Fake>,
    defaults: BufferDefaults,
    sys: sluice_core::plugin::SystemConfig,
) -> Result<Harness, ConfigError> {
    let root = parse_str(match_text, Path::new("test.conf"))?;
    let conf = root.children.first().expect("one <match>").clone();
    let mut reg = Registry::new();
    reg.register_output("capture", build_capture);
    let errors = format!("{test}-errors");
    let handle = RouterHandle::new();
    let mut ctx = BuildCtx { router: handle.clone(), ..BuildCtx::new(Arc::new(reg)) };
    ctx.system = Arc::new(sluice_core::plugin::SystemConfig { hostname: ctx.system.hostname.clone(), ..sys });
    let out = Arc::new(BufferedOutput::build_engine(&conf, &ctx, defaults, fake.clone())?);
    let err_out: Arc<dyn Output> = Arc::new(Capture { sink: sink(&errors), fail: false });
    let router = Arc::new(Router::new(vec![Pipeline::new(
        "@ERROR",
        vec![Step::Match { matcher: TagMatcher::new("**").expect("pattern"), output: err_out }],
    )]));
    handle.set(&router);
    Ok(Harness { out, fake, router, errors })
}

pub fn events(range: std::ops::Range<i64>) -> Events {
    range.map(|n| Event::new(EventTime::new(1_700_000_000 + n, 0), record! {"n" => n, "msg" => "hello"})).collect()
}

pub fn event_at(sec: i64, n: i64, host: &str) -> Event {
    Event::new(EventTime::new(sec, 0), record! {"n" => n, "host" => host})
}

/// Poll until `f` holds or `timeout` passes.
pub async fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}
