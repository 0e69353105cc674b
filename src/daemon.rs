//! `idpsync serve`: opens the store, starts the SCIM listener, the control socket, the
//! permission watcher and the schedule, handles SIGHUP, SIGTERM and SIGINT, and notifies
//! systemd when it is ready, reloading or stopping.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use futures::StreamExt;
use http::StatusCode;
use serde_json::{json, Value};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_tokio::Signals;
use tokio::sync::watch;

use crate::config::Config;
use crate::control::{self, Reply};
use crate::metrics::Metrics;
use crate::permissions::{self, Policy};
use crate::scheduler::Schedule;
use crate::server::{self, AppState};
use crate::store::tokens::{self, TokenVerifier};
use crate::store::Store;
use crate::sync::{Organization, SyncError, SyncOptions, Trigger};
use crate::tls::{self, CertResolver};

/// How often in-memory token last-use times are written to the store.
const LAST_USED_FLUSH: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot listen on {address}: {source}; free the port or change server.listen")]
    Listen { address: SocketAddr, source: std::io::Error },
    #[error("cannot open the control socket {path}: {source}")]
    Control { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Schedule(String),
    #[error("cannot install the signal handlers: {0}")]
    Signals(std::io::Error),
}

/// Error of a sync request that did not run or did not apply.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(
        "no valid permission files have loaded since the daemon started, so a sync could \
         compute wrong access; fix them (`idpsync config check` shows the errors): {0}"
    )]
    NoPolicy(String),
    #[error(transparent)]
    Sync(#[from] SyncError),
}

/// Result of a config and certificate reload: failures and keys that wait for a restart.
#[derive(Default)]
struct ReloadOutcome {
    /// Parts that failed to load and kept their previous value.
    problems: Vec<String>,
    /// Changed keys that take effect only after a restart.
    restart_required: Vec<&'static str>,
}

/// The running daemon's shared parts, used by the control socket and signal handlers.
pub struct Daemon {
    state: Arc<AppState>,
    resolver: Arc<CertResolver>,
    organization: Organization,
    /// Error of the latest permission load that failed, cleared by the next one that succeeds.
    /// The policy in force lives in the organization.
    permission_error: Mutex<Option<String>>,
    /// Whether a valid policy has ever loaded; syncs wait for one, so invalid files at start
    /// can never strip everyone's access.
    policy_loaded: Arc<AtomicBool>,
    schedule: tokio::sync::Mutex<Option<Schedule>>,
    /// Watcher of `permissions.dir`; replaced when a reload names another folder.
    permission_watcher: Mutex<Option<permissions::PermissionWatcher>>,
    /// The daemon itself, for callbacks (the permission watcher) that must not keep it alive.
    this: Weak<Daemon>,
    /// The config the daemon started with: the source of the keys that need a restart.
    started_with: Arc<Config>,
    started: String,
}

impl Daemon {
    fn config(&self) -> Arc<Config> {
        self.state.config.load_full()
    }

    pub fn organization(&self) -> &Organization {
        &self.organization
    }

    pub fn metrics_text(&self) -> String {
        let stats = self.state.store.writer().stats();
        let mut text = self.state.metrics.render(self.state.store.file_size());
        text.push_str("# HELP idpsync_store_commits_total Durable write transactions committed.\n");
        text.push_str("# TYPE idpsync_store_commits_total counter\n");
        text.push_str(&format!("idpsync_store_commits_total {}\n", stats.commits.load(Ordering::Relaxed)));
        text.push_str("# HELP idpsync_store_write_jobs_total Writes run by the store writer; a commit holds one or more.\n");
        text.push_str("# TYPE idpsync_store_write_jobs_total counter\n");
        text.push_str(&format!("idpsync_store_write_jobs_total {}\n", stats.jobs.load(Ordering::Relaxed)));
        text.push_str("# HELP idpsync_store_reopens_total Times the store was opened again after a failed write.\n");
        text.push_str("# TYPE idpsync_store_reopens_total counter\n");
        text.push_str(&format!("idpsync_store_reopens_total {}\n", stats.reopens.load(Ordering::Relaxed)));
        text
    }

