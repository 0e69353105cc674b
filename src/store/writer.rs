//! The single writer: requests hand their mutation to one thread, which runs every job that
//! is waiting inside one write transaction and commits it durably, so concurrent writes share
//! an fsync. Each caller gets its answer only after the commit that holds its change.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use redb::{Database, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use super::StoreError;

/// Jobs that one commit holds at most; more wait for the next commit.
const MAX_BATCH: usize = 256;
/// Time one reopen attempt waits for read transactions on the failed handle to finish, which
/// release its file lock.
const REOPEN_WAIT: Duration = Duration::from_secs(5);
const REOPEN_POLL: Duration = Duration::from_millis(20);

/// An error a write job can end with. A job must check everything before it writes, so an
/// error that `aborts` (a storage failure) is the only kind that may follow partial writes;
/// it rolls back the whole batch, and every job in it fails.
pub trait JobError: From<StoreError> + Send + 'static {
    fn aborts(&self) -> bool;
}

impl JobError for StoreError {
    fn aborts(&self) -> bool {
        true
    }
}

/// Called with the commit's outcome: `Ok` once the job's writes are durable.
type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;

/// A queued write: runs in the batch's transaction and returns whether it aborts the batch,
/// and the completion to call with the commit's outcome.
type Job = Box<dyn FnOnce(&WriteTransaction) -> (bool, Completion) + Send>;

enum Message {
    Job(Job),
    Stop(oneshot::Sender<()>),
}

/// Handle to the writer thread.
#[derive(Clone)]
pub struct Writer {
    sender: mpsc::Sender<Message>,
    stats: Arc<WriterStats>,
}

/// Counters of the writer thread since the store opened.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Write transactions committed.
    pub commits: AtomicU64,
    /// Jobs run, committed or not.
    pub jobs: AtomicU64,
    /// Times the database was opened again after a failed write.
    pub reopens: AtomicU64,
}

impl Writer {
    pub(super) fn start(db: Arc<ArcSwapOption<Database>>, path: PathBuf) -> Writer {
        let (sender, receiver) = mpsc::channel(4096);
        let stats = Arc::new(WriterStats::default());
        let thread_stats = stats.clone();
        std::thread::Builder::new()
            .name("store-writer".to_string())
            .spawn(move || run(&db, &path, receiver, &thread_stats))
            .expect("the store writer thread must start");
        Writer { sender, stats }
    }

    /// Commit and job counts, for metrics and benchmarks.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Runs `job` in the next write transaction and returns its result once that
    /// transaction has committed durably.
    pub async fn write<T, E>(
        &self,
        job: impl FnOnce(&WriteTransaction) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: JobError,
    {
        let (reply, answer) = oneshot::channel::<Result<T, E>>();
        let message = Message::Job(Box::new(move |txn: &WriteTransaction| {
            let result = catch_unwind(AssertUnwindSafe(|| job(txn))).unwrap_or_else(|_| {
                Err(E::from(StoreError::Storage("a write job panicked".to_string())))
            });
            let aborts = matches!(&result, Err(error) if error.aborts());
            let completion: Completion = Box::new(move |committed| {
                let answer = match (result, committed) {
                    (Ok(value), Ok(())) => Ok(value),
                    (Ok(_), Err(message)) => Err(E::from(StoreError::Storage(message))),
                    (Err(error), _) => Err(error),
                };
                let _ = reply.send(answer);
            });
            (aborts, completion)
        }));
        if self.sender.send(message).await.is_err() {
            return Err(E::from(StoreError::WriterStopped));
        }
        answer.await.unwrap_or_else(|_| Err(E::from(StoreError::WriterStopped)))
    }

    /// Lets the queued jobs finish, then stops the thread.
    pub async fn stop(&self) {
        let (done, finished) = oneshot::channel();
        if self.sender.send(Message::Stop(done)).await.is_ok() {
            let _ = finished.await;
        }
    }
}

fn run(db: &ArcSwapOption<Database>, path: &Path, mut receiver: mpsc::Receiver<Message>, stats: &WriterStats) {
    while let Some(first) = receiver.blocking_recv() {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut stop = None;
        match first {
            Message::Job(job) => batch.push(job),
            Message::Stop(done) => stop = Some(done),
        }
        while stop.is_none() && batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(Message::Job(job)) => batch.push(job),
                Ok(Message::Stop(done)) => stop = Some(done),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            stats.jobs.fetch_add(batch.len() as u64, Ordering::Relaxed);
            match db.load_full().or_else(|| reopen(db, path, stats)) {
                // redb 2.6 can panic while rolling back after an I/O error, on an assertion
                // about its recovery flag. The handle is then unusable, but the thread lives on.
                Some(handle) => match catch_unwind(AssertUnwindSafe(|| commit_batch(&handle, batch))).unwrap_or_else(|_| {
                    tracing::error!("the store panicked during a commit; reopening it");
                    BatchOutcome::HandleFailed
                }) {
                    BatchOutcome::Committed => {
                        stats.commits.fetch_add(1, Ordering::Relaxed);
                    }
                    BatchOutcome::Failed => {}
                    BatchOutcome::HandleFailed => {
                        // Readers stop using the failed handle now; the next batch reopens.
                        db.store(None);
                    }
                },
                // Dropping the jobs drops their reply channels, so each caller gets
                // `StoreError::WriterStopped` at once instead of waiting.
                None => drop(batch),
            }
        }
        if let Some(done) = stop {
            let _ = done.send(());
            return;
        }
    }
}

