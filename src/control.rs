//! The control socket: HTTP/1.1 with JSON over a Unix socket, so `curl --unix-socket` works as
//! well as the CLI. Only the daemon's own user (and root) may connect; the socket file is
//! mode 0600 and every connection's peer uid is checked.
//!
//! Endpoints: `GET /status`, `POST /sync?dry_run=true&force=true`, `GET /syncs?limit=N`,
//! `GET /syncs/ID`, `GET /events?limit=N&before=ID&kind=KIND&user=USER`, `GET /users`,
//! `GET /groups`, `GET /access/USER`, `GET /tokens`,
//! `POST /tokens` (`{"name": ...}`), `DELETE /tokens/ID`, `POST /reload`, `GET /metrics`.
//! Each endpoint checks its query parameters and returns 400 for an unknown, repeated or
//! invalid one before it does anything.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use crate::daemon::Daemon;
use crate::sync::{EventFilter, EventPage, SyncError, EVENT_KINDS};

/// Largest control request body.
const MAX_CONTROL_BODY: usize = 64 * 1024;

/// Number of items that a list endpoint returns when the request gives no `limit`.
pub const DEFAULT_LIMIT: u64 = 20;
/// Maximum `limit` of `GET /syncs`. Run records are small, so this allows a long history.
pub const MAX_SYNCS_LIMIT: u64 = 10_000;
/// Maximum `limit` of `GET /events`. An event holds whole values before and after a change,
/// so pages stay shorter than those of runs.
pub const MAX_EVENTS_LIMIT: u64 = 1_000;

/// A control-socket answer: status and JSON body, or plain text for `/metrics`.
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    pub fn ok(body: Value) -> Reply {
        Reply { status: StatusCode::OK, body }
    }

    pub fn error(status: StatusCode, message: impl Into<String>) -> Reply {
        Reply { status, body: json!({"error": message.into()}) }
    }
}

