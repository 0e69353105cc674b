//! The daemon end to end: provisioning over HTTPS, persistence across restarts, bearer-token
//! checks, error documents, body limits, token revocation through the CLI, and a second
//! daemon on the same store.

mod common;

use common::Daemon;
use serde_json::{json, Value};

fn user(name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"value": name, "type": "work", "primary": true}],
        "active": true
    })
}

fn create(daemon: &Daemon, path: &str, body: &Value) -> String {
    let response = daemon.scim("POST", path, Some(body));
    assert_eq!(response.status, 201, "{}", response.text());
    response.json().unwrap()["id"].as_str().unwrap().to_string()
}

fn assert_scim_error(response: &common::Response, status: u16, scim_type: Option<&str>) {
    assert_eq!(response.status, status, "{}", response.text());
    let body = response.json().expect("error body is JSON");
    assert_eq!(body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error");
    assert_eq!(body["status"], status.to_string());
    if let Some(scim_type) = scim_type {
        assert_eq!(body["scimType"], scim_type, "{body}");
    }
    assert!(body["detail"].as_str().is_some_and(|detail| !detail.is_empty()));
}

#[test]
fn provisioned_state_survives_restart() {
    let mut daemon = Daemon::start();
    let alice = create(&daemon, "/Users", &user("alice@example.com"));
    let bob = create(&daemon, "/Users", &user("bob@example.com"));
    let group = create(
        &daemon,
        "/Groups",
        &json!({"displayName": "Engineering", "members": [{"value": alice}, {"value": bob}]}),
    );

    daemon.restart();

    let response = daemon.scim("GET", &format!("/Users/{alice}"), None);
    assert_eq!(response.status, 200);
    let body = response.json().unwrap();
    assert_eq!(body["userName"], "alice@example.com");
    assert_eq!(body["meta"]["resourceType"], "User");
    assert!(body["meta"]["location"].as_str().unwrap().ends_with(&format!("/Users/{alice}")));
    assert!(response.header("etag").is_some());

    let response = daemon.scim("GET", &format!("/Groups/{group}"), None);
    let body = response.json().unwrap();
    let members: Vec<&str> = body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|member| member["value"].as_str().unwrap())
        .collect();
    assert_eq!(members.len(), 2);
    assert!(members.contains(&alice.as_str()));
    assert!(members.contains(&bob.as_str()));
}

#[test]
fn every_bad_token_form_gets_401() {
    let daemon = Daemon::start();
    daemon.token();
    let forms: [Option<&str>; 5] = [
        None,
        Some("Basic dXNlcjpwYXNz"),
        Some("Bearer"),
        Some("Bearer idps_not-a-real-token"),
        Some("Token abc"),
    ];
    for form in forms {
        let mut headers = vec![("Accept".to_string(), "application/scim+json".to_string())];
        if let Some(value) = form {
            headers.push(("Authorization".to_string(), value.to_string()));
        }
        let response = daemon.send("GET", "/Users", &headers, None).unwrap();
        assert_scim_error(&response, 401, None);
        assert!(response.header("www-authenticate").unwrap().starts_with("Bearer"), "{form:?}");
    }
    assert!(!daemon.log().contains("idps_not-a-real-token"), "a token reached the log");
}

#[test]
fn revoked_token_stops_working_at_once() {
    let daemon = Daemon::start();
    let token = daemon.create_token("rotation");
    let headers = vec![("Authorization".to_string(), format!("Bearer {token}"))];
    assert_eq!(daemon.send("GET", "/Users", &headers, None).unwrap().status, 200);

    let listed = daemon.cli(&["token", "list", "--json"]);
    assert!(listed.status.success());
    let tokens: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let id = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|record| record["name"] == "rotation")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!String::from_utf8_lossy(&listed.stdout).contains(&token), "token list shows a token");

    let revoked = daemon.cli(&["token", "revoke", &id]);
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    assert_eq!(daemon.send("GET", "/Users", &headers, None).unwrap().status, 401);
    assert_eq!(daemon.scim("GET", "/Users", None).status, 200, "other tokens stay valid");
}

#[test]
fn duplicate_username_in_other_case_is_409() {
    let daemon = Daemon::start();
    create(&daemon, "/Users", &user("carol@example.com"));
    let response = daemon.scim("POST", "/Users", Some(&user("CAROL@Example.com")));
    assert_scim_error(&response, 409, Some("uniqueness"));
    let detail = response.json().unwrap()["detail"].as_str().unwrap_or_default().to_string();
    assert!(detail.contains("\"CAROL@Example.com\""), "the detail does not quote the name as sent: {detail}");
    let list = daemon.scim("GET", "/Users", None).json().unwrap();
    assert_eq!(list["totalResults"], 1);
}

