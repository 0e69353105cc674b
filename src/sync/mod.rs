//! The organization is the applied state that a sync builds from the directory: users with
//! active flags, external groups, memberships and effective access. This module also keeps
//! the sync runs and audit events that record every change, serves the queries of the
//! control socket, and writes the export file.
//!
//! A sync plans in one read snapshot from the directory's dirty keys, checks the guard, and
//! applies the plan in one writer job together with its audit events and run record. Only
//! one sync or permission change runs at a time; sync requests that arrive while a sync runs
//! share one follow-up run.

mod access;
mod apply;
pub mod export;
mod history;
mod model;
mod plan;
mod query;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::config::GuardConfig;
use crate::metrics::Metrics;
use crate::permissions::Policy;
use crate::store::{Store, StoreError};

pub use access::PolicyReport;
pub use export::ExportError;
pub use history::{
    AuditEvent, Counts, EventFilter, EventPage, Outcome, Subject, SyncRun, Trigger, EVENT_KINDS,
};
pub use model::{GroupAttributes, OrgGroup, OrgUser, UserAttributes};
pub use plan::{Change, DeactivationReason, Removals};
pub use query::{AccessReport, GroupName, GroupSummary, Status, UserName, UserSummary};

use apply::RunStart;
use plan::Plan;

/// Options of one sync request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncOptions {
    /// Plan only: return the changes and write nothing, not even a run record.
    #[serde(default)]
    pub dry_run: bool,
    /// Apply even when the guard would stop the sync.
    #[serde(default)]
    pub force: bool,
}

/// The result of a sync that applied its plan, or of a dry run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncReport {
    /// The recorded run; `None` for a dry run.
    pub run: Option<u64>,
    pub trigger: Trigger,
    pub dry_run: bool,
    pub forced: bool,
    /// For a dry run, what a real run would end with now.
    pub outcome: Outcome,
    /// The guard's reason for stopping a dry run.
    pub reason: Option<String>,
    pub started: String,
    pub finished: String,
    pub counts: Counts,
    pub removals: Removals,
    /// The planned changes; filled only for a dry run, because an applied run's changes are
    /// its audit events.
    pub changes: Vec<Change>,
    /// Error message from writing the export file, when that failed. The sync itself was
    /// applied.
    pub export_error: Option<String>,
}

/// Raised when a sync or a permission change does not apply.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The guard stopped the sync; nothing was applied.
    #[error("sync stopped: {reason}")]
    Blocked { run: Option<u64>, reason: String },
    /// A storage failure stopped the sync; nothing was applied.
    #[error("sync failed: {reason}")]
    Failed { run: Option<u64>, reason: String },
    #[error("organization store error: {0}")]
    Store(#[from] StoreError),
    #[error("the sync task stopped before it returned a result; see the daemon log")]
    Stopped,
}

impl SyncError {
    /// Copies the error for every caller that shares one run.
    fn share(&self) -> SyncError {
        match self {
            SyncError::Blocked { run, reason } => SyncError::Blocked {
                run: *run,
                reason: reason.clone(),
            },
            SyncError::Failed { run, reason } => SyncError::Failed {
                run: *run,
                reason: reason.clone(),
            },
            SyncError::Store(error) => SyncError::Failed {
                run: None,
                reason: error.to_string(),
            },
            SyncError::Stopped => SyncError::Stopped,
        }
    }
}

type Waiter = oneshot::Sender<Result<SyncReport, SyncError>>;

/// Requests that arrived while a sync ran; they share one follow-up run.
struct Pending {
    trigger: Trigger,
    force: bool,
    /// The newest policy that a request asked to apply before the run plans.
    policy: Option<Arc<Policy>>,
    waiters: Vec<Waiter>,
}

#[derive(Default)]
struct Queue {
    running: bool,
    pending: Option<Pending>,
}

#[derive(Clone)]
struct Settings {
    guard: GuardConfig,
    export_path: Option<PathBuf>,
}

