//! Test support shared by the integration tests: a real `idpsync serve` on a free
//! 127.0.0.1 port with all its state in a temporary folder, and helpers for HTTPS
//! requests, the CLI and signals.
//!
//! The daemon's stdout and stderr go to `daemon.log` in that folder. The log is
//! printed when a test panics while a `Daemon` is alive, and when the daemon fails
//! to start or to stop.

// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::cell::OnceCell;
use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use reqwest::header::HeaderMap;
use serde_json::Value;
use tempfile::TempDir;

/// The binary under test, built by cargo for integration tests.
pub const BINARY: &str = env!("CARGO_BIN_EXE_idpsync");

/// Time a debug build has to create its certificate and store and serve `/health`.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Time a SIGTERM'd daemon has to drain and exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Starts retried with a new port, because another test may take the free port
/// between its release here and the daemon's bind.
const START_ATTEMPTS: usize = 3;

const SCIM_MEDIA_TYPE: &str = "application/scim+json";

/// One running daemon and its temporary state folder.
pub struct Daemon {
    dir: TempDir,
    config: PathBuf,
    port: u16,
    child: Option<Child>,
    http: Option<Client>,
    token: OnceCell<String>,
    /// RLIMIT_FSIZE for the daemon, in bytes, with SIGXFSZ ignored: writes past it fail
    /// with EFBIG, as they would on a full disk.
    file_size_limit: Option<u64>,
}

/// An HTTP response, read whole.
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    /// Returns the body as text, with invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Parses the body as JSON; `None` when it is empty or not JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// Returns every value of the header joined with ", ", or `None` when it is absent.
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<String> = self
            .headers
            .get_all(name)
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .collect();
        if values.is_empty() {
            None
        } else {
            Some(values.join(", "))
        }
    }
}

impl Daemon {
    /// Starts a daemon with the default test configuration.
    pub fn start() -> Daemon {
        Daemon::start_with("")
    }

