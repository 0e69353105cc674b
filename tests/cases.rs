//! Runs the SCIM interoperability cases in `tests/cases/` against the daemon, one
//! test per case file, each on a fresh daemon and so on an empty tenant. The file
//! format, placeholders and matching rules are described in `tests/cases/README.md`.
//!
//! A failing test prints every unmet expectation of the step that failed, the
//! request and the response of that step, the exchanges before it and the daemon log.

mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Instant;

use common::{Daemon, Response};
use serde_json::{Map, Value};

macro_rules! cases {
    ($($test:ident => $id:literal,)+) => {
        $(
            #[test]
            fn $test() {
                run_case_file($id);
            }
        )+

        /// Every case id that has a test, in file order.
        const CASE_IDS: &[&str] = &[$($id),+];
    };
}

cases! {
    c01_entra_capitalised_patch_op_names => "C01",
    c02_entra_string_boolean_deactivates_user => "C02",
    c04_entra_string_boolean_on_create => "C04",
    c05_entra_pathless_patch_dotted_and_urn_keys => "C05",
    c07_entra_value_path_creates_missing_email => "C07",
    c09_entra_add_members_with_null_ref => "C09",
    c10_entra_remove_members_by_value_list_keeps_others => "C10",
    c11_okta_filtered_remove_then_add_members => "C11",
    c12_okta_replace_whole_member_list => "C12",
    c14_okta_pathless_patch_deactivates_user => "C14",
    c15_okta_put_group_replaces_members => "C15",
    c16_okta_create_user_ignores_password_and_groups => "C16",
    c17_duplicate_user_name_uniqueness_error => "C17",
    c18_user_name_filter_ignores_case => "C18",
    c21_empty_filter_result_list_response => "C21",
    c22_unknown_user_not_found_error => "C22",
    c23_okta_invalid_token_unauthorized_error => "C23",
    c24_entra_group_filter_with_spaces_excludes_members => "C24",
    c25_entra_get_group_excluding_members => "C25",
    c26_entra_filter_by_external_id => "C26",
    c27_entra_filter_email_value_path_sub_attribute => "C27",
    c29_start_index_zero_read_as_one => "C29",
    c30_count_zero_returns_total_only => "C30",
    c32_non_numeric_paging_parameter_invalid_value => "C32",
    c34_entra_charset_media_type_ignores_client_meta => "C34",
    c35_pingfederate_plain_json_media_type => "C35",
    c36_entra_unknown_schema_uri_on_group_create => "C36",
    c37_entra_manager_as_bare_string => "C37",
    c40_entra_clear_attributes_with_empty_and_null => "C40",
    c41_lowercase_operations_key => "C41",
    c44_delete_twice_not_found => "C44",
    c45_stale_if_match_precondition_failed => "C45",
    c46_okta_large_member_batch_keeps_all => "C46",
    c48_unknown_member_reference_no_server_error => "C48",
    c53_okta_list_response_shape => "C53",
    c54_malformed_json_invalid_syntax => "C54",
    c55_group_without_display_name_invalid_value => "C55",
    c56_entra_add_replaces_single_valued_attribute => "C56",
}

const CASES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cases");

/// Keys whose values, nested keys included, are filled with placeholders.
const REQUEST_KEYS: &[&str] = &["method", "path", "headers", "body"];
const EXPECT_KEYS: &[&str] = &[
    "expect_status",
    "expect_headers",
    "expect_json_at",
    "expect_json_subset",
    "expect_absent",
    "expect_member_ids",
    "expect_member_count",
];
/// Expectations that read the response's JSON body.
const JSON_EXPECT_KEYS: &[&str] = &[
    "expect_json_at",
    "expect_json_subset",
    "expect_absent",
    "expect_member_ids",
    "expect_member_count",
];
/// Keys that start with `expect` but assert nothing by themselves.
const DESCRIPTIVE_EXPECT_KEYS: &[&str] = &["expect_notes"];

/// Characters of JSON or body text quoted in a failure reason.
const EXCERPT: usize = 240;
/// Characters of a request or response body shown for the step that failed.
const BODY_EXCERPT: usize = 2000;

fn run_case_file(id: &str) {
    if let Err(report) = run_case_at(&format!("{CASES_DIR}/{id}.json")) {
        panic!("{report}");
    }
}

/// Runs one case file on a fresh daemon; returns the failure report.
fn run_case_at(path: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {path}: {error}"));
    let case: Value =
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("{path} is not JSON: {error}"));
    if let Err(error) = validate_case(&case) {
        return Err(format!("{path} is not a valid case: {error:?}"));
    }
    let id = case.get("id").and_then(Value::as_str).unwrap_or(path).to_string();

    let daemon = Daemon::start();
    let token = daemon.create_token("interoperability-cases");
    let mut run = CaseRun::new(&daemon, token);
    match run.case(&case) {
        Ok(()) => Ok(()),
        Err(Failure::Skipped(reason)) => {
            println!("{id} skipped: {reason}");
            Ok(())
        }
        Err(failure) => Err(format!("{id} failed: {}\n\n{}", failure.describe(), run.transcript)),
    }
}

/// Runs every case in `tests/cases/regression/`: further request shapes of the same
/// providers and of the RFCs, in the same format, each on a fresh daemon.
#[test]
fn regression_cases_pass() {
    let dir = format!("{CASES_DIR}/regression");
    let mut paths: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("cannot read {dir}: {error}"))
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "json"))
        .map(|path| path.to_string_lossy().into_owned())
        .collect();
    paths.sort();
    assert!(paths.len() >= 80, "only {} regression cases in {dir}", paths.len());
    let failures: Vec<String> = paths.iter().filter_map(|path| run_case_at(path).err()).collect();
    assert!(failures.is_empty(), "{} of {} regression cases failed:\n\n{}", failures.len(), paths.len(), failures.join("\n\n"));
}

/// Why a case stopped before passing.
#[derive(Debug)]
enum Failure {
    /// A step's response did not meet its expectations; the label names the step.
    Step { label: String, reasons: Vec<String> },
    /// The case file cannot run as written (invalid pointer, unknown placeholder).
    Invalid(String),
    /// The precondition does not hold.
    Skipped(String),
}

