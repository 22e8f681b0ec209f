//! The devnet's child processes: `mempulse run` and `mempulse txsource` from the same
//! executable, each in its own process group (a terminal's Ctrl-C reaches only the devnet,
//! which stops them in order), logs appended to files. `kill -9` and restart on demand; on
//! stop SIGTERM, then SIGKILL past a bound; dropping [`Children`] kills whatever still runs,
//! so no path out of the devnet leaves an orphan behind.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    fs::{File, OpenOptions},
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::Duration,
};

use anyhow::Context;
use mempulse_primitives::NodeId;
use rustix::process::{Pid, Signal, kill_process};
use tokio::time::Instant;

/// Pause between two checks of a process's exit (every wait also has a deadline).
const EXIT_POLL: Duration = Duration::from_millis(25);
/// Bound on reaping a process after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// The children's log filter when the devnet's environment sets none.
const RUST_LOG_DEFAULT: &str = "info,openraft=warn";

/// Which child.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ChildKey {
    Node(NodeId),
    Source(NodeId),
}

impl ChildKey {
    pub(crate) fn name(self) -> String {
        match self {
            Self::Node(id) => format!("node {}", id.0),
            Self::Source(id) => format!("source {}", id.0),
        }
    }
}

/// How to start one child.
#[derive(Clone, Debug)]
pub(crate) struct ChildSpec {
    /// Arguments after the executable.
    pub(crate) args: Vec<OsString>,
    /// Where its stdout goes (`None`: into `stderr`'s file).
    pub(crate) stdout: Option<PathBuf>,
    /// Where its stderr goes (appended, across restarts).
    pub(crate) stderr: PathBuf,
}

/// What became of a child that ended on its own.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Exited {
    pub(crate) key: ChildKey,
    pub(crate) status: ExitStatus,
}

#[derive(Debug)]
struct Supervised {
    spec: ChildSpec,
    child: Option<Child>,
}

/// Every child of the devnet.
#[derive(Debug)]
pub(crate) struct Children {
    exe: PathBuf,
    prefix: Vec<OsString>,
    children: BTreeMap<ChildKey, Supervised>,
}

impl Children {
    /// Children of the executable at `exe`, every one started with `prefix` before its own
    /// arguments.
    pub(crate) fn new(exe: PathBuf, prefix: Vec<OsString>) -> Self {
        Self { exe, prefix, children: BTreeMap::new() }
    }

    /// Starts (or restarts) `key` as `spec`; returns its pid.
    ///
    /// # Errors
    /// `key` still runs, the log files cannot be opened or the process cannot be spawned.
    pub(crate) fn start(&mut self, key: ChildKey, spec: ChildSpec) -> anyhow::Result<u32> {
        let stderr = append(&spec.stderr)?;
        let stdout = match &spec.stdout {
            Some(path) => append(path)?,
            None => stderr.try_clone().context("sharing a log file")?,
        };
        let mut command = Command::new(&self.exe);
        command
            .args(&self.prefix)
            .args(&spec.args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", RUST_LOG_DEFAULT);
        }
        if self.pid(key).is_some() {
            anyhow::bail!("{} is already running", key.name());
        }
        let child = command.spawn().with_context(|| format!("starting {}", key.name()))?;
        let pid = child.id();
        self.children.insert(key, Supervised { spec, child: Some(child) });
        Ok(pid)
    }

    /// Starts `key` again with the spec it last ran with.
    ///
    /// # Errors
    /// As [`Children::start`]; an unknown key.
    pub(crate) fn restart(&mut self, key: ChildKey) -> anyhow::Result<u32> {
        let spec = self.children.get(&key).map(|s| s.spec.clone());
        let spec = spec.with_context(|| format!("{} was never started", key.name()))?;
        self.start(key, spec)
    }

    /// The pid of `key` while it runs.
    pub(crate) fn pid(&self, key: ChildKey) -> Option<u32> {
        self.children.get(&key)?.child.as_ref().map(Child::id)
    }

    /// `kill -9` of `key` and its reaping (bounded); returns its pid, `None` when it was not
    /// running.
    pub(crate) async fn kill9(&mut self, key: ChildKey) -> Option<u32> {
        let mut child = self.children.get_mut(&key)?.child.take()?;
        let pid = child.id();
        let _ = child.kill();
        wait_bounded(&mut child, KILL_WAIT).await;
        Some(pid)
    }

    /// The children that ended since the last call without being asked to (they stay down).
    pub(crate) fn reap(&mut self) -> Vec<Exited> {
        let mut out = Vec::new();
        for (key, supervised) in &mut self.children {
            let Some(child) = supervised.child.as_mut() else { continue };
            if let Ok(Some(status)) = child.try_wait() {
                supervised.child = None;
                out.push(Exited { key: *key, status });
            }
        }
        out
    }

    /// Stops the running children `keys` select: SIGTERM to each, then waits up to `bound`
    /// for all of them, then SIGKILL for the rest. Returns the keys that needed SIGKILL.
    pub(crate) async fn stop(
        &mut self,
        select: impl Fn(ChildKey) -> bool,
        bound: Duration,
    ) -> Vec<ChildKey> {
        let mut stopping: Vec<(ChildKey, Child)> = Vec::new();
        for (key, supervised) in &mut self.children {
            if !select(*key) {
                continue;
            }
            if let Some(child) = supervised.child.take() {
                terminate(&child);
                stopping.push((*key, child));
            }
        }
        let deadline = Instant::now() + bound;
        loop {
            stopping.retain_mut(|(_, child)| !matches!(child.try_wait(), Ok(Some(_)) | Err(_)));
            if stopping.is_empty() || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(EXIT_POLL).await;
        }
        let mut killed = Vec::new();
        for (key, mut child) in stopping {
            let _ = child.kill();
            wait_bounded(&mut child, KILL_WAIT).await;
            killed.push(key);
        }
        killed
    }
}

