//! The configuration file: parsing (unknown keys rejected, errors with file, line and column),
//! defaults, and resolution of relative paths against the file's folder.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The default config path when neither `--config` nor `IDPSYNC_CONFIG` is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/idpsync/idpsync.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid { path: PathBuf, line: usize, column: usize, message: String },
    #[error("{path}: {message}")]
    Value { path: PathBuf, message: String },
}

/// The validated configuration, with every path absolute.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub server: ServerConfig,
    pub tls: TlsConfig,
    pub store: StoreConfig,
    pub control: ControlConfig,
    pub permissions: PermissionsConfig,
    pub sync: SyncConfig,
    pub export: ExportConfig,
    pub scim: ScimConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port of the SCIM HTTPS listener.
    pub listen: SocketAddr,
    /// The SCIM base URL as the IdP reaches it, without a trailing slash.
    pub public_url: String,
    /// Largest accepted request body in bytes; larger ones get 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Open connections at most; further ones wait in the accept queue.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Seconds that a shutdown waits for in-flight requests.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    #[serde(default)]
    pub self_signed: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub path: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    pub socket: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionsConfig {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    /// Cron expression with seconds, in UTC.
    #[serde(default = "default_schedule")]
    pub schedule: String,
    #[serde(default)]
    pub on_startup: bool,
    #[serde(default)]
    pub guard: GuardConfig,
}

/// Limits on how much one sync may remove before it needs `--force`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardConfig {
    /// Users deactivated, or external groups deleted, by one sync at most (each kind on its own).
    #[serde(default = "default_guard_max_removed")]
    pub max_removed: u64,
    /// Share of the organization's active users, or of its groups, that one sync may remove,
    /// from 0.0 to 1.0. It only applies when more than `max_removed_floor` would be removed.
    #[serde(default = "default_guard_max_removed_share")]
    pub max_removed_share: f64,
    /// Removals up to this count never trip the share limit, so small organizations can sync.
    #[serde(default = "default_guard_floor")]
    pub max_removed_floor: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportConfig {
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScimConfig {
    /// Largest page a list returns; larger `count` values are capped to it.
    #[serde(default = "default_max_results")]
    pub max_results: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `idpsync=debug`.
    #[serde(default = "default_log_level")]
    pub level: String,
    /// `text` or `json`.
    #[serde(default = "default_log_format")]
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The file as written, before defaults and path resolution.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server: ServerConfig,
    tls: TlsConfig,
    store: StoreConfig,
    control: ControlConfig,
    permissions: PermissionsConfig,
    #[serde(default)]
    sync: Option<SyncConfig>,
    #[serde(default)]
    export: ExportConfig,
    #[serde(default)]
    scim: Option<ScimConfig>,
    #[serde(default)]
    log: Option<LogConfig>,
}

fn default_max_body_bytes() -> usize {
    1024 * 1024
}
fn default_max_connections() -> usize {
    1024
}
fn default_shutdown_timeout() -> u64 {
    10
}
fn default_schedule() -> String {
    "0 0 3 * * *".to_string()
}
fn default_guard_max_removed() -> u64 {
    500
}
fn default_guard_max_removed_share() -> f64 {
    0.25
}
fn default_guard_floor() -> u64 {
    10
}
fn default_max_results() -> usize {
    1000
}
fn default_log_level() -> String {
    "info".to_string()
}
fn default_log_format() -> LogFormat {
    LogFormat::Text
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            max_removed: default_guard_max_removed(),
            max_removed_share: default_guard_max_removed_share(),
            max_removed_floor: default_guard_floor(),
        }
    }
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig { schedule: default_schedule(), on_startup: false, guard: GuardConfig::default() }
    }
}

impl Default for ScimConfig {
    fn default() -> Self {
        ScimConfig { max_results: default_max_results() }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: default_log_level(), format: default_log_format() }
    }
}