impl Failure {
    fn describe(&self) -> String {
        match self {
            Failure::Step { label, reasons } => {
                let lines: Vec<String> = reasons
                    .iter()
                    .map(|reason| format!("  {label}: {reason}"))
                    .collect();
                format!("\n{}", lines.join("\n"))
            }
            Failure::Invalid(reason) => format!("case cannot run as written: {reason}"),
            Failure::Skipped(reason) => format!("skipped: {reason}"),
        }
    }
}

fn invalid(reason: impl Into<String>) -> Failure {
    Failure::Invalid(reason.into())
}

/// The state of one case while it runs: the tenant's token, the saved responses and a
/// transcript of the exchanges for the failure message.
struct CaseRun<'d> {
    daemon: &'d Daemon,
    token: String,
    saved: Map<String, Value>,
    transcript: String,
}

impl<'d> CaseRun<'d> {
    fn new(daemon: &'d Daemon, token: String) -> CaseRun<'d> {
        CaseRun {
            daemon,
            token,
            saved: Map::new(),
            transcript: String::from("exchanges:\n"),
        }
    }

    fn case(&mut self, case: &Value) -> Result<(), Failure> {
        let case = validate_case(case)?;
        if let Some(precondition) = case.get("precondition").filter(|value| !value.is_null()) {
            self.check_precondition(precondition)?;
        }

        for (number, step) in steps(case, "setup").iter().enumerate() {
            let label = match step.get("save_as").and_then(Value::as_str) {
                Some(name) => format!("setup {name}"),
                None => format!("setup[{number}]"),
            };
            self.step(step, &label)?;
        }
        self.step(case, "request")?;
        for (number, step) in steps(case, "verify").iter().enumerate() {
            self.step(step, &format!("verify[{number}]"))?;
        }
        Ok(())
    }

    /// Runs one step, all its repetitions, and keeps the responses under `save_as`.
    fn step(&mut self, step: &Map<String, Value>, label: &str) -> Result<(), Failure> {
        let repeat = match step.get("repeat") {
            None | Some(Value::Null) => None,
            Some(Value::Number(count)) => match count.as_u64() {
                Some(count) if count >= 1 => Some(count),
                _ => {
                    return Err(invalid(format!(
                        "{label}: repeat must be a positive integer"
                    )))
                }
            },
            Some(_) => {
                return Err(invalid(format!(
                    "{label}: repeat must be a positive integer"
                )))
            }
        };

        let mut bodies = Vec::new();
        for number in 1..=repeat.unwrap_or(1) {
            let placeholders = Placeholders {
                token: &self.token,
                saved: &self.saved,
                index: repeat.map(|_| number),
            };
            let filled = placeholders.fill_step(step)?;
            let step_label = match repeat {
                Some(_) => format!("{label} #{number}"),
                None => label.to_string(),
            };
            let response = self.exchange(step, &filled, &step_label)?;
            bodies.push(match response.json() {
                Some(body @ (Value::Object(_) | Value::Array(_))) => body,
                _ => Value::Object(Map::new()),
            });
        }

        if let Some(name) = step.get("save_as").and_then(Value::as_str) {
            let saved = match repeat {
                Some(_) => Value::Array(bodies),
                None => bodies.pop().unwrap_or(Value::Object(Map::new())),
            };
            self.saved.insert(name.to_string(), saved);
        }
        Ok(())
    }

    /// Sends one filled request and checks its response.
    fn exchange(
        &mut self,
        step: &Map<String, Value>,
        filled: &Map<String, Value>,
        label: &str,
    ) -> Result<Response, Failure> {
        let request = Request::from_filled(filled, label)?;
        let step_label = format!(
            "{label} {} {}",
            request.method,
            step.get("path").and_then(Value::as_str).unwrap_or("")
        );

        let started = Instant::now();
        let response = match self.daemon.send(
            &request.method,
            &request.path,
            &request.headers,
            request.body.clone(),
        ) {
            Ok(response) => response,
            Err(error) => {
                let _ = writeln!(
                    self.transcript,
                    "  {label} {} {}: {error}",
                    request.method, request.path
                );
                return Err(Failure::Step {
                    label: step_label,
                    reasons: vec![error],
                });
            }
        };
        let milliseconds = started.elapsed().as_millis();
        let _ = writeln!(
            self.transcript,
            "  {label} {} {} -> {} ({milliseconds} ms)",
            request.method, request.path, response.status
        );

        let reasons = check(filled, &response, &self.saved)?;
        if reasons.is_empty() {
            return Ok(response);
        }
        self.record_failed_exchange(&request, &response);
        Err(Failure::Step {
            label: step_label,
            reasons,
        })
    }

    fn record_failed_exchange(&mut self, request: &Request, response: &Response) {
        let sent = request
            .body
            .as_deref()
            .map(|body| excerpt(&String::from_utf8_lossy(body), BODY_EXCERPT))
            .unwrap_or_else(|| "(no body)".to_string());
        let headers: Vec<String> = request
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {}", redacted(name, value)))
            .collect();
        let _ = write!(
            self.transcript,
            "\nrequest that failed:\n  {} {}\n  {}\n  {sent}\nresponse:\n  status {}\n  Content-Type: {}\n  {}\n",
            request.method,
            request.path,
            headers.join("\n  "),
            response.status,
            response.header("Content-Type").unwrap_or_else(|| "(none)".to_string()),
            excerpt(&response.text(), BODY_EXCERPT),
        );
    }

    /// Checks the precondition: a step object that must pass, or the text
    /// `GET /Path reports field.path == value`, with anything after `;` a comment.
    fn check_precondition(&mut self, precondition: &Value) -> Result<(), Failure> {
        if let Some(step) = precondition.as_object() {
            return match self.step(step, "precondition") {
                Err(Failure::Step { reasons, .. }) => Err(Failure::Skipped(format!(
                    "precondition does not hold: {}",
                    reasons.first().map(String::as_str).unwrap_or("")
                ))),
                other => other,
            };
        }
        let text = precondition.as_str().unwrap_or("");
        let (path, field, expected) = parse_precondition(text)
            .ok_or_else(|| invalid(format!("precondition not understood: {text:?} (expected 'GET /Path reports field.path == value')")))?;

        let headers = vec![
            (
                "Authorization".to_string(),
                format!("Bearer {}", self.token),
            ),
            ("Accept".to_string(), "application/scim+json".to_string()),
        ];
        let response = self
            .daemon
            .send("GET", &path, &headers, None)
            .map_err(|error| {
                Failure::Skipped(format!("precondition could not be checked: {error}"))
            })?;
        let document = match response.json() {
            Some(document @ Value::Object(_)) if response.status == 200 => document,
            _ => {
                return Err(Failure::Skipped(format!(
                    "precondition could not be checked: GET {path} returned {}",
                    response.status
                )))
            }
        };
        match lookup_dotted(&document, &field) {
            Some(found) if json_equal(found, &expected) => Ok(()),
            found => {
                Err(Failure::Skipped(format!(
                "precondition does not hold: GET {path} reports {field} = {} (needs {expected})",
                found.map(Value::to_string).unwrap_or_else(|| "missing".to_string())
            )))
            }
        }
    }
}

/// A request with its placeholders filled, ready to send.
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl Request {
    fn from_filled(filled: &Map<String, Value>, label: &str) -> Result<Request, Failure> {
        let (Some(method), Some(path)) = (
            filled.get("method").and_then(Value::as_str),
            filled.get("path").and_then(Value::as_str),
        ) else {
            return Err(invalid(format!(
                "{label}: method and path are required strings"
            )));
        };

        let headers = match filled.get("headers") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(headers)) => headers
                .iter()
                .filter(|(_, value)| !value.is_null())
                .map(|(name, value)| (name.clone(), plain_text(value)))
                .collect(),
            Some(_) => return Err(invalid(format!("{label}: headers must be an object"))),
        };

