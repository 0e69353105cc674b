//! The SCIM schema table (RFC 7643 sections 2, 4, 7): every attribute of User, the enterprise
//! extension and Group. `/Schemas` renders this table, and filter, PATCH, projection and
//! validation read from it.

use serde_json::{json, Map, Value};

use super::filter::AttrPath;

use AttrType::{Binary, Boolean, DateTime, Reference};
use Mutability::{Immutable, ReadOnly, WriteOnly};

/// Attribute data types of RFC 7643 section 2.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

/// One attribute definition (RFC 7643 section 7).
#[derive(Debug)]
pub struct AttrDef {
    pub name: &'static str,
    pub ty: AttrType,
    pub multi_valued: bool,
    pub description: &'static str,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub_attributes: &'static [AttrDef],
}

/// One schema: its URN and its top-level attributes.
#[derive(Debug)]
pub struct SchemaDef {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [AttrDef],
}

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The two resource types this server provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    User,
    Group,
}

impl ResourceKind {
    /// Returns the resource type name of RFC 7643 section 6 (`User`, `Group`).
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }

    /// Returns the endpoint relative to the base URL (`/Users`, `/Groups`).
    pub fn endpoint(self) -> &'static str {
        match self {
            ResourceKind::User => "/Users",
            ResourceKind::Group => "/Groups",
        }
    }
}

const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SERVICE_PROVIDER_CONFIG_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

impl AttrDef {
    /// Creates a single-valued, optional, case-insensitive, readWrite attribute returned by
    /// default and without uniqueness: the defaults of RFC 7643 section 2.2.
    const fn new(name: &'static str, ty: AttrType, description: &'static str) -> AttrDef {
        AttrDef {
            name,
            ty,
            multi_valued: false,
            description,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: &[],
            reference_types: &[],
            sub_attributes: &[],
        }
    }

    const fn string(name: &'static str, description: &'static str) -> AttrDef {
        AttrDef::new(name, AttrType::String, description)
    }

    const fn multi(mut self) -> AttrDef {
        self.multi_valued = true;
        self
    }

    const fn required(mut self) -> AttrDef {
        self.required = true;
        self
    }

    const fn case_exact(mut self) -> AttrDef {
        self.case_exact = true;
        self
    }

    const fn mutability(mut self, mutability: Mutability) -> AttrDef {
        self.mutability = mutability;
        self
    }

    const fn returned(mut self, returned: Returned) -> AttrDef {
        self.returned = returned;
        self
    }

    const fn uniqueness(mut self, uniqueness: Uniqueness) -> AttrDef {
        self.uniqueness = uniqueness;
        self
    }

    const fn canonical(mut self, values: &'static [&'static str]) -> AttrDef {
        self.canonical_values = values;
        self
    }

    const fn references(mut self, types: &'static [&'static str]) -> AttrDef {
        self.reference_types = types;
        self
    }

    const fn complex(
        name: &'static str,
        description: &'static str,
        sub: &'static [AttrDef],
    ) -> AttrDef {
        let mut attr = AttrDef::new(name, AttrType::Complex, description);
        attr.sub_attributes = sub;
        attr
    }
}

/// Attributes that every resource carries (RFC 7643 section 3.1).
pub static COMMON_ATTRIBUTES: &[AttrDef] = &[
    AttrDef::string(
        "id",
        "Identifier that the service provider assigns to the resource.",
    )
    .case_exact()
    .mutability(ReadOnly)
    .returned(Returned::Always)
    .uniqueness(Uniqueness::Server),
    AttrDef::string(
        "externalId",
        "Identifier of the resource in the provisioning client.",
    )
    .case_exact(),
    AttrDef::complex("meta", "Resource metadata.", META_SUB).mutability(ReadOnly),
];

static META_SUB: &[AttrDef] = &[
    AttrDef::string("resourceType", "Name of the resource type of the resource.")
        .case_exact()
        .mutability(ReadOnly),
    AttrDef::new(
        "created",
        DateTime,
        "When the resource was added to the service provider.",
    )
    .mutability(ReadOnly),
    AttrDef::new(
        "lastModified",
        DateTime,
        "When the resource was last updated.",
    )
    .mutability(ReadOnly),
    AttrDef::new("location", Reference, "URI of the resource.")
        .case_exact()
        .mutability(ReadOnly)
        .references(&["uri"]),
    AttrDef::string("version", "Version of the resource, sent as the ETag.")
        .case_exact()
        .mutability(ReadOnly),
];