struct Inner {
    store: Store,
    policy: Arc<ArcSwap<Policy>>,
    settings: Mutex<Settings>,
    metrics: Arc<Metrics>,
    /// Held by each sync and each permission change, so they never overlap.
    exclusive: tokio::sync::Mutex<()>,
    queue: Mutex<Queue>,
}

/// Handle to the organization; clones share one state.
#[derive(Clone)]
pub struct Organization {
    inner: Arc<Inner>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Organization {
    /// Creates the handle. `policy` must be the policy that the stored access was computed
    /// with. To bring a store up to a freshly loaded policy, pass that policy to
    /// [`Organization::apply_policy`], because only that method may store into `policy`.
    pub fn new(
        store: Store,
        policy: Arc<ArcSwap<Policy>>,
        guard: GuardConfig,
        export_path: Option<PathBuf>,
        metrics: Arc<Metrics>,
    ) -> Organization {
        let inner = Inner {
            store,
            policy,
            settings: Mutex::new(Settings { guard, export_path }),
            metrics,
            exclusive: tokio::sync::Mutex::new(()),
            queue: Mutex::new(Queue::default()),
        };
        Organization {
            inner: Arc::new(inner),
        }
    }

    /// Replaces the guard limits and the export path, from the next sync on.
    pub fn reconfigure(&self, guard: GuardConfig, export_path: Option<PathBuf>) {
        *lock(&self.inner.settings) = Settings { guard, export_path };
    }

    /// Returns the policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.inner.policy.load_full()
    }

    fn settings(&self) -> Settings {
        lock(&self.inner.settings).clone()
    }

    /// Requests a sync with default options; see [`Organization::sync`].
    pub async fn request(&self, trigger: Trigger) -> Result<SyncReport, SyncError> {
        self.sync(trigger, SyncOptions::default()).await
    }

    /// Runs a sync, or joins the follow-up run when one is already running: every request
    /// that arrives during a run shares the next run and gets its result. The follow-up runs
    /// with `force` when any of its requests asked for it. A dry run never waits and writes
    /// nothing.
    pub async fn sync(
        &self,
        trigger: Trigger,
        options: SyncOptions,
    ) -> Result<SyncReport, SyncError> {
        self.sync_with_policy(trigger, options, None).await
    }

    /// Like [`Organization::sync`], but the run first applies `policy` (as
    /// [`Organization::apply_policy`] does), so a reload and its sync join a running sync's
    /// follow-up as one request instead of queueing a second follow-up behind it.
    pub async fn sync_with_policy(
        &self,
        trigger: Trigger,
        options: SyncOptions,
        policy: Option<Policy>,
    ) -> Result<SyncReport, SyncError> {
        let policy = policy.map(Arc::new);
        if options.dry_run {
            if let Some(policy) = policy {
                self.apply_policy_shared(policy).await?;
            }
            return self.dry_run(trigger, options.force).await;
        }
        let (waiter, result) = oneshot::channel();
        let start_now = {
            let mut queue = lock(&self.inner.queue);
            if queue.running {
                let pending = queue.pending.get_or_insert_with(|| Pending {
                    trigger,
                    force: false,
                    policy: None,
                    waiters: Vec::new(),
                });
                pending.force |= options.force;
                if policy.is_some() {
                    pending.policy = policy.clone();
                }
                pending.waiters.push(waiter);
                None
            } else {
                queue.running = true;
                Some(waiter)
            }
        };
        if let Some(waiter) = start_now {
            // The runs happen in their own task, so a caller that stops waiting does not
            // strand the callers queued behind it.
            let organization = self.clone();
            tokio::spawn(organization.drive(trigger, options.force, policy, vec![waiter]));
        }
        result.await.unwrap_or(Err(SyncError::Stopped))
    }

