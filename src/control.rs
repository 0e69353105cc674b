//! The control socket: HTTP/1.1 with JSON over a Unix socket, so `curl --unix-socket` works as
//! well as the CLI. Only the daemon's own user (and root) may connect; the socket file is
//! mode 0600 and every connection's peer uid is checked.
//!
//! Endpoints: `GET /status`, `POST /sync?dry_run=true&force=true`, `GET /syncs?limit=N`,
//! `GET /syncs/ID`, `GET /events?limit=N&before=ID&kind=KIND&user=USER`, `GET /users`,
//! `GET /groups`, `GET /access/USER`, `GET /tokens`,
//! `POST /tokens` (`{"name": ...}`), `DELETE /tokens/ID`, `POST /reload`, `GET /metrics`.
//! Each endpoint checks its query parameters and returns 400 for an unknown, repeated or
//! invalid one before it does anything. A known path with another method gets 405 and an
//! `Allow` header. Every error the endpoints return is a JSON object `{"error": ...}`.
//!
//! A connection must send each request's headers within [`HEADER_TIMEOUT`], idle or not, and
//! its body within [`BODY_TIMEOUT`]; otherwise the daemon closes it.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use crate::daemon::Daemon;
use crate::sync::{EventFilter, EventPage, SyncError, EVENT_KINDS};

/// Largest control request body.
const MAX_CONTROL_BODY: usize = 64 * 1024;
/// Time that a connection has to send a request's headers, counted from the moment the
/// daemon waits for them, so an idle connection closes after it too.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time that a request has to send its whole body once its headers have arrived.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Number of items that a list endpoint returns when the request gives no `limit`.
pub const DEFAULT_LIMIT: u64 = 20;
/// Maximum `limit` of `GET /syncs`. Run records are small, so this allows a long history.
pub const MAX_SYNCS_LIMIT: u64 = 10_000;
/// Maximum `limit` of `GET /events`. An event contains whole values before and after a change,
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
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(daemon: Arc<Daemon>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = Query::parse(request.uri().query());
    if let Some(allowed) = allowed_methods(&segments(&path)).filter(|allowed| !allowed.contains(&method.as_str())) {
        let mut response = render(Reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{path} does not take {method}; use {}", allowed.join(" or ")),
        ));
        if let Ok(value) = http::HeaderValue::from_str(&allowed.join(", ")) {
            response.headers_mut().insert(http::header::ALLOW, value);
        }
        return response;
    }
    let collected = tokio::time::timeout(BODY_TIMEOUT, Limited::new(request.into_body(), MAX_CONTROL_BODY).collect()).await;
    let body = match collected {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(error)) if error.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return render(Reply::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body too large; the limit is {MAX_CONTROL_BODY} bytes"),
            ))
        }
        Ok(Err(error)) => {
            tracing::debug!(%method, %path, %error, "reading a control request body failed");
            return render(Reply::error(StatusCode::BAD_REQUEST, format!("cannot read the request body: {error}")));
        }
        Err(_) => {
            tracing::debug!(%method, %path, "a control request body timed out");
            let mut response = render(Reply::error(
                StatusCode::REQUEST_TIMEOUT,
                format!("the request body did not arrive within {} s", BODY_TIMEOUT.as_secs()),
            ));
            response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
            return response;
        }
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
    let segments = segments(path);
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

/// Splits a request path into its percent-decoded segments, leaving out empty ones.
fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned())
        .collect()
}

/// Returns the methods that the endpoint at `segments` takes, or `None` when no endpoint has
/// that path.
fn allowed_methods(segments: &[String]) -> Option<&'static [&'static str]> {
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segments.as_slice() {
        ["status" | "syncs" | "events" | "users" | "groups" | "metrics"] | ["syncs" | "access", _] => Some(&["GET"]),
        ["sync" | "reload"] => Some(&["POST"]),
        ["tokens"] => Some(&["GET", "POST"]),
        ["tokens", _] => Some(&["DELETE"]),
        _ => None,
    }
}

/// Quotes `text` for a message: in double quotes, with a quote, a backslash and each control
/// character escaped once (`\n`, `\t`, `\0`, `\x1b`), and every other character as it is.
pub fn quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for character in text.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            _ => push_escaped(&mut quoted, character),
        }
    }
    quoted.push('"');
    quoted
}

