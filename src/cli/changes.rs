//! Table rows for changes: the planned changes of a dry run and the audit events of `syncs
//! show` and `events`. Each row names the kind of change, the user and the group it concerns, and
//! summarizes the value before and after in one line each. `--json` has the full values.

use serde_json::{json, Map, Value};

/// Fields that a summary leaves out: ids, times and counters, which `--json` shows.
const HIDDEN_FIELDS: [&str; 8] = ["id", "created", "updated", "deactivated", "deleted", "fingerprint", "groupCount", "memberCount"];

/// Builds the row of an audit event as the store keeps it: `subject` is the user or group it
/// is about, and a membership event carries its group in `before` or `after`.
pub(super) fn event_row(event: &Value) -> Value {
    let kind = event["kind"].as_str().unwrap_or_default();
    let (before, after) = (&event["before"], &event["after"]);
    let name = event["subject"]["name"].clone();
    let (user, group) = match event["subject"]["type"].as_str() {
        Some("group") => (Value::Null, name),
        _ => {
            let group = after["group"]["name"].as_str().or(before["group"]["name"].as_str());
            (name, group.map(Value::from).unwrap_or(Value::Null))
        }
    };
    let mut row = change_summary(kind, user, group, before, after);
    for field in ["id", "at", "run"] {
        row[field] = event[field].clone();
    }
    row
}

/// Builds the row of a change in a dry run's plan, whose fields depend on its kind.
pub(super) fn planned_row(change: &Value) -> Value {
    let kind = change["kind"].as_str().unwrap_or_default();
    let field = |name: &str| change[name].clone();
    let null = Value::Null;
    match kind {
        "user_created" => change_summary(kind, change["user"]["userName"].clone(), null.clone(), &null, &change["user"]),
        "user_updated" => change_summary(kind, change["after"]["userName"].clone(), null, &change["before"], &change["after"]),
        "user_deactivated" => {
            let after = json!({"active": false, "reason": field("reason")});
            change_summary(kind, field("user_name"), null, &json!({"active": true}), &after)
        }
        "user_reactivated" => change_summary(kind, field("user_name"), null, &json!({"active": false}), &json!({"active": true})),
        "group_created" => change_summary(kind, null.clone(), change["group"]["displayName"].clone(), &null, &change["group"]),
        "group_updated" => change_summary(kind, null, change["after"]["displayName"].clone(), &change["before"], &change["after"]),
        "group_deleted" => {
            let before = json!({"displayName": field("display_name")});
            change_summary(kind, null.clone(), field("display_name"), &before, &null)
        }
        "member_added" | "member_removed" => change_summary(kind, field("user_name"), field("group_name"), &null, &null),
        "access_changed" => change_summary(kind, field("user_name"), null, &change["before"], &change["after"]),
        _ => change_summary(kind, null.clone(), null.clone(), &null, &null),
    }
}

/// Builds a row with the `kind`, `user`, `group`, `before` and `after` columns.
fn change_summary(kind: &str, user: Value, group: Value, before: &Value, after: &Value) -> Value {
    let (before, after) = match kind {
        "member_added" => ("-".to_string(), "member".to_string()),
        "member_removed" => ("member".to_string(), "-".to_string()),
        _ => summarize(before, after),
    };
    json!({"kind": kind, "user": user, "group": group, "before": before, "after": after})
}

/// Summarizes a value before and after a change as `field=value` pairs. When both are
/// objects, only the fields that differ are listed, and "-" stands for no value.
fn summarize(before: &Value, after: &Value) -> (String, String) {
    let (Some(old), Some(new)) = (before.as_object(), after.as_object()) else {
        return (describe_whole(before), describe_whole(after));
    };
    let mut changed: Vec<&str> = Vec::new();
    for key in new.keys().chain(old.keys()).map(String::as_str) {
        let differs = old.get(key).unwrap_or(&Value::Null) != new.get(key).unwrap_or(&Value::Null);
        if differs && !HIDDEN_FIELDS.contains(&key) && !changed.contains(&key) {
            changed.push(key);
        }
    }
    // Roles and permissions come from grants, so grants are listed only when nothing else
    // changed.
    if changed.len() > 1 {
        changed.retain(|key| *key != "grants");
    }
    (describe_fields(old, &changed), describe_fields(new, &changed))
}

