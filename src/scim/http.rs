//! The SCIM HTTP layer (RFC 7644 section 3): routing under `/scim/v2`, bearer-token checks,
//! content negotiation, query parameters, and the mapping of results to responses. Handlers
//! parse, make one call into the store, and render.

use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming as IncomingBody;
use serde_json::{json, Value};

use super::error::ScimError;
use super::list::{self, ListQuery};
use super::schema::{self, ResourceKind};
use super::{patch, resource};
use crate::server::AppState;
use crate::store::directory;

pub const SCIM_PREFIX: &str = "/scim/v2";
const SCIM_MEDIA_TYPE: &str = "application/scim+json";
const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

pub type Body = Full<Bytes>;

/// Time a client gets to send a whole request body once its headers have arrived.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// One routed request: the parts a handler reads.
struct Call {
    method: Method,
    headers: HeaderMap,
    query: Vec<(String, String)>,
    body: Bytes,
}

/// Route below the SCIM prefix.
enum Route {
    /// The base URL itself: a GET there queries every resource type (RFC 7644 section 3.4.2.1).
    Root,
    Resources(ResourceKind),
    Resource(ResourceKind, String),
    Search(Option<ResourceKind>),
    ServiceProviderConfig,
    ResourceTypes(Option<String>),
    Schemas(Option<String>),
    /// An endpoint of RFC 7644 that idpsync does not offer (`/Bulk`, `/Me`); every method
    /// gets 501 with the reason.
    Unsupported(&'static str),
}

impl Route {
    /// Methods the endpoint serves, sent in `Allow` with a 405.
    fn allowed_methods(&self) -> &'static str {
        match self {
            Route::Resources(_) => "GET, HEAD, POST",
            Route::Resource(..) => "GET, HEAD, PUT, PATCH, DELETE",
            Route::Search(_) => "POST",
            Route::Root | Route::ServiceProviderConfig | Route::ResourceTypes(_) | Route::Schemas(_) => "GET, HEAD",
            Route::Unsupported(_) => "",
        }
    }
}

/// Handles one request to the SCIM listener; never fails, every error is a SCIM document.
pub async fn handle(state: Arc<AppState>, request: Request<IncomingBody>) -> Response<Body> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    // A panic in a handler is a bug; the client still gets a SCIM error, not a reset.
    let routed = std::panic::AssertUnwindSafe(route_request(&state, request)).catch_unwind().await;
    let (response, resource_label) = match routed {
        Ok(Ok((response, label))) => (response, label),
        Ok(Err((error, label))) => (error_response(&error), label),
        Err(_) => {
            tracing::error!(%method, %path, "a SCIM handler panicked");
            (error_response(&ScimError::internal("the server failed to handle the request")), "unknown")
        }
    };
    state.metrics.record_request(resource_label, method.as_str(), response.status().as_u16());
    tracing::debug!(%method, %path, status = response.status().as_u16(), "scim request");
    response
}

async fn route_request(
    state: &Arc<AppState>,
    request: Request<IncomingBody>,
) -> Result<(Response<Body>, &'static str), (ScimError, &'static str)> {
    let path = request.uri().path().to_string();
    if path == "/health" {
        return Ok((health(&request), "health"));
    }
    let route = parse_route(&path).map_err(|error| (error, "unknown"))?;
    let label = route_label(&route);
    authenticate(state, request.headers()).map_err(|error| (error, label))?;
    check_accept(request.headers()).map_err(|error| (error, label))?;
    if let Route::Unsupported(detail) = route {
        return Err((ScimError::new(501, None, detail), label));
    }
    let allowed = route.allowed_methods();
    if !allowed.split(", ").any(|name| name == request.method().as_str()) {
        return Ok((method_not_allowed_response(request.method(), allowed), label));
    }
    let call = read_call(state, request).await.map_err(|error| (error, label))?;
    let response = dispatch(state, route, call).await.map_err(|error| (error, label))?;
    Ok((response, label))
}

