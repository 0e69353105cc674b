//! The control socket: HTTP/1.1 with JSON over a Unix socket, so `curl --unix-socket` works as
//! well as the CLI. Only the daemon's own user (and root) may connect; the socket file is
//! mode 0600 and every connection's peer uid is checked.
//!
//! Endpoints: `GET /status`, `POST /sync?dry_run=true&force=true`, `GET /syncs?limit=N`,
//! `GET /syncs/ID`, `GET /users`, `GET /groups`, `GET /access/USER`, `GET /tokens`,
//! `POST /tokens` (`{"name": ...}`), `DELETE /tokens/ID`, `POST /reload`, `GET /metrics`.

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

/// Largest control request body.
const MAX_CONTROL_BODY: usize = 64 * 1024;

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
                    tracing::warn!(%error, "control socket accept failed");
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
    let query: Vec<(String, String)> = request
        .uri()
        .query()
        .map(|query| form_urlencoded::parse(query.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let body = match Limited::new(request.into_body(), MAX_CONTROL_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return render(Reply::error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")),
    };
    if method == Method::GET && path == "/metrics" {
        let mut response = Response::new(Full::new(Bytes::from(daemon.metrics_text())));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        return response;
    }
    let flag = |name: &str| {
        query
            .iter()
            .any(|(key, value)| key == name && matches!(value.as_str(), "" | "1" | "true" | "yes"))
    };
    let segments: Vec<String> = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned())
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let reply = match (&method, segments.as_slice()) {
        (&Method::GET, ["status"]) => daemon.status().await,
        (&Method::POST, ["sync"]) => daemon.sync_now(flag("dry_run"), flag("force")).await,
        (&Method::GET, ["syncs"]) => {
            let limit = query
                .iter()
                .find(|(key, _)| key == "limit")
                .and_then(|(_, value)| value.parse().ok())
                .unwrap_or(20);
            daemon.syncs(limit).await
        }
        (&Method::GET, ["syncs", id]) => daemon.sync_run(id).await,
        (&Method::GET, ["users"]) => daemon.users().await,
        (&Method::GET, ["groups"]) => daemon.groups().await,
        (&Method::GET, ["access", user]) => daemon.access(user).await,
        (&Method::GET, ["tokens"]) => daemon.list_tokens().await,
        (&Method::POST, ["tokens"]) => {
            let name = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|body| body.get("name").and_then(Value::as_str).map(str::to_string));
            match name {
                Some(name) => daemon.create_token(&name).await,
                None => Reply::error(StatusCode::BAD_REQUEST, "send a JSON body {\"name\": \"...\"}"),
            }
        }
        (&Method::DELETE, ["tokens", id]) => daemon.revoke_token(id).await,
        (&Method::POST, ["reload"]) => daemon.reload().await,
        _ => Reply::error(StatusCode::NOT_FOUND, format!("no control endpoint {method} {path}")),
    };
    render(reply)
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