/// Appends `character` to `text`, or its escape when it is a control character.
pub fn push_escaped(text: &mut String, character: char) {
    match character {
        '\n' => text.push_str("\\n"),
        '\r' => text.push_str("\\r"),
        '\t' => text.push_str("\\t"),
        '\0' => text.push_str("\\0"),
        character if character.is_control() => {
            let code = u32::from(character);
            if code <= 0xff {
                text.push_str(&format!("\\x{code:02x}"));
            } else {
                text.push_str(&format!("\\u{{{code:04x}}}"));
            }
        }
        character => text.push(character),
    }
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
                return Err(invalid_parameter(name, format!("unknown query parameter {}; this endpoint accepts: {expected}", quote(name))));
            }
            if self.parameters[..index].iter().any(|(earlier, _)| earlier == name) {
                return Err(invalid_parameter(name, format!("query parameter {} is given more than once", quote(name))));
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
            _ => Err(invalid_parameter(name, format!("{name} must be true or false (or 1, 0, yes, no), found {}", quote(value)))),
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
                format!("{name} must be a whole number of at least {}, found {}", range.start(), quote(value)),
            )),
            _ => Err(invalid_parameter(
                name,
                format!("{name} must be a whole number from {} to {}, found {}", range.start(), range.end(), quote(value)),
            )),
        }
    }

    /// Reads a parameter that must be one of `choices`, or `None` when it is absent.
    fn choice(&self, name: &str, choices: &[&str]) -> Result<Option<String>, Reply> {
        let Some(value) = self.value(name) else {
            return Ok(None);
        };
        if !choices.contains(&value) {
            return Err(invalid_parameter(name, format!("{name} must be one of {}, found {}", choices.join(", "), quote(value))));
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
            format!("no user {} in the organization; it appears after the sync that follows its provisioning", quote(&user.unwrap_or_default())),
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
    #[error("the daemon at {} did not respond within {seconds} s; check `systemctl status idpsync` or its log", path.display())]
    TimedOut { path: PathBuf, seconds: u64 },
    #[error("the daemon at {} closed the connection before it responded; check its log (`journalctl -u idpsync`)", path.display())]
    Closed { path: PathBuf },
    #[error("cannot talk to the daemon at {}: {message}", path.display())]
    Protocol { path: PathBuf, message: String },
}

/// How long the client waits for the daemon.
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    /// Bound on connecting to the socket.
    pub connect: Duration,
    /// Bound on the whole request, from sending it to the end of the response. `None` waits
    /// until the daemon responds or closes the connection.
    pub response: Option<Duration>,
}

impl Wait {
    /// Bounds connecting and the response by the same time.
    pub fn within(limit: Duration) -> Wait {
        Wait { connect: limit, response: Some(limit) }
    }
}

/// Sends one request to the daemon and returns its status and JSON body.
pub async fn request(socket: &Path, method: Method, path: &str, body: Option<Value>, wait: Wait) -> Result<(StatusCode, Value), ClientError> {
    let timed_out = |limit: Duration| ClientError::TimedOut { path: socket.to_path_buf(), seconds: limit.as_secs() };
    let stream = match tokio::time::timeout(wait.connect, UnixStream::connect(socket)).await {
        Ok(connected) => connected.map_err(|error| match error.kind() {
            std::io::ErrorKind::PermissionDenied => ClientError::PermissionDenied(socket.to_path_buf()),
            _ => ClientError::NotRunning(socket.to_path_buf()),
        })?,
        Err(_) => return Err(timed_out(wait.connect)),
    };
    let exchange = exchange(socket, stream, method, path, body);
    match wait.response {
        Some(limit) => tokio::time::timeout(limit, exchange).await.map_err(|_| timed_out(limit))?,
        None => exchange.await,
    }
}

/// Sends the request over a connected stream and reads the response.
async fn exchange(socket: &Path, stream: UnixStream, method: Method, path: &str, body: Option<Value>) -> Result<(StatusCode, Value), ClientError> {
    let failed = |error: hyper::Error| {
        if error.is_incomplete_message() || error.is_closed() || error.is_canceled() {
            return ClientError::Closed { path: socket.to_path_buf() };
        }
        let source = std::error::Error::source(&error).map(|source| format!(" ({source})")).unwrap_or_default();
        ClientError::Protocol { path: socket.to_path_buf(), message: format!("{error}{source}") }
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(failed)?;
    tokio::spawn(connection);
    let bytes = body.map(|body| serde_json::to_vec(&body).unwrap_or_default()).unwrap_or_default();
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, "idpsync")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .map_err(|error| ClientError::Protocol { path: socket.to_path_buf(), message: error.to_string() })?;
    let response = sender.send_request(request).await.map_err(failed)?;
    let status = response.status();
    let body = response.into_body().collect().await.map_err(failed)?.to_bytes();
    let value = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    Ok((status, value))
}
