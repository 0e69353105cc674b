//! Resolution of a PATCH path to its target: an attribute in the document, Group members, a
//! whole extension object, or an attribute that cannot change. This file also reads and writes
//! the resolved attribute in the document.

use serde_json::{Map, Value};

use super::{PatchOpKind, Patcher, Slot};
use crate::scim::error::ScimError;
use crate::scim::filter::AttrPath;
use crate::scim::resource;
use crate::scim::schema::{self, AttrDef, Mutability, ResourceKind, SchemaDef};

/// The target that a path resolves to.
pub(super) enum Target {
    /// An attribute in the document.
    Slot(Slot),
    /// Group `members`, held by the [`MemberSet`](super::MemberSet).
    Members,
    /// A whole extension object under its URN key; the schema is `None` for extensions the
    /// server does not model.
    Container(String, Option<&'static SchemaDef>),
    Id,
    ReadOnly(String),
    /// A writeOnly attribute (`password`), accepted and never stored.
    Ignored,
}

impl Patcher<'_> {
    pub(super) fn resolve(&self, attr: &AttrPath) -> Target {
        let Some(urn) = &attr.urn else {
            // The path parser returns a whole extension URN as a name without URN.
            if let Some(extension) = resource::find_extension(self.kind, &attr.name) {
                return Target::Container(extension.id.to_string(), Some(extension));
            }
            return self.resolve_core(&attr.name);
        };
        if urn.eq_ignore_ascii_case(schema::core_schema(self.kind).id) {
            return self.resolve_core(&attr.name);
        }
        if let Some(extension) = resource::find_extension(self.kind, urn) {
            return self.resolve_in_extension(extension, &attr.name);
        }

        // `urn:...:User` parses as URN `urn:...` with attribute `User`: the whole extension.
        let whole = format!("{urn}:{}", attr.name);
        if let Some(extension) = resource::find_extension(self.kind, &whole) {
            return Target::Container(extension.id.to_string(), Some(extension));
        }
        if self.doc.keys().any(|key| key.eq_ignore_ascii_case(&whole)) {
            return Target::Container(existing_key(self.doc, &whole), None);
        }
        let container = existing_key(self.doc, urn);
        let name = self.existing_name(Some(&container), &attr.name);
        Target::Slot(Slot {
            container: Some(container),
            name,
            def: None,
        })
    }

    fn resolve_core(&self, name: &str) -> Target {
        if name.eq_ignore_ascii_case("id") {
            return Target::Id;
        }
        if name.eq_ignore_ascii_case("schemas") {
            return Target::ReadOnly("schemas".to_string());
        }
        match schema::find_attr(self.kind, None, name) {
            Some(def) if self.kind == ResourceKind::Group && def.name == "members" => {
                Target::Members
            }
            Some(def) => classify(None, def),
            None => {
                if let Some(extension) = schema::extension_defining(self.kind, name) {
                    return self.resolve_in_extension(extension, name);
                }
                let name = self.existing_name(None, name);
                Target::Slot(Slot {
                    container: None,
                    name,
                    def: None,
                })
            }
        }
    }

    fn resolve_in_extension(&self, extension: &'static SchemaDef, name: &str) -> Target {
        let container = Some(extension.id.to_string());
        match schema::find_attr(self.kind, Some(extension.id), name) {
            Some(def) => classify(container, def),
            None => {
                let name = self.existing_name(container.as_deref(), name);
                Target::Slot(Slot {
                    container,
                    name,
                    def: None,
                })
            }
        }
    }

    /// Returns the stored spelling of an attribute the schema does not know, matched ignoring case, or
    /// `name` when it is not stored yet.
    fn existing_name(&self, container: Option<&str>, name: &str) -> String {
        match container_ref(self.doc, container) {
            Some(map) => existing_key(map, name),
            None => name.to_string(),
        }
    }

    /// Okta repeats the resource's own `id` in a path-less replace; only a different id is an
    /// attempt to change it.
    pub(super) fn check_id(&self, op: PatchOpKind, value: Option<&Value>) -> Result<(), ScimError> {
        let same = value.is_some_and(|value| Some(value) == self.doc.get("id"));
        if op != PatchOpKind::Remove && same {
            return Ok(());
        }
        Err(ScimError::mutability(
            "attribute 'id' is readOnly and cannot be changed",
        ))
    }

    pub(super) fn get_mut(&mut self, slot: &Slot) -> Option<&mut Value> {
        let container = match &slot.container {
            Some(key) => self.doc.get_mut(key)?.as_object_mut()?,
            None => &mut *self.doc,
        };
        container.get_mut(&slot.name)
    }

    pub(super) fn take(&mut self, slot: &Slot) -> Option<Value> {
        let container = match &slot.container {
            Some(key) => self.doc.get_mut(key)?.as_object_mut()?,
            None => &mut *self.doc,
        };
        container.remove(&slot.name)
    }