/// The core User schema (RFC 7643 sections 4.1 and 8.7.1).
pub static USER: SchemaDef = SchemaDef {
    id: USER_SCHEMA,
    name: "User",
    description: "User Account",
    attributes: USER_ATTRIBUTES,
};

static USER_ATTRIBUTES: &[AttrDef] = &[
    AttrDef::string(
        "userName",
        "Unique identifier of the user, used to sign in.",
    )
    .required()
    .uniqueness(Uniqueness::Server),
    AttrDef::complex("name", "Components of the user's real name.", NAME_SUB),
    AttrDef::string(
        "displayName",
        "Name of the user, suitable for display to end-users.",
    ),
    AttrDef::string("nickName", "Casual way to address the user."),
    AttrDef::new("profileUrl", Reference, "URL of the user's online profile.")
        .references(&["external"]),
    AttrDef::string("title", "The user's title, such as \"Vice President\"."),
    AttrDef::string(
        "userType",
        "Relationship between the organization and the user.",
    ),
    AttrDef::string(
        "preferredLanguage",
        "Preferred written or spoken language (RFC 7231).",
    ),
    AttrDef::string(
        "locale",
        "Default location for localizing dates, numbers and currency.",
    ),
    AttrDef::string("timezone", "Time zone in IANA Time Zone database format."),
    AttrDef::new("active", Boolean, "Administrative status of the user."),
    AttrDef::string("password", "Clear-text password, only ever written.")
        .mutability(WriteOnly)
        .returned(Returned::Never),
    AttrDef::complex("emails", "Email addresses of the user.", EMAILS_SUB).multi(),
    AttrDef::complex(
        "phoneNumbers",
        "Phone numbers of the user.",
        PHONE_NUMBERS_SUB,
    )
    .multi(),
    AttrDef::complex("ims", "Instant messaging addresses of the user.", IMS_SUB).multi(),
    AttrDef::complex("photos", "URLs of photos of the user.", PHOTOS_SUB).multi(),
    AttrDef::complex(
        "addresses",
        "Physical mailing addresses of the user.",
        ADDRESSES_SUB,
    )
    .multi(),
    AttrDef::complex("groups", "Groups the user belongs to.", USER_GROUPS_SUB)
        .multi()
        .mutability(ReadOnly),
    AttrDef::complex(
        "entitlements",
        "Entitlements of the user.",
        ENTITLEMENTS_SUB,
    )
    .multi(),
    AttrDef::complex("roles", "Roles of the user.", ROLES_SUB).multi(),
    AttrDef::complex(
        "x509Certificates",
        "X.509 certificates of the user.",
        CERTIFICATES_SUB,
    )
    .multi(),
];

static NAME_SUB: &[AttrDef] = &[
    AttrDef::string("formatted", "Full name, formatted for display."),
    AttrDef::string(
        "familyName",
        "Family name, or last name in most Western languages.",
    ),
    AttrDef::string(
        "givenName",
        "Given name, or first name in most Western languages.",
    ),
    AttrDef::string("middleName", "Middle name."),
    AttrDef::string("honorificPrefix", "Honorific prefix, such as \"Ms.\"."),
    AttrDef::string("honorificSuffix", "Honorific suffix, such as \"III\"."),
];

const fn display_sub() -> AttrDef {
    AttrDef::string("display", "Human-readable name, used for display only.")
}

const fn primary_sub() -> AttrDef {
    AttrDef::new(
        "primary",
        Boolean,
        "Whether this is the primary value of the attribute.",
    )
}

const fn type_sub(canonical: &'static [&'static str]) -> AttrDef {
    AttrDef::string("type", "Label for the function of this value.").canonical(canonical)
}

static EMAILS_SUB: &[AttrDef] = &[
    AttrDef::string("value", "Email address."),
    display_sub(),
    type_sub(&["work", "home", "other"]),
    primary_sub(),
];

