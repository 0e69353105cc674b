//! The command line: `idpsync serve` runs the daemon; the other subcommands talk to it over
//! the control socket (token commands open the store directly when the daemon is not running).
//!
//! Exit codes: 0 success, 1 failure, 2 usage error, 3 daemon not running, 4 sync blocked by
//! the removal guard (rerun with `--force`), 5 not found, 6 the daemon did not respond in time
//! (`--timeout`).
//!
//! Every command but `sync` waits at most `--timeout` seconds (30 by default) for the daemon.
//! `sync` waits that long to connect, then as long as the sync runs, since a first sync of a
//! large directory takes minutes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use clap::{Args, Parser, Subcommand};
use http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::config::{Config, ConfigError, DEFAULT_CONFIG_PATH};
use crate::control::{self, ClientError, Wait};
use crate::store::{tokens, Store, StoreError};
use crate::sync::EVENT_KINDS;

/// Prints one line to stdout like `println!`, but through [`print_line`], which does not panic
/// when stdout is closed.
macro_rules! out {
    () => {
        $crate::cli::print_line("")
    };
    ($($argument:tt)*) => {
        $crate::cli::print_line(&format!($($argument)*))
    };
}

mod changes;
mod render;

use render::{
    print_access, print_blocked_sync, print_events, print_groups, print_run, print_runs, print_status, print_sync_report, print_token_created, print_tokens,
    print_users,
};

const EXIT_FAILURE: u8 = 1;
const EXIT_NOT_RUNNING: u8 = 3;
const EXIT_BLOCKED: u8 = 4;
const EXIT_NOT_FOUND: u8 = 5;
const EXIT_TIMED_OUT: u8 = 6;

