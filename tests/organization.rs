//! The organization end to end against a running daemon. The tests cover what a sync applies
//! and when it runs, permission files reloaded without a sync, dry runs and the removal guard.
//! They also cover coalesced sync requests, audit events, the export file and the CLI while
//! the daemon is stopped.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use common::Daemon;
use serde_json::{json, Value};

/// How long a test waits for the daemon to reach an expected state.
const WAIT: Duration = Duration::from_secs(10);
/// How long the schedule test waits for a run of a two-second schedule.
const SCHEDULE_WAIT: Duration = Duration::from_secs(20);
/// How long a test watches for a change that must not happen, such as an extra sync run.
const QUIET_WAIT: Duration = Duration::from_secs(3);
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// CLI exit codes: usage error, daemon not running, sync stopped by the removal guard, not
/// found.
const EXIT_USAGE: i32 = 2;
const EXIT_NOT_RUNNING: i32 = 3;
const EXIT_BLOCKED: i32 = 4;
const EXIT_NOT_FOUND: i32 = 5;

const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Permission file granting `role` on every resource to the group "Engineering".
fn engineering_policy(role: &str) -> String {
    format!(
        r#"[roles.viewer]
permissions = ["report:read"]

[roles.editor]
permissions = ["asset:read", "asset:write"]

[roles.admin]
permissions = ["asset:read", "asset:write", "asset:delete"]

[[grants]]
group = "Engineering"
role = "{role}"
resources = ["*"]
"#
    )
}

/// A permission file whose line 6 opens a string that never closes.
const UNTERMINATED_STRING_POLICY: &str = r#"[roles.viewer]
permissions = ["report:read"]

[[grants]]
role = "viewer"
group = "Engineering
resources = ["*"]
"#;
const UNTERMINATED_STRING_LINE: usize = 6;

fn describe(output: &Output) -> String {
    format!(
        "exit {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs the CLI, asserts that it succeeded and returns what it printed as JSON.
fn cli_json(daemon: &Daemon, args: &[&str]) -> Value {
    let output = daemon.cli(args);
    assert!(
        output.status.success(),
        "idpsync {args:?}: {}",
        describe(&output)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "idpsync {args:?} printed invalid JSON ({error}): {}",
            describe(&output)
        )
    })
}

/// Runs `idpsync sync --json` and returns the id of the run it applied.
fn sync(daemon: &Daemon) -> u64 {
    let report = cli_json(daemon, &["sync", "--json"]);
    report["run"]
        .as_u64()
        .unwrap_or_else(|| panic!("sync report without a run id: {report}"))
}

fn users(daemon: &Daemon) -> Vec<Value> {
    array(cli_json(daemon, &["users", "--json"]))
}

fn groups(daemon: &Daemon) -> Vec<Value> {
    array(cli_json(daemon, &["groups", "--json"]))
}

/// Returns the recorded sync runs, newest first.
fn runs(daemon: &Daemon) -> Vec<Value> {
    array(cli_json(daemon, &["syncs", "--limit", "1000", "--json"]))
}

fn array(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        other => panic!("expected a JSON array, found {other}"),
    }
}

/// Returns the `(kind, subject name)` pairs of a run's audit events.
fn events(daemon: &Daemon, run: u64) -> BTreeSet<(String, String)> {
    let run_with_events = cli_json(daemon, &["syncs", "show", &run.to_string(), "--json"]);
    array(run_with_events["events"].clone())
        .iter()
        .map(|event| {
            let kind = event["kind"].as_str().unwrap_or_default().to_string();
            let name = event["subject"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (kind, name)
        })
        .collect()
}

fn event(kind: &str, name: &str) -> (String, String) {
    (kind.to_string(), name.to_string())
}

fn find<'a>(items: &'a [Value], key: &str, value: &str) -> &'a Value {
    items
        .iter()
        .find(|item| item[key] == value)
        .unwrap_or_else(|| panic!("no item with {key} = {value:?} in {items:?}"))
}

/// Returns the roles that `access USER --json` reports.
fn roles(daemon: &Daemon, user: &str) -> Vec<String> {
    let access = cli_json(daemon, &["access", user, "--json"]);
    array(access["roles"].clone())
        .iter()
        .filter_map(|role| role.as_str().map(str::to_string))
        .collect()
}

/// Polls `probe` until it returns `Some`, and panics naming `what` after `timeout`.
fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {} s waiting until {what}",
            timeout.as_secs()
        );
        thread::sleep(POLL_INTERVAL);
    }
}

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    wait_for(what, WAIT, || condition().then_some(()));
}

fn create_user(daemon: &Daemon, user_name: &str) -> String {
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "displayName": user_name.split('@').next().unwrap_or(user_name),
        "emails": [{"value": user_name, "type": "work", "primary": true}],
        "active": true
    });
    created_id(daemon, "/Users", &body)
}

fn create_group(daemon: &Daemon, display_name: &str, members: &[&str]) -> String {
    let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": display_name,
        "members": members
    });
    created_id(daemon, "/Groups", &body)
}

fn created_id(daemon: &Daemon, path: &str, body: &Value) -> String {
    let response = daemon.scim("POST", path, Some(body));
    assert_eq!(response.status, 201, "POST {path}: {}", response.text());
    let created = response.json().expect("created resource is JSON");
    created["id"]
        .as_str()
        .expect("created resource has an id")
        .to_string()
}

fn patch(daemon: &Daemon, path: &str, operations: Value) {
    let body = json!({"schemas": [PATCH_SCHEMA], "Operations": operations});
    let response = daemon.scim("PATCH", path, Some(&body));
    assert!(
        response.status == 200 || response.status == 204,
        "PATCH {path}: {} {}",
        response.status,
        response.text()
    );
}

fn delete(daemon: &Daemon, path: &str) {
    let response = daemon.scim("DELETE", path, None);
    assert_eq!(response.status, 204, "DELETE {path}: {}", response.text());
}

/// Replaces a file the way editors and `git checkout` do: a new file renamed over the old.
fn replace_by_rename(path: &Path, text: &str) {
    let temporary = path.with_extension("toml.new");
    fs::write(&temporary, text).expect("write the replacement file");
    fs::rename(&temporary, path).expect("rename the replacement over the file");
}

fn permission_error(daemon: &Daemon) -> Option<String> {
    let status = cli_json(daemon, &["status", "--json"]);
    status["permissions"]["error"].as_str().map(str::to_string)
}

