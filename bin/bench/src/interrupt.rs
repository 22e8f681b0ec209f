//! An interrupted bench leaves nothing behind. On SIGINT, SIGTERM or SIGHUP the processes it
//! started are stopped and its temp dirs removed, then it exits with 128 + the signal number.
//! Destructors do not run when a signal ends a process (a three-node cluster's temp dir holds
//! ~770 MB of preallocated segments), so whatever must go is registered here while it exists:
//! [`WorkDir`] for temp dirs, [`Tracked`] for processes.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::{Child, Command},
    sync::{Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use rustix::process::{Pid, Signal, WaitOptions, kill_process, waitpid};
use tokio::signal::unix::{SignalKind, signal};

/// How long a process asked to stop with SIGTERM gets before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(5);
/// Pause between two checks of a stopping process.
const POLL_PACE: Duration = Duration::from_millis(20);

/// How a registered process is stopped on an interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// SIGKILL (a node: its data dir goes with the temp dir anyway).
    Kill,
    /// SIGTERM, then SIGKILL after [`TERM_GRACE`] (a devnet, which stops its own children on
    /// SIGTERM and cannot once killed).
    Term,
}

/// What an interrupt must clean up.
#[derive(Debug)]
struct Live {
    procs: BTreeMap<u32, Stop>,
    dirs: BTreeSet<PathBuf>,
}

static LIVE: Mutex<Live> = Mutex::new(Live { procs: BTreeMap::new(), dirs: BTreeSet::new() });

fn live() -> MutexGuard<'static, Live> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the thread that waits for SIGINT, SIGTERM and SIGHUP. From then on those signals no
/// longer end the process by themselves: the thread cleans up and exits.
///
/// # Errors
/// Fails if the thread, its runtime or a signal handler cannot be set up.
pub(crate) fn watch() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .context("the signal watcher's runtime")?;
    let (int, term, hup) = runtime.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
            signal(SignalKind::hangup())?,
        ))
    })?;
    std::thread::Builder::new()
        .name("interrupt".to_owned())
        .spawn(move || {
            let (mut int, mut term, mut hup) = (int, term, hup);
            let signo = runtime.block_on(async {
                tokio::select! {
                    _ = int.recv() => 2,
                    _ = term.recv() => 15,
                    _ = hup.recv() => 1,
                }
            });
            let (procs, dirs) = clean_up();
            eprintln!(
                "interrupted (signal {signo}): stopped {procs} process(es), removed {dirs} temp \
                 dir(s)"
            );
            exit_interrupted(signo)
        })
        .context("starting the signal watcher")?;
    Ok(())
}

/// Ends the process as interrupted by `signo`, the shell's way: status 128 + `signo`.
#[allow(clippy::exit, reason = "the signal watcher ends the bench after cleaning up")]
fn exit_interrupted(signo: i32) -> ! {
    std::process::exit(128 + signo)
}

/// Stops every registered process, then removes every registered dir. Holds the registry
/// throughout, so nothing registers or unregisters meanwhile.
fn clean_up() -> (usize, usize) {
    let live = live();
    let pids: Vec<(Pid, Stop)> = live
        .procs
        .iter()
        .filter_map(|(pid, stop)| Some((Pid::from_raw(i32::try_from(*pid).ok()?)?, *stop)))
        .collect();
    for (pid, stop) in &pids {
        let signal = match stop {
            Stop::Kill => Signal::KILL,
            Stop::Term => Signal::TERM,
        };
        let _ = kill_process(*pid, signal);
    }
    let end = Instant::now() + TERM_GRACE;
    for (pid, stop) in &pids {
        // Reaped here: the `Child` handles that own them never run again.
        while matches!(waitpid(Some(*pid), WaitOptions::NOHANG), Ok(None)) {
            if *stop == Stop::Kill || Instant::now() >= end {
                let _ = kill_process(*pid, Signal::KILL);
                let _ = waitpid(Some(*pid), WaitOptions::empty());
                break;
            }
            std::thread::sleep(POLL_PACE);
        }
    }
    let removed = live.dirs.iter().filter(|dir| std::fs::remove_dir_all(dir).is_ok()).count();
    (pids.len(), removed)
}

/// A registered process: stopped by an interrupt until this is dropped (after its owner reaped
/// it).
#[derive(Debug)]
pub(crate) struct Tracked(u32);

impl Tracked {
    /// Spawns `command` and registers the process, under the registry's lock: an interrupt
    /// cleans up either before the spawn or after the registration.
    ///
    /// # Errors
    /// As [`Command::spawn`].
    pub(crate) fn spawn(command: &mut Command, stop: Stop) -> std::io::Result<(Child, Self)> {
        let mut live = live();
        let child = command.spawn()?;
        let pid = child.id();
        live.procs.insert(pid, stop);
        Ok((child, Self(pid)))
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        live().procs.remove(&self.0);
    }
}

/// A temp dir (under the system temp dir, named `<prefix>XXXXXX`) removed when dropped or when
/// the bench is interrupted.
#[derive(Debug)]
pub(crate) struct WorkDir {
    dir: tempfile::TempDir,
}

impl WorkDir {
    /// Creates and registers it.
    ///
    /// # Errors
    /// Fails if the dir cannot be created.
    pub(crate) fn new(prefix: &str) -> anyhow::Result<Self> {
        // Under the registry's lock, as `Tracked::spawn`.
        let mut live = live();
        let dir =
            tempfile::Builder::new().prefix(prefix).tempdir().context("creating a temp dir")?;
        live.dirs.insert(dir.path().to_path_buf());
        Ok(Self { dir })
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Keeps the dir when dropped or interrupted (for inspection).
    pub(crate) fn keep(&mut self) {
        self.dir.disable_cleanup(true);
        live().dirs.remove(self.dir.path());
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        // The `TempDir` removes it right after (unless kept).
        live().dirs.remove(self.dir.path());
    }
}