#[test]
fn unknown_id_is_404() {
    let daemon = Daemon::start();
    for path in ["/Users/does-not-exist", "/Groups/does-not-exist"] {
        assert_scim_error(&daemon.scim("GET", path, None), 404, None);
        assert_scim_error(&daemon.scim("DELETE", path, None), 404, None);
    }
}

#[test]
fn malformed_json_is_400_and_stores_nothing() {
    let daemon = Daemon::start();
    let headers = vec![
        ("Authorization".to_string(), format!("Bearer {}", daemon.token())),
        ("Content-Type".to_string(), "application/scim+json".to_string()),
    ];
    let body = br#"{"userName": "dave@example.com", "#.to_vec();
    let response = daemon.send("POST", "/Users", &headers, Some(body)).unwrap();
    assert_scim_error(&response, 400, Some("invalidSyntax"));
    assert_eq!(daemon.scim("GET", "/Users", None).json().unwrap()["totalResults"], 0);
}

#[test]
fn body_with_byte_order_mark_is_accepted() {
    let daemon = Daemon::start();
    let headers = vec![
        ("Authorization".to_string(), format!("Bearer {}", daemon.token())),
        ("Content-Type".to_string(), "application/scim+json; charset=utf-8".to_string()),
    ];
    let mut body = b"\xEF\xBB\xBF".to_vec();
    body.extend(serde_json::to_vec(&user("bom@example.com")).unwrap());
    let response = daemon.send("POST", "/Users", &headers, Some(body)).unwrap();
    assert_eq!(response.status, 201, "{}", response.text());
}

#[test]
fn nul_character_is_400_and_stores_nothing() {
    let daemon = Daemon::start();
    let mut body = user("ada@example.org");
    body["displayName"] = json!("Ada\u{0}Lovelace");
    let response = daemon.scim("POST", "/Users", Some(&body));
    assert_scim_error(&response, 400, Some("invalidValue"));
    assert!(response.text().contains("/displayName"), "{}", response.text());
    let list = daemon.scim("GET", "/Users", None);
    assert_eq!(list.json().unwrap()["totalResults"], 0);
}

#[test]
fn body_over_limit_is_413() {
    let daemon = Daemon::start_with("[server]\nmax_body_bytes = 2048\n");
    let mut big = user("erin@example.com");
    big["title"] = Value::from("x".repeat(4096));
    let response = daemon.scim("POST", "/Users", Some(&big));
    assert_scim_error(&response, 413, None);
    assert_eq!(daemon.scim("GET", "/Users", None).json().unwrap()["totalResults"], 0);
}

#[test]
fn filter_without_match_is_empty_list() {
    let daemon = Daemon::start();
    let response = daemon.scim("GET", "/Users?filter=userName%20eq%20%22nobody%22", None);
    assert_eq!(response.status, 200);
    let body = response.json().unwrap();
    assert_eq!(body["totalResults"], 0);
    assert_eq!(body["Resources"], json!([]));
}

#[test]
fn health_needs_no_token() {
    let daemon = Daemon::start();
    assert_eq!(daemon.health(), Some(200));
}

#[test]
fn second_daemon_on_same_store_fails_clearly() {
    let daemon = Daemon::start();
    let output = std::process::Command::new(common::BINARY)
        .args(["--config", daemon.config_path().to_str().unwrap(), "serve"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("in use") || stderr.contains("another daemon"), "{stderr}");
}

#[test]
fn sigterm_lets_daemon_exit_zero() {
    let mut daemon = Daemon::start();
    create(&daemon, "/Users", &user("frank@example.com"));
    daemon.stop();
}

#[test]
fn patch_of_large_group_answers_204() {
    let daemon = Daemon::start_with("[scim]\nmax_results = 3\n");
    let users: Vec<String> = (0..5).map(|index| create(&daemon, "/Users", &user(&format!("m{index}@example.com")))).collect();
    let small = create(&daemon, "/Groups", &json!({"displayName": "small", "members": [{"value": users[0]}]}));
    let large_members: Vec<Value> = users[..4].iter().map(|id| json!({"value": id})).collect();
    let large = create(&daemon, "/Groups", &json!({"displayName": "large", "members": large_members}));
    let add = |id: &str| {
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]
        })
    };

    let response = daemon.scim("PATCH", &format!("/Groups/{small}"), Some(&add(&users[4])));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json().unwrap()["members"].as_array().unwrap().len(), 2);

    let response = daemon.scim("PATCH", &format!("/Groups/{large}"), Some(&add(&users[4])));
    assert_eq!(response.status, 204, "{}", response.text());
    assert!(response.body.is_empty());
    let etag = response.header("etag").expect("204 carries the new ETag");
    let read = daemon.scim("GET", &format!("/Groups/{large}"), None);
    assert_eq!(read.header("etag").as_deref(), Some(etag.as_str()));
    assert_eq!(read.json().unwrap()["members"].as_array().unwrap().len(), 5);

    let response = daemon.scim("PATCH", &format!("/Groups/{large}?excludedAttributes=members"), Some(&add(&users[4])));
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.json().unwrap().get("members").is_none());
}