#[test]
fn scim_changes_appear_only_after_sync() {
    let daemon = Daemon::start();
    let alice = create_user(&daemon, "alice@example.com");
    let bob = create_user(&daemon, "bob@example.com");
    create_group(&daemon, "Engineering", &[&alice, &bob]);

    assert_eq!(users(&daemon), Vec::<Value>::new());
    assert_eq!(groups(&daemon), Vec::<Value>::new());
    let status = cli_json(&daemon, &["status", "--json"]);
    assert!(
        status["organization"]["pending_changes"].as_u64() > Some(0),
        "{status}"
    );

    let run = sync(&daemon);

    let users = users(&daemon);
    assert_eq!(users.len(), 2, "{users:?}");
    let alice_row = find(&users, "userName", "alice@example.com");
    assert_eq!(alice_row["id"], alice.as_str());
    assert_eq!(alice_row["active"], true);
    assert_eq!(alice_row["groups"], 1);
    assert_eq!(
        find(&users, "userName", "bob@example.com")["id"],
        bob.as_str()
    );
    let groups = groups(&daemon);
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0]["displayName"], "Engineering");
    assert_eq!(groups[0]["members"], 2);
    assert_eq!(groups[0]["unmapped"], true);

    let last = &runs(&daemon)[0];
    assert_eq!(last["id"], run);
    assert_eq!(last["trigger"], "socket");
    assert_eq!(last["outcome"], "succeeded");
    assert_eq!(last["counts"]["user_created"], 2);
    assert_eq!(last["counts"]["group_created"], 1);
    assert_eq!(last["counts"]["member_added"], 2);
}

#[test]
fn sighup_syncs_with_signal_trigger() {
    let daemon = Daemon::start();
    create_user(&daemon, "alice@example.com");

    daemon.signal(libc::SIGHUP);

    let run = wait_for("a run appears after SIGHUP", WAIT, || {
        runs(&daemon).into_iter().next()
    });
    assert_eq!(run["trigger"], "signal");
    assert_eq!(run["outcome"], "succeeded");
    assert_eq!(run["counts"]["user_created"], 1);
    let status = cli_json(&daemon, &["status", "--json"]);
    assert_eq!(status["organization"]["last_run"]["trigger"], "signal");
    assert_eq!(users(&daemon).len(), 1);
}

#[test]
fn cron_schedule_syncs_and_reports_next_run() {
    let daemon = Daemon::start_with("[sync]\nschedule = \"*/2 * * * * *\"");
    create_user(&daemon, "alice@example.com");

    let status = cli_json(&daemon, &["status", "--json"]);
    assert_eq!(status["schedule"]["expression"], "*/2 * * * * *");
    let next_run = status["schedule"]["next_run"]
        .as_str()
        .unwrap_or_else(|| panic!("status has no schedule.next_run: {status}"));
    let next_run =
        time::OffsetDateTime::parse(next_run, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|error| panic!("next_run {next_run:?} is not RFC 3339: {error}"));
    let now = time::OffsetDateTime::now_utc();
    assert!(
        next_run > now - time::Duration::seconds(2),
        "next_run {next_run} is in the past ({now})"
    );
    assert!(
        next_run < now + time::Duration::seconds(30),
        "next_run {next_run} is not within the 2 s schedule ({now})"
    );

    let run = wait_for("a scheduled run applies the user", SCHEDULE_WAIT, || {
        runs(&daemon)
            .into_iter()
            .find(|run| run["counts"]["user_created"] == 1)
    });
    assert_eq!(run["trigger"], "schedule");
    assert_eq!(users(&daemon).len(), 1);
}

#[test]
fn startup_sync_applies_pending_changes() {
    let mut daemon = Daemon::start_with("[sync]\non_startup = true");
    wait_until("the first startup run is recorded", || {
        !runs(&daemon).is_empty()
    });
    create_user(&daemon, "alice@example.com");

    daemon.restart();

    let run = wait_for("the startup run applies the user", WAIT, || {
        runs(&daemon)
            .into_iter()
            .find(|run| run["counts"]["user_created"] == 1)
    });
    assert_eq!(run["trigger"], "startup");
    assert_eq!(users(&daemon).len(), 1);
    let runs = runs(&daemon);
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(
        runs.iter().all(|run| run["trigger"] == "startup"),
        "{runs:?}"
    );
}

#[test]
fn permission_files_apply_without_sync() {
    let daemon = Daemon::start();
    let alice = create_user(&daemon, "alice@example.com");
    create_group(&daemon, "Engineering", &[&alice]);
    sync(&daemon);
    let runs_before = runs(&daemon).len();
    let file = daemon.permissions_dir().join("engineering.toml");

    fs::write(&file, engineering_policy("viewer")).expect("write the permission file");
    wait_until("alice has the viewer role", || {
        roles(&daemon, "alice@example.com") == ["viewer"]
    });
    let access = cli_json(&daemon, &["access", "alice@example.com", "--json"]);
    assert_eq!(access["permissions"], json!(["report:read"]));
    assert_eq!(access["grants"][0]["group"]["display_name"], "Engineering");
    assert_eq!(access["grants"][0]["role"], "viewer");
    let source = access["grants"][0]["source"].as_str().unwrap_or_default();
    assert!(
        source.starts_with(&format!("{}:", file.display())),
        "grant source {source:?}"
    );

    fs::write(&file, engineering_policy("editor")).expect("edit the permission file in place");
    wait_until("alice has the editor role", || {
        roles(&daemon, "alice@example.com") == ["editor"]
    });

    replace_by_rename(&file, &engineering_policy("admin"));
    wait_until("alice has the admin role", || {
        roles(&daemon, "alice@example.com") == ["admin"]
    });

    let groups = groups(&daemon);
    assert_eq!(groups[0]["roles"], json!(["admin"]));
    assert_eq!(groups[0]["unmapped"], false);
    assert_eq!(
        runs(&daemon).len(),
        runs_before,
        "a permission change ran a sync"
    );
}

