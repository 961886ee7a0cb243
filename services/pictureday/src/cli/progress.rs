//! Progress as a person reads it: on a terminal, one line redrawn in place (a bar, bytes, rate,
//! time left); elsewhere (CI logs, pipes) plain lines, a few per minute, that a log keeps.

use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// A line redrawn in place on standard error.
    Terminal,
    /// Plain lines on standard error.
    Plain,
}

impl Display {
    /// A terminal's bar unless asked for plain lines or standard error is not a terminal.
    pub fn choose(plain: bool) -> Self {
        if plain || !std::io::stderr().is_terminal() {
            Display::Plain
        } else {
            Display::Terminal
        }
    }

    /// How often a line is written.
    fn every(self) -> Duration {
        match self {
            Display::Terminal => Duration::from_millis(200),
            Display::Plain => Duration::from_secs(5),
        }
    }
}

/// Bytes sent so far, counted by the upload as it goes.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn add(&self, bytes: u64) {
        self.0.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Shows an upload's progress until `stop` is called; `total` is what will be sent, when known
/// (a folder zipped on the fly is a little more than its files).
pub struct UploadMeter {
    display: Display,
    counter: Counter,
    total: u64,
    started: Instant,
    task: tokio::task::JoinHandle<()>,
}

impl UploadMeter {
    pub fn start(display: Display, counter: Counter, total: u64) -> Self {
        let started = Instant::now();
        let (task_counter, every) = (counter.clone(), display.every());
        let task = tokio::spawn(async move {
            let mut last_plain: Option<u64> = None;
            loop {
                tokio::time::sleep(every).await;
                let sent = task_counter.get();
                // Plain lines only when something moved.
                if display == Display::Plain && last_plain == Some(sent) {
                    continue;
                }
                last_plain = Some(sent);
                write_line(display, &upload_line(sent, total, started.elapsed()));
            }
        });
        Self {
            display,
            counter,
            total,
            started,
            task,
        }
    }

    /// Stops the meter and writes the final line.
    pub fn stop(self) -> Duration {
        self.task.abort();
        let elapsed = self.started.elapsed();
        let sent = self.counter.get();
        write_line(
            self.display,
            &upload_line(sent, self.total.max(sent), elapsed),
        );
        if self.display == Display::Terminal {
            eprintln!();
        }
        elapsed
    }
}

/// `upload [#########           ]  45%  12.3 MB of 27.0 MB  3.1 MB/s  ETA 0:05`
pub fn upload_line(sent: u64, total: u64, elapsed: Duration) -> String {
    let rate = sent as f64 / elapsed.as_secs_f64().max(0.001);
    let eta = if total > sent && rate > 0.0 {
        format!(
            "ETA {}",
            clock(Duration::from_secs_f64((total - sent) as f64 / rate))
        )
    } else if total > 0 && sent >= total {
        format!("in {}", clock(elapsed))
    } else {
        String::new()
    };
    format!(
        "upload {} {:>3}%  {} of {}  {}/s  {eta}",
        bar(sent, total),
        percent(sent, total),
        size(sent),
        size(total),
        size(rate as u64),
    )
}

/// `job    [#####               ]  25%  125 of 500 files  (120 applied, 5 unmatched, 0 rejected)`
pub fn job_line(done: u64, files: u64, applied: u64, unmatched: u64, rejected: u64) -> String {
    format!(
        "job    {} {:>3}%  {done} of {files} files  ({applied} applied, {unmatched} unmatched, {rejected} rejected)",
        bar(done, files),
        percent(done, files),
    )
}

pub fn write_line(display: Display, line: &str) {
    let mut err = std::io::stderr().lock();
    // A progress line that cannot be written is not worth failing an upload for.
    let _ = match display {
        Display::Terminal => write!(err, "\r\x1b[2K{line}"),
        Display::Plain => writeln!(err, "{line}"),
    };
    let _ = err.flush();
}

fn percent(done: u64, total: u64) -> u64 {
    (done.min(total) * 100).checked_div(total).unwrap_or(0)
}

fn bar(done: u64, total: u64) -> String {
    const WIDTH: u64 = 20;
    let filled = (done.min(total) * WIDTH).checked_div(total).unwrap_or(0);
    format!(
        "[{}{}]",
        "#".repeat(filled as usize),
        " ".repeat((WIDTH - filled) as usize)
    )
}

/// Bytes for people: `512 B`, `12.3 MB`, `1.20 GB`.
pub fn size(bytes: u64) -> String {
    const KB: f64 = 1000.0;
    let b = bytes as f64;
    if b < KB {
        format!("{bytes} B")
    } else if b < KB * KB {
        format!("{:.1} kB", b / KB)
    } else if b < KB * KB * KB {
        format!("{:.1} MB", b / (KB * KB))
    } else {
        format!("{:.2} GB", b / (KB * KB * KB))
    }
}

/// `1:05`, `1:02:03`.
pub fn clock(duration: Duration) -> String {
    let s = duration.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_how_far_how_fast_and_how_long() {
        assert_eq!(
            upload_line(5_000_000, 20_000_000, Duration::from_secs(2)),
            "upload [#####               ]  25%  5.0 MB of 20.0 MB  2.5 MB/s  ETA 0:06"
        );
        assert_eq!(
            upload_line(20_000_000, 20_000_000, Duration::from_secs(8)),
            "upload [####################] 100%  20.0 MB of 20.0 MB  2.5 MB/s  in 0:08"
        );
        assert_eq!(
            job_line(125, 500, 120, 5, 0),
            "job    [#####               ]  25%  125 of 500 files  (120 applied, 5 unmatched, 0 rejected)"
        );
        assert!(job_line(0, 0, 0, 0, 0).contains("  0%"));
        assert_eq!(clock(Duration::from_secs(3723)), "1:02:03");
        assert_eq!(size(999), "999 B");
        assert_eq!(size(1_200_000_000), "1.20 GB");
    }
}
