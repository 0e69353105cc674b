//! Human-readable output of the CLI: tables and summaries of the JSON that the control
//! socket returns. `--json` prints that JSON unchanged instead.

use serde_json::{json, Value};

use super::changes;

pub(super) fn print_token_created(body: &Value) {
    let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
    out!("SCIM base URL (Tenant URL):   {}", field("scim_url"));
    out!("Bearer token (Secret Token): {}", field("token"));
    out!();
    out!("Token {:?} has id {}. Copy the token now: it is stored only as a hash and cannot be shown again.", field("name"), field("id"));
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Maximum characters that a table cell shows. A longer value is cut to this length and ends
/// in "…", while `--json` prints it whole.
const MAX_CELL_CHARS: usize = 60;

/// Shortens `text` to at most `max` characters for display (a cut text ends in "…") and
/// escapes control characters, so that no value can break a row or move the cursor.
fn clip(text: &str, max: usize) -> String {
    let mut clipped: Vec<char> = Vec::new();
    for character in text.chars() {
        let mut escaped = String::new();
        crate::control::push_escaped(&mut escaped, character);
        clipped.extend(escaped.chars());
        if clipped.len() > max {
            clipped.truncate(max.saturating_sub(1));
            clipped.push('…');
            break;
        }
    }
    clipped.into_iter().collect()
}

/// Pads `text` with spaces to `width` characters. Unlike the `{:<width$}` format, it accepts
/// any width.
fn pad(text: &str, width: usize) -> String {
    let missing = width.saturating_sub(text.chars().count());
    format!("{text}{}", " ".repeat(missing))
}

/// Prints rows of JSON objects as an aligned table with the given columns, each cell clipped
/// to [`MAX_CELL_CHARS`].
fn print_table(rows: &Value, columns: &[(&str, &str)]) {
    let rows = rows.as_array().map(Vec::as_slice).unwrap_or_default();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|(key, _)| clip(&cell(row.pointer(key).unwrap_or(&Value::Null)), MAX_CELL_CHARS))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(index, (_, title))| cells.iter().map(|row| row[index].chars().count()).max().unwrap_or(0).max(title.len()))
        .collect();
    let line = |values: &[String]| {
        let padded: Vec<String> = values.iter().zip(&widths).map(|(value, width)| pad(value, *width)).collect();
        out!("{}", padded.join("  ").trim_end());
    };
    let titles: Vec<String> = columns.iter().map(|(_, title)| title.to_string()).collect();
    line(&titles);
    for row in &cells {
        line(row);
    }
}

pub(super) fn print_tokens(body: &Value) {
    print_table(body, &[("/id", "ID"), ("/name", "NAME"), ("/created", "CREATED"), ("/last_used", "LAST USED")]);
}

pub(super) fn print_users(body: &Value) {
    print_table(body, &[("/id", "ID"), ("/userName", "USERNAME"), ("/displayName", "DISPLAY NAME"), ("/active", "ACTIVE"), ("/groups", "GROUPS")]);
}

pub(super) fn print_groups(body: &Value) {
    print_table(body, &[("/id", "ID"), ("/displayName", "DISPLAY NAME"), ("/members", "MEMBERS"), ("/roles", "ROLES"), ("/unmapped", "UNMAPPED")]);
}

/// Sums the per-kind change counts of a sync run or report.
fn total_changes(counts: &Value) -> u64 {
    counts.as_object().map(|counts| counts.values().filter_map(Value::as_u64).sum()).unwrap_or(0)
}

/// Returns the kinds of change with a non-zero count, with their counts, in the daemon's order.
fn nonzero_counts(counts: &Value) -> Vec<(String, u64)> {
    let Some(counts) = counts.as_object() else {
        return Vec::new();
    };
    counts
        .iter()
        .filter_map(|(kind, count)| count.as_u64().filter(|count| *count > 0).map(|count| (kind.clone(), count)))
        .collect()
}

/// Formats the non-zero change counts as `kind N` pairs, or "none".
fn count_summary(counts: &Value) -> String {
    let pairs: Vec<String> = nonzero_counts(counts).iter().map(|(kind, count)| format!("{kind} {count}")).collect();
    if pairs.is_empty() { "none".to_string() } else { pairs.join(", ") }
}

/// Prints the non-zero change counts as a table with one row per kind of change.
fn print_count_table(counts: &Value) {
    let rows: Vec<Value> = nonzero_counts(counts).into_iter().map(|(kind, count)| json!({"kind": kind, "count": count})).collect();
    if !rows.is_empty() {
        print_table(&Value::Array(rows), &[("/kind", "KIND"), ("/count", "CHANGES")]);
    }
}

/// Prints one `label: value` line, with the values of consecutive lines aligned.
fn print_field(label: &str, value: &str) {
    out!("{}{value}", pad(&format!("{label}:"), 14));
}