static PHONE_NUMBERS_SUB: &[AttrDef] = &[
    AttrDef::string("value", "Phone number."),
    display_sub(),
    type_sub(&["work", "home", "mobile", "fax", "pager", "other"]),
    primary_sub(),
];

static IMS_SUB: &[AttrDef] = &[
    AttrDef::string("value", "Instant messaging address."),
    display_sub(),
    type_sub(&["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]),
    primary_sub(),
];

static PHOTOS_SUB: &[AttrDef] = &[
    AttrDef::new("value", Reference, "URL of a photo.").references(&["external"]),
    display_sub(),
    type_sub(&["photo", "thumbnail"]),
    primary_sub(),
];

static ADDRESSES_SUB: &[AttrDef] = &[
    AttrDef::string("formatted", "Full mailing address, formatted for display."),
    AttrDef::string(
        "streetAddress",
        "Street address, possibly with several lines.",
    ),
    AttrDef::string("locality", "City or locality."),
    AttrDef::string("region", "State or region."),
    AttrDef::string("postalCode", "Postal code."),
    AttrDef::string("country", "Country, as an ISO 3166-1 alpha-2 code."),
    type_sub(&["work", "home", "other"]),
    primary_sub(),
];

static USER_GROUPS_SUB: &[AttrDef] = &[
    AttrDef::string("value", "Identifier of the group.").mutability(ReadOnly),
    AttrDef::new("$ref", Reference, "URI of the group.")
        .mutability(ReadOnly)
        .references(&["User", "Group"]),
    display_sub().mutability(ReadOnly),
    type_sub(&["direct", "indirect"]).mutability(ReadOnly),
];

static ENTITLEMENTS_SUB: &[AttrDef] = &[
    AttrDef::string("value", "Entitlement."),
    display_sub(),
    type_sub(&[]),
    primary_sub(),
];

static ROLES_SUB: &[AttrDef] = &[
    AttrDef::string("value", "Role."),
    display_sub(),
    type_sub(&[]),
    primary_sub(),
];

static CERTIFICATES_SUB: &[AttrDef] = &[
    AttrDef::new("value", Binary, "DER-encoded X.509 certificate, in base64.").case_exact(),
    display_sub(),
    type_sub(&[]),
    primary_sub(),
];

/// The enterprise User extension (RFC 7643 sections 4.3 and 8.7.1).
pub static ENTERPRISE_USER: SchemaDef = SchemaDef {
    id: ENTERPRISE_USER_SCHEMA,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: ENTERPRISE_USER_ATTRIBUTES,
};

static ENTERPRISE_USER_ATTRIBUTES: &[AttrDef] = &[
    AttrDef::string(
        "employeeNumber",
        "Identifier of the user within the organization.",
    ),
    AttrDef::string("costCenter", "Name of a cost center."),
    AttrDef::string("organization", "Name of an organization."),
    AttrDef::string("division", "Name of a division."),
    AttrDef::string("department", "Name of a department."),
    AttrDef::complex("manager", "The user's manager.", MANAGER_SUB),
];

static MANAGER_SUB: &[AttrDef] = &[
    AttrDef::string("value", "Identifier of the manager's User resource."),
    AttrDef::new("$ref", Reference, "URI of the manager's User resource.").references(&["User"]),
    AttrDef::string("displayName", "Display name of the manager.").mutability(ReadOnly),
];

/// The core Group schema (RFC 7643 sections 4.2 and 8.7.1). `displayName` is required and
/// unique here, because external groups are matched to permissions by display name.
pub static GROUP: SchemaDef = SchemaDef {
    id: GROUP_SCHEMA,
    name: "Group",
    description: "Group",
    attributes: GROUP_ATTRIBUTES,
};

static GROUP_ATTRIBUTES: &[AttrDef] = &[
    AttrDef::string("displayName", "Human-readable name of the group.")
        .required()
        .uniqueness(Uniqueness::Server),
    AttrDef::complex("members", "Members of the group.", MEMBERS_SUB).multi(),
];

static MEMBERS_SUB: &[AttrDef] = &[
    AttrDef::string("value", "Identifier of the member resource.").mutability(Immutable),
    AttrDef::new("$ref", Reference, "URI of the member resource.")
        .mutability(Immutable)
        .references(&["User", "Group"]),
    AttrDef::string("type", "Resource type of the member.")
        .mutability(Immutable)
        .canonical(&["User", "Group"]),
    AttrDef::string("display", "Display name of the member.").mutability(ReadOnly),
];

static ALL_SCHEMAS: [&SchemaDef; 3] = [&USER, &ENTERPRISE_USER, &GROUP];
static USER_EXTENSIONS: [&SchemaDef; 1] = [&ENTERPRISE_USER];

/// Returns the core schema of a resource type.
pub fn core_schema(kind: ResourceKind) -> &'static SchemaDef {
    match kind {
        ResourceKind::User => &USER,
        ResourceKind::Group => &GROUP,
    }
}

/// Returns the schema extensions a resource type accepts.
pub fn extensions(kind: ResourceKind) -> &'static [&'static SchemaDef] {
    match kind {
        ResourceKind::User => &USER_EXTENSIONS,
        ResourceKind::Group => &[],
    }
}