#[test]
fn reload_moves_permission_watch_to_new_folder() {
    let daemon = Daemon::start();
    let alice = create_user(&daemon, "alice@example.com");
    create_group(&daemon, "Engineering", &[&alice]);
    sync(&daemon);
    fs::write(daemon.permissions_dir().join("engineering.toml"), engineering_policy("viewer"))
        .expect("write the permission file");
    wait_until("alice has the viewer role", || {
        roles(&daemon, "alice@example.com") == ["viewer"]
    });

    let moved = daemon.dir().join("permissions-next");
    fs::create_dir(&moved).expect("create the new permission folder");
    let moved_file = moved.join("engineering.toml");
    fs::write(&moved_file, engineering_policy("editor")).expect("write the moved permission file");
    let config = fs::read_to_string(daemon.config_path()).expect("read the config");
    let edited = config.replace(r#"dir = "permissions""#, r#"dir = "permissions-next""#);
    assert_ne!(config, edited, "the test config names no permissions.dir to replace");
    fs::write(daemon.config_path(), edited).expect("write the config");
    daemon.signal(libc::SIGHUP);
    wait_until("alice has the editor role from the new folder", || {
        roles(&daemon, "alice@example.com") == ["editor"]
    });

    // Without another SIGHUP, only a watcher on the new folder detects this edit.
    fs::write(&moved_file, engineering_policy("admin")).expect("edit the moved permission file");
    wait_until("alice has the admin role", || {
        roles(&daemon, "alice@example.com") == ["admin"]
    });
}

#[test]
fn emptied_permission_folder_keeps_last_valid() {
    let daemon = Daemon::start();
    let alice = create_user(&daemon, "alice@example.com");
    create_group(&daemon, "Engineering", &[&alice]);
    sync(&daemon);
    let file = daemon.permissions_dir().join("engineering.toml");
    fs::write(&file, engineering_policy("viewer")).expect("write the permission file");
    wait_until("alice has the viewer role", || {
        roles(&daemon, "alice@example.com") == ["viewer"]
    });

    fs::remove_file(&file).expect("remove the permission file");
    let error = wait_for("status reports the empty folder", WAIT, || permission_error(&daemon));
    assert!(error.contains("holds no *.toml permission files"), "{error}");
    assert_eq!(roles(&daemon, "alice@example.com"), ["viewer"]);
}

#[test]
fn invalid_permission_file_keeps_last_valid() {
    let daemon = Daemon::start();
    let alice = create_user(&daemon, "alice@example.com");
    create_group(&daemon, "Engineering", &[&alice]);
    sync(&daemon);
    let file = daemon.permissions_dir().join("engineering.toml");
    fs::write(&file, engineering_policy("editor")).expect("write the permission file");
    wait_until("alice has the editor role", || {
        roles(&daemon, "alice@example.com") == ["editor"]
    });

    fs::write(&file, UNTERMINATED_STRING_POLICY).expect("write the invalid file");

    let location = format!("{}:{UNTERMINATED_STRING_LINE}:", file.display());
    let error = wait_for("status reports the invalid file", WAIT, || {
        permission_error(&daemon)
    });
    assert!(
        error.contains(&location),
        "status error {error:?} does not name {location}"
    );
    assert_eq!(roles(&daemon, "alice@example.com"), ["editor"]);

    let check = daemon.cli(&["config", "check"]);
    assert!(
        !check.status.success(),
        "config check accepted the invalid file: {}",
        describe(&check)
    );
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        has_line_and_column(&stderr, &location),
        "config check does not name {location}COLUMN: {stderr}"
    );
    let check = cli_json_failure(&daemon, &["config", "check", "--json"]);
    assert_eq!(check["valid"], false);

    fs::write(&file, engineering_policy("viewer")).expect("fix the permission file");
    wait_until("the permission error clears", || {
        permission_error(&daemon).is_none()
    });
    assert_eq!(roles(&daemon, "alice@example.com"), ["viewer"]);
    let check = daemon.cli(&["config", "check"]);
    assert!(
        check.status.success(),
        "config check rejected the fixed file: {}",
        describe(&check)
    );
}

/// Reports whether `text` contains `location` followed by a column number and a colon.
fn has_line_and_column(text: &str, location: &str) -> bool {
    text.match_indices(location).any(|(start, _)| {
        let rest = &text[start + location.len()..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        digits > 0 && rest[digits..].starts_with(':')
    })
}

/// Runs a CLI command that is expected to fail and returns the JSON it printed.
fn cli_json_failure(daemon: &Daemon, args: &[&str]) -> Value {
    let output = daemon.cli(args);
    assert!(
        !output.status.success(),
        "idpsync {args:?} succeeded: {}",
        describe(&output)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "idpsync {args:?} printed invalid JSON ({error}): {}",
            describe(&output)
        )
    })
}

#[test]
fn dry_run_lists_plan_and_changes_nothing() {
    let daemon = Daemon::start();
    let alice = create_user(&daemon, "alice@example.com");
    let bob = create_user(&daemon, "bob@example.com");
    create_group(&daemon, "Engineering", &[&alice, &bob]);

    let report = cli_json(&daemon, &["sync", "--dry-run", "--json"]);

    assert_eq!(report["dry_run"], true);
    assert_eq!(report["run"], Value::Null);
    assert_eq!(report["outcome"], "succeeded");
    assert_eq!(report["counts"]["user_created"], 2);
    assert_eq!(report["counts"]["group_created"], 1);
    assert_eq!(report["counts"]["member_added"], 2);
    let changes = array(report["changes"].clone());
    let kinds: Vec<&str> = changes
        .iter()
        .filter_map(|change| change["kind"].as_str())
        .collect();
    assert_eq!(
        kinds.iter().filter(|kind| **kind == "user_created").count(),
        2,
        "{changes:?}"
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|kind| **kind == "group_created")
            .count(),
        1,
        "{changes:?}"
    );
    assert_eq!(
        kinds.iter().filter(|kind| **kind == "member_added").count(),
        2,
        "{changes:?}"
    );
    let created: BTreeSet<&str> = changes
        .iter()
        .filter_map(|change| change["user"]["userName"].as_str())
        .collect();
    assert_eq!(
        created,
        BTreeSet::from(["alice@example.com", "bob@example.com"])
    );

    assert_eq!(users(&daemon), Vec::<Value>::new());
    assert_eq!(groups(&daemon), Vec::<Value>::new());
    assert_eq!(runs(&daemon), Vec::<Value>::new());

    let applied = cli_json(&daemon, &["sync", "--json"]);
    assert_eq!(
        applied["counts"], report["counts"],
        "the dry run consumed changes"
    );
}

