//! Reading a permissions folder: listing its `*.toml` files, parsing them and
//! validating roles and grants across all files before building a [`Policy`].

use super::error::{PermissionError, PermissionErrorKind as Kind, PermissionErrors, Position};
use super::{
    digest_bytes, Grant, GroupSelector, Policy, PolicyFile, ResourcePattern, Role, SourceLocation,
};
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// One permission file as written, with the spans needed for error positions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    roles: BTreeMap<Spanned<String>, RawRole>,
    #[serde(default)]
    grants: Vec<Spanned<RawGrant>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    description: Option<String>,
    permissions: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrant {
    group: Option<Spanned<String>>,
    external_id: Option<Spanned<String>>,
    role: Spanned<String>,
    resources: Spanned<Vec<Spanned<String>>>,
    description: Option<String>,
}

/// Only the role names of a file, to locate the first of two definitions
/// that TOML itself rejects as a duplicate key.
#[derive(Deserialize)]
struct RoleNames {
    #[serde(default)]
    roles: BTreeMap<Spanned<String>, IgnoredAny>,
}

/// A file that parsed, with its text for turning spans into positions.
struct ParsedFile {
    path: PathBuf,
    text: String,
    raw: RawFile,
}

impl ParsedFile {
    fn location(&self, offset: usize) -> SourceLocation {
        let position = Position::from_offset(&self.text, offset);
        SourceLocation {
            path: self.path.clone(),
            line: position.line,
            column: position.column,
        }
    }

    fn error(&self, kind: Kind, offset: usize, message: String) -> PermissionError {
        PermissionError::at(kind, &self.path, &self.text, offset, message)
    }
}

/// Loads every permission file in `dir` into a policy.
///
/// Reads the files whose names end in `.toml`, in name order, and skips
/// subfolders, hidden files and editor temp files (`.foo.toml.swp`,
/// `foo.toml~`, `#foo.toml#`). Validates all files before returning and
/// reports every problem found. A missing folder is an error; an empty folder
/// gives an empty policy.
pub fn load_dir(dir: &Path) -> Result<Policy, PermissionErrors> {
    let paths = list_policy_files(dir).map_err(PermissionErrors::one)?;

    let mut errors = Vec::new();
    let mut files = Vec::new();
    let mut parsed = Vec::new();
    for path in paths {
        match read_file(&path) {
            Ok((text, digest)) => {
                files.push(PolicyFile {
                    path: path.clone(),
                    digest,
                });
                match parse_file(&path, &text) {
                    Ok(raw) => parsed.push(ParsedFile { path, text, raw }),
                    Err(error) => errors.push(error),
                }
            }
            Err(error) => errors.push(error),
        }
    }

    // A file that failed to parse may define roles, so "unknown role" errors
    // are left out until every file parses, to avoid reporting false ones.
    let every_file_parsed = errors.is_empty();
    let roles = collect_roles(&parsed, &mut errors);
    let grants = collect_grants(&parsed, &roles, every_file_parsed, &mut errors);

    errors.sort_by(|left, right| {
        (left.path(), left.position()).cmp(&(right.path(), right.position()))
    });
    match PermissionErrors::from_vec(errors) {
        Some(errors) => Err(errors),
        None => Ok(Policy::new(roles, grants, files)),
    }
}

/// Reports whether a folder entry named `name` is a permission file by name:
/// it ends in `.toml` and is neither hidden nor an editor temp file.
pub(super) fn is_policy_file_name(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    !name.starts_with('.') && !name.starts_with('#') && name.ends_with(".toml")
}

fn list_policy_files(dir: &Path) -> Result<Vec<PathBuf>, PermissionError> {
    let entries = fs::read_dir(dir).map_err(|error| folder_error(dir, &error))?;

    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| folder_error(dir, &error))?;
        let path = entry.path();
        // `is_file` follows symlinks, so a linked permission file is read too.
        if is_policy_file_name(&entry.file_name()) && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

fn folder_error(dir: &Path, error: &io::Error) -> PermissionError {
    let message = if error.kind() == io::ErrorKind::NotFound {
        "permissions folder not found; create it, or set `permissions.dir` to an existing folder"
            .to_string()
    } else if dir.is_file() {
        "permissions path is a file, not a folder; set `permissions.dir` to a folder of *.toml files"
            .to_string()
    } else {
        format!("cannot read permissions folder: {error}; check that it exists and is readable")
    };
    PermissionError::new(Kind::Io, dir, None, message)
}