    /// Loads the permission folder. An invalid folder is recorded as the permission error and
    /// gives None, so the last valid policy stays in force.
    async fn load_permissions(&self) -> Option<Policy> {
        let dir = self.config().permissions.dir.clone();
        let in_force = self.organization.policy().files().len();
        let folder = dir.clone();
        match tokio::task::spawn_blocking(move || permissions::load_dir(&folder)).await {
            Ok(Ok(policy)) if policy.files().is_empty() && in_force > 0 => {
                // A wrong folder or a deleted checkout must not strip everyone's access.
                let text = format!(
                    "{} holds no *.toml permission files, so the {in_force} file(s) loaded before stay in force; \
                     to remove every grant on purpose, keep one file without [[grants]]",
                    dir.display()
                );
                tracing::warn!(dir = %dir.display(), "{text}");
                *self.permission_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
                None
            }
            Ok(Ok(policy)) => Some(policy),
            Ok(Err(errors)) => {
                let text = errors.to_string();
                if self.policy_loaded.load(Ordering::SeqCst) {
                    tracing::warn!(errors = %text, "permission files are invalid; the previous permissions stay in force");
                } else {
                    tracing::warn!(errors = %text, "permission files are invalid and none have loaded yet; syncs wait until they are fixed");
                }
                *self.permission_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
                None
            }
            Err(error) => {
                tracing::warn!(%error, "the permission loading task failed; the previous permissions stay in force");
                None
            }
        }
    }

    /// Records that a valid policy is in force.
    fn policy_accepted(&self, files: usize) {
        *self.permission_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.policy_loaded.store(true, Ordering::SeqCst);
        tracing::info!(files, "permissions in force");
    }

    /// Loads the permission folder and applies a valid policy at once, without a sync.
    pub async fn reload_permissions(&self) {
        let Some(policy) = self.load_permissions().await else { return };
        let files = policy.files().len();
        match self.organization.apply_policy(policy).await {
            Ok(_) => self.policy_accepted(files),
            Err(error) => tracing::warn!(%error, "applying permissions failed; the previous permissions stay in force"),
        }
    }

    /// Runs a sync (coalesced with any that is running) and reports it.
    async fn run_sync(&self, trigger: Trigger, options: SyncOptions) -> Result<Value, RunError> {
        if !self.policy_loaded.load(Ordering::SeqCst) {
            let error = self.permission_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
            return Err(RunError::NoPolicy(error.unwrap_or_default()));
        }
        let report = self.organization.sync(trigger, options).await?;
        Ok(serde_json::to_value(&report).unwrap_or(Value::Null))
    }

