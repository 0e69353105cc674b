//! The CLI and the control socket when things go wrong: a daemon that does not respond,
//! connections that send nothing or half a request, wrong methods, invalid arguments, failed
//! writes to stdout, and failures reported as JSON.

mod common;

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
