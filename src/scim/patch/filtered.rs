//! PATCH paths with a value filter, such as `emails[type eq "work"].value`, applied to the
//! matching elements of a multi-valued attribute (RFC 7644 section 3.5.2).

use serde_json::{Map, Value};

use super::attribute::{add_element, clear_primary, normalize, resolve_sub, set_sub};
use super::{PatchOpKind, Patcher, Slot};
use crate::scim::error::ScimError;
use crate::scim::filter::{self, AttrPath, CompareOp, Filter};
use crate::scim::resource;
use crate::scim::schema::AttrDef;

impl Patcher<'_> {
    /// Applies a value-filter path such as `emails[type eq "work"]` or `emails[type eq "work"].value`.
    pub(super) fn apply_filtered(
        &mut self,
        op: PatchOpKind,
        slot: &Slot,
        attr: &AttrPath,
        filter: &Filter,
        sub: Option<&str>,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let Some(def) = slot.def.filter(|def| def.multi_valued) else {
            return Err(ScimError::invalid_path(format!(
                "a value filter needs a multi-valued attribute, and '{}' is not one",
                slot.label()
            )));
        };
        let mut items = match self.take(slot) {
            Some(Value::Array(items)) => items,
            Some(other) => vec![other],
            None => Vec::new(),
        };
        let matched: Vec<usize> = (0..items.len())
            .filter(|&index| {
                items
                    .get(index)
                    .is_some_and(|item| filter::matches_element(filter, self.kind, attr, item))
            })
            .collect();

        let update = FilteredUpdate {
            def,
            label: slot.label(),
            filter,
            sub,
        };
        match op {
            PatchOpKind::Remove => update.remove(&mut items, &matched)?,
            _ => update.write(op, &mut items, &matched, value)?,
        }
        self.set(slot, Value::Array(items))?;
        self.prune(slot);
        Ok(())
    }
}

/// One value-filter operation on the elements of a multi-valued attribute.
struct FilteredUpdate<'a> {
    def: &'static AttrDef,
    label: String,
    filter: &'a Filter,
    sub: Option<&'a str>,
}

impl FilteredUpdate<'_> {
    /// Removes the matching elements, or their sub-attribute; no match is not an error.
    fn remove(&self, items: &mut Vec<Value>, matched: &[usize]) -> Result<(), ScimError> {
        match self.sub {
            Some(sub) => {
                let (sub_name, _) = self.sub_def(sub)?;
                for &index in matched {
                    if let Some(item) = items.get_mut(index) {
                        set_sub(item, &sub_name, None);
                    }
                }
                items.retain(|item| !resource::is_unassigned(item));
            }
            None => retain_unmatched(items, matched),
        }
        Ok(())
    }

    /// Writes `value` to the matching elements. With no match, a filter made only of `eq`
    /// conditions joined by `and` describes a new element, which is created: Entra ID sends
    /// `emails[type eq "work"].value` with Add and Replace to users that have no such email.
    fn write(
        &self,
        op: PatchOpKind,
        items: &mut Vec<Value>,
        matched: &[usize],
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        let (sub_name, new) = self.new_value(value)?;
        if matched.is_empty() {
            let Some(new) = new else {
                return Ok(());
            };
            if let Some(element) = self.new_element(sub_name.as_deref(), new)? {
                add_element(items, element);
            }
            return Ok(());
        }

        for &index in matched {
            let Some(item) = items.get_mut(index) else {
                continue;
            };
            match (&sub_name, &new, op) {
                (Some(sub), _, _) => set_sub(item, sub, new.clone()),
                (None, Some(new), PatchOpKind::Replace) => *item = new.clone(),
                (None, Some(Value::Object(entries)), _) => {
                    if let Value::Object(existing) = item {
                        existing.extend(entries.clone());
                    }
                }
                (None, _, _) => *item = Value::Null,
            }
        }
        keep_primary_in(items, matched);
        items.retain(|item| !resource::is_unassigned(item));
        Ok(())
    }

    /// Returns the normalized value to write and the canonical sub-attribute it goes to, if any.
    fn new_value(
        &self,
        value: Option<&Value>,
    ) -> Result<(Option<String>, Option<Value>), ScimError> {
        let Some(sub) = self.sub else {
            let value = value.cloned().unwrap_or(Value::Null);
            return Ok((
                None,
                resource::normalize_single(self.def, value, &self.label)?,
            ));
        };
        let (sub_name, sub_def) = self.sub_def(sub)?;
        let label = format!("{}.{sub_name}", self.label);
        let new = normalize(sub_def, value, &label)?;
        Ok((Some(sub_name), new))
    }

    fn sub_def(&self, sub: &str) -> Result<(String, Option<&'static AttrDef>), ScimError> {
        let slot = Slot {
            container: None,
            name: self.label.clone(),
            def: Some(self.def),
        };
        resolve_sub(&slot, sub)
    }

    fn new_element(&self, sub: Option<&str>, new: Value) -> Result<Option<Value>, ScimError> {
        let Some(conditions) = equality_conditions(self.filter) else {
            return Err(ScimError::no_target(format!(
                "no element of '{}' matches the filter",
                self.label
            )));
        };
        let mut element = Map::new();
        for (name, value) in conditions {
            element.insert(name, value);
        }
        match (sub, new) {
            (Some(sub), new) => {
                element.insert(sub.to_string(), new);
            }
            (None, Value::Object(entries)) => element.extend(entries),
            (None, _) => {}
        }
        resource::normalize_single(self.def, Value::Object(element), &self.label)
    }
}