/// Lists every field with a value, or "-" for null.
fn describe_whole(value: &Value) -> String {
    match value.as_object() {
        Some(object) => {
            let keys: Vec<&str> = object.keys().map(String::as_str).filter(|key| !HIDDEN_FIELDS.contains(key)).collect();
            describe_fields(object, &keys)
        }
        None => describe_value(value),
    }
}

/// Lists `keys` of `object` as `key=value` pairs, leaving out null ones. Returns "-" when none
/// is left.
fn describe_fields(object: &Map<String, Value>, keys: &[&str]) -> String {
    let pairs: Vec<String> = keys
        .iter()
        .filter_map(|key| object.get(*key).filter(|value| !value.is_null()).map(|value| format!("{key}={}", describe_value(value))))
        .collect();
    if pairs.is_empty() { "-".to_string() } else { pairs.join("; ") }
}

fn describe_value(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(text) => text.clone(),
        Value::Array(items) if items.is_empty() => "none".to_string(),
        Value::Array(items) if items.iter().any(Value::is_object) => format!("{} entries", items.len()),
        Value::Array(items) => items.iter().map(describe_value).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarize_lists_changed_fields_only() {
        let before = json!({"userName": "alice", "displayName": "alice", "email": null});
        let after = json!({"userName": "alice", "displayName": "Alice Liddell", "email": "a@example.com"});
        assert_eq!(summarize(&before, &after), ("displayName=alice".to_string(), "displayName=Alice Liddell; email=a@example.com".to_string()));
    }

    #[test]
    fn summarize_access_change_leaves_out_grants() {
        let before = json!({"roles": [], "permissions": [], "grants": []});
        let after = json!({"roles": ["viewer"], "permissions": ["report:read"], "grants": [{"role": "viewer"}]});
        assert_eq!(summarize(&before, &after), ("roles=none; permissions=none".to_string(), "roles=viewer; permissions=report:read".to_string()));
    }

    #[test]
    fn summarize_grants_when_only_they_changed() {
        let before = json!({"roles": ["viewer"], "grants": [{"role": "viewer"}]});
        let after = json!({"roles": ["viewer"], "grants": [{"role": "viewer"}, {"role": "viewer"}]});
        assert_eq!(summarize(&before, &after), ("grants=1 entries".to_string(), "grants=2 entries".to_string()));
    }

    #[test]
    fn summarize_created_value_without_bookkeeping() {
        let after = json!({"id": "u1", "userName": "alice", "displayName": null, "active": true, "groupCount": 0});
        assert_eq!(summarize(&Value::Null, &after), ("-".to_string(), "userName=alice; active=true".to_string()));
    }

    #[test]
    fn event_row_names_user_and_group_of_membership() {
        let event = json!({
            "id": 7, "run": 2, "at": "2026-01-31T08:00:00.000Z", "kind": "member_removed",
            "subject": {"type": "user", "id": "u1", "name": "alice@example.com"},
            "before": {"group": {"id": "g1", "name": "Engineering"}}, "after": null
        });
        let row = event_row(&event);
        assert_eq!(row["user"], "alice@example.com");
        assert_eq!(row["group"], "Engineering");
        assert_eq!(row["before"], "member");
        assert_eq!(row["after"], "-");
        assert_eq!(row["run"], 2);
    }

    #[test]
    fn planned_row_names_user_and_group_of_membership() {
        let change = json!({"kind": "member_added", "group": "g1", "group_name": "Engineering", "user": "u1", "user_name": "alice@example.com"});
        let row = planned_row(&change);
        assert_eq!(row["user"], "alice@example.com");
        assert_eq!(row["group"], "Engineering");
        assert_eq!(row["after"], "member");
    }

    #[test]
    fn planned_row_of_deactivation_gives_reason() {
        let change = json!({"kind": "user_deactivated", "id": "u1", "user_name": "bob", "reason": "deleted"});
        let row = planned_row(&change);
        assert_eq!(row["user"], "bob");
        assert_eq!(row["before"], "active=true");
        assert_eq!(row["after"], "active=false; reason=deleted");
    }
}
