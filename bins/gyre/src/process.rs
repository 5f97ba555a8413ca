//! What Linux says of this process (`/proc/self`), for `/metrics`: resident
//! memory, open file descriptors, threads and CPU time. `None` where
//! `/proc` is not there or does not parse.

use gyre_api::ProcessStats;

/// This process's figures now.
pub(crate) fn stats() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (threads, cpu_ticks, rss_pages) = parse_stat(&stat)?;
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some(ProcessStats {
        resident_bytes: rss_pages.saturating_mul(page_size()),
        open_fds,
        threads,
        cpu_ms: cpu_ticks.saturating_mul(1000) / clock_ticks(),
    })
}

/// From `/proc/self/stat`: threads, CPU ticks (user + system) and resident
/// pages. Fields are counted after the command name's closing parenthesis,
/// which may itself hold spaces or parentheses.
fn parse_stat(stat: &str) -> Option<(u64, u64, u64)> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field n is fields[n - 3].
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    let cpu = field(14)?.checked_add(field(15)?)?;
    Some((field(20)?, cpu, field(24)?))
}

/// Linux's page size on the platforms Gyre runs on; `/proc` counts in it.
fn page_size() -> u64 {
    4096
}

/// Linux's `USER_HZ`, the unit of `/proc`'s CPU times: 100 on every
/// mainstream architecture.
fn clock_ticks() -> u64 {
    100
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_even_with_odd_command_names() {
        let line = "1234 (gy re) (x)) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 7 0 100 123456789 2048 18446744073709551615";
        assert_eq!(parse_stat(line), Some((7, 300, 2048)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_seen() {
        let s = stats().expect("/proc/self on Linux");
        assert!(
            s.threads >= 1 && s.open_fds >= 1 && s.resident_bytes > 0,
            "{s:?}"
        );
    }
}
