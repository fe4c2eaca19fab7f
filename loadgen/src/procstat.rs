//! CPU time and resident memory of a process, from Linux's `/proc`:
//! `utime + stime` of `/proc/PID/stat` and `VmRSS` of `/proc/PID/status`.

use std::fs;

/// Clock ticks per second in `/proc/PID/stat` (`USER_HZ`, 100 on every
/// Linux architecture this runs on).
const TICKS_PER_SEC: f64 = 100.0;

/// One reading of a process.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    /// User plus system CPU seconds since it started.
    pub cpu_secs: f64,
    /// Resident set size, KiB.
    pub rss_kib: u64,
}

/// `pid` of `None` reads this process.
pub fn sample(pid: Option<u32>) -> Option<Sample> {
    let dir = match pid {
        Some(pid) => format!("/proc/{pid}"),
        None => "/proc/self".to_string(),
    };
    let stat = fs::read_to_string(format!("{dir}/stat")).ok()?;
    let status = fs::read_to_string(format!("{dir}/status")).ok()?;
    Some(Sample {
        cpu_secs: cpu_ticks(&stat)? as f64 / TICKS_PER_SEC,
        rss_kib: rss_kib(&status)?,
    })
}

/// `utime + stime` from a `stat` line. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted after its last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // Field 3 (state) is the first after the name; utime is field 14.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The cores a process may run on (`Cpus_allowed_list` of its status),
/// `None` meaning this process.
pub fn allowed_cpus(pid: Option<u32>) -> Vec<usize> {
    let dir = match pid {
        Some(pid) => format!("/proc/{pid}"),
        None => "/proc/self".to_string(),
    };
    fs::read_to_string(format!("{dir}/status"))
        .ok()
        .and_then(|status| {
            let line = status
                .lines()
                .find(|l| l.starts_with("Cpus_allowed_list:"))?;
            Some(cpu_list(line.split_once(':')?.1.trim()))
        })
        .unwrap_or_default()
}

/// `0-2,5` → `[0, 1, 2, 5]`.
fn cpu_list(list: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.trim().parse::<usize>(), b.trim().parse::<usize>()) {
            cpus.extend(a..=b);
        }
    }
    cpus
}

/// Busy and total jiffies of some cores, from `/proc/stat`: how busy a
/// core was, whoever kept it busy (on a shared machine, others too).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CoreTimes {
    pub busy: u64,
    pub total: u64,
}

impl CoreTimes {
    /// Busy share between two readings, %.
    pub fn busy_pct_since(&self, earlier: &CoreTimes) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        if total == 0 {
            return 0.0;
        }
        100.0 * self.busy.saturating_sub(earlier.busy) as f64 / total as f64
    }
}

pub fn core_times(cpus: &[usize]) -> CoreTimes {
    fs::read_to_string("/proc/stat")
        .map(|stat| core_times_in(&stat, cpus))
        .unwrap_or_default()
}

fn core_times_in(stat: &str, cpus: &[usize]) -> CoreTimes {
    let mut times = CoreTimes::default();
    for line in stat.lines() {
        let mut fields = line.split_whitespace();
        let Some(cpu) = fields
            .next()
            .and_then(|name| name.strip_prefix("cpu"))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        if !cpus.contains(&cpu) {
            continue;
        }
        // user nice system idle iowait irq softirq steal (guest time is
        // already inside user).
        let values: Vec<u64> = fields.take(8).filter_map(|v| v.parse().ok()).collect();
        if values.len() < 5 {
            continue;
        }
        let idle = values[3] + values[4];
        let total: u64 = values.iter().sum();
        times.busy += total - idle;
        times.total += total;
    }
    times
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_lists_and_core_times() {
        assert_eq!(cpu_list("1"), vec![1]);
        assert_eq!(cpu_list("0-2,5"), vec![0, 1, 2, 5]);
        assert_eq!(cpu_list(""), Vec::<usize>::new());
        let stat = "cpu  10 0 10 80 0 0 0 0 0 0\n\
                    cpu0 5 0 5 40 0 0 0 0 0 0\n\
                    cpu1 30 0 10 50 10 0 0 0 0 0\n\
                    intr 1 2 3\n";
        assert_eq!(
            core_times_in(stat, &[1]),
            CoreTimes {
                busy: 40,
                total: 100
            }
        );
        assert_eq!(
            core_times_in(stat, &[0, 1]),
            CoreTimes {
                busy: 50,
                total: 150
            }
        );
        let later = CoreTimes {
            busy: 140,
            total: 200,
        };
        assert_eq!(
            later.busy_pct_since(&CoreTimes {
                busy: 40,
                total: 100
            }),
            100.0
        );
        assert!(
            !allowed_cpus(None).is_empty(),
            "this process runs somewhere"
        );
    }

    #[test]
    fn parses_stat_with_an_awkward_name() {
        let stat = "4242 (my (odd) srv) S 1 4242 4242 0 -1 4194560 500 0 0 0 \
                    1234 567 0 0 20 0 3 0 100 1000000 250 18446744073709551615";
        assert_eq!(cpu_ticks(stat), Some(1234 + 567));
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn parses_vmrss() {
        let status = "Name:\tbanter\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t3\n";
        assert_eq!(rss_kib(status), Some(5120));
        assert_eq!(rss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn reads_this_process() {
        let me = sample(None).expect("/proc/self is readable");
        assert!(me.rss_kib > 0);
        let by_pid = sample(Some(std::process::id())).expect("own pid");
        assert!(by_pid.cpu_secs >= me.cpu_secs);
    }
}