    pub(super) fn set(&mut self, slot: &Slot, value: Value) -> Result<(), ScimError> {
        let container = match &slot.container {
            Some(key) => {
                let entry = self
                    .doc
                    .entry(key.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                entry
                    .as_object_mut()
                    .ok_or_else(|| ScimError::internal("extension entry is not a JSON object"))?
            }
            None => &mut *self.doc,
        };
        container.insert(slot.name.clone(), value);
        Ok(())
    }

    pub(super) fn unset(&mut self, slot: &Slot) -> Result<(), ScimError> {
        self.take(slot);
        self.prune(slot);
        Ok(())
    }

    /// Drops an attribute left unassigned, and its extension object when that is left empty.
    pub(super) fn prune(&mut self, slot: &Slot) {
        if self
            .get_mut(slot)
            .is_some_and(|value| resource::is_unassigned(value))
        {
            self.take(slot);
        }
        if let Some(key) = &slot.container {
            if self.doc.get(key).is_some_and(resource::is_unassigned) {
                self.doc.remove(key);
            }
        }
    }
}

fn classify(container: Option<String>, def: &'static AttrDef) -> Target {
    match def.mutability {
        Mutability::ReadOnly => Target::ReadOnly(def.name.to_string()),
        Mutability::WriteOnly => Target::Ignored,
        Mutability::ReadWrite | Mutability::Immutable => Target::Slot(Slot {
            container,
            name: def.name.to_string(),
            def: Some(def),
        }),
    }
}

fn container_ref<'a>(
    doc: &'a Map<String, Value>,
    container: Option<&str>,
) -> Option<&'a Map<String, Value>> {
    match container {
        Some(key) => doc.get(key)?.as_object(),
        None => Some(doc),
    }
}

/// Returns the key of `map` equal to `name` ignoring case, or `name` itself.
pub(super) fn existing_key(map: &Map<String, Value>, name: &str) -> String {
    if map.contains_key(name) {
        return name.to_string();
    }
    map.keys()
        .find(|key| key.eq_ignore_ascii_case(name))
        .cloned()
        .unwrap_or_else(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::scim::error::ScimType;
    use crate::scim::patch::fixtures::{
        assert_error, patch, patch_group, patch_user, user, Members, ENTERPRISE,
    };
    use crate::scim::schema::{self, ResourceKind};

    #[test]
    fn extension_path_creates_extension() {
        let doc = patch_user(json!([
            {"op": "add", "path": format!("{ENTERPRISE}:department"), "value": "Research"},
            {"op": "add", "path": format!("{ENTERPRISE}:manager.value"), "value": "boss"},
        ]))
        .unwrap();
        assert_eq!(
            doc[ENTERPRISE],
            json!({"department": "Research", "manager": {"value": "boss"}})
        );
        assert_eq!(doc["schemas"], json!([schema::USER_SCHEMA, ENTERPRISE]));
    }

    #[test]
    fn empty_extension_leaves_schemas() {
        let mut doc = user();
        doc.insert(ENTERPRISE.to_string(), json!({"department": "Research"}));
        doc.insert(
            "schemas".to_string(),
            json!([schema::USER_SCHEMA, ENTERPRISE]),
        );
        let operations = json!([{"op": "remove", "path": format!("{ENTERPRISE}:department")}]);
        let patched = patch(
            ResourceKind::User,
            &doc,
            &mut Members::default(),
            operations,
        )
        .unwrap();
        assert!(!patched.contains_key(ENTERPRISE));
        assert_eq!(patched["schemas"], json!([schema::USER_SCHEMA]));
    }

    #[test]
    fn remove_whole_extension_by_urn() {
        let mut doc = user();
        doc.insert(ENTERPRISE.to_string(), json!({"department": "Research"}));
        let operations = json!([{"op": "remove", "path": ENTERPRISE}]);
        let patched = patch(
            ResourceKind::User,
            &doc,
            &mut Members::default(),
            operations,
        )
        .unwrap();
        assert!(!patched.contains_key(ENTERPRISE));
    }

    #[test]
    fn entra_tutorial_unqualified_manager_list() {
        let value = json!([{"$ref": "https://example.com/scim/v2/Users/boss", "value": "boss"}]);
        let with_path = patch_user(json!([{"op": "Add", "path": "manager", "value": value}])).unwrap();
        assert_eq!(with_path[ENTERPRISE]["manager"]["value"], "boss");
        assert!(with_path.get("manager").is_none());
        let without_path = patch_user(json!([{"op": "add", "value": {"department": "Research"}}])).unwrap();
        assert_eq!(without_path[ENTERPRISE]["department"], "Research");
        assert!(without_path.get("department").is_none());
        let removed = patch_user(json!([
            {"op": "add", "path": "manager", "value": "boss"},
            {"op": "remove", "path": "manager"}
        ]))
        .unwrap();
        assert!(removed.get(ENTERPRISE).is_none());
    }

    #[test]
    fn okta_replace_with_own_id() {
        let mut members = Members::default();
        let doc = patch_group(
            &mut members,
            json!([{"op": "replace",
            "value": {"id": "g1", "displayName": "Ops Renamed"}}]),
        )
        .unwrap();
        assert_eq!(doc["displayName"], "Ops Renamed");
        assert_eq!(doc["id"], "g1");
    }

    #[test]
    fn replace_with_other_id_rejected() {
        let mut members = Members::default();
        let result = patch_group(
            &mut members,
            json!([{"op": "replace", "value": {"id": "g2"}}]),
        );
        assert_error(result, ScimType::Mutability, "id");
    }

    #[test]
    fn read_only_attribute_rejected() {
        let result =
            patch_user(json!([{"op": "add", "path": "groups", "value": [{"value": "g1"}]}]));
        assert_error(result, ScimType::Mutability, "groups");
    }
}
