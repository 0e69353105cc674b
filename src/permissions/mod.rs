//! Permissions: roles and grants read from a folder of TOML files, matched to
//! external groups and resolved into a user's effective access.
//!
//! A policy is built whole by [`load_dir`] and never changes afterwards. The
//! caller keeps the last valid policy, swaps in a new one after a successful
//! load, and uses [`watch`] to learn when the folder changed.

mod error;
mod load;
mod pattern;
mod watch;

pub use error::{PermissionError, PermissionErrorKind, PermissionErrors, Position};
pub use load::load_dir;
pub use pattern::{PatternError, ResourcePattern};
pub use watch::{watch, PermissionWatcher};

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;

/// Where a role or grant is written: the file, and the 1-based line and column
/// of the role's name or of the grant's `[[grants]]` header.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceLocation {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for SourceLocation {
    /// Renders `PATH:LINE`, the form shown to operators in access reports.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}", self.path.display(), self.line)
    }
}

/// A named set of permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    name: String,
    description: Option<String>,
    permissions: BTreeSet<String>,
    source: SourceLocation,
}

impl Role {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The permissions, sorted and without duplicates.
    pub fn permissions(&self) -> &BTreeSet<String> {
        &self.permissions
    }

    pub fn source(&self) -> &SourceLocation {
        &self.source
    }
}

/// How a grant names its external group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GroupSelector {
    /// The group's display name, compared case-insensitively.
    DisplayName(String),
    /// The group's `externalId` from the IdP, compared exactly.
    ExternalId(String),
}

/// One `[[grants]]` entry: an external group gets a role on some resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    selector: GroupSelector,
    role: String,
    resources: Vec<ResourcePattern>,
    description: Option<String>,
    source: SourceLocation,
}

impl Grant {
    pub fn selector(&self) -> &GroupSelector {
        &self.selector
    }

    /// The role name; a loaded policy guarantees that the role exists.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The resource patterns, in the order written; never empty.
    pub fn resources(&self) -> &[ResourcePattern] {
        &self.resources
    }

    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    pub fn source(&self) -> &SourceLocation {
        &self.source
    }
}

/// One file that a policy was built from, with a digest of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFile {
    pub path: PathBuf,
    /// 64-bit FNV-1a of the file's bytes: stable across builds and Rust
    /// versions, meant for change detection, not for security.
    pub digest: u64,
}

/// The roles and grants of a permissions folder, validated and indexed.
///
/// Immutable once built; [`Policy::empty`] grants nothing to anyone.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    roles: BTreeMap<String, Role>,
    grants: Vec<Grant>,
    files: Vec<PolicyFile>,
    /// Grant indexes by case-folded display name.
    by_display_name: HashMap<String, Vec<usize>>,
    /// Grant indexes by exact external id.
    by_external_id: HashMap<String, Vec<usize>>,
}

/// One of a user's external groups, as passed to [`Policy::resolve`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupRef {
    /// The group's id in the organization.
    pub id: String,
    pub display_name: String,
    pub external_id: Option<String>,
}

/// A user's effective access: the union of what all their groups are granted.
///
/// Every collection is sorted, so equal access always serializes to equal
/// JSON and two values compare equal exactly when the access is the same.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    pub roles: BTreeSet<String>,
    pub permissions: BTreeSet<String>,
    /// One entry per matching grant and group, sorted by group id, then by
    /// the grant's file, line and column.
    pub grants: Vec<AccessGrant>,
}

/// One grant that applies to a user through one of their groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessGrant {
    pub group: GroupRef,
    pub role: String,
    pub resources: Vec<ResourcePattern>,
    /// The role's permissions, sorted.
    pub permissions: Vec<String>,
    /// `PATH:LINE` of the grant's `[[grants]]` header.
    pub source: String,
}

impl Policy {
    pub fn empty() -> Self {
        Policy::default()
    }

    /// Builds the lookup indexes; `load_dir` has validated every part.
    fn new(roles: BTreeMap<String, Role>, grants: Vec<Grant>, files: Vec<PolicyFile>) -> Self {
        let mut by_display_name: HashMap<String, Vec<usize>> = HashMap::new();
        let mut by_external_id: HashMap<String, Vec<usize>> = HashMap::new();
        for (index, grant) in grants.iter().enumerate() {
            match &grant.selector {
                GroupSelector::DisplayName(name) => by_display_name
                    .entry(fold_case(name))
                    .or_default()
                    .push(index),
                GroupSelector::ExternalId(id) => {
                    by_external_id.entry(id.clone()).or_default().push(index)
                }
            }
        }

        Policy {
            roles,
            grants,
            files,
            by_display_name,
            by_external_id,
        }
    }

