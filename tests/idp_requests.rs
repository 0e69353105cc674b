//! Requests that identity providers document or are known to send, each replayed in
//! the provider's own form: method, path with the provider's query encoding, headers
//! and a body with the same keys and value types. Every test asserts what that
//! provider reads from the response and the state a follow-up GET must show.
//!
//! The `tests/cases` files cover further shapes of the same providers; the tests here
//! cover the documented samples that those files do not.

mod common;

use std::collections::BTreeSet;

use common::{Daemon, Response};
use serde_json::{json, Value};

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// The request headers of one provider, without the Authorization header.
#[derive(Clone, Copy)]
enum Client {
    /// Microsoft Entra ID provisioning service.
    Entra,
    /// Okta's SCIM client, as its protocol reference shows it.
    Okta,
    /// authentik's SCIM provider (`requests` session with SCIM media types).
    Authentik,
    /// Keycloak's SCIM client extension with its configured content type.
    /// NOTE: the Accept header of the SDK it is built on is not reproduced.
    Keycloak,
    /// PingFederate's SCIM provisioner, which sends plain JSON media types.
    /// NOTE: PingOne's propagation store is assumed to send the same headers.
    Ping,
}

impl Client {
    fn headers(self, token: &str) -> Vec<(String, String)> {
        let pairs: &[(&str, &str)] = match self {
            Client::Entra => &[("Content-Type", "application/scim+json; charset=utf-8")],
            Client::Okta => &[
                ("User-Agent", "Okta SCIM Client 1.0.0"),
                ("Accept", "application/scim+json"),
                ("Accept-Charset", "utf-8"),
                ("Content-Type", "application/scim+json; charset=utf-8"),
            ],
            Client::Authentik => &[
                ("Accept", "application/scim+json"),
                ("Content-Type", "application/scim+json"),
            ],
            Client::Keycloak => &[("Content-Type", "application/scim+json")],
            Client::Ping => &[
                ("Accept", "application/json"),
                ("Content-Type", "application/json"),
            ],
        };
        let mut headers = vec![("Authorization".to_string(), format!("Bearer {token}"))];
        headers.extend(
            pairs
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string())),
        );
        headers
    }
}

/// Sends one request with `client`'s headers, exactly as `path` is written.
fn send(
    daemon: &Daemon,
    client: Client,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Response {
    let headers = client.headers(daemon.token());
    let payload = body.map(|body| serde_json::to_vec(body).expect("serialise request body"));
    daemon
        .send(method, path, &headers, payload)
        .unwrap_or_else(|error| panic!("{error}"))
}

/// Returns the JSON body, failing with the status and text when there is none.
fn body_of(response: &Response) -> Value {
    response.json().unwrap_or_else(|| {
        panic!(
            "status {} without a JSON body: {:?}",
            response.status,
            response.text()
        )
    })
}

fn assert_status(response: &Response, accepted: &[u16]) {
    assert!(
        accepted.contains(&response.status),
        "status {} not in {accepted:?}: {}",
        response.status,
        response.text()
    );
}

fn patch_body(operations: Value) -> Value {
    json!({"schemas": [PATCH_SCHEMA], "Operations": operations})
}

/// Creates a user through the plain test client and returns its id.
fn create_user(daemon: &Daemon, user_name: &str, extra: Value) -> String {
    let mut body = json!({
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": "Test", "familyName": "Person"},
        "emails": [{"value": user_name, "type": "work", "primary": true}],
        "active": true
    });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    create(daemon, "/Users", &body)
}

/// Creates a group with the given member ids and returns its id.
fn create_group(daemon: &Daemon, display_name: &str, members: &[&str]) -> String {
    let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
    let body = json!({
        "schemas": [GROUP_SCHEMA],
        "displayName": display_name,
        "members": members
    });
    create(daemon, "/Groups", &body)
}

fn create(daemon: &Daemon, path: &str, body: &Value) -> String {
    let response = daemon.scim("POST", path, Some(body));
    assert_eq!(response.status, 201, "{}", response.text());
    id_of(&body_of(&response))
}

fn id_of(resource: &Value) -> String {
    match resource["id"].as_str() {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => panic!("resource without an id: {resource}"),
    }
}

fn get(daemon: &Daemon, path: &str) -> Value {
    let response = daemon.scim("GET", path, None);
    assert_eq!(response.status, 200, "GET {path}: {}", response.text());
    body_of(&response)
}

/// Returns the set of `members[].value` of a group read back with a plain GET.
fn member_ids(daemon: &Daemon, group: &str) -> BTreeSet<String> {
    let body = get(daemon, &format!("/Groups/{group}"));
    let members = body["members"].as_array().cloned().unwrap_or_default();
    let ids: Vec<String> = members
        .iter()
        .map(|member| member["value"].as_str().unwrap_or_default().to_string())
        .collect();
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(set.len(), ids.len(), "a member is listed twice: {body}");
    set
}

fn id_set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|id| id.to_string()).collect()
}

fn assert_list_response(body: &Value, total: u64) {
    assert_eq!(body["schemas"], json!([LIST_SCHEMA]), "{body}");
    assert_eq!(body["totalResults"].as_u64(), Some(total), "{body}");
    assert!(
        body["startIndex"].is_u64(),
        "startIndex is not a number: {body}"
    );
    assert!(
        body["itemsPerPage"].is_u64(),
        "itemsPerPage is not a number: {body}"
    );
}

