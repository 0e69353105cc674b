//! Durable SCIM writes through the store's writer: throughput of user creates with 1 to 64
//! concurrent writers (each one create per job, as one SCIM request is), the number of
//! commits those writes shared, and the cost of a one-member PATCH on a group of 10 members
//! against one of 100,000.
//!
//! Run with `cargo bench --bench scim_write`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use idpsync::scim::error::ScimError;
use idpsync::scim::patch::parse_patch;
use idpsync::scim::resource::parse_create;
use idpsync::scim::schema::ResourceKind;
use idpsync::store::{directory, Store};

const CREATES_PER_RUN: usize = 20_000;
const BIG_GROUP: usize = 100_000;
const SMALL_GROUP: usize = 10;
const PATCHES: usize = 200;

fn id_of(doc: &serde_json::Map<String, Value>) -> String {
    doc.get("id").and_then(Value::as_str).unwrap_or_default().to_string()
}

async fn create_user(store: &Store, name: String) -> String {
    let body = json!({"userName": name, "emails": [{"value": name, "primary": true}], "active": true});
    let doc = store
        .writer()
        .write(move |txn| -> Result<_, ScimError> {
            directory::create(txn, ResourceKind::User, parse_create(ResourceKind::User, body)?)
        })
        .await
        .expect("create user");
    id_of(&doc)
}

/// Creates `CREATES_PER_RUN` users from `writers` concurrent tasks; returns (writes/s, commits).
async fn concurrent_creates(writers: usize) -> (f64, u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("bench.redb")).expect("open store");
    let per_writer = CREATES_PER_RUN / writers;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for index in 0..per_writer {
                create_user(&store, format!("w{writer}-u{index}@example.com")).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer task");
    }
    let seconds = started.elapsed().as_secs_f64();
    let commits = store.writer().stats().commits.load(Ordering::Relaxed);
    ((per_writer * writers) as f64 / seconds, commits.saturating_sub(1))
}

/// Builds a group with `size` members out of `BIG_GROUP + PATCHES` users (the same store size
/// for every group size, so only the group differs), then times `PATCHES` one-member add and
/// remove PATCHes.
async fn member_patch_cost(size: usize) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("bench.redb")).expect("open store");
    let users: Vec<String> = {
        let mut ids = Vec::with_capacity(BIG_GROUP + PATCHES);
        for chunk in (0..BIG_GROUP + PATCHES).collect::<Vec<_>>().chunks(1_000) {
            let chunk = chunk.to_vec();
            let created = store
                .writer()
                .write(move |txn| -> Result<Vec<String>, ScimError> {
                    let mut ids = Vec::new();
                    for index in chunk {
                        let body = json!({"userName": format!("m{index}@example.com")});
                        ids.push(id_of(&directory::create(txn, ResourceKind::User, parse_create(ResourceKind::User, body)?)?));
                    }
                    Ok(ids)
                })
                .await
                .expect("create members");
            ids.extend(created);
        }
        ids
    };
    let members: Vec<Value> = users[..size].iter().map(|id| json!({"value": id})).collect();
    let group = {
        let body = json!({"displayName": "bench", "members": members});
        let doc = store
            .writer()
            .write(move |txn| -> Result<_, ScimError> {
                directory::create(txn, ResourceKind::Group, parse_create(ResourceKind::Group, body)?)
            })
            .await
            .expect("create group");
        id_of(&doc)
    };
    let group = Arc::new(group);
    let started = Instant::now();
    for user in &users[BIG_GROUP..] {
        for op in ["add", "remove"] {
            let body = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": op, "path": "members", "value": [{"value": user}]}],
            });
            let operations = parse_patch(body).expect("patch body");
            let group = group.clone();
            store
                .writer()
                .write(move |txn| directory::patch(txn, ResourceKind::Group, &group, &operations, None))
                .await
                .expect("patch group");
        }
    }
    started.elapsed().as_secs_f64() * 1000.0 / (PATCHES * 2) as f64
}

#[tokio::main]
async fn main() {
    println!("durable user creates, {CREATES_PER_RUN} per run, one create per writer job");
    println!("{:>8}  {:>10}  {:>8}  {:>14}", "writers", "writes/s", "commits", "writes/commit");
    for writers in [1, 4, 16, 64] {
        let (rate, commits) = concurrent_creates(writers).await;
        let per_commit = CREATES_PER_RUN as f64 / commits.max(1) as f64;
        println!("{writers:>8}  {rate:>10.0}  {commits:>8}  {per_commit:>14.1}");
    }
    println!();
    println!("one-member PATCH (add, then remove), {PATCHES} of each, durable");
    for size in [SMALL_GROUP, BIG_GROUP] {
        let millis = member_patch_cost(size).await;
        println!("  group of {size:>7} members: {millis:.3} ms per PATCH");
    }
}