/// Sends one HTTP/1.1 request over the control socket and returns the raw answer.
fn control_get(daemon: &Daemon, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(daemon.socket_path()).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: idpsync\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// Sends `POST /reload` over the control socket and returns the JSON response body.
fn control_reload(daemon: &Daemon) -> Value {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(daemon.socket_path()).unwrap();
    write!(stream, "POST /reload HTTP/1.1\r\nHost: idpsync\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let body = answer.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|error| panic!("{error}: {answer}"))
}

#[test]
fn reload_names_keys_needing_restart() {
    let daemon = Daemon::start();
    let answer = control_reload(&daemon);
    assert_eq!(answer["reloaded"], true, "{answer}");
    assert_eq!(answer["restart_required"], json!([]), "{answer}");

    let config = std::fs::read_to_string(daemon.config_path()).unwrap();
    let listen = format!("127.0.0.1:{}", daemon.port());
    let edited = config.replace(&format!("listen = \"{listen}\""), "listen = \"127.0.0.1:1\"");
    assert_ne!(config, edited, "the test config names no server.listen to replace");
    std::fs::write(daemon.config_path(), edited).unwrap();
    for _ in 0..2 {
        // A second reload still compares with the port the daemon listens on.
        let answer = control_reload(&daemon);
        assert_eq!(answer["reloaded"], true, "{answer}");
        assert_eq!(answer["restart_required"], json!(["server.listen"]), "{answer}");
    }
    assert_eq!(daemon.health(), Some(200), "the listener moved before a restart");
    let status = daemon.cli(&["status", "--json"]);
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["listen"], listen, "status reports a port the daemon does not listen on");

    std::fs::write(daemon.config_path(), config).unwrap();
    let answer = control_reload(&daemon);
    assert_eq!(answer["restart_required"], json!([]), "{answer}");
}

#[test]
fn metrics_count_requests_and_commits() {
    let daemon = Daemon::start();
    create(&daemon, "/Users", &user("grace@example.com"));
    daemon.scim("GET", "/Users/missing", None);
    let metrics = control_get(&daemon, "/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(metrics.contains("idpsync_scim_requests_total{resource=\"Users\",method=\"POST\",status=\"201\"} 1"), "{metrics}");
    assert!(metrics.contains("idpsync_scim_requests_total{resource=\"Users\",method=\"GET\",status=\"404\"} 1"), "{metrics}");
    assert!(metrics.contains("idpsync_store_commits_total "), "{metrics}");
    assert!(metrics.contains("idpsync_store_size_bytes "), "{metrics}");
}

#[test]
fn control_socket_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let daemon = Daemon::start();
    let mode = std::fs::metadata(daemon.socket_path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "socket mode {mode:o} lets other users in");
    let status = control_get(&daemon, "/status");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(status.contains("\"scim_url\""), "{status}");
}

fn client_trusting(pem: &std::path::Path) -> reqwest::blocking::Client {
    let certificate = reqwest::Certificate::from_pem(&std::fs::read(pem).unwrap()).unwrap();
    reqwest::blocking::Client::builder()
        .add_root_certificate(certificate)
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap()
}