    /// The roles, sorted by name.
    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.values()
    }

    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }

    /// The grants, in file name order and then in the order written.
    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    /// The files read, in name order.
    pub fn files(&self) -> &[PolicyFile] {
        &self.files
    }

    /// Digest of every file's name and bytes; equal digests mean the folder
    /// had the same `*.toml` files with the same content (barring a 64-bit
    /// collision).
    pub fn digest(&self) -> u64 {
        let mut digest = Fnv64::new();
        for file in &self.files {
            let name = file.path.file_name().unwrap_or_default();
            digest.write_str(&name.to_string_lossy());
            digest.write_u64(file.digest);
        }
        digest.finish()
    }

    /// Returns the grants for a group, in policy order: those naming its display
    /// name (case-insensitively) and those naming its external id (exactly).
    pub fn grants_for_group(&self, display_name: &str, external_id: Option<&str>) -> Vec<&Grant> {
        let mut indexes: Vec<usize> = Vec::new();
        if let Some(found) = self.by_display_name.get(&fold_case(display_name)) {
            indexes.extend(found);
        }
        if let Some(found) = external_id.and_then(|id| self.by_external_id.get(id)) {
            indexes.extend(found);
        }
        indexes.sort_unstable();
        indexes.dedup();

        indexes
            .into_iter()
            .filter_map(|index| self.grants.get(index))
            .collect()
    }

    /// Reports whether any grant names the group; a group without one is unmapped
    /// and gives its members nothing.
    pub fn is_mapped(&self, display_name: &str, external_id: Option<&str>) -> bool {
        !self.grants_for_group(display_name, external_id).is_empty()
    }

    /// Resolves the access of a user who is a member of `groups`.
    ///
    /// Access is the union over the groups; the order of `groups` and repeated
    /// entries do not change the result. A deactivated user has no access, so
    /// the caller passes no groups for one, and the result is empty.
    pub fn resolve(&self, groups: &[GroupRef]) -> Access {
        let mut matches: Vec<(&GroupRef, &Grant)> = Vec::new();
        for group in groups {
            let external_id = group.external_id.as_deref();
            for grant in self.grants_for_group(&group.display_name, external_id) {
                matches.push((group, grant));
            }
        }
        matches.sort_by(|left, right| {
            (&left.0.id, &left.1.source).cmp(&(&right.0.id, &right.1.source))
        });
        matches.dedup_by(|left, right| left.0.id == right.0.id && left.1.source == right.1.source);

        let mut access = Access::default();
        for (group, grant) in matches {
            let Some(role) = self.roles.get(&grant.role) else {
                continue;
            };
            access.roles.insert(role.name.clone());
            access.permissions.extend(role.permissions.iter().cloned());
            access.grants.push(AccessGrant {
                group: group.clone(),
                role: role.name.clone(),
                resources: grant.resources.clone(),
                permissions: role.permissions.iter().cloned().collect(),
                source: grant.source.to_string(),
            });
        }
        access
    }

    /// Fingerprints what the group's grants give: role names, the roles'
    /// permissions and the resource patterns.
    ///
    /// Two policies give a group the same access exactly when its fingerprints
    /// are equal (barring a 64-bit collision), so after a reload only members
    /// of groups whose fingerprint changed need their access recomputed. The
    /// fingerprint ignores where grants are written, their order and their
    /// descriptions, since none of these change what a member may do; an
    /// unmapped group has the fingerprint of an empty grant list.
    pub fn group_fingerprint(&self, display_name: &str, external_id: Option<&str>) -> u64 {
        let mut entries: Vec<(&str, Vec<&str>, Vec<&str>)> = Vec::new();
        for grant in self.grants_for_group(display_name, external_id) {
            let permissions = match self.roles.get(&grant.role) {
                Some(role) => role.permissions.iter().map(String::as_str).collect(),
                None => Vec::new(),
            };
            let mut resources: Vec<&str> = grant.resources.iter().map(|r| r.as_str()).collect();
            resources.sort_unstable();
            resources.dedup();
            entries.push((grant.role.as_str(), permissions, resources));
        }
        entries.sort_unstable();
        entries.dedup();

        let mut digest = Fnv64::new();
        digest.write_u64(entries.len() as u64);
        for (role, permissions, resources) in entries {
            digest.write_str(role);
            digest.write_strs(&permissions);
            digest.write_strs(&resources);
        }
        digest.finish()
    }
}

impl Access {
    /// Reports whether a grant gives `permission` (compared exactly) on a
    /// resource that one of the grant's patterns matches.
    pub fn allows(&self, permission: &str, resource: &str) -> bool {
        self.grants.iter().any(|grant| {
            grant
                .permissions
                .iter()
                .any(|granted| granted == permission)
                && grant
                    .resources
                    .iter()
                    .any(|pattern| pattern.matches(resource))
        })
    }
}

/// Case-folds a display name; SCIM compares group `displayName` case-insensitively
/// (RFC 7643 section 4.2, `caseExact` false).
fn fold_case(name: &str) -> String {
    name.to_lowercase()
}

/// 64-bit FNV-1a, chosen because its output never changes across builds, so
/// digests and fingerprints may be stored and compared later.
struct Fnv64(u64);

impl Fnv64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Self {
        Fnv64(Self::OFFSET_BASIS)
    }

    fn write_bytes(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.write_bytes(&value.to_le_bytes());
    }

    /// Writes a length before the bytes, so ("ab", "c") and ("a", "bc") differ.
    fn write_str(&mut self, text: &str) {
        self.write_u64(text.len() as u64);
        self.write_bytes(text.as_bytes());
    }

    fn write_strs(&mut self, texts: &[&str]) {
        self.write_u64(texts.len() as u64);
        for text in texts {
            self.write_str(text);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Digests a file's bytes for [`PolicyFile::digest`].
fn digest_bytes(bytes: &[u8]) -> u64 {
    let mut digest = Fnv64::new();
    digest.write_bytes(bytes);
    digest.finish()
}