fn resource_ids(list: &Value) -> Vec<String> {
    list["Resources"]
        .as_array()
        .map(|resources| resources.iter().map(id_of).collect())
        .unwrap_or_default()
}

// Microsoft Entra ID: "Tutorial: Develop and plan provisioning for a SCIM endpoint", Get User by query.
#[test]
fn entra_user_query_plus_encoded() {
    let daemon = Daemon::start();
    let user_name = "Test_User_5e2f0a9c-1d3b-4c7a-9e8f-0a1b2c3d4e5f";
    let id = create_user(
        &daemon,
        user_name,
        json!({"externalId": "e1c5a7d2-4b3f-4e21-8a9d-6c0b1f2e3d4a"}),
    );
    create_user(&daemon, "someone.else@example.com", json!({}));

    let path = format!("/Users?filter=userName+eq+%22{user_name}%22");
    let response = send(&daemon, Client::Entra, "GET", &path, None);

    assert_eq!(response.status, 200, "{}", response.text());
    let body = body_of(&response);
    assert_list_response(&body, 1);
    assert_eq!(body["startIndex"], 1);
    let found = &body["Resources"][0];
    assert_eq!(found["id"], id.as_str());
    assert_eq!(found["userName"], user_name);
    assert_eq!(found["externalId"], "e1c5a7d2-4b3f-4e21-8a9d-6c0b1f2e3d4a");
    assert_eq!(found["emails"][0]["value"], user_name);
}

// Microsoft Entra ID: "Tutorial: Develop and plan provisioning for a SCIM endpoint", Update User [Multi-valued properties].
#[test]
fn entra_replace_work_email_and_family_name() {
    let daemon = Daemon::start();
    let id = create_user(
        &daemon,
        "lena.sample@example.com",
        json!({"name": {"givenName": "Lena", "familyName": "Sample", "formatted": "Lena Sample"}}),
    );
    let body = patch_body(json!([
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "lena.updated@example.org"},
        {"op": "Replace", "path": "name.familyName", "value": "Updated"}
    ]));

    let response = send(
        &daemon,
        Client::Entra,
        "PATCH",
        &format!("/Users/{id}"),
        Some(&body),
    );

    assert_status(&response, &[200, 204]);
    let user = get(&daemon, &format!("/Users/{id}"));
    assert_eq!(
        user["emails"],
        json!([{"value": "lena.updated@example.org", "type": "work", "primary": true}]),
        "{user}"
    );
    assert_eq!(user["name"]["familyName"], "Updated");
    assert_eq!(user["name"]["givenName"], "Lena");
    assert_eq!(user["userName"], "lena.sample@example.com");
}

// Microsoft Entra ID: "Tutorial: Develop and plan provisioning for a SCIM endpoint", Update User [Single-valued properties].
#[test]
fn entra_renamed_user_found_by_new_user_name() {
    let daemon = Daemon::start();
    let id = create_user(&daemon, "old.name@example.com", json!({}));
    let body = patch_body(json!([
        {"op": "Replace", "path": "userName", "value": "8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f@example.com"}
    ]));

    let response = send(
        &daemon,
        Client::Entra,
        "PATCH",
        &format!("/Users/{id}"),
        Some(&body),
    );

    assert_status(&response, &[200, 204]);
    let new_name =
        "/Users?filter=userName+eq+%228c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f%40example.com%22";
    let found = body_of(&send(&daemon, Client::Entra, "GET", new_name, None));
    assert_eq!(resource_ids(&found), vec![id]);
    let old_name = "/Users?filter=userName+eq+%22old.name%40example.com%22";
    let stale = body_of(&send(&daemon, Client::Entra, "GET", old_name, None));
    assert_eq!(stale["totalResults"], 0, "{stale}");
}

// Microsoft Entra ID: "Tutorial: Develop and plan provisioning for a SCIM endpoint", Disable User.
#[test]
fn entra_disable_user_with_boolean_false() {
    let daemon = Daemon::start();
    let id = create_user(&daemon, "gale.offline@example.com", json!({}));
    // Entra puts Operations before schemas in this request.
    let body = json!({
        "Operations": [{"op": "Replace", "path": "active", "value": false}],
        "schemas": [PATCH_SCHEMA]
    });

    let response = send(
        &daemon,
        Client::Entra,
        "PATCH",
        &format!("/Users/{id}"),
        Some(&body),
    );

    assert_status(&response, &[200, 204]);
    if response.status == 200 {
        let returned = body_of(&response);
        assert_eq!(returned["active"], false, "{returned}");
        assert_eq!(returned["id"], id.as_str());
    }
    let user = get(&daemon, &format!("/Users/{id}"));
    assert_eq!(user["active"], json!(false), "{user}");
}