    pub async fn sync_now(&self, dry_run: bool, force: bool) -> Reply {
        match self.run_sync(Trigger::Socket, SyncOptions { dry_run, force }).await {
            Ok(report) => Reply::ok(report),
            Err(RunError::Sync(SyncError::Blocked { run, reason })) => Reply {
                status: StatusCode::CONFLICT,
                body: json!({"error": reason, "blocked": true, "run": run}),
            },
            Err(RunError::NoPolicy(error)) => Reply::error(StatusCode::SERVICE_UNAVAILABLE, RunError::NoPolicy(error).to_string()),
            Err(error) => Reply::error(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        }
    }

    pub async fn status(&self) -> Reply {
        let config = self.config();
        let next_run = match self.schedule.lock().await.as_ref() {
            Some(schedule) => schedule.next_run().await,
            None => None,
        };
        let organization = self.organization.status().await.ok();
        let token_count = self.token_records().await.map(|records| records.len()).unwrap_or(0);
        let permission_error = self.permission_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Reply::ok(json!({
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "started": self.started,
            "scim_url": config.public_url(),
            "listen": config.server.listen.to_string(),
            "store": {"path": config.store.path, "bytes": self.state.store.file_size()},
            "schedule": {"expression": config.sync.schedule, "next_run": next_run},
            "permissions": {
                "dir": config.permissions.dir,
                "loaded": self.policy_loaded.load(Ordering::SeqCst),
                "error": permission_error,
            },
            "organization": organization,
            "tokens": token_count,
        }))
    }

    pub async fn syncs(&self, limit: usize) -> Reply {
        match self.organization.runs(limit).await {
            Ok(runs) => Reply::ok(json!(runs)),
            Err(error) => Reply::error(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        }
    }

    pub async fn sync_run(&self, id: &str) -> Reply {
        let Ok(id) = id.parse::<u64>() else {
            return Reply::error(StatusCode::BAD_REQUEST, format!("sync run id must be a number, found {id:?}"));
        };
        match self.organization.run(id).await {
            Ok(Some((run, events))) => Reply::ok(json!({"run": run, "events": events})),
            Ok(None) => Reply::error(StatusCode::NOT_FOUND, format!("no sync run {id}")),
            Err(error) => Reply::error(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        }
    }

    pub async fn users(&self) -> Reply {
        match self.organization.users().await {
            Ok(users) => Reply::ok(json!(users)),
            Err(error) => Reply::error(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        }
    }

    pub async fn groups(&self) -> Reply {
        match self.organization.groups().await {
            Ok(groups) => Reply::ok(json!(groups)),
            Err(error) => Reply::error(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        }
    }

    pub async fn access(&self, user: &str) -> Reply {
        match self.organization.access(user).await {
            Ok(Some(access)) => Reply::ok(json!(access)),
            Ok(None) => Reply::error(StatusCode::NOT_FOUND, format!("no user {user:?} in the organization; it appears after the sync that follows its provisioning")),
            Err(error) => Reply::error(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        }
    }

    async fn token_records(&self) -> Result<Vec<tokens::TokenRecord>, tokens::TokenError> {
        let store = self.state.store.clone();
        tokio::task::spawn_blocking(move || tokens::list(&store.read()?))
            .await
            .unwrap_or_else(|_| Ok(Vec::new()))
    }

    async fn reload_tokens(&self) {
        if let Ok(records) = self.token_records().await {
            self.state.tokens.load(&records);
        }
    }

    pub async fn list_tokens(&self) -> Reply {
        match self.token_records().await {
            Ok(mut records) => {
                // Last-use times reach the store every few seconds; show the newest ones now.
                let pending = self.state.tokens.pending_last_used();
                for record in &mut records {
                    if let Some(time) = pending.get(&record.id) {
                        record.last_used = Some(time.clone());
                    }
                }
                Reply::ok(json!(records.iter().map(token_view).collect::<Vec<_>>()))
            }
            Err(error) => Reply::error(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        }
    }

    pub async fn create_token(&self, name: &str) -> Reply {
        let name = name.to_string();
        let created = self.state.store.writer().write(move |txn| tokens::create(txn, &name)).await;
        match created {
            Ok((record, token)) => {
                self.reload_tokens().await;
                tracing::info!(id = %record.id, name = %record.name, "token created");
                Reply::ok(tokens::created_view(&record, &token, self.config().public_url()))
            }
            Err(tokens::TokenError::InvalidName(name)) => {
                Reply::error(StatusCode::BAD_REQUEST, tokens::TokenError::InvalidName(name).to_string())
            }
            Err(error) => Reply::error(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        }
    }

    pub async fn revoke_token(&self, id: &str) -> Reply {
        let id = id.to_string();
        let revoked = self.state.store.writer().write(move |txn| tokens::revoke(txn, &id)).await;
        match revoked {
            Ok(record) => {
                self.reload_tokens().await;
                tracing::info!(id = %record.id, name = %record.name, "token revoked");
                Reply::ok(json!({"revoked": record.id, "name": record.name}))
            }
            Err(error @ tokens::TokenError::NotFound(_)) => Reply::error(StatusCode::NOT_FOUND, error.to_string()),
            Err(error) => Reply::error(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        }
    }

    /// Reloads the config file, the TLS certificate and the permission files. A part that
    /// fails to load keeps its previous value.
    pub async fn reload(&self) -> Reply {
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Reloading]);
        let outcome = self.reload_config_and_tls().await;
        self.reload_permissions().await;
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        Reply::ok(self.reload_answer(outcome))
    }

    /// Builds the reload report: `reloaded` is false when any part failed to load, and
    /// `restart_required` names changed keys that apply only after a restart.
    fn reload_answer(&self, mut outcome: ReloadOutcome) -> Value {
        if let Some(error) = self.permission_error.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            outcome.problems.push(error);
        }
        json!({
            "reloaded": outcome.problems.is_empty(),
            "problems": outcome.problems,
            "restart_required": outcome.restart_required,
        })
    }

    /// SIGHUP: reloads the config and the certificate, then syncs. The sync applies freshly
    /// loaded permissions first, inside the sync queue, so a SIGHUP during a running sync
    /// joins its follow-up run instead of adding another.
    async fn reload_and_sync(&self) {
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Reloading]);
        let outcome = self.reload_config_and_tls().await;
        let policy = self.load_permissions().await;
        let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
        tracing::info!(answer = %self.reload_answer(outcome), "reloaded after SIGHUP");
        let result = match policy {
            Some(policy) => {
                let files = policy.files().len();
                let result = self.organization.sync_with_policy(Trigger::Signal, SyncOptions::default(), Some(policy)).await;
                if !matches!(result, Err(SyncError::Store(_) | SyncError::Stopped)) {
                    self.policy_accepted(files);
                }
                result.map(|_| ()).map_err(RunError::Sync)
            }
            None => self.run_sync(Trigger::Signal, SyncOptions::default()).await.map(|_| ()),
        };
        if let Err(error) = result {
            tracing::warn!(%error, "sync after SIGHUP did not apply");
        }
    }

    /// Reloads the config file and the TLS certificate.
    async fn reload_config_and_tls(&self) -> ReloadOutcome {
        let mut outcome = ReloadOutcome::default();
        let path = self.config().file.clone();
        match Config::load(&path) {
            Ok(new) => self.apply_config(new, &mut outcome).await,
            Err(error) => {
                tracing::warn!(%error, "config reload rejected; the running config stays");
                outcome.problems.push(error.to_string());
            }
        }
        let config = self.config();
        match tls::load_certified_key(&config.tls.cert, &config.tls.key) {
            Ok(key) => {
                tracing::info!(fingerprint = %tls::fingerprint(&key), "TLS certificate loaded");
                self.resolver.store(key);
            }
            Err(error) => {
                tracing::warn!(%error, "TLS reload failed; the previous certificate stays");
                outcome.problems.push(error.to_string());
            }
        }
        outcome
    }

    async fn apply_config(&self, mut new: Config, outcome: &mut ReloadOutcome) {
        let old = self.config();
        // Compared with the values the daemon runs with, which only a restart changes.
        let running = &self.started_with;
        let restart_only = [
            ("server.listen", new.server.listen != running.server.listen),
            ("server.max_connections", new.server.max_connections != running.server.max_connections),
            ("store.path", new.store.path != running.store.path),
            ("control.socket", new.control.socket != running.control.socket),
            ("log.format", new.log.format != running.log.format),
        ];
        outcome.restart_required = restart_only.iter().filter(|(_, changed)| *changed).map(|(key, _)| *key).collect();
        // Until the restart, `status` and everything else report the running values.
        new.server.listen = running.server.listen;
        new.server.max_connections = running.server.max_connections;
        new.store.path = running.store.path.clone();
        new.control.socket = running.control.socket.clone();
        new.log.format = running.log.format;
        if !outcome.restart_required.is_empty() {
            tracing::warn!(keys = %outcome.restart_required.join(", "), "changed config keys take effect after a restart");
        }
        if new.log.level != old.log.level {
            if let Err(error) = crate::logging::set_level(&new.log.level) {
                outcome.problems.push(error);
            }
        }
        self.organization.reconfigure(new.sync.guard.clone(), new.export.path.clone());
        let schedule_changed = new.sync.schedule != old.sync.schedule;
        let permissions_moved = new.permissions.dir != old.permissions.dir;
        let expression = new.sync.schedule.clone();
        let permission_dir = new.permissions.dir.clone();
        self.state.config.store(Arc::new(new));
        if schedule_changed {
            if let Err(error) = self.restart_schedule(&expression).await {
                outcome.problems.push(error);
            }
        }
        if permissions_moved {
            tracing::info!(dir = %permission_dir.display(), "permissions.dir changed; watching the new folder");
            self.watch_permissions(&permission_dir);
        }
        tracing::info!(file = %old.file.display(), "config reloaded");
    }

    /// Watches `dir` for permission changes, replacing any earlier watcher. A folder that
    /// cannot be watched is logged; its files then apply on SIGHUP only.
    fn watch_permissions(&self, dir: &std::path::Path) {
        let handle = tokio::runtime::Handle::current();
        let weak = self.this.clone();
        let watched = permissions::watch(dir.to_path_buf(), move || {
            if let Some(daemon) = weak.upgrade() {
                handle.spawn(async move { daemon.reload_permissions().await });
            }
        });
        let watcher = match watched {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                tracing::warn!(%error, dir = %dir.display(), "cannot watch the permission folder; changes apply on SIGHUP only");
                None
            }
        };
        // The previous watcher stops when it is dropped here.
        *self.permission_watcher.lock().unwrap_or_else(|e| e.into_inner()) = watcher;
    }

    async fn restart_schedule(&self, expression: &str) -> Result<(), String> {
        let mut slot = self.schedule.lock().await;
        if let Some(previous) = slot.take() {
            previous.stop().await;
        }
        let organization = self.organization.clone();
        let policy_loaded = self.policy_loaded.clone();
        let schedule = Schedule::start(expression, move || {
            let organization = organization.clone();
            let policy_loaded = policy_loaded.load(Ordering::SeqCst);
            async move {
                if !policy_loaded {
                    tracing::warn!("scheduled sync skipped: no valid permission files have loaded since the daemon started");
                    return;
                }
                if let Err(error) = organization.request(Trigger::Schedule).await {
                    tracing::warn!(%error, "scheduled sync did not apply");
                }
            }
        })
        .await?;
        *slot = Some(schedule);
        Ok(())
    }
}

fn token_view(record: &tokens::TokenRecord) -> Value {
    json!({"id": record.id, "name": record.name, "created": record.created, "last_used": record.last_used})
}


/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(config: Config) -> Result<(), DaemonError> {
    // Installed first: a SIGTERM during start-up waits in the queue and then stops the daemon
    // cleanly, instead of killing it with the default action.
    let signals = Signals::new([SIGHUP, SIGTERM, SIGINT]).map_err(DaemonError::Signals)?;
    let store = Store::open(&config.store.path)?;
    let verifier = TokenVerifier::new();
    verifier.load(&tokens::list(&store.read()?).unwrap_or_default());

    let (tls_config, resolver) = tls::server_config(&config.tls, config.server.listen.ip())?;
    tracing::info!(fingerprint = %tls::fingerprint(&tls::load_certified_key(&config.tls.cert, &config.tls.key)?), "TLS certificate loaded");
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|source| DaemonError::Listen { address: config.server.listen, source })?;
    let control_listener = control::bind(&config.control.socket)
        .map_err(|source| DaemonError::Control { path: config.control.socket.clone(), source })?;

    let metrics = Arc::new(Metrics::default());
    let organization = Organization::new(
        store.clone(),
        Arc::new(ArcSwap::from_pointee(Policy::empty())),
        config.sync.guard.clone(),
        config.export.path.clone(),
        metrics.clone(),
    );
    let state = Arc::new(AppState { config: ArcSwap::from_pointee(config.clone()), store: store.clone(), tokens: verifier.clone(), metrics });
    let daemon = Arc::new_cyclic(|this| Daemon {
        state: state.clone(),
        resolver,
        organization,
        permission_error: Mutex::new(None),
        policy_loaded: Arc::new(AtomicBool::new(false)),
        schedule: tokio::sync::Mutex::new(None),
        permission_watcher: Mutex::new(None),
        this: this.clone(),
        started_with: Arc::new(config.clone()),
        started: crate::store::now_rfc3339(),
    });
    daemon.reload_permissions().await;
    daemon.restart_schedule(&config.sync.schedule).await.map_err(DaemonError::Schedule)?;

    let (shutdown_sender, shutdown) = watch::channel(false);
    let server_task = tokio::spawn(server::serve(listener, tls_config, state.clone(), shutdown.clone()));
    let control_task = tokio::spawn(control::serve(control_listener, daemon.clone(), shutdown.clone()));
    daemon.watch_permissions(&config.permissions.dir);
    let flush_task = tokio::spawn(flush_last_used(store.clone(), verifier.clone(), shutdown.clone()));

    tracing::info!(listen = %config.server.listen, scim_url = %config.public_url(), socket = %config.control.socket.display(), "idpsync is serving");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);

    if config.sync.on_startup {
        let daemon = daemon.clone();
        tokio::spawn(async move {
            if let Err(error) = daemon.run_sync(Trigger::Startup, SyncOptions::default()).await {
                tracing::warn!(%error, "startup sync did not apply");
            }
        });
    }

    wait_for_signals(&daemon, signals).await;

    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    tracing::info!("shutting down");
    let _ = shutdown_sender.send(true);
    daemon.permission_watcher.lock().unwrap_or_else(|e| e.into_inner()).take();
    let _ = server_task.await;
    let _ = control_task.await;
    let _ = flush_task.await;
    if let Some(schedule) = daemon.schedule.lock().await.take() {
        schedule.stop().await;
    }
    let _ = std::fs::remove_file(&config.control.socket);
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}


/// Returns on SIGTERM or SIGINT; SIGHUP reloads and then syncs.
async fn wait_for_signals(daemon: &Arc<Daemon>, mut signals: Signals) {
    while let Some(signal) = signals.next().await {
        if signal == SIGHUP {
            tracing::info!("SIGHUP: reloading, then syncing");
            let daemon = daemon.clone();
            tokio::spawn(async move { daemon.reload_and_sync().await });
        } else {
            return;
        }
    }
}

async fn flush_last_used(store: Store, verifier: Arc<TokenVerifier>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(LAST_USED_FLUSH) => false,
            _ = shutdown.changed() => true,
        };
        let times = verifier.take_last_used();
        if !times.is_empty() {
            if let Err(error) = store.writer().write(move |txn| tokens::record_last_used(txn, &times)).await {
                tracing::warn!(%error, "cannot record token last-use times");
            }
        }
        if stopping {
            return;
        }
    }
}
