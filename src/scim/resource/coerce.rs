//! Type checks and coercions of attribute values against their definitions (RFC 7643 section
//! 2.3), including the loose forms identity providers send, and the single-primary rule.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::normalize::{is_unassigned, put_attribute, put_unknown};
use crate::scim::error::ScimError;
use crate::scim::schema::{self, AttrDef, AttrType};

/// Normalizes a value for `def`: type checks and coercions, canonical sub-attribute names,
/// unassigned values removed. Returns `None` when nothing is left.
pub fn normalize_attribute(
    def: &'static AttrDef,
    value: Value,
    label: &str,
) -> Result<Option<Value>, ScimError> {
    if def.multi_valued {
        return normalize_multi(def, value, label);
    }
    match value {
        // A one-element list for a single-valued attribute is that element; Entra ID's
        // tutorial sends `manager` as `[{"value": ...}]`.
        Value::Array(mut items) if items.len() == 1 => normalize_single(def, items.remove(0), label),
        value => normalize_single(def, value, label),
    }
}

fn normalize_multi(
    def: &'static AttrDef,
    value: Value,
    label: &str,
) -> Result<Option<Value>, ScimError> {
    let items = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    let mut out: Vec<Value> = Vec::new();
    for item in items {
        if let Some(item) = normalize_single(def, item, label)? {
            if !out.contains(&item) {
                out.push(item);
            }
        }
    }
    check_single_primary(&out, label)?;
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

/// Normalizes one value of `def`, or one element when `def` is multi-valued.
pub fn normalize_single(
    def: &'static AttrDef,
    value: Value,
    label: &str,
) -> Result<Option<Value>, ScimError> {
    if is_unassigned(&value) {
        return Ok(None);
    }
    match def.ty {
        AttrType::Complex => normalize_complex(def, value, label),
        ty => coerce_simple(ty, value, label).map(Some),
    }
}

fn normalize_complex(
    def: &'static AttrDef,
    value: Value,
    label: &str,
) -> Result<Option<Value>, ScimError> {
    let entries = match value {
        Value::Object(entries) => entries,
        // Entra sends the enterprise `manager` as a bare id; a string stands for `value`.
        Value::String(text) if schema::find_sub_attr(def, "value").is_some() => {
            let mut entries = Map::new();
            entries.insert("value".to_string(), Value::String(text));
            entries
        }
        other => return Err(type_error(label, AttrType::Complex, &other)),
    };

    let mut out = Map::new();
    for (name, value) in entries {
        match schema::find_sub_attr(def, &name) {
            Some(sub) => {
                let sub_label = format!("{label}.{}", sub.name);
                put_attribute(&mut out, sub, value, &sub_label)?;
            }
            None => put_unknown(&mut out, name, value),
        }
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}

fn coerce_simple(ty: AttrType, value: Value, label: &str) -> Result<Value, ScimError> {
    let valid = match (&ty, &value) {
        (AttrType::String | AttrType::Reference, Value::String(_)) => true,
        (AttrType::Binary, Value::String(text)) => is_base64(text),
        (AttrType::Boolean, Value::Bool(_)) => true,
        (AttrType::Boolean, Value::String(text)) => return parse_bool(text, label, &value),
        (AttrType::Integer, Value::Number(number)) => number.is_i64() || number.is_u64(),
        (AttrType::Decimal, Value::Number(_)) => true,
        (AttrType::DateTime, Value::String(text)) => OffsetDateTime::parse(text, &Rfc3339).is_ok(),
        _ => false,
    };
    if valid {
        Ok(value)
    } else {
        Err(type_error(label, ty, &value))
    }
}

/// Accepts `"true"` and `"false"` in any case, as Entra ID sends booleans.
fn parse_bool(text: &str, label: &str, value: &Value) -> Result<Value, ScimError> {
    if text.eq_ignore_ascii_case("true") {
        Ok(Value::Bool(true))
    } else if text.eq_ignore_ascii_case("false") {
        Ok(Value::Bool(false))
    } else {
        Err(type_error(label, AttrType::Boolean, value))
    }
}

/// Base64 of RFC 4648 (RFC 7643 section 2.3.6), in the standard or the URL-safe alphabet,
/// with or without padding. Whitespace is ignored because certificates often arrive wrapped
/// at 64 or 76 characters as in PEM.
fn is_base64(text: &str) -> bool {
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    use base64::engine::DecodePaddingMode;
    use base64::Engine;
    const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT).decode(&compact).is_ok()
        || GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT).decode(&compact).is_ok()
}

