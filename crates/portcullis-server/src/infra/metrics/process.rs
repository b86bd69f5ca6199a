//! The standard process families (`process_*`), read from `/proc/self` at scrape time. On
//! a system without `/proc` each family is simply left out.

use std::fmt::Write;

/// The kernel reports CPU and start times in USER_HZ ticks, 100 on every Linux ABI (the
/// Prometheus client libraries assume the same rather than call sysconf).
const TICKS_PER_SECOND: f64 = 100.0;

pub(super) fn render(out: &mut String) {
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    let stat = stat.as_deref().and_then(Stat::parse);
    if let Some(s) = &stat {
        one_value(
            out,
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent, in seconds.",
            (s.utime + s.stime) as f64 / TICKS_PER_SECOND,
        );
    }
    if let Some(rss) = resident_bytes() {
        one_value(
            out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            rss as f64,
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        one_value(
            out,
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            fds.count() as f64,
        );
    }
    if let Some(max) = max_fds() {
        one_value(
            out,
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors (the soft limit).",
            max as f64,
        );
    }
    if let (Some(s), Some(boot)) = (&stat, boot_time()) {
        one_value(
            out,
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch, in seconds.",
            boot as f64 + s.starttime as f64 / TICKS_PER_SECOND,
        );
    }
}

fn one_value(out: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

/// The fields of `/proc/self/stat` used here, in ticks.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    utime: u64,
    stime: u64,
    starttime: u64,
}

impl Stat {
    /// The command name (field 2) is in parentheses and may hold spaces and parentheses, so
    /// fields are counted from the last `)`: field 3 (state) is the first after it.
    fn parse(text: &str) -> Option<Stat> {
        let (_, rest) = text.rsplit_once(')')?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse().ok();
        Some(Stat {
            utime: field(14)?,
            stime: field(15)?,
            starttime: field(22)?,
        })
    }
}

/// `VmRSS` of `/proc/self/status`, which the kernel gives in kB.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The soft limit of `Max open files` in `/proc/self/limits`; None when unlimited.
fn max_fds() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `btime` of `/proc/stat`: when the system booted, in seconds since the Unix epoch.
fn boot_time() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_from_the_last_parenthesis() {
        let line = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194304 500 0 0 0 \
                    123 45 0 0 20 0 3 0 98765 1000000 250 18446744073709551615";
        assert_eq!(
            Stat::parse(line),
            Some(Stat {
                utime: 123,
                stime: 45,
                starttime: 98765
            })
        );
        assert_eq!(Stat::parse("garbage"), None);
    }

    #[test]
    fn this_process_reports_itself_on_linux() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return;
        }
        let mut out = String::new();
        render(&mut out);
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_start_time_seconds ",
        ] {
            assert!(out.lines().any(|l| l.starts_with(name)), "{name}:\n{out}");
        }
    }
}
