//! The last events of a run, printed when it fails: the last notable ones
//! (anything but datagrams that only carry datagrams on), and the very
//! last ones whatever they were. `VIGIL_SIM_TRACE=<n>` keeps n notable
//! events (default 60); `VIGIL_SIM_TRACE_ALL=1` counts every event as
//! notable.

use std::collections::VecDeque;

use super::net::Time;

const RAW: usize = 15;

#[derive(Debug)]
pub struct Trace {
    notable: VecDeque<String>,
    raw: VecDeque<String>,
    keep: usize,
    /// `VIGIL_SIM_TRACE_ALL`: every event is notable.
    all: bool,
}

impl Default for Trace {
    /// Keeps `VIGIL_SIM_TRACE` notable events (default 60).
    fn default() -> Trace {
        let keep = std::env::var("VIGIL_SIM_TRACE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60);
        Trace {
            notable: VecDeque::new(),
            raw: VecDeque::new(),
            keep,
            all: std::env::var_os("VIGIL_SIM_TRACE_ALL").is_some(),
        }
    }
}

impl Trace {
    pub fn push(&mut self, now: Time, line: String, notable: bool) {
        let line = format!("{:>6}.{:03} ms  {line}", now / 1000, now % 1000);
        if notable || self.all {
            keep(&mut self.notable, self.keep, line.clone());
        }
        keep(&mut self.raw, RAW, line);
    }

    /// Whether to print every output in full.
    pub fn verbose(&self) -> bool {
        self.all
    }

    pub fn render(&self) -> String {
        let mut out = format!(
            "last {} notable events (more with VIGIL_SIM_TRACE=<n>):\n",
            self.notable.len()
        );
        for l in &self.notable {
            out += &format!("  {l}\n");
        }
        out += "last events of any kind:\n";
        for l in &self.raw {
            out += &format!("  {l}\n");
        }
        out
    }
}

fn keep(buf: &mut VecDeque<String>, cap: usize, line: String) {
    if buf.len() == cap {
        buf.pop_front();
    }
    buf.push_back(line);
}
