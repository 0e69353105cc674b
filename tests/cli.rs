//! The CLI and the control socket when things go wrong: a daemon that does not respond,
//! connections that send nothing or half a request, wrong methods, invalid arguments, failed
//! writes to stdout, and failures reported as JSON.

mod common;

use std::fs::File;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Daemon;
use serde_json::Value;

/// Exit code of the CLI when the daemon did not respond within `--timeout`.
const EXIT_TIMED_OUT: i32 = 6;
/// Longer than the control socket's header and body timeouts of 10 s.
const CLOSE_WAIT: Duration = Duration::from_secs(25);

fn describe(output: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Waits until the kernel reports the daemon as stopped, because SIGSTOP takes effect
/// asynchronously and a running thread could still serve a request.
fn wait_until_stopped(daemon: &Daemon) {
    let pid = daemon.pid().expect("the daemon is running");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
        if state == Some('T') {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the daemon did not stop after SIGSTOP");
}

#[test]
fn status_times_out_on_stopped_daemon() {
    let daemon = Daemon::start();
    daemon.signal(libc::SIGSTOP);
    wait_until_stopped(&daemon);
    let started = Instant::now();
    let output = daemon.cli_within(&["--timeout", "2", "status"], Duration::from_secs(20));
    daemon.signal(libc::SIGCONT);
    let output = output.expect("`idpsync status` still waited for a stopped daemon after 20 s");
    assert!(started.elapsed() < Duration::from_secs(15), "status took {:?}", started.elapsed());
    assert_eq!(output.status.code(), Some(EXIT_TIMED_OUT), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("did not respond within 2 s"), "{stderr}");
    assert!(stderr.contains(&daemon.socket_path().display().to_string()), "{stderr}");
    assert!(stderr.contains("systemctl status idpsync"), "{stderr}");

    let status = daemon.cli(&["status"]);
    assert!(status.status.success(), "status after SIGCONT: {}", describe(&status));
}

#[test]
fn control_closes_idle_connection() {
    let daemon = Daemon::start();
    let started = Instant::now();
    let (raw, closed) = daemon.control_exchange(b"", CLOSE_WAIT);
    assert!(closed, "an idle control connection stayed open for {:?}", started.elapsed());
    assert!(raw.is_empty() || String::from_utf8_lossy(&raw).starts_with("HTTP/1.1 408"), "{raw:?}");
}

#[test]
fn control_times_out_half_body() {
    let daemon = Daemon::start();
    let request = b"POST /tokens HTTP/1.1\r\nHost: idpsync\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"na";
    let (raw, closed) = daemon.control_exchange(request, CLOSE_WAIT);
    assert!(closed, "a control connection with half a body stayed open");
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"error\""), "{text}");
}

#[test]
fn control_wrong_method_gets_405() {
    let daemon = Daemon::start();
    for (method, path, allowed) in [("DELETE", "/status", "GET"), ("GET", "/sync", "POST"), ("PUT", "/tokens", "GET, POST"), ("GET", "/tokens/abc", "DELETE"), ("POST", "/metrics", "GET")] {
        let response = daemon.control_response(method, path);
        assert_eq!(response.status, 405, "{method} {path}: {}", response.text());
        assert_eq!(response.header("allow").as_deref(), Some(allowed), "{method} {path}");
        let body = response.json().unwrap_or_else(|| panic!("{method} {path}: not JSON: {}", response.text()));
        assert!(body["error"].as_str().is_some_and(|error| error.contains(allowed.split(',').next().unwrap_or_default())), "{body}");
    }
    let response = daemon.control_response("GET", "/nothing");
    assert_eq!(response.status, 404);
    assert!(response.json().is_some_and(|body: Value| body["error"].is_string()), "{}", response.text());
}

/// Writes a config file into `dir` with the test daemon's layout and the given `[tls]` table
/// and control socket, and creates its empty permission folder.
fn write_config(dir: &Path, tls: &str, socket: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("permissions")).expect("create the permission folder");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:1\"\npublic_url = \"https://127.0.0.1:1/scim/v2\"\n\n[tls]\n{tls}\n\n\
         [store]\npath = \"idpsync.redb\"\n\n[control]\nsocket = {socket:?}\n\n[permissions]\ndir = \"permissions\"\n"
    );
    let path = dir.join("idpsync.toml");
    std::fs::write(&path, text).expect("write the config file");
    path
}

/// Runs `idpsync --config CONFIG ARGS...`.
fn run(config: &Path, args: &[&str]) -> Output {
    Command::new(common::BINARY)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("IDPSYNC_CONFIG")
        .env_remove("IDPSYNC_TIMEOUT")
        .stdin(Stdio::null())
        .output()
        .expect("run the idpsync CLI")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Parses stdout as the JSON object of a failure and checks its exit code.
fn json_failure(output: &Output, code: i32) -> Value {
    assert_eq!(output.status.code(), Some(code), "{}", describe(output));
    let failure: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("stdout is not one JSON object ({error}): {}", describe(output)));
    assert_eq!(failure["exit_code"], code, "{failure}");
    assert!(failure["error"].as_str().is_some_and(|error| !error.is_empty()), "{failure}");
    failure
}

#[test]
fn config_check_rejects_missing_certificate() {
    let dir = tempfile::tempdir().expect("create a temporary folder");
    let config = write_config(dir.path(), "cert = \"tls/cert.pem\"\nkey = \"tls/key.pem\"\nself_signed = false", &dir.path().join("idpsync.sock"));
    let check = run(&config, &["config", "check"]);
    assert_eq!(check.status.code(), Some(1), "{}", describe(&check));
    let message = stderr(&check);
    assert!(message.contains(&dir.path().join("tls/cert.pem").display().to_string()), "{message}");
    assert!(message.contains("self_signed = true"), "{message}");
    assert!(!String::from_utf8_lossy(&check.stdout).contains("valid"), "{}", describe(&check));

    let check = run(&config, &["config", "check", "--json"]);
    let failure = json_failure(&check, 1);
    assert_eq!(failure["valid"], false, "{failure}");
}