        // A JSON string body is sent verbatim, which is how malformed JSON is written.
        let body = match filled.get("body") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.clone().into_bytes()),
            Some(document) => {
                Some(serde_json::to_vec(document).map_err(|error| invalid(error.to_string()))?)
            }
        };
        Ok(Request {
            method: method.to_string(),
            path: path.to_string(),
            headers,
            body,
        })
    }
}

/// Checks the shape of a case: top level and steps are objects, the request has an
/// `expect_status`, and no key looks like an expectation without being one, because
/// a misspelt `expect_*` key would silently assert nothing.
fn validate_case(case: &Value) -> Result<&Map<String, Value>, Failure> {
    let case = case
        .as_object()
        .ok_or_else(|| invalid("the file does not contain a JSON object"))?;
    check_expect_keys(case, "top level")?;
    for part in ["setup", "verify"] {
        match case.get(part) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (number, item) in items.iter().enumerate() {
                    let step = item
                        .as_object()
                        .ok_or_else(|| invalid(format!("{part}[{number}] is not an object")))?;
                    check_expect_keys(step, &format!("{part}[{number}]"))?;
                }
            }
            Some(_) => return Err(invalid(format!("{part} must be an array"))),
        }
    }
    if case.get("expect_status").is_none_or(Value::is_null) {
        return Err(invalid("the request has no expect_status"));
    }
    Ok(case)
}

fn check_expect_keys(object: &Map<String, Value>, place: &str) -> Result<(), Failure> {
    let mut unknown: Vec<&str> = object
        .keys()
        .map(String::as_str)
        .filter(|key| key.starts_with("expect"))
        .filter(|key| !EXPECT_KEYS.contains(key) && !DESCRIPTIVE_EXPECT_KEYS.contains(key))
        .collect();
    unknown.sort_unstable();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(invalid(format!(
            "unknown expectation key(s) {} at {place}",
            unknown.join(", ")
        )))
    }
}

/// Returns the steps of `setup` or `verify`; `validate_case` has checked their shape.
fn steps<'c>(case: &'c Map<String, Value>, part: &str) -> Vec<&'c Map<String, Value>> {
    case.get(part)
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default()
}

/// Parses `GET /Path reports field == value[; comment]` into path, field and value.
/// The value is read as JSON when it parses, and as a string otherwise.
fn parse_precondition(text: &str) -> Option<(String, String, Value)> {
    let statement = text.split(';').next()?.trim();
    let rest = statement.strip_prefix("GET")?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let mut words = rest.trim_start().splitn(2, char::is_whitespace);
    let path = words.next()?.to_string();
    let rest = words.next()?.trim_start().strip_prefix("reports")?;
    if !path.starts_with('/') || !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let (field, literal) = rest.split_once("==")?;
    let (field, literal) = (field.trim(), literal.trim());
    if field.is_empty() || field.contains(char::is_whitespace) || literal.is_empty() {
        return None;
    }
    let expected =
        serde_json::from_str(literal).unwrap_or_else(|_| Value::String(literal.to_string()));
    Some((path, field.to_string(), expected))
}

// ------------------------------------------------------------- placeholders ----

/// The values that `{{...}}` placeholders resolve to while one step is filled.
struct Placeholders<'a> {
    token: &'a str,
    saved: &'a Map<String, Value>,
    /// The repetition number, 1 to N, inside a step with `repeat`.
    index: Option<u64>,
}

/// One `{{name}}` found in a string: its byte range and the trimmed name.
struct Placeholder<'t> {
    start: usize,
    end: usize,
    name: &'t str,
}

/// Finds the placeholders in `text`, left to right and without overlap. A
/// placeholder is `{{`, then text without braces, then `}}`.
fn find_placeholders(text: &str) -> Vec<Placeholder<'_>> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut position = 0;
    while position + 1 < bytes.len() {
        // Bytes, not `str` slices: `position` steps through multi-byte characters.
        if !bytes[position..].starts_with(b"{{") {
            position += 1;
            continue;
        }
        let inner_start = position + 2;
        let close = text[inner_start..]
            .find(['{', '}'])
            .map(|offset| inner_start + offset)
            .filter(|&brace| text[brace..].starts_with("}}"));
        match close {
            Some(brace) => {
                found.push(Placeholder {
                    start: position,
                    end: brace + 2,
                    name: text[inner_start..brace].trim(),
                });
                position = brace + 2;
            }
            None => position += 1,
        }
    }
    found
}

