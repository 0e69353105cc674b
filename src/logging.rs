//! Log setup: tracing to stderr as text or JSON, with a filter that a config reload can
//! change while the daemon runs.

use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Registry};

use crate::config::LogFormat;

/// Environment variable whose filter overrides `log.level`, at start and on reload.
pub const FILTER_VARIABLE: &str = "IDPSYNC_LOG";

static FILTER_HANDLE: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Installs the global subscriber. Does nothing when one is already installed (as in tests
/// that run several commands in one process).
pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_env(FILTER_VARIABLE).unwrap_or_else(|_| config_filter(level));
    let (filter, handle) = reload::Layer::new(filter);
    // Colour codes only on a terminal: journald and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let layer = fmt::layer().with_ansi(ansi).with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Json => tracing_subscriber::registry().with(filter).with(layer.json()).try_init(),
        LogFormat::Text => tracing_subscriber::registry().with(filter).with(layer).try_init(),
    };
    if installed.is_ok() {
        let _ = FILTER_HANDLE.set(handle);
    }
}

/// Replaces the filter with `level` from a reloaded config. Keeps the current filter when
/// `IDPSYNC_LOG` is set, because the environment wins over the file.
pub fn set_level(level: &str) -> Result<(), String> {
    if std::env::var_os(FILTER_VARIABLE).is_some() {
        tracing::info!("log.level changed but {FILTER_VARIABLE} is set, so its filter stays in force");
        return Ok(());
    }
    let Some(handle) = FILTER_HANDLE.get() else {
        return Ok(());
    };
    handle
        .reload(config_filter(level))
        .map_err(|error| format!("cannot apply log.level {level:?}: {error}"))?;
    tracing::info!(level, "log level changed");
    Ok(())
}

/// Builds the filter for a `log.level` value that config validation has accepted.
fn config_filter(level: &str) -> EnvFilter {
    // The scheduler crate logs its own start-up at info; keep it to warnings unless the
    // operator's filter names it.
    let mut directives = level.to_string();
    if !directives.contains("tokio_cron_scheduler") {
        directives.push_str(",tokio_cron_scheduler=warn");
    }
    EnvFilter::new(directives)
}