fn method_not_allowed_response(method: &Method, allowed: &'static str) -> Response<Body> {
    let mut response = error_response(&method_not_allowed(method));
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allowed));
    response
}

fn health(request: &Request<IncomingBody>) -> Response<Body> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return method_not_allowed_response(request.method(), "GET, HEAD");
    }
    json_response(StatusCode::OK, &json!({"status": "ok"}), "application/json")
}

fn route_label(route: &Route) -> &'static str {
    match route {
        Route::Resources(ResourceKind::User) | Route::Resource(ResourceKind::User, _) => "Users",
        Route::Resources(ResourceKind::Group) | Route::Resource(ResourceKind::Group, _) => "Groups",
        Route::Search(_) | Route::Root => "search",
        Route::Unsupported(_) => "unsupported",
        Route::ServiceProviderConfig => "ServiceProviderConfig",
        Route::ResourceTypes(_) => "ResourceTypes",
        Route::Schemas(_) => "Schemas",
    }
}

fn parse_route(path: &str) -> Result<Route, ScimError> {
    let not_found = || ScimError::not_found(format!("no SCIM endpoint at {path}; the base URL is {SCIM_PREFIX}"));
    let rest = path.strip_prefix(SCIM_PREFIX).ok_or_else(not_found)?;
    let mut segments: Vec<&str> = rest.split('/').filter(|segment| !segment.is_empty()).collect();
    // Endpoint names match in any case (`/users` as well as `/Users`), because several SCIM
    // clients build them that way. Ids and schema URNs keep their case.
    if let Some(first) = segments.first_mut() {
        *first = canonical_endpoint(first);
    }
    let kind = |name: &str| match name {
        "Users" => Some(ResourceKind::User),
        "Groups" => Some(ResourceKind::Group),
        _ => None,
    };
    let decoded = |segment: &str| percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned();
    match segments.as_slice() {
        [] => Ok(Route::Root),
        [".search"] => Ok(Route::Search(None)),
        ["Bulk"] => Ok(Route::Unsupported(
            "bulk operations are not supported (ServiceProviderConfig states bulk.supported = false); send each operation on its own",
        )),
        ["Me"] => Ok(Route::Unsupported(
            "the /Me endpoint is not supported: bearer tokens here belong to a provisioning client, not to a user",
        )),
        ["ServiceProviderConfig"] => Ok(Route::ServiceProviderConfig),
        ["ResourceTypes"] => Ok(Route::ResourceTypes(None)),
        ["ResourceTypes", name] => Ok(Route::ResourceTypes(Some(decoded(name)))),
        ["Schemas"] => Ok(Route::Schemas(None)),
        ["Schemas", urn] => Ok(Route::Schemas(Some(decoded(urn)))),
        [name] => kind(name).map(Route::Resources).ok_or_else(not_found),
        [name, search] if search.eq_ignore_ascii_case(".search") => {
            kind(name).map(|kind| Route::Search(Some(kind))).ok_or_else(not_found)
        }
        [name, id] => kind(name).map(|kind| Route::Resource(kind, decoded(id))).ok_or_else(not_found),
        _ => Err(not_found()),
    }
}

/// Returns the RFC 7644 spelling of an endpoint name given in any case, or the name as sent.
fn canonical_endpoint(name: &str) -> &str {
    const ENDPOINTS: [&str; 8] = ["Users", "Groups", ".search", "ServiceProviderConfig", "ResourceTypes", "Schemas", "Bulk", "Me"];
    ENDPOINTS.into_iter().find(|endpoint| endpoint.eq_ignore_ascii_case(name)).unwrap_or(name)
}

fn unauthorized(detail: &str) -> ScimError {
    ScimError::new(401, None, detail)
}

/// Checks the bearer token (RFC 6750 section 2.1). The token itself never reaches a log.
fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<(), ScimError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized("missing Authorization header; send \"Authorization: Bearer <token>\""));
    };
    let value = value.to_str().map_err(|_| unauthorized("malformed Authorization header"))?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(unauthorized("malformed Authorization header; expected \"Bearer <token>\""));
    }
    match state.tokens.verify(token.trim()) {
        Some(_) => Ok(()),
        None => Err(unauthorized("invalid or revoked bearer token")),
    }
}