    /// Runs syncs until no request is pending.
    async fn drive(
        self,
        mut trigger: Trigger,
        mut force: bool,
        mut policy: Option<Arc<Policy>>,
        mut waiters: Vec<Waiter>,
    ) {
        let mut reset = QueueReset {
            inner: self.inner.clone(),
            armed: true,
        };
        loop {
            let result = self.run_once(trigger, force, policy.take()).await;
            for waiter in waiters.drain(..) {
                let shared = match &result {
                    Ok(report) => Ok(report.clone()),
                    Err(error) => Err(error.share()),
                };
                let _ = waiter.send(shared);
            }

            let mut queue = lock(&self.inner.queue);
            match queue.pending.take() {
                Some(next) => {
                    trigger = next.trigger;
                    force = next.force;
                    policy = next.policy;
                    waiters = next.waiters;
                }
                None => {
                    queue.running = false;
                    reset.armed = false;
                    return;
                }
            }
        }
    }

    async fn run_once(
        &self,
        trigger: Trigger,
        force: bool,
        policy: Option<Arc<Policy>>,
    ) -> Result<SyncReport, SyncError> {
        let _exclusive = self.inner.exclusive.lock().await;
        if let Some(policy) = policy {
            if let Err(error) = self.apply_policy_locked(policy).await {
                tracing::warn!(%error, "applying permissions before the sync failed; the sync uses the previous permissions");
            }
        }
        let clock = Instant::now();
        let start = RunStart {
            trigger,
            started: crate::store::now_rfc3339(),
            forced: force,
        };
        let result = self.plan_and_apply(&start).await;
        let outcome = match &result {
            Ok(report) => report.outcome,
            Err(SyncError::Blocked { .. }) => Outcome::Blocked,
            Err(_) => Outcome::Failed,
        };
        self.inner
            .metrics
            .record_sync(outcome.as_str(), clock.elapsed().as_secs_f64());
        result
    }

    async fn plan_and_apply(&self, start: &RunStart) -> Result<SyncReport, SyncError> {
        let plan = match self.plan(self.policy()).await {
            Ok(plan) => plan,
            Err(error) => return Err(self.record_failure(start, error).await),
        };
        let counts = Counts::of(&plan.changes);
        let removals = plan.removals;
        if !start.forced {
            if let Some(reason) = guard_reason(&self.settings().guard, &plan.removals) {
                return Err(self.record_blocked(start, reason, counts).await);
            }
        }

        let changed = !plan.changes.is_empty();
        let job_start = start.clone();
        let write = move |txn: &redb::WriteTransaction| apply::apply(txn, &plan, &job_start);
        let run = match self.inner.store.writer().write(write).await {
            Ok(run) => run,
            Err(error) => return Err(self.record_failure(start, error).await),
        };
        tracing::info!(
            run = run.id,
            trigger = ?start.trigger,
            changes = counts.total(),
            users_created = counts.user_created,
            users_deactivated = counts.user_deactivated,
            members_added = counts.member_added,
            members_removed = counts.member_removed,
            access_changed = counts.access_changed,
            "sync applied"
        );

        let export_error = if changed || !self.export_exists() {
            self.export_logged().await
        } else {
            None
        };
        Ok(SyncReport {
            run: Some(run.id),
            trigger: start.trigger,
            dry_run: false,
            forced: start.forced,
            outcome: Outcome::Succeeded,
            reason: None,
            started: start.started.clone(),
            finished: run.finished,
            counts,
            removals,
            changes: Vec::new(),
            export_error,
        })
    }

    async fn dry_run(&self, trigger: Trigger, force: bool) -> Result<SyncReport, SyncError> {
        let started = crate::store::now_rfc3339();
        let plan = self.plan(self.policy()).await?;
        let reason = if force {
            None
        } else {
            guard_reason(&self.settings().guard, &plan.removals)
        };
        Ok(SyncReport {
            run: None,
            trigger,
            dry_run: true,
            forced: force,
            outcome: if reason.is_some() {
                Outcome::Blocked
            } else {
                Outcome::Succeeded
            },
            reason,
            started,
            finished: crate::store::now_rfc3339(),
            counts: Counts::of(&plan.changes),
            removals: plan.removals,
            changes: plan.changes,
            export_error: None,
        })
    }

