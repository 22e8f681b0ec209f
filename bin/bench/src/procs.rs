//! Real processes for the end-to-end benchmarks: `mempulse` nodes on 127.0.0.1 free ports, each
//! with its own data directory under one temp dir, killed (SIGKILL) and reaped when dropped, so
//! an error or a panic in the bench never leaves a node running.
//!
//! Each process writes stderr to `<name>.log` in the temp dir; a node that fails to start is
//! reported with the tail of its log.

use std::{
    fs::File,
    io::Read as _,
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use crate::{
    http_client::HttpConn,
    interrupt::{Stop, Tracked},
};

/// Bound on a node (or cluster) becoming ready, including a replay of a prefilled log.
pub(crate) const START_DEADLINE: Duration = Duration::from_secs(120);
/// Pause between two polls of a bounded wait (pacing only: every wait has a deadline).
pub(crate) const POLL_PACE: Duration = Duration::from_millis(20);
/// Bytes of a log shown when a process fails.
const LOG_TAIL_BYTES: u64 = 4096;

/// The `mempulse` binary: `--mempulse PATH`, else the one next to this executable (both are
/// built into the same target directory).
///
/// # Errors
/// Fails when the binary does not exist, with the build command to run.
pub(crate) fn mempulse_bin(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()?.with_file_name("mempulse"),
    };
    ensure!(
        path.is_file(),
        "no mempulse binary at {}; build it with `cargo build --release -p mempulse-node \
         -p mempulse-bench` or pass --mempulse PATH",
        path.display()
    );
    Ok(path)
}

/// `n` distinct free loopback ports (bound together so they differ, then released).
///
/// # Errors
/// Fails if the system has no free port.
pub(crate) fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("binding a free port")?;
    Ok(listeners.iter().filter_map(|l| l.local_addr().ok()).map(|a| a.port()).collect())
}

/// A child process with stderr in a log file; killed and reaped on drop.
#[derive(Debug)]
pub(crate) struct Proc {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    /// Registered while it runs, so an interrupted bench kills it too.
    tracked: Option<Tracked>,
}

impl Proc {
    /// Spawns `command` with stdout discarded and stderr appended to `log`.
    ///
    /// # Errors
    /// Fails if the log cannot be opened or the process cannot start.
    pub(crate) fn spawn(name: &str, mut command: Command, log: &Path) -> anyhow::Result<Self> {
        let file = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::from(file));
        let (child, tracked) =
            Tracked::spawn(&mut command, Stop::Kill).with_context(|| format!("starting {name}"))?;
        let tracked = Some(tracked);
        Ok(Self { name: name.to_owned(), child: Some(child), log: log.to_path_buf(), tracked })
    }

    /// Whether it runs (started and not reaped).
    pub(crate) const fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// `kill -9` and reap it.
    ///
    /// # Errors
    /// Fails if the signal cannot be sent or the process not reaped.
    pub(crate) fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().with_context(|| format!("kill -9 {}", self.name))?;
            child.wait().with_context(|| format!("reaping {}", self.name))?;
            self.tracked = None;
        }
        Ok(())
    }

    /// Fails, with the end of its log, if it has exited.
    ///
    /// # Errors
    /// When the process is not running.
    pub(crate) fn check_alive(&mut self) -> anyhow::Result<()> {
        let exited = match self.child.as_mut() {
            Some(child) => child.try_wait()?,
            None => bail!("{} is not running", self.name),
        };
        if let Some(status) = exited {
            self.child = None;
            self.tracked = None;
            bail!("{} exited ({status}); its log ends with:\n{}", self.name, self.log_tail());
        }
        Ok(())
    }

    /// The last bytes of its log.
    pub(crate) fn log_tail(&self) -> String {
        let Ok(mut file) = File::open(&self.log) else { return String::new() };
        let len = file.metadata().map_or(0, |m| m.len());
        let mut bytes = Vec::new();
        let skip = len.saturating_sub(LOG_TAIL_BYTES);
        let _ = std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(skip));
        let _ = file.take(LOG_TAIL_BYTES).read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One HTTP exchange on a fresh connection, bounded by `timeout`: (status, body as JSON, or
/// `Null` when it is not JSON).
///
/// # Errors
/// Fails on a connection error or timeout.
pub(crate) async fn http_json(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> anyhow::Result<(u16, Value)> {
    let exchange = async {
        let mut conn = HttpConn::connect(addr).await?;
        let headers = [("Content-Type", "application/json"), ("Accept", "application/json")];
        conn.request(method, path, &headers, body).await
    };
    let response = tokio::time::timeout(timeout, exchange)
        .await
        .with_context(|| format!("{method} http://{addr}{path} timed out"))?
        .with_context(|| format!("{method} http://{addr}{path}"))?;
    Ok((response.status, serde_json::from_slice(&response.body).unwrap_or(Value::Null)))
}

/// Polls `probe` until it returns a value, at most until `deadline` from now.
///
/// # Errors
/// Fails naming `what` when the deadline passes, or with `probe`'s error.
pub(crate) async fn wait_for<T, F, Fut>(
    what: &str,
    deadline: Duration,
    mut probe: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(value) = probe().await? {
            return Ok(value);
        }
        ensure!(Instant::now() < end, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(POLL_PACE).await;
    }
}

/// `GET path` on a fresh connection, bounded by `timeout`: the body as text when the status is
/// 200.
///
/// # Errors
/// Fails on a connection error, a timeout or another status.
pub(crate) async fn http_text(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> anyhow::Result<String> {
    let exchange = async {
        let mut conn = HttpConn::connect(addr).await?;
        conn.request("GET", path, &[], b"").await
    };
    let response = tokio::time::timeout(timeout, exchange)
        .await
        .with_context(|| format!("GET http://{addr}{path} timed out"))?
        .with_context(|| format!("GET http://{addr}{path}"))?;
    ensure!(response.status == 200, "GET http://{addr}{path}: status {}", response.status);
    Ok(String::from_utf8_lossy(&response.body).into_owned())
}
