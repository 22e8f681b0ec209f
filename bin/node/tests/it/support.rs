//! What the process tests share: the binary, bounded waits, free ports, and a `mempulse`
//! process whose stderr is captured (and printed when a test fails).

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_mempulse");
/// Bound of every wait (a debug build on a loaded 2-core machine).
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);
/// Pause between two polls of a bounded loop (pacing only: every loop has a deadline).
const POLL_PACE: Duration = Duration::from_millis(50);

/// Free loopback ports: bound to port 0 together (so they differ), then released.
pub(crate) fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> =
        (0..n).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// Polls `probe` until it returns a value; panics naming `what` after [`DEADLINE`].
pub(crate) fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < end, "timed out after {DEADLINE:?} waiting for {what}");
        std::thread::sleep(POLL_PACE);
    }
}

/// A running `mempulse` with its stderr captured line by line.
pub(crate) struct Process {
    name: String,
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl Process {
    /// Starts `mempulse <args>` with compact, uncoloured info logs.
    pub(crate) fn spawn(name: impl Into<String>, args: &[&std::ffi::OsStr]) -> Self {
        let mut child = Command::new(BIN)
            .args(["--log-format", "compact"])
            .args(args)
            .env("RUST_LOG", "info,openraft=warn")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let lines = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        });
        Self { name: name.into(), child: Some(child), log, reader: Some(reader) }
    }

    /// Whether it was started and has not been waited for.
    pub(crate) const fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Sends `kill <name>` (e.g. `-TERM`, `-9`).
    pub(crate) fn signal(&self, name: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let status = Command::new("kill").args([name, &pid]).status().unwrap();
        assert!(status.success(), "kill {name} {pid}");
    }

    /// Waits for the process to exit (bounded) and returns whether it exited with 0.
    pub(crate) fn wait_exit(&mut self) -> bool {
        let mut child = self.child.take().unwrap();
        let status = wait_until(&format!("{} to exit", self.name), || child.try_wait().unwrap());
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        status.success()
    }

    /// Whether a logged line contains `needle`.
    pub(crate) fn logged(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|line| line.contains(needle))
    }

    /// Waits (bounded) until a logged line contains `needle`.
    pub(crate) fn wait_logged(&self, needle: &str) {
        wait_until(&format!("{} to log {needle:?}", self.name), || {
            self.logged(needle).then_some(())
        });
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- {} stderr ---", self.name);
            for line in self.log.lock().unwrap().iter() {
                eprintln!("{line}");
            }
        }
    }
}