/// Finds the core schema or an extension of `kind` by URN, ignoring case.
pub fn schema_by_urn(kind: ResourceKind, urn: &str) -> Option<&'static SchemaDef> {
    let core = core_schema(kind);
    if core.id.eq_ignore_ascii_case(urn) {
        return Some(core);
    }
    extensions(kind)
        .iter()
        .copied()
        .find(|schema| schema.id.eq_ignore_ascii_case(urn))
}

/// The one extension of `kind` that defines `name` (ignoring case), for an attribute a
/// client sends without its URN although the core schema does not define it. Entra ID's
/// tutorial, for one, sends the enterprise `manager` as a bare `manager` path. None when no
/// extension or more than one defines the name.
pub fn extension_defining(kind: ResourceKind, name: &str) -> Option<&'static SchemaDef> {
    if find_attr(kind, None, name).is_some() {
        return None;
    }
    let mut defining = extensions(kind)
        .iter()
        .copied()
        .filter(|extension| find_attr(kind, Some(extension.id), name).is_some());
    let first = defining.next()?;
    defining.next().is_none().then_some(first)
}

/// Finds a top-level attribute, ignoring case. Without a URN or with the core URN, the core
/// schema is searched first and then the common attributes. An extension URN searches that
/// extension only.
pub fn find_attr(kind: ResourceKind, urn: Option<&str>, name: &str) -> Option<&'static AttrDef> {
    let schema = match urn {
        None => core_schema(kind),
        Some(urn) => schema_by_urn(kind, urn)?,
    };
    let found = find_in(schema.attributes, name);
    if found.is_some() || !std::ptr::eq(schema, core_schema(kind)) {
        return found;
    }
    find_in(COMMON_ATTRIBUTES, name)
}

/// Finds a sub-attribute of a complex attribute, ignoring case.
pub fn find_sub_attr(attr: &AttrDef, name: &str) -> Option<&'static AttrDef> {
    find_in(attr.sub_attributes, name)
}

/// Finds the definition an attribute path names: the sub-attribute when the path has one.
/// An unqualified name that only an extension defines resolves in that extension.
pub fn resolve(kind: ResourceKind, path: &AttrPath) -> Option<&'static AttrDef> {
    let urn = match &path.urn {
        None => extension_defining(kind, &path.name).map(|extension| extension.id),
        Some(urn) => Some(urn.as_str()),
    };
    let attr = find_attr(kind, urn, &path.name)?;
    match &path.sub_attr {
        Some(sub) => find_sub_attr(attr, sub),
        None => Some(attr),
    }
}