#[test]
fn guard_blocks_mass_removal_until_forced() {
    let daemon = Daemon::start_with("[sync.guard]\nmax_removed = 1\nmax_removed_floor = 0");
    let names = [
        "a@example.com",
        "b@example.com",
        "c@example.com",
        "d@example.com",
    ];
    let ids: Vec<String> = names
        .iter()
        .map(|name| create_user(&daemon, name))
        .collect();
    sync(&daemon);

    delete(&daemon, &format!("/Users/{}", ids[0]));
    delete(&daemon, &format!("/Users/{}", ids[1]));
    patch(
        &daemon,
        &format!("/Users/{}", ids[2]),
        json!([{"op": "replace", "path": "active", "value": false}]),
    );

    let dry_run = daemon.cli(&["sync", "--dry-run"]);
    assert_eq!(
        dry_run.status.code(),
        Some(EXIT_BLOCKED),
        "a dry run that the guard would stop: {}",
        describe(&dry_run)
    );
    let dry_run = daemon.cli(&["sync", "--dry-run", "--json"]);
    assert_eq!(
        dry_run.status.code(),
        Some(EXIT_BLOCKED),
        "a dry run that the guard would stop: {}",
        describe(&dry_run)
    );
    let plan: Value = serde_json::from_slice(&dry_run.stdout)
        .unwrap_or_else(|error| panic!("sync --dry-run --json printed invalid JSON ({error}): {}", describe(&dry_run)));
    assert_eq!(plan["outcome"], "blocked");
    assert_eq!(plan["counts"]["user_deactivated"], 3);
    let forced_plan = cli_json(&daemon, &["sync", "--dry-run", "--force", "--json"]);
    assert_eq!(forced_plan["outcome"], "succeeded");
    assert_eq!(runs(&daemon).len(), 1, "a dry run recorded a run");

    let blocked = daemon.cli(&["sync"]);
    assert_eq!(
        blocked.status.code(),
        Some(EXIT_BLOCKED),
        "{}",
        describe(&blocked)
    );
    let stderr = String::from_utf8_lossy(&blocked.stderr);
    assert!(
        stderr.contains("--force"),
        "the message does not mention --force: {stderr}"
    );
    let stdout = String::from_utf8_lossy(&blocked.stdout);
    let printed = format!("{stdout}{stderr}");
    assert_eq!(
        printed.matches("--force").count(),
        1,
        "the blocked sync does not mention --force once: {printed}"
    );
    assert!(
        stdout.contains("stopped by the removal guard"),
        "the blocked sync does not say what stopped it: {stdout}"
    );
    assert!(!stdout.contains(": -"), "the blocked sync prints no outcome: {stdout}");
    let users_after_block = users(&daemon);
    assert!(
        users_after_block.iter().all(|user| user["active"] == true),
        "a blocked sync deactivated users: {users_after_block:?}"
    );
    let last = &runs(&daemon)[0];
    assert_eq!(last["outcome"], "blocked");
    assert!(
        last["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("3 of 4")),
        "{last}"
    );

    let forced = cli_json(&daemon, &["sync", "--force", "--json"]);
    assert_eq!(forced["forced"], true);
    assert_eq!(forced["counts"]["user_deactivated"], 3);
    let users = users(&daemon);
    let active: Vec<&Value> = users.iter().filter(|user| user["active"] == true).collect();
    assert_eq!(active.len(), 1, "{users:?}");
    assert_eq!(active[0]["userName"], "d@example.com");
    let last = &runs(&daemon)[0];
    assert_eq!(last["outcome"], "succeeded");
    assert_eq!(last["forced"], true);
}

/// Users provisioned before a concurrency test, so that a sync run that applies them, or
/// their membership in a new group, takes long enough that the other requests arrive while it
/// runs. Applying 1200 users took 0.2 s to 0.5 s in a debug build on a loaded 2-core machine.
const BUSY_SYNC_USERS: usize = 1200;
const CONCURRENT_REQUESTS: usize = 5;
/// Bursts of sync requests in which the SIGHUP test aims its signal at the first run.
const SIGHUP_ATTEMPTS: usize = 4;
/// The first aim of that signal, counted from the start of the sync processes.
const FIRST_SIGHUP_DELAY: Duration = Duration::from_millis(120);

fn provision_users(daemon: &Daemon) -> Vec<String> {
    (0..BUSY_SYNC_USERS)
        .map(|index| create_user(daemon, &format!("user{index}@example.com")))
        .collect()
}

/// One burst of concurrent sync requests.
struct Burst {
    /// When the sync processes were started.
    fired: time::OffsetDateTime,
    outputs: Vec<Output>,
    /// When SIGHUP was sent, if it was.
    sighup_at: Option<time::OffsetDateTime>,
}

/// Starts [`CONCURRENT_REQUESTS`] `idpsync sync --json` processes at once and, when
/// `sighup_delay` is set, sends SIGHUP that long after.
fn fire_syncs(daemon: &Daemon, sighup_delay: Option<Duration>) -> Burst {
    let barrier = Barrier::new(CONCURRENT_REQUESTS + 1);
    let config = daemon.config_path();
    thread::scope(|scope| {
        let commands: Vec<_> = (0..CONCURRENT_REQUESTS)
            .map(|_| {
                scope.spawn(|| {
                    let mut command = Command::new(common::BINARY);
                    command.arg("--config").arg(config).args(["sync", "--json"]);
                    barrier.wait();
                    command.output().expect("run idpsync sync")
                })
            })
            .collect();
        barrier.wait();
        let fired = time::OffsetDateTime::now_utc();
        let sighup_at = sighup_delay.map(|delay| {
            thread::sleep(delay);
            let at = time::OffsetDateTime::now_utc();
            daemon.signal(libc::SIGHUP);
            at
        });
        let outputs = commands
            .into_iter()
            .map(|command| command.join().expect("sync thread"))
            .collect();
        Burst {
            fired,
            outputs,
            sighup_at,
        }
    })
}

/// Asserts that every sync process succeeded and returns the distinct run ids they report.
fn reported_runs(outputs: &[Output]) -> BTreeSet<u64> {
    let mut ids = BTreeSet::new();
    for output in outputs {
        assert!(
            output.status.success(),
            "a coalesced sync failed: {}",
            describe(output)
        );
        let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!("sync printed invalid JSON ({error}): {}", describe(output))
        });
        let id = report["run"]
            .as_u64()
            .unwrap_or_else(|| panic!("sync report without a run id: {report}"));
        ids.insert(id);
    }
    ids
}

fn run_time(run: &Value, field: &str) -> time::OffsetDateTime {
    let text = run[field].as_str().unwrap_or_default();
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|error| panic!("run {field} {text:?} is not RFC 3339: {error}"))
}

fn to_std(duration: time::Duration) -> Duration {
    Duration::try_from(duration).unwrap_or(Duration::ZERO)
}

#[test]
fn concurrent_socket_syncs_coalesce() {
    let daemon = Daemon::start();
    provision_users(&daemon);
    let runs_before = runs(&daemon).len();

    let burst = fire_syncs(&daemon, None);

    let ids = reported_runs(&burst.outputs);
    assert!(
        ids.len() <= 2,
        "{CONCURRENT_REQUESTS} requests got runs {ids:?}"
    );
    let runs = runs(&daemon);
    let new_runs: BTreeSet<u64> = runs[..runs.len() - runs_before]
        .iter()
        .filter_map(|run| run["id"].as_u64())
        .collect();
    assert_eq!(
        new_runs, ids,
        "runs recorded versus runs reported: {runs:?}"
    );
    assert_eq!(users(&daemon).len(), BUSY_SYNC_USERS);
}