    /// Builds a plan off the async runtime, since it reads as many keys as changed.
    async fn plan(&self, policy: Arc<Policy>) -> Result<Plan, StoreError> {
        let store = self.inner.store.clone();
        let task = tokio::task::spawn_blocking(move || {
            let txn = store.read()?;
            plan::build(&txn, &policy)
        });
        task.await.unwrap_or_else(|error| {
            Err(StoreError::Storage(format!(
                "the sync planner stopped: {error}"
            )))
        })
    }

    async fn record_blocked(&self, start: &RunStart, reason: String, counts: Counts) -> SyncError {
        let run = self
            .record_run(start, Outcome::Blocked, reason.clone(), counts)
            .await;
        tracing::warn!(run, %reason, "sync stopped by the guard; nothing was applied");
        SyncError::Blocked { run, reason }
    }

    async fn record_failure(&self, start: &RunStart, error: StoreError) -> SyncError {
        let reason = error.to_string();
        let run = self
            .record_run(start, Outcome::Failed, reason.clone(), Counts::default())
            .await;
        tracing::warn!(run, %reason, "sync failed; nothing was applied");
        SyncError::Failed { run, reason }
    }

    /// Records a run that applied nothing; returns its id, or `None` when even that failed.
    async fn record_run(
        &self,
        start: &RunStart,
        outcome: Outcome,
        reason: String,
        counts: Counts,
    ) -> Option<u64> {
        let record = apply::run_record(start, outcome, Some(reason), counts);
        let written = self
            .inner
            .store
            .writer()
            .write(move |txn| history::write_run(txn, record))
            .await;
        match written {
            Ok(run) => Some(run.id),
            Err(error) => {
                tracing::error!(%error, "cannot record a sync run");
                None
            }
        }
    }

    /// Applies a new permission policy: recomputes the access of members of every group
    /// whose grants changed, records one `access_changed` event per user whose access
    /// changed, swaps the policy in, and writes the export file. On error the old policy
    /// stays in force.
    pub async fn apply_policy(&self, new: Policy) -> Result<PolicyReport, SyncError> {
        self.apply_policy_shared(Arc::new(new)).await
    }

    async fn apply_policy_shared(&self, new: Arc<Policy>) -> Result<PolicyReport, SyncError> {
        let _exclusive = self.inner.exclusive.lock().await;
        self.apply_policy_locked(new).await
    }

    /// Applies a policy; the caller holds `exclusive`.
    async fn apply_policy_locked(&self, new: Arc<Policy>) -> Result<PolicyReport, SyncError> {
        let store = self.inner.store.clone();
        let policy = new.clone();
        let task = tokio::task::spawn_blocking(move || {
            let txn = store.read()?;
            access::plan(&txn, &policy)
        });
        let plan = task.await.unwrap_or_else(|error| {
            Err(StoreError::Storage(format!(
                "the access planner stopped: {error}"
            )))
        })?;

        let changed = !plan.groups.is_empty();
        let mut report = self
            .inner
            .store
            .writer()
            .write(move |txn| access::apply(txn, &plan))
            .await?;
        self.inner.policy.store(new);
        tracing::info!(
            groups_changed = report.groups_changed,
            users_changed = report.users_changed,
            "permission change applied"
        );
        if changed || !self.export_exists() {
            report.export_error = self.export_logged().await;
        }
        Ok(report)
    }

    fn export_exists(&self) -> bool {
        match self.settings().export_path {
            Some(path) => path.exists(),
            None => true,
        }
    }