/// Returns "s" when `count` calls for a plural noun.
fn plural(count: u64) -> &'static str {
    if count == 1 { "" } else { "s" }
}

pub(super) fn print_runs(body: &Value) {
    let mut rows = body.as_array().cloned().unwrap_or_default();
    for row in &mut rows {
        let total = total_changes(&row["counts"]);
        row["changes"] = Value::from(total);
    }
    print_table(&Value::Array(rows), &[("/id", "ID"), ("/trigger", "TRIGGER"), ("/started", "STARTED"), ("/outcome", "OUTCOME"), ("/changes", "CHANGES"), ("/reason", "REASON")]);
}

/// Columns of a table of audit events, as [`changes::event_row`] fills them.
const EVENT_COLUMNS: [(&str, &str); 5] = [("/kind", "KIND"), ("/user", "USER"), ("/group", "GROUP"), ("/before", "BEFORE"), ("/after", "AFTER")];

pub(super) fn print_run(body: &Value) {
    let run = &body["run"];
    let forced = if run["forced"] == true { ", forced" } else { "" };
    out!("sync run {} ({}{forced})", cell(&run["id"]), cell(&run["trigger"]));
    print_field("started", &cell(&run["started"]));
    print_field("finished", &cell(&run["finished"]));
    print_field("outcome", &cell(&run["outcome"]));
    if let Some(reason) = run["reason"].as_str() {
        print_field("reason", reason);
    }
    if run["outcome"] == "succeeded" {
        print_field("changes", &count_summary(&run["counts"]));
    } else {
        print_field("changes", &format!("none applied (planned: {})", count_summary(&run["counts"])));
    }
    let events: Vec<Value> = body["events"].as_array().map(|events| events.iter().map(changes::event_row).collect()).unwrap_or_default();
    if !events.is_empty() {
        out!();
        let mut columns = vec![("/id", "EVENT")];
        columns.extend(EVENT_COLUMNS);
        print_table(&Value::Array(events), &columns);
    }
}

pub(super) fn print_events(body: &Value) {
    let events: Vec<Value> = body["events"].as_array().map(|events| events.iter().map(changes::event_row).collect()).unwrap_or_default();
    if events.is_empty() {
        out!("no events");
    } else {
        let mut columns = vec![("/id", "EVENT"), ("/at", "TIME"), ("/run", "RUN")];
        columns.extend(EVENT_COLUMNS);
        print_table(&Value::Array(events), &columns);
    }
    if let Some(next) = body["next_before"].as_u64() {
        out!("Older events exist: rerun with the same options and --before {next}.");
    }
}

pub(super) fn print_access(body: &Value) {
    let short = |value: &Value| clip(&cell(value), MAX_CELL_CHARS);
    out!("{} ({}), {}", short(&body["user"]["userName"]), short(&body["user"]["id"]), if body["active"] == Value::Bool(false) { "deactivated" } else { "active" });
    // Every item is listed, each clipped like a table cell.
    let list = |value: &Value| value.as_array().map(|items| items.iter().map(short).collect::<Vec<_>>().join(", ")).unwrap_or_default();
    let groups: Vec<String> = body["groups"].as_array().map(|groups| groups.iter().map(|group| short(&group["name"])).collect()).unwrap_or_default();
    out!("groups:      {}", groups.join(", "));
    out!("roles:       {}", list(&body["roles"]));
    out!("permissions: {}", list(&body["permissions"]));
    let grants = body["grants"].as_array().cloned().unwrap_or_default();
    if !grants.is_empty() {
        out!();
        print_table(&Value::Array(grants), &[("/group/display_name", "GROUP"), ("/role", "ROLE"), ("/resources", "RESOURCES"), ("/source", "SOURCE")]);
    }
}

pub(super) fn print_status(body: &Value) {
    let text = |pointer: &str| cell(body.pointer(pointer).unwrap_or(&Value::Null));
    out!("idpsync {} (pid {}), serving {}", text("/version"), text("/pid"), text("/scim_url"));
    print_field("started", &text("/started"));
    print_field("next sync", &format!("{} ({})", text("/schedule/next_run"), text("/schedule/expression")));
    let never_loaded = body.pointer("/permissions/loaded") == Some(&Value::Bool(false));
    let loaded = if never_loaded { " (no valid files have loaded yet, so syncs wait)" } else { "" };
    print_field("permissions", &format!("{}{loaded}", text("/permissions/dir")));
    if let Some(error) = body.pointer("/permissions/error").and_then(Value::as_str) {
        let consequence = if never_loaded { "no permissions are in force" } else { "the previous permissions stay in force" };
        out!("  invalid, {consequence}:\n  {}", error.replace('\n', "\n  "));
    }
    match body.get("organization").filter(|value| !value.is_null()) {
        Some(organization) => print_organization(organization),
        None => print_field("organization", "unavailable (the daemon log has the error)"),
    }
    print_field("tokens", &text("/tokens"));
}