#[derive(Parser)]
#[command(name = "idpsync", version, about = "SCIM 2.0 receiver that syncs IdP users and groups into an organization with TOML permissions")]
struct Cli {
    /// Config file.
    #[arg(long, global = true, env = "IDPSYNC_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    config: PathBuf,
    /// Seconds to wait for the daemon. `sync` waits this long to connect, then until the sync ends.
    #[arg(long, global = true, env = "IDPSYNC_TIMEOUT", default_value_t = 30, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone, Copy)]
struct Output {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Serve,
    /// Sync the organization with the directory now.
    Sync {
        /// Show the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Apply even when the removal guard would stop the sync.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        output: Output,
    },
    /// Show the daemon's state, the next scheduled sync and permission errors.
    Status {
        #[command(flatten)]
        output: Output,
    },
    /// List sync runs, or show one with its audit events.
    Syncs {
        #[command(subcommand)]
        show: Option<SyncsCommand>,
        /// Runs to list, newest first, at most 10000.
        #[arg(long, default_value_t = control::DEFAULT_LIMIT, value_parser = syncs_limit)]
        limit: u64,
        #[command(flatten)]
        output: Output,
    },
    /// List audit events newest first, including access changes from permission file edits.
    Events {
        /// Maximum number of events to list, at most 1000.
        #[arg(long, default_value_t = control::DEFAULT_LIMIT, value_parser = events_limit)]
        limit: u64,
        /// List only events older than this event id, to page back through the history.
        #[arg(long, value_parser = event_id)]
        before: Option<u64>,
        /// List only events of this kind.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(EVENT_KINDS))]
        kind: Option<String>,
        /// List only events about this user, given as an id or a userName.
        #[arg(long, value_parser = non_blank)]
        user: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// List the organization's users.
    Users {
        #[command(flatten)]
        output: Output,
    },
    /// List the organization's external groups, with their roles or "unmapped".
    Groups {
        #[command(flatten)]
        output: Output,
    },
    /// Show a user's effective access: groups, roles, permissions and the grants they come from.
    Access {
        /// User id or userName.
        #[arg(value_parser = non_blank)]
        user: String,
        #[command(flatten)]
        output: Output,
    },
    /// Manage SCIM bearer tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Validate configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum SyncsCommand {
    /// Show one sync run and its audit events.
    Show {
        #[arg(value_parser = run_id)]
        id: u64,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it with the SCIM base URL; the token is shown only once.
    Create {
        /// A name that says who uses the token, such as "entra-prod".
        #[arg(long, value_parser = non_blank)]
        name: String,
        #[command(flatten)]
        output: Output,
    },
    /// List tokens with their creation and last-use times.
    List {
        #[command(flatten)]
        output: Output,
    },
    /// Revoke a token; requests that present it fail from the next one on.
    Revoke {
        /// Token id, as `token list` shows it.
        #[arg(value_parser = non_blank)]
        id: String,
        #[command(flatten)]
        output: Output,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the config file and the permission files without starting anything.
    Check {
        #[command(flatten)]
        output: Output,
    },
}

/// Parses an argument that must contain more than white space, such as a user or token id.
fn non_blank(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        return Err("the value is empty".to_string());
    }
    Ok(value.to_string())
}

/// Parses a whole number from 1 to `max`. The error message starts with `expected`.
fn whole_number(value: &str, max: u64, expected: &str) -> Result<u64, String> {
    if value.trim().is_empty() {
        return Err("the value is empty".to_string());
    }
    match value.trim().parse::<u64>() {
        Ok(number) if (1..=max).contains(&number) => Ok(number),
        _ => Err(format!("{expected}, found {}", control::quote(value))),
    }
}

fn run_id(value: &str) -> Result<u64, String> {
    whole_number(value, u64::MAX, "ID must be a sync run number such as 42, as `idpsync syncs` lists it")
}

fn event_id(value: &str) -> Result<u64, String> {
    whole_number(value, u64::MAX, "--before must be an event number such as 120, as `idpsync events` lists it")
}

fn syncs_limit(value: &str) -> Result<u64, String> {
    whole_number(value, control::MAX_SYNCS_LIMIT, &format!("--limit must be a whole number from 1 to {}", control::MAX_SYNCS_LIMIT))
}

fn events_limit(value: &str) -> Result<u64, String> {
    whole_number(value, control::MAX_EVENTS_LIMIT, &format!("--limit must be a whole number from 1 to {}", control::MAX_EVENTS_LIMIT))
}

/// Set by the first failed write to stdout, after which output is dropped. So a reader that
/// closes the pipe early, as `idpsync syncs | head -1` does, ends the output quietly.
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);
/// The first stdout write error other than a closed pipe, reported when the command ends.
static STDOUT_ERROR: Mutex<Option<String>> = Mutex::new(None);

/// Writes `line` and a newline to stdout. After a write error (a closed pipe gives EPIPE,
/// because Rust programs ignore SIGPIPE) it writes nothing more.
fn print_line(line: &str) {
    if STDOUT_FAILED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_all(line.as_bytes()).and_then(|()| stdout.write_all(b"\n"));
    if let Err(error) = written {
        record_stdout_error(error);
    }
}

fn record_stdout_error(error: std::io::Error) {
    STDOUT_FAILED.store(true, Ordering::Relaxed);
    if error.kind() != std::io::ErrorKind::BrokenPipe {
        STDOUT_ERROR.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(error.to_string());
    }
}

/// Flushes stdout and returns the write error to report, if any. A closed pipe is not
/// reported.
fn finish_stdout() -> Option<String> {
    if !STDOUT_FAILED.load(Ordering::Relaxed) {
        if let Err(error) = std::io::stdout().flush() {
            record_stdout_error(error);
        }
    }
    STDOUT_ERROR.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// Flushes stdout and returns the error of the first failed write, including a closed pipe.
fn stdout_lost() -> Option<String> {
    if !STDOUT_FAILED.load(Ordering::Relaxed) {
        if let Err(error) = std::io::stdout().flush() {
            record_stdout_error(error);
        }
    }
    if !STDOUT_FAILED.load(Ordering::Relaxed) {
        return None;
    }
    let error = STDOUT_ERROR.lock().unwrap_or_else(|e| e.into_inner()).take();
    Some(error.unwrap_or_else(|| "the reading end of the pipe is closed".to_string()))
}

/// Prints `idpsync: MESSAGE` to stderr, ignoring write errors like [`print_line`] does.
/// Control characters other than line breaks are escaped, so a value from the daemon cannot
/// move the cursor or change the terminal.
fn print_error(message: &str) {
    let mut escaped = String::with_capacity(message.len());
    for character in message.chars() {
        if character == '\n' {
            escaped.push(character);
        } else {
            control::push_escaped(&mut escaped, character);
        }
    }
    let _ = writeln!(std::io::stderr(), "idpsync: {escaped}");
}

/// A CLI failure: the message for stderr and the exit code. With `--json`, stdout gets a JSON
/// object with the message, the exit code and the fields of `details`.
struct Failure {
    code: u8,
    message: String,
    details: Option<Value>,
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        let code = match error {
            ClientError::NotRunning(_) => EXIT_NOT_RUNNING,
            ClientError::TimedOut { .. } => EXIT_TIMED_OUT,
            _ => EXIT_FAILURE,
        };
        Failure { code, message: error.to_string(), details: None }
    }
}

fn failure(message: impl Into<String>) -> Failure {
    Failure { code: EXIT_FAILURE, message: message.into(), details: None }
}

/// Parses the arguments, runs the command and turns its result into an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // A usage error with --json is reported as JSON too, but not a help or version request.
            if error.use_stderr() && std::env::args_os().any(|argument| argument == "--json") {
                let text = error.render().to_string();
                let first = text.lines().next().unwrap_or_default().trim_start_matches("error: ");
                print_json_failure(first, error.exit_code(), None);
            }
            error.exit()
        }
    };
    let json = cli.command.json();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            print_error(&format!("cannot start the async runtime: {error}"));
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let result = runtime.block_on(run(cli));
    let stdout_error = finish_stdout();
    match (result, stdout_error) {
        (Ok(()), None) => ExitCode::SUCCESS,
        (Ok(()), Some(error)) => {
            print_error(&format!("cannot write to stdout: {error}"));
            ExitCode::from(EXIT_FAILURE)
        }
        (Err(failure), _) => {
            if json {
                print_json_failure(&failure.message, i32::from(failure.code), failure.details);
                let _ = finish_stdout();
            }
            print_error(&failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// Prints a failure as one JSON object on stdout: `error`, `exit_code` and the other fields
/// of `details`.
fn print_json_failure(message: &str, code: i32, details: Option<Value>) {
    let mut object = serde_json::Map::new();
    object.insert("error".to_string(), Value::from(message));
    object.insert("exit_code".to_string(), Value::from(code));
    if let Some(Value::Object(fields)) = details {
        for (name, value) in fields {
            if name != "error" && name != "exit_code" {
                object.insert(name, value);
            }
        }
    }
    out!("{}", serde_json::to_string_pretty(&Value::Object(object)).unwrap_or_default());
}

impl Command {
    /// Reports whether the command was given `--json`.
    fn json(&self) -> bool {
        let output = match self {
            Command::Serve => return false,
            Command::Sync { output, .. }
            | Command::Status { output }
            | Command::Syncs { show: None, output, .. }
            | Command::Syncs { show: Some(SyncsCommand::Show { output, .. }), .. }
            | Command::Events { output, .. }
            | Command::Users { output }
            | Command::Groups { output }
            | Command::Access { output, .. }
            | Command::Token { command: TokenCommand::Create { output, .. } | TokenCommand::List { output } | TokenCommand::Revoke { output, .. } }
            | Command::Config { command: ConfigCommand::Check { output } } => output,
        };
        output.json
    }
}

/// Loads the config file. When it does not exist, the error message names `--config` and
/// `IDPSYNC_CONFIG`.
fn load_config(path: &std::path::Path) -> Result<Config, Failure> {
    if path.is_dir() {
        return Err(failure(format!(
            "{} is a directory; pass the config file with --config PATH (or IDPSYNC_CONFIG), such as {}",
            path.display(),
            path.join("idpsync.toml").display()
        )));
    }
    Config::load(path).map_err(|error| {
        let missing = matches!(&error, ConfigError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound);
        if !missing {
            return failure(error.to_string());
        }
        let other = if path.as_os_str() == DEFAULT_CONFIG_PATH { "a config file other than the default" } else { "another config file" };
        failure(format!("{error}. Pass --config PATH or set IDPSYNC_CONFIG to use {other}."))
    })
}

async fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::Config { command: ConfigCommand::Check { output } } = &cli.command {
        return config_check(&cli.config, *output);
    }
    let config = load_config(&cli.config)?;
    let limit = std::time::Duration::from_secs(cli.timeout);
    let socket = Client { socket: config.control.socket.clone(), wait: Wait::within(limit) };
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Sync { dry_run, force, output } => {
            let path = format!("/sync?dry_run={dry_run}&force={force}");
            let syncing = Client { socket: socket.socket.clone(), wait: Wait { connect: limit, response: None } };
            let (status, body) = syncing.request(Method::POST, &path, None).await.map_err(|error| match error {
                ClientError::Closed { .. } => failure(format!(
                    "{error}. The sync may have run or may still run: `idpsync syncs` lists the runs."
                )),
                error => Failure::from(error),
            })?;
            if status == StatusCode::CONFLICT {
                if !output.json {
                    print_blocked_sync(&body);
                }
                // The guard's reason already advises a rerun with --force.
                return Err(Failure { code: EXIT_BLOCKED, message: error_text(&body), details: Some(body) });
            }
            let body = expect_ok(status, body)?;
            // A dry run exits as the real sync would, so scripts can test a plan first.
            if body["dry_run"] == true && body["outcome"] == "blocked" {
                if !output.json {
                    print_sync_report(&body);
                }
                return Err(Failure { code: EXIT_BLOCKED, message: error_text_of(&body, "reason"), details: Some(body) });
            }
            print_value(&body, output, print_sync_report);
            Ok(())
        }
        Command::Status { output } => query(&socket, "/status", output, print_status).await,
        Command::Syncs { show: Some(SyncsCommand::Show { id, output }), .. } => {
            query(&socket, &format!("/syncs/{id}"), output, print_run).await
        }
        Command::Syncs { show: None, limit, output } => query(&socket, &format!("/syncs?limit={limit}"), output, print_runs).await,
        Command::Events { limit, before, kind, user, output } => {
            let filter = EventQuery { limit, before, kind, user };
            let body = list_events(&socket, filter).await?;
            print_value(&body, output, print_events);
            Ok(())
        }
        Command::Users { output } => query(&socket, "/users", output, print_users).await,
        Command::Groups { output } => query(&socket, "/groups", output, print_groups).await,
        Command::Access { user, output } => {
            let path = format!("/access/{}", percent_encoding::utf8_percent_encode(&user, percent_encoding::NON_ALPHANUMERIC));
            query(&socket, &path, output, print_access).await
        }
        Command::Token { command } => token(&config, &socket, command).await,
        Command::Config { .. } => Ok(()),
    }
}

async fn serve(config: Config) -> Result<(), Failure> {
    crate::logging::init(&config.log.level, config.log.format);
    crate::daemon::run(config).await.map_err(|error| {
        tracing::error!(%error, "idpsync failed to start");
        failure(error.to_string())
    })
}

fn error_text(body: &Value) -> String {
    error_text_of(body, "error")
}

/// Returns the string in `body[field]`, or the whole body as JSON when there is none.
fn error_text_of(body: &Value, field: &str) -> String {
    body.get(field).and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| body.to_string())
}

