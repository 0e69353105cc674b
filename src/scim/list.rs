//! Listing and rendering resources: `filter`, `sortBy`/`sortOrder`, `startIndex`/`count`
//! paging (RFC 7644 section 3.4.2), index use for `eq` filters, and the assembly of a
//! stored document into its SCIM representation.

use redb::ReadTransaction;
use serde_json::{Map, Value};

use super::error::ScimError;
use super::filter::{self, AttrPath, Filter};
use super::http::{endpoint, Rendered};
use super::resource::{self, Projection};
use super::schema::ResourceKind;
use crate::store::{directory, Store};

/// Parsed list parameters.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    pub start_index: usize,
    pub count: usize,
    pub sort_by: Option<AttrPath>,
    pub descending: bool,
    pub projection: Projection,
}

/// One page of results.
pub struct Page {
    pub total: usize,
    pub start_index: usize,
    pub resources: Vec<Value>,
}

fn parse_integer(name: &str, value: &str) -> Result<Option<i64>, ScimError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse::<i64>()
        .map(Some)
        .or_else(|_| {
            // Very large numbers still mean "as many as allowed".
            if value.bytes().all(|byte| byte.is_ascii_digit()) {
                Ok(Some(i64::MAX))
            } else {
                Err(())
            }
        })
        .map_err(|_| ScimError::invalid_value(format!("{name} must be an integer, found {value:?}")))
}

impl ListQuery {
    /// Reads query parameters (names in any case). `startIndex` below 1 reads as 1, a negative
    /// `count` as 0, and a `count` above `max_results` is capped (RFC 7644 section 3.4.2.4).
    pub fn from_params(params: &[(String, String)], max_results: usize) -> Result<ListQuery, ScimError> {
        let param = |name: &str| params.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str());
        let filter = match param("filter").map(str::trim).filter(|text| !text.is_empty()) {
            Some(text) => Some(filter::parse_filter(text)?),
            None => None,
        };
        let start_index = match param("startIndex") {
            Some(value) => parse_integer("startIndex", value)?.unwrap_or(1).max(1),
            None => 1,
        };
        let count = match param("count") {
            Some(value) => parse_integer("count", value)?.unwrap_or(max_results as i64).max(0),
            None => max_results as i64,
        };
        let sort_by = match param("sortBy").map(str::trim).filter(|text| !text.is_empty()) {
            Some(text) => match filter::parse_patch_path(text) {
                Ok(filter::PatchPath::Attr(path)) => Some(path),
                _ => return Err(ScimError::invalid_value(format!("sortBy {text:?} is not an attribute path"))),
            },
            None => None,
        };
        let descending = match param("sortOrder").map(str::trim) {
            None | Some("") => false,
            Some(order) if order.eq_ignore_ascii_case("ascending") => false,
            Some(order) if order.eq_ignore_ascii_case("descending") => true,
            Some(order) => {
                return Err(ScimError::invalid_value(format!("sortOrder must be \"ascending\" or \"descending\", found {order:?}")))
            }
        };
        Ok(ListQuery {
            filter,
            start_index: usize::try_from(start_index).unwrap_or(usize::MAX),
            count: usize::try_from(count).unwrap_or(usize::MAX).min(max_results),
            sort_by,
            descending,
            projection: resource::Projection::parse(param("attributes"), param("excludedAttributes"))?,
        })
    }
}


fn computed_attribute(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "groups",
        ResourceKind::Group => "members",
    }
}

/// Adds `members` to a group or `groups` to a user.
fn add_computed(txn: &ReadTransaction, kind: ResourceKind, doc: &mut Map<String, Value>, base_url: &str) -> Result<(), ScimError> {
    let id = doc.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    match kind {
        ResourceKind::Group => {
            doc.insert("members".to_string(), Value::Array(directory::group_members(txn, &id, base_url)?));
        }
        ResourceKind::User => {
            let groups = directory::user_groups(txn, &id, base_url)?;
            if !groups.is_empty() {
                doc.insert("groups".to_string(), Value::Array(groups));
            }
        }
    }
    Ok(())
}

/// Adds `meta.location`, which the store leaves out because it follows `server.public_url`.
fn add_location(kind: ResourceKind, doc: &mut Map<String, Value>, base_url: &str) {
    let id = doc.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    if let Some(Value::Object(meta)) = doc.get_mut("meta") {
        meta.insert("location".to_string(), Value::from(format!("{base_url}/{}/{id}", endpoint(kind))));
    }
}

