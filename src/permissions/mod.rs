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

/// Source position of a role or grant: the file, and the 1-based line and
/// column of the role's name or of the grant's `[[grants]]` header.
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

    /// Returns the permissions, sorted and without duplicates.
    pub fn permissions(&self) -> &BTreeSet<String> {
        &self.permissions
    }

    pub fn source(&self) -> &SourceLocation {
        &self.source
    }
}

/// The key by which a grant names its external group.
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

    /// Returns the role name. A loaded policy guarantees that the role exists.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// Returns the resource patterns in the order written, never empty.
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

    /// Returns the roles, sorted by name.
    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.values()
    }

    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }

    /// Returns the grants, in file name order and then in the order written.
    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    /// Returns the files read, in name order.
    pub fn files(&self) -> &[PolicyFile] {
        &self.files
    }

    /// Digests every file's name and bytes. Equal digests mean the folder had
    /// the same `*.toml` files with the same content, barring a 64-bit collision.
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
    /// descriptions, since none of these change what a member may do. An
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// Sample permission file, also shipped as `config/permissions/example.toml`.
    /// The bundled example that `config/idpsync.toml` loads.
    const EXAMPLE: &str = include_str!("../../config/permissions/example.toml");

    fn load_files(files: &[(&str, &str)]) -> (tempfile::TempDir, Policy) {
        let dir = tempfile::tempdir().expect("create temp dir");
        for (name, text) in files {
            fs::write(dir.path().join(name), text).expect("write permission file");
        }
        let policy = match load_dir(dir.path()) {
            Ok(policy) => policy,
            Err(errors) => panic!("fixture does not load:\n{errors}"),
        };
        (dir, policy)
    }

    fn group(id: &str, display_name: &str, external_id: Option<&str>) -> GroupRef {
        GroupRef {
            id: id.to_string(),
            display_name: display_name.to_string(),
            external_id: external_id.map(str::to_string),
        }
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    /// A case name, the user's groups, and the expected roles, permissions
    /// and number of grant entries.
    type ResolveCase = (
        &'static str,
        Vec<GroupRef>,
        &'static [&'static str],
        &'static [&'static str],
        usize,
    );

    const PLATFORM_ID: &str = "6f2c9a4e-1b7d-4c3a-9e85-0d2f6b1a7c34";

    #[test]
    fn example_file_loads() {
        let (dir, policy) = load_files(&[("example.toml", EXAMPLE)]);
        let roles: Vec<&str> = policy.roles().map(Role::name).collect();
        assert_eq!(roles, vec!["admin", "editor", "viewer"]);
        assert_eq!(policy.grants().len(), 3);
        assert_eq!(policy.files().len(), 1);

        let viewer = policy.role("viewer");
        assert_eq!(
            viewer.and_then(Role::description),
            Some("Read assets and reports")
        );
        assert_eq!(viewer.map(|role| role.source().line), Some(9));

        let first = &policy.grants()[0];
        let expected = GroupSelector::DisplayName("grp-001 Engineering".to_string());
        assert_eq!(first.selector(), &expected);
        assert_eq!(first.role(), "editor");
        assert_eq!(first.source().path, dir.path().join("example.toml"));
        assert_eq!(first.source().line, 24);
        assert_eq!(first.source().column, 1);

        let last = &policy.grants()[2];
        let expected = GroupSelector::ExternalId(PLATFORM_ID.to_string());
        assert_eq!(last.selector(), &expected);
        assert_eq!(last.description(), Some("Platform operators"));
    }

    #[test]
    fn resolve_table() {
        let (_dir, policy) = load_files(&[("example.toml", EXAMPLE)]);
        let engineering = group("g1", "grp-001 Engineering", None);
        let shouting = group("g1", "GRP-001 ENGINEERING", None);
        let platform = group("g2", "Platform", Some(PLATFORM_ID));
        let platform_other_case = group("g2", "Platform", Some(&PLATFORM_ID.to_uppercase()));
        let unmapped = group("g3", "grp-999 Sales", Some("sales-1"));

        let cases: Vec<ResolveCase> = vec![
            ("no groups", vec![], &[], &[], 0),
            ("unmapped group", vec![unmapped.clone()], &[], &[], 0),
            (
                "display name",
                vec![engineering.clone()],
                &["editor", "viewer"],
                &["asset:read", "asset:write", "report:read"],
                2,
            ),
            (
                "display name other case",
                vec![shouting],
                &["editor", "viewer"],
                &["asset:read", "asset:write", "report:read"],
                2,
            ),
            (
                "external id",
                vec![platform.clone()],
                &["admin"],
                &[
                    "asset:delete",
                    "asset:read",
                    "asset:write",
                    "report:read",
                    "report:write",
                ],
                1,
            ),
            (
                "external id is case-sensitive",
                vec![platform_other_case],
                &[],
                &[],
                0,
            ),
            (
                "union over groups",
                vec![unmapped, platform.clone(), engineering.clone()],
                &["admin", "editor", "viewer"],
                &[
                    "asset:delete",
                    "asset:read",
                    "asset:write",
                    "report:read",
                    "report:write",
                ],
                3,
            ),
            (
                "repeated group",
                vec![engineering.clone(), engineering],
                &["editor", "viewer"],
                &["asset:read", "asset:write", "report:read"],
                2,
            ),
        ];

        for (name, groups, roles, permissions, grants) in cases {
            let access = policy.resolve(&groups);
            assert_eq!(access.roles, set(roles), "{name}: roles");
            assert_eq!(access.permissions, set(permissions), "{name}: permissions");
            assert_eq!(access.grants.len(), grants, "{name}: grants");
        }
    }

    #[test]
    fn resolve_grant_entries() {
        let (dir, policy) = load_files(&[("example.toml", EXAMPLE)]);
        let platform = group("g2", "Platform", Some(PLATFORM_ID));
        let engineering = group("g1", "grp-001 Engineering", None);
        let access = policy.resolve(&[platform, engineering.clone()]);
        let path = dir.path().join("example.toml");

        // Sorted by group id, then by position in the file.
        let sources: Vec<&str> = access
            .grants
            .iter()
            .map(|grant| grant.source.as_str())
            .collect();
        let expected = [
            format!("{}:24", path.display()),
            format!("{}:29", path.display()),
            format!("{}:36", path.display()),
        ];
        assert_eq!(
            sources,
            expected.iter().map(String::as_str).collect::<Vec<_>>()
        );

        let first = &access.grants[0];
        assert_eq!(first.group, engineering);
        assert_eq!(first.role, "editor");
        assert_eq!(
            first.resources,
            vec![ResourcePattern::new("asset:rig-*").unwrap()]
        );
        assert_eq!(first.permissions, vec!["asset:read", "asset:write"]);
    }

    #[test]
    fn resolve_ignores_group_order() {
        let (_dir, policy) = load_files(&[("example.toml", EXAMPLE)]);
        let engineering = group("g1", "grp-001 Engineering", None);
        let platform = group("g2", "Platform", Some(PLATFORM_ID));
        let forward = policy.resolve(&[engineering.clone(), platform.clone()]);
        let backward = policy.resolve(&[platform, engineering]);
        assert_eq!(forward, backward);

        let forward_json = serde_json::to_string(&forward).expect("serialize access");
        let backward_json = serde_json::to_string(&backward).expect("serialize access");
        assert_eq!(forward_json, backward_json);
    }

    #[test]
    fn access_json_shape() {
        let text = "[roles.viewer]\npermissions = [\"report:read\"]\n\
                    [[grants]]\ngroup = \"Ops\"\nrole = \"viewer\"\nresources = [\"report:*\"]\n";
        let (dir, policy) = load_files(&[("a.toml", text)]);
        let access = policy.resolve(&[group("g1", "ops", None)]);
        let json = serde_json::to_value(&access).expect("serialize access");
        let expected = serde_json::json!({
            "roles": ["viewer"],
            "permissions": ["report:read"],
            "grants": [{
                "group": {"id": "g1", "display_name": "ops", "external_id": null},
                "role": "viewer",
                "resources": ["report:*"],
                "permissions": ["report:read"],
                "source": format!("{}:3", dir.path().join("a.toml").display()),
            }],
        });
        assert_eq!(json, expected);

        let back: Access = serde_json::from_value(json).expect("deserialize access");
        assert_eq!(back, access);
    }

    #[test]
    fn access_allows_table() {
        let (_dir, policy) = load_files(&[("example.toml", EXAMPLE)]);
        let engineering = policy.resolve(&[group("g1", "grp-001 engineering", None)]);
        let platform = policy.resolve(&[group("g2", "Platform", Some(PLATFORM_ID))]);
        let nobody = policy.resolve(&[]);

        let cases = [
            (&engineering, "asset:write", "asset:rig-7", true),
            (&engineering, "asset:read", "asset:rig-", true),
            (&engineering, "asset:write", "asset:desk-1", false),
            (&engineering, "asset:delete", "asset:rig-7", false),
            (&engineering, "report:read", "report:weekly", true),
            (&engineering, "report:read", "report:monthly", false),
            // Permissions come with the resources of their own grant only.
            (&engineering, "report:read", "asset:rig-7", false),
            (&engineering, "asset:write", "report:weekly", false),
            (&platform, "asset:delete", "anything:at-all", true),
            (&platform, "asset:purge", "asset:rig-1", false),
            (&nobody, "asset:read", "asset:rig-1", false),
        ];
        for (index, (access, permission, resource, expected)) in cases.into_iter().enumerate() {
            let allowed = access.allows(permission, resource);
            assert_eq!(
                allowed, expected,
                "case {index}: {permission} on {resource}"
            );
        }
    }

    #[test]
    fn grants_for_group_and_mapping() {
        let (_dir, policy) = load_files(&[("example.toml", EXAMPLE)]);
        let roles = |display_name: &str, external_id: Option<&str>| -> Vec<String> {
            let grants = policy.grants_for_group(display_name, external_id);
            grants
                .iter()
                .map(|grant| grant.role().to_string())
                .collect()
        };

        assert_eq!(roles("Grp-001 Engineering", None), vec!["editor", "viewer"]);
        assert_eq!(roles("Platform", Some(PLATFORM_ID)), vec!["admin"]);
        assert_eq!(
            roles("grp-001 engineering", Some(PLATFORM_ID)),
            vec!["editor", "viewer", "admin"]
        );
        assert!(roles("Sales", Some("x")).is_empty());

        assert!(policy.is_mapped("GRP-001 engineering", None));
        assert!(policy.is_mapped("renamed", Some(PLATFORM_ID)));
        assert!(!policy.is_mapped("Sales", None));
        assert!(!Policy::empty().is_mapped("grp-001 Engineering", None));
    }

    #[test]
    fn digest_tracks_content_and_names() {
        let (_one, first) = load_files(&[("a.toml", EXAMPLE)]);
        let (_two, same) = load_files(&[("a.toml", EXAMPLE)]);
        let edited = EXAMPLE.replace("Full access", "All access");
        let (_three, changed) = load_files(&[("a.toml", &edited)]);
        let (_four, renamed) = load_files(&[("b.toml", EXAMPLE)]);
        let (_five, split) = load_files(&[("a.toml", EXAMPLE), ("c.toml", "")]);

        assert_eq!(first.digest(), same.digest());
        assert_eq!(first.files()[0].digest, same.files()[0].digest);
        assert_ne!(first.files()[0].digest, changed.files()[0].digest);
        assert_ne!(first.digest(), changed.digest());
        assert_ne!(first.digest(), renamed.digest());
        assert_ne!(first.digest(), split.digest());
        assert_ne!(first.digest(), Policy::empty().digest());
    }

    #[test]
    fn fnv_known_values() {
        // Reference values of 64-bit FNV-1a.
        assert_eq!(digest_bytes(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(digest_bytes(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(digest_bytes(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn fingerprint_changes_only_for_affected_groups() {
        let (_one, before) = load_files(&[("example.toml", EXAMPLE)]);

        // The viewer role gains a permission, and only Engineering has that role.
        let wider = EXAMPLE.replace(
            "permissions = [\"asset:read\", \"report:read\"]",
            "permissions = [\"asset:read\", \"report:read\", \"report:export\"]",
        );
        let (_two, after) = load_files(&[("example.toml", &wider)]);

        // Comments, descriptions and moving grants do not change what anyone gets.
        let reworded = format!(
            "# moved\n\n{}",
            EXAMPLE.replace("Platform operators", "Operators of the platform")
        );
        let (_three, moved) = load_files(&[("example.toml", &reworded)]);

        let cases: [(&str, Option<&str>, bool, bool); 4] = [
            ("grp-001 Engineering", None, true, false),
            ("GRP-001 ENGINEERING", None, true, false),
            ("Platform", Some(PLATFORM_ID), false, false),
            ("Sales", None, false, false),
        ];
        for (name, external_id, changes, changes_when_moved) in cases {
            let old = before.group_fingerprint(name, external_id);
            let new = after.group_fingerprint(name, external_id);
            let shifted = moved.group_fingerprint(name, external_id);
            assert_eq!(old != new, changes, "{name}: role change");
            assert_eq!(old != shifted, changes_when_moved, "{name}: moved grants");
        }
    }

    #[test]
    fn fingerprint_of_unmapped_group() {
        let (_dir, policy) = load_files(&[("example.toml", EXAMPLE)]);
        let unmapped = policy.group_fingerprint("Sales", Some("sales-1"));
        let empty = Policy::empty().group_fingerprint("Sales", Some("sales-1"));
        let mapped = policy.group_fingerprint("grp-001 Engineering", None);
        let newly_mapped = Policy::empty().group_fingerprint("grp-001 Engineering", None);
        assert_eq!(unmapped, empty);
        assert_ne!(mapped, newly_mapped);
    }

    #[test]
    fn fingerprint_tracks_resources() {
        let (_one, before) = load_files(&[("example.toml", EXAMPLE)]);
        let narrower = EXAMPLE.replace("[\"asset:rig-*\"]", "[\"asset:rig-1\"]");
        let (_two, after) = load_files(&[("example.toml", &narrower)]);
        let old = before.group_fingerprint("grp-001 Engineering", None);
        let new = after.group_fingerprint("grp-001 Engineering", None);
        assert_ne!(old, new);
    }

    #[test]
    fn empty_policy_gives_nothing() {
        let policy = Policy::empty();
        let access = policy.resolve(&[group("g1", "grp-001 Engineering", Some(PLATFORM_ID))]);
        assert_eq!(access, Access::default());
        assert_eq!(policy.roles().count(), 0);
        assert!(policy.grants().is_empty());
        assert!(policy.files().is_empty());
    }
}
