//! The one redb file that holds all state: table definitions, the schema version, and the
//! writer task that batches concurrent writes into shared durable commits.

mod writer;

pub mod directory;
pub mod tokens;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use redb::{Database, MultimapTableDefinition, ReadTransaction, ReadableTable, TableDefinition};

pub use writer::{JobError, Writer, WriterStats};

/// Raised when the store cannot be opened or a storage operation fails.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "store {path} is in use by another process; stop the running daemon \
         (or use the CLI, which talks to it over the control socket)"
    )]
    InUse { path: PathBuf },
    #[error("cannot open store {path}: {source}")]
    Open { path: PathBuf, source: redb::DatabaseError },
    #[error("cannot create folder {path} for the store: {source}")]
    Folder { path: PathBuf, source: std::io::Error },
    #[error(
        "store {path} has schema version {found}, but this idpsync supports up to {supported}; \
         run a newer idpsync"
    )]
    Version { path: PathBuf, found: u64, supported: u64 },
    #[error("storage error: {0}")]
    Storage(String),
    #[error("the store is not available: it is shutting down or reopening after a storage error")]
    WriterStopped,
    #[error("the store is reopening after a storage error; retry shortly")]
    Reopening,
}

impl StoreError {
    /// Whether the store cannot take requests for now, so the client should retry later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::WriterStopped | StoreError::Reopening)
    }
}