    /// Starts a daemon whose configuration is the default one merged with
    /// `extra_toml`: its tables are merged key by key and its values replace the
    /// defaults, so `"[sync]\non_startup = true"` changes one key.
    pub fn start_with(extra_toml: &str) -> Daemon {
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let mut daemon = Daemon::prepare(extra_toml);
            match daemon.launch() {
                Ok(()) => return daemon,
                Err(error) => {
                    let log = daemon.log();
                    let port_taken = log.contains("in use");
                    failures.push(format!("{error}\n--- daemon log ---\n{log}"));
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        panic!("idpsync did not start:\n{}", failures.join("\n\n"));
    }

    /// Creates the temporary folder with its config file and an empty permissions folder.
    fn prepare(extra_toml: &str) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("idpsync-test-")
            .tempdir()
            .expect("create a temporary folder");
        fs::create_dir(dir.path().join("permissions")).expect("create permissions folder");

        let port = free_port();
        let config = dir.path().join("idpsync.toml");
        fs::write(&config, config_text(port, extra_toml)).expect("write test config");
        Daemon {
            dir,
            config,
            port,
            child: None,
            http: None,
            token: OnceCell::new(),
            file_size_limit: None,
        }
    }

    /// Starts a daemon that cannot write past `bytes` in any file until
    /// `lift_file_size_limit` is called.
    pub fn start_with_file_size_limit(bytes: u64) -> Daemon {
        let mut daemon = Daemon::prepare("");
        daemon.file_size_limit = Some(bytes);
        if let Err(error) = daemon.launch() {
            panic!("idpsync did not start: {error}\n--- daemon log ---\n{}", daemon.log());
        }
        daemon
    }

    /// Removes the running daemon's file size limit, as freeing disk space would.
    pub fn lift_file_size_limit(&self) {
        let pid = self.pid().expect("the daemon is running") as libc::pid_t;
        let unlimited = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
        // SAFETY: prlimit reads `unlimited` and writes nothing through the null pointer.
        let result = unsafe { libc::prlimit(pid, libc::RLIMIT_FSIZE, &unlimited, std::ptr::null_mut()) };
        assert_eq!(result, 0, "prlimit failed: {}", std::io::Error::last_os_error());
    }

    /// Spawns `idpsync serve` and waits until `GET /health` returns 200.
    fn launch(&mut self) -> Result<(), String> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|error| format!("cannot open {}: {error}", self.log_path().display()))?;
        let log_for_stdout = log.try_clone().map_err(|error| error.to_string())?;
        let mut command = Command::new(BINARY);
        if let Some(bytes) = self.file_size_limit {
            use std::os::unix::process::CommandExt;
            // SAFETY: the closure runs in the forked child before exec and calls only
            // async-signal-safe functions (signal, setrlimit).
            unsafe {
                command.pre_exec(move || {
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    let limit = libc::rlimit { rlim_cur: bytes, rlim_max: libc::RLIM_INFINITY };
                    if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = command
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .env_remove("IDPSYNC_CONFIG")
            .env_remove("IDPSYNC_LOG")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(log_for_stdout)
            .stderr(log)
            .spawn()
            .map_err(|error| format!("cannot run {BINARY}: {error}"))?;
        self.child = Some(child);
        // A restart may follow a certificate change, and pooled connections to the
        // previous process are dead.
        self.http = None;
        self.wait_until_healthy()
    }

    fn wait_until_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.try_wait()? {
                self.child = None;
                return Err(format!("idpsync serve exited with {status} before serving"));
            }
            if self.http.is_none() {
                self.http = self.client_trusting_certificate();
            }
            if self.http.is_some() && self.health() == Some(200) {
                return Ok(());
            }
            // A client built from a certificate file that was still being written trusts
            // nothing; build it again from the file.
            self.http = None;
            if Instant::now() > deadline {
                return Err(format!(
                    "GET {}/health did not return 200 within {} s",
                    self.origin(),
                    START_TIMEOUT.as_secs()
                ));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Builds a client that trusts only the certificate at `tls.cert`, once the daemon
    /// has written it; `None` while the file is missing or incomplete.
    fn client_trusting_certificate(&self) -> Option<Client> {
        let pem = fs::read(self.cert_path()).ok()?;
        let certificate = reqwest::Certificate::from_pem(&pem).ok()?;
        Client::builder()
            .add_root_certificate(certificate)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .build()
            .ok()
    }

    fn try_wait(&mut self) -> Result<Option<ExitStatus>, String> {
        match self.child.as_mut() {
            Some(child) => child
                .try_wait()
                .map_err(|error| format!("cannot poll idpsync: {error}")),
            None => Err("idpsync is not running".to_string()),
        }
    }

    /// Returns the status of `GET /health`, or `None` when the request failed.
    pub fn health(&self) -> Option<u16> {
        let http = self.http.as_ref()?;
        let response = http.get(format!("{}/health", self.origin())).send().ok()?;
        Some(response.status().as_u16())
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join("idpsync.sock")
    }

    pub fn export_path(&self) -> PathBuf {
        self.dir.path().join("organization.json")
    }

    pub fn permissions_dir(&self) -> PathBuf {
        self.dir.path().join("permissions")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("daemon.log")
    }

    /// Returns what the daemon has written to stdout and stderr so far.
    pub fn log(&self) -> String {
        fs::read(self.log_path())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Returns `https://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// Returns the SCIM base URL, `https://127.0.0.1:PORT/scim/v2`.
    pub fn scim_url(&self) -> String {
        format!("{}/scim/v2", self.origin())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Builds `idpsync --config CONFIG ARGS...`, free of the environment variables that
    /// would override the test's config or timeouts.
    fn cli_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BINARY);
        command
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env_remove("IDPSYNC_CONFIG")
            .env_remove("IDPSYNC_TIMEOUT")
            .stdin(Stdio::null());
        command
    }

    /// Runs `idpsync --config CONFIG ARGS...` and returns its output.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_command(args).output().expect("run the idpsync CLI")
    }

    /// Runs the CLI like [`Daemon::cli`], but kills it when it has not exited after `limit`.
    /// Returns `None` then.
    pub fn cli_within(&self, args: &[&str], limit: Duration) -> Option<Output> {
        let mut child = self
            .cli_command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the idpsync CLI");
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if child.try_wait().expect("wait for the CLI").is_some() {
                return Some(child.wait_with_output().expect("read the CLI's output"));
            }
            thread::sleep(POLL_INTERVAL);
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Runs the CLI like [`Daemon::cli`] with stdout writing to `stdout`.
    pub fn cli_to(&self, args: &[&str], stdout: File) -> Output {
        self.cli_command(args)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .output()
            .expect("run the idpsync CLI")
    }

    /// Connects to the control socket, writes `request` as it is, and reads until the daemon
    /// closes the connection or `limit` passes. Returns what was read and whether the daemon
    /// closed the connection.
    pub fn control_exchange(&self, request: &[u8], limit: Duration) -> (Vec<u8>, bool) {
        use std::io::{Read, Write};
        let mut stream = std::os::unix::net::UnixStream::connect(self.socket_path())
            .unwrap_or_else(|error| panic!("connect to the control socket: {error}"));
        stream.write_all(request).expect("write to the control socket");
        let deadline = Instant::now() + limit;
        let mut raw = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (raw, false);
            }
            stream.set_read_timeout(Some(left)).expect("set a read timeout");
            match stream.read(&mut buffer) {
                Ok(0) => return (raw, true),
                Ok(read) => raw.extend_from_slice(&buffer[..read]),
                Err(error) if matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return (raw, false)
                }
                Err(_) => return (raw, true),
            }
        }
    }

    /// Sends one request with `Connection: close` to the control socket and returns the
    /// parsed response with its headers.
    pub fn control_response(&self, method: &str, target: &str) -> Response {
        let request = format!("{method} {target} HTTP/1.1\r\nHost: idpsync\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        let (raw, _) = self.control_exchange(request.as_bytes(), REQUEST_TIMEOUT);
        parse_raw_response(&raw)
            .unwrap_or_else(|| panic!("{method} {target}: malformed response {:?}", String::from_utf8_lossy(&raw)))
    }

    /// Runs the CLI like [`Daemon::cli`], but with stdout a pipe whose read end is already
    /// closed, as a reader such as `head -1` leaves it after it exits.
    pub fn cli_into_closed_pipe(&self, args: &[&str]) -> Output {
        self.cli_command(args)
            .stdout(closed_pipe())
            .stderr(Stdio::piped())
            .output()
            .expect("run the idpsync CLI")
    }

    /// Creates a SCIM bearer token with `token create --json` and returns it.
    pub fn create_token(&self, name: &str) -> String {
        let output = self.cli(&["token", "create", "--name", name, "--json"]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "token create exited with {}\nstdout: {stdout}\nstderr: {stderr}",
            output.status
        );
        let created: Value = serde_json::from_str(&stdout).unwrap_or_else(|error| {
            panic!("token create --json printed invalid JSON ({error}): {stdout}")
        });
        match created.get("token").and_then(Value::as_str) {
            Some(token) if !token.is_empty() => token.to_string(),
            _ => panic!("token create --json printed no token: {stdout}"),
        }
    }

    /// Returns the token that `scim` sends, created on first use.
    pub fn token(&self) -> &str {
        self.token
            .get_or_init(|| self.create_token("integration-tests"))
    }

    /// Sends one SCIM request with the bearer token and SCIM media types, and panics
    /// when no response arrives. `path` is relative to the SCIM base URL.
    pub fn scim(&self, method: &str, path: &str, body: Option<&Value>) -> Response {
        let mut headers = vec![
            (
                "Authorization".to_string(),
                format!("Bearer {}", self.token()),
            ),
            ("Accept".to_string(), SCIM_MEDIA_TYPE.to_string()),
        ];
        let payload = body.map(|body| {
            headers.push(("Content-Type".to_string(), SCIM_MEDIA_TYPE.to_string()));
            serde_json::to_vec(body).expect("serialise request body")
        });
        self.send(method, path, &headers, payload)
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// Sends one request to the SCIM base URL joined with `path` as plain strings.
    ///
    /// The request target reaches the daemon byte for byte. Percent-escapes, `+` and a
    /// trailing `?` or `&` are kept as written. A target that the URL parser would
    /// rewrite (a raw quote or space) goes out over a raw TLS connection instead.
    /// NOTE: the HTTP client adds `Accept: */*` when `headers` has no Accept header.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Response, String> {
        let target = format!("{}{path}", self.scim_url());
        let url = match reqwest::Url::parse(&target) {
            Ok(url) if url.as_str() == target => url,
            _ => {
                let request_target = format!("/scim/v2{path}");
                return self.send_raw(method, &request_target, headers, body.as_deref());
            }
        };
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|error| format!("invalid method {method:?}: {error}"))?;
        let http = self.http.as_ref().ok_or("the daemon has not served yet")?;

        let mut request = http.request(method.clone(), url);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request
            .send()
            .map_err(|error| format!("{method} {target}: no response ({error})"))?;
        let status = response.status().as_u16();
        let response_headers = response.headers().clone();
        let body = response
            .bytes()
            .map_err(|error| format!("{method} {target}: body not read ({error})"))?;
        Ok(Response {
            status,
            headers: response_headers,
            body: body.to_vec(),
        })
    }

    /// Opens a TLS connection to the SCIM listener that trusts the daemon's certificate.
    pub fn connect_tls(&self) -> Result<RawTls, String> {
        let pem = fs::read(self.cert_path()).map_err(|error| format!("read certificate: {error}"))?;
        let mut roots = rustls::RootCertStore::empty();
        for certificate in rustls_pemfile::certs(&mut pem.as_slice()) {
            let certificate = certificate.map_err(|error| format!("parse certificate: {error}"))?;
            roots.add(certificate).map_err(|error| format!("trust certificate: {error}"))?;
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1")
            .map_err(|error| error.to_string())?;
        let connection = rustls::ClientConnection::new(std::sync::Arc::new(config), name)
            .map_err(|error| error.to_string())?;
        let socket = std::net::TcpStream::connect(("127.0.0.1", self.port))
            .map_err(|error| format!("connect: {error}"))?;
        socket
            .set_read_timeout(Some(REQUEST_TIMEOUT))
            .map_err(|error| error.to_string())?;
        Ok(rustls::StreamOwned::new(connection, socket))
    }

    /// Sends one request with `request_target` written into the request line exactly as
    /// given, on a new connection, and reads the response until the daemon closes it.
    pub fn send_raw(
        &self,
        method: &str,
        request_target: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) -> Result<Response, String> {
        use std::io::{Read, Write};
        let mut request = format!("{method} {request_target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        let body = body.unwrap_or_default();
        request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);

        let mut stream = self.connect_tls()?;
        stream.write_all(&bytes).map_err(|error| format!("{method} {request_target}: write failed ({error})"))?;
        let mut raw = Vec::new();
        match stream.read_to_end(&mut raw) {
            Ok(_) => {}
            // The daemon closes without a TLS close_notify after `Connection: close`.
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
            Err(error) => return Err(format!("{method} {request_target}: read failed ({error})")),
        }
        parse_raw_response(&raw).ok_or_else(|| format!("{method} {request_target}: malformed response {:?}", String::from_utf8_lossy(&raw)))
    }

    /// Sends one request to the control socket with `target` (path and query) written into the
    /// request line exactly as given, and returns the status and the JSON body.
    pub fn control(&self, method: &str, target: &str) -> (u16, Value) {
        use std::io::{Read, Write};
        let mut stream = std::os::unix::net::UnixStream::connect(self.socket_path())
            .unwrap_or_else(|error| panic!("connect to the control socket: {error}"));
        stream
            .set_read_timeout(Some(REQUEST_TIMEOUT))
            .expect("set a read timeout");
        let request = format!(
            "{method} {target} HTTP/1.1\r\nHost: idpsync\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .unwrap_or_else(|error| panic!("{method} {target}: write failed ({error})"));
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .unwrap_or_else(|error| panic!("{method} {target}: read failed ({error})"));
        let response = parse_raw_response(&raw).unwrap_or_else(|| {
            panic!("{method} {target}: malformed response {:?}", String::from_utf8_lossy(&raw))
        });
        let body = response.json().unwrap_or_else(|| {
            panic!("{method} {target}: the body is not JSON: {}", response.text())
        });
        (response.status, body)
    }

    /// Sends `signal` (for example `libc::SIGHUP`) to the daemon.
    pub fn signal(&self, signal: i32) {
        let pid = self.pid().expect("idpsync is not running");
        let pid = libc::pid_t::try_from(pid).expect("process id fits pid_t");
        // SAFETY: kill(2) only reads its two integer arguments.
        let result = unsafe { libc::kill(pid, signal) };
        assert_eq!(
            result,
            0,
            "kill({pid}, {signal}) failed: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Sends SIGTERM, waits for the exit and asserts that the exit status is 0.
    pub fn stop(&mut self) {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            match self.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(POLL_INTERVAL),
                Ok(None) => {
                    self.kill();
                    panic!(
                        "idpsync did not exit within {} s of SIGTERM\n--- daemon log ---\n{}",
                        STOP_TIMEOUT.as_secs(),
                        self.log()
                    );
                }
                Err(error) => panic!("{error}"),
            }
        };
        self.child = None;
        assert!(
            status.success(),
            "idpsync exited with {status} after SIGTERM\n--- daemon log ---\n{}",
            self.log()
        );
    }

    /// Stops the daemon and starts it again on the same config, port and state.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(error) = self.launch() {
            panic!(
                "idpsync did not restart: {error}\n--- daemon log ---\n{}",
                self.log()
            );
        }
    }

    /// Starts the daemon again after `stop`, on the same config, port and state, so a test
    /// can run the CLI against a stopped daemon in between.
    pub fn start_again(&mut self) {
        assert!(
            self.child.is_none(),
            "idpsync is still running; call stop first"
        );
        if let Err(error) = self.launch() {
            panic!(
                "idpsync did not start again: {error}\n--- daemon log ---\n{}",
                self.log()
            );
        }
    }

    /// Kills the daemon with SIGKILL, as a crash or power cut would stop it, and waits for it.
    pub fn crash(&mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "--- daemon log ({}) ---\n{}",
                self.log_path().display(),
                self.log()
            );
        }
        self.kill();
    }
}

