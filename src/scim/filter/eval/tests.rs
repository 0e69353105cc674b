use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::scim::filter::fixtures::{attr, filter_strategy, sample_user, sub};
use crate::scim::filter::parse_filter;

#[test]
fn unqualified_extension_attribute_matches() {
    let user = serde_json::json!({
        "userName": "ada",
        super::schema::ENTERPRISE_USER_SCHEMA: {"manager": {"value": "boss"}, "department": "Research"}
    });
    for (text, expected) in [
        ("manager.value eq \"boss\"", true),
        ("department eq \"research\"", true),
        ("department eq \"Sales\"", false),
    ] {
        let filter = parse_filter(text).unwrap();
        assert_eq!(matches(&filter, ResourceKind::User, &user), expected, "{text}");
    }
}

#[test]
fn evaluate_user_filters() {
    let user = sample_user();
    let cases = [
        // caseExact: userName is not, id and externalId are.
        ("userName eq \"bjensen@example.com\"", true),
        ("USERNAME EQ \"BJENSEN@EXAMPLE.COM\"", true),
        ("externalId eq \"bjensen\"", true),
        ("externalId eq \"BJensen\"", false),
        ("id eq \"2819C223-7F76-453A-919D-413861904646\"", false),
        ("id eq \"2819c223-7f76-453a-919d-413861904646\"", true),
        ("meta.version eq \"w/\\\"a330bc54f0671c9\\\"\"", false),
        // Strings.
        ("title sw \"tour\"", true),
        ("title ew \"GUIDE\"", true),
        ("title co \"our G\"", true),
        ("title co \"xyz\"", false),
        ("title gt \"A\"", true),
        ("title lt \"a\"", false),
        ("name.familyName co \"o'mal\"", true),
        ("NAME.FAMILYNAME eq \"o'malley\"", true),
        // Multi-valued and complex multi-valued.
        ("emails co \"example.com\"", true),
        ("emails eq \"babs@jensen.org\"", true),
        ("emails.value ew \".org\"", true),
        ("emails.type eq \"work\"", true),
        ("emails.type eq \"other\"", false),
        ("emails.type ne \"other\"", true),
        // Any value that differs is enough: the home address is not "work".
        ("emails.type ne \"work\"", true),
        ("emails.value ne \"nobody@example.com\"", true),
        ("schemas eq \"URN:ietf:params:scim:schemas:extension:enterprise:2.0:User\"", true),
        // Value paths: both conditions on one element.
        ("emails[type eq \"work\" and value co \"@example.com\"]", true),
        ("emails[type eq \"work\" and primary eq true]", true),
        ("emails[type eq \"home\" and primary eq true]", false),
        ("emails[type eq \"home\"].value eq \"babs@jensen.org\"", true),
        ("emails[type eq \"home\"].value eq \"bjensen@example.com\"", false),
        ("emails[not (type eq \"work\")].value co \"jensen\"", true),
        ("emails[type eq \"work\"] and title pr", true),
        ("not (emails[type eq \"home\"])", false),
        ("phoneNumbers[type eq \"work\"]", false),
        // RFC 7644 section 3.4.2.2 examples.
        ("userType eq \"Employee\" and (emails co \"example.com\" or emails.value co \"example.org\")", true),
        ("userType ne \"Employee\" and not (emails co \"example.com\" or emails.value co \"example.org\")", false),
        ("emails[type eq \"work\" and value co \"@example.com\"] or ims[type eq \"xmpp\" and value co \"@foo.com\"]", true),
        // pr.
        ("title pr", true),
        ("nickName pr", false),
        ("displayName pr", false),
        ("phoneNumbers pr", false),
        ("emails pr", true),
        ("emails.primary pr", true),
        ("name pr", true),
        // Absent attributes and null.
        ("displayName ne \"x\"", true),
        ("displayName eq \"x\"", false),
        ("displayName eq null", true),
        ("title eq null", false),
        ("title ne null", true),
        // Booleans.
        ("active eq true", true),
        ("active eq false", false),
        ("active ne false", true),
        ("active eq \"true\"", false),
        ("active gt false", false),
        // dateTime.
        ("meta.lastModified gt \"2011-05-13T04:42:33Z\"", true),
        ("meta.lastModified gt \"2011-05-13T04:42:34Z\"", false),
        ("meta.lastModified ge \"2011-05-13T06:42:34+02:00\"", true),
        ("meta.lastModified eq \"2011-05-13T04:42:34.000Z\"", true),
        ("meta.lastModified lt \"2011-05-13T04:42:34.001Z\"", true),
        ("meta.created lt \"2011-01-01T00:00:00Z\"", true),
        ("meta.created le \"2010-01-23T04:56:21Z\"", false),
        ("meta.lastModified gt \"yesterday\"", false),
        ("meta.lastModified sw \"2011-05\"", true),
        // Numbers on attributes outside the schema.
        ("level gt 5", true),
        ("level ge 7.0", true),
        ("level lt 7", false),
        ("level eq 7", true),
        ("level eq \"7\"", false),
        ("ratio lt 1", true),
        ("ratio gt 5e-1", false),
        ("level co \"7\"", false),
        // Extension and URN-qualified paths.
        ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"701984\"", true),
        ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:EMPLOYEENUMBER sw \"70\"", true),
        ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"26118915\"", true),
        ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName eq \"john smith\"", true),
        ("urn:ietf:params:scim:schemas:core:2.0:User:userName sw \"bj\"", true),
        ("urn:ietf:params:scim:schemas:core:2.0:Group:userName sw \"bj\"", false),
        ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User pr", true),
        // Only the enterprise extension defines employeeNumber, so the bare name finds it.
        ("employeeNumber eq \"701984\"", true),
        // Precedence: not > and > or.
        ("title pr or userType eq \"Intern\" and active eq false", true),
        ("(title pr or userType eq \"Intern\") and active eq false", false),
        ("not (title pr) or active eq true", true),
        ("not (title pr or active eq true)", false),
        ("active eq false and title pr or userName pr", true),
        ("active eq false and (title pr or userName pr)", false),
    ];

    for (input, expected) in cases {
        let filter = parse_filter(input).unwrap_or_else(|error| panic!("{input:?}: {error:?}"));
        assert_eq!(
            matches(&filter, ResourceKind::User, &user),
            expected,
            "filter {input:?}"
        );
    }
}