/// A SIGHUP that arrives while a sync runs shares the follow-up run with the sync requests
/// that arrived during that run. The signal's timing cannot be observed from outside, so each
/// burst aims it at the middle of the first run, using the previous burst's run times, until
/// the run records confirm that it landed inside.
#[test]
fn sighup_during_sync_joins_follow_up() {
    let daemon = Daemon::start();
    let members = provision_users(&daemon);
    let members: Vec<&str> = members.iter().map(String::as_str).collect();
    let mut aim = FIRST_SIGHUP_DELAY;

    for attempt in 1..=SIGHUP_ATTEMPTS {
        if attempt > 1 {
            create_group(&daemon, &format!("Burst {attempt}"), &members);
        }
        let runs_before = runs(&daemon).len();
        let signals_before = daemon.log().matches("SIGHUP").count();

        let burst = fire_syncs(&daemon, Some(aim));

        let ids = reported_runs(&burst.outputs);
        assert!(
            ids.len() <= 2,
            "{CONCURRENT_REQUESTS} requests got runs {ids:?}"
        );
        wait_until("the daemon logs the SIGHUP", || {
            daemon.log().matches("SIGHUP").count() > signals_before
        });
        let new_runs = max_new_runs_within(&daemon, runs_before, QUIET_WAIT);
        let runs = runs(&daemon);
        let first = runs
            .iter()
            .rev()
            .nth(runs_before)
            .expect("the burst's first run");
        let (started, finished) = (run_time(first, "started"), run_time(first, "finished"));
        let sighup_at = burst.sighup_at.expect("the signal was sent");
        if started < sighup_at && sighup_at < finished {
            assert!(
                new_runs <= 2,
                "{new_runs} runs for {CONCURRENT_REQUESTS} sync requests and a SIGHUP sent at \
                 {sighup_at}, inside the first: {runs:?}"
            );
            return;
        }
        aim = to_std(started - burst.fired) + to_std(finished - started) / 2;
    }
    panic!("no burst of {SIGHUP_ATTEMPTS} placed the SIGHUP inside its first sync run");
}

/// Polls the runs for `window` and returns the maximum number added after `runs_before`. It
/// stops early once more than two were added.
fn max_new_runs_within(daemon: &Daemon, runs_before: usize, window: Duration) -> usize {
    let deadline = Instant::now() + window;
    let mut max_new_runs = 0;
    while Instant::now() < deadline && max_new_runs <= 2 {
        max_new_runs = max_new_runs.max(runs(daemon).len() - runs_before);
        thread::sleep(POLL_INTERVAL);
    }
    max_new_runs
}

#[test]
fn every_change_kind_is_audited() {
    let daemon = Daemon::start();
    let alice = create_user(&daemon, "alice@example.com");
    let bob = create_user(&daemon, "bob@example.com");
    let carol = create_user(&daemon, "carol@example.com");
    let engineering = create_group(&daemon, "Engineering", &[&alice]);
    let design = create_group(&daemon, "Design", &[&bob]);
    let first = sync(&daemon);
    let expected = BTreeSet::from([
        event("user_created", "alice@example.com"),
        event("user_created", "bob@example.com"),
        event("user_created", "carol@example.com"),
        event("group_created", "Engineering"),
        event("group_created", "Design"),
        event("member_added", "alice@example.com"),
        event("member_added", "bob@example.com"),
    ]);
    assert_eq!(events(&daemon, first), expected);

    fs::write(
        daemon.permissions_dir().join("engineering.toml"),
        engineering_policy("viewer"),
    )
    .expect("write the permission file");
    wait_until("Engineering has the viewer role", || {
        groups(&daemon)
            .iter()
            .any(|group| group["roles"] == json!(["viewer"]))
    });
    patch(
        &daemon,
        &format!("/Users/{alice}"),
        json!([{"op": "replace", "path": "displayName", "value": "Alice Liddell"}]),
    );
    patch(
        &daemon,
        &format!("/Users/{bob}"),
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    );
    patch(
        &daemon,
        &format!("/Groups/{engineering}"),
        json!([{"op": "add", "path": "members", "value": [{"value": carol}]}]),
    );
    patch(
        &daemon,
        &format!("/Groups/{engineering}"),
        json!([{"op": "remove", "path": format!("members[value eq \"{alice}\"]")}]),
    );
    patch(
        &daemon,
        &format!("/Groups/{design}"),
        json!([{"op": "replace", "path": "displayName", "value": "Product Design"}]),
    );
    let second = sync(&daemon);
    let expected = BTreeSet::from([
        event("user_updated", "alice@example.com"),
        event("user_deactivated", "bob@example.com"),
        event("member_added", "carol@example.com"),
        event("member_removed", "alice@example.com"),
        event("access_changed", "carol@example.com"),
        event("access_changed", "alice@example.com"),
        event("group_updated", "Product Design"),
    ]);
    assert_eq!(events(&daemon, second), expected);

    patch(
        &daemon,
        &format!("/Users/{bob}"),
        json!([{"op": "replace", "path": "active", "value": true}]),
    );
    delete(&daemon, &format!("/Groups/{design}"));
    let third = sync(&daemon);
    let third_events = events(&daemon, third);
    assert!(
        third_events.contains(&event("user_reactivated", "bob@example.com")),
        "{third_events:?}"
    );
    assert!(
        third_events.contains(&event("group_deleted", "Product Design")),
        "{third_events:?}"
    );

    let run_with_events = cli_json(&daemon, &["syncs", "show", &second.to_string(), "--json"]);
    assert_eq!(run_with_events["run"]["id"], second);
    let updated = array(run_with_events["events"].clone())
        .into_iter()
        .find(|event| event["kind"] == "user_updated")
        .expect("a user_updated event");
    assert_eq!(updated["run"], second);
    assert_eq!(updated["subject"]["type"], "user");
    assert_eq!(updated["subject"]["id"], alice.as_str());
    assert_eq!(updated["before"]["displayName"], "alice");
    assert_eq!(updated["after"]["displayName"], "Alice Liddell");
    let access = array(run_with_events["events"].clone())
        .into_iter()
        .find(|event| event["kind"] == "access_changed" && event["subject"]["id"] == carol.as_str())
        .expect("an access_changed event for carol");
    assert_eq!(access["before"]["roles"], json!([]));
    assert_eq!(access["after"]["roles"], json!(["viewer"]));

    let shown = cli_human(&daemon, &["syncs", "show", &second.to_string()]);
    let removed = shown
        .lines()
        .find(|line| line.split_whitespace().nth(1) == Some("member_removed"))
        .unwrap_or_else(|| panic!("no member_removed row: {shown}"));
    assert!(removed.contains("alice@example.com"), "{removed}");
    assert!(removed.contains("Engineering"), "the row does not name the group: {removed}");
    let added = shown
        .lines()
        .find(|line| line.split_whitespace().nth(1) == Some("member_added"))
        .unwrap_or_else(|| panic!("no member_added row: {shown}"));
    assert!(added.contains("carol@example.com"), "{added}");
    assert!(added.contains("Engineering"), "the row does not name the group: {added}");

    let missing = daemon.cli(&["syncs", "show", "999", "--json"]);
    assert_eq!(
        missing.status.code(),
        Some(EXIT_NOT_FOUND),
        "{}",
        describe(&missing)
    );
}

