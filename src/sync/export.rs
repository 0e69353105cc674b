//! The export file: the resolved organization as one JSON document, written after each
//! applied sync and each permission change when `export.path` is set.
//!
//! ```json
//! {
//!   "generated": "2025-01-31T08:00:00.123Z",
//!   "sync_run": 42,
//!   "users": [
//!     {
//!       "id": "2819c223-7f76-453a-919d-413861904646",
//!       "userName": "bjensen@example.com",
//!       "displayName": "Barbara Jensen",
//!       "externalId": "bjensen",
//!       "active": true,
//!       "groups": ["e9e30dba-f08f-4109-8486-d5c6a331660a"],
//!       "access": {
//!         "roles": ["editor"],
//!         "permissions": ["asset.read", "asset.write"],
//!         "grants": [
//!           {
//!             "group": {"id": "e9e30dba-...", "display_name": "Artists", "external_id": null},
//!             "role": "editor",
//!             "resources": ["asset:rig-*"],
//!             "permissions": ["asset.read", "asset.write"],
//!             "source": "/etc/idpsync/permissions/artists.toml:4"
//!           }
//!         ]
//!       }
//!     }
//!   ],
//!   "groups": [
//!     {
//!       "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
//!       "displayName": "Artists",
//!       "externalId": null,
//!       "members": ["2819c223-7f76-453a-919d-413861904646"],
//!       "roles": ["editor"],
//!       "unmapped": false
//!     }
//!   ]
//! }
//! ```
//!
//! - `generated`: when the file was written (RFC 3339, UTC).
//! - `sync_run`: id of the latest sync run that applied changes, `null` before the first.
//! - `users`: every organization user in id order, deactivated and deleted users included.
//!   A deactivated user keeps `groups` (a deleted one has none) and always has empty access.
//! - `groups`: every external group in id order; `members` lists user ids only.
//!   `unmapped` is true when no grant names the group, so it gives its members nothing.
//!
//! The file is replaced atomically. It is written to a temporary file in the same folder and
//! flushed to disk, then renamed over the old file, and then the folder is flushed. A reader
//! therefore opens either the old or the new document, never a partial one. Its mode is 0640.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use redb::{ReadTransaction, ReadableTable};
use serde::Serialize;
use serde_json::json;

use super::model::{self, OrgGroup, OrgUser};
use super::query::group_roles;
use crate::permissions::{Access, Policy};
use crate::store::{
    meta_get, Store, StoreError, META, ORG_ACCESS, ORG_GROUPS, ORG_MEMBERS, ORG_MEMBER_OF,
    ORG_USERS,
};

/// Raised when the export file cannot be written; the organization is unaffected.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(
        "cannot write export file {path}: {source}; check that the folder exists and is writable"
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the organization for the export: {0}")]
    Store(#[from] StoreError),
    #[error("cannot encode the export: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Writes the export file at `path` from one read snapshot of `store`.
pub fn write(store: &Store, policy: &Policy, path: &Path) -> Result<(), ExportError> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = folder.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let io_error = |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    };

    let result = write_temporary(store, policy, &temporary);
    if let Err(error) = result {
        let _ = std::fs::remove_file(&temporary);
        return Err(error);
    }
    if let Err(source) = std::fs::rename(&temporary, path) {
        let _ = std::fs::remove_file(&temporary);
        return Err(io_error(source));
    }
    // The rename is durable only once the folder's entry is on disk.
    File::open(&folder)
        .and_then(|folder| folder.sync_all())
        .map_err(io_error)
}