impl Placeholders<'_> {
    /// Fills the request and expectation keys of a step; other keys are left out.
    fn fill_step(&self, step: &Map<String, Value>) -> Result<Map<String, Value>, Failure> {
        let mut filled = Map::new();
        for (key, value) in step {
            if REQUEST_KEYS.contains(&key.as_str()) || EXPECT_KEYS.contains(&key.as_str()) {
                filled.insert(key.clone(), self.fill(value)?);
            }
        }
        Ok(filled)
    }

    /// Fills every string in `value`, object keys included.
    fn fill(&self, value: &Value) -> Result<Value, Failure> {
        match value {
            Value::Object(object) => {
                let mut filled = Map::new();
                for (key, item) in object {
                    let key = plain_text(&self.fill_text(key)?);
                    filled.insert(key, self.fill(item)?);
                }
                Ok(Value::Object(filled))
            }
            Value::Array(items) => items
                .iter()
                .map(|item| self.fill(item))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            Value::String(text) => self.fill_text(text),
            other => Ok(other.clone()),
        }
    }

    /// Fills one string. A string that is a single placeholder keeps the JSON type of
    /// its value; a placeholder inside longer text is replaced by the value's text.
    fn fill_text(&self, text: &str) -> Result<Value, Failure> {
        let found = find_placeholders(text);
        if let [whole] = found.as_slice() {
            if whole.start == 0 && whole.end == text.len() {
                return match whole.name.strip_prefix("members_of:") {
                    Some(name) => self.members_of(name.trim()),
                    None => self.value_of(whole.name),
                };
            }
        }

        let mut filled = String::new();
        let mut copied = 0;
        for placeholder in &found {
            filled.push_str(&text[copied..placeholder.start]);
            filled.push_str(&plain_text(&self.value_of(placeholder.name)?));
            copied = placeholder.end;
        }
        filled.push_str(&text[copied..]);
        Ok(Value::String(filled))
    }

    fn value_of(&self, name: &str) -> Result<Value, Failure> {
        if name == "token" {
            return Ok(Value::String(self.token.to_string()));
        }
        if name == "i" {
            return self
                .index
                .map(Value::from)
                .ok_or_else(|| invalid("{{i}} used outside a step with \"repeat\""));
        }
        if name.starts_with("members_of:") {
            return Err(invalid(format!(
                "{{{{{name}}}}} must be a whole JSON string on its own"
            )));
        }
        let (saved_name, field) = name.split_once('.').unwrap_or((name, ""));
        let saved = self.saved.get(saved_name).ok_or_else(|| {
            invalid(format!(
                "placeholder {{{{{name}}}}}: no earlier step has save_as {saved_name:?}"
            ))
        })?;
        if field.is_empty() {
            return Err(invalid(format!(
                "placeholder {{{{{name}}}}} names no field (e.g. {{{{{name}.id}}}})"
            )));
        }
        lookup_dotted(saved, field).cloned().ok_or_else(|| {
            invalid(format!(
                "placeholder {{{{{name}}}}}: the response saved as {saved_name:?} has no {field:?}"
            ))
        })
    }

    /// Builds `[{"value": id}, ...]` from the responses saved under `name`.
    fn members_of(&self, name: &str) -> Result<Value, Failure> {
        let saved = self.saved.get(name).ok_or_else(|| {
            invalid(format!(
                "{{{{members_of:{name}}}}}: no earlier step has save_as {name:?}"
            ))
        })?;
        let items = match saved {
            Value::Array(items) => items.iter().collect::<Vec<_>>(),
            single => vec![single],
        };
        let mut members = Vec::new();
        for (number, item) in items.iter().enumerate() {
            match item.get("id").and_then(Value::as_str) {
                Some(id) if !id.is_empty() => members.push(serde_json::json!({ "value": id })),
                _ => {
                    return Err(invalid(format!(
                        "{{{{members_of:{name}}}}}: response {} has no id",
                        number + 1
                    )))
                }
            }
        }
        Ok(Value::Array(members))
    }
}

/// Returns the keys of `object` that name `name`: the exact key when present,
/// otherwise every key equal to it without regard to case (SCIM attribute names are
/// case-insensitive, RFC 7643 section 2.1).
fn find_keys<'o>(object: &'o Map<String, Value>, name: &str) -> Vec<&'o String> {
    if let Some((key, _)) = object.get_key_value(name) {
        return vec![key];
    }
    let lowered = name.to_lowercase();
    object
        .keys()
        .filter(|key| key.to_lowercase() == lowered)
        .collect()
}

/// Resolves a dotted field such as `meta.version` in a saved response. Keys may contain
/// dots (schema URNs do), so every split is tried, longest key first; a number
/// indexes an array.
fn lookup_dotted<'v>(value: &'v Value, field: &str) -> Option<&'v Value> {
    if field.is_empty() {
        return Some(value);
    }
    match value {
        Value::Array(items) => {
            let (head, tail) = field.split_once('.').unwrap_or((field, ""));
            if head.is_empty() || !head.bytes().all(|byte| byte.is_ascii_digit()) {
                return None;
            }
            let item = items.get(head.parse::<usize>().ok()?)?;
            lookup_dotted(item, tail)
        }
        Value::Object(object) => {
            let parts: Vec<&str> = field.split('.').collect();
            for cut in (1..=parts.len()).rev() {
                let key = parts[..cut].join(".");
                let tail = parts[cut..].join(".");
                for found in find_keys(object, &key) {
                    if let Some(value) = object
                        .get(found)
                        .and_then(|inner| lookup_dotted(inner, &tail))
                    {
                        return Some(value);
                    }
                }
            }
            None
        }
        _ => None,
    }
}

// ------------------------------------------------------------ expectations ----