fn read_export(path: &Path) -> Value {
    let text = fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not JSON ({error}): {text}", path.display()))
}

#[test]
fn export_follows_syncs_and_permissions() {
    let daemon = Daemon::start();
    let alice = create_user(&daemon, "alice@example.com");
    let engineering = create_group(&daemon, "Engineering", &[&alice]);
    let run = sync(&daemon);
    let path = daemon.export_path();

    let export = wait_for("the export names the run", WAIT, || {
        let export = path.exists().then(|| read_export(&path))?;
        (export["sync_run"] == run).then_some(export)
    });
    assert!(export["generated"].as_str().is_some(), "{export}");
    let users = array(export["users"].clone());
    assert_eq!(users.len(), 1, "{export}");
    assert_eq!(users[0]["id"], alice.as_str());
    assert_eq!(users[0]["userName"], "alice@example.com");
    assert_eq!(users[0]["displayName"], "alice");
    assert_eq!(users[0]["externalId"], Value::Null);
    assert_eq!(users[0]["active"], true);
    assert_eq!(users[0]["groups"], json!([engineering]));
    assert_eq!(users[0]["access"]["roles"], json!([]));
    let groups = array(export["groups"].clone());
    assert_eq!(groups.len(), 1, "{export}");
    assert_eq!(groups[0]["id"], engineering.as_str());
    assert_eq!(groups[0]["displayName"], "Engineering");
    assert_eq!(groups[0]["members"], json!([alice]));
    assert_eq!(groups[0]["roles"], json!([]));
    assert_eq!(groups[0]["unmapped"], true);

    fs::write(
        daemon.permissions_dir().join("engineering.toml"),
        engineering_policy("editor"),
    )
    .expect("write the permission file");

    let export = wait_for("the export shows the editor role", WAIT, || {
        let export = read_export(&path);
        (export["users"][0]["access"]["roles"] == json!(["editor"])).then_some(export)
    });
    assert_eq!(
        export["users"][0]["access"]["permissions"],
        json!(["asset:read", "asset:write"])
    );
    assert_eq!(export["users"][0]["access"]["grants"][0]["role"], "editor");
    assert_eq!(export["groups"][0]["roles"], json!(["editor"]));
    assert_eq!(export["groups"][0]["unmapped"], false);
    assert_eq!(export["sync_run"], run);

    let leftovers: Vec<String> = fs::read_dir(daemon.dir())
        .expect("list the state folder")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("organization.json") && name != "organization.json")
        .collect();
    assert_eq!(
        leftovers,
        Vec::<String>::new(),
        "temporary export files remain"
    );
}

#[test]
fn cli_without_daemon_reports_not_running() {
    let mut daemon = Daemon::start();
    daemon.stop();

    let status = daemon.cli(&["status"]);
    assert_eq!(
        status.status.code(),
        Some(EXIT_NOT_RUNNING),
        "{}",
        describe(&status)
    );
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(stderr.contains("not running"), "{stderr}");
    let sync = daemon.cli(&["sync"]);
    assert_eq!(
        sync.status.code(),
        Some(EXIT_NOT_RUNNING),
        "{}",
        describe(&sync)
    );

    let created = cli_json(&daemon, &["token", "create", "--name", "x", "--json"]);
    assert_eq!(created["name"], "x");
    assert_eq!(created["scim_url"], daemon.scim_url());
    let token = created["token"]
        .as_str()
        .expect("token create printed a token")
        .to_string();
    let listed = array(cli_json(&daemon, &["token", "list", "--json"]));
    assert!(
        listed.iter().any(|record| record["id"] == created["id"]),
        "{listed:?}"
    );

    daemon.start_again();

    let headers = [("Authorization".to_string(), format!("Bearer {token}"))];
    let response = daemon
        .send("GET", "/Users", &headers, None)
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(response.status, 200, "{}", response.text());
    let status = cli_json(&daemon, &["status", "--json"]);
    assert_eq!(status["tokens"], 1, "{status}");
}

/// A value longer than 65,535 characters, the largest width that Rust's `format!` accepts.
const HUGE_VALUE_CHARS: usize = 900_000;
/// Maximum length of a line in human-readable output, whose cells are cut to 60 characters.
const MAX_HUMAN_LINE_CHARS: usize = 400;

/// Asserts that `idpsync ARGS` succeeded and printed only lines of bounded length, and
/// returns what it printed.
fn cli_human(daemon: &Daemon, args: &[&str]) -> String {
    let output = daemon.cli(args);
    assert!(
        output.status.success(),
        "idpsync {args:?}: {}",
        describe(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let longest = stdout.lines().map(|line| line.chars().count()).max().unwrap_or(0);
    assert!(
        longest <= MAX_HUMAN_LINE_CHARS,
        "idpsync {args:?} printed a line of {longest} characters"
    );
    stdout
}

#[test]
fn tables_clip_huge_values() {
    let daemon = Daemon::start();
    let huge = "x".repeat(HUGE_VALUE_CHARS);
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "huge@example.com",
        "displayName": huge,
        "active": true
    });
    let user = created_id(&daemon, "/Users", &body);
    create_group(&daemon, &huge, &[&user]);
    let run = sync(&daemon);

    let listed = cli_human(&daemon, &["users"]);
    assert!(listed.contains("huge@example.com"), "{listed}");
    assert!(listed.contains('…'), "{listed}");
    let listed = cli_human(&daemon, &["groups"]);
    assert!(listed.contains('…'), "{listed}");
    let run_details = cli_human(&daemon, &["syncs", "show", &run.to_string()]);
    assert!(run_details.contains('…'), "{run_details}");
    let access = cli_human(&daemon, &["access", "huge@example.com"]);
    assert!(access.contains('…'), "{access}");

    let users = users(&daemon);
    assert_eq!(
        users[0]["displayName"].as_str().map(str::len),
        Some(HUGE_VALUE_CHARS),
        "users --json cut the displayName"
    );
    let groups = groups(&daemon);
    assert_eq!(
        groups[0]["displayName"].as_str().map(str::len),
        Some(HUGE_VALUE_CHARS),
        "groups --json cut the displayName"
    );
}

