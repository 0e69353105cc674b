//! Human-readable output of the CLI: tables and summaries of the JSON that the control
//! socket returns. `--json` prints that JSON unchanged instead.

use serde_json::Value;

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
        if character.is_control() {
            clipped.extend(character.escape_default());
        } else {
            clipped.push(character);
        }
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

/// The non-zero change counts as `kind=N` pairs.
fn count_summary(counts: &Value) -> String {
    let pairs: Vec<String> = counts
        .as_object()
        .map(|counts| {
            counts
                .iter()
                .filter(|(_, count)| count.as_u64().unwrap_or(0) > 0)
                .map(|(kind, count)| format!("{kind}={count}"))
                .collect()
        })
        .unwrap_or_default();
    if pairs.is_empty() { "no changes".to_string() } else { pairs.join(" ") }
}

pub(super) fn print_runs(body: &Value) {
    let mut rows = body.as_array().cloned().unwrap_or_default();
    for row in &mut rows {
        let total = total_changes(&row["counts"]);
        row["changes"] = Value::from(total);
    }
    print_table(&Value::Array(rows), &[("/id", "ID"), ("/trigger", "TRIGGER"), ("/started", "STARTED"), ("/outcome", "OUTCOME"), ("/changes", "CHANGES"), ("/reason", "REASON")]);
}

pub(super) fn print_run(body: &Value) {
    let run = &body["run"];
    out!(
        "sync run {} ({}), {} to {}: {}{}",
        cell(&run["id"]),
        cell(&run["trigger"]),
        cell(&run["started"]),
        cell(&run["finished"]),
        cell(&run["outcome"]),
        run["reason"].as_str().map(|reason| format!(" ({reason})")).unwrap_or_default()
    );
    out!("{}", count_summary(&run["counts"]));
    let events = body["events"].as_array().cloned().unwrap_or_default();
    if !events.is_empty() {
        out!();
        print_table(&Value::Array(events), &[("/id", "EVENT"), ("/kind", "KIND"), ("/subject/type", "TYPE"), ("/subject/name", "SUBJECT"), ("/subject/id", "ID")]);
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
    out!("next sync:    {} ({})", text("/schedule/next_run"), text("/schedule/expression"));
    out!("permissions:  {}", text("/permissions/dir"));
    if let Some(error) = body.pointer("/permissions/error").and_then(Value::as_str) {
        out!("  invalid, the previous permissions stay in force:\n  {}", error.replace('\n', "\n  "));
    }
    if let Some(organization) = body.get("organization").filter(|value| !value.is_null()) {
        out!("organization: {}", serde_json::to_string(organization).unwrap_or_default());
    }
    out!("tokens:       {}", text("/tokens"));
}

pub(super) fn print_sync_report(body: &Value) {
    let label = if body["dry_run"] == Value::Bool(true) { "dry run (nothing applied)".to_string() } else { format!("sync run {}", cell(&body["run"])) };
    out!(
        "{label}: {}{}",
        cell(&body["outcome"]),
        body["reason"].as_str().or(body["error"].as_str()).map(|reason| format!(" ({reason})")).unwrap_or_default()
    );
    if body.get("counts").is_some() {
        out!("{}", count_summary(&body["counts"]));
    }
    let changes = body["changes"].as_array().cloned().unwrap_or_default();
    for change in changes {
        out!("  {}", serde_json::to_string(&change).unwrap_or_default());
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
        assert_eq!(clip("a\nb\u{1b}[2J", 60), "a\\nb\\u{1b}[2J");
    }

    #[test]
    fn pad_accepts_widths_beyond_format_limit() {
        assert_eq!(pad("ab", 5), "ab   ");
        assert_eq!(pad("ab", 100_000).len(), 100_000);
    }
}
