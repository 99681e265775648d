//! Progress on stderr for long creates and restores, shown only on a terminal.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const INTERVAL: Duration = Duration::from_millis(250);
const MIB: f64 = 1024.0 * 1024.0;

/// Prints "N MiB <verb> (R MiB/s)" at most four times a second.
pub struct Reporter {
    verb: &'static str,
    enabled: bool,
    started: Instant,
    last: Mutex<Option<Instant>>,
}

impl Reporter {
    pub fn new(verb: &'static str) -> Reporter {
        Reporter {
            verb,
            enabled: std::io::stderr().is_terminal(),
            started: Instant::now(),
            last: Mutex::new(None),
        }
    }

    pub fn update(&self, bytes: u64) {
        if !self.enabled {
            return;
        }
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let now = Instant::now();
        if last.is_some_and(|last| now.duration_since(last) < INTERVAL) {
            return;
        }
        *last = Some(now);
        #[allow(
            clippy::cast_precision_loss,
            reason = "a progress figure needs no exact MiB count"
        )]
        let mebibytes = bytes as f64 / MIB;
        let rate = mebibytes / self.started.elapsed().as_secs_f64().max(1e-3);
        eprint!("\r{mebibytes:.0} MiB {} ({rate:.0} MiB/s)   ", self.verb);
        let _ = std::io::stderr().flush();
    }

    pub fn finish(&self) {
        if self.enabled && self.last.lock().is_ok_and(|last| last.is_some()) {
            eprintln!();
        }
    }
}