#[test]
fn sighup_swaps_certificate_keeping_connections() {
    let daemon = Daemon::start();
    let health = format!("{}/health", daemon.origin());
    let old_client = client_trusting(&daemon.cert_path());
    assert_eq!(old_client.get(&health).send().unwrap().status(), 200);
    let old_pem = daemon.dir().join("old-cert.pem");
    std::fs::copy(daemon.cert_path(), &old_pem).unwrap();

    // A second daemon generates a second self-signed pair; install it as the first one's.
    let other = Daemon::start();
    std::fs::copy(other.cert_path(), daemon.cert_path()).unwrap();
    std::fs::copy(
        other.cert_path().with_file_name("key.pem"),
        daemon.cert_path().with_file_name("key.pem"),
    )
    .unwrap();
    daemon.signal(libc::SIGHUP);

    let new_client = client_trusting(&other.cert_path());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if new_client.get(&health).send().is_ok_and(|response| response.status() == 200) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the new certificate was not served\n{}", daemon.log());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(daemon.log().contains("TLS certificate loaded"));

    // The connection opened before the reload keeps serving requests.
    assert_eq!(old_client.get(&health).send().unwrap().status(), 200);
    // A new connection that trusts only the old certificate is rejected.
    let fresh_old = client_trusting(&old_pem);
    assert!(fresh_old.get(&health).send().is_err());
}

#[test]
fn sighup_applies_new_log_level() {
    let daemon = Daemon::start_with("[log]\nlevel = \"warn\"");
    assert_eq!(daemon.scim("GET", "/Users", None).status, 200);
    assert!(!daemon.log().contains("scim request"), "debug lines logged at warn\n{}", daemon.log());

    let config = std::fs::read_to_string(daemon.config_path()).unwrap();
    let edited = config.replace(r#"level = "warn""#, r#"level = "info,idpsync=debug""#);
    assert_ne!(config, edited, "the test config names no log.level to replace");
    std::fs::write(daemon.config_path(), edited).unwrap();
    daemon.signal(libc::SIGHUP);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        assert_eq!(daemon.scim("GET", "/Users", None).status, 200);
        if daemon.log().contains("scim request") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no debug line after SIGHUP\n{}", daemon.log());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn acknowledged_writes_survive_kill() {
    let mut daemon = Daemon::start();
    let token = daemon.token().to_string();
    let url = format!("{}/Users", daemon.scim_url());
    let cert = daemon.cert_path();
    let pid = libc::pid_t::try_from(daemon.pid().unwrap()).unwrap();
    let acknowledged = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for writer in 0..8 {
            let (token, url, cert, acknowledged) = (&token, &url, &cert, &acknowledged);
            scope.spawn(move || {
                let client = client_trusting(cert);
                for index in 0..200 {
                    let body = user(&format!("w{writer}-{index}@example.com"));
                    let sent = client.post(url).bearer_auth(token).header("Content-Type", "application/scim+json").json(&body).send();
                    let Ok(response) = sent else { return };
                    if response.status() != 201 {
                        return;
                    }
                    let created: Value = response.json().unwrap();
                    acknowledged.lock().unwrap().push(created["id"].as_str().unwrap().to_string());
                }
            });
        }
        // Kill the daemon while the writers are still sending.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while acknowledged.lock().unwrap().len() < 50 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        // SAFETY: kill(2) only reads its two integer arguments.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    daemon.crash();
    let acknowledged = acknowledged.into_inner().unwrap();
    assert!(acknowledged.len() >= 50, "only {} writes were acknowledged", acknowledged.len());
    assert!(acknowledged.len() < 1600, "the daemon was killed only after every write");

    daemon.start_again();
    for id in &acknowledged {
        let response = daemon.scim("GET", &format!("/Users/{id}"), None);
        assert_eq!(response.status, 200, "acknowledged user {id} was lost");
    }
}

#[test]
fn unencoded_quotes_in_filter_are_accepted() {
    let daemon = Daemon::start();
    create(&daemon, "/Users", &user("ada@example.org"));
    let headers = vec![("Authorization".to_string(), format!("Bearer {}", daemon.token()))];

    let filter = "/scim/v2/Users?filter=userName eq \"ADA@example.org\"";
    let response = daemon.send_raw("GET", filter, &headers, None).unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json().unwrap()["totalResults"], 1);

    let hash = "/scim/v2/Groups?filter=displayName eq \"C# <dev>\"";
    let response = daemon.send_raw("GET", hash, &headers, None).unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json().unwrap()["totalResults"], 0);
}