    /// Writes the export file when a path is set; returns `Ok(false)` when none is.
    pub async fn export(&self) -> Result<bool, ExportError> {
        let Some(path) = self.settings().export_path else {
            return Ok(false);
        };
        let store = self.inner.store.clone();
        let policy = self.policy();
        let task = tokio::task::spawn_blocking(move || export::write(&store, &policy, &path));
        match task.await {
            Ok(result) => result.map(|()| true),
            Err(error) => Err(ExportError::Store(StoreError::Storage(format!(
                "the export task stopped: {error}"
            )))),
        }
    }

    async fn export_logged(&self) -> Option<String> {
        match self.export().await {
            Ok(_) => None,
            Err(error) => {
                tracing::warn!(%error, "cannot write the export file; the organization is unaffected");
                Some(error.to_string())
            }
        }
    }

    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Store, &Policy) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, SyncError> {
        let store = self.inner.store.clone();
        let policy = self.policy();
        let task = tokio::task::spawn_blocking(move || query(&store, &policy));
        let result = task
            .await
            .map_err(|error| StoreError::Storage(format!("a query stopped: {error}")))?;
        Ok(result?)
    }

    pub async fn status(&self) -> Result<Status, SyncError> {
        self.read(query::status).await
    }

    pub async fn users(&self) -> Result<Vec<UserSummary>, SyncError> {
        self.read(|store, _| query::users(store)).await
    }

    pub async fn groups(&self) -> Result<Vec<GroupSummary>, SyncError> {
        self.read(query::groups).await
    }

    /// Reports a user's access; `user` is an id or a `userName` (case-insensitive).
    pub async fn access(&self, user: &str) -> Result<Option<AccessReport>, SyncError> {
        let user = user.to_string();
        self.read(move |store, _| query::access(store, &user)).await
    }

    /// Returns up to `limit` runs, newest first.
    pub async fn runs(&self, limit: usize) -> Result<Vec<SyncRun>, SyncError> {
        self.read(move |store, _| history::runs(store, limit)).await
    }

    /// Returns a run with its audit events.
    pub async fn run(&self, id: u64) -> Result<Option<(SyncRun, Vec<AuditEvent>)>, SyncError> {
        self.read(move |store, _| history::run(store, id)).await
    }

    /// Lists audit events newest first, those of permission changes included. Returns `None`
    /// when `filter.user` names no organization user.
    pub async fn events(&self, filter: EventFilter) -> Result<Option<EventPage>, SyncError> {
        self.read(move |store, _| query::events(store, &filter)).await
    }
}

/// Clears the queue if the driving task ends without doing so (a panic), so later requests
/// start a new run. Dropping the pending waiters ends their wait with `SyncError::Stopped`.
struct QueueReset {
    inner: Arc<Inner>,
    armed: bool,
}

impl Drop for QueueReset {
    fn drop(&mut self) {
        if self.armed {
            let mut queue = lock(&self.inner.queue);
            queue.running = false;
            queue.pending = None;
        }
    }
}

/// Returns why the guard stops a sync, or `None` when it may apply.
pub fn guard_reason(guard: &GuardConfig, removals: &Removals) -> Option<String> {
    let users = (
        removals.users_deactivated,
        removals.active_users,
        "deactivate",
        "active users",
    );
    let groups = (removals.groups_deleted, removals.groups, "delete", "groups");
    for (removed, total, verb, noun) in [users, groups] {
        if exceeds(guard, removed, total) {
            return Some(format!(
                "the sync would {verb} {removed} of {total} {noun}, more than the guard allows \
                 (max_removed {}, max_removed_share {} above max_removed_floor {}); check the \
                 IdP's provisioning scope, then run the sync with --force if the change is intended",
                guard.max_removed, guard.max_removed_share, guard.max_removed_floor
            ));
        }
    }
    None
}

fn exceeds(guard: &GuardConfig, removed: u64, total: u64) -> bool {
    let over_share = removed as f64 > guard.max_removed_share * total as f64;
    removed > guard.max_removed || (removed > guard.max_removed_floor && over_share)
}

#[cfg(test)]
mod tests;