/// Opens the store file again after a failed write, waiting up to `REOPEN_WAIT` for readers
/// of the old handle to finish. Returns `None` when the file cannot be opened yet, so the
/// next batch tries again.
fn reopen(db: &ArcSwapOption<Database>, path: &Path, stats: &WriterStats) -> Option<Arc<Database>> {
    let deadline = Instant::now() + REOPEN_WAIT;
    loop {
        match Database::create(path) {
            Ok(handle) => {
                let handle = Arc::new(handle);
                db.store(Some(handle.clone()));
                stats.reopens.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(path = %path.display(), "store reopened after a storage error; writes resume");
                return Some(handle);
            }
            Err(redb::DatabaseError::DatabaseAlreadyOpen) if Instant::now() < deadline => std::thread::sleep(REOPEN_POLL),
            Err(error) => {
                tracing::error!(%error, path = %path.display(), "cannot reopen the store; writes fail until it opens");
                return None;
            }
        }
    }
}

/// Outcome of one batch.
enum BatchOutcome {
    Committed,
    /// The batch failed but the handle still works (a job rolled it back).
    Failed,
    /// The handle failed: redb accepts no transaction on it until the file is opened again.
    HandleFailed,
}

/// Runs a batch in one transaction.
fn commit_batch(db: &Database, batch: Vec<Job>) -> BatchOutcome {
    let txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(error) => {
            tracing::error!(%error, "cannot begin a write transaction; reopening the store");
            // Dropping the jobs drops their reply channels, so each caller gets
            // `StoreError::WriterStopped` instead of waiting.
            drop(batch);
            return BatchOutcome::HandleFailed;
        }
    };
    let mut completions = Vec::with_capacity(batch.len());
    let mut aborted = false;
    for job in batch {
        let (aborts, completion) = job(&txn);
        aborted |= aborts;
        completions.push(completion);
    }
    let mut handle_failed = false;
    let outcome = if aborted {
        let _ = txn.abort();
        Err("the batch holding this write was rolled back after a storage error".to_string())
    } else {
        txn.commit().map_err(|error| {
            tracing::error!(%error, "commit failed; reopening the store");
            handle_failed = true;
            format!("commit failed: {error}")
        })
    };
    let committed = outcome.is_ok();
    for completion in completions {
        completion(outcome.clone());
    }
    match (committed, handle_failed) {
        (true, _) => BatchOutcome::Committed,
        (false, true) => BatchOutcome::HandleFailed,
        (false, false) => BatchOutcome::Failed,
    }
}