#[test]
fn cli_quiet_on_closed_stdout() {
    let daemon = Daemon::start_with("[sync.guard]\nmax_removed = 0\nmax_removed_floor = 0");
    let alice = create_user(&daemon, "alice@example.com");
    create_group(&daemon, "Engineering", &[&alice]);
    let commands: [&[&str]; 10] = [
        &["sync", "--dry-run"],
        &["sync"],
        &["status"],
        &["syncs"],
        &["syncs", "show", "1"],
        &["users", "--json"],
        &["groups"],
        &["access", "alice@example.com"],
        &["token", "list"],
        &["config", "check"],
    ];
    for args in commands {
        let output = daemon.cli_into_closed_pipe(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "idpsync {args:?} panicked: {stderr}");
        assert_eq!(output.status.code(), Some(0), "idpsync {args:?}: {}", describe(&output));
    }

    delete(&daemon, &format!("/Users/{alice}"));
    let blocked = daemon.cli_into_closed_pipe(&["sync"]);
    let stderr = String::from_utf8_lossy(&blocked.stderr);
    assert!(!stderr.contains("panicked"), "a blocked sync panicked: {stderr}");
    assert_eq!(blocked.status.code(), Some(EXIT_BLOCKED), "{}", describe(&blocked));
}

#[test]
fn missing_config_names_alternatives() {
    let folder = tempfile::tempdir().expect("create a temporary folder");
    let missing = folder.path().join("absent.toml");
    let from_env = Command::new(common::BINARY)
        .arg("status")
        .env("IDPSYNC_CONFIG", &missing)
        .output()
        .expect("run the idpsync CLI");
    let stderr = String::from_utf8_lossy(&from_env.stderr);
    assert_eq!(from_env.status.code(), Some(1), "{}", describe(&from_env));
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    assert!(stderr.contains("--config PATH"), "{stderr}");
    assert!(stderr.contains("IDPSYNC_CONFIG"), "{stderr}");

    // On a machine where idpsync is installed the default path exists, so the message about
    // it cannot be checked there.
    if Path::new("/etc/idpsync/idpsync.toml").exists() {
        return;
    }
    let default = Command::new(common::BINARY)
        .args(["config", "check"])
        .env_remove("IDPSYNC_CONFIG")
        .output()
        .expect("run the idpsync CLI");
    let stderr = String::from_utf8_lossy(&default.stderr);
    assert_eq!(default.status.code(), Some(1), "{}", describe(&default));
    assert!(stderr.contains("/etc/idpsync/idpsync.toml"), "{stderr}");
    assert!(stderr.contains("other than the default"), "{stderr}");
    assert!(stderr.contains("--config PATH"), "{stderr}");
    assert!(stderr.contains("IDPSYNC_CONFIG"), "{stderr}");
}

#[test]
fn empty_arguments_are_usage_errors() {
    let daemon = Daemon::start();
    let alice = create_user(&daemon, "alice@example.com");
    create_group(&daemon, "Engineering", &[&alice]);
    sync(&daemon);
    let cases: [(&[&str], &str); 5] = [
        (&["access", ""], "<USER>"),
        (&["access", "  "], "<USER>"),
        (&["syncs", "show", ""], "<ID>"),
        (&["token", "revoke", ""], "<ID>"),
        (&["token", "create", "--name", ""], "--name"),
    ];
    for (args, argument) in cases {
        let output = daemon.cli(args);
        assert_eq!(
            output.status.code(),
            Some(EXIT_USAGE),
            "idpsync {args:?}: {}",
            describe(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(argument), "idpsync {args:?} does not name {argument}: {stderr}");
        assert!(stderr.contains("empty"), "idpsync {args:?} does not say the value is empty: {stderr}");
    }
    let tokens = array(cli_json(&daemon, &["token", "list", "--json"]));
    assert_eq!(tokens.len(), 1, "an empty token name created a token: {tokens:?}");
}

/// Users in the readable-output test: more than the plan preview of 20 changes.
const MANY_USERS: usize = 30;

#[test]
fn human_output_has_no_raw_json() {
    let daemon = Daemon::start();
    for index in 0..MANY_USERS {
        create_user(&daemon, &format!("user{index}@example.com"));
    }
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "huge@example.com",
        "displayName": "x".repeat(HUGE_VALUE_CHARS),
        "active": true
    });
    created_id(&daemon, "/Users", &body);
    let users = MANY_USERS + 1;

    let status = cli_human(&daemon, &["status"]);
    assert!(!status.contains('{'), "status prints JSON: {status}");
    assert!(status.contains("users:"), "{status}");
    assert!(status.contains(&format!("{users} directory changes")), "{status}");

    let plan = cli_human(&daemon, &["sync", "--dry-run"]);
    assert!(!plan.contains('{'), "the dry run prints JSON: {plan}");
    assert!(
        plan.lines().any(|line| line.split_whitespace().eq(["user_created", &users.to_string()])),
        "the dry run has no count of user_created: {plan}"
    );
    let planned_rows = plan.lines().filter(|line| line.starts_with("user_created ") && line.contains("@example.com")).count();
    assert_eq!(planned_rows, 20, "the dry run does not show the first 20 changes: {plan}");
    assert!(plan.contains(&format!("{} more changes", users - 20)), "{plan}");
    assert!(plan.contains("--dry-run --json"), "{plan}");

    let applied = cli_human(&daemon, &["sync"]);
    assert!(!applied.contains('{'), "sync prints JSON: {applied}");
    assert!(
        applied.lines().any(|line| line.split_whitespace().eq(["user_created", &users.to_string()])),
        "sync has no count of user_created: {applied}"
    );

    let status = cli_human(&daemon, &["status"]);
    assert!(!status.contains('{'), "status prints JSON: {status}");
    let last_sync = status
        .lines()
        .find(|line| line.starts_with("last sync:"))
        .unwrap_or_else(|| panic!("status has no last sync: {status}"));
    assert!(last_sync.contains("run 1"), "{last_sync}");
    assert!(last_sync.contains(&format!("{users} changes")), "{last_sync}");
}