#[test]
fn evaluate_group_filters() {
    let group = json!({
        "id": "e9e30dba",
        "displayName": "Tour Guides",
        "members": [
            { "value": "2819c223", "type": "User", "display": "Babs Jensen" },
            { "value": "902c246b", "type": "Group" }
        ]
    });
    let cases = [
        ("displayName eq \"tour guides\"", true),
        ("members[value eq \"2819c223\"]", true),
        (
            "members[value eq \"2819c223\" and type eq \"Group\"]",
            false,
        ),
        ("members.value eq \"902c246b\"", true),
        ("members eq \"902c246b\"", true),
        ("members[type eq \"group\"].value pr", true),
        ("members[display pr].value eq \"902c246b\"", false),
        ("members.display co \"jensen\"", true),
    ];

    for (input, expected) in cases {
        let filter = parse_filter(input).unwrap();
        assert_eq!(
            matches(&filter, ResourceKind::Group, &group),
            expected,
            "filter {input:?}"
        );
    }
}

#[test]
fn evaluate_element_filters() {
    let cases = [
        (
            "emails",
            json!({ "type": "Work", "value": "x" }),
            "type eq \"work\"",
            true,
        ),
        (
            "emails",
            json!({ "type": "home", "value": "x" }),
            "type eq \"work\"",
            false,
        ),
        (
            "emails",
            json!({ "type": "work", "primary": true }),
            "primary eq true",
            true,
        ),
        (
            "members",
            json!({ "value": "abc" }),
            "value eq \"abc\"",
            true,
        ),
        (
            "members",
            json!({ "value": "abc" }),
            "value eq \"abd\"",
            false,
        ),
        (
            "members",
            json!({ "value": "abc" }),
            "not (value eq \"abc\")",
            false,
        ),
        (
            "x509Certificates",
            json!({ "value": "QUJD" }),
            "value eq \"qujd\"",
            false,
        ),
        (
            "x509Certificates",
            json!({ "value": "QUJD" }),
            "value eq \"QUJD\"",
            true,
        ),
        ("schemas", json!("urn:a:b"), "value eq \"URN:A:B\"", true),
        ("emails", json!({ "display": "\u{c9}lodie" }), "display eq \"\u{e9}LODIE\"", true),
        ("emails", json!({ "display": "\u{c9}lodie" }), "display sw \"\u{e9}l\"", true),
    ];

    for (parent, element, input, expected) in cases {
        let filter = parse_filter(input).unwrap();
        let kind = match parent {
            "members" => ResourceKind::Group,
            _ => ResourceKind::User,
        };
        let actual = matches_element(&filter, kind, &attr(parent), &element);
        assert_eq!(actual, expected, "{parent}[{input}] on {element}");
    }
}