// Microsoft Entra ID: "Tutorial: Develop and plan provisioning for a SCIM endpoint", requirements (soft delete with active=false, restore with active=true).
#[test]
fn entra_disabled_user_still_listed_and_restored() {
    let daemon = Daemon::start();
    let id = create_user(&daemon, "rhea.pause@example.com", json!({}));
    let disable = patch_body(json!([{"op": "Replace", "path": "active", "value": false}]));
    let response = send(
        &daemon,
        Client::Entra,
        "PATCH",
        &format!("/Users/{id}"),
        Some(&disable),
    );
    assert_status(&response, &[200, 204]);

    let query = "/Users?filter=userName+eq+%22rhea.pause%40example.com%22";
    let found = body_of(&send(&daemon, Client::Entra, "GET", query, None));
    assert_eq!(resource_ids(&found), vec![id.clone()], "{found}");
    assert_eq!(found["Resources"][0]["active"], false);

    let restore = patch_body(json!([{"op": "Replace", "path": "active", "value": true}]));
    let response = send(
        &daemon,
        Client::Entra,
        "PATCH",
        &format!("/Users/{id}"),
        Some(&restore),
    );
    assert_status(&response, &[200, 204]);
    assert_eq!(get(&daemon, &format!("/Users/{id}"))["active"], json!(true));
}

// Microsoft Entra ID: "Tutorial: Develop and plan provisioning for a SCIM endpoint", Delete User.
#[test]
fn entra_delete_user_drops_group_membership() {
    let daemon = Daemon::start();
    let leaving = create_user(&daemon, "leaving@example.com", json!({}));
    let staying = create_user(&daemon, "staying@example.com", json!({}));
    let group = create_group(&daemon, "Harbour Pilots", &[&leaving, &staying]);

    let response = send(
        &daemon,
        Client::Entra,
        "DELETE",
        &format!("/Users/{leaving}"),
        None,
    );

    assert_eq!(response.status, 204, "{}", response.text());
    assert!(
        response.body.is_empty(),
        "204 with a body: {}",
        response.text()
    );
    let gone = daemon.scim("GET", &format!("/Users/{leaving}"), None);
    assert_eq!(gone.status, 404, "{}", gone.text());
    assert_eq!(member_ids(&daemon, &group), id_set(&[&staying]));
}

// Microsoft Entra ID: "Tutorial: Develop and plan provisioning for a SCIM endpoint", Update Group [Non-member attributes].
#[test]
fn entra_replace_group_display_name_keeps_members() {
    let daemon = Daemon::start();
    let member = create_user(&daemon, "deckhand@example.com", json!({}));
    let group = create_group(&daemon, "Deck Crew", &[&member]);
    let body = patch_body(json!([{
        "op": "Replace",
        "path": "displayName",
        "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"
    }]));

    let response = send(
        &daemon,
        Client::Entra,
        "PATCH",
        &format!("/Groups/{group}"),
        Some(&body),
    );

    assert_status(&response, &[200, 204]);
    let read = get(
        &daemon,
        &format!("/Groups/{group}?excludedAttributes=members"),
    );
    assert_eq!(
        read["displayName"],
        "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"
    );
    assert_eq!(member_ids(&daemon, &group), id_set(&[&member]));
}

// Microsoft Entra ID: "Tutorial: Develop and plan provisioning for a SCIM endpoint", Delete Group.
#[test]
fn entra_delete_group_keeps_its_users() {
    let daemon = Daemon::start();
    let member = create_user(&daemon, "quartermaster@example.com", json!({}));
    let group = create_group(&daemon, "Stores", &[&member]);

    let response = send(
        &daemon,
        Client::Entra,
        "DELETE",
        &format!("/Groups/{group}"),
        None,
    );

    assert_eq!(response.status, 204, "{}", response.text());
    let gone = daemon.scim("GET", &format!("/Groups/{group}"), None);
    assert_eq!(gone.status, 404, "{}", gone.text());
    assert_eq!(get(&daemon, &format!("/Users/{member}"))["active"], true);
    let query = "/Groups?excludedAttributes=members&filter=displayName+eq+%22Stores%22";
    let list = body_of(&send(&daemon, Client::Entra, "GET", query, None));
    assert_eq!(list["totalResults"], 0, "{list}");
}