/// Turns a stored document into its representation under `projection`.
pub fn render(
    txn: &ReadTransaction,
    kind: ResourceKind,
    mut doc: Map<String, Value>,
    projection: &Projection,
    base_url: &str,
) -> Result<Rendered, ScimError> {
    let version = directory::version_of(&doc).to_string();
    // A user's `groups` is cheap to read, so only a group's `members` is skipped when the
    // projection leaves it out; `project` drops whatever was not asked for.
    let wanted = kind == ResourceKind::User || resource::wants_members(projection);
    if wanted && !doc.contains_key(computed_attribute(kind)) {
        add_computed(txn, kind, &mut doc, base_url)?;
    }
    add_location(kind, &mut doc, base_url);
    let body = resource::project(kind, &Value::Object(doc), projection);
    Ok(Rendered { body, version })
}

/// Runs a list or search over one or more resource kinds.
pub fn run(store: &Store, kinds: &[ResourceKind], query: &ListQuery, base_url: &str) -> Result<Page, ScimError> {
    let txn = store.read()?;
    if let Some(filter) = &query.filter {
        for kind in kinds {
            // `validate` works on the parsed tree, which keeps no offsets, so its message
            // names the attribute and operator instead of a position.
            filter::validate(filter, *kind).map_err(|error| ScimError::invalid_filter(error.message))?;
        }
    }
    let skip = query.start_index - 1;

    // Fast path: no filter, no sort, one kind: page straight off the table in id order.
    if query.filter.is_none() && query.sort_by.is_none() && kinds.len() == 1 {
        let kind = kinds[0];
        let total = directory::count(&txn, kind)? as usize;
        let mut resources = Vec::new();
        for id in directory::page_ids(&txn, kind, skip, query.count)? {
            if let Some(doc) = directory::read_doc(&txn, kind, &id)? {
                resources.push(render(&txn, kind, doc, &query.projection, base_url)?.body);
            }
        }
        return Ok(Page { total, start_index: query.start_index, resources });
    }

    let mut matched: Vec<(ResourceKind, Map<String, Value>)> = Vec::new();
    for kind in kinds {
        collect_matches(&txn, *kind, query, base_url, &mut matched)?;
    }
    if let Some(path) = &query.sort_by {
        // Wrapped once, so the comparisons read the documents without copying them.
        let mut wrapped: Vec<(ResourceKind, Value)> = matched.into_iter().map(|(kind, doc)| (kind, Value::Object(doc))).collect();
        wrapped.sort_by(|(kind_a, a), (_, b)| {
            let order = filter::compare_for_sort(*kind_a, path, a, b);
            if query.descending { order.reverse() } else { order }
        });
        matched = wrapped
            .into_iter()
            .filter_map(|(kind, value)| match value {
                Value::Object(doc) => Some((kind, doc)),
                _ => None,
            })
            .collect();
    }
    let total = matched.len();
    let mut resources = Vec::new();
    for (kind, doc) in matched.into_iter().skip(skip).take(query.count) {
        resources.push(render(&txn, kind, doc, &query.projection, base_url)?.body);
    }
    Ok(Page { total, start_index: query.start_index, resources })
}

/// Collects documents that match the filter, through an index when the filter allows it.
fn collect_matches(
    txn: &ReadTransaction,
    kind: ResourceKind,
    query: &ListQuery,
    base_url: &str,
    matched: &mut Vec<(ResourceKind, Map<String, Value>)>,
) -> Result<(), ScimError> {
    let computed = computed_attribute(kind);
    let sorts_by = |name: &str| query.sort_by.as_ref().is_some_and(|path| path.name.eq_ignore_ascii_case(name));
    let filter_needs_computed = query.filter.as_ref().is_some_and(|filter| filter::mentions_attribute(filter, computed));
    let sort_needs_computed = sorts_by(computed);
    let needs_location = query.filter.as_ref().is_some_and(|filter| filter::mentions_attribute(filter, "meta")) || sorts_by("meta");
    let mut consider = |mut doc: Map<String, Value>| -> Result<(), ScimError> {
        if needs_location {
            add_location(kind, &mut doc, base_url);
        }
        if filter_needs_computed || sort_needs_computed {
            add_computed(txn, kind, &mut doc, base_url)?;
        }
        let value = Value::Object(doc);
        let keep = query.filter.as_ref().is_none_or(|filter| filter::matches(filter, kind, &value));
        if let (true, Value::Object(mut doc)) = (keep, value) {
            // A group's members can be many: keep them only when the sort reads them.
            if !sort_needs_computed {
                doc.remove(computed);
            }
            matched.push((kind, doc));
        }
        Ok(())
    };
    let indexed = query.filter.as_ref().and_then(filter::indexed_eq);
    if let Some((attribute, value)) = indexed {
        if let Some(ids) = directory::ids_by_index(txn, kind, &attribute, &value)? {
            for id in ids {
                if let Some(doc) = directory::read_doc(txn, kind, &id)? {
                    consider(doc)?;
                }
            }
            return Ok(());
        }
    }
    directory::scan(txn, kind, |_, doc| {
        consider(doc)?;
        Ok(true)
    })
}