/// Checks one response against the expectations of a filled step and returns every
/// unmet one. A wrong status is reported alone, because the body is then an error.
fn check(
    step: &Map<String, Value>,
    response: &Response,
    saved: &Map<String, Value>,
) -> Result<Vec<String>, Failure> {
    let expected_status = step.get("expect_status").unwrap_or(&Value::Null);
    if !status_matches(expected_status, response.status) {
        return Ok(vec![format!(
            "status {}, expected {} ({})",
            response.status,
            describe_status(expected_status),
            error_detail(response)
        )]);
    }

    let mut reasons = check_headers(step, response)?;
    if !JSON_EXPECT_KEYS.iter().any(|key| step.contains_key(*key)) {
        return Ok(reasons);
    }
    let document = match response.json() {
        Some(document @ (Value::Object(_) | Value::Array(_))) => document,
        Some(_) => {
            reasons.push("expected a JSON body: not an object".to_string());
            return Ok(reasons);
        }
        None if response.body.iter().all(u8::is_ascii_whitespace) => {
            reasons.push("expected a JSON body: no body".to_string());
            return Ok(reasons);
        }
        None => {
            reasons.push("expected a JSON body: body is not JSON".to_string());
            return Ok(reasons);
        }
    };

    reasons.extend(check_json_at(step, &document)?);
    if let Some(expected) = step.get("expect_json_subset") {
        reasons.extend(subset_mismatch(expected, &document, ""));
    }
    reasons.extend(check_absent(step, &document)?);
    if step.contains_key("expect_member_ids") || step.contains_key("expect_member_count") {
        reasons.extend(check_members(step, &document, saved)?);
    }
    Ok(reasons)
}

fn status_matches(expected: &Value, status: u16) -> bool {
    match expected {
        Value::Null => (200..300).contains(&status),
        Value::Array(codes) => codes
            .iter()
            .any(|code| code.as_u64() == Some(u64::from(status))),
        code => code.as_u64() == Some(u64::from(status)),
    }
}

fn describe_status(expected: &Value) -> String {
    match expected {
        Value::Null => "2xx".to_string(),
        Value::Array(codes) => codes
            .iter()
            .map(plain_text)
            .collect::<Vec<_>>()
            .join(" or "),
        code => plain_text(code),
    }
}

/// Quotes the SCIM error fields of an response briefly, or the start of its body.
fn error_detail(response: &Response) -> String {
    if let Some(Value::Object(error)) = response.json() {
        let parts: Vec<String> = ["status", "scimType", "detail"]
            .iter()
            .filter_map(|key| {
                error
                    .get(*key)
                    .map(|value| format!("{key}={}", excerpt(&plain_text(value), 160)))
            })
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    let text = response.text();
    if text.trim().is_empty() {
        "empty body".to_string()
    } else {
        excerpt(&text, 160)
    }
}

/// Each listed header must be present with the same media type; parameters such as
/// `charset` are ignored.
fn check_headers(step: &Map<String, Value>, response: &Response) -> Result<Vec<String>, Failure> {
    let expected = match step.get("expect_headers") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(expected)) => expected,
        Some(_) => return Err(invalid("expect_headers must be an object")),
    };
    let mut reasons = Vec::new();
    for (name, expected_value) in expected {
        let expected_value = plain_text(expected_value);
        match response.header(name) {
            None => reasons.push(format!("header {name} missing (expected {expected_value})")),
            Some(got) if media_type(&got) != media_type(&expected_value) => reasons.push(format!(
                "header {name} is {got:?}, expected {expected_value:?}"
            )),
            Some(_) => {}
        }
    }
    Ok(reasons)
}

fn media_type(value: &str) -> String {
    value.split(';').next().unwrap_or("").trim().to_lowercase()
}

fn check_json_at(step: &Map<String, Value>, document: &Value) -> Result<Vec<String>, Failure> {
    let expected = match step.get("expect_json_at") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(expected)) => expected,
        Some(_) => {
            return Err(invalid(
                "expect_json_at must be an object of pointer -> value",
            ))
        }
    };
    let mut reasons = Vec::new();
    for (pointer, expected_value) in expected {
        match resolve(document, pointer)? {
            None => reasons.push(format!(
                "{pointer} missing (expected {})",
                shown(expected_value)
            )),
            Some(got) if !json_equal(got, expected_value) => reasons.push(format!(
                "{pointer} is {}, expected {}",
                shown(got),
                shown(expected_value)
            )),
            Some(_) => {}
        }
    }
    Ok(reasons)
}

fn check_absent(step: &Map<String, Value>, document: &Value) -> Result<Vec<String>, Failure> {
    let pointers = match step.get("expect_absent") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(pointers)) => pointers,
        Some(_) => return Err(invalid("expect_absent must be an array of pointers")),
    };
    let mut reasons = Vec::new();
    for pointer in pointers {
        let pointer = pointer
            .as_str()
            .ok_or_else(|| invalid(format!("{pointer} is not a JSON Pointer")))?;
        let segments = pointer_segments(pointer)?;
        let mut found = Vec::new();
        resolve_ignoring_case(document, &segments, &mut found);
        if let Some(value) = found.into_iter().find(|value| !is_unassigned(Some(value))) {
            reasons.push(format!(
                "{pointer} should be unassigned but is {}",
                shown(value)
            ));
        }
    }
    Ok(reasons)
}

/// Compares JSON values: `true` is not `1`, `1` equals `1.0`, objects need the same
/// keys and arrays the same order.
fn json_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(left), Value::Number(right)) => match (left.as_i64(), right.as_i64()) {
            (Some(left), Some(right)) => left == right,
            _ => match (left.as_u64(), right.as_u64()) {
                (Some(left), Some(right)) => left == right,
                _ => left.as_f64() == right.as_f64(),
            },
        },
        (Value::Object(left), Value::Object(right)) => {
            left.len() == right.len()
                && left.iter().all(|(key, value)| {
                    right.get(key).is_some_and(|other| json_equal(value, other))
                })
        }
        (Value::Array(left), Value::Array(right)) => {
            left.len() == right.len()
                && left
                    .iter()
                    .zip(right)
                    .all(|(left, right)| json_equal(left, right))
        }
        (left, right) => left == right,
    }
}

/// Splits an RFC 6901 JSON Pointer into unescaped segments.
fn pointer_segments(pointer: &str) -> Result<Vec<String>, Failure> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer.strip_prefix('/').ok_or_else(|| {
        invalid(format!(
            "{pointer:?} is not a JSON Pointer (it must start with '/')"
        ))
    })?;
    Ok(rest
        .split('/')
        .map(|segment| segment.replace("~1", "/").replace("~0", "~"))
        .collect())
}

/// Returns the array index a pointer segment names: digits without a leading zero,
/// within bounds.
fn array_index(items: &[Value], segment: &str) -> Option<usize> {
    let digits = !segment.is_empty() && segment.bytes().all(|byte| byte.is_ascii_digit());
    if !digits || (segment.len() > 1 && segment.starts_with('0')) {
        return None;
    }
    segment
        .parse::<usize>()
        .ok()
        .filter(|&index| index < items.len())
}