fn find_in(attributes: &'static [AttrDef], name: &str) -> Option<&'static AttrDef> {
    attributes
        .iter()
        .find(|attr| attr.name.eq_ignore_ascii_case(name))
}

/// Renders the `/Schemas` response: a ListResponse of every schema (RFC 7644 section 4).
pub fn schemas_json(base_url: &str) -> Value {
    let resources = ALL_SCHEMAS
        .iter()
        .map(|schema| render_schema(schema, base_url))
        .collect();
    list_response(resources)
}

/// Renders the `/Schemas/{urn}` response, or None for an unknown URN.
pub fn schema_json(urn: &str, base_url: &str) -> Option<Value> {
    ALL_SCHEMAS
        .iter()
        .find(|schema| schema.id.eq_ignore_ascii_case(urn))
        .map(|schema| render_schema(schema, base_url))
}

/// Renders the `/ResourceTypes` response: a ListResponse of User and Group.
pub fn resource_types_json(base_url: &str) -> Value {
    let resources = [ResourceKind::User, ResourceKind::Group]
        .into_iter()
        .map(|kind| render_resource_type(kind, base_url))
        .collect();
    list_response(resources)
}

/// Renders the `/ResourceTypes/{name}` response, or None when `name` is neither User nor Group.
pub fn resource_type_json(name: &str, base_url: &str) -> Option<Value> {
    [ResourceKind::User, ResourceKind::Group]
        .into_iter()
        .find(|kind| kind.name().eq_ignore_ascii_case(name))
        .map(|kind| render_resource_type(kind, base_url))
}

/// Renders the `/ServiceProviderConfig` response (RFC 7643 section 5).
///
/// NOTE: `max_payload_bytes` is not rendered, because the only payload limit in this document
/// is `bulk.maxPayloadSize` and bulk is not supported, so that field is 0.
pub fn service_provider_config_json(
    base_url: &str,
    max_results: usize,
    max_payload_bytes: usize,
) -> Value {
    let _ = max_payload_bytes;
    json!({
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": max_results },
        "changePassword": { "supported": false },
        "sort": { "supported": true },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with a bearer token in the Authorization header.",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{}/ServiceProviderConfig", trim_base(base_url)),
        },
    })
}

fn trim_base(base_url: &str) -> &str {
    base_url.trim_end_matches('/')
}

fn list_response(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": resources.len(),
        "itemsPerPage": resources.len(),
        "startIndex": 1,
        "Resources": resources,
    })
}

fn render_schema(schema: &SchemaDef, base_url: &str) -> Value {
    let attributes: Vec<Value> = schema.attributes.iter().map(render_attr).collect();
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": schema.id,
        "name": schema.name,
        "description": schema.description,
        "attributes": attributes,
        "meta": {
            "resourceType": "Schema",
            "location": format!("{}/Schemas/{}", trim_base(base_url), schema.id),
        },
    })
}

fn render_resource_type(kind: ResourceKind, base_url: &str) -> Value {
    let core = core_schema(kind);
    let extensions: Vec<Value> = extensions(kind)
        .iter()
        .map(|schema| json!({ "schema": schema.id, "required": false }))
        .collect();
    let mut body = json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": kind.name(),
        "name": kind.name(),
        "endpoint": kind.endpoint(),
        "description": core.description,
        "schema": core.id,
    });
    if !extensions.is_empty() {
        body["schemaExtensions"] = Value::Array(extensions);
    }
    body["meta"] = json!({
        "resourceType": "ResourceType",
        "location": format!("{}/ResourceTypes/{}", trim_base(base_url), kind.name()),
    });
    body
}

/// Renders one attribute in the form of RFC 7643 section 7.
fn render_attr(attr: &AttrDef) -> Value {
    let mut body = Map::new();
    body.insert("name".into(), attr.name.into());
    body.insert("type".into(), attr.ty.as_str().into());
    body.insert("multiValued".into(), attr.multi_valued.into());
    body.insert("description".into(), attr.description.into());
    body.insert("required".into(), attr.required.into());
    body.insert("caseExact".into(), attr.case_exact.into());
    body.insert("mutability".into(), attr.mutability.as_str().into());
    body.insert("returned".into(), attr.returned.as_str().into());
    body.insert("uniqueness".into(), attr.uniqueness.as_str().into());

    if !attr.canonical_values.is_empty() {
        body.insert("canonicalValues".into(), attr.canonical_values.into());
    }
    if attr.ty == AttrType::Reference {
        body.insert("referenceTypes".into(), attr.reference_types.into());
    }
    if attr.ty == AttrType::Complex {
        let sub: Vec<Value> = attr.sub_attributes.iter().map(render_attr).collect();
        body.insert("subAttributes".into(), sub.into());
    }
    Value::Object(body)
}

