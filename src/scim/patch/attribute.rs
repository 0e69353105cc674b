//! Add, replace and remove on one attribute, or on a sub-attribute path without a value filter
//! (RFC 7644 sections 3.5.2.1 to 3.5.2.3).

use serde_json::{Map, Value};

use super::{PatchOpKind, Patcher, Slot};
use crate::scim::error::ScimError;
use crate::scim::resource;
use crate::scim::schema::{self, AttrDef, AttrType, Mutability};

impl Patcher<'_> {
    pub(super) fn apply_plain(
        &mut self,
        op: PatchOpKind,
        slot: &Slot,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        if op == PatchOpKind::Remove {
            return self.remove_plain(slot, value);
        }
        let Some(new) = normalize(slot.def, value, &slot.label())? else {
            return self.unset(slot);
        };
        match slot.def {
            Some(def) if def.multi_valued && op == PatchOpKind::Add => self.union(slot, new),
            // RFC 7644 sections 3.5.2.1 and 3.5.2.3: sub-attributes given for a complex
            // attribute replace those sub-attributes and leave the others unchanged.
            Some(def) if def.ty == AttrType::Complex && !def.multi_valued => self.merge(slot, new),
            _ => self.set(slot, new),
        }
    }

    /// Removes an attribute. For a multi-valued attribute with a `value`, removes only the
    /// listed elements: Entra ID removes group members this way, and reading the request as
    /// "clear the attribute" would empty the group.
    fn remove_plain(&mut self, slot: &Slot, value: Option<&Value>) -> Result<(), ScimError> {
        let listed = value.filter(|value| !value.is_null());
        match (slot.def, listed) {
            (Some(def), Some(listed)) if def.multi_valued => {
                let listed = resource::normalize_attribute(def, listed.clone(), &slot.label())?;
                let listed = match listed {
                    Some(Value::Array(items)) => items,
                    _ => return Ok(()),
                };
                let Some(Value::Array(items)) = self.get_mut(slot) else {
                    return Ok(());
                };
                items.retain(|item| !listed.iter().any(|removal| contains_all(item, removal)));
                self.prune(slot);
                Ok(())
            }
            _ => self.unset(slot),
        }
    }

    /// Adds elements to a multi-valued attribute as a set union (RFC 7644 section 3.5.2.1).
    fn union(&mut self, slot: &Slot, new: Value) -> Result<(), ScimError> {
        let additions = match new {
            Value::Array(items) => items,
            other => vec![other],
        };
        let mut items = match self.take(slot) {
            Some(Value::Array(items)) => items,
            Some(other) => vec![other],
            None => Vec::new(),
        };
        for addition in additions {
            add_element(&mut items, addition);
        }
        self.set(slot, Value::Array(items))
    }

    fn merge(&mut self, slot: &Slot, new: Value) -> Result<(), ScimError> {
        let merged = match (self.take(slot), new) {
            (Some(Value::Object(mut existing)), Value::Object(entries)) => {
                existing.extend(entries);
                Value::Object(existing)
            }
            (_, new) => new,
        };
        self.set(slot, merged)
    }

    /// Applies a path with a sub-attribute and no filter: `name.givenName` on a single complex
    /// attribute, or `emails.value` on every element of a multi-valued one.
    pub(super) fn apply_sub(
        &mut self,
        op: PatchOpKind,
        slot: &Slot,
        sub: &str,
        value: Option<&Value>,
    ) -> Result<(), ScimError> {
        if slot.def.is_some_and(|def| def.ty != AttrType::Complex) {
            return Err(ScimError::invalid_path(format!(
                "attribute '{}' has no sub-attribute '{sub}'",
                slot.label()
            )));
        }
        let (sub_name, sub_def) = resolve_sub(slot, sub)?;
        let new = match op {
            PatchOpKind::Remove => None,
            _ => normalize(sub_def, value, &format!("{}.{sub_name}", slot.label()))?,
        };

        if slot.def.is_some_and(|def| def.multi_valued) {
            return self.update_every_element(slot, &sub_name, new);
        }
        match new {
            Some(new) => {
                let mut entries = Map::new();
                entries.insert(sub_name, new);
                self.merge(slot, Value::Object(entries))
            }
            None => {
                if let Some(Value::Object(parent)) = self.get_mut(slot) {
                    parent.remove(&sub_name);
                }
                self.prune(slot);
                Ok(())
            }
        }
    }

    fn update_every_element(
        &mut self,
        slot: &Slot,
        sub: &str,
        new: Option<Value>,
    ) -> Result<(), ScimError> {
        let mut items = match self.take(slot) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        match &new {
            Some(new) if items.is_empty() => items.push(object_with(sub, new.clone())),
            _ => items
                .iter_mut()
                .for_each(|item| set_sub(item, sub, new.clone())),
        }
        self.set(slot, Value::Array(items))?;
        self.prune(slot);
        Ok(())
    }
}