/// Resolves a pointer as RFC 6901 defines it, with exact key names.
fn resolve<'v>(document: &'v Value, pointer: &str) -> Result<Option<&'v Value>, Failure> {
    let mut node = document;
    for segment in pointer_segments(pointer)? {
        let next = match node {
            Value::Object(object) => object.get(&segment),
            Value::Array(items) => array_index(items, &segment).and_then(|index| items.get(index)),
            _ => None,
        };
        match next {
            Some(value) => node = value,
            None => return Ok(None),
        }
    }
    Ok(Some(node))
}

/// Collects every value the pointer reaches when object keys match without regard to case.
fn resolve_ignoring_case<'v>(document: &'v Value, segments: &[String], found: &mut Vec<&'v Value>) {
    let Some((head, rest)) = segments.split_first() else {
        found.push(document);
        return;
    };
    match document {
        Value::Object(object) => {
            let lowered = head.to_lowercase();
            for (key, value) in object {
                if key.to_lowercase() == lowered {
                    resolve_ignoring_case(value, rest, found);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = array_index(items, head).and_then(|index| items.get(index)) {
                resolve_ignoring_case(item, rest, found);
            }
        }
        _ => {}
    }
}

/// Tells whether a value is unassigned: missing, null, "", [] or {} (RFC 7643 section 2.5).
fn is_unassigned(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(text)) => text.is_empty(),
        Some(Value::Array(items)) => items.is_empty(),
        Some(Value::Object(object)) => object.is_empty(),
        Some(_) => false,
    }
}

/// Returns `None` when `expected` is a recursive subset of `actual`, else the first
/// reason. Object keys match without regard to case. Each element of an expected array
/// must match its own element of the actual array, in any order.
fn subset_mismatch(expected: &Value, actual: &Value, place: &str) -> Option<String> {
    let shown_place = if place.is_empty() { "/" } else { place };
    match expected {
        Value::Object(expected) => {
            let Value::Object(actual) = actual else {
                return Some(format!(
                    "{shown_place} is {}, expected an object",
                    shown(actual)
                ));
            };
            for (key, expected_value) in expected {
                let keys = find_keys(actual, key);
                if keys.is_empty() {
                    return Some(format!(
                        "{place}/{key} missing (expected {})",
                        shown(expected_value)
                    ));
                }
                let mut reasons = keys.iter().map(|found| {
                    subset_mismatch(
                        expected_value,
                        &actual[found.as_str()],
                        &format!("{place}/{found}"),
                    )
                });
                if let Some(first) = reasons.next().flatten() {
                    if reasons.all(|reason| reason.is_some()) {
                        return Some(first);
                    }
                }
            }
            None
        }
        Value::Array(expected) => {
            let Value::Array(actual) = actual else {
                return Some(format!(
                    "{shown_place} is {}, expected an array",
                    shown(actual)
                ));
            };
            array_subset_mismatch(expected, actual, shown_place)
        }
        scalar if json_equal(scalar, actual) => None,
        scalar => Some(format!(
            "{shown_place} is {}, expected {}",
            shown(actual),
            shown(scalar)
        )),
    }
}

/// Matches each expected element to a distinct actual element (a bipartite matching
/// by augmenting paths), so `[{"value": "a"}, {"value": "a"}]` needs two elements.
fn array_subset_mismatch(expected: &[Value], actual: &[Value], place: &str) -> Option<String> {
    let candidates: Vec<Vec<usize>> = expected
        .iter()
        .map(|expected_value| {
            (0..actual.len())
                .filter(|&index| subset_mismatch(expected_value, &actual[index], "").is_none())
                .collect()
        })
        .collect();
    let mut owner: HashMap<usize, usize> = HashMap::new();
    for (index, expected_value) in expected.iter().enumerate() {
        let mut tried = Vec::new();
        if place_element(index, &candidates, &mut owner, &mut tried) {
            continue;
        }
        return Some(if candidates[index].is_empty() {
            format!(
                "{place}: no element matches {} (got {})",
                shown(expected_value),
                shown(&Value::from(actual.to_vec()))
            )
        } else {
            format!(
                "{place}: {} has no element of its own (got {})",
                shown(expected_value),
                shown(&Value::from(actual.to_vec()))
            )
        });
    }
    None
}

/// Finds an actual element for expected element `index`, moving earlier owners to
/// other candidates when needed. Depth is bounded by the number of expected elements.
fn place_element(
    index: usize,
    candidates: &[Vec<usize>],
    owner: &mut HashMap<usize, usize>,
    tried: &mut Vec<usize>,
) -> bool {
    for &candidate in &candidates[index] {
        if tried.contains(&candidate) {
            continue;
        }
        tried.push(candidate);
        let free = match owner.get(&candidate).copied() {
            None => true,
            Some(previous) => place_element(previous, candidates, owner, tried),
        };
        if free {
            owner.insert(candidate, index);
            return true;
        }
    }
    false
}

/// Returns the `members[].value` list of a Group response, names matched without
/// regard to case; a member without a value counts as null.
fn member_values(document: &Value) -> Result<Vec<Value>, String> {
    let Value::Object(object) = document else {
        return Ok(Vec::new());
    };
    let mut values = Vec::new();
    for key in find_keys(object, "members") {
        let listed = &object[key.as_str()];
        if is_unassigned(Some(listed)) {
            continue;
        }
        let Value::Array(members) = listed else {
            return Err(format!("members is {}, not an array", shown(listed)));
        };
        for member in members {
            let value = match member {
                Value::Object(member) => find_keys(member, "value")
                    .first()
                    .map(|key| member[key.as_str()].clone())
                    .unwrap_or(Value::Null),
                _ => Value::Null,
            };
            values.push(value);
        }
    }
    Ok(values)
}