impl AttrType {
    /// Returns the spelling of RFC 7643 section 7.
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Decimal => "decimal",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Binary => "binary",
            AttrType::Reference => "reference",
            AttrType::Complex => "complex",
        }
    }
}

impl Mutability {
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

impl Returned {
    pub fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        }
    }
}

impl Uniqueness {
    pub fn as_str(self) -> &'static str {
        match self {
            Uniqueness::None => "none",
            Uniqueness::Server => "server",
            Uniqueness::Global => "global",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(urn: Option<&str>, name: &str, sub_attr: Option<&str>) -> AttrPath {
        AttrPath {
            urn: urn.map(str::to_string),
            name: name.to_string(),
            sub_attr: sub_attr.map(str::to_string),
        }
    }

    #[test]
    fn find_attr_by_urn_and_case() {
        let cases = [
            (ResourceKind::User, None, "USERNAME", Some("userName")),
            (ResourceKind::User, None, "id", Some("id")),
            (ResourceKind::User, None, "Meta", Some("meta")),
            (
                ResourceKind::User,
                Some(USER_SCHEMA),
                "emails",
                Some("emails"),
            ),
            (
                ResourceKind::User,
                Some(USER_SCHEMA),
                "externalId",
                Some("externalId"),
            ),
            (
                ResourceKind::User,
                Some("URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER"),
                "title",
                Some("title"),
            ),
            (
                ResourceKind::User,
                Some(ENTERPRISE_USER_SCHEMA),
                "employeeNumber",
                Some("employeeNumber"),
            ),
            (
                ResourceKind::User,
                Some(ENTERPRISE_USER_SCHEMA),
                "userName",
                None,
            ),
            (ResourceKind::User, Some(ENTERPRISE_USER_SCHEMA), "id", None),
            (ResourceKind::User, None, "employeeNumber", None),
            (ResourceKind::User, Some(GROUP_SCHEMA), "displayName", None),
            (
                ResourceKind::User,
                Some("urn:example:unknown"),
                "title",
                None,
            ),
            (ResourceKind::Group, None, "members", Some("members")),
            (
                ResourceKind::Group,
                None,
                "DISPLAYNAME",
                Some("displayName"),
            ),
            (
                ResourceKind::Group,
                Some(ENTERPRISE_USER_SCHEMA),
                "department",
                None,
            ),
            (ResourceKind::Group, None, "userName", None),
        ];

        for (kind, urn, name, expected) in cases {
            let found = find_attr(kind, urn, name).map(|attr| attr.name);
            assert_eq!(found, expected, "{kind:?} {urn:?} {name}");
        }
    }

    #[test]
    fn resolve_sub_attributes() {
        let cases = [
            (
                ResourceKind::User,
                path(None, "name", Some("FAMILYNAME")),
                Some("familyName"),
            ),
            (
                ResourceKind::User,
                path(None, "emails", Some("type")),
                Some("type"),
            ),
            (
                ResourceKind::User,
                path(None, "meta", Some("lastModified")),
                Some("lastModified"),
            ),
            (
                ResourceKind::User,
                path(None, "groups", Some("$ref")),
                Some("$ref"),
            ),
            (
                ResourceKind::User,
                path(Some(ENTERPRISE_USER_SCHEMA), "manager", Some("value")),
                Some("value"),
            ),
            (ResourceKind::User, path(None, "name", Some("nope")), None),
            (ResourceKind::User, path(None, "title", Some("value")), None),
            (
                ResourceKind::Group,
                path(None, "members", Some("display")),
                Some("display"),
            ),
        ];

        for (kind, path, expected) in cases {
            let found = resolve(kind, &path).map(|attr| attr.name);
            assert_eq!(found, expected, "{kind:?} {path}");
        }
    }

    #[test]
    fn table_characteristics() {
        let user_name = find_attr(ResourceKind::User, None, "userName").unwrap();
        assert!(user_name.required);
        assert!(!user_name.case_exact);
        assert_eq!(user_name.uniqueness, Uniqueness::Server);

        let password = find_attr(ResourceKind::User, None, "password").unwrap();
        assert_eq!(password.mutability, Mutability::WriteOnly);
        assert_eq!(password.returned, Returned::Never);

        let id = find_attr(ResourceKind::User, None, "id").unwrap();
        assert!(id.case_exact);
        assert_eq!(id.returned, Returned::Always);
        assert_eq!(id.mutability, Mutability::ReadOnly);

        let groups = find_attr(ResourceKind::User, None, "groups").unwrap();
        assert_eq!(groups.mutability, Mutability::ReadOnly);
        assert!(groups.multi_valued);

        let display_name = find_attr(ResourceKind::Group, None, "displayName").unwrap();
        assert!(display_name.required);
        assert_eq!(display_name.uniqueness, Uniqueness::Server);

        let members = find_attr(ResourceKind::Group, None, "members").unwrap();
        let member_type = find_sub_attr(members, "type").unwrap();
        assert_eq!(member_type.mutability, Mutability::Immutable);
        assert_eq!(member_type.canonical_values, ["User", "Group"]);
        let member_display = find_sub_attr(members, "display").unwrap();
        assert_eq!(member_display.mutability, Mutability::ReadOnly);

        let active = find_attr(ResourceKind::User, None, "active").unwrap();
        assert_eq!(active.ty, AttrType::Boolean);
        let created = resolve(ResourceKind::User, &path(None, "meta", Some("created"))).unwrap();
        assert_eq!(created.ty, AttrType::DateTime);
    }

    #[test]
    fn table_is_consistent() {
        let schemas = ALL_SCHEMAS.iter().map(|schema| schema.attributes);
        for attributes in schemas.chain([COMMON_ATTRIBUTES]) {
            check_attributes(attributes);
        }
    }

    /// Names are unique per level, complex attributes have sub-attributes and only they do,
    /// and every reference lists its reference types.
    fn check_attributes(attributes: &[AttrDef]) {
        for (index, attr) in attributes.iter().enumerate() {
            let duplicate = attributes[index + 1..]
                .iter()
                .any(|other| other.name.eq_ignore_ascii_case(attr.name));
            assert!(!duplicate, "duplicate attribute {}", attr.name);
            assert_eq!(
                attr.ty == AttrType::Complex,
                !attr.sub_attributes.is_empty(),
                "{}",
                attr.name
            );
            if attr.ty == AttrType::Reference {
                assert!(
                    !attr.reference_types.is_empty(),
                    "{} has no referenceTypes",
                    attr.name
                );
            }
            check_attributes(attr.sub_attributes);
        }
    }

    #[test]
    fn user_schema_lists_rfc_attributes() {
        let names: Vec<&str> = USER.attributes.iter().map(|attr| attr.name).collect();
        let expected = [
            "userName",
            "name",
            "displayName",
            "nickName",
            "profileUrl",
            "title",
            "userType",
            "preferredLanguage",
            "locale",
            "timezone",
            "active",
            "password",
            "emails",
            "phoneNumbers",
            "ims",
            "photos",
            "addresses",
            "groups",
            "entitlements",
            "roles",
            "x509Certificates",
        ];
        assert_eq!(names, expected);

        let enterprise: Vec<&str> = ENTERPRISE_USER
            .attributes
            .iter()
            .map(|attr| attr.name)
            .collect();
        let expected = [
            "employeeNumber",
            "costCenter",
            "organization",
            "division",
            "department",
            "manager",
        ];
        assert_eq!(enterprise, expected);
    }

    #[test]
    fn schema_lookup_by_urn() {
        assert!(std::ptr::eq(core_schema(ResourceKind::Group), &GROUP));
        assert_eq!(extensions(ResourceKind::User).len(), 1);
        assert!(extensions(ResourceKind::Group).is_empty());

        let found = schema_by_urn(ResourceKind::User, &ENTERPRISE_USER_SCHEMA.to_uppercase());
        assert_eq!(found.map(|schema| schema.name), Some("EnterpriseUser"));
        assert!(schema_by_urn(ResourceKind::Group, ENTERPRISE_USER_SCHEMA).is_none());
    }

    #[test]
    fn schemas_render_as_list() {
        let list = schemas_json("https://idp.example/scim/v2/");
        assert_eq!(list["totalResults"], 3);
        assert_eq!(list["Resources"][0]["id"], USER_SCHEMA);
        assert_eq!(
            list["Resources"][1]["meta"]["location"],
            format!("https://idp.example/scim/v2/Schemas/{ENTERPRISE_USER_SCHEMA}")
        );
        assert_eq!(list["Resources"][2]["meta"]["resourceType"], "Schema");
    }

    #[test]
    fn schema_renders_attribute_characteristics() {
        let user = schema_json(USER_SCHEMA, "https://h/scim/v2").unwrap();
        let attributes = user["attributes"].as_array().unwrap();
        let find = |name: &str| attributes.iter().find(|attr| attr["name"] == name).unwrap();

        let user_name = find("userName");
        assert_eq!(user_name["type"], "string");
        assert_eq!(user_name["required"], true);
        assert_eq!(user_name["caseExact"], false);
        assert_eq!(user_name["mutability"], "readWrite");
        assert_eq!(user_name["returned"], "default");
        assert_eq!(user_name["uniqueness"], "server");
        assert!(user_name.get("subAttributes").is_none());
        assert!(user_name.get("canonicalValues").is_none());

        let password = find("password");
        assert_eq!(password["mutability"], "writeOnly");
        assert_eq!(password["returned"], "never");

        let emails = find("emails");
        assert_eq!(emails["type"], "complex");
        assert_eq!(emails["multiValued"], true);
        let email_type = &emails["subAttributes"][2];
        assert_eq!(email_type["name"], "type");
        assert_eq!(
            email_type["canonicalValues"],
            serde_json::json!(["work", "home", "other"])
        );

        let profile_url = find("profileUrl");
        assert_eq!(profile_url["type"], "reference");
        assert_eq!(
            profile_url["referenceTypes"],
            serde_json::json!(["external"])
        );

        assert_eq!(find("active")["type"], "boolean");
        assert_eq!(
            find("x509Certificates")["subAttributes"][0]["type"],
            "binary"
        );
        assert_eq!(
            user["meta"]["location"],
            format!("https://h/scim/v2/Schemas/{USER_SCHEMA}")
        );
    }

    #[test]
    fn schema_json_unknown_urn() {
        assert!(schema_json("urn:example:nothing", "https://h").is_none());
        assert!(schema_json(&GROUP_SCHEMA.to_lowercase(), "https://h").is_some());
    }

    #[test]
    fn resource_types_render() {
        let list = resource_types_json("https://h/scim/v2");
        assert_eq!(list["totalResults"], 2);

        let user = resource_type_json("user", "https://h/scim/v2").unwrap();
        assert_eq!(user["endpoint"], "/Users");
        assert_eq!(user["schema"], USER_SCHEMA);
        assert_eq!(
            user["schemaExtensions"][0]["schema"],
            ENTERPRISE_USER_SCHEMA
        );
        assert_eq!(user["schemaExtensions"][0]["required"], false);
        assert_eq!(
            user["meta"]["location"],
            "https://h/scim/v2/ResourceTypes/User"
        );

        let group = resource_type_json("Group", "https://h/scim/v2").unwrap();
        assert_eq!(group["endpoint"], "/Groups");
        assert!(group.get("schemaExtensions").is_none());
        assert!(resource_type_json("Device", "https://h").is_none());
    }

    #[test]
    fn service_provider_config_renders() {
        let config = service_provider_config_json("https://h/scim/v2", 200, 1_048_576);
        assert_eq!(config["patch"]["supported"], true);
        assert_eq!(config["bulk"]["supported"], false);
        assert_eq!(config["bulk"]["maxOperations"], 0);
        assert_eq!(config["bulk"]["maxPayloadSize"], 0);
        assert_eq!(config["filter"]["supported"], true);
        assert_eq!(config["filter"]["maxResults"], 200);
        assert_eq!(config["changePassword"]["supported"], false);
        assert_eq!(config["sort"]["supported"], true);
        assert_eq!(config["etag"]["supported"], true);
        assert_eq!(
            config["authenticationSchemes"][0]["type"],
            "oauthbearertoken"
        );
        assert_eq!(config["authenticationSchemes"][0]["primary"], true);
        assert_eq!(config["meta"]["resourceType"], "ServiceProviderConfig");
        assert_eq!(
            config["meta"]["location"],
            "https://h/scim/v2/ServiceProviderConfig"
        );
    }
}
