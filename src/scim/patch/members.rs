//! PATCH operations on Group `members`, which live outside the document and change through
//! `MemberSet`.

use serde_json::Value;

use super::filtered::is_plain;
use super::{PatchOpKind, Patcher};
use crate::scim::error::ScimError;
use crate::scim::filter::{self, AttrPath, CompareOp, Filter};
use crate::scim::resource;

impl Patcher<'_> {
    pub(super) fn apply_members(
        &mut self,
        op: PatchOpKind,
        attr: &AttrPath,
        filter: Option<&Filter>,
        sub: Option<&str>,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        if sub.is_some() {
            return Err(ScimError::invalid_path(
                "member sub-attributes cannot be changed on their own; add or remove the member",
            ));
        }
        let ids = match value {
            Some(value) if op != PatchOpKind::Remove || filter.is_none() => {
                resource::member_ids(value)?
            }
            _ => Vec::new(),
        };
        match (op, filter) {
            (PatchOpKind::Add, _) => self.add_members(&ids),
            (PatchOpKind::Replace, None) => {
                self.members.clear()?;
                self.add_members(&ids)
            }
            (PatchOpKind::Replace, Some(filter)) => {
                let matched = self.matching_members(attr, filter)?;
                if matched.is_empty() {
                    // RFC 7644 section 3.5.2.3: a replace whose value filter matches nothing fails.
                    return Err(ScimError::no_target(format!("no member matches the filter in path \"{attr}[{filter}]\"")));
                }
                self.remove_members(&matched)?;
                self.add_members(&ids)
            }
            (PatchOpKind::Remove, Some(filter)) => {
                let matched = self.matching_members(attr, filter)?;
                self.remove_members(&matched)
            }
            // Entra ID sends the members to remove as the value (see `remove_plain`).
            (PatchOpKind::Remove, None) if value.is_some_and(|value| !value.is_null()) => {
                self.remove_members(&ids)
            }
            (PatchOpKind::Remove, None) => self.members.clear(),
        }
    }

    fn add_members(&mut self, ids: &[String]) -> Result<(), ScimError> {
        ids.iter().try_for_each(|id| self.members.add(id))
    }

    fn remove_members(&mut self, ids: &[String]) -> Result<(), ScimError> {
        ids.iter()
            .try_for_each(|id| self.members.remove(id).map(drop))
    }

    /// Ids of the current members a filter selects. `value eq "id"` or `$ref eq "URL"` (or
    /// several joined by `or`) needs no member list, so a one-member change costs the same in a
    /// group of any size.
    fn matching_members(
        &mut self,
        attr: &AttrPath,
        filter: &Filter,
    ) -> Result<Vec<String>, ScimError> {
        let filter = refs_as_values(filter);
        if let Some(ids) = value_eq_ids(&filter) {
            let mut members = Vec::with_capacity(ids.len());
            for id in ids {
                if self.members.contains(&id)? {
                    members.push(id);
                }
            }
            return Ok(members);
        }
        let mut listed = self.members.list()?;
        if filter::mentions_attribute(&filter, "display") {
            for member in &mut listed {
                let id = member.get("value").and_then(Value::as_str).unwrap_or_default().to_string();
                if let (Some(display), Value::Object(map)) = (self.members.display(&id)?, member) {
                    map.insert("display".to_string(), Value::from(display));
                }
            }
        }
        let ids = listed
            .iter()
            .filter(|member| filter::matches_element(&filter, self.kind, attr, member))
            .filter_map(|member| member.get("value").and_then(Value::as_str))
            .map(str::to_string)
            .collect();
        Ok(ids)
    }
}

/// Returns the ids of a member filter made only of `value eq "id"` comparisons joined by `or`.
fn value_eq_ids(filter: &Filter) -> Option<Vec<String>> {
    let mut ids = Vec::new();
    let mut pending = vec![filter];
    while let Some(filter) = pending.pop() {
        match filter {
            Filter::Or(terms) => pending.extend(terms.iter().rev()),
            Filter::Compare {
                path,
                op: CompareOp::Eq,
                value: Value::String(id),
            } if is_plain(path) && path.name.eq_ignore_ascii_case("value") => {
                // Member ids are lowercase UUIDs, and `members.value` is not case-exact.
                ids.push(id.to_ascii_lowercase());
            }
            _ => return None,
        }
    }
    Some(ids)
}