fn check_members(
    step: &Map<String, Value>,
    document: &Value,
    saved: &Map<String, Value>,
) -> Result<Vec<String>, Failure> {
    let values = match member_values(document) {
        Ok(values) => values,
        Err(reason) => return Ok(vec![reason]),
    };
    let names = saved_names(saved);
    let show = |ids: &[&Value]| -> String {
        let shown_ids: Vec<String> = ids
            .iter()
            .map(|id| match id.as_str().and_then(|id| names.get(id)) {
                Some(name) => name.clone(),
                None => excerpt(&id.to_string(), 60),
            })
            .collect();
        if shown_ids.is_empty() {
            "none".to_string()
        } else {
            shown_ids.join(", ")
        }
    };

    let mut reasons = Vec::new();
    let mut distinct: Vec<&Value> = Vec::new();
    let mut doubled: Vec<&Value> = Vec::new();
    for value in &values {
        if distinct.contains(&value) {
            if !doubled.contains(&value) {
                doubled.push(value);
            }
        } else {
            distinct.push(value);
        }
    }
    if !doubled.is_empty() {
        reasons.push(format!("members listed more than once: {}", show(&doubled)));
    }

    if let Some(expected_ids) = step.get("expect_member_ids") {
        let expected_ids = expected_ids
            .as_array()
            .ok_or_else(|| invalid("expect_member_ids must be an array"))?;
        let missing: Vec<&Value> = expected_ids
            .iter()
            .filter(|id| !distinct.contains(id))
            .collect();
        let unexpected: Vec<&Value> = distinct
            .iter()
            .copied()
            .filter(|value| !expected_ids.contains(value))
            .collect();
        if !missing.is_empty() || !unexpected.is_empty() {
            let mut parts = Vec::new();
            if !missing.is_empty() {
                parts.push(format!("missing {}", show(&missing)));
            }
            if !unexpected.is_empty() {
                parts.push(format!("unexpected {}", show(&unexpected)));
            }
            let expected_ids: Vec<&Value> = expected_ids.iter().collect();
            reasons.push(format!(
                "members: {} (expected exactly {})",
                parts.join("; "),
                show(&expected_ids)
            ));
        }
    }

    if let Some(count) = step.get("expect_member_count") {
        let count = count.as_u64();
        if count != Some(distinct.len() as u64) || count != Some(values.len() as u64) {
            reasons.push(format!(
                "{} distinct members in {} entries, expected {}",
                distinct.len(),
                values.len(),
                count
                    .map(|count| count.to_string())
                    .unwrap_or_else(|| "a count".to_string())
            ));
        }
    }
    Ok(reasons)
}

/// Maps each saved resource id to the `save_as` name it was saved under, for
/// failure messages that read "missing u1" instead of an opaque id.
fn saved_names(saved: &Map<String, Value>) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for (name, value) in saved {
        let items = match value {
            Value::Array(items) => items.iter().collect::<Vec<_>>(),
            single => vec![single],
        };
        for item in items {
            if let Some(id) = item.get("id").and_then(Value::as_str) {
                names.entry(id.to_string()).or_insert_with(|| name.clone());
            }
        }
    }
    names
}

// ------------------------------------------------------------------ text ----

/// Hides the credential of an Authorization header, keeping its scheme.
fn redacted(name: &str, value: &str) -> String {
    if !name.eq_ignore_ascii_case("authorization") {
        return value.to_string();
    }
    match value.split_once(' ') {
        Some((scheme, _)) => format!("{scheme} (redacted)"),
        None => "(redacted)".to_string(),
    }
}

/// Returns a string's own text and any other value as JSON.
fn plain_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Collapses whitespace and cuts the text at `limit` characters.
fn excerpt(text: &str, limit: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() <= limit {
        return joined;
    }
    let cut: String = joined.chars().take(limit.saturating_sub(3)).collect();
    format!("{cut}...")
}

/// Formats a value as JSON, so that "true" and true read differently in a reason.
fn shown(value: &Value) -> String {
    excerpt(&value.to_string(), EXCERPT)
}

// ------------------------------------------------------------------ tests ----

#[test]
fn every_case_file_has_a_test() {
    let mut files: Vec<String> = std::fs::read_dir(CASES_DIR)
        .expect("read tests/cases")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .filter_map(|path| {
            path.file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
        })
        .collect();
    files.sort();
    let mut listed: Vec<String> = CASE_IDS.iter().map(|id| id.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed);
}

#[test]
fn every_case_file_is_valid() {
    for id in CASE_IDS {
        let text = std::fs::read_to_string(format!("{CASES_DIR}/{id}.json")).expect("read case");
        let case: Value = serde_json::from_str(&text).expect("case is JSON");
        assert!(
            validate_case(&case).is_ok(),
            "{id}: {:?}",
            validate_case(&case).err()
        );
        assert_eq!(
            case.get("id").and_then(Value::as_str),
            Some(*id),
            "{id}: id differs from the file name"
        );
    }
}

#[cfg(test)]
mod harness_tests {
    use super::*;
    use serde_json::json;