/// Normalizes an add or replace value; `None` means the value clears the attribute, as
/// Entra ID sends `""` and `null` to clear.
pub(super) fn normalize(
    def: Option<&'static AttrDef>,
    value: Option<&Value>,
    label: &str,
) -> Result<Option<Value>, ScimError> {
    let Some(value) = value else {
        return Err(ScimError::invalid_value(format!(
            "no value given for '{label}'"
        )));
    };
    match def {
        Some(def) => resource::normalize_attribute(def, value.clone(), label),
        None if resource::is_unassigned(value) => Ok(None),
        None => Ok(Some(value.clone())),
    }
}

/// Returns the canonical name and definition of a sub-attribute of `slot`; readOnly sub-attributes
/// cannot be written.
pub(super) fn resolve_sub(
    slot: &Slot,
    sub: &str,
) -> Result<(String, Option<&'static AttrDef>), ScimError> {
    let sub_def = slot.def.and_then(|def| schema::find_sub_attr(def, sub));
    match sub_def {
        Some(def) if matches!(def.mutability, Mutability::ReadOnly | Mutability::WriteOnly) => {
            Err(ScimError::mutability(format!(
                "attribute '{}.{}' is {} and cannot be changed",
                slot.label(),
                def.name,
                if def.mutability == Mutability::ReadOnly {
                    "readOnly"
                } else {
                    "writeOnly"
                }
            )))
        }
        Some(def) => Ok((def.name.to_string(), Some(def))),
        None => Ok((sub.to_string(), None)),
    }
}

/// Adds one element to a multi-valued attribute. An element with the same `value` and `type`
/// as an existing one is merged into it, so a repeated add creates no duplicate. A new primary
/// element takes `primary` from the others (RFC 7643 section 2.4).
pub(super) fn add_element(items: &mut Vec<Value>, element: Value) {
    if resource::is_primary(&element) {
        items.iter_mut().for_each(clear_primary);
    }
    match items.iter_mut().find(|item| same_element(item, &element)) {
        Some(Value::Object(existing)) => {
            if let Value::Object(entries) = element {
                existing.extend(entries);
            }
        }
        Some(_) => {}
        None => items.push(element),
    }
}

fn same_element(item: &Value, element: &Value) -> bool {
    match (item, element) {
        (Value::Object(a), Value::Object(b)) if a.contains_key("value") => {
            a.get("value") == b.get("value") && a.get("type") == b.get("type")
        }
        _ => item == element,
    }
}

pub(super) fn clear_primary(item: &mut Value) {
    if let Value::Object(entries) = item {
        entries.remove("primary");
    }
}

/// Returns whether `item` has every sub-attribute value of `removal` (or equals it, for simple values).
fn contains_all(item: &Value, removal: &Value) -> bool {
    match (item, removal) {
        (Value::Object(item), Value::Object(removal)) => removal
            .iter()
            .all(|(key, value)| item.get(key) == Some(value)),
        _ => item == removal,
    }
}

