//! Splitting records into API requests (PutRecords, PutRecordBatch) and retrying the records a request
//! reported as failed, without ever resending the ones that succeeded.
use crate::client::ErrorClass;
use rand::Rng;
use sluice_core::buffer::WriteError;
use std::future::Future;
use std::time::Duration;

/// One record ready to send: its entry position in the chunk, the request payload and its size in bytes
/// as the API counts it.
#[derive(Debug)]
pub struct Prepared<R> {
    pub entry: usize,
    pub rec: R,
    pub size: usize,
}

/// Request limits and the per-write retry policy of the Kinesis plugins.
#[derive(Debug, Clone)]
pub struct BatchPolicy {
    pub max_count: usize,
    pub max_size: usize,
    /// `retries_on_batch_request`: how many times the failed records of a request are sent again.
    pub retries: u32,
    /// `reset_backoff_if_success`: a retry in which some records got through starts the backoff over.
    pub reset_backoff_if_success: bool,
    /// Base of the exponential backoff (the plugin's scaling factor, 0.5 s plus jitter).
    pub backoff_base: Duration,
}

impl BatchPolicy {
    /// The retry parameters both Kinesis plugins share, with their defaults; the limits are per API.
    pub fn from_conf(
        conf: &sluice_core::config::Element,
        max_count: usize,
        max_size: usize,
    ) -> Result<Self, sluice_core::config::ConfigError> {
        // Accepted for compatibility: sluice never logs record contents, so there is nothing to truncate.
        let _ = conf.get("log_truncate_max_size");
        Ok(BatchPolicy {
            max_count,
            max_size,
            retries: conf.int_or("retries_on_batch_request", 8)?.max(0) as u32,
            reset_backoff_if_success: conf.bool_or("reset_backoff_if_success", true)?,
            backoff_base: Duration::from_secs_f64(conf.time_or("batch_request_backoff_base", 0.5)?.max(0.0)),
        })
    }
}

/// The answer to one request: per record, `None` when it was stored or the error code when it was not;
/// or the whole request failed.
pub enum SendResult {
    Ok(Vec<Option<String>>),
    Err { message: String, class: ErrorClass },
}

/// What happened to the records of one write.
#[derive(Debug, Default)]
pub struct DeliveryReport {
    pub delivered: usize,
    pub requests: usize,
    /// Records that still failed after `retries_on_batch_request` retries, with the last error code.
    pub failed_after_retries: Vec<(usize, String)>,
    /// Records not delivered because a whole request failed (to be retried later by the engine).
    pub unsent: Vec<usize>,
    pub request_error: Option<(String, ErrorClass)>,
}