impl Config {
    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Self::parse(path, &text)
    }

    /// Parses `text` as the content of `path`; relative paths resolve against its folder.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|error| {
            let (line, column) = error
                .span()
                .map(|span| line_and_column(text, span.start))
                .unwrap_or((1, 1));
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message: error.message().trim_end().to_string(),
            }
        })?;
        let absolute = normalize(&std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()));
        let base = absolute.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve = |relative: PathBuf| normalize(&base.join(relative));
        let config = Config {
            file: absolute.clone(),
            server: raw.server,
            tls: TlsConfig {
                cert: resolve(raw.tls.cert),
                key: resolve(raw.tls.key),
                self_signed: raw.tls.self_signed,
            },
            store: StoreConfig { path: resolve(raw.store.path) },
            control: ControlConfig { socket: resolve(raw.control.socket) },
            permissions: PermissionsConfig { dir: resolve(raw.permissions.dir) },
            sync: raw.sync.unwrap_or_default(),
            export: ExportConfig { path: raw.export.path.map(resolve) },
            scim: raw.scim.unwrap_or_default(),
            log: raw.log.unwrap_or_default(),
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Value { path: self.file.clone(), message };
        let url = self.server.public_url.trim_end_matches('/');
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(invalid(format!(
                "server.public_url must be an absolute https:// URL, found {:?}",
                self.server.public_url
            )));
        }
        if self.server.max_body_bytes < 1024 {
            return Err(invalid("server.max_body_bytes must be at least 1024".to_string()));
        }
        if self.server.max_connections == 0 {
            return Err(invalid("server.max_connections must be at least 1".to_string()));
        }
        if self.scim.max_results == 0 {
            return Err(invalid("scim.max_results must be at least 1".to_string()));
        }
        let share = self.sync.guard.max_removed_share;
        if !(0.0..=1.0).contains(&share) {
            return Err(invalid(format!(
                "sync.guard.max_removed_share must be between 0.0 and 1.0, found {share}"
            )));
        }
        if let Err(error) = crate::scheduler::parse_schedule(&self.sync.schedule) {
            return Err(invalid(format!(
                "sync.schedule {:?} is not a valid cron expression with seconds \
                 (\"sec min hour day month weekday\"): {error}",
                self.sync.schedule
            )));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(invalid(format!("log.level {:?} is not a valid level or filter", self.log.level)));
        }
        Ok(())
    }

    /// The SCIM base URL without a trailing slash.
    pub fn public_url(&self) -> &str {
        self.server.public_url.trim_end_matches('/')
    }
}

/// Removes `.` and `..` components without touching the file system, so messages show
/// `/srv/app/var/idpsync.sock` rather than `/srv/app/config/../var/idpsync.sock`.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut normalized = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !normalized.pop() {
                    normalized.push("..");
                }
            }
            other => normalized.push(other),
        }
    }
    normalized
}

/// Converts a byte offset into a 1-based line and column (in characters).
pub fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|index| index + 1).unwrap_or(0);
    let column = before.get(line_start..).map(|rest| rest.chars().count()).unwrap_or(0) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[server]
listen = "127.0.0.1:8443"
public_url = "https://127.0.0.1:8443/scim/v2"
[tls]
cert = "tls/cert.pem"
key = "tls/key.pem"
self_signed = true
[store]
path = "state/idpsync.redb"
[control]
socket = "state/idpsync.sock"
[permissions]
dir = "permissions"
"#;

    #[test]
    fn relative_paths_resolve_against_config_folder() {
        let config = Config::parse(Path::new("/etc/idpsync/idpsync.toml"), MINIMAL).unwrap();
        assert_eq!(config.store.path, Path::new("/etc/idpsync/state/idpsync.redb"));
        assert_eq!(config.tls.cert, Path::new("/etc/idpsync/tls/cert.pem"));
        assert_eq!(config.permissions.dir, Path::new("/etc/idpsync/permissions"));
        let text = MINIMAL.replace("state/idpsync.redb", "../var/idpsync.redb");
        let config = Config::parse(Path::new("/srv/app/config/idpsync.toml"), &text).unwrap();
        assert_eq!(config.store.path, Path::new("/srv/app/var/idpsync.redb"));
        assert_eq!(config.sync.schedule, "0 0 3 * * *");
        assert!(config.export.path.is_none());
    }

    #[test]
    fn unknown_key_reports_line_and_column() {
        let text = MINIMAL.replace("self_signed = true", "self_signed = true\nselfsigned = 1");
        let error = Config::parse(Path::new("/x/idpsync.toml"), &text).unwrap_err();
        let ConfigError::Invalid { line, column, message, .. } = error else {
            panic!("expected a parse error, got {error}");
        };
        assert_eq!(line, 9);
        assert_eq!(column, 1);
        assert!(message.contains("selfsigned"), "{message}");
    }

    #[test]
    fn wrong_type_reports_position() {
        let text = MINIMAL.replace("self_signed = true", "self_signed = \"yes\"");
        let error = Config::parse(Path::new("/x/idpsync.toml"), &text).unwrap_err();
        assert!(matches!(error, ConfigError::Invalid { line: 8, .. }), "{error}");
    }

    #[test]
    fn invalid_schedule_is_rejected() {
        let text = format!("{MINIMAL}[sync]\nschedule = \"every day\"\n");
        let error = Config::parse(Path::new("/x/idpsync.toml"), &text).unwrap_err();
        assert!(error.to_string().contains("sync.schedule"), "{error}");

        let text = format!("{MINIMAL}[sync]\nschedule = \"0 0 3 * *\"\n");
        let error = Config::parse(Path::new("/x/idpsync.toml"), &text).unwrap_err();
        assert!(error.to_string().contains("it has 5 field(s), and six are needed"), "{error}");

        let text = format!("{MINIMAL}[sync]\nschedule = \"0 0 25 * * *\"\n");
        let error = Config::parse(Path::new("/x/idpsync.toml"), &text).unwrap_err();
        assert!(error.to_string().contains("sync.schedule"), "{error}");
    }

    #[test]
    fn line_and_column_counts_characters() {
        assert_eq!(line_and_column("ab\ncé d", 7), (2, 4));
        assert_eq!(line_and_column("", 5), (1, 1));
    }
}