/// Returns the write end of a new pipe whose read end is closed, so every write to it fails
/// with EPIPE.
fn closed_pipe() -> File {
    use std::os::fd::FromRawFd;
    let mut ends = [0; 2];
    // SAFETY: pipe(2) writes two new file descriptors into the array it is given.
    let result = unsafe { libc::pipe(ends.as_mut_ptr()) };
    assert_eq!(result, 0, "pipe failed: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just created and nothing else owns them.
    unsafe {
        libc::close(ends[0]);
        File::from_raw_fd(ends[1])
    }
}

/// Returns a port that was free a moment ago: bound on port 0, then released.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// Writes the test configuration: every path inside the temporary folder, given
/// relative to it, and a self-signed certificate created on first start.
fn config_text(port: u16, extra_toml: &str) -> String {
    let defaults = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
public_url = "https://127.0.0.1:{port}/scim/v2"

[tls]
cert = "cert.pem"
key = "key.pem"
self_signed = true

[store]
path = "idpsync.redb"

[control]
socket = "idpsync.sock"

[permissions]
dir = "permissions"

[export]
path = "organization.json"

[log]
level = "info,idpsync=debug"
format = "text"
"#
    );
    let mut config: toml::Table = defaults.parse().expect("default test config is valid TOML");
    let extra: toml::Table = extra_toml
        .parse()
        .unwrap_or_else(|error| panic!("extra config is not valid TOML: {error}\n{extra_toml}"));
    merge(&mut config, extra);
    toml::to_string(&config).expect("serialise test config")
}

/// Merges `extra` into `base`: tables key by key, any other value replaced.
fn merge(base: &mut toml::Table, extra: toml::Table) {
    for (key, value) in extra {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(extra_inner)) => {
                merge(inner, extra_inner)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// A TLS client connection to the daemon, for requests written byte by byte.
pub type RawTls = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

/// Splits an HTTP/1.1 response with a `Content-Length` body (or none) into its parts.
fn parse_raw_response(raw: &[u8]) -> Option<Response> {
    let head_end = raw.windows(4).position(|window| window == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let name = reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
        let value = reqwest::header::HeaderValue::from_str(value.trim()).ok()?;
        headers.append(name, value);
    }
    Some(Response {
        status,
        headers,
        body: raw[head_end + 4..].to_vec(),
    })
}
