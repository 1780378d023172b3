//! Clocks and summaries shared by the measurements.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

/// The bench's time origin: send times travel in payloads as nanoseconds
/// since it, so senders and receivers in this process share one clock.
pub static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

pub fn now_ns() -> u64 {
    EPOCH.elapsed().as_nanos() as u64
}

/// The `p`-th percentile (0..=100, nearest rank) of sorted values.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// "p50 a, p99 b, max c" of latencies in nanoseconds, as milliseconds.
pub fn latency_summary(values: &mut [u64]) -> String {
    values.sort_unstable();
    match (
        percentile(values, 50.0),
        percentile(values, 99.0),
        values.last(),
    ) {
        (Some(p50), Some(p99), Some(max)) => format!(
            "p50 {:>8}  p99 {:>8}  max {:>8}  (n={})",
            ms(p50),
            ms(p99),
            ms(*max),
            values.len()
        ),
        _ => "no deliveries".to_string(),
    }
}

/// The p99 of latencies, in nanoseconds.
pub fn p99(values: &mut [u64]) -> Option<u64> {
    values.sort_unstable();
    percentile(values, 99.0)
}

/// Nanoseconds as milliseconds with 2 decimals.
pub fn ms(ns: u64) -> String {
    format!("{:.2} ms", ns as f64 / 1e6)
}

/// A duration in seconds with 3 decimals.
pub fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// min, median and max of durations.
pub fn min_median_max(values: &[Duration]) -> Option<(Duration, Duration, Duration)> {
    let mut v = values.to_vec();
    v.sort_unstable();
    Some((*v.first()?, v[(v.len() - 1) / 2], *v.last()?))
}