impl Drop for Children {
    /// Kills whatever still runs (an error or a panic on the way out leaves no orphan).
    fn drop(&mut self) {
        for supervised in self.children.values_mut() {
            if let Some(mut child) = supervised.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// SIGTERM (the child's graceful path).
fn terminate(child: &Child) {
    let pid = i32::try_from(child.id()).ok().and_then(Pid::from_raw);
    if let Some(pid) = pid {
        let _ = kill_process(pid, Signal::TERM);
    }
}

/// Reaps `child`, polling up to `bound` (a process in uninterruptible IO may outlive SIGKILL
/// for a moment; it is left to the kernel past the bound).
async fn wait_bounded(child: &mut Child, bound: Duration) {
    let deadline = Instant::now() + bound;
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        tokio::time::sleep(EXIT_POLL).await;
    }
}

fn append(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    /// A shell child running `script` with `trap` answering SIGTERM by `on_term`.
    fn spec(dir: &Path, name: &str, on_term: &str) -> ChildSpec {
        let script = format!("trap '{on_term}' TERM\necho up $$\nwhile :; do sleep 0.02; done\n");
        let path = dir.join(format!("{name}.sh"));
        std::fs::write(&path, script).unwrap();
        ChildSpec {
            args: vec![path.into()],
            stdout: Some(dir.join(format!("{name}.out"))),
            stderr: dir.join(format!("{name}.err")),
        }
    }

    /// Whether `pid` is a live process running one of this test's scripts.
    fn alive(pid: u32, dir: &Path) -> bool {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|cmd| String::from_utf8_lossy(&cmd).contains(&*dir.to_string_lossy()))
    }

    #[test]
    fn stop_terminates_the_polite_and_kills_the_stubborn() {
        let dir = tempfile::tempdir().unwrap();
        let mut children = Children::new("/bin/sh".into(), Vec::new());
        let polite = ChildKey::Node(NodeId(1));
        let stubborn = ChildKey::Node(NodeId(2));
        let source = ChildKey::Source(NodeId(1001));
        children.start(polite, spec(dir.path(), "polite", "exit 0")).unwrap();
        children.start(stubborn, spec(dir.path(), "stubborn", "")).unwrap();
        let other = children.start(source, spec(dir.path(), "source", "exit 0")).unwrap();
        let (p1, p2) = (children.pid(polite).unwrap(), children.pid(stubborn).unwrap());
        let rt = runtime();
        // Each script traps SIGTERM before it prints `up`.
        for (name, pid) in [("polite", p1), ("stubborn", p2), ("source", other)] {
            wait_output(&rt, &dir.path().join(format!("{name}.out")), &format!("up {pid}"));
        }
        let killed = rt.block_on(
            children.stop(|k| matches!(k, ChildKey::Node(_)), Duration::from_millis(1500)),
        );
        assert_eq!(killed, [stubborn]);
        assert!(!alive(p1, dir.path()) && !alive(p2, dir.path()));
        assert_eq!(children.pid(source), Some(other), "not selected: still running");
        assert!(alive(other, dir.path()));
        drop(children);
        assert!(!alive(other, dir.path()), "dropping the children kills them");
    }

    /// Waits (bounded) until the file at `path` contains `needle`.
    fn wait_output(rt: &tokio::runtime::Runtime, path: &Path, needle: &str) {
        rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !std::fs::read_to_string(path).unwrap_or_default().contains(needle) {
                assert!(Instant::now() < deadline, "{} never showed {needle:?}", path.display());
                tokio::time::sleep(EXIT_POLL).await;
            }
        });
    }

    #[test]
    fn kill9_restart_and_reap() {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime();
        let mut children = Children::new("/bin/sh".into(), Vec::new());
        let key = ChildKey::Node(NodeId(3));
        let first = children.start(key, spec(dir.path(), "n3", "exit 0")).unwrap();
        let out = dir.path().join("n3.out");
        wait_output(&rt, &out, &format!("up {first}"));
        assert_eq!(rt.block_on(children.kill9(key)), Some(first));
        assert!(!alive(first, dir.path()));
        assert_eq!(children.pid(key), None);
        assert_eq!(rt.block_on(children.kill9(key)), None, "not running");
        assert!(children.reap().is_empty(), "a kill is not an unexpected exit");
        let second = children.restart(key).unwrap();
        assert_ne!(first, second);
        assert_eq!(children.pid(key), Some(second));
        wait_output(&rt, &out, &format!("up {second}"));
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.contains(&format!("up {first}\n")), "appended across restarts: {text}");
        assert!(children.restart(ChildKey::Node(NodeId(9))).is_err());
        // A child that ends by itself is reported once.
        let quick = ChildKey::Source(NodeId(1001));
        let exit3 = ChildSpec {
            args: vec!["-c".into(), "exit 3".into()],
            stdout: None,
            stderr: dir.path().join("quick.err"),
        };
        children.start(quick, exit3).unwrap();
        let exited = rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let reaped = children.reap();
                if !reaped.is_empty() || Instant::now() > deadline {
                    return reaped;
                }
                tokio::time::sleep(EXIT_POLL).await;
            }
        });
        assert_eq!(exited.len(), 1);
        assert_eq!((exited[0].key, exited[0].status.code()), (quick, Some(3)));
        assert!(children.reap().is_empty());
    }
}