fn object_with(name: &str, value: Value) -> Value {
    let mut entries = Map::new();
    entries.insert(name.to_string(), value);
    Value::Object(entries)
}

pub(super) fn set_sub(item: &mut Value, sub: &str, value: Option<Value>) {
    if !item.is_object() {
        *item = Value::Object(Map::new());
    }
    let Value::Object(entries) = item else {
        return;
    };
    match value {
        Some(value) => entries.insert(sub.to_string(), value),
        None => entries.remove(sub),
    };
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::scim::error::ScimType;
    use crate::scim::patch::fixtures::{
        assert_error, patch, patch_group, patch_user, user, Members, ENTERPRISE,
    };
    use crate::scim::schema::ResourceKind;

    #[test]
    fn add_sets_simple_attribute() {
        let doc =
            patch_user(json!([{"op": "add", "path": "displayName", "value": "Ada L."}])).unwrap();
        assert_eq!(doc["displayName"], "Ada L.");
    }

    #[test]
    fn entra_add_replaces_single_valued() {
        let doc = patch_user(json!([
            {"op": "Add", "path": "title", "value": "Senior Surveyor"},
            {"op": "Add", "path": "nickName", "value": "Sully"},
        ]))
        .unwrap();
        assert_eq!(doc["title"], "Senior Surveyor");
        assert_eq!(doc["nickName"], "Sully");
    }

    #[test]
    fn add_multi_valued_is_set_union() {
        let doc = patch_user(json!([
            {"op": "add", "path": "emails", "value": [{"value": "ada@example.org", "type": "work"}]},
            {"op": "add", "path": "emails", "value": [{"value": "home@example.org", "type": "home"}]},
            {"op": "add", "path": "emails", "value": {"value": "home@example.org", "type": "home"}},
        ]))
        .unwrap();
        let expected = json!([
            {"value": "ada@example.org", "type": "work", "primary": true},
            {"value": "home@example.org", "type": "home"},
        ]);
        assert_eq!(doc["emails"], expected);
    }

    #[test]
    fn add_primary_element_clears_other_primary() {
        let doc = patch_user(json!([{"op": "add", "path": "emails",
            "value": [{"value": "home@example.org", "type": "home", "primary": true}]}]))
        .unwrap();
        let expected = json!([
            {"value": "ada@example.org", "type": "work"},
            {"value": "home@example.org", "type": "home", "primary": true},
        ]);
        assert_eq!(doc["emails"], expected);
    }

    #[test]
    fn replace_absent_attribute_adds_it() {
        let doc =
            patch_user(json!([{"op": "replace", "path": "locale", "value": "en-GB"}])).unwrap();
        assert_eq!(doc["locale"], "en-GB");
    }

    #[test]
    fn replace_multi_valued_replaces_list() {
        let value = json!([{"value": "new@example.org", "type": "home"}]);
        let doc = patch_user(json!([{"op": "replace", "path": "emails", "value": value}])).unwrap();
        assert_eq!(doc["emails"], value);
    }

    #[test]
    fn replace_complex_keeps_other_sub_attributes() {
        let doc = patch_user(
            json!([{"op": "replace", "path": "name", "value": {"givenName": "Augusta"}}]),
        )
        .unwrap();
        assert_eq!(
            doc["name"],
            json!({"givenName": "Augusta", "familyName": "Lovelace"})
        );
    }

    #[test]
    fn remove_simple_attribute() {
        let doc = patch_user(json!([
            {"op": "remove", "path": "title"},
            {"op": "remove", "path": "timezone"},
        ]))
        .unwrap();
        assert!(!doc.contains_key("title"));
        assert!(!doc.contains_key("timezone"));
    }

    #[test]
    fn remove_multi_valued_without_filter_clears() {
        let doc = patch_user(json!([{"op": "remove", "path": "emails"}])).unwrap();
        assert!(!doc.contains_key("emails"));
    }

    #[test]
    fn remove_multi_valued_by_value_list() {
        let doc = patch_user(json!([
            {"op": "add", "path": "emails", "value": [{"value": "b@example.org"}]},
            {"op": "remove", "path": "emails", "value": [{"value": "ada@example.org"}]},
        ]))
        .unwrap();
        assert_eq!(doc["emails"], json!([{"value": "b@example.org"}]));
    }

    #[test]
    fn sub_attribute_path_creates_parent() {
        let mut doc = user();
        doc.remove("name");
        let operations = json!([{"op": "replace", "path": "name.GivenName", "value": "Ada"}]);
        let patched = patch(
            ResourceKind::User,
            &doc,
            &mut Members::default(),
            operations,
        )
        .unwrap();
        assert_eq!(patched["name"], json!({"givenName": "Ada"}));
    }

    #[test]
    fn sub_attribute_remove_drops_empty_parent() {
        let doc = patch_user(json!([
            {"op": "remove", "path": "name.givenName"},
            {"op": "remove", "path": "name.familyName"},
        ]))
        .unwrap();
        assert!(!doc.contains_key("name"));
    }

    #[test]
    fn entra_string_booleans() {
        for (sent, stored) in [("False", false), ("TRUE", true), ("false", false)] {
            let doc =
                patch_user(json!([{"op": "Replace", "path": "active", "value": sent}])).unwrap();
            assert_eq!(doc["active"], json!(stored), "sent {sent}");
        }
    }

    #[test]
    fn entra_manager_bare_string() {
        let path = format!("{ENTERPRISE}:manager");
        let with_path = patch_user(json!([{"op": "add", "path": path, "value": "boss"}])).unwrap();
        let without_path =
            patch_user(json!([{"op": "replace", "value": {path.clone(): "boss"}}])).unwrap();
        assert_eq!(with_path[ENTERPRISE], json!({"manager": {"value": "boss"}}));
        assert_eq!(
            without_path[ENTERPRISE],
            json!({"manager": {"value": "boss"}})
        );
    }

    #[test]
    fn single_valued_attribute_rejects_longer_list() {
        let error = patch_user(json!([{"op": "replace", "path": "title", "value": ["a", "b"]}])).unwrap_err();
        assert_eq!(error.status, 400);
    }

    #[test]
    fn entra_clears_with_empty_and_null() {
        let mut doc = user();
        doc.insert(ENTERPRISE.to_string(), json!({"department": "Research"}));
        let operations = json!([
            {"op": "replace", "path": "title", "value": ""},
            {"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": null},
            {"op": "replace", "path": "nickName", "value": null},
            {"op": "add", "path": "name.givenName", "value": ""},
        ]);
        let patched = patch(
            ResourceKind::User,
            &doc,
            &mut Members::default(),
            operations,
        )
        .unwrap();
        for key in ["title", "nickName", ENTERPRISE] {
            assert!(!patched.contains_key(key), "{key} should be cleared");
        }
        assert_eq!(patched["name"], json!({"familyName": "Lovelace"}));
    }

    #[test]
    fn group_display_name_and_external_id_replace() {
        let mut members = Members::default();
        let doc = patch_group(
            &mut members,
            json!([
                {"op": "replace", "path": "displayName", "value": "Berth Schedulers"},
                {"op": "replace", "path": "externalId", "value": "ext-9"},
            ]),
        )
        .unwrap();
        assert_eq!(doc["displayName"], "Berth Schedulers");
        assert_eq!(doc["externalId"], "ext-9");
    }

    #[test]
    fn wrong_type_rejected() {
        let result = patch_user(json!([{"op": "replace", "path": "active", "value": "yes"}]));
        assert_error(result, ScimType::InvalidValue, "active");
    }
}