/// Reads a file as UTF-8, which TOML requires, and digests its bytes.
fn read_file(path: &Path) -> Result<(String, u64), PermissionError> {
    let bytes = fs::read(path).map_err(|error| {
        let message = format!("cannot read file: {error}; check that it is readable");
        PermissionError::new(Kind::Io, path, None, message)
    })?;

    let digest = digest_bytes(&bytes);
    let text = String::from_utf8(bytes).map_err(|error| {
        let offset = error.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(error.as_bytes());
        let message = "file is not valid UTF-8; save it as UTF-8".to_string();
        PermissionError::at(Kind::Io, path, &text, offset, message)
    })?;
    Ok((text, digest))
}

fn parse_file(path: &Path, text: &str) -> Result<RawFile, PermissionError> {
    toml::from_str::<RawFile>(text).map_err(|error| toml_error(path, text, &error))
}

/// Turns a TOML parse or deserialization error into a positioned error with a
/// hint for the fix.
fn toml_error(path: &Path, text: &str, error: &toml::de::Error) -> PermissionError {
    let offset = error.span().map_or(0, |span| span.start);
    let detail = error.message().trim().replace('\n', ": ");

    if let Some(message) = duplicate_role_message(text, offset, &detail) {
        return PermissionError::at(Kind::DuplicateRole, path, text, offset, message);
    }

    // Deserialization errors come from the same parser, so a second parse
    // without the schema distinguishes syntax errors from schema errors.
    if text.parse::<toml::Table>().is_err() {
        let hint = if detail.contains("duplicate key") {
            "remove or rename one of the two keys"
        } else {
            "fix the syntax at this position"
        };
        let message = format!("invalid TOML: {detail}; {hint}");
        return PermissionError::at(Kind::Syntax, path, text, offset, message);
    }
    let message = schema_message(&detail);
    PermissionError::at(Kind::Schema, path, text, offset, message)
}

/// Rewords serde's messages in the terms of TOML, with the fix.
fn schema_message(detail: &str) -> String {
    if let Some(rest) = detail.strip_prefix("unknown field") {
        format!("unknown key{rest}; remove the key or correct its spelling")
    } else if let Some(rest) = detail.strip_prefix("missing field") {
        format!("missing key{rest}; add it")
    } else if detail.starts_with("invalid type") {
        format!("{detail}; change the value to the expected type")
    } else {
        detail.to_string()
    }
}

/// Builds the message for a role defined twice in one file, naming the first
/// definition, when `detail` is TOML's duplicate key error for a role table.
fn duplicate_role_message(text: &str, offset: usize, detail: &str) -> Option<String> {
    let (_, after) = detail.split_once("duplicate key `")?;
    let (name, table) = after.split_once('`')?;
    if !table.starts_with(" in table `roles`") {
        return None;
    }
    // TOML shows a key that needs quotes with its quotes.
    let name = name
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(name);

    // Everything before the second definition parses, and contains the first.
    let before = text.get(..offset)?;
    let names: RoleNames = toml::from_str(before).ok()?;
    let first = names.roles.keys().find(|key| key.get_ref() == name)?;
    let position = Position::from_offset(text, first.span().start);
    Some(format!(
        "role `{name}` is defined twice in this file, first at line {}, column {}; \
         remove or rename one of the two definitions",
        position.line, position.column
    ))
}

/// Validates every role of every file and returns the valid ones by name.
fn collect_roles(
    files: &[ParsedFile],
    errors: &mut Vec<PermissionError>,
) -> BTreeMap<String, Role> {
    let mut roles: BTreeMap<String, Role> = BTreeMap::new();
    for file in files {
        let mut entries: Vec<(&Spanned<String>, &RawRole)> = file.raw.roles.iter().collect();
        entries.sort_by_key(|(name, _)| name.span().start);

        for (name, raw) in entries {
            if let Some(role) = validate_role(file, name, raw, &roles, errors) {
                roles.insert(role.name.clone(), role);
            }
        }
    }
    roles
}