fn media_type_is_json(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == SCIM_MEDIA_TYPE || essence == "application/json"
}

/// Rejects an `Accept` header that admits neither SCIM JSON nor JSON (RFC 7644 section 3.1).
fn check_accept(headers: &HeaderMap) -> Result<(), ScimError> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|value| value.to_str().ok()) else {
        return Ok(());
    };
    let acceptable = accept.split(',').any(|item| {
        let essence = item.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        media_type_is_json(&essence) || essence == "*/*" || essence == "application/*" || essence.is_empty()
    });
    if acceptable {
        Ok(())
    } else {
        Err(ScimError::new(406, None, format!("Accept {accept:?} admits neither {SCIM_MEDIA_TYPE} nor application/json")))
    }
}

/// Query parameters of RFC 7644 section 3.4.2 that a request may give once.
const SINGLE_PARAMETERS: [&str; 7] = ["filter", "startIndex", "count", "sortBy", "sortOrder", "attributes", "excludedAttributes"];

async fn read_call(state: &AppState, request: Request<IncomingBody>) -> Result<Call, ScimError> {
    let (parts, body) = request.into_parts();
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|query| form_urlencoded::parse(query.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    for name in SINGLE_PARAMETERS {
        if query.iter().filter(|(key, _)| key.eq_ignore_ascii_case(name)).count() > 1 {
            return Err(ScimError::invalid_value(format!("query parameter {name} is given more than once; send it once")));
        }
    }
    let limit = state.config.load().server.max_body_bytes;
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        // Rejected before the body is read, so a client that sent `Expect: 100-continue`
        // does not upload it.
        return Err(ScimError::new(413, None, format!("request body is larger than the limit of {limit} bytes")));
    }
    if let Some(encoding) = parts.headers.get(header::CONTENT_ENCODING) {
        let encoding = encoding.to_str().unwrap_or("").trim();
        if !encoding.is_empty() && !encoding.eq_ignore_ascii_case("identity") {
            return Err(ScimError::new(415, None, format!("Content-Encoding {encoding:?} is not supported; send the body uncompressed")));
        }
    }
    let Ok(collected) = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, limit).collect()).await else {
        return Err(ScimError::new(
            408,
            None,
            format!("the request body did not arrive within {} s; send it again", BODY_TIMEOUT.as_secs()),
        ));
    };
    let body = match collected {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            return Err(ScimError::new(413, None, format!("request body is larger than the limit of {limit} bytes")));
        }
        Err(_) => return Err(ScimError::invalid_syntax("the request body could not be read")),
    };
    if !body.is_empty() {
        if let Some(content_type) = parts.headers.get(header::CONTENT_TYPE) {
            let content_type = content_type.to_str().unwrap_or("");
            if !media_type_is_json(content_type) {
                return Err(ScimError::new(
                    415,
                    None,
                    format!("Content-Type {content_type:?} is not supported; send {SCIM_MEDIA_TYPE} or application/json"),
                ));
            }
        }
    }
    Ok(Call { method: parts.method, headers: parts.headers, query, body })
}

fn method_not_allowed(method: &Method) -> ScimError {
    ScimError::new(405, None, format!("method {method} is not allowed on this endpoint"))
}

