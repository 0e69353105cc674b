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

/// The longest a burst may delay `on_change`, so a folder that keeps changing
/// still reloads.
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
/// change; hidden files and editor temp files do not, and neither does
/// reading a file, so a reload never triggers another. Events are debounced:
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
            // The worker is gone only after the watcher stops; nothing to do then.
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
        // Opening and reading happen on every load; only a finished write counts.
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