fn expect_ok(status: StatusCode, body: Value) -> Result<Value, Failure> {
    if status.is_success() {
        return Ok(body);
    }
    let code = if status == StatusCode::NOT_FOUND { EXIT_NOT_FOUND } else { EXIT_FAILURE };
    Err(Failure { code, message: error_text(&body), details: Some(body) })
}

/// The control socket and how long to wait for its responses.
struct Client {
    socket: PathBuf,
    wait: Wait,
}

impl Client {
    async fn request(&self, method: Method, path: &str, body: Option<Value>) -> Result<(StatusCode, Value), ClientError> {
        control::request(&self.socket, method, path, body, self.wait).await
    }
}

async fn query(socket: &Client, path: &str, output: Output, table: fn(&Value)) -> Result<(), Failure> {
    let (status, body) = socket.request(Method::GET, path, None).await?;
    let body = expect_ok(status, body)?;
    print_value(&body, output, table);
    Ok(())
}

/// The arguments of `idpsync events`.
struct EventQuery {
    limit: u64,
    before: Option<u64>,
    kind: Option<String>,
    user: Option<String>,
}

/// Fetches up to `filter.limit` audit events. A page of `GET /events` reads a bounded number of
/// events, so with a filter it can come back short. This function then requests further pages
/// until the limit is reached or no older events are left.
async fn list_events(socket: &Client, filter: EventQuery) -> Result<Value, Failure> {
    let mut events: Vec<Value> = Vec::new();
    let mut before = filter.before;
    loop {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("limit", &(filter.limit - events.len() as u64).to_string());
        if let Some(before) = before {
            query.append_pair("before", &before.to_string());
        }
        if let Some(kind) = &filter.kind {
            query.append_pair("kind", kind);
        }
        if let Some(user) = &filter.user {
            query.append_pair("user", user);
        }
        let (status, body) = socket.request(Method::GET, &format!("/events?{}", query.finish()), None).await?;
        let mut page = expect_ok(status, body)?;
        if let Some(Value::Array(found)) = page.get_mut("events").map(Value::take) {
            events.extend(found);
        }
        before = page["next_before"].as_u64();
        if before.is_none() || events.len() as u64 >= filter.limit {
            break;
        }
    }
    Ok(json!({"events": events, "next_before": before}))
}