fn type_error(label: &str, expected: AttrType, value: &Value) -> ScimError {
    ScimError::invalid_value(format!(
        "invalid value for '{label}': expected {}, got {}",
        type_name(expected),
        json_type(value)
    ))
}

/// Returns the data type name of RFC 7643 section 2.3.
fn type_name(ty: AttrType) -> &'static str {
    match ty {
        AttrType::String => "string",
        AttrType::Boolean => "boolean",
        AttrType::Decimal => "decimal",
        AttrType::Integer => "integer",
        AttrType::DateTime => "dateTime (RFC 3339)",
        AttrType::Binary => "binary",
        AttrType::Reference => "reference",
        AttrType::Complex => "complex",
    }
}

pub(super) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Returns whether an element of a multi-valued attribute has `primary: true`.
pub fn is_primary(element: &Value) -> bool {
    element.get("primary") == Some(&Value::Bool(true))
}

/// RFC 7643 section 2.4: at most one element may be primary.
fn check_single_primary(items: &[Value], label: &str) -> Result<(), ScimError> {
    let primaries = items.iter().filter(|item| is_primary(item)).count();
    if primaries > 1 {
        return Err(ScimError::invalid_value(format!(
            "at most one element of '{label}' may have 'primary' set to true, found {primaries}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::scim::resource::fixtures::{assert_invalid_value, create_user, ENTERPRISE};

    #[test]
    fn entra_string_booleans_on_create() {
        for (sent, stored) in [
            ("True", true),
            ("false", false),
            ("TRUE", true),
            ("False", false),
        ] {
            let doc = create_user(json!({"userName": "ada", "active": sent})).unwrap();
            assert_eq!(doc["active"], json!(stored), "sent {sent}");
        }
    }

    #[test]
    fn binary_values_must_be_base64() {
        for valid in ["TUlJQ2F6Q0NB", "TUlJQ2F6Q0NBQQ==", "TUlJQ2F6Q0NBQQ", "TUlJ\nQ2F6", "-_-_"] {
            let body = json!({"userName": "ada", "x509Certificates": [{"value": valid}]});
            assert!(create_user(body).is_ok(), "{valid:?} was rejected");
        }
        for invalid in ["%%%", "not base64!", "TUlJQ2F6Q0NBQQ==="] {
            let body = json!({"userName": "ada", "x509Certificates": [{"value": invalid}]});
            assert_invalid_value(create_user(body), "x509Certificates.value");
        }
    }

    #[test]
    fn entra_manager_bare_string_on_create() {
        let doc =
            create_user(json!({"userName": "ada", ENTERPRISE: {"manager": "boss-id"}})).unwrap();
        assert_eq!(doc[ENTERPRISE]["manager"], json!({"value": "boss-id"}));
    }

    #[test]
    fn create_wraps_single_value_of_multi_valued() {
        let doc =
            create_user(json!({"userName": "ada", "emails": {"value": "a@example.org"}})).unwrap();
        assert_eq!(doc["emails"], json!([{"value": "a@example.org"}]));
    }

    #[test]
    fn create_rejects_wrong_types() {
        let cases = [
            (json!({"userName": 5}), "expected string"),
            (
                json!({"userName": "ada", "active": "yes"}),
                "expected boolean",
            ),
            (
                json!({"userName": "ada", "name": "Ada"}),
                "expected complex",
            ),
            (
                json!({"userName": "ada", "emails": [{"primary": 1}]}),
                "expected boolean",
            ),
            (
                json!({"userName": "ada", ENTERPRISE: "Research"}),
                "expected complex",
            ),
            (
                json!({"userName": "ada", "photos": [{"value": true}]}),
                "expected reference",
            ),
        ];
        for (body, expected) in cases {
            assert_invalid_value(create_user(body), expected);
        }
    }

    #[test]
    fn create_rejects_two_primaries() {
        let body = json!({"userName": "ada", "emails": [
            {"value": "a@example.org", "primary": true},
            {"value": "b@example.org", "primary": "True"},
        ]});
        assert_invalid_value(create_user(body), "primary");
    }
}