/// Split `sizes` in order into groups of at most `max_count` records and `max_size` bytes. A record larger
/// than `max_size` (callers reject those first) gets a group of its own.
pub fn split(sizes: &[usize], max_count: usize, max_size: usize) -> Vec<std::ops::Range<usize>> {
    let max_count = max_count.max(1);
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0usize;
    for (i, &s) in sizes.iter().enumerate() {
        let n = i - start;
        if n > 0 && (n >= max_count || bytes + s > max_size) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += s;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

fn backoff(policy: &BatchPolicy, n: u32) -> Duration {
    let factor = 1.0 + rand::rng().random::<f64>() * 0.2;
    policy.backoff_base.mul_f64(factor * 2f64.powi(n.min(16) as i32))
}

/// Send `records` in requests within the limits, retry the ones reported as failed with backoff, and
/// report what happened. `send` gets the payloads of one request in order and owns them (no copy is kept
/// per record); `again` prepares the records of the given entries once more (in entry order) for a retry.
pub async fn deliver<R, F, Fut, P>(
    records: Vec<Prepared<R>>,
    policy: &BatchPolicy,
    mut send: F,
    mut again: P,
) -> DeliveryReport
where
    F: FnMut(Vec<R>) -> Fut,
    Fut: Future<Output = SendResult>,
    P: FnMut(&[usize]) -> Vec<Prepared<R>>,
{
    let mut report = DeliveryReport::default();
    let mut pending = records;
    let mut tries = 0u32;
    let mut backoff_n = 0u32;
    loop {
        let sizes: Vec<usize> = pending.iter().map(|p| p.size).collect();
        let groups = split(&sizes, policy.max_count, policy.max_size);
        // Entries that failed this round, in entry order, with the error code.
        let mut failed: Vec<(usize, String)> = Vec::new();
        let mut any_success = false;
        let mut rest = pending.into_iter();
        for g in &groups {
            let (entries, payload): (Vec<usize>, Vec<R>) =
                rest.by_ref().take(g.len()).map(|p| (p.entry, p.rec)).unzip();
            report.requests += 1;
            match send(payload).await {
                SendResult::Ok(codes) => {
                    for (k, &entry) in entries.iter().enumerate() {
                        match codes.get(k) {
                            Some(None) => {
                                report.delivered += 1;
                                any_success = true;
                            }
                            Some(Some(code)) => failed.push((entry, code.clone())),
                            None => failed.push((entry, "MissingResult".into())),
                        }
                    }
                }
                SendResult::Err { message, class } => {
                    // This request and the ones not sent yet go back to the engine, with the records
                    // that failed earlier in this round.
                    report.unsent.extend(failed.iter().map(|(e, _)| *e));
                    report.unsent.extend(entries);
                    report.unsent.extend(rest.map(|p| p.entry));
                    report.request_error = Some((message, class));
                    return report;
                }
            }
        }
        if failed.is_empty() {
            return report;
        }
        if tries >= policy.retries {
            report.failed_after_retries.extend(failed);
            return report;
        }
        tries += 1;
        if any_success && policy.reset_backoff_if_success {
            backoff_n = 0;
        }
        let wait = backoff(policy, backoff_n);
        backoff_n += 1;
        tracing::debug!(
            failed = failed.len(),
            retry = tries,
            wait_ms = wait.as_millis() as u64,
            "retrying failed records of a batch request"
        );
        tokio::time::sleep(wait).await;
        let wanted: Vec<usize> = failed.iter().map(|(e, _)| *e).collect();
        pending = again(&wanted);
        // Preparing is deterministic, so every wanted record comes back; one that did not is rejected
        // with its last error rather than lost.
        if pending.len() != wanted.len() {
            let back: std::collections::HashSet<usize> = pending.iter().map(|p| p.entry).collect();
            report.failed_after_retries.extend(failed.into_iter().filter(|(e, _)| !back.contains(e)));
        }
    }
}

/// Turn a delivery report plus the records rejected before sending into the chunk's result.
pub fn into_result(
    plugin: &str,
    tag: &str,
    report: DeliveryReport,
    mut rejected: Vec<(usize, String)>,
) -> Result<(), WriteError> {
    let DeliveryReport { delivered, failed_after_retries, unsent, request_error, .. } = report;
    if !failed_after_retries.is_empty() {
        tracing::warn!(
            plugin,
            tag,
            records = failed_after_retries.len(),
            "records still failing after retries_on_batch_request: sent to <secondary>/@ERROR"
        );
        rejected
            .extend(failed_after_retries.into_iter().map(|(i, c)| (i, format!("{plugin}: record failed with {c}"))));
    }
    match request_error {
        None if rejected.is_empty() => Ok(()),
        None => {
            let n = rejected.len();
            Err(WriteError::Partial {
                message: format!("{plugin}: {n} record(s) of tag {tag} rejected"),
                retry: Vec::new(),
                rejected,
            })
        }
        Some((msg, class)) => {
            let message = format!("{plugin}: request failed: {msg}");
            if delivered == 0 && rejected.is_empty() {
                return Err(match class {
                    ErrorClass::Retryable => WriteError::retryable(message),
                    ErrorClass::Unrecoverable => WriteError::unrecoverable(message),
                });
            }
            match class {
                ErrorClass::Retryable => {
                    let mut retry = unsent;
                    retry.sort_unstable();
                    Err(WriteError::Partial { message, retry, rejected })
                }
                ErrorClass::Unrecoverable => {
                    rejected.extend(unsent.into_iter().map(|i| (i, message.clone())));
                    Err(WriteError::Partial { message, retry: Vec::new(), rejected })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    #[test]
    fn split_respects_count_and_size() {
        assert_eq!(split(&[1, 1, 1, 1, 1], 2, 100), vec![0..2, 2..4, 4..5]);
        assert_eq!(split(&[60, 50, 40, 10], 500, 100), vec![0..1, 1..4]);
        assert_eq!(split(&[200, 1], 500, 100), vec![0..1, 1..2]);
        assert!(split(&[], 5, 5).is_empty());
        assert_eq!(split(&[100, 0, 0], 500, 100), vec![0..3]);
    }

    fn policy() -> BatchPolicy {
        BatchPolicy {
            max_count: 3,
            max_size: 1000,
            retries: 2,
            reset_backoff_if_success: true,
            backoff_base: Duration::from_millis(1),
        }
    }

    fn recs(n: usize) -> Vec<Prepared<usize>> {
        (0..n).map(|i| Prepared { entry: i, rec: i, size: 10 }).collect()
    }

    fn again(entries: &[usize]) -> Vec<Prepared<usize>> {
        entries.iter().map(|&i| Prepared { entry: i, rec: i, size: 10 }).collect()
    }

    #[tokio::test]
    async fn retries_only_failed_records() {
        let seen = Mutex::new(Vec::new());
        let round = AtomicUsize::new(0);
        let rep = deliver(
            recs(7),
            &policy(),
            |batch: Vec<usize>| {
                let r = round.fetch_add(1, Ordering::SeqCst);
                let codes: Vec<Option<String>> =
                    batch
                        .iter()
                        .map(|i| {
                            if r < 3 && i % 2 == 0 {
                                Some("ProvisionedThroughputExceededException".into())
                            } else {
                                None
                            }
                        })
                        .collect();
                for (i, c) in batch.iter().zip(&codes) {
                    if c.is_none() {
                        seen.lock().unwrap().push(*i);
                    }
                }
                async move { SendResult::Ok(codes) }
            },
            again,
        )
        .await;
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        assert_eq!(seen, (0..7).collect::<Vec<_>>());
        assert_eq!(rep.delivered, 7);
        assert!(rep.failed_after_retries.is_empty());
        assert!(into_result("t", "tag", rep, vec![]).is_ok());
    }

    #[tokio::test]
    async fn gives_up_after_retries() {
        let rep = deliver(
            recs(4),
            &policy(),
            |batch: Vec<usize>| {
                let codes = batch.iter().map(|i| (*i == 1).then(|| "InternalFailure".to_string())).collect();
                async move { SendResult::Ok(codes) }
            },
            again,
        )
        .await;
        assert_eq!(rep.delivered, 3);
        assert_eq!(rep.requests, 2 + 2);
        assert_eq!(rep.failed_after_retries, vec![(1, "InternalFailure".to_string())]);
        match into_result("t", "tag", rep, vec![]) {
            Err(WriteError::Partial { retry, rejected, .. }) => {
                assert!(retry.is_empty());
                assert_eq!(rejected.len(), 1);
                assert_eq!(rejected[0].0, 1);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn request_failure_hands_back_unsent() {
        let calls = AtomicUsize::new(0);
        let rep = deliver(
            recs(7),
            &policy(),
            |batch: Vec<usize>| {
                let c = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if c == 0 {
                        SendResult::Ok(vec![None; batch.len()])
                    } else {
                        SendResult::Err { message: "500".into(), class: ErrorClass::Retryable }
                    }
                }
            },
            again,
        )
        .await;
        assert_eq!(rep.delivered, 3);
        match into_result("t", "tag", rep, vec![]) {
            Err(WriteError::Partial { retry, rejected, .. }) => {
                assert_eq!(retry, vec![3, 4, 5, 6]);
                assert!(rejected.is_empty());
            }
            other => panic!("unexpected {other:?}"),
        }
        let rep = deliver(
            recs(2),
            &policy(),
            |_b: Vec<usize>| async { SendResult::Err { message: "refused".into(), class: ErrorClass::Retryable } },
            again,
        )
        .await;
        assert!(matches!(into_result("t", "tag", rep, vec![]), Err(WriteError::Retryable { .. })));
    }

    /// A payload that cannot be cloned: `deliver` moves each one into its request.
    #[derive(Debug)]
    struct Payload(usize);

    #[tokio::test]
    async fn a_record_not_prepared_again_is_rejected_not_lost() {
        let records = (0..3).map(|i| Prepared { entry: i, rec: Payload(i), size: 10 }).collect();
        let rep = deliver(
            records,
            &policy(),
            |batch: Vec<Payload>| {
                let codes = batch.iter().map(|p| (p.0 == 1).then(|| "InternalFailure".to_string())).collect();
                async move { SendResult::Ok(codes) }
            },
            |_entries: &[usize]| Vec::new(),
        )
        .await;
        assert_eq!(rep.delivered, 2);
        assert_eq!(rep.failed_after_retries, vec![(1, "InternalFailure".to_string())]);
    }
}
