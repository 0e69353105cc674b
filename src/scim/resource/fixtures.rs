//! Fixtures shared by the resource tests.

use serde_json::{Map, Value};

use super::parse_create;
use crate::scim::error::{ScimError, ScimType};
use crate::scim::schema::{self, ResourceKind};

pub(super) const ENTERPRISE: &str = schema::ENTERPRISE_USER_SCHEMA;

pub(super) fn create_user(body: Value) -> Result<Map<String, Value>, ScimError> {
    parse_create(ResourceKind::User, body).map(|incoming| incoming.doc)
}

pub(super) fn assert_invalid_value(result: Result<Map<String, Value>, ScimError>, mentions: &str) {
    let error = result.expect_err("the body should be rejected");
    assert_eq!(error.status, 400);
    assert_eq!(error.scim_type, Some(ScimType::InvalidValue));
    assert!(error.detail.contains(mentions), "detail: {}", error.detail);
}