/// Rewrites `$ref eq "https://.../Users/ID"` as `value eq "ID"`. A member's `$ref` ends with its
/// id whatever the host, so this also matches references built from another base URL (an IdP
/// behind a proxy, for example).
fn refs_as_values(filter: &Filter) -> Filter {
    match filter {
        Filter::Compare { path, op: CompareOp::Eq, value: Value::String(reference) }
            if is_plain(path) && path.name.eq_ignore_ascii_case("$ref") =>
        {
            let id = reference.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
            Filter::Compare {
                path: AttrPath { urn: None, name: "value".to_string(), sub_attr: None },
                op: CompareOp::Eq,
                value: Value::from(id),
            }
        }
        Filter::And(terms) => Filter::And(terms.iter().map(refs_as_values).collect()),
        Filter::Or(terms) => Filter::Or(terms.iter().map(refs_as_values).collect()),
        Filter::Not(inner) => Filter::Not(Box::new(refs_as_values(inner))),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::scim::error::ScimType;
    use crate::scim::patch::fixtures::{assert_error, patch_group, Members};

    #[test]
    fn entra_remove_members_by_value_list() {
        let mut members = Members::of(&["u1", "u2", "u3"]);
        patch_group(
            &mut members,
            json!([{"op": "Remove", "path": "members",
            "value": [{"$ref": null, "value": "u1"}, {"value": "u3"}]}]),
        )
        .unwrap();
        assert_eq!(members.ids(), ["u2"]);
    }

    #[test]
    fn remove_members_without_value_clears() {
        let mut members = Members::of(&["u1", "u2"]);
        patch_group(&mut members, json!([{"op": "remove", "path": "members"}])).unwrap();
        assert!(members.ids().is_empty());
    }

    #[test]
    fn remove_member_by_value_filter() {
        let mut members = Members::of(&["u1", "u2"]);
        patch_group(
            &mut members,
            json!([
                {"op": "remove", "path": "members[value eq \"u1\"]"},
                {"op": "remove", "path": "members[value eq \"u9\"]"},
            ]),
        )
        .unwrap();
        assert_eq!(members.ids(), ["u2"]);
    }

    #[test]
    fn remove_member_by_upper_case_id() {
        let mut members = Members::of(&["u1", "u2"]);
        patch_group(&mut members, json!([{"op": "remove", "path": "members[value eq \"U1\"]"}])).unwrap();
        assert_eq!(members.ids(), ["u2"]);
        patch_group(&mut members, json!([{"op": "remove", "path": "members", "value": [{"value": "U2"}]}])).unwrap();
        assert!(members.ids().is_empty());
    }

    #[test]
    fn remove_member_by_ref_of_any_host() {
        let mut members = Members::of(&["u1", "u2"]);
        let path = "members[$ref eq \"https://proxy.example.org/scim/v2/Users/u1\"]";
        patch_group(&mut members, json!([{"op": "remove", "path": path}])).unwrap();
        assert_eq!(members.ids(), ["u2"]);
    }

    #[test]
    fn remove_member_by_display() {
        let mut members = Members::of(&["u1", "u2"]);
        let path = "members[display eq \"member U2\"]";
        patch_group(&mut members, json!([{"op": "remove", "path": path}])).unwrap();
        assert_eq!(members.ids(), ["u1"]);
    }

    #[test]
    fn replace_through_unmatched_filter_is_no_target() {
        let mut members = Members::of(&["u1"]);
        let result = patch_group(&mut members, json!([
            {"op": "replace", "path": "members[value eq \"u9\"]", "value": [{"value": "u2"}]},
        ]));
        assert_error(result, ScimType::NoTarget, "u9");
        assert_eq!(members.ids(), ["u1"]);
    }

    #[test]
    fn remove_members_by_other_filter() {
        let mut members = Members::of(&["g2", "u1", "u2"]);
        patch_group(
            &mut members,
            json!([{"op": "remove", "path": "members[type eq \"User\"]"}]),
        )
        .unwrap();
        assert_eq!(members.ids(), ["g2"]);
    }

    #[test]
    fn okta_filtered_remove_and_add_in_one_request() {
        let mut members = Members::of(&["u1", "u2"]);
        patch_group(&mut members, json!([
            {"op": "remove", "path": "members[value eq \"u1\"]"},
            {"op": "add", "path": "members", "value": [{"value": "u3", "display": "cy@example.org"}]},
        ]))
        .unwrap();
        assert_eq!(members.ids(), ["u2", "u3"]);
    }

    #[test]
    fn okta_replace_whole_member_list() {
        let mut members = Members::of(&["u1", "u2"]);
        patch_group(
            &mut members,
            json!([{"op": "replace", "path": "members",
            "value": [{"value": "u2", "display": "bo"}, {"value": "u3", "display": "cy"}]}]),
        )
        .unwrap();
        assert_eq!(members.ids(), ["u2", "u3"]);
    }

    #[test]
    fn repeated_member_add_is_noop() {
        let mut members = Members::of(&["u1"]);
        let doc = patch_group(
            &mut members,
            json!([
                {"op": "add", "path": "members", "value": [{"value": "u1"}, {"value": "u1"}]},
            ]),
        )
        .unwrap();
        assert_eq!(members.ids(), ["u1"]);
        assert!(!doc.contains_key("members"));
    }

    #[test]
    fn entra_member_add_with_null_ref() {
        let mut members = Members::default();
        patch_group(
            &mut members,
            json!([{"op": "Add", "path": "members",
            "value": [{"$ref": null, "value": "u1", "type": "User"}]}]),
        )
        .unwrap();
        assert_eq!(members.ids(), ["u1"]);
    }

    #[test]
    fn member_add_accepts_bare_id() {
        let mut members = Members::default();
        patch_group(
            &mut members,
            json!([{"op": "add", "path": "members", "value": ["u1", "u2"]}]),
        )
        .unwrap();
        assert_eq!(members.ids(), ["u1", "u2"]);
    }

    #[test]
    fn member_without_value_rejected() {
        let mut members = Members::default();
        let result = patch_group(
            &mut members,
            json!([{"op": "add", "path": "members", "value": [{"display": "x"}]}]),
        );
        assert_error(result, ScimType::InvalidValue, "members");
    }

    #[test]
    fn unknown_member_id_rejected() {
        let mut members = Members::default();
        let result = patch_group(
            &mut members,
            json!([{"op": "add", "path": "members",
            "value": [{"value": "u1"}, {"value": "unknown-1"}]}]),
        );
        assert_error(result, ScimType::InvalidValue, "unknown-1");
    }

    #[test]
    fn path_less_members_add() {
        let mut members = Members::default();
        patch_group(
            &mut members,
            json!([{"op": "add", "value": {"members": [{"value": "u1"}]}}]),
        )
        .unwrap();
        assert_eq!(members.ids(), ["u1"]);
    }
}