fn write_temporary(store: &Store, policy: &Policy, temporary: &Path) -> Result<(), ExportError> {
    let io_error = |source| ExportError::Io {
        path: temporary.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(temporary)
        .map_err(io_error)?;
    let mut out = BufWriter::new(file);
    let txn = store.read()?;
    write_document(&txn, policy, &mut out).map_err(|error| match error {
        DocumentError::Io(source) => io_error(source),
        DocumentError::Store(error) => ExportError::Store(error),
        DocumentError::Encode(error) => ExportError::Encode(error),
    })?;
    let file = out
        .into_inner()
        .map_err(|error| io_error(error.into_error()))?;
    file.sync_all().map_err(io_error)
}

enum DocumentError {
    Io(std::io::Error),
    Store(StoreError),
    Encode(serde_json::Error),
}

macro_rules! document_error_from {
    ($($source:ty),*) => {
        $(impl From<$source> for DocumentError {
            fn from(error: $source) -> Self {
                DocumentError::Store(error.into())
            }
        })*
    };
}
document_error_from!(StoreError, redb::StorageError, redb::TableError);

fn io(error: std::io::Error) -> DocumentError {
    DocumentError::Io(error)
}

fn encode(error: serde_json::Error) -> DocumentError {
    DocumentError::Encode(error)
}

#[derive(Serialize)]
struct ExportUser<'a> {
    id: &'a str,
    #[serde(rename = "userName")]
    user_name: &'a str,
    #[serde(rename = "displayName")]
    display_name: Option<&'a str>,
    #[serde(rename = "externalId")]
    external_id: Option<&'a str>,
    active: bool,
    groups: Vec<String>,
    access: Access,
}

#[derive(Serialize)]
struct ExportGroup<'a> {
    id: &'a str,
    #[serde(rename = "displayName")]
    display_name: &'a str,
    #[serde(rename = "externalId")]
    external_id: Option<&'a str>,
    members: Vec<String>,
    roles: Vec<String>,
    unmapped: bool,
}

/// Streams the document one user and one group at a time, so memory stays small.
fn write_document(
    txn: &ReadTransaction,
    policy: &Policy,
    out: &mut impl Write,
) -> Result<(), DocumentError> {
    let meta = txn.open_table(META)?;
    let run = meta_get(&meta, model::LAST_APPLIED_RUN)?;
    let header = json!({
        "generated": crate::store::now_rfc3339(),
        "sync_run": (run > 0).then_some(run),
    });
    let header = serde_json::to_string(&header).map_err(encode)?;
    // The header object is written without its closing brace so the arrays follow it.
    let header = header.strip_suffix('}').unwrap_or(&header);
    write!(out, "{header},\"users\":[").map_err(io)?;
    write_users(txn, out)?;
    write!(out, "],\"groups\":[").map_err(io)?;
    write_groups(txn, policy, out)?;
    writeln!(out, "]}}").map_err(io)?;
    Ok(())
}

fn write_users(txn: &ReadTransaction, out: &mut impl Write) -> Result<(), DocumentError> {
    let users = txn.open_table(ORG_USERS)?;
    let member_of = txn.open_table(ORG_MEMBER_OF)?;
    let access = txn.open_table(ORG_ACCESS)?;
    for (index, entry) in users.iter()?.enumerate() {
        let (_, bytes) = entry?;
        let user: OrgUser = model::decode(bytes.value())?;
        let item = ExportUser {
            id: &user.id,
            user_name: &user.attributes.user_name,
            display_name: user.attributes.display_name.as_deref(),
            external_id: user.attributes.external_id.as_deref(),
            active: user.active,
            groups: model::pair_range(&member_of, &user.id)?,
            access: model::get_access(&access, &user.id)?,
        };
        if index > 0 {
            out.write_all(b",").map_err(io)?;
        }
        serde_json::to_writer(&mut *out, &item).map_err(encode)?;
    }
    Ok(())
}

fn write_groups(
    txn: &ReadTransaction,
    policy: &Policy,
    out: &mut impl Write,
) -> Result<(), DocumentError> {
    let groups = txn.open_table(ORG_GROUPS)?;
    let members = txn.open_table(ORG_MEMBERS)?;
    for (index, entry) in groups.iter()?.enumerate() {
        let (_, bytes) = entry?;
        let group: OrgGroup = model::decode(bytes.value())?;
        let roles = group_roles(policy, &group);
        let item = ExportGroup {
            id: &group.id,
            display_name: &group.attributes.display_name,
            external_id: group.attributes.external_id.as_deref(),
            members: model::pair_range(&members, &group.id)?,
            unmapped: roles.is_empty(),
            roles,
        };
        if index > 0 {
            out.write_all(b",").map_err(io)?;
        }
        serde_json::to_writer(&mut *out, &item).map_err(encode)?;
    }
    Ok(())
}