async fn dispatch(state: &Arc<AppState>, route: Route, call: Call) -> Result<Response<Body>, ScimError> {
    let base = state.public_url();
    // hyper sends the headers of a HEAD response without its body (RFC 9110 section 9.3.2).
    let method = if call.method == Method::HEAD { Method::GET } else { call.method.clone() };
    let discovery = matches!(route, Route::ServiceProviderConfig | Route::ResourceTypes(_) | Route::Schemas(_));
    if discovery && query_param(&call, "filter").is_some() {
        // RFC 7644 section 4: a client must not take a filtered response for a match.
        return Err(ScimError::new(403, None, "filters are not supported on discovery endpoints; request the whole list"));
    }
    match (route, method) {
        (Route::ServiceProviderConfig, Method::GET) => {
            let config = state.config.load();
            let body = schema::service_provider_config_json(&base, config.scim.max_results, config.server.max_body_bytes);
            Ok(scim_response(StatusCode::OK, &body))
        }
        (Route::ResourceTypes(None), Method::GET) => Ok(scim_response(StatusCode::OK, &schema::resource_types_json(&base))),
        (Route::ResourceTypes(Some(name)), Method::GET) => schema::resource_type_json(&name, &base)
            .map(|body| scim_response(StatusCode::OK, &body))
            .ok_or_else(|| ScimError::not_found(format!("resource type {name:?} not found"))),
        (Route::Schemas(None), Method::GET) => Ok(scim_response(StatusCode::OK, &schema::schemas_json(&base))),
        (Route::Schemas(Some(urn)), Method::GET) => schema::schema_json(&urn, &base)
            .map(|body| scim_response(StatusCode::OK, &body))
            .ok_or_else(|| ScimError::not_found(format!("schema {urn:?} not found"))),
        (Route::Resources(kind), Method::GET) => {
            let query = ListQuery::from_params(&call.query, state.config.load().scim.max_results)?;
            list_response(state, vec![kind], query).await
        }
        (Route::Root, Method::GET) => {
            let query = ListQuery::from_params(&call.query, state.config.load().scim.max_results)?;
            list_response(state, vec![ResourceKind::User, ResourceKind::Group], query).await
        }
        (Route::Resources(kind), Method::POST) => create(state, kind, call).await,
        (Route::Search(kind), Method::POST) => {
            let query = search_query(state, &call)?;
            let kinds = kind.map(|kind| vec![kind]).unwrap_or_else(|| vec![ResourceKind::User, ResourceKind::Group]);
            list_response(state, kinds, query).await
        }
        (Route::Resource(kind, id), Method::GET) => get(state, kind, &id, &call).await,
        (Route::Resource(kind, id), Method::PUT) => replace(state, kind, id, call).await,
        (Route::Resource(kind, id), Method::PATCH) => patch(state, kind, id, call).await,
        (Route::Resource(kind, id), Method::DELETE) => delete(state, kind, id, call).await,
        (_, method) => Err(method_not_allowed(&method)),
    }
}

fn parse_json(body: &Bytes) -> Result<Value, ScimError> {
    if body.is_empty() {
        return Err(ScimError::invalid_syntax("the request body is empty; send a JSON object"));
    }
    // Some Windows clients start UTF-8 bodies with a byte order mark, which JSON (RFC 8259
    // section 8.1) lets a parser ignore.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    // serde_json's message ends with "at line L column C".
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| ScimError::invalid_syntax(format!("the request body is not valid JSON: {error}")))?;
    if !value.is_object() {
        return Err(ScimError::invalid_syntax("the request body must be a JSON object"));
    }
    // JSON text can carry U+0000 only as the escape `\u0000`, so most bodies skip the walk.
    let may_contain_nul = body.windows(6).any(|window| window == b"\\u0000");
    if let Some(pointer) = may_contain_nul.then(|| find_nul(&value, String::new())).flatten() {
        return Err(ScimError::invalid_value(format!(
            "the request body contains the NUL character (\\u0000) at {pointer:?}; remove it, because \
             databases and C strings downstream cannot store it"
        )));
    }
    Ok(value)
}

/// Returns the JSON Pointer of the first key or string that contains U+0000. Recursion is
/// bounded by serde_json's nesting limit of 128.
fn find_nul(value: &Value, pointer: String) -> Option<String> {
    match value {
        Value::String(text) if text.contains('\0') => Some(pointer),
        Value::Array(items) => items.iter().enumerate().find_map(|(index, item)| find_nul(item, format!("{pointer}/{index}"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            let escaped = key.replace('~', "~0").replace('/', "~1");
            if key.contains('\0') {
                return Some(format!("{pointer}/{escaped}"));
            }
            find_nul(item, format!("{pointer}/{escaped}"))
        }),
        _ => None,
    }
}

fn query_param<'a>(call: &'a Call, name: &str) -> Option<&'a str> {
    call.query.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
}

