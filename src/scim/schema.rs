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
pub const ENTERPRISE_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The two resource types this server provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    User,
    Group,
}

impl ResourceKind {
    /// The resource type name of RFC 7643 section 6 (`User`, `Group`).
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }

    /// The endpoint relative to the base URL (`/Users`, `/Groups`).
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
    /// A single-valued, optional, case-insensitive, readWrite attribute returned by default and
    /// without uniqueness: the defaults of RFC 7643 section 2.2.
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

    const fn complex(name: &'static str, description: &'static str, sub: &'static [AttrDef]) -> AttrDef {
        let mut attr = AttrDef::new(name, AttrType::Complex, description);
        attr.sub_attributes = sub;
        attr
    }
}

/// Attributes that every resource carries (RFC 7643 section 3.1).
pub static COMMON_ATTRIBUTES: &[AttrDef] = &[
    AttrDef::string("id", "Identifier that the service provider assigns to the resource.")
        .case_exact()
        .mutability(ReadOnly)
        .returned(Returned::Always)
        .uniqueness(Uniqueness::Server),
    AttrDef::string("externalId", "Identifier of the resource in the provisioning client.")
        .case_exact(),
    AttrDef::complex("meta", "Resource metadata.", META_SUB).mutability(ReadOnly),
];

static META_SUB: &[AttrDef] = &[
    AttrDef::string("resourceType", "Name of the resource type of the resource.")
        .case_exact()
        .mutability(ReadOnly),
    AttrDef::new("created", DateTime, "When the resource was added to the service provider.")
        .mutability(ReadOnly),
    AttrDef::new("lastModified", DateTime, "When the resource was last updated.")
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
    AttrDef::string("userName", "Unique identifier of the user, used to sign in.")
        .required()
        .uniqueness(Uniqueness::Server),
    AttrDef::complex("name", "Components of the user's real name.", NAME_SUB),
    AttrDef::string("displayName", "Name of the user, suitable for display to end-users."),
    AttrDef::string("nickName", "Casual way to address the user."),
    AttrDef::new("profileUrl", Reference, "URL of the user's online profile.")
        .references(&["external"]),
    AttrDef::string("title", "The user's title, such as \"Vice President\"."),
    AttrDef::string("userType", "Relationship between the organization and the user."),
    AttrDef::string("preferredLanguage", "Preferred written or spoken language (RFC 7231)."),
    AttrDef::string("locale", "Default location for localizing dates, numbers and currency."),
    AttrDef::string("timezone", "Time zone in IANA Time Zone database format."),
    AttrDef::new("active", Boolean, "Administrative status of the user."),
    AttrDef::string("password", "Clear-text password, only ever written.")
        .mutability(WriteOnly)
        .returned(Returned::Never),
    AttrDef::complex("emails", "Email addresses of the user.", EMAILS_SUB).multi(),
    AttrDef::complex("phoneNumbers", "Phone numbers of the user.", PHONE_NUMBERS_SUB).multi(),
    AttrDef::complex("ims", "Instant messaging addresses of the user.", IMS_SUB).multi(),
    AttrDef::complex("photos", "URLs of photos of the user.", PHOTOS_SUB).multi(),
    AttrDef::complex("addresses", "Physical mailing addresses of the user.", ADDRESSES_SUB)
        .multi(),
    AttrDef::complex("groups", "Groups the user belongs to.", USER_GROUPS_SUB)
        .multi()
        .mutability(ReadOnly),
    AttrDef::complex("entitlements", "Entitlements of the user.", ENTITLEMENTS_SUB).multi(),
    AttrDef::complex("roles", "Roles of the user.", ROLES_SUB).multi(),
    AttrDef::complex("x509Certificates", "X.509 certificates of the user.", CERTIFICATES_SUB)
        .multi(),
];

static NAME_SUB: &[AttrDef] = &[
    AttrDef::string("formatted", "Full name, formatted for display."),
    AttrDef::string("familyName", "Family name, or last name in most Western languages."),
    AttrDef::string("givenName", "Given name, or first name in most Western languages."),
    AttrDef::string("middleName", "Middle name."),
    AttrDef::string("honorificPrefix", "Honorific prefix, such as \"Ms.\"."),
    AttrDef::string("honorificSuffix", "Honorific suffix, such as \"III\"."),
];

const fn display_sub() -> AttrDef {
    AttrDef::string("display", "Human-readable name, used for display only.")
}

const fn primary_sub() -> AttrDef {
    AttrDef::new("primary", Boolean, "Whether this is the primary value of the attribute.")
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
    AttrDef::string("streetAddress", "Street address, possibly with several lines."),
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
    AttrDef::string("employeeNumber", "Identifier of the user within the organization."),
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

/// The core schema of a resource type.
pub fn core_schema(kind: ResourceKind) -> &'static SchemaDef {
    match kind {
        ResourceKind::User => &USER,
        ResourceKind::Group => &GROUP,
    }
}

/// The schema extensions a resource type accepts.
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

/// Finds a top-level attribute, ignoring case. Without a URN the core schema and then the
/// common attributes are searched; the core URN searches the same two; an extension URN
/// searches that extension only.
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
pub fn resolve(kind: ResourceKind, path: &AttrPath) -> Option<&'static AttrDef> {
    let attr = find_attr(kind, path.urn.as_deref(), &path.name)?;
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

/// The `/Schemas` response: a ListResponse of every schema (RFC 7644 section 4).
pub fn schemas_json(base_url: &str) -> Value {
    let resources = ALL_SCHEMAS
        .iter()
        .map(|schema| render_schema(schema, base_url))
        .collect();
    list_response(resources)
}

/// The `/Schemas/{urn}` response, or None for an unknown URN.
pub fn schema_json(urn: &str, base_url: &str) -> Option<Value> {
    ALL_SCHEMAS
        .iter()
        .find(|schema| schema.id.eq_ignore_ascii_case(urn))
        .map(|schema| render_schema(schema, base_url))
}

/// The `/ResourceTypes` response: a ListResponse of User and Group.
pub fn resource_types_json(base_url: &str) -> Value {
    let resources = [ResourceKind::User, ResourceKind::Group]
        .into_iter()
        .map(|kind| render_resource_type(kind, base_url))
        .collect();
    list_response(resources)
}

/// The `/ResourceTypes/{name}` response, or None when `name` is neither User nor Group.
pub fn resource_type_json(name: &str, base_url: &str) -> Option<Value> {
    [ResourceKind::User, ResourceKind::Group]
        .into_iter()
        .find(|kind| kind.name().eq_ignore_ascii_case(name))
        .map(|kind| render_resource_type(kind, base_url))
}

/// The `/ServiceProviderConfig` response (RFC 7643 section 5).
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

/// One attribute in the form of RFC 7643 section 7.
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
    /// The spelling of RFC 7643 section 7.
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