fn validate_role(
    file: &ParsedFile,
    name: &Spanned<String>,
    raw: &RawRole,
    roles: &BTreeMap<String, Role>,
    errors: &mut Vec<PermissionError>,
) -> Option<Role> {
    let offset = name.span().start;
    if name.get_ref().trim().is_empty() {
        let message = "role name is empty; write a name in `[roles.NAME]`".to_string();
        errors.push(file.error(Kind::EmptyRoleName, offset, message));
        return None;
    }
    if let Some(existing) = roles.get(name.get_ref()) {
        let first = &existing.source;
        let message = format!(
            "role `{}` is already defined at {}:{}:{}; remove or rename one of the two definitions",
            name.get_ref(),
            first.path.display(),
            first.line,
            first.column
        );
        errors.push(file.error(Kind::DuplicateRole, offset, message));
        return None;
    }

    let mut permissions = BTreeSet::new();
    for permission in &raw.permissions {
        if permission.get_ref().trim().is_empty() {
            let message = format!(
                "empty permission in role `{}`; write a permission such as \"asset:read\" or remove the entry",
                name.get_ref()
            );
            errors.push(file.error(Kind::EmptyPermission, permission.span().start, message));
        } else {
            permissions.insert(permission.get_ref().clone());
        }
    }

    // A role with an invalid permission is still returned, so grants naming it
    // do not add "unknown role" errors on top of the real one.
    Some(Role {
        name: name.get_ref().clone(),
        description: raw.description.clone(),
        permissions,
        source: file.location(offset),
    })
}

/// Validates every grant of every file and returns the valid ones in file order.
fn collect_grants(
    files: &[ParsedFile],
    roles: &BTreeMap<String, Role>,
    check_roles: bool,
    errors: &mut Vec<PermissionError>,
) -> Vec<Grant> {
    let mut grants = Vec::new();
    for file in files {
        for raw in &file.raw.grants {
            let start = errors.len();
            let selector = validate_selector(file, raw, errors);
            let role = validate_grant_role(file, raw.get_ref(), roles, check_roles, errors);
            let resources = validate_resources(file, raw.get_ref(), errors);
            if errors.len() > start {
                continue;
            }

            if let (Some(selector), Some(role), Some(resources)) = (selector, role, resources) {
                grants.push(Grant {
                    selector,
                    role,
                    resources,
                    description: raw.get_ref().description.clone(),
                    source: file.location(raw.span().start),
                });
            }
        }
    }
    grants
}

fn validate_selector(
    file: &ParsedFile,
    raw: &Spanned<RawGrant>,
    errors: &mut Vec<PermissionError>,
) -> Option<GroupSelector> {
    let grant = raw.get_ref();
    match (&grant.group, &grant.external_id) {
        (None, None) => {
            let message =
                "grant has neither `group` nor `external_id`; add `group = \"DISPLAY NAME\"` \
                 or `external_id = \"ID\"`"
                    .to_string();
            errors.push(file.error(Kind::GroupSelector, raw.span().start, message));
            None
        }
        (Some(_), Some(external_id)) => {
            let message = "grant has both `group` and `external_id`; keep one of them, \
                 since a grant names exactly one external group"
                .to_string();
            errors.push(file.error(Kind::GroupSelector, external_id.span().start, message));
            None
        }
        (Some(group), None) if group.get_ref().trim().is_empty() => {
            let message =
                "`group` is empty; set it to the external group's display name".to_string();
            errors.push(file.error(Kind::EmptyGroup, group.span().start, message));
            None
        }
        (None, Some(external_id)) if external_id.get_ref().trim().is_empty() => {
            let message =
                "`external_id` is empty; set it to the group's externalId from the IdP".to_string();
            errors.push(file.error(Kind::EmptyGroup, external_id.span().start, message));
            None
        }
        (Some(group), None) => Some(GroupSelector::DisplayName(group.get_ref().clone())),
        (None, Some(external_id)) => Some(GroupSelector::ExternalId(external_id.get_ref().clone())),
    }
}

fn validate_grant_role(
    file: &ParsedFile,
    grant: &RawGrant,
    roles: &BTreeMap<String, Role>,
    check_roles: bool,
    errors: &mut Vec<PermissionError>,
) -> Option<String> {
    let name = grant.role.get_ref();
    let offset = grant.role.span().start;
    if name.trim().is_empty() {
        let message = "`role` is empty; set it to a role defined as `[roles.NAME]`".to_string();
        errors.push(file.error(Kind::UnknownRole, offset, message));
        return None;
    }
    if check_roles && !roles.contains_key(name) {
        let message = format!(
            "grant names role `{name}`, which no permission file defines; \
             define `[roles.{name}]` or correct the name"
        );
        errors.push(file.error(Kind::UnknownRole, offset, message));
        return None;
    }
    Some(name.clone())
}