fn print_value(body: &Value, output: Output, table: fn(&Value)) {
    if output.json {
        out!("{}", serde_json::to_string_pretty(body).unwrap_or_default());
    } else {
        table(body);
    }
}

fn config_check(path: &std::path::Path, output: Output) -> Result<(), Failure> {
    let config = load_config(path)?;
    let permissions = crate::permissions::load_dir(&config.permissions.dir);
    let mut report = match &permissions {
        Ok(policy) => json!({"config": config.file, "valid": true, "permission_files": policy.files().len(), "roles": policy.roles().count(), "grants": policy.grants().len()}),
        Err(errors) => json!({"config": config.file, "valid": false, "errors": errors.errors().iter().map(ToString::to_string).collect::<Vec<_>>()}),
    };
    let mut problems: Vec<String> = Vec::new();
    if let Err(error) = check_tls(&config.tls) {
        report["valid"] = Value::Bool(false);
        report["tls_error"] = Value::from(error.to_string());
        problems.push(format!("TLS certificate: {error}"));
    }
    if let Err(errors) = &permissions {
        problems.push(format!("permission files are invalid:\n{errors}"));
    }
    if !problems.is_empty() {
        return Err(Failure { code: EXIT_FAILURE, message: problems.join("\n"), details: Some(report) });
    }
    if output.json {
        out!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        out!("{}: valid ({} permission files, {} roles, {} grants)", config.file.display(), report["permission_files"], report["roles"], report["grants"]);
    }
    Ok(())
}