fn retain_unmatched(items: &mut Vec<Value>, matched: &[usize]) {
    let mut index = 0;
    items.retain(|_| {
        let keep = !matched.contains(&index);
        index += 1;
        keep
    });
}

/// When an updated element became primary, the others lose `primary`.
fn keep_primary_in(items: &mut [Value], updated: &[usize]) {
    let updated_primary = updated
        .iter()
        .any(|&index| items.get(index).is_some_and(resource::is_primary));
    if !updated_primary {
        return;
    }
    for (index, item) in items.iter_mut().enumerate() {
        if !updated.contains(&index) {
            clear_primary(item);
        }
    }
}

/// Returns the `(sub-attribute, value)` pairs of a filter made only of `eq` comparisons joined by
/// `and`, as in `[type eq "work" and primary eq true]`; `None` for any other filter.
fn equality_conditions(filter: &Filter) -> Option<Vec<(String, Value)>> {
    let mut conditions = Vec::new();
    let mut pending = vec![filter];
    while let Some(filter) = pending.pop() {
        match filter {
            Filter::And(terms) => pending.extend(terms.iter().rev()),
            Filter::Compare {
                path,
                op: CompareOp::Eq,
                value,
            } if is_plain(path) => {
                conditions.push((path.name.clone(), value.clone()));
            }
            _ => return None,
        }
    }
    Some(conditions)
}

pub(super) fn is_plain(path: &AttrPath) -> bool {
    path.urn.is_none() && path.sub_attr.is_none()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::scim::error::ScimType;
    use crate::scim::patch::fixtures::{assert_error, patch, patch_user, user, Members};
    use crate::scim::schema::ResourceKind;

    #[test]
    fn filtered_replace_updates_sub_attribute() {
        let doc = patch_user(
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value",
            "value": "juno@example.org"}]),
        )
        .unwrap();
        assert_eq!(
            doc["emails"],
            json!([{"value": "juno@example.org", "type": "work", "primary": true}])
        );
    }

    #[test]
    fn entra_add_filtered_email_creates_element() {
        let mut doc = user();
        doc.remove("emails");
        for op in ["Add", "Replace"] {
            let operations = json!([{"op": op, "path": "emails[type eq \"work\"].value",
                "value": "mira@example.com"}]);
            let patched = patch(
                ResourceKind::User,
                &doc,
                &mut Members::default(),
                operations,
            )
            .unwrap();
            assert_eq!(
                patched["emails"],
                json!([{"type": "work", "value": "mira@example.com"}]),
                "op {op}"
            );
        }
    }

    #[test]
    fn filtered_add_creates_from_and_conditions() {
        let doc = patch_user(json!([{"op": "add",
            "path": "emails[type eq \"home\" and primary eq true].value", "value": "h@example.org"}]))
        .unwrap();
        let expected = json!([
            {"value": "ada@example.org", "type": "work"},
            {"type": "home", "primary": true, "value": "h@example.org"},
        ]);
        assert_eq!(doc["emails"], expected);
    }

    #[test]
    fn filtered_replace_without_match_is_no_target() {
        let result = patch_user(
            json!([{"op": "replace", "path": "emails[value co \"nobody\"].type",
            "value": "home"}]),
        );
        assert_error(result, ScimType::NoTarget, "emails");
    }

    #[test]
    fn filtered_remove_removes_matching_elements() {
        let doc = patch_user(json!([
            {"op": "add", "path": "emails", "value": [{"value": "h@example.org", "type": "home"}]},
            {"op": "remove", "path": "emails[type eq \"work\"]"},
            {"op": "remove", "path": "emails[type eq \"other\"]"},
        ]))
        .unwrap();
        assert_eq!(
            doc["emails"],
            json!([{"value": "h@example.org", "type": "home"}])
        );
    }

    #[test]
    fn filtered_remove_of_sub_attribute() {
        let doc = patch_user(json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]))
            .unwrap();
        assert_eq!(
            doc["emails"],
            json!([{"value": "ada@example.org", "type": "work"}])
        );
    }

    #[test]
    fn filter_on_single_valued_rejected() {
        let result = patch_user(json!([{"op": "remove", "path": "name[givenName eq \"Ada\"]"}]));
        assert_error(result, ScimType::InvalidPath, "name");
    }

    #[test]
    fn second_primary_by_filter_rejected() {
        let result = patch_user(json!([
            {"op": "add", "path": "emails", "value": [{"value": "b@example.org", "type": "home"}]},
            {"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true},
            {"op": "replace", "path": "emails[type eq \"work\"].primary", "value": true},
            {"op": "add", "path": "emails[value ew \"example.org\"].primary", "value": true},
        ]));
        assert_error(result, ScimType::InvalidValue, "primary");
    }
}