fn validate_resources(
    file: &ParsedFile,
    grant: &RawGrant,
    errors: &mut Vec<PermissionError>,
) -> Option<Vec<ResourcePattern>> {
    if grant.resources.get_ref().is_empty() {
        let message = "`resources` is empty, so the grant gives nothing; \
             list at least one pattern, such as \"*\" for every resource"
            .to_string();
        errors.push(file.error(Kind::EmptyResources, grant.resources.span().start, message));
        return None;
    }

    let mut patterns = Vec::new();
    let mut valid = true;
    for text in grant.resources.get_ref() {
        match ResourcePattern::new(text.get_ref()) {
            Ok(pattern) => patterns.push(pattern),
            Err(error) => {
                valid = false;
                let kind = Kind::InvalidPattern;
                errors.push(file.error(kind, text.span().start, error.to_string()));
            }
        }
    }
    valid.then_some(patterns)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One expected error: file name, line, column, kind and message. When
    /// `exact` is false the message comes from the TOML parser and is checked
    /// as a fragment, since its wording may change between toml versions.
    struct Expected {
        file: &'static str,
        line: usize,
        column: usize,
        kind: Kind,
        message: &'static str,
        exact: bool,
    }

    const fn mine(
        file: &'static str,
        line: usize,
        column: usize,
        kind: Kind,
        message: &'static str,
    ) -> Expected {
        Expected {
            file,
            line,
            column,
            kind,
            message,
            exact: true,
        }
    }

    const fn parser(
        file: &'static str,
        line: usize,
        column: usize,
        kind: Kind,
        message: &'static str,
    ) -> Expected {
        Expected {
            file,
            line,
            column,
            kind,
            message,
            exact: false,
        }
    }

    fn write_files(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("create temp dir");
        for (name, content) in files {
            fs::write(dir.path().join(name), content).expect("write permission file");
        }
        dir
    }

    /// A case name, the files to write, and the errors expected in order.
    type Case = (
        &'static str,
        Vec<(&'static str, &'static str)>,
        Vec<Expected>,
    );

    const ROLE_VIEWER: &str = "[roles.viewer]\npermissions = [\"asset:read\"]\n";

    #[test]
    fn validation_errors_table() {
        use Kind::*;
        let cases: Vec<Case> = vec![
            (
                "syntax error",
                vec![("a.toml", "[roles.viewer]\npermissions = [\"a\"\nx")],
                vec![parser("a.toml", 3, 1, Syntax, "invalid TOML: ")],
            ),
            (
                "unknown key in role",
                vec![("a.toml", "[roles.viewer]\npermissions = []\nfoo = 1\n")],
                vec![mine(
                    "a.toml",
                    3,
                    1,
                    Schema,
                    "unknown key `foo`, expected `description` or `permissions`; \
                     remove the key or correct its spelling",
                )],
            ),
            (
                "unknown key in grant",
                vec![(
                    "a.toml",
                    "[[grants]]\ngroup = \"x\"\nrole = \"viewer\"\nresources = [\"*\"]\n  resource = 1\n",
                )],
                vec![parser("a.toml", 5, 3, Schema, "unknown key `resource`")],
            ),
            (
                "unknown top-level key",
                vec![("a.toml", "[role.viewer]\npermissions = []\n")],
                vec![parser("a.toml", 1, 2, Schema, "unknown key `role`")],
            ),
            (
                "permissions not a list",
                vec![("a.toml", "[roles.viewer]\npermissions = \"a\"\n")],
                vec![mine(
                    "a.toml",
                    2,
                    15,
                    Schema,
                    "invalid type: string \"a\", expected a sequence; \
                     change the value to the expected type",
                )],
            ),
            (
                "resource not a string",
                vec![(
                    "a.toml",
                    "[[grants]]\ngroup = \"x\"\nrole = \"viewer\"\nresources = [\"*\", 7]\n",
                )],
                vec![parser("a.toml", 4, 19, Schema, "invalid type: integer `7`")],
            ),
            (
                "missing permissions",
                vec![("a.toml", "\n[roles.viewer]\ndescription = \"x\"\n")],
                vec![mine(
                    "a.toml",
                    2,
                    1,
                    Schema,
                    "missing key `permissions`; add it",
                )],
            ),
            (
                "role twice in one file",
                vec![("a.toml", "[roles.viewer]\npermissions = []\n\n[roles.viewer]\npermissions = []\n")],
                vec![mine(
                    "a.toml",
                    4,
                    1,
                    DuplicateRole,
                    "role `viewer` is defined twice in this file, first at line 1, column 8; \
                     remove or rename one of the two definitions",
                )],
            ),
            (
                "quoted role twice in one file",
                vec![(
                    "a.toml",
                    "[roles.\"my role\"]\npermissions = []\n[roles.\"my role\"]\npermissions = []\n",
                )],
                vec![mine(
                    "a.toml",
                    3,
                    1,
                    DuplicateRole,
                    "role `my role` is defined twice in this file, first at line 1, column 8; \
                     remove or rename one of the two definitions",
                )],
            ),
            (
                "key twice in one grant",
                vec![(
                    "a.toml",
                    "[[grants]]\ngroup = \"x\"\nrole = \"a\"\nrole = \"b\"\n",
                )],
                vec![parser(
                    "a.toml",
                    4,
                    1,
                    Syntax,
                    "duplicate key `role` in table `grants`; remove or rename one of the two keys",
                )],
            ),
            (
                "role twice in two files",
                vec![("a.toml", ROLE_VIEWER), ("b.toml", "# b\n[roles.viewer]\npermissions = []\n")],
                vec![Expected {
                    file: "b.toml",
                    line: 2,
                    column: 8,
                    kind: DuplicateRole,
                    // The message names the first file by its full path, so only its tail is fixed.
                    message: "a.toml:1:8; remove or rename one of the two definitions",
                    exact: false,
                }],
            ),
            (
                "empty role name",
                vec![("a.toml", "[roles.\"\"]\npermissions = []\n")],
                vec![mine(
                    "a.toml",
                    1,
                    8,
                    EmptyRoleName,
                    "role name is empty; write a name in `[roles.NAME]`",
                )],
            ),
            (
                "empty permission",
                vec![("a.toml", "[roles.viewer]\npermissions = [\"a\", \"\"]\n")],
                vec![mine(
                    "a.toml",
                    2,
                    21,
                    EmptyPermission,
                    "empty permission in role `viewer`; write a permission such as \
                     \"asset:read\" or remove the entry",
                )],
            ),
            (
                "grant without group",
                vec![("0.toml", ROLE_VIEWER), ("a.toml", "[[grants]]\nrole = \"viewer\"\nresources = [\"*\"]\n")],
                vec![mine(
                    "a.toml",
                    1,
                    1,
                    GroupSelector,
                    "grant has neither `group` nor `external_id`; add \
                     `group = \"DISPLAY NAME\"` or `external_id = \"ID\"`",
                )],
            ),
            (
                "grant with group and external id",
                vec![
                    ("0.toml", ROLE_VIEWER),
                    (
                    "a.toml",
                    "[[grants]]\ngroup = \"x\"\nexternal_id = \"abc\"\nrole = \"viewer\"\nresources = [\"*\"]\n",
                )],
                vec![mine(
                    "a.toml",
                    3,
                    15,
                    GroupSelector,
                    "grant has both `group` and `external_id`; keep one of them, \
                     since a grant names exactly one external group",
                )],
            ),
            (
                "empty group",
                vec![("0.toml", ROLE_VIEWER), ("a.toml", "[[grants]]\ngroup = \" \"\nrole = \"viewer\"\nresources = [\"*\"]\n")],
                vec![mine(
                    "a.toml",
                    2,
                    9,
                    EmptyGroup,
                    "`group` is empty; set it to the external group's display name",
                )],
            ),
            (
                "empty external id",
                vec![
                    ("0.toml", ROLE_VIEWER),
                    (
                    "a.toml",
                    "[[grants]]\nexternal_id = \"\"\nrole = \"viewer\"\nresources = [\"*\"]\n",
                )],
                vec![mine(
                    "a.toml",
                    2,
                    15,
                    EmptyGroup,
                    "`external_id` is empty; set it to the group's externalId from the IdP",
                )],
            ),
            (
                "unknown role",
                vec![
                    ("a.toml", ROLE_VIEWER),
                    ("b.toml", "[[grants]]\ngroup = \"x\"\nrole = \"viewr\"\nresources = [\"*\"]\n"),
                ],
                vec![mine(
                    "b.toml",
                    3,
                    8,
                    UnknownRole,
                    "grant names role `viewr`, which no permission file defines; \
                     define `[roles.viewr]` or correct the name",
                )],
            ),
            (
                "empty role in grant",
                vec![("a.toml", "[[grants]]\ngroup = \"x\"\nrole = \"\"\nresources = [\"*\"]\n")],
                vec![mine(
                    "a.toml",
                    3,
                    8,
                    UnknownRole,
                    "`role` is empty; set it to a role defined as `[roles.NAME]`",
                )],
            ),
            (
                "empty resources",
                vec![(
                    "a.toml",
                    "[roles.viewer]\npermissions = []\n[[grants]]\ngroup = \"x\"\nrole = \"viewer\"\nresources = []\n",
                )],
                vec![mine(
                    "a.toml",
                    6,
                    13,
                    EmptyResources,
                    "`resources` is empty, so the grant gives nothing; list at least one \
                     pattern, such as \"*\" for every resource",
                )],
            ),
            (
                "invalid patterns",
                vec![(
                    "a.toml",
                    "[roles.viewer]\npermissions = []\n[[grants]]\ngroup = \"x\"\nrole = \"viewer\"\n\
                     resources = [\"\", \"asset: rig\", \"a\\u0007\"]\n",
                )],
                vec![
                    mine(
                        "a.toml",
                        6,
                        14,
                        InvalidPattern,
                        "resource pattern is empty; write a resource name, or \"*\" for every resource",
                    ),
                    mine(
                        "a.toml",
                        6,
                        18,
                        InvalidPattern,
                        "resource pattern \"asset: rig\" contains whitespace; \
                         remove it, since resource names contain none",
                    ),
                    mine(
                        "a.toml",
                        6,
                        32,
                        InvalidPattern,
                        "resource pattern \"a\\u{7}\" contains a control character; remove it",
                    ),
                ],
            ),
            (
                "every error of every file",
                vec![
                    ("a.toml", "[roles.viewer\n"),
                    (
                        "b.toml",
                        "[[grants]]\ngroup = \"\"\nrole = \"viewer\"\nresources = []\n\n\
                         [[grants]]\ngroup = \"y\"\nrole = \"editor\"\nresources = [\"*\"]\n",
                    ),
                    ("c.toml", "[roles.admin]\npermissions = [\"\"]\n"),
                ],
                // No unknown-role error for `editor`, since a.toml may define it.
                vec![
                    parser("a.toml", 1, 14, Syntax, "invalid TOML: "),
                    mine(
                        "b.toml",
                        2,
                        9,
                        EmptyGroup,
                        "`group` is empty; set it to the external group's display name",
                    ),
                    mine(
                        "b.toml",
                        4,
                        13,
                        EmptyResources,
                        "`resources` is empty, so the grant gives nothing; list at least one \
                         pattern, such as \"*\" for every resource",
                    ),
                    mine(
                        "c.toml",
                        2,
                        16,
                        EmptyPermission,
                        "empty permission in role `admin`; write a permission such as \
                         \"asset:read\" or remove the entry",
                    ),
                ],
            ),
        ];

        for (name, files, expected) in cases {
            let files: Vec<(&str, &[u8])> = files
                .iter()
                .map(|(file, text)| (*file, text.as_bytes()))
                .collect();
            let dir = write_files(&files);
            let errors = match load_dir(dir.path()) {
                Ok(_) => panic!("{name}: loaded without errors"),
                Err(errors) => errors.into_vec(),
            };

            assert_eq!(errors.len(), expected.len(), "{name}: {errors:#?}");
            for (error, want) in errors.iter().zip(&expected) {
                let file = error.path().file_name().and_then(OsStr::to_str);
                assert_eq!(file, Some(want.file), "{name}: file of {error}");
                assert_eq!(error.line(), Some(want.line), "{name}: line of {error}");
                assert_eq!(
                    error.column(),
                    Some(want.column),
                    "{name}: column of {error}"
                );
                assert_eq!(error.kind(), want.kind, "{name}: kind of {error}");
                if want.exact {
                    assert_eq!(error.message(), want.message, "{name}: message");
                } else {
                    assert!(error.message().contains(want.message), "{name}: {error}");
                }
            }
        }
    }

    #[test]
    fn error_display_has_path_line_column() {
        let dir = write_files(&[("a.toml", b"[roles.viewer]\npermissions = [\"\"]\n")]);
        let errors = load_dir(dir.path()).err().map(|errors| errors.to_string());
        let expected = format!(
            "{}:2:16: empty permission in role `viewer`; write a permission such as \
             \"asset:read\" or remove the entry",
            dir.path().join("a.toml").display()
        );
        assert_eq!(errors, Some(expected));
    }

    #[test]
    fn invalid_utf8_is_positioned() {
        let dir = write_files(&[("a.toml", b"# ok\n# \xff\n")]);
        let errors = load_dir(dir.path()).err().map(PermissionErrors::into_vec);
        let error = errors.as_deref().and_then(<[PermissionError]>::first);
        assert_eq!(error.map(PermissionError::kind), Some(Kind::Io));
        assert_eq!(error.and_then(PermissionError::line), Some(2));
        assert_eq!(error.and_then(PermissionError::column), Some(3));
        assert_eq!(
            error.map(PermissionError::message),
            Some("file is not valid UTF-8; save it as UTF-8")
        );
    }

    #[test]
    fn missing_folder_names_folder() {
        let parent = tempfile::tempdir().expect("create temp dir");
        let dir = parent.path().join("permissions");
        let errors = load_dir(&dir).err().map(PermissionErrors::into_vec);
        let error = errors.as_deref().and_then(<[PermissionError]>::first);
        assert_eq!(error.map(PermissionError::path), Some(dir.as_path()));
        assert_eq!(error.map(PermissionError::kind), Some(Kind::Io));
        assert_eq!(error.and_then(PermissionError::position), None);
        assert_eq!(
            error.map(PermissionError::message),
            Some("permissions folder not found; create it, or set `permissions.dir` to an existing folder")
        );
    }

    #[test]
    fn empty_folder_is_empty_policy() {
        let dir = write_files(&[]);
        let policy = load_dir(dir.path()).expect("empty folder loads");
        assert_eq!(policy.roles().count(), 0);
        assert!(policy.grants().is_empty());
        assert!(policy.files().is_empty());
    }

    #[test]
    fn skipped_file_names() {
        let invalid: &[u8] = b"not toml [";
        let dir = write_files(&[
            (".hidden.toml", invalid),
            (".b.toml.swp", invalid),
            ("b.toml~", invalid),
            ("#b.toml#", invalid),
            ("notes.txt", invalid),
            ("b.toml", ROLE_VIEWER.as_bytes()),
        ]);
        fs::create_dir(dir.path().join("sub.toml")).expect("create subfolder");
        fs::write(dir.path().join("sub.toml").join("c.toml"), invalid).expect("write nested file");

        let policy = load_dir(dir.path()).expect("only b.toml is read");
        let names: Vec<_> = policy
            .files()
            .iter()
            .map(|file| file.path.clone())
            .collect();
        assert_eq!(names, vec![dir.path().join("b.toml")]);
    }

    #[test]
    fn files_read_in_name_order() {
        let grant = "[[grants]]\ngroup = \"g\"\nrole = \"viewer\"\nresources = [\"*\"]\n";
        let dir = write_files(&[
            ("b.toml", grant.as_bytes()),
            ("a.toml", ROLE_VIEWER.as_bytes()),
            ("c.toml", grant.as_bytes()),
        ]);
        let policy = load_dir(dir.path()).expect("roles may be used across files");
        let names: Vec<_> = policy
            .files()
            .iter()
            .map(|file| file.path.clone())
            .collect();
        let grant_files: Vec<_> = policy
            .grants()
            .iter()
            .map(|grant| grant.source().path.clone())
            .collect();
        assert_eq!(
            names,
            vec![
                dir.path().join("a.toml"),
                dir.path().join("b.toml"),
                dir.path().join("c.toml")
            ]
        );
        assert_eq!(
            grant_files,
            vec![dir.path().join("b.toml"), dir.path().join("c.toml")]
        );
    }

    #[test]
    fn policy_file_name_table() {
        let cases = [
            ("roles.toml", true),
            ("10-engineering.toml", true),
            (".roles.toml", false),
            (".roles.toml.swp", false),
            ("roles.toml~", false),
            ("#roles.toml#", false),
            (".#roles.toml", false),
            ("roles.toml.bak", false),
            ("roles.TOML", false),
            ("roles", false),
        ];
        for (name, expected) in cases {
            assert_eq!(is_policy_file_name(OsStr::new(name)), expected, "{name}");
        }
    }
}