/// Loads the certificate and key as `idpsync serve` would. With `tls.self_signed`, the daemon
/// creates the pair when both files are missing, so only a half pair is an error then.
fn check_tls(tls: &crate::config::TlsConfig) -> Result<(), crate::tls::TlsError> {
    let (cert, key) = (tls.cert.exists(), tls.key.exists());
    if tls.self_signed && !cert && !key {
        return Ok(());
    }
    if tls.self_signed && cert != key {
        let (present, missing) = if cert { (&tls.cert, &tls.key) } else { (&tls.key, &tls.cert) };
        return Err(crate::tls::TlsError::HalfPair { present: present.display().to_string(), missing: missing.display().to_string() });
    }
    crate::tls::load_certified_key(&tls.cert, &tls.key).map(|_| ())
}

async fn token(config: &Config, socket: &Client, command: TokenCommand) -> Result<(), Failure> {
    match command {
        TokenCommand::Create { name, output } => {
            // Offline, the store stays open until the token is shown, so that it can be revoked.
            let (body, store) = match socket.request(Method::POST, "/tokens", Some(json!({"name": name}))).await {
                Err(ClientError::NotRunning(_)) => {
                    let store = open_offline(config)?;
                    let created = store.writer().write(move |txn| tokens::create(txn, &name)).await;
                    match created {
                        Ok((record, token)) => (tokens::created_view(&record, &token, config.public_url()), Some(store)),
                        Err(error) => {
                            store.close().await;
                            return Err(failure(error.to_string()));
                        }
                    }
                }
                other => {
                    let (status, body) = other?;
                    (expect_ok(status, body)?, None)
                }
            };
            print_value(&body, output, print_token_created);
            let result = match stdout_lost() {
                None => Ok(()),
                // The token was never displayed, so it must not stay valid.
                Some(error) => {
                    let id = body["id"].as_str().unwrap_or_default().to_string();
                    let revoked = match &store {
                        Some(store) => revoke_in_store(store, &id).await,
                        None => revoke_token(config, socket, &id).await,
                    };
                    let lost = format!("cannot write the new token to stdout ({error})");
                    match revoked {
                        Ok(_) => Err(failure(format!("{lost}, so token {id} was revoked again; rerun `idpsync token create` with a stdout that can be written"))),
                        Err(revoking) => Err(failure(format!(
                            "{lost}, and revoking token {id} failed: {}. Revoke it with `idpsync token revoke {id}`",
                            revoking.message
                        ))),
                    }
                }
            };
            if let Some(store) = store {
                store.close().await;
            }
            result
        }
        TokenCommand::List { output } => {
            let body = match socket.request(Method::GET, "/tokens", None).await {
                Err(ClientError::NotRunning(_)) => {
                    let store = open_offline(config)?;
                    let records = tokens::list(&store.read().map_err(|error| failure(error.to_string()))?)
                        .map_err(|error| failure(error.to_string()))?;
                    json!(records.iter().map(|record| json!({"id": record.id, "name": record.name, "created": record.created, "last_used": record.last_used})).collect::<Vec<_>>())
                }
                other => {
                    let (status, body) = other?;
                    expect_ok(status, body)?
                }
            };
            print_value(&body, output, print_tokens);
            Ok(())
        }
        TokenCommand::Revoke { id, output } => {
            let body = revoke_token(config, socket, &id).await?;
            print_value(&body, output, |body| out!("revoked token {}", body["revoked"].as_str().unwrap_or_default()));
            Ok(())
        }
    }
}

