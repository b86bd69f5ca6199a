//! Prometheus metrics: request counts and latency by route template and status. A tiny
//! registry of atomics rather than a metrics framework: the hot path takes one read lock
//! and a few relaxed increments.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Series {
    count: AtomicU64,
    sum_micros: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
}

/// Route template → (method, status) → series. Keyed by route first so the hot path can
/// look up with the borrowed `&str` of the matched path, without allocating.
type Table = BTreeMap<String, BTreeMap<(&'static str, u16), Series>>;

#[derive(Default)]
pub struct Metrics {
    series: RwLock<Table>,
}

impl Metrics {
    pub fn record(&self, method: &'static str, route: &str, status: u16, elapsed: Duration) {
        let observe = |s: &Series| {
            s.count.fetch_add(1, Ordering::Relaxed);
            s.sum_micros
                .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
            let secs = elapsed.as_secs_f64();
            if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
                s.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        };
        if let Ok(map) = self.series.read()
            && let Some(s) = map.get(route).and_then(|r| r.get(&(method, status)))
        {
            observe(s);
            return;
        }
        if let Ok(mut map) = self.series.write() {
            observe(
                map.entry(route.to_owned())
                    .or_default()
                    .entry((method, status))
                    .or_default(),
            );
        }
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(map) = self.series.read() else {
            return out;
        };
        out.push_str("# HELP portcullis_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE portcullis_http_requests_total counter\n");
        let all = || {
            map.iter()
                .flat_map(|(route, r)| r.iter().map(move |((m, st), s)| (*m, route, *st, s)))
        };
        for (method, route, status, s) in all() {
            let _ = writeln!(
                out,
                "portcullis_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {}",
                s.count.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP portcullis_http_request_duration_seconds HTTP request latency.\n");
        out.push_str("# TYPE portcullis_http_request_duration_seconds histogram\n");
        for (method, route, status, s) in all() {
            let labels = format!("method=\"{method}\",route=\"{route}\",status=\"{status}\"");
            let mut cumulative = 0;
            for (i, b) in BUCKETS.iter().enumerate() {
                cumulative += s.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "portcullis_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {cumulative}"
                );
            }
            let count = s.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "portcullis_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "portcullis_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "portcullis_http_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let m = Metrics::default();
        m.record("GET", "/v1/me", 200, Duration::from_micros(300));
        m.record("GET", "/v1/me", 200, Duration::from_millis(20));
        m.record("GET", "/v1/me", 401, Duration::from_micros(100));
        let text = m.render();
        assert!(text.contains(
            "portcullis_http_requests_total{method=\"GET\",route=\"/v1/me\",status=\"200\"} 2"
        ));
        assert!(text.contains("status=\"401\"} 1"));
        assert!(text.contains("route=\"/v1/me\",status=\"200\",le=\"0.0005\"} 1"));
        assert!(text.contains("route=\"/v1/me\",status=\"200\",le=\"0.025\"} 2"));
        assert!(text.contains("route=\"/v1/me\",status=\"200\",le=\"+Inf\"} 2"));
    }
}
