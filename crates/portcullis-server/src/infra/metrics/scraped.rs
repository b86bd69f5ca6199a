//! Families read from other parts at scrape time: the session cache's hit and miss counts
//! and the database pools' figures.

use std::fmt::Write;

use portcullis_store::PoolStats;

use super::family;
use crate::infra::session_cache::CacheLookups;

/// A pool gauge: its name, its help, and how to read it off the pool's figures.
type PoolGauge = (&'static str, &'static str, fn(&PoolStats) -> u32);

pub(super) fn render_cache(out: &mut String, cache: &[CacheLookups]) {
    family(
        out,
        "portcullis_session_cache_hits_total",
        "counter",
        "Answers served from the in-process session cache, by kind.",
    );
    for c in cache {
        let _ = writeln!(
            out,
            "portcullis_session_cache_hits_total{{kind=\"{}\"}} {}",
            c.kind, c.hits
        );
    }
    family(
        out,
        "portcullis_session_cache_misses_total",
        "counter",
        "Lookups the session cache could not answer (the database did), by kind.",
    );
    for c in cache {
        let _ = writeln!(
            out,
            "portcullis_session_cache_misses_total{{kind=\"{}\"}} {}",
            c.kind, c.misses
        );
    }
}

pub(super) fn render_pools(out: &mut String, pools: &[PoolStats]) {
    let gauges: [PoolGauge; 4] = [
        (
            "portcullis_db_pool_connections",
            "Open database connections, idle or in use.",
            |p| p.size,
        ),
        (
            "portcullis_db_pool_idle_connections",
            "Open database connections waiting in the pool.",
            |p| p.idle,
        ),
        (
            "portcullis_db_pool_in_use_connections",
            "Database connections checked out of the pool.",
            |p| p.size.saturating_sub(p.idle),
        ),
        (
            "portcullis_db_pool_max_connections",
            "The pool's connection limit.",
            |p| p.max,
        ),
    ];
    for (name, help, value) in gauges {
        family(out, name, "gauge", help);
        for p in pools {
            let _ = writeln!(out, "{name}{{pool=\"{}\"}} {}", p.pool, value(p));
        }
    }
    let name = "portcullis_db_pool_acquire_wait_seconds";
    family(
        out,
        name,
        "summary",
        "Time transactions waited for a pooled connection and their BEGIN.",
    );
    for p in pools {
        if let Some((count, wait)) = p.acquires {
            let _ = writeln!(
                out,
                "{name}_sum{{pool=\"{}\"}} {}",
                p.pool,
                wait.as_secs_f64()
            );
            let _ = writeln!(out, "{name}_count{{pool=\"{}\"}} {count}", p.pool);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn pools_report_gauges_and_only_measured_waits() {
        let pools = [
            PoolStats {
                pool: "read",
                size: 3,
                idle: 2,
                max: 8,
                acquires: None,
            },
            PoolStats {
                pool: "write",
                size: 1,
                idle: 0,
                max: 1,
                acquires: Some((4, Duration::from_millis(2))),
            },
        ];
        let mut text = String::new();
        render_pools(&mut text, &pools);
        assert!(text.contains("portcullis_db_pool_in_use_connections{pool=\"read\"} 1\n"));
        assert!(text.contains("portcullis_db_pool_acquire_wait_seconds_count{pool=\"write\"} 4\n"));
        assert!(
            text.contains("portcullis_db_pool_acquire_wait_seconds_sum{pool=\"write\"} 0.002\n")
        );
        assert!(!text.contains("acquire_wait_seconds_count{pool=\"read\"}"));
    }
}