    fn saved() -> Map<String, Value> {
        let saved = json!({
            "u1": {"id": "abc", "meta": {"version": "W/\"1\""}, "count": 3},
            "ext": {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1"}}},
            "bulk": [{"id": "b1"}, {"id": "b2"}],
        });
        saved.as_object().cloned().unwrap_or_default()
    }

    fn fill(text: &str, index: Option<u64>) -> Result<Value, Failure> {
        let saved = saved();
        let placeholders = Placeholders {
            token: "secret",
            saved: &saved,
            index,
        };
        placeholders.fill(&Value::String(text.to_string()))
    }

    #[test]
    fn placeholder_fill_table() {
        let table = [
            ("{{token}}", None, json!("secret")),
            ("Bearer {{token}}", None, json!("Bearer secret")),
            ("{{ u1.id }}", None, json!("abc")),
            ("{{u1.count}}", None, json!(3)),
            ("n{{u1.count}}", None, json!("n3")),
            ("{{u1.meta.version}}", None, json!("W/\"1\"")),
            ("{{U1.ID}}", None, json!(null)),
            ("{{bulk.1.id}}", None, json!("b2")),
            ("user{{i}}@example.com", Some(7), json!("user7@example.com")),
            ("{{i}}", Some(7), json!(7)),
            (
                "{{members_of:bulk}}",
                None,
                json!([{"value": "b1"}, {"value": "b2"}]),
            ),
            ("{{members_of:u1}}", None, json!([{"value": "abc"}])),
            (
                "{{ext.urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.manager.value}}",
                None,
                json!("m1"),
            ),
            ("{{{u1.id}}}", None, json!("{abc}")),
            (
                "no placeholder {{ here",
                None,
                json!("no placeholder {{ here"),
            ),
            ("{{u1.id}}/{{u1.id}}", None, json!("abc/abc")),
        ];
        for (text, index, expected) in table {
            match fill(text, index) {
                Ok(filled) => assert_eq!(filled, expected, "{text}"),
                Err(error) => assert!(expected.is_null(), "{text}: {error:?}"),
            }
        }
    }

    #[test]
    fn placeholder_errors_are_case_problems() {
        for text in [
            "{{i}}",
            "{{u9.id}}",
            "{{u1}}",
            "{{u1.missing}}",
            "x{{members_of:bulk}}",
        ] {
            assert!(
                matches!(fill(text, None), Err(Failure::Invalid(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn placeholders_fill_object_keys() {
        let saved = saved();
        let placeholders = Placeholders {
            token: "t",
            saved: &saved,
            index: None,
        };
        let filled = placeholders.fill(&json!({"{{u1.id}}": ["{{token}}"]})).ok();
        assert_eq!(filled, Some(json!({"abc": ["t"]})));
    }

    #[test]
    fn json_equal_table() {
        let table = [
            (json!(true), json!(1), false),
            (json!(1), json!(1.0), true),
            (json!("1"), json!(1), false),
            (json!({"a": 1}), json!({"a": 1, "b": null}), false),
            (json!([1, 2]), json!([2, 1]), false),
            (json!(null), json!(null), true),
        ];
        for (left, right, equal) in table {
            assert_eq!(json_equal(&left, &right), equal, "{left} vs {right}");
        }
    }

    #[test]
    fn subset_table() {
        let actual = json!({
            "userName": "a@example.com",
            "Members": [{"value": "u1"}, {"value": "u2", "display": "Two"}],
            "active": false,
        });
        let table = [
            (json!({"username": "a@example.com"}), true),
            (json!({"members": [{"value": "u2"}, {"value": "u1"}]}), true),
            (
                json!({"members": [{"value": "u1"}, {"value": "u1"}]}),
                false,
            ),
            (json!({"members": [{"value": "u3"}]}), false),
            (json!({"active": "false"}), false),
            (json!({"title": null}), false),
            (json!({"members": {"value": "u1"}}), false),
        ];
        for (expected, matches) in table {
            let reason = subset_mismatch(&expected, &actual, "");
            assert_eq!(reason.is_none(), matches, "{expected}: {reason:?}");
        }
    }

    #[test]
    fn subset_matching_moves_earlier_choice() {
        // The first expected element matches both actual elements; the second only
        // the first, so the matching must move the first to the second element.
        let expected = json!([{"type": "work"}, {"type": "work", "primary": true}]);
        let actual = json!([{"type": "work", "primary": true}, {"type": "work"}]);
        assert_eq!(subset_mismatch(&expected, &actual, ""), None);
    }

    #[test]
    fn pointer_table() {
        let document = json!({
            "a/b": 1,
            "m~n": 2,
            "name.givenName": "literal",
            "name": {"givenName": "nested"},
            "list": [10, 11],
        });
        let table = [
            ("/a~1b", Some(json!(1))),
            ("/m~0n", Some(json!(2))),
            ("/name.givenName", Some(json!("literal"))),
            ("/name/givenName", Some(json!("nested"))),
            ("/list/1", Some(json!(11))),
            ("/list/01", None),
            ("/list/2", None),
            ("/Name/givenName", None),
        ];
        for (pointer, expected) in table {
            let found = resolve(&document, pointer).ok().flatten().cloned();
            assert_eq!(found, expected, "{pointer}");
        }
    }

    #[test]
    fn absent_table() {
        let document = json!({"Title": "", "nickName": null, "emails": [], "name": {"givenName": "G"}, "x": {}});
        let step = json!({"expect_absent": ["/title", "/nickname", "/emails", "/x", "/missing", "/name/familyName"]});
        let reasons = check_absent(step.as_object().unwrap_or(&Map::new()), &document).ok();
        assert_eq!(reasons, Some(Vec::new()));

        let step = json!({"expect_absent": ["/NAME/givenname"]});
        let reasons = check_absent(step.as_object().unwrap_or(&Map::new()), &document)
            .ok()
            .unwrap_or_default();
        assert_eq!(reasons.len(), 1);
    }

    #[test]
    fn member_checks_table() {
        let step = json!({"expect_member_ids": ["abc", "b1"], "expect_member_count": 2});
        let step = step.as_object().cloned().unwrap_or_default();
        let saved = saved();
        let table = [
            (json!({"members": [{"value": "abc"}, {"value": "b1"}]}), 0),
            (json!({"Members": [{"Value": "b1"}, {"value": "abc"}]}), 0),
            (json!({"members": [{"value": "abc"}]}), 2),
            (
                json!({"members": [{"value": "abc"}, {"value": "b1"}, {"value": "b1"}]}),
                2,
            ),
            (json!({"members": [{"value": "abc"}, {"value": "b2"}]}), 1),
            (json!({"members": "abc"}), 1),
        ];
        for (document, failures) in table {
            let reasons = check_members(&step, &document, &saved)
                .ok()
                .unwrap_or_default();
            assert_eq!(reasons.len(), failures, "{document}: {reasons:?}");
        }
    }

    #[test]
    fn precondition_parse_table() {
        let table = [
            (
                "GET /ServiceProviderConfig reports etag.supported == true; otherwise skip",
                Some(("/ServiceProviderConfig", "etag.supported", json!(true))),
            ),
            (
                "GET /X reports a.b == enabled",
                Some(("/X", "a.b", json!("enabled"))),
            ),
            ("POST /X reports a == 1", None),
            ("GET X reports a == 1", None),
            ("GET /X a == 1", None),
        ];
        for (text, expected) in table {
            let parsed = parse_precondition(text);
            let expected =
                expected.map(|(path, field, value)| (path.to_string(), field.to_string(), value));
            assert_eq!(parsed, expected, "{text}");
        }
    }

    #[test]
    fn status_table() {
        assert!(status_matches(&json!(null), 204));
        assert!(!status_matches(&json!(null), 302));
        assert!(status_matches(&json!([200, 204]), 204));
        assert!(!status_matches(&json!(201), 200));
        assert!(!status_matches(&json!("200"), 200));
    }
}