#[test]
fn head_returns_headers_without_body() {
    let daemon = Daemon::start();
    let id = create(&daemon, "/Users", &user("ada@example.org"));
    let headers = vec![("Authorization".to_string(), format!("Bearer {}", daemon.token()))];

    let response = daemon.send_raw("HEAD", &format!("/scim/v2/Users/{id}"), &headers, None).unwrap();
    assert_eq!(response.status, 200);
    assert!(response.body.is_empty(), "HEAD returned a body: {}", response.text());
    assert!(response.header("etag").is_some());
    let length: usize = response.header("content-length").unwrap().parse().unwrap();
    assert!(length > 0);
}

#[test]
fn method_not_allowed_lists_endpoint_methods() {
    let daemon = Daemon::start();
    let on_list = daemon.scim("DELETE", "/Users", None);
    assert_scim_error(&on_list, 405, None);
    assert_eq!(on_list.header("allow").as_deref(), Some("GET, HEAD, POST"));
    let on_schemas = daemon.scim("POST", "/Schemas", Some(&json!({})));
    assert_scim_error(&on_schemas, 405, None);
    assert_eq!(on_schemas.header("allow").as_deref(), Some("GET, HEAD"));
}

#[test]
fn bulk_and_me_are_not_implemented() {
    let daemon = Daemon::start();
    assert_scim_error(&daemon.scim("POST", "/Bulk", Some(&json!({}))), 501, None);
    assert_scim_error(&daemon.scim("GET", "/Me", None), 501, None);
}

#[test]
fn root_query_lists_every_resource_type() {
    let daemon = Daemon::start();
    create(&daemon, "/Users", &user("ada@example.org"));
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "ada"});
    create(&daemon, "/Groups", &group);

    let all = daemon.scim("GET", "/", None);
    assert_eq!(all.status, 200, "{}", all.text());
    assert_eq!(all.json().unwrap()["totalResults"], 2);
    let filtered = daemon.scim("GET", "/?filter=displayName%20eq%20%22ada%22", None);
    assert_eq!(filtered.status, 200, "{}", filtered.text());
    let body = filtered.json().unwrap();
    assert_eq!(body["totalResults"], 1);
    assert_eq!(body["Resources"][0]["meta"]["resourceType"], "Group");
}

#[test]
fn stalled_request_headers_close_connection() {
    use std::io::{Read, Write};
    let daemon = Daemon::start();
    let mut stalled = daemon.connect_tls().unwrap();
    stalled.write_all(b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut idle = daemon.connect_tls().unwrap();
    // Completes the handshake without sending a request.
    idle.conn.complete_io(&mut idle.sock).unwrap();

    let started = std::time::Instant::now();
    for stream in [&mut stalled, &mut idle] {
        let mut buffer = [0u8; 256];
        // The harness's read timeout (30 s) is longer than the daemon's header timeout.
        let closed = match stream.read(&mut buffer) {
            Ok(read) => read == 0,
            Err(error) => error.kind() == std::io::ErrorKind::UnexpectedEof,
        };
        assert!(closed, "the daemon kept a stalled connection open for {:?}", started.elapsed());
    }
}

#[test]
fn store_recovers_after_failed_write() {
    // Far above the new store file, far below what the writes below need.
    let daemon = Daemon::start_with_file_size_limit(6 * 1024 * 1024);
    let mut acknowledged = Vec::new();
    let mut failure = None;
    for index in 0..400 {
        let mut body = user(&format!("user{index}@example.org"));
        body["title"] = json!("x".repeat(100_000));
        let response = daemon.scim("POST", "/Users", Some(&body));
        if response.status == 201 {
            acknowledged.push(response.json().unwrap()["id"].as_str().unwrap().to_string());
        } else {
            failure = Some(response);
            break;
        }
    }
    let failure = failure.expect("no write failed under the file size limit");
    assert!(matches!(failure.status, 500 | 503), "{} {}", failure.status, failure.text());
    assert!(!acknowledged.is_empty());

    daemon.lift_file_size_limit();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let response = daemon.scim("POST", "/Users", Some(&user("after@example.org")));
        if response.status == 201 {
            break;
        }
        assert!(matches!(response.status, 500 | 503), "{} {}", response.status, response.text());
        assert!(std::time::Instant::now() < deadline, "writes did not resume\n{}", daemon.log());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    for id in &acknowledged {
        let response = daemon.scim("GET", &format!("/Users/{id}?attributes=userName"), None);
        assert_eq!(response.status, 200, "acknowledged user {id}: {}", response.text());
    }
    let failed_name = format!("user{}@example.org", acknowledged.len());
    let filter = format!("/Users?filter=userName%20eq%20%22{failed_name}%22");
    let response = daemon.scim("GET", &filter, None);
    assert_eq!(response.json().unwrap()["totalResults"], 0, "the failed write was stored");
    assert!(daemon.log().contains("store reopened"), "{}", daemon.log());
}

#[test]
fn discovery_endpoints_reject_filters() {
    let daemon = Daemon::start();
    for path in ["/Schemas", "/ResourceTypes", "/ServiceProviderConfig"] {
        let response = daemon.scim("GET", &format!("{path}?filter=id%20eq%20%22User%22"), None);
        assert_scim_error(&response, 403, None);
        assert_eq!(daemon.scim("GET", path, None).status, 200, "{path}");
    }
}

#[test]
fn sort_by_group_display_orders_users() {
    let daemon = Daemon::start();
    let first = create(&daemon, "/Users", &user("first@example.org"));
    let second = create(&daemon, "/Users", &user("second@example.org"));
    for (name, member) in [("beta", &first), ("alpha", &second)] {
        let group = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": name,
            "members": [{"value": member}]
        });
        create(&daemon, "/Groups", &group);
    }
    let order = |sort_order: &str| -> Vec<String> {
        let path = format!("/Users?sortBy=groups.display&sortOrder={sort_order}&attributes=userName");
        let response = daemon.scim("GET", &path, None);
        assert_eq!(response.status, 200, "{}", response.text());
        let body = response.json().unwrap();
        body["Resources"].as_array().unwrap().iter().map(|user| user["userName"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(order("ascending"), ["second@example.org", "first@example.org"]);
    assert_eq!(order("descending"), ["first@example.org", "second@example.org"]);
}

#[test]
fn endpoint_names_match_any_case() {
    let daemon = Daemon::start();
    let id = create(&daemon, "/users", &user("case@example.org"));
    assert_eq!(daemon.scim("GET", &format!("/USERS/{id}"), None).status, 200);
    assert_eq!(daemon.scim("GET", "/groups", None).status, 200);
    assert_eq!(daemon.scim("GET", "/serviceproviderconfig", None).status, 200);
    let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]});
    let response = daemon.scim("POST", "/Users/.SEARCH", Some(&search));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json().unwrap()["totalResults"], 1);
    // Ids keep their case.
    assert_eq!(daemon.scim("GET", &format!("/Users/{}", id.to_uppercase()), None).status, 404);
}

