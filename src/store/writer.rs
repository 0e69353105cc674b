//! The single writer: requests hand their mutation to one thread, which runs every job that
//! is waiting inside one write transaction and commits it durably, so concurrent writes share
//! an fsync. Each caller gets its answer only after the commit that holds its change.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use redb::{Database, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use super::StoreError;

/// Jobs that one commit holds at most; more wait for the next commit.
const MAX_BATCH: usize = 256;

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

enum Message {
    Job(Box<dyn FnOnce(&WriteTransaction) -> (bool, Completion) + Send>),
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
}

impl Writer {
    pub(super) fn start(db: Arc<Database>) -> Writer {
        let (sender, receiver) = mpsc::channel(4096);
        let stats = Arc::new(WriterStats::default());
        let thread_stats = stats.clone();
        std::thread::Builder::new()
            .name("store-writer".to_string())
            .spawn(move || run(db, receiver, &thread_stats))
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

fn run(db: Arc<Database>, mut receiver: mpsc::Receiver<Message>, stats: &WriterStats) {
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
            if commit_batch(&db, batch) {
                stats.commits.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(done) = stop {
            let _ = done.send(());
            return;
        }
    }
}

/// Runs a batch in one transaction; returns whether it committed.
fn commit_batch(db: &Database, batch: Vec<Box<dyn FnOnce(&WriteTransaction) -> (bool, Completion) + Send>>) -> bool {
    let txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(error) => {
            tracing::error!(%error, "cannot begin a write transaction");
            // Dropping the jobs drops their reply channels, so each caller gets
            // `StoreError::WriterStopped` instead of waiting.
            drop(batch);
            return false;
        }
    };
    let mut completions = Vec::with_capacity(batch.len());
    let mut aborted = false;
    for job in batch {
        let (aborts, completion) = job(&txn);
        aborted |= aborts;
        completions.push(completion);
    }
    let outcome = if aborted {
        let _ = txn.abort();
        Err("the batch holding this write was rolled back after a storage error".to_string())
    } else {
        txn.commit().map_err(|error| {
            tracing::error!(%error, "commit failed");
            format!("commit failed: {error}")
        })
    };
    let committed = outcome.is_ok();
    for completion in completions {
        completion(outcome.clone());
    }
    committed
}
