//! Watching the permissions folder, so a saved file leads to one reload.
//!
//! The watch is on the folder, not on each file, because editors save by
//! writing a new file and renaming it over the old one (vim's
//! backup-then-rename, `mv tmp file`), which replaces the inode that a
//! per-file watch would follow.

use super::load::is_policy_file_name;
use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// How long the folder must stay quiet before `on_change` runs, so that a
/// burst of events from one save, or from a `git checkout`, runs it once.
const QUIET_PERIOD: Duration = Duration::from_millis(300);

/// The maximum delay of `on_change` after the first event of a burst, so a
/// folder that keeps changing still reloads.
const MAX_DELAY: Duration = Duration::from_secs(2);

enum Signal {
    Changed,
    Stop,
}

/// A running watch on a permissions folder; dropping it stops the watch.
///
/// After `drop` returns, `on_change` runs no more (unless `drop` is called
/// from inside `on_change`, where the current run finishes first).
pub struct PermissionWatcher {
    dir: PathBuf,
    watcher: Option<RecommendedWatcher>,
    signals: Sender<Signal>,
    worker: Option<JoinHandle<()>>,
}

/// Starts watching `dir` (not its subfolders) and calls `on_change` after
/// permission files change.
///
/// Creating, writing, renaming or deleting a `*.toml` file counts as a
/// change. Changes to hidden files and editor temp files do not count, and
/// neither does reading a file, so a reload never triggers another. Events are debounced:
/// `on_change` runs on a background thread once the folder has been quiet for
/// 300 ms, or 2 s after the first event of a burst that does not stop.
///
/// `on_change` only signals; loading the folder and keeping the last valid
/// policy when a load fails is the caller's job.
///
/// NOTE: if the folder itself is deleted or replaced, the watch ends with it
/// (after one last `on_change`), and the caller must call `watch` again.
pub fn watch(
    dir: PathBuf,
    on_change: impl Fn() + Send + Sync + 'static,
) -> Result<PermissionWatcher, notify::Error> {
    let (signals, receiver) = mpsc::channel();

    let event_signals = signals.clone();
    let event_dir = dir.clone();
    let mut watcher = notify::recommended_watcher(move |result: notify::Result<Event>| {
        if is_reload_event(&event_dir, &result) {
            // The worker ends only after the watcher stops, so a failed send needs no handling.
            let _ = event_signals.send(Signal::Changed);
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;

    let worker = thread::Builder::new()
        .name("permissions-watch".to_string())
        .spawn(move || debounce(&receiver, &on_change))
        .map_err(notify::Error::io)?;

    info!(dir = %dir.display(), "watching permissions folder");
    Ok(PermissionWatcher {
        dir,
        watcher: Some(watcher),
        signals,
        worker: Some(worker),
    })
}

impl PermissionWatcher {
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl fmt::Debug for PermissionWatcher {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("PermissionWatcher")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Drop for PermissionWatcher {
    fn drop(&mut self) {
        // Stop events first, so no change can follow the stop signal.
        drop(self.watcher.take());
        let _ = self.signals.send(Signal::Stop);

        if let Some(worker) = self.worker.take() {
            if worker.thread().id() != thread::current().id() {
                let _ = worker.join();
            }
        }
        debug!(dir = %self.dir.display(), "stopped watching permissions folder");
    }
}

/// Decides whether a notify event may have changed what `load_dir` reads.
fn is_reload_event(dir: &Path, result: &notify::Result<Event>) -> bool {
    let event = match result {
        Ok(event) => event,
        Err(error) => {
            // Events may have been lost, so reloading is the safe choice.
            warn!(dir = %dir.display(), %error, "permissions folder watch failed; reloading");
            return true;
        }
    };

    match event.kind {
        // notify reports opens and closes as access events, and every load
        // opens the files, so only a finished write counts.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
        EventKind::Access(_) => return false,
        _ => {}
    }
    if event.need_rescan() || event.paths.is_empty() {
        return true;
    }
    event.paths.iter().any(|path| {
        let is_policy_file = path.file_name().is_some_and(is_policy_file_name);
        is_policy_file || path == dir
    })
}

/// Runs `on_change` once per burst of change signals, until stopped.
fn debounce(receiver: &Receiver<Signal>, on_change: &dyn Fn()) {
    loop {
        match receiver.recv() {
            Ok(Signal::Changed) => {}
            Ok(Signal::Stop) | Err(_) => return,
        }
        if !wait_for_quiet(receiver) {
            return;
        }
        debug!("permissions folder changed");
        on_change();
    }
}

/// Waits until no signal arrives for the quiet period, or the maximum delay
/// passes; returns false when the watch is stopping.
fn wait_for_quiet(receiver: &Receiver<Signal>) -> bool {
    let started = Instant::now();
    loop {
        let wait = QUIET_PERIOD.min(MAX_DELAY.saturating_sub(started.elapsed()));
        if wait.is_zero() {
            return true;
        }
        match receiver.recv_timeout(wait) {
            Ok(Signal::Changed) => {}
            Ok(Signal::Stop) | Err(RecvTimeoutError::Disconnected) => return false,
            Err(RecvTimeoutError::Timeout) => return true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::load_dir;
    use super::*;
    use std::fs;

    /// Generous, because the build machine may be busy; a passing test waits
    /// only as long as the debounce takes.
    const CHANGE_TIMEOUT: Duration = Duration::from_secs(10);

    /// How long to wait before concluding that no callback comes; well over
    /// the quiet period, so a second debounced callback would show up.
    const SILENCE: Duration = Duration::from_millis(1500);

    const ROLE: &str = "[roles.viewer]\npermissions = [\"asset:read\"]\n";

    fn start(dir: &Path) -> (PermissionWatcher, Receiver<()>) {
        let (sender, receiver) = mpsc::channel();
        let watcher = watch(dir.to_path_buf(), move || {
            let _ = sender.send(());
        })
        .expect("start watcher");
        (watcher, receiver)
    }

    fn folder_with_file() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("create temp dir");
        fs::write(dir.path().join("a.toml"), ROLE).expect("write permission file");
        dir
    }

    fn assert_one_change(receiver: &Receiver<()>) {
        let first = receiver.recv_timeout(CHANGE_TIMEOUT);
        assert_eq!(first, Ok(()), "no callback within {CHANGE_TIMEOUT:?}");
        let second = receiver.recv_timeout(SILENCE);
        assert_eq!(
            second,
            Err(RecvTimeoutError::Timeout),
            "a second callback came"
        );
    }

    fn assert_no_change(receiver: &Receiver<()>) {
        let result = receiver.recv_timeout(SILENCE);
        assert_eq!(
            result,
            Err(RecvTimeoutError::Timeout),
            "unexpected callback"
        );
    }

    #[test]
    fn watch_in_place_write() {
        let dir = folder_with_file();
        let (_watcher, receiver) = start(dir.path());
        fs::write(dir.path().join("a.toml"), format!("{ROLE}# edited\n")).expect("rewrite file");
        assert_one_change(&receiver);
    }

    #[test]
    fn watch_atomic_rename_over_file() {
        let dir = folder_with_file();
        let (_watcher, receiver) = start(dir.path());
        let temporary = dir.path().join(".a.toml.tmp");
        fs::write(&temporary, format!("{ROLE}# replaced\n")).expect("write temp file");
        fs::rename(&temporary, dir.path().join("a.toml")).expect("rename over file");
        assert_one_change(&receiver);
    }

    #[test]
    fn watch_vim_backup_then_write() {
        let dir = folder_with_file();
        let (_watcher, receiver) = start(dir.path());
        let file = dir.path().join("a.toml");
        fs::rename(&file, dir.path().join("a.toml~")).expect("move file to backup");
        fs::write(&file, format!("{ROLE}# saved\n")).expect("write new file");
        fs::remove_file(dir.path().join("a.toml~")).expect("remove backup");
        assert_one_change(&receiver);
    }

    #[test]
    fn watch_new_file() {
        let dir = folder_with_file();
        let (_watcher, receiver) = start(dir.path());
        fs::write(dir.path().join("b.toml"), "").expect("create file");
        assert_one_change(&receiver);
    }

    #[test]
    fn watch_deleted_file() {
        let dir = folder_with_file();
        let (_watcher, receiver) = start(dir.path());
        fs::remove_file(dir.path().join("a.toml")).expect("delete file");
        assert_one_change(&receiver);
    }

    #[test]
    fn watch_burst_gives_one_callback() {
        let dir = folder_with_file();
        let (_watcher, receiver) = start(dir.path());
        for index in 0..50 {
            let name = format!("burst-{}.toml", index % 5);
            fs::write(dir.path().join(name), format!("# {index}\n")).expect("write file");
        }
        assert_one_change(&receiver);
    }

    #[test]
    fn watch_ignores_temp_and_other_files() {
        let dir = folder_with_file();
        let (_watcher, receiver) = start(dir.path());
        for name in [
            ".a.toml.swp",
            "a.toml~",
            "#a.toml#",
            "notes.txt",
            ".hidden.toml",
        ] {
            fs::write(dir.path().join(name), "x").expect("write ignored file");
        }
        assert_no_change(&receiver);
    }

    #[test]
    fn watch_ignores_reads_by_load() {
        let dir = folder_with_file();
        let (_watcher, receiver) = start(dir.path());
        let policy = load_dir(dir.path()).expect("load folder");
        assert_eq!(policy.roles().count(), 1);
        assert_no_change(&receiver);
    }

    #[test]
    fn watch_drop_stops_callbacks() {
        let dir = folder_with_file();
        let (watcher, receiver) = start(dir.path());
        drop(watcher);
        fs::write(dir.path().join("b.toml"), "").expect("create file");

        // The worker has ended and dropped `on_change`, so the channel is closed.
        let result = receiver.recv_timeout(CHANGE_TIMEOUT);
        assert_eq!(result, Err(RecvTimeoutError::Disconnected));
    }

    #[test]
    fn watch_missing_folder_fails() {
        let parent = tempfile::tempdir().expect("create temp dir");
        let result = watch(parent.path().join("missing"), || {});
        assert!(result.is_err());
    }
}