/// Revokes a token through the daemon, or in the store when the daemon is not running.
async fn revoke_token(config: &Config, socket: &Client, id: &str) -> Result<Value, Failure> {
    let path = format!("/tokens/{}", percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC));
    match socket.request(Method::DELETE, &path, None).await {
        Err(ClientError::NotRunning(_)) => {
            let store = open_offline(config)?;
            let revoked = revoke_in_store(&store, id).await;
            store.close().await;
            revoked
        }
        other => {
            let (status, body) = other?;
            expect_ok(status, body)
        }
    }
}

/// Revokes a token in a store that this process has open.
async fn revoke_in_store(store: &Store, id: &str) -> Result<Value, Failure> {
    let id = id.to_string();
    let record = store.writer().write(move |txn| tokens::revoke(txn, &id)).await.map_err(|error| match error {
        tokens::TokenError::NotFound(_) => Failure { code: EXIT_NOT_FOUND, message: error.to_string(), details: None },
        error => failure(error.to_string()),
    })?;
    Ok(json!({"revoked": record.id, "name": record.name}))
}

fn open_offline(config: &Config) -> Result<Store, Failure> {
    Store::open(&config.store.path).map_err(|error| match error {
        StoreError::InUse { .. } => failure(format!(
            "{error}; the daemon seems to run but its control socket {} does not respond",
            config.control.socket.display()
        )),
        error => failure(error.to_string()),
    })
}