macro_rules! storage_error_from {
    ($($source:ty),*) => {
        $(impl From<$source> for StoreError {
            fn from(error: $source) -> Self {
                StoreError::Storage(error.to_string())
            }
        })*
    };
}
storage_error_from!(
    redb::Error,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// The schema version this build writes. Opening a store with an older version migrates it.
pub const SCHEMA_VERSION: u64 = 1;

/// Store-wide values: `schema_version`, the dirty-key sequence, counters.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Directory: SCIM users and groups as the IdP pushed them (JSON documents; group members
/// are kept out of the document, in `MEMBERS` and `MEMBER_OF`).
pub const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
pub const GROUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("groups");
/// Lowercased `userName` to user id (unique).
pub const USER_BY_NAME: TableDefinition<&str, &str> = TableDefinition::new("user_by_name");
/// `externalId` (case-exact) to user ids.
pub const USER_BY_EXTERNAL_ID: MultimapTableDefinition<&str, &str> =
    MultimapTableDefinition::new("user_by_external_id");
/// Lowercased `displayName` to user ids.
pub const USER_BY_DISPLAY_NAME: MultimapTableDefinition<&str, &str> =
    MultimapTableDefinition::new("user_by_display_name");
/// Lowercased group `displayName` to group id (unique).
pub const GROUP_BY_NAME: TableDefinition<&str, &str> = TableDefinition::new("group_by_name");
/// `externalId` to group ids.
pub const GROUP_BY_EXTERNAL_ID: MultimapTableDefinition<&str, &str> =
    MultimapTableDefinition::new("group_by_external_id");
/// (group id, member id) to the member's kind (`MEMBER_USER` or `MEMBER_GROUP`).
pub const MEMBERS: TableDefinition<(&str, &str), u8> = TableDefinition::new("members");
/// (member id, group id): the reverse of `MEMBERS`.
pub const MEMBER_OF: TableDefinition<(&str, &str), ()> = TableDefinition::new("member_of");
/// Directory changes not yet applied to the organization: key (`u:ID`, `g:ID`, `m:GROUP:USER`)
/// to the sequence number of its latest change.
pub const DIRTY: TableDefinition<&str, u64> = TableDefinition::new("dirty");

/// Bearer tokens: id to a JSON record holding the SHA-256 of the token, never the token.
pub const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");

/// Organization: the applied state that only a sync or a permission change alters.
pub const ORG_USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("org_users");
pub const ORG_USER_BY_NAME: TableDefinition<&str, &str> = TableDefinition::new("org_user_by_name");
pub const ORG_GROUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("org_groups");
pub const ORG_MEMBERS: TableDefinition<(&str, &str), ()> = TableDefinition::new("org_members");
pub const ORG_MEMBER_OF: TableDefinition<(&str, &str), ()> = TableDefinition::new("org_member_of");
/// User id to the JSON of the user's effective access (absent when the user has none).
pub const ORG_ACCESS: TableDefinition<&str, &[u8]> = TableDefinition::new("org_access");
/// Sync run id to its JSON record.
pub const SYNC_RUNS: TableDefinition<u64, &[u8]> = TableDefinition::new("sync_runs");
/// Audit event id to its JSON record.
pub const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_events");

pub const MEMBER_USER: u8 = 0;
pub const MEMBER_GROUP: u8 = 1;

/// The open store: the database and its writer task.
///
/// redb refuses every transaction on a handle after one of its writes failed (a full disk,
/// for example) until the database is opened again. The writer then empties `db`, reopens the
/// file and puts the new handle back; reads in between fail with `StoreError::Reopening`.
#[derive(Clone)]
pub struct Store {
    db: Arc<ArcSwapOption<Database>>,
    writer: Writer,
    path: PathBuf,
}

impl Store {
    /// Opens (or creates) the store and starts its writer. Fails at once when another process
    /// holds the file.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|source| StoreError::Folder { path: parent.to_path_buf(), source })?;
        }
        let db = Database::create(path).map_err(|source| match source {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse { path: path.to_path_buf() },
            source => StoreError::Open { path: path.to_path_buf(), source },
        })?;
        restrict_permissions(path);
        migrate(&db, path)?;
        let db = Arc::new(ArcSwapOption::from_pointee(db));
        let writer = Writer::start(db.clone(), path.to_path_buf());
        Ok(Store { db, writer, path: path.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A read snapshot; it never waits for writes.
    pub fn read(&self) -> Result<ReadTransaction, StoreError> {
        let db = self.db.load_full().ok_or(StoreError::Reopening)?;
        Ok(db.begin_read()?)
    }

    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Size of the store file in bytes.
    pub fn file_size(&self) -> u64 {
        std::fs::metadata(&self.path).map(|metadata| metadata.len()).unwrap_or(0)
    }

    /// Stops the writer after the jobs already queued; the database closes when the last
    /// handle drops.
    pub async fn close(self) {
        self.writer.stop().await;
    }
}

/// Keeps other local users out of the store file (it holds token hashes and user data).
fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

/// Creates every table and records the schema version; refuses a store from a newer build.
fn migrate(db: &Database, path: &Path) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        let found = meta.get("schema_version")?.map(|value| value.value());
        if let Some(found) = found {
            if found > SCHEMA_VERSION {
                return Err(StoreError::Version {
                    path: path.to_path_buf(),
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
        }
        // Version 1 is the first schema, so there is nothing to migrate from yet; a later
        // version adds its steps here, keyed on `found`.
        meta.insert("schema_version", SCHEMA_VERSION)?;
    }
    txn.open_table(USERS)?;
    txn.open_table(GROUPS)?;
    txn.open_table(USER_BY_NAME)?;
    txn.open_multimap_table(USER_BY_EXTERNAL_ID)?;
    txn.open_multimap_table(USER_BY_DISPLAY_NAME)?;
    txn.open_table(GROUP_BY_NAME)?;
    txn.open_multimap_table(GROUP_BY_EXTERNAL_ID)?;
    txn.open_table(MEMBERS)?;
    txn.open_table(MEMBER_OF)?;
    txn.open_table(DIRTY)?;
    txn.open_table(TOKENS)?;
    txn.open_table(ORG_USERS)?;
    txn.open_table(ORG_USER_BY_NAME)?;
    txn.open_table(ORG_GROUPS)?;
    txn.open_table(ORG_MEMBERS)?;
    txn.open_table(ORG_MEMBER_OF)?;
    txn.open_table(ORG_ACCESS)?;
    txn.open_table(SYNC_RUNS)?;
    txn.open_table(AUDIT)?;
    txn.commit()?;
    Ok(())
}

/// Collects the second part of every `(prefix, second)` key of a pair table, such as the
/// member ids of one group in `MEMBERS`.
pub fn pair_range<V: redb::Value + 'static>(
    table: &impl ReadableTable<(&'static str, &'static str), V>,
    prefix: &str,
) -> Result<Vec<String>, StoreError> {
    let mut found = Vec::new();
    for entry in table.range((prefix, "")..)? {
        let (key, _) = entry?;
        let (first, second) = key.value();
        if first != prefix {
            break;
        }
        found.push(second.to_string());
    }
    Ok(found)
}

/// Reads a counter from `META`, 0 when absent.
pub fn meta_get(table: &impl redb::ReadableTable<&'static str, u64>, key: &str) -> Result<u64, StoreError> {
    Ok(table.get(key)?.map(|value| value.value()).unwrap_or(0))
}

/// Returns the current UTC time as an RFC 3339 timestamp with exactly three fractional digits, such
/// as `2026-12-04T18:43:53.700Z`, so that timestamps sort as strings in time order.
pub fn now_rfc3339() -> String {
    format_rfc3339(time::OffsetDateTime::now_utc())
}

fn format_rfc3339(at: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.to_offset(time::UtcOffset::UTC).format(&format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_fixed_width() {
        let at = time::macros::datetime!(2026-12-04 18:43:53.7 +02:00);
        assert_eq!(format_rfc3339(at), "2026-12-04T16:43:53.700Z");
        let whole = time::macros::datetime!(2026-12-04 18:43:53 UTC);
        assert_eq!(format_rfc3339(whole), "2026-12-04T18:43:53.000Z");
        assert_eq!(now_rfc3339().len(), "2026-12-04T18:43:53.000Z".len());
    }
}