fn print_organization(organization: &Value) {
    let count = |field: &str| organization[field].as_u64().unwrap_or(0);
    print_field("users", &format!("{} active, {} deactivated", count("active_users"), count("deactivated_users")));
    print_field("groups", &format!("{} ({} unmapped)", count("groups"), count("unmapped_groups")));
    let pending = count("pending_changes");
    print_field("pending", &format!("{pending} directory change{} for the next sync", plural(pending)));
    let run = &organization["last_run"];
    if run.is_null() {
        print_field("last sync", "none yet");
        return;
    }
    let changes = total_changes(&run["counts"]);
    let result = match run["outcome"].as_str() {
        Some("succeeded") => format!("succeeded, {changes} change{}", plural(changes)),
        Some(outcome) => format!("{outcome}, nothing applied"),
        None => "-".to_string(),
    };
    print_field("last sync", &format!("run {} ({}) at {}: {result}", cell(&run["id"]), cell(&run["trigger"]), cell(&run["finished"])));
}

/// Changes of a dry run's plan that the table shows; `--json` lists them all.
const PLAN_PREVIEW_CHANGES: usize = 20;

pub(super) fn print_sync_report(body: &Value) {
    let total = total_changes(&body["counts"]);
    if body["dry_run"] == true {
        print_plan(body, total);
        return;
    }
    let forced = if body["forced"] == true { " (forced)" } else { "" };
    if total == 0 {
        out!("sync run {}{forced}: succeeded, no changes", cell(&body["run"]));
    } else {
        out!("sync run {}{forced}: succeeded, {total} change{} applied", cell(&body["run"]), plural(total));
        print_count_table(&body["counts"]);
        out!("`idpsync syncs show {}` lists each change.", cell(&body["run"]));
    }
    if let Some(error) = body["export_error"].as_str() {
        out!("The export file was not written: {error}");
    }
}

/// Prints a dry run: what a sync now would do, its counts and the first changes of its plan.
fn print_plan(body: &Value, total: u64) {
    let forced = if body["forced"] == true { " with --force" } else { "" };
    if body["outcome"] == "blocked" {
        out!("dry run, nothing applied: the removal guard would stop this sync of {total} change{}", plural(total));
    } else {
        out!("dry run{forced}, nothing applied: a sync now would apply {total} change{}", plural(total));
    }

    let removals = &body["removals"];
    let count = |field: &str| removals[field].as_u64().unwrap_or(0);
    print_field(
        "removals",
        &format!(
            "{} of {} active users deactivated, {} of {} groups deleted",
            count("users_deactivated"),
            count("active_users"),
            count("groups_deleted"),
            count("groups")
        ),
    );
    if total == 0 {
        return;
    }
    out!();
    print_count_table(&body["counts"]);

    let changes = body["changes"].as_array().map(Vec::as_slice).unwrap_or_default();
    let shown: Vec<Value> = changes.iter().take(PLAN_PREVIEW_CHANGES).map(changes::planned_row).collect();
    out!();
    print_table(&Value::Array(shown), &EVENT_COLUMNS);
    let hidden = changes.len().saturating_sub(PLAN_PREVIEW_CHANGES);
    if hidden > 0 {
        out!("… and {hidden} more change{}: `idpsync sync --dry-run --json` lists them all.", plural(hidden as u64));
    }
}

/// Prints the result of a sync that the removal guard stopped. The caller prints the guard's
/// reason as the error message, and that reason explains how to apply the sync anyway.
pub(super) fn print_blocked_sync(body: &Value) {
    match body["run"].as_u64() {
        Some(run) => out!("sync run {run}: stopped by the removal guard, nothing applied"),
        None => out!("sync stopped by the removal guard, nothing applied"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_text() {
        assert_eq!(clip("alice", 60), "alice");
        assert_eq!(clip(&"a".repeat(60), 60), "a".repeat(60));
    }

    #[test]
    fn clip_cuts_long_text_with_ellipsis() {
        let clipped = clip(&"x".repeat(900_000), 60);
        assert_eq!(clipped.chars().count(), 60);
        assert!(clipped.ends_with('…'), "{clipped}");
    }

    #[test]
    fn clip_escapes_control_characters() {
        assert_eq!(clip("a\nb\u{1b}[2J\0", 60), "a\\nb\\x1b[2J\\0");
    }

    #[test]
    fn pad_accepts_widths_beyond_format_limit() {
        assert_eq!(pad("ab", 5), "ab   ");
        assert_eq!(pad("ab", 100_000).len(), 100_000);
    }
}