#[test]
fn validate_rejects_type_mismatches() {
    let cases = [
        (
            "active gt true",
            ResourceKind::User,
            Some("cannot order the boolean attribute \"active\""),
        ),
        ("active eq true", ResourceKind::User, None),
        (
            "emails[primary ge false]",
            ResourceKind::User,
            Some("boolean attribute \"primary\""),
        ),
        (
            "x509Certificates.value lt \"a\"",
            ResourceKind::User,
            Some("binary attribute"),
        ),
        (
            "x509Certificates[value lt \"a\"]",
            ResourceKind::User,
            Some("binary attribute"),
        ),
        (
            "title co 5",
            ResourceKind::User,
            Some("needs a string value, found 5"),
        ),
        (
            "title sw true",
            ResourceKind::User,
            Some("needs a string value"),
        ),
        (
            "title ew null",
            ResourceKind::User,
            Some("needs a string value"),
        ),
        (
            "title gt null",
            ResourceKind::User,
            Some("needs a string, number or dateTime value"),
        ),
        ("title gt \"a\"", ResourceKind::User, None),
        (
            "meta.created gt \"2011-01-01T00:00:00Z\"",
            ResourceKind::User,
            None,
        ),
        ("level gt 5", ResourceKind::User, None),
        (
            "meta.lastModified gt \"notadate\"",
            ResourceKind::User,
            Some("is a dateTime attribute"),
        ),
        (
            "meta.created eq 5",
            ResourceKind::Group,
            Some("is a dateTime attribute"),
        ),
        (
            "meta.created gt \"2011-01-01T00:00:00+02:00\"",
            ResourceKind::Group,
            None,
        ),
        (
            "not (title pr) or displayName co 1",
            ResourceKind::Group,
            Some("\"displayName\""),
        ),
    ];

    for (input, kind, expected) in cases {
        let filter = parse_filter(input).unwrap();
        match (validate(&filter, kind), expected) {
            (Ok(()), None) => {}
            (Err(error), Some(fragment)) => assert!(
                error.message.contains(fragment),
                "{input:?}: {:?} lacks {fragment:?}",
                error.message
            ),
            (result, expected) => panic!("{input:?}: got {result:?}, expected {expected:?}"),
        }
    }
}

#[test]
fn indexed_eq_finds_indexable_comparison() {
    let cases = [
        ("userName eq \"Bjensen\"", Some(("username", "Bjensen"))),
        ("EXTERNALID eq \"abc\"", Some(("externalid", "abc"))),
        ("displayName eq \"Admins\"", Some(("displayname", "Admins"))),
        ("id eq \"1\"", Some(("id", "1"))),
        ("title pr and userName eq \"b\"", Some(("username", "b"))),
        ("userName eq \"a\" and title pr", Some(("username", "a"))),
        (
            "title pr and active eq true and id eq \"7\"",
            Some(("id", "7")),
        ),
        ("userName eq \"a\" or title pr", None),
        ("userName ne \"a\"", None),
        ("userName eq 5", None),
        ("name.givenName eq \"a\"", None),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:id eq \"a\"",
            None,
        ),
        ("not (userName eq \"a\")", None),
        ("title eq \"a\"", None),
    ];

    for (input, expected) in cases {
        let filter = parse_filter(input).unwrap();
        let expected = expected.map(|(name, value)| (name.to_string(), value.to_string()));
        assert_eq!(indexed_eq(&filter), expected, "filter {input:?}");
    }
}

#[test]
fn sort_by_attribute() {
    let users = [
        json!({ "id": "a", "userName": "bob", "emails": [{ "value": "z@x", "primary": false }, { "value": "b@x", "primary": true }], "meta": { "created": "2020-01-01T00:00:00Z" } }),
        json!({ "id": "b", "userName": "Alice", "emails": [{ "value": "c@x" }], "meta": { "created": "2019-06-01T02:00:00+02:00" } }),
        json!({ "id": "c", "name": { "familyName": "Zed" }, "meta": { "created": "2019-06-01T01:00:00Z" } }),
        json!({ "id": "D", "userName": "carol", "level": 3 }),
    ];
    let cases = [
        (attr("userName"), ["b", "a", "D", "c"]),
        (attr("emails"), ["a", "b", "c", "D"]),
        (sub("emails", "value"), ["a", "b", "c", "D"]),
        (sub("meta", "created"), ["b", "c", "a", "D"]),
        (sub("name", "familyName"), ["c", "a", "b", "D"]),
        (attr("id"), ["D", "a", "b", "c"]),
        (attr("level"), ["D", "a", "b", "c"]),
    ];

    for (path, expected) in cases {
        let mut sorted: Vec<&Value> = users.iter().collect();
        sorted.sort_by(|a, b| compare_for_sort(ResourceKind::User, &path, a, b));
        let ids: Vec<&str> = sorted
            .iter()
            .filter_map(|user| user["id"].as_str())
            .collect();
        assert_eq!(ids, expected, "sortBy {path}");
    }
}

proptest! {
    #[test]
    fn evaluate_never_panics(filter in filter_strategy()) {
        let _ = matches(&filter, ResourceKind::User, &sample_user());
        let _ = validate(&filter, ResourceKind::User);
    }
}
