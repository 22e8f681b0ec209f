//! Disk gauges: the free and total space of the filesystem under each of the node's
//! directories, and the bytes its files take there. The event log is the node's permanent
//! history and grows with its traffic; with the alert rules of `docs/alerts.yml` these tell the
//! operator ahead of a full disk (where a failed write poisons the log, and the node stops
//! admitting until restarted with space).

use std::{
    path::{Path, PathBuf},
    sync::Weak,
    time::Duration,
};

use metrics::Unit;

/// Bytes an unprivileged writer may still use on the filesystem holding the directory.
pub(crate) const DISK_FREE_BYTES: &str = "mempulse_disk_free_bytes";
/// Size of the filesystem holding the directory.
pub(crate) const DISK_SIZE_BYTES: &str = "mempulse_disk_size_bytes";
/// Bytes of the files under the directory (the sum of their sizes).
pub(crate) const DIR_BYTES: &str = "mempulse_dir_bytes";

/// How often the directories are measured.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(10);

/// Directory depth walked when summing file sizes (the Raft directory nests its log one
/// level down); deeper files are not counted.
const WALK_DEPTH_MAX: usize = 4;

/// The node's directories by their `dir` label.
pub(crate) type Dirs = Vec<(&'static str, PathBuf)>;

/// Describes the series and registers each directory's at zero.
pub(crate) fn register(dirs: &Dirs) {
    metrics::describe_gauge!(DISK_FREE_BYTES, Unit::Bytes, "free space of the dir's filesystem");
    metrics::describe_gauge!(DISK_SIZE_BYTES, Unit::Bytes, "size of the dir's filesystem");
    metrics::describe_gauge!(DIR_BYTES, Unit::Bytes, "bytes of the files under the dir");
    for (label, _) in dirs {
        for name in [DISK_FREE_BYTES, DISK_SIZE_BYTES, DIR_BYTES] {
            metrics::gauge!(name, "dir" => *label).set(0.0);
        }
    }
}

/// Measures the directories every [`SAMPLE_INTERVAL`] (on the blocking pool) until `alive`
/// is gone.
pub(crate) fn watch<T: Send + Sync + 'static>(dirs: Dirs, alive: Weak<T>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
        loop {
            tick.tick().await;
            if alive.strong_count() == 0 {
                return;
            }
            let measured = dirs.clone();
            let Ok(samples) = tokio::task::spawn_blocking(move || measure(&measured)).await else {
                return;
            };
            publish(&samples);
        }
    });
}

/// One directory's figures; `space` is `None` when its filesystem could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Sample {
    label: &'static str,
    space: Option<Space>,
    bytes: u64,
}

/// Free and total bytes of a filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Space {
    free: u64,
    size: u64,
}

fn measure(dirs: &Dirs) -> Vec<Sample> {
    dirs.iter()
        .map(|(label, dir)| Sample { label, space: space(dir), bytes: dir_bytes(dir, 0) })
        .collect()
}

#[expect(clippy::cast_precision_loss, reason = "gauges of byte counts")]
fn publish(samples: &[Sample]) {
    for sample in samples {
        if let Some(space) = sample.space {
            metrics::gauge!(DISK_FREE_BYTES, "dir" => sample.label).set(space.free as f64);
            metrics::gauge!(DISK_SIZE_BYTES, "dir" => sample.label).set(space.size as f64);
        }
        metrics::gauge!(DIR_BYTES, "dir" => sample.label).set(sample.bytes as f64);
    }
}

/// `statvfs` of the filesystem holding `dir`.
fn space(dir: &Path) -> Option<Space> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    Some(Space {
        free: stat.f_bavail.saturating_mul(stat.f_frsize),
        size: stat.f_blocks.saturating_mul(stat.f_frsize),
    })
}

/// Sum of the sizes of the regular files under `dir` (symbolic links not followed). Files
/// that vanish meanwhile (a purged segment) are skipped.
fn dir_bytes(dir: &Path, depth: usize) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut total = 0u64;
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_file() {
            total = total.saturating_add(entry.metadata().map_or(0, |m| m.len()));
        } else if kind.is_dir() && depth < WALK_DEPTH_MAX {
            total = total.saturating_add(dir_bytes(&entry.path(), depth + 1));
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_summed_below_the_dir_and_the_filesystem_is_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), vec![0u8; 1000]).unwrap();
        std::fs::create_dir_all(dir.path().join("wal/deeper")).unwrap();
        std::fs::write(dir.path().join("wal/b"), vec![0u8; 24]).unwrap();
        std::fs::write(dir.path().join("wal/deeper/c"), vec![0u8; 6]).unwrap();
        let samples = measure(&vec![("raft", dir.path().to_path_buf())]);
        let [sample] = samples.as_slice() else { unreachable!("one dir, one sample") };
        assert_eq!((sample.label, sample.bytes), ("raft", 1030));
        let space = sample.space.unwrap();
        assert!(space.size > 0 && space.free <= space.size, "{space:?}");
    }

    #[test]
    fn a_missing_dir_counts_nothing_and_has_no_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("not-yet");
        let samples = measure(&vec![("checkpoints", gone)]);
        assert_eq!(samples, [Sample { label: "checkpoints", space: None, bytes: 0 }]);
    }
}