// Microsoft Entra ID: "Tutorial: Develop and plan provisioning for a SCIM endpoint", Example 2 (provision a user with null attributes).
#[test]
fn entra_create_user_with_null_attributes() {
    let daemon = Daemon::start();
    let body = json!({
        "schemas": [USER_SCHEMA, "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
        "externalId": "jyoung",
        "userName": "jyoung@example.com",
        "active": true,
        "addresses": null,
        "displayName": "Joy Young",
        "emails": [{"type": "work", "value": "jyoung@example.com", "primary": true}],
        "meta": {"resourceType": "User"},
        "name": {"familyName": "Young", "givenName": "Joy"},
        "phoneNumbers": null,
        "preferredLanguage": null,
        "title": null,
        "department": null,
        "manager": null
    });

    let response = send(&daemon, Client::Entra, "POST", "/Users", Some(&body));

    assert_eq!(response.status, 201, "{}", response.text());
    let id = id_of(&body_of(&response));
    let user = get(&daemon, &format!("/Users/{id}"));
    assert_eq!(user["userName"], "jyoung@example.com");
    assert_eq!(user["displayName"], "Joy Young");
    for attribute in [
        "addresses",
        "phoneNumbers",
        "preferredLanguage",
        "title",
        "department",
        "manager",
    ] {
        let value = &user[attribute];
        let unassigned = value.is_null() || value.as_array().is_some_and(Vec::is_empty);
        assert!(unassigned, "{attribute} reads back as {value}: {user}");
    }
}

// Microsoft Entra ID: "Tutorial: Develop and plan provisioning for a SCIM endpoint", Example 5 (Add manager as a reference list).
#[test]
fn entra_add_manager_as_reference_list() {
    let daemon = Daemon::start();
    let manager = create_user(&daemon, "chief@example.com", json!({}));
    let report = create_user(&daemon, "report@example.com", json!({}));
    let body = patch_body(json!([{
        "op": "Add",
        "path": "manager",
        "value": [{
            "$ref": format!("http://example.com/scim/Users/{manager}"),
            "value": manager
        }]
    }]));

    let response = send(
        &daemon,
        Client::Entra,
        "PATCH",
        &format!("/Users/{report}"),
        Some(&body),
    );

    assert_status(&response, &[200, 204]);
    let user = get(&daemon, &format!("/Users/{report}"));
    assert_eq!(
        user[ENTERPRISE_SCHEMA]["manager"]["value"],
        manager.as_str(),
        "{user}"
    );
    assert!(
        user.get("manager").is_none(),
        "manager stored at the top level: {user}"
    );
}

// Microsoft Entra ID: "Known issues and resolutions with SCIM 2.0 protocol compliance", replace multiple attributes without the aadOptscim062020 flag.
#[test]
fn entra_replace_attributes_one_operation_each() {
    let daemon = Daemon::start();
    let id = create_user(
        &daemon,
        "pvlo.before@example.com",
        json!({"schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA], "displayName": "Before"}),
    );
    let body = patch_body(json!([
        {"op": "Replace", "path": "displayName", "value": "Pvlo"},
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "pvlo.after@example.com"},
        {"op": "Replace", "path": "name.givenName", "value": "Gtfd"},
        {"op": "Replace", "path": "name.familyName", "value": "Pkqf"},
        {"op": "Replace", "path": "externalId", "value": "Eqpj"},
        {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "Eqpj"}
    ]));

    let response = send(
        &daemon,
        Client::Entra,
        "PATCH",
        &format!("/Users/{id}"),
        Some(&body),
    );

    assert_status(&response, &[200, 204]);
    let user = get(&daemon, &format!("/Users/{id}"));
    assert_eq!(user["displayName"], "Pvlo");
    assert_eq!(user["emails"][0]["value"], "pvlo.after@example.com");
    assert_eq!(user["name"]["givenName"], "Gtfd");
    assert_eq!(user["name"]["familyName"], "Pkqf");
    assert_eq!(user["externalId"], "Eqpj");
    assert_eq!(user[ENTERPRISE_SCHEMA]["employeeNumber"], "Eqpj", "{user}");
    let query = "/Users?filter=externalId+eq+%22Eqpj%22";
    let found = body_of(&send(&daemon, Client::Entra, "GET", query, None));
    assert_eq!(resource_ids(&found), vec![id]);
}

// Microsoft Entra ID: "Known issues and resolutions with SCIM 2.0 protocol compliance", disable user with the aadOptscim062020 flag.
#[test]
fn entra_flag_disable_user_lowercase_replace() {
    let daemon = Daemon::start();
    let id = create_user(&daemon, "flagged.off@example.com", json!({}));
    let body = patch_body(json!([{"op": "replace", "path": "active", "value": false}]));

    let response = send(
        &daemon,
        Client::Entra,
        "PATCH",
        &format!("/Users/{id}"),
        Some(&body),
    );

    assert_status(&response, &[200, 204]);
    assert_eq!(
        get(&daemon, &format!("/Users/{id}"))["active"],
        json!(false)
    );
}

// Microsoft Entra ID: "Known issues and resolutions with SCIM 2.0 protocol compliance", add a single-value string attribute with the aadOptscim062020 flag.
#[test]
fn entra_flag_add_nick_name_lowercase() {
    let daemon = Daemon::start();
    let id = create_user(&daemon, "babs.example@example.com", json!({}));
    let body = patch_body(json!([{"op": "add", "path": "nickName", "value": "Babs"}]));

    let response = send(
        &daemon,
        Client::Entra,
        "PATCH",
        &format!("/Users/{id}"),
        Some(&body),
    );

    assert_status(&response, &[200, 204]);
    assert_eq!(get(&daemon, &format!("/Users/{id}"))["nickName"], "Babs");
}

// Microsoft Entra ID: "Known issues and resolutions with SCIM 2.0 protocol compliance", remove a group member with the aadOptscim062020 flag.
#[test]
fn entra_flag_remove_member_by_filter() {
    let daemon = Daemon::start();
    let first = create_user(&daemon, "first.member@example.com", json!({}));
    let second = create_user(&daemon, "second.member@example.com", json!({}));
    let group = create_group(&daemon, "Rope Team", &[&first, &second]);
    let body = patch_body(json!([{
        "op": "remove",
        "path": format!("members[value eq \"{first}\"]")
    }]));

    let response = send(
        &daemon,
        Client::Entra,
        "PATCH",
        &format!("/Groups/{group}"),
        Some(&body),
    );

    assert_status(&response, &[200, 204]);
    assert_eq!(member_ids(&daemon, &group), id_set(&[&second]));
}

// Okta: SCIM 2.0 Protocol Reference (developer.okta.com/docs/reference/scim/scim-20), Update a specific User (PUT).
#[test]
fn okta_put_user_with_middle_name() {
    let daemon = Daemon::start();
    let id = create_user(
        &daemon,
        "test.user@example.com",
        json!({"name": {"givenName": "Another", "familyName": "User"}}),
    );
    let body = json!({
        "schemas": [USER_SCHEMA],
        "id": id,
        "userName": "test.user@example.com",
        "name": {"givenName": "Another", "middleName": "Excited", "familyName": "User"},
        "emails": [{
            "primary": true,
            "value": "test.user@example.com",
            "type": "work",
            "display": "test.user@example.com"
        }],
        "active": true,
        "groups": [],
        "meta": {"resourceType": "User"}
    });

    let response = send(
        &daemon,
        Client::Okta,
        "PUT",
        &format!("/Users/{id}"),
        Some(&body),
    );

    assert_eq!(response.status, 200, "{}", response.text());
    let returned = body_of(&response);
    assert_eq!(returned["id"], id.as_str());
    assert_eq!(returned["name"]["middleName"], "Excited", "{returned}");
    assert_eq!(returned["active"], true);
    let user = get(&daemon, &format!("/Users/{id}"));
    assert_eq!(user["name"]["middleName"], "Excited");
    assert_eq!(
        user["emails"][0]["display"], "test.user@example.com",
        "{user}"
    );
}

// Okta: SCIM 2.0 Protocol Reference (developer.okta.com/docs/reference/scim/scim-20), Update a specific User (PATCH): activating a user.
#[test]
fn okta_reactivate_user_with_pathless_replace() {
    let daemon = Daemon::start();
    let id = create_user(&daemon, "back.again@example.com", json!({"active": false}));
    let body = patch_body(json!([{"op": "replace", "value": {"active": true}}]));

    let response = send(
        &daemon,
        Client::Okta,
        "PATCH",
        &format!("/Users/{id}"),
        Some(&body),
    );

    assert_status(&response, &[200, 204]);
    if response.status == 200 {
        assert_eq!(body_of(&response)["active"], true);
    }
    assert_eq!(get(&daemon, &format!("/Users/{id}"))["active"], json!(true));
}

// Okta: SCIM 2.0 Protocol Reference (developer.okta.com/docs/reference/scim/scim-20), Create Groups (Group Push).
#[test]
fn okta_group_push_create_returns_group() {
    let daemon = Daemon::start();
    let body = json!({"schemas": [GROUP_SCHEMA], "displayName": "Test SCIMv2", "members": []});

    let response = send(&daemon, Client::Okta, "POST", "/Groups", Some(&body));

    assert_eq!(response.status, 201, "{}", response.text());
    let created = body_of(&response);
    let id = id_of(&created);
    assert_eq!(created["displayName"], "Test SCIMv2");
    assert!(created["schemas"]
        .as_array()
        .is_some_and(|schemas| schemas.contains(&json!(GROUP_SCHEMA))));
    let read = send(&daemon, Client::Okta, "GET", &format!("/Groups/{id}"), None);
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(body_of(&read)["displayName"], "Test SCIMv2");
}

// Okta: SCIM 2.0 Protocol Reference (developer.okta.com/docs/reference/scim/scim-20), Update a specific Group name.
#[test]
fn okta_group_push_rename_with_own_id() {
    let daemon = Daemon::start();
    let member = create_user(&daemon, "pushed.member@example.com", json!({}));
    let group = create_group(&daemon, "Test SCIMv2", &[&member]);
    let body = patch_body(json!([{
        "op": "replace",
        "value": {"id": group, "displayName": "Test SCIMv20"}
    }]));

    let response = send(
        &daemon,
        Client::Okta,
        "PATCH",
        &format!("/Groups/{group}"),
        Some(&body),
    );

    assert_status(&response, &[200, 204]);
    if response.status == 200 {
        let returned = body_of(&response);
        assert_eq!(returned["id"], group.as_str());
        assert_eq!(returned["displayName"], "Test SCIMv20");
    }
    let read = get(&daemon, &format!("/Groups/{group}"));
    assert_eq!(read["id"], group.as_str());
    assert_eq!(read["displayName"], "Test SCIMv20");
    assert_eq!(member_ids(&daemon, &group), id_set(&[&member]));
}

// Okta: SCIM 2.0 Protocol Reference (developer.okta.com/docs/reference/scim/scim-20), Delete a specific Group.
#[test]
fn okta_unlink_pushed_group_deletes_it() {
    let daemon = Daemon::start();
    let member = create_user(&daemon, "unlinked.member@example.com", json!({}));
    let group = create_group(&daemon, "Unlinked", &[&member]);
    let other = create_group(&daemon, "Still Pushed", &[&member]);

    let response = send(
        &daemon,
        Client::Okta,
        "DELETE",
        &format!("/Groups/{group}"),
        None,
    );

    assert_eq!(response.status, 204, "{}", response.text());
    let list = body_of(&send(
        &daemon,
        Client::Okta,
        "GET",
        "/Groups?startIndex=1&count=100",
        None,
    ));
    assert_list_response(&list, 1);
    assert_eq!(resource_ids(&list), vec![other.clone()]);
    assert_eq!(member_ids(&daemon, &other), id_set(&[&member]));
}

// Okta: SCIM 2.0 Protocol Reference (developer.okta.com/docs/reference/scim/scim-20), Retrieve Groups (paging by startIndex and count).
#[test]
fn okta_list_groups_in_pages() {
    let daemon = Daemon::start();
    let mut created: Vec<String> = ["Alpha Watch", "Bravo Watch", "Charlie Watch"]
        .iter()
        .map(|name| create_group(&daemon, name, &[]))
        .collect();

    let first = body_of(&send(
        &daemon,
        Client::Okta,
        "GET",
        "/Groups?startIndex=1&count=2",
        None,
    ));
    let second = body_of(&send(
        &daemon,
        Client::Okta,
        "GET",
        "/Groups?startIndex=3&count=2",
        None,
    ));

    assert_list_response(&first, 3);
    assert_list_response(&second, 3);
    assert_eq!(first["startIndex"], 1);
    assert_eq!(first["itemsPerPage"], 2);
    assert_eq!(second["startIndex"], 3);
    assert_eq!(second["itemsPerPage"], 1);
    let mut seen = resource_ids(&first);
    seen.extend(resource_ids(&second));
    seen.sort();
    created.sort();
    assert_eq!(seen, created, "pages overlap or miss a group");
    let again = body_of(&send(
        &daemon,
        Client::Okta,
        "GET",
        "/Groups?startIndex=1&count=2",
        None,
    ));
    assert_eq!(
        resource_ids(&again),
        resource_ids(&first),
        "page order is not stable"
    );
}

// authentik: goauthentik/authentik authentik/providers/scim/clients/schema.py (ServiceProviderConfiguration with a required bulk.maxOperations).
#[test]
fn authentik_reads_service_provider_config() {
    let daemon = Daemon::start();

    let response = send(
        &daemon,
        Client::Authentik,
        "GET",
        "/ServiceProviderConfig",
        None,
    );

    assert_eq!(response.status, 200, "{}", response.text());
    let config = body_of(&response);
    assert_eq!(config["patch"]["supported"], true, "{config}");
    assert_eq!(config["filter"]["supported"], true, "{config}");
    assert!(config["bulk"]["supported"].is_boolean(), "{config}");
    assert!(
        config["bulk"]["maxOperations"].is_u64(),
        "bulk.maxOperations must be an integer: {config}"
    );
    for feature in ["changePassword", "sort", "etag"] {
        assert!(
            config[feature]["supported"].is_boolean(),
            "{feature}.supported missing: {config}"
        );
    }
    assert!(config["authenticationSchemes"].is_array(), "{config}");
}

// authentik: goauthentik/authentik blueprints/system/providers-scim.yaml and authentik/providers/scim/clients/users.py (create, then PUT with id).
#[test]
fn authentik_create_then_put_deactivates_user() {
    let daemon = Daemon::start();
    let mut body = json!({
        "schemas": [USER_SCHEMA],
        "active": true,
        "emails": [{"primary": true, "type": "other", "value": "ak.person@example.com"}],
        "externalId": "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
        "name": {"familyName": "Person", "formatted": "Ak Person", "givenName": "Ak"},
        "displayName": "Ak Person",
        "userName": "akperson"
    });
    let created = send(&daemon, Client::Authentik, "POST", "/Users", Some(&body));
    assert_eq!(created.status, 201, "{}", created.text());
    let id = id_of(&body_of(&created));

    body["id"] = json!(id);
    body["active"] = json!(false);
    let response = send(
        &daemon,
        Client::Authentik,
        "PUT",
        &format!("/Users/{id}"),
        Some(&body),
    );

    assert_eq!(response.status, 200, "{}", response.text());
    let user = get(&daemon, &format!("/Users/{id}"));
    assert_eq!(user["active"], json!(false));
    assert_eq!(user["emails"][0]["type"], "other");
    assert_eq!(user["externalId"], "9f8e7d6c5b4a39281706f5e4d3c2b1a0");
}

// authentik: goauthentik/authentik authentik/providers/scim/clients/groups.py (_update_patch: path-less replace with the whole group).
#[test]
fn authentik_pathless_group_replace_with_id() {
    let daemon = Daemon::start();
    let member = create_user(&daemon, "ak.member@example.com", json!({}));
    let group = create_group(&daemon, "ak-admins", &[&member]);
    let body = json!({
        "schemas": [PATCH_SCHEMA],
        "Operations": [{
            "op": "replace",
            "value": {
                "schemas": [GROUP_SCHEMA],
                "displayName": "ak-administrators",
                "externalId": "5f0c9a52-3d1e-4b7a-8c6d-2e1f0a9b8c7d",
                "id": group
            }
        }]
    });

    let response = send(
        &daemon,
        Client::Authentik,
        "PATCH",
        &format!("/Groups/{group}"),
        Some(&body),
    );

    assert_status(&response, &[200, 204]);
    let read = get(&daemon, &format!("/Groups/{group}"));
    assert_eq!(read["id"], group.as_str());
    assert_eq!(read["displayName"], "ak-administrators");
    assert_eq!(read["externalId"], "5f0c9a52-3d1e-4b7a-8c6d-2e1f0a9b8c7d");
    assert_eq!(member_ids(&daemon, &group), id_set(&[&member]));
}

// authentik: goauthentik/authentik authentik/providers/scim/clients/groups.py (_patch_add_users: one add operation per member).
#[test]
fn authentik_group_patch_add_members() {
    let daemon = Daemon::start();
    let first = create_user(&daemon, "ak.first@example.com", json!({}));
    let second = create_user(&daemon, "ak.second@example.com", json!({}));
    let group = create_group(&daemon, "ak-readers", &[]);
    let body = patch_body(json!([
        {"op": "add", "path": "members", "value": [{"value": first}]},
        {"op": "add", "path": "members", "value": [{"value": second}]}
    ]));

    let response = send(
        &daemon,
        Client::Authentik,
        "PATCH",
        &format!("/Groups/{group}"),
        Some(&body),
    );

    assert_status(&response, &[200, 204]);
    assert_eq!(member_ids(&daemon, &group), id_set(&[&first, &second]));
}

// authentik: goauthentik/authentik authentik/providers/scim/clients/groups.py (patch_compare_users: adds, then removes by value list).
#[test]
fn authentik_add_then_remove_by_value_list() {
    let daemon = Daemon::start();
    let kept = create_user(&daemon, "ak.kept@example.com", json!({}));
    let dropped = create_user(&daemon, "ak.dropped@example.com", json!({}));
    let stale = create_user(&daemon, "ak.stale@example.com", json!({}));
    let joining = create_user(&daemon, "ak.joining@example.com", json!({}));
    let group = create_group(&daemon, "ak-editors", &[&kept, &dropped, &stale]);
    let body = patch_body(json!([
        {"op": "add", "path": "members", "value": [{"value": joining}]},
        {"op": "remove", "path": "members", "value": [{"value": dropped}]},
        {"op": "remove", "path": "members", "value": [{"value": stale}]}
    ]));

    let response = send(
        &daemon,
        Client::Authentik,
        "PATCH",
        &format!("/Groups/{group}"),
        Some(&body),
    );

    assert_status(&response, &[200, 204]);
    assert_eq!(member_ids(&daemon, &group), id_set(&[&kept, &joining]));
}

// authentik: goauthentik/authentik authentik/providers/scim/tests/test_membership.py (remove by value filter) and clients/groups.py (_patch_chunked keeps null fields, so "value": null).
#[test]
fn authentik_remove_member_filter_null_value() {
    let daemon = Daemon::start();
    let leaving = create_user(&daemon, "ak.leaving@example.com", json!({}));
    let staying = create_user(&daemon, "ak.staying@example.com", json!({}));
    let group = create_group(&daemon, "ak-viewers", &[&leaving, &staying]);
    let body = patch_body(json!([{
        "op": "remove",
        "path": format!("members[value eq \"{leaving}\"]"),
        "value": null
    }]));

    let response = send(
        &daemon,
        Client::Authentik,
        "PATCH",
        &format!("/Groups/{group}"),
        Some(&body),
    );

    assert_status(&response, &[200, 204]);
    assert_eq!(member_ids(&daemon, &group), id_set(&[&staying]));
}

// authentik: goauthentik/authentik authentik/providers/scim/clients/groups.py (create: on 409, look the group up by displayName).
#[test]
fn authentik_group_conflict_then_lookup() {
    let daemon = Daemon::start();
    let existing = create_group(&daemon, "ak ops team", &[]);
    let body = json!({
        "schemas": [GROUP_SCHEMA],
        "displayName": "ak ops team",
        "externalId": "3c2b1a09-8f7e-4d6c-b5a4-9382716f5e4d"
    });

    let conflict = send(&daemon, Client::Authentik, "POST", "/Groups", Some(&body));
    assert_eq!(conflict.status, 409, "{}", conflict.text());
    assert_eq!(body_of(&conflict)["scimType"], "uniqueness");

    // urllib's urlencode writes spaces as '+' and quotes as %22.
    let query = "/Groups?filter=displayName+eq+%22ak+ops+team%22";
    let response = send(&daemon, Client::Authentik, "GET", query, None);

    assert_eq!(response.status, 200, "{}", response.text());
    let list = body_of(&response);
    assert_list_response(&list, 1);
    assert_eq!(resource_ids(&list), vec![existing]);
}

// authentik: goauthentik/authentik authentik/providers/scim/clients/groups.py (discover: GET /Groups, then GET /Groups?startIndex=N without count).
#[test]
fn authentik_discover_groups_by_start_index() {
    let daemon = Daemon::start();
    let mut created: Vec<String> = ["ak-one", "ak-two", "ak-three"]
        .iter()
        .map(|name| create_group(&daemon, name, &[]))
        .collect();

    let all = body_of(&send(&daemon, Client::Authentik, "GET", "/Groups", None));
    let rest = body_of(&send(
        &daemon,
        Client::Authentik,
        "GET",
        "/Groups?startIndex=2",
        None,
    ));

    assert_list_response(&all, 3);
    let mut seen = resource_ids(&all);
    assert_eq!(seen.len(), 3, "{all}");
    assert_eq!(resource_ids(&rest), seen[1..].to_vec(), "{rest}");
    seen.sort();
    created.sort();
    assert_eq!(seen, created);
}

// Keycloak: mitodl/keycloak-scim src/main/java/sh/libre/scim/core/GroupAdapter.java (replace: PUT with relative member $ref and meta.location).
#[test]
fn keycloak_put_group_with_relative_member_refs() {
    let daemon = Daemon::start();
    let old = create_user(&daemon, "kc.old@example.com", json!({}));
    let first = create_user(&daemon, "kc.first@example.com", json!({}));
    let second = create_user(&daemon, "kc.second@example.com", json!({}));
    let group = create_group(&daemon, "kc-staff", &[&old]);
    let body = json!({
        "schemas": [GROUP_SCHEMA],
        "id": group,
        "externalId": "b0a1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d",
        "displayName": "kc-staff",
        "members": [
            {"value": first, "$ref": format!("Users/{first}")},
            {"value": second, "$ref": format!("Users/{second}")}
        ],
        "meta": {"location": format!("Groups/{group}")}
    });

    let response = send(
        &daemon,
        Client::Keycloak,
        "PUT",
        &format!("/Groups/{group}"),
        Some(&body),
    );

    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(member_ids(&daemon, &group), id_set(&[&first, &second]));
    let read = get(&daemon, &format!("/Groups/{group}"));
    assert_eq!(read["externalId"], "b0a1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d");
    let location = read["meta"]["location"].as_str().unwrap_or_default();
    assert!(
        location.ends_with(&format!("/Groups/{group}")) && location.starts_with("https://"),
        "{read}"
    );
}

// Keycloak: mitodl/keycloak-scim src/main/java/sh/libre/scim/core/UserAdapter.java (replace: PUT with roles, untyped email and relative meta.location).
#[test]
fn keycloak_put_user_with_roles() {
    let daemon = Daemon::start();
    let id = create_user(
        &daemon,
        "kcuser",
        json!({"emails": [{"value": "kcuser@example.com", "primary": true}]}),
    );
    let body = json!({
        "schemas": [USER_SCHEMA],
        "id": id,
        "externalId": "0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a",
        "userName": "kcuser",
        "displayName": "Kay Cee",
        "emails": [{"value": "kcuser@example.com", "primary": true}],
        "active": true,
        "meta": {"location": format!("Users/{id}")},
        "roles": [{"value": "editor"}, {"value": "auditor"}]
    });

    let response = send(
        &daemon,
        Client::Keycloak,
        "PUT",
        &format!("/Users/{id}"),
        Some(&body),
    );

    assert_eq!(response.status, 200, "{}", response.text());
    let user = get(&daemon, &format!("/Users/{id}"));
    assert_eq!(user["displayName"], "Kay Cee");
    assert_eq!(
        user["roles"],
        json!([{"value": "editor"}, {"value": "auditor"}]),
        "{user}"
    );
    assert_eq!(user["externalId"], "0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a");
}

// PingOne: docs.pingidentity.com "SCIM filter expressions" (user filter expression `username Eq "%s"`).
#[test]
fn pingone_filter_capitalised_operator() {
    let daemon = Daemon::start();
    let id = create_user(&daemon, "jsmith", json!({}));
    create_user(&daemon, "jsmithers", json!({}));

    let response = send(
        &daemon,
        Client::Ping,
        "GET",
        "/Users?filter=username%20Eq%20%22jsmith%22",
        None,
    );

    assert_eq!(response.status, 200, "{}", response.text());
    let list = body_of(&response);
    assert_list_response(&list, 1);
    assert_eq!(resource_ids(&list), vec![id]);
}

// PingFederate: docs.pingidentity.com "SCIM Provisioner" (no user PATCH, so users are updated and disabled with PUT, and groups are matched by listing them all).
#[test]
fn pingfederate_put_disable_then_list_groups() {
    let daemon = Daemon::start();
    let id = create_user(&daemon, "janet.smith", json!({}));
    let group = create_group(&daemon, "Field Engineers", &[&id]);
    let body = json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
        "userName": "janet.smith",
        "name": {"givenName": "Janet", "familyName": "Smith"},
        "emails": [{"value": "janet.smith@example.com", "type": "work", "primary": true}],
        "active": false,
        ENTERPRISE_SCHEMA: {"department": "Field"}
    });

    let response = send(
        &daemon,
        Client::Ping,
        "PUT",
        &format!("/Users/{id}"),
        Some(&body),
    );

    assert_eq!(response.status, 200, "{}", response.text());
    let user = body_of(&response);
    assert_eq!(user["active"], json!(false));
    assert_eq!(user[ENTERPRISE_SCHEMA]["department"], "Field", "{user}");
    let groups = send(&daemon, Client::Ping, "GET", "/Groups", None);
    assert_eq!(groups.status, 200, "{}", groups.text());
    let list = body_of(&groups);
    assert_list_response(&list, 1);
    assert_eq!(list["Resources"][0]["displayName"], "Field Engineers");
    assert_eq!(resource_ids(&list), vec![group]);
}