#[test]
fn user_version_follows_group_membership() {
    let daemon = Daemon::start();
    let id = create(&daemon, "/Users", &user("member@example.org"));
    let before = daemon.scim("GET", &format!("/Users/{id}"), None);
    let version = before.header("etag").expect("GET carries an ETag");
    let group = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Readers",
        "members": [{"value": id}]
    });
    create(&daemon, "/Groups", &group);

    let headers = vec![
        ("Authorization".to_string(), format!("Bearer {}", daemon.token())),
        ("If-None-Match".to_string(), version.clone()),
    ];
    let after = daemon.send("GET", &format!("/Users/{id}"), &headers, None).unwrap();
    assert_eq!(after.status, 200, "a cached copy without the new group was kept");
    assert_ne!(after.header("etag"), Some(version));
    assert_eq!(after.json().unwrap()["groups"][0]["display"], "Readers");
}

#[test]
fn repeated_query_parameter_is_400() {
    let daemon = Daemon::start();
    let response = daemon.scim("GET", "/Users?filter=userName%20pr&filter=bogus", None);
    assert_scim_error(&response, 400, Some("invalidValue"));
    assert!(response.text().contains("filter"), "{}", response.text());
}

#[test]
fn oversized_declared_body_is_413_before_upload() {
    use std::io::{Read, Write};
    let daemon = Daemon::start();
    let mut stream = daemon.connect_tls().unwrap();
    let request = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/scim+json\r\n\
         Content-Length: 2000000\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        daemon.token()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
}

#[test]
fn compressed_body_is_415() {
    let daemon = Daemon::start();
    let headers = vec![
        ("Authorization".to_string(), format!("Bearer {}", daemon.token())),
        ("Content-Type".to_string(), "application/scim+json".to_string()),
        ("Content-Encoding".to_string(), "gzip".to_string()),
    ];
    let body = serde_json::to_vec(&user("gz@example.org")).unwrap();
    let response = daemon.send("POST", "/Users", &headers, Some(body)).unwrap();
    assert_scim_error(&response, 415, None);
}