#[test]
fn config_check_rejects_half_pair() {
    let dir = tempfile::tempdir().expect("create a temporary folder");
    let config = write_config(dir.path(), "cert = \"cert.pem\"\nkey = \"key.pem\"\nself_signed = true", &dir.path().join("idpsync.sock"));
    let check = run(&config, &["config", "check"]);
    assert!(check.status.success(), "both files missing with self_signed: {}", describe(&check));

    std::fs::write(dir.path().join("cert.pem"), "not a certificate").expect("write cert.pem");
    let check = run(&config, &["config", "check"]);
    assert_eq!(check.status.code(), Some(1), "{}", describe(&check));
    assert!(stderr(&check).contains("key.pem"), "{}", describe(&check));
}

#[test]
fn config_directory_gets_clear_error() {
    let dir = tempfile::tempdir().expect("create a temporary folder");
    for args in [&["config", "check"][..], &["status"][..]] {
        let output = run(dir.path(), args);
        assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
        let message = stderr(&output);
        assert!(message.contains("is a directory"), "{message}");
        assert!(message.contains("--config"), "{message}");
    }
}

#[test]
fn invalid_numbers_get_plain_errors() {
    let dir = tempfile::tempdir().expect("create a temporary folder");
    let config = write_config(dir.path(), "cert = \"cert.pem\"\nkey = \"key.pem\"\nself_signed = true", &dir.path().join("idpsync.sock"));
    for (args, expected) in [
        (&["syncs", "show", "abc"][..], "ID must be a sync run number such as 42"),
        (&["events", "--before", "abc"][..], "--before must be an event number"),
        (&["events", "--limit", "abc"][..], "--limit must be a whole number from 1 to 1000"),
        (&["syncs", "--limit", "0"][..], "--limit must be a whole number from 1 to 10000"),
    ] {
        let output = run(&config, args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", describe(&output));
        let message = stderr(&output);
        assert!(message.contains(expected), "{args:?}: {message}");
        assert!(!message.contains("invalid digit"), "{args:?}: {message}");

        let mut with_json = args.to_vec();
        with_json.push("--json");
        let failure = json_failure(&run(&config, &with_json), 2);
        assert!(failure["error"].as_str().unwrap_or_default().contains(expected), "{failure}");
    }
}

#[test]
fn closed_connection_is_explained() {
    let dir = tempfile::tempdir().expect("create a temporary folder");
    let socket = dir.path().join("fake.sock");
    let listener = UnixListener::bind(&socket).expect("bind the fake control socket");
    let server = std::thread::spawn(move || {
        use std::io::Read;
        let (mut stream, _) = listener.accept().expect("accept the CLI");
        let mut buffer = [0u8; 1024];
        let _ = stream.read(&mut buffer);
    });
    let config = write_config(dir.path(), "cert = \"cert.pem\"\nkey = \"key.pem\"\nself_signed = true", &socket);
    let output = run(&config, &["status"]);
    server.join().expect("the fake control socket ran");
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let message = stderr(&output);
    assert!(message.contains("closed the connection before it responded"), "{message}");
    assert!(message.contains("log"), "{message}");
    assert!(!message.contains("connection closed before message completed"), "{message}");
}

#[test]
fn control_characters_are_escaped_once() {
    let daemon = Daemon::start();
    let output = daemon.cli(&["events", "--user", "a\u{1b}b\tc"]);
    assert_eq!(output.status.code(), Some(5), "{}", describe(&output));
    let message = stderr(&output);
    assert!(message.contains(r#""a\x1bb\tc""#), "{message}");
    assert!(!message.contains("\u{1b}"), "{message}");
    assert!(!message.contains(r"\u{1b}"), "{message}");
    assert!(!message.contains(r"\\"), "{message}");
}

#[test]
fn json_failures_print_one_object() {
    let mut daemon = Daemon::start();
    let failure = json_failure(&daemon.cli(&["syncs", "show", "999999", "--json"]), 5);
    assert!(failure["error"].as_str().unwrap_or_default().contains("999999"), "{failure}");

    daemon.stop();
    let output = daemon.cli(&["status", "--json"]);
    let failure = json_failure(&output, 3);
    assert!(failure["error"].as_str().unwrap_or_default().contains("not running"), "{failure}");
    assert!(stderr(&output).contains("not running"), "{}", describe(&output));
}

/// Runs `token create` with stdout on /dev/full and checks that the token was revoked.
fn check_token_revoked_after_lost_output(daemon: &Daemon, name: &str) {
    let full = File::options().write(true).open("/dev/full").expect("open /dev/full");
    let output = daemon.cli_to(&["token", "create", "--name", name], full);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let message = stderr(&output);
    assert!(message.contains("revoked again"), "{message}");

    let listed = daemon.cli(&["token", "list", "--json"]);
    assert!(listed.status.success(), "{}", describe(&listed));
    let tokens: Value = serde_json::from_slice(&listed.stdout).expect("token list --json prints JSON");
    let names: Vec<&str> = tokens.as_array().into_iter().flatten().filter_map(|token| token["name"].as_str()).collect();
    assert!(!names.contains(&name), "the unseen token {name} is still valid: {names:?}");
}

#[test]
fn token_create_revokes_unseen_token() {
    let mut daemon = Daemon::start();
    check_token_revoked_after_lost_output(&daemon, "lost-online");
    daemon.stop();
    check_token_revoked_after_lost_output(&daemon, "lost-offline");
}