#[test]
fn control_rejects_invalid_query_values() {
    let daemon = Daemon::start();
    create_user(&daemon, "alice@example.com");
    let cases = [
        ("GET", "/syncs?limit=abc", "limit", "from 1 to 10000"),
        ("GET", "/syncs?limit=0", "limit", "from 1 to 10000"),
        ("GET", "/syncs?limit=10001", "limit", "from 1 to 10000"),
        ("GET", "/syncs?limit=-1", "limit", "from 1 to 10000"),
        ("GET", "/syncs?limit=1&limit=2", "limit", "more than once"),
        ("GET", "/syncs?limt=5", "limt", "accepts: limit"),
        ("POST", "/sync?dry_run=maybe", "dry_run", "true or false"),
        ("POST", "/sync?force=2", "force", "true or false"),
        ("POST", "/sync?dryrun=true", "dryrun", "accepts: dry_run, force"),
        ("GET", "/status?verbose=1", "verbose", "accepts: none"),
        ("GET", "/users?limit=5", "limit", "accepts: none"),
        ("GET", "/metrics?format=json", "format", "accepts: none"),
    ];
    for (method, target, parameter, expected) in cases {
        let (status, body) = daemon.control(method, target);
        assert_eq!(status, 400, "{method} {target}: {body}");
        assert_eq!(body["parameter"], parameter, "{method} {target}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(parameter), "{method} {target} does not name {parameter}: {error}");
        assert!(error.contains(expected), "{method} {target} does not say {expected:?}: {error}");
    }
    assert_eq!(runs(&daemon), Vec::<Value>::new(), "a rejected sync request ran a sync");
    assert_eq!(users(&daemon), Vec::<Value>::new(), "a rejected sync request applied users");

    let (status, body) = daemon.control("POST", "/sync?dry_run=TRUE");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["dry_run"], true, "{body}");
    let (status, body) = daemon.control("GET", "/syncs?limit=10000");
    assert_eq!(status, 200, "{body}");
    let limit = daemon.cli(&["syncs", "--limit", "0"]);
    assert_eq!(limit.status.code(), Some(EXIT_USAGE), "{}", describe(&limit));
}

fn event_ids(events: &[Value]) -> Vec<u64> {
    events.iter().filter_map(|event| event["id"].as_u64()).collect()
}

#[test]
fn events_include_permission_changes() {
    let daemon = Daemon::start();
    let alice = create_user(&daemon, "alice@example.com");
    let bob = create_user(&daemon, "bob@example.com");
    create_group(&daemon, "Engineering", &[&alice, &bob]);
    let run = sync(&daemon);
    fs::write(
        daemon.permissions_dir().join("engineering.toml"),
        engineering_policy("viewer"),
    )
    .expect("write the permission file");
    wait_until("alice has the viewer role", || {
        roles(&daemon, "alice@example.com") == ["viewer"]
    });

    let all = cli_json(&daemon, &["events", "--json"]);
    assert_eq!(all["next_before"], Value::Null, "{all}");
    let events = array(all["events"].clone());
    assert_eq!(events.len(), 7, "{events:?}");
    let ids = event_ids(&events);
    assert!(ids.windows(2).all(|pair| pair[0] > pair[1]), "events are not newest first: {ids:?}");
    for event in &events[..2] {
        assert_eq!(event["kind"], "access_changed", "{event}");
        assert_eq!(event["run"], Value::Null, "{event}");
        assert_eq!(event["before"]["roles"], json!([]), "{event}");
        assert_eq!(event["after"]["roles"], json!(["viewer"]), "{event}");
        assert!(event["at"].as_str().is_some(), "{event}");
    }
    assert!(events[2..].iter().all(|event| event["run"] == run), "{events:?}");

    let by_name = array(cli_json(&daemon, &["events", "--user", "alice@example.com", "--json"])["events"].clone());
    let kinds: Vec<&str> = by_name.iter().filter_map(|event| event["kind"].as_str()).collect();
    assert_eq!(kinds, ["access_changed", "member_added", "user_created"]);
    assert!(by_name.iter().all(|event| event["subject"]["id"] == alice.as_str()), "{by_name:?}");
    let by_id = array(cli_json(&daemon, &["events", "--user", &alice, "--json"])["events"].clone());
    assert_eq!(event_ids(&by_id), event_ids(&by_name));

    let access = array(cli_json(&daemon, &["events", "--kind", "access_changed", "--json"])["events"].clone());
    assert_eq!(access.len(), 2, "{access:?}");

    let first = cli_json(&daemon, &["events", "--limit", "3", "--json"]);
    let first_events = array(first["events"].clone());
    assert_eq!(event_ids(&first_events), ids[..3]);
    assert_eq!(first["next_before"], ids[2], "{first}");
    let before = ids[2].to_string();
    let rest = cli_json(&daemon, &["events", "--before", &before, "--json"]);
    assert_eq!(event_ids(&array(rest["events"].clone())), ids[3..]);
    assert_eq!(rest["next_before"], Value::Null, "{rest}");

    let table = cli_human(&daemon, &["events"]);
    let row = table
        .lines()
        .find(|line| line.contains("access_changed") && line.contains("alice@example.com"))
        .unwrap_or_else(|| panic!("no access_changed row for alice: {table}"));
    assert!(row.contains("roles=viewer"), "{row}");
    assert_eq!(row.split_whitespace().nth(2), Some("-"), "a permission change shows a run: {row}");

    let unknown = daemon.cli(&["events", "--user", "nobody@example.com"]);
    assert_eq!(unknown.status.code(), Some(EXIT_NOT_FOUND), "{}", describe(&unknown));
    for (target, parameter) in [
        ("/events?kind=bogus", "kind"),
        ("/events?user=", "user"),
        ("/events?limit=1001", "limit"),
        ("/events?before=0", "before"),
        ("/events?run=1", "run"),
    ] {
        let (status, body) = daemon.control("GET", target);
        assert_eq!(status, 400, "GET {target}: {body}");
        assert_eq!(body["parameter"], parameter, "GET {target}: {body}");
    }
}

/// Counts the lines of the daemon log at level INFO that contain `message`.
fn info_lines(daemon: &Daemon, message: &str) -> usize {
    daemon
        .log()
        .lines()
        .filter(|line| line.contains(" INFO ") && line.contains(message))
        .count()
}

#[test]
fn permission_change_logged_once() {
    let daemon = Daemon::start();
    let alice = create_user(&daemon, "alice@example.com");
    create_group(&daemon, "Engineering", &[&alice]);
    sync(&daemon);
    let applied_before = info_lines(&daemon, "permission change applied");
    let accepted_before = info_lines(&daemon, "permissions in force");

    fs::write(
        daemon.permissions_dir().join("engineering.toml"),
        engineering_policy("viewer"),
    )
    .expect("write the permission file");

    // The daemon logs "permissions in force" after it has applied and logged the change.
    wait_until("the daemon accepts the new permissions", || {
        info_lines(&daemon, "permissions in force") > accepted_before
    });
    assert_eq!(roles(&daemon, "alice@example.com"), ["viewer"]);
    let applied = info_lines(&daemon, "permission change applied") - applied_before;
    assert_eq!(applied, 1, "one permission change was logged {applied} times:\n{}", daemon.log());
}