fn projection(call: &Call) -> Result<resource::Projection, ScimError> {
    resource::Projection::parse(query_param(call, "attributes"), query_param(call, "excludedAttributes"))
}

fn if_match(call: &Call) -> Option<String> {
    call.headers.get(header::IF_MATCH).and_then(|value| value.to_str().ok()).map(str::to_string)
}

/// Reads a `POST .search` body (RFC 7644 section 3.4.3) into list parameters.
fn search_query(state: &AppState, call: &Call) -> Result<ListQuery, ScimError> {
    let body = parse_json(&call.body)?;
    let object = body.as_object().cloned().unwrap_or_default();
    if let Some(schemas) = object.get("schemas").and_then(Value::as_array) {
        if !schemas.iter().any(|schema| schema.as_str() == Some(SEARCH_REQUEST)) {
            return Err(ScimError::invalid_syntax(format!("a search request must list the schema {SEARCH_REQUEST}")));
        }
    }
    let mut params = Vec::new();
    for (key, value) in object {
        let text = match value {
            Value::String(text) => text,
            Value::Number(number) => number.to_string(),
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
            _ => continue,
        };
        params.push((key, text));
    }
    ListQuery::from_params(&params, state.config.load().scim.max_results)
}

async fn list_response(state: &Arc<AppState>, kinds: Vec<ResourceKind>, query: ListQuery) -> Result<Response<Body>, ScimError> {
    let store = state.store.clone();
    let base = state.public_url();
    let page = tokio::task::spawn_blocking(move || list::run(&store, &kinds, &query, &base))
        .await
        .map_err(|_| ScimError::internal("the list request failed; retry"))??;
    let body = json!({
        "schemas": [LIST_RESPONSE],
        "totalResults": page.total,
        "itemsPerPage": page.resources.len(),
        "startIndex": page.start_index,
        "Resources": page.resources,
    });
    Ok(scim_response(StatusCode::OK, &body))
}

async fn get(state: &Arc<AppState>, kind: ResourceKind, id: &str, call: &Call) -> Result<Response<Body>, ScimError> {
    let projection = projection(call)?;
    let rendered = render_by_id(state, kind, id.to_string(), projection).await?;
    let version = rendered.version.clone();
    if let Some(tags) = call.headers.get(header::IF_NONE_MATCH).and_then(|value| value.to_str().ok()) {
        let current = version.trim_start_matches("W/");
        if tags.split(',').map(str::trim).any(|tag| tag == "*" || tag.trim_start_matches("W/") == current) {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            set_etag(&mut response, &version);
            return Ok(response);
        }
    }
    Ok(resource_response(StatusCode::OK, rendered, None))
}

/// A rendered resource and its version.
pub struct Rendered {
    pub body: Value,
    pub version: String,
}

async fn render_by_id(state: &Arc<AppState>, kind: ResourceKind, id: String, projection: resource::Projection) -> Result<Rendered, ScimError> {
    let store = state.store.clone();
    let base = state.public_url();
    tokio::task::spawn_blocking(move || {
        let txn = store.read()?;
        let doc = directory::read_doc(&txn, kind, &id)?
            .ok_or_else(|| ScimError::not_found(format!("{} {id:?} not found", directory::resource_type(kind))))?;
        list::render(&txn, kind, doc, &projection, &base)
    })
    .await
    .map_err(|_| ScimError::internal("the request failed; retry"))?
}