/// Binds the socket: creates its folder (mode 0700 when new), replaces a stale socket file
/// that nothing listens on, and refuses to start when another daemon answers there.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if let Some(parent) = path.parent() {
        if !parent.exists() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(parent)?;
        }
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("another daemon is listening on {}", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    // The umask keeps the socket private from the moment it exists; the chmod states it.
    let previous = unsafe { libc::umask(0o177) };
    let listener = UnixListener::bind(path);
    unsafe { libc::umask(previous) };
    let listener = listener?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves control requests until `shutdown` turns true.
pub async fn serve(listener: UnixListener, daemon: Arc<Daemon>, mut shutdown: watch::Receiver<bool>) {
    let own_uid = unsafe { libc::geteuid() };
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, for example: retrying at once would spin and
                    // flood the log, so wait as the SCIM listener does.
                    tracing::warn!(%error, "control socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let peer_uid = stream.peer_cred().map(|cred| cred.uid()).ok();
        if peer_uid != Some(own_uid) && peer_uid != Some(0) {
            tracing::warn!(?peer_uid, "rejected a control connection from another user");
            continue;
        }
        let daemon = daemon.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let daemon = daemon.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(daemon, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(daemon: Arc<Daemon>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = Query::parse(request.uri().query());
    let body = match Limited::new(request.into_body(), MAX_CONTROL_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return render(Reply::error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")),
    };
    if method == Method::GET && path == "/metrics" {
        if let Err(reply) = query.accept(&[]) {
            return render(reply);
        }
        let mut response = Response::new(Full::new(Bytes::from(daemon.metrics_text())));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        return response;
    }
    let reply = match route(&daemon, &method, &path, &query, &body).await {
        Ok(reply) | Err(reply) => reply,
    };
    render(reply)
}

/// Runs the endpoint that `method` and `path` name. A request with query parameters that
/// the endpoint does not take, or with invalid values, gets 400 and runs nothing.
async fn route(daemon: &Daemon, method: &Method, path: &str, query: &Query, body: &[u8]) -> Result<Reply, Reply> {
    let segments: Vec<String> = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned())
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let reply = match (method, segments.as_slice()) {
        (&Method::GET, ["status"]) => {
            query.accept(&[])?;
            daemon.status().await
        }
        (&Method::POST, ["sync"]) => {
            query.accept(&["dry_run", "force"])?;
            daemon.sync_now(query.flag("dry_run")?, query.flag("force")?).await
        }
        (&Method::GET, ["syncs"]) => {
            query.accept(&["limit"])?;
            let limit = query.number("limit", 1..=MAX_SYNCS_LIMIT)?.unwrap_or(DEFAULT_LIMIT);
            daemon.syncs(limit as usize).await
        }
        (&Method::GET, ["events"]) => {
            query.accept(&["limit", "before", "kind", "user"])?;
            let filter = EventFilter {
                limit: query.number("limit", 1..=MAX_EVENTS_LIMIT)?.unwrap_or(DEFAULT_LIMIT) as usize,
                before: query.number("before", 1..=u64::MAX)?,
                kind: query.choice("kind", &EVENT_KINDS)?,
                user: query.text("user")?,
            };
            let user = filter.user.clone();
            events_reply(daemon.organization().events(filter).await, user)
        }
        (&Method::GET, ["syncs", id]) => {
            query.accept(&[])?;
            daemon.sync_run(id).await
        }
        (&Method::GET, ["users"]) => {
            query.accept(&[])?;
            daemon.users().await
        }
        (&Method::GET, ["groups"]) => {
            query.accept(&[])?;
            daemon.groups().await
        }
        (&Method::GET, ["access", user]) => {
            query.accept(&[])?;
            daemon.access(user).await
        }
        (&Method::GET, ["tokens"]) => {
            query.accept(&[])?;
            daemon.list_tokens().await
        }
        (&Method::POST, ["tokens"]) => {
            query.accept(&[])?;
            let name = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|body| body.get("name").and_then(Value::as_str).map(str::to_string));
            match name {
                Some(name) => daemon.create_token(&name).await,
                None => Reply::error(StatusCode::BAD_REQUEST, "send a JSON body {\"name\": \"...\"}"),
            }
        }
        (&Method::DELETE, ["tokens", id]) => {
            query.accept(&[])?;
            daemon.revoke_token(id).await
        }
        (&Method::POST, ["reload"]) => {
            query.accept(&[])?;
            daemon.reload().await
        }
        _ => Reply::error(StatusCode::NOT_FOUND, format!("no control endpoint {method} {path}")),
    };
    Ok(reply)
}

/// The decoded query parameters of one request, in the order given.
struct Query {
    parameters: Vec<(String, String)>,
}

impl Query {
    fn parse(query: Option<&str>) -> Query {
        let parameters = query
            .map(|query| form_urlencoded::parse(query.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        Query { parameters }
    }

    /// Rejects a parameter that is not in `accepted`, and one given more than once.
    fn accept(&self, accepted: &[&str]) -> Result<(), Reply> {
        for (index, (name, _)) in self.parameters.iter().enumerate() {
            if !accepted.contains(&name.as_str()) {
                let expected = if accepted.is_empty() { "none".to_string() } else { accepted.join(", ") };
                return Err(invalid_parameter(name, format!("unknown query parameter {name:?}; this endpoint accepts: {expected}")));
            }
            if self.parameters[..index].iter().any(|(earlier, _)| earlier == name) {
                return Err(invalid_parameter(name, format!("query parameter {name:?} is given more than once")));
            }
        }
        Ok(())
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.parameters.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// Reads a boolean parameter: absent is false, and a bare `name` (empty value) is true.
    fn flag(&self, name: &str) -> Result<bool, Reply> {
        let Some(value) = self.value(name) else {
            return Ok(false);
        };
        match value.to_ascii_lowercase().as_str() {
            "" | "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(invalid_parameter(name, format!("{name} must be true or false (or 1, 0, yes, no), found {value:?}"))),
        }
    }

    /// Reads a whole-number parameter within `range`, or `None` when it is absent.
    fn number(&self, name: &str, range: RangeInclusive<u64>) -> Result<Option<u64>, Reply> {
        let Some(value) = self.value(name) else {
            return Ok(None);
        };
        match value.parse::<u64>() {
            Ok(number) if range.contains(&number) => Ok(Some(number)),
            _ if *range.end() == u64::MAX => Err(invalid_parameter(
                name,
                format!("{name} must be a whole number of at least {}, found {value:?}", range.start()),
            )),
            _ => Err(invalid_parameter(
                name,
                format!("{name} must be a whole number from {} to {}, found {value:?}", range.start(), range.end()),
            )),
        }
    }

    /// Reads a parameter that must be one of `choices`, or `None` when it is absent.
    fn choice(&self, name: &str, choices: &[&str]) -> Result<Option<String>, Reply> {
        let Some(value) = self.value(name) else {
            return Ok(None);
        };
        if !choices.contains(&value) {
            return Err(invalid_parameter(name, format!("{name} must be one of {}, found {value:?}", choices.join(", "))));
        }
        Ok(Some(value.to_string()))
    }

    /// Reads a parameter that must not be empty, or `None` when it is absent.
    fn text(&self, name: &str) -> Result<Option<String>, Reply> {
        let Some(value) = self.value(name) else {
            return Ok(None);
        };
        if value.trim().is_empty() {
            return Err(invalid_parameter(name, format!("{name} must not be empty")));
        }
        Ok(Some(value.to_string()))
    }
}

fn events_reply(page: Result<Option<EventPage>, SyncError>, user: Option<String>) -> Reply {
    match page {
        Ok(Some(page)) => Reply::ok(json!(page)),
        Ok(None) => Reply::error(
            StatusCode::NOT_FOUND,
            format!("no user {:?} in the organization; it appears after the sync that follows its provisioning", user.unwrap_or_default()),
        ),
        Err(error) => Reply::error(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}

/// Builds a 400 reply about the query parameter `name`.
fn invalid_parameter(name: &str, message: String) -> Reply {
    Reply { status: StatusCode::BAD_REQUEST, body: json!({"error": message, "parameter": name}) }
}

fn render(reply: Reply) -> Response<Full<Bytes>> {
    let mut bytes = serde_json::to_vec_pretty(&reply.body).unwrap_or_default();
    bytes.push(b'\n');
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = reply.status;
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    response
}

/// Raised by the control client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the daemon is not running (no control socket answers at {0}); start it with `idpsync serve` or `systemctl start idpsync`")]
    NotRunning(PathBuf),
    #[error("permission denied on the control socket {0}; run as the daemon's user or root")]
    PermissionDenied(PathBuf),
    #[error("control socket {path}: {message}")]
    Protocol { path: PathBuf, message: String },
}

/// Sends one request to the daemon and returns its status and JSON body.
pub async fn request(socket: &Path, method: Method, path: &str, body: Option<Value>) -> Result<(StatusCode, Value), ClientError> {
    let protocol = |message: String| ClientError::Protocol { path: socket.to_path_buf(), message };
    let stream = UnixStream::connect(socket).await.map_err(|error| match error.kind() {
        std::io::ErrorKind::PermissionDenied => ClientError::PermissionDenied(socket.to_path_buf()),
        _ => ClientError::NotRunning(socket.to_path_buf()),
    })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| protocol(error.to_string()))?;
    tokio::spawn(connection);
    let bytes = body.map(|body| serde_json::to_vec(&body).unwrap_or_default()).unwrap_or_default();
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, "idpsync")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .map_err(|error| protocol(error.to_string()))?;
    let response = sender.send_request(request).await.map_err(|error| protocol(error.to_string()))?;
    let status = response.status();
    let body = response.into_body().collect().await.map_err(|error| protocol(error.to_string()))?.to_bytes();
    let value = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    Ok((status, value))
}