async fn create(state: &Arc<AppState>, kind: ResourceKind, call: Call) -> Result<Response<Body>, ScimError> {
    let projection = projection(&call)?;
    let incoming = resource::parse_create(kind, parse_json(&call.body)?)?;
    let doc = state.store.writer().write(move |txn| directory::create(txn, kind, incoming)).await?;
    let id = doc.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    let rendered = render_by_id(state, kind, id.clone(), projection).await?;
    let location = format!("{}/{}/{}", state.public_url(), endpoint(kind), id);
    Ok(resource_response(StatusCode::CREATED, rendered, Some(location)))
}

async fn replace(state: &Arc<AppState>, kind: ResourceKind, id: String, call: Call) -> Result<Response<Body>, ScimError> {
    let projection = projection(&call)?;
    let body = parse_json(&call.body)?;
    let if_match = if_match(&call);
    let target = id.clone();
    state
        .store
        .writer()
        .write(move |txn| directory::replace(txn, kind, &target, body, if_match.as_deref()))
        .await?;
    let rendered = render_by_id(state, kind, id, projection).await?;
    Ok(resource_response(StatusCode::OK, rendered, None))
}

async fn patch(state: &Arc<AppState>, kind: ResourceKind, id: String, call: Call) -> Result<Response<Body>, ScimError> {
    let projection = projection(&call)?;
    let operations = patch::parse_patch(parse_json(&call.body)?)?;
    let if_match = if_match(&call);
    let target = id.clone();
    state
        .store
        .writer()
        .write(move |txn| directory::patch(txn, kind, &target, &operations, if_match.as_deref()))
        .await?;
    if kind == ResourceKind::Group && resource::wants_members(&projection) {
        // RFC 7644 section 3.5.2 allows 204 instead of the whole resource. A group larger than
        // a list page answers 204, so a one-member change never sends the whole membership.
        let limit = state.config.load().scim.max_results;
        if let Some(version) = large_group_version(state, id.clone(), limit).await? {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::NO_CONTENT;
            set_etag(&mut response, &version);
            return Ok(response);
        }
    }
    let rendered = render_by_id(state, kind, id, projection).await?;
    Ok(resource_response(StatusCode::OK, rendered, None))
}

/// The version of a group that has more than `limit` members, or None for a smaller group.
/// It reads at most `limit + 1` membership keys.
async fn large_group_version(state: &Arc<AppState>, id: String, limit: usize) -> Result<Option<String>, ScimError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        let txn = store.read()?;
        if directory::member_count_up_to(&txn, &id, limit + 1)? <= limit {
            return Ok(None);
        }
        let doc = directory::read_doc(&txn, ResourceKind::Group, &id)?;
        Ok(doc.map(|doc| directory::version_of(&doc).to_string()))
    })
    .await
    .map_err(|_| ScimError::internal("the request failed; retry"))?
}

async fn delete(state: &Arc<AppState>, kind: ResourceKind, id: String, call: Call) -> Result<Response<Body>, ScimError> {
    let if_match = if_match(&call);
    state
        .store
        .writer()
        .write(move |txn| directory::delete(txn, kind, &id, if_match.as_deref()))
        .await?;
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

pub fn endpoint(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "Users",
        ResourceKind::Group => "Groups",
    }
}

fn set_etag(response: &mut Response<Body>, version: &str) {
    if let Ok(value) = HeaderValue::from_str(version) {
        if !version.is_empty() {
            response.headers_mut().insert(header::ETAG, value);
        }
    }
}

fn resource_response(status: StatusCode, rendered: Rendered, location: Option<String>) -> Response<Body> {
    let mut response = scim_response(status, &rendered.body);
    set_etag(&mut response, &rendered.version);
    if let Some(location) = location.and_then(|location| HeaderValue::from_str(&location).ok()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn json_response(status: StatusCode, body: &Value, content_type: &'static str) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn scim_response(status: StatusCode, body: &Value) -> Response<Body> {
    json_response(status, body, SCIM_MEDIA_TYPE)
}

/// Renders a `ScimError` as its error document, with `WWW-Authenticate` on 401.
pub fn error_response(error: &ScimError) -> Response<Body> {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = scim_response(status, &error.to_json());
    if error.status == 401 {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"idpsync\""));
    }
    response
}
