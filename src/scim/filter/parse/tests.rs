use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::scim::filter::fixtures::{
    and, attr, compare, eq, not, or, pr, qualified, sub, value_path, CORE_USER, ENTERPRISE,
};
use crate::scim::filter::matches;

#[test]
fn parse_valid_filters() {
    let last_modified = || sub("meta", "lastModified");
    let emails_example = || {
        or(
            compare(attr("emails"), CompareOp::Co, json!("example.com")),
            compare(sub("emails", "value"), CompareOp::Co, json!("example.org")),
        )
    };
    let cases: Vec<(&str, Filter)> = vec![
        // RFC 7644 section 3.4.2.2 examples.
        ("userName Eq \"john\"", eq("userName", "john")),
        ("Username eq \"john\"", eq("Username", "john")),
        ("userName eq \"bjensen\"", eq("userName", "bjensen")),
        (
            "name.familyName co \"O'Malley\"",
            compare(sub("name", "familyName"), CompareOp::Co, json!("O'Malley")),
        ),
        ("userName sw \"J\"", compare(attr("userName"), CompareOp::Sw, json!("J"))),
        (
            "urn:ietf:params:scim:schemas:core:2.0:User:userName sw \"J\"",
            compare(qualified(CORE_USER, "userName", None), CompareOp::Sw, json!("J")),
        ),
        ("title pr", pr("title")),
        (
            "meta.lastModified gt \"2011-05-13T04:42:34Z\"",
            compare(last_modified(), CompareOp::Gt, json!("2011-05-13T04:42:34Z")),
        ),
        (
            "meta.lastModified ge \"2011-05-13T04:42:34Z\"",
            compare(last_modified(), CompareOp::Ge, json!("2011-05-13T04:42:34Z")),
        ),
        (
            "meta.lastModified lt \"2011-05-13T04:42:34Z\"",
            compare(last_modified(), CompareOp::Lt, json!("2011-05-13T04:42:34Z")),
        ),
        (
            "meta.lastModified le \"2011-05-13T04:42:34Z\"",
            compare(last_modified(), CompareOp::Le, json!("2011-05-13T04:42:34Z")),
        ),
        (
            "title pr and userType eq \"Employee\"",
            and(pr("title"), eq("userType", "Employee")),
        ),
        (
            "title pr or userType eq \"Intern\"",
            or(pr("title"), eq("userType", "Intern")),
        ),
        (
            "schemas eq \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"",
            eq("schemas", ENTERPRISE),
        ),
        (
            "userType eq \"Employee\" and (emails co \"example.com\" or emails.value co \"example.org\")",
            and(eq("userType", "Employee"), emails_example()),
        ),
        (
            "userType ne \"Employee\" and not (emails co \"example.com\" or emails.value co \"example.org\")",
            and(
                compare(attr("userType"), CompareOp::Ne, json!("Employee")),
                not(emails_example()),
            ),
        ),
        (
            "userType eq \"Employee\" and (emails.type eq \"work\")",
            and(
                eq("userType", "Employee"),
                compare(sub("emails", "type"), CompareOp::Eq, json!("work")),
            ),
        ),
        (
            "userType eq \"Employee\" and emails[type eq \"work\" and value co \"@example.com\"]",
            and(
                eq("userType", "Employee"),
                value_path(
                    "emails",
                    and(
                        eq("type", "work"),
                        compare(attr("value"), CompareOp::Co, json!("@example.com")),
                    ),
                ),
            ),
        ),
        (
            "emails[type eq \"work\" and value co \"@example.com\"] or ims[type eq \"xmpp\" and value co \"@foo.com\"]",
            or(
                value_path(
                    "emails",
                    and(
                        eq("type", "work"),
                        compare(attr("value"), CompareOp::Co, json!("@example.com")),
                    ),
                ),
                value_path(
                    "ims",
                    and(
                        eq("type", "xmpp"),
                        compare(attr("value"), CompareOp::Co, json!("@foo.com")),
                    ),
                ),
            ),
        ),
        // Precedence: not > and > or, and both associate to the left.
        ("a pr or b pr and c pr", or(pr("a"), and(pr("b"), pr("c")))),
        ("a pr and b pr or c pr", or(and(pr("a"), pr("b")), pr("c"))),
        ("a pr and b pr and c pr", and(and(pr("a"), pr("b")), pr("c"))),
        ("a pr or b pr or c pr", or(or(pr("a"), pr("b")), pr("c"))),
        ("(a pr or b pr) and c pr", and(or(pr("a"), pr("b")), pr("c"))),
        ("not (a pr) and b pr", and(not(pr("a")), pr("b"))),
        ("not(a pr)", not(pr("a"))),
        ("NOT (a pr)", not(pr("a"))),
        ("((a pr))", pr("a")),
        // Keywords and operators in any case, extra whitespace.
        ("title PR AND userType Ne \"x\"", and(pr("title"), compare(attr("userType"), CompareOp::Ne, json!("x")))),
        ("  userName   eq   \"x\"  ", eq("userName", "x")),
        // Values.
        ("active eq TRUE", compare(attr("active"), CompareOp::Eq, json!(true))),
        ("active eq False", compare(attr("active"), CompareOp::Eq, json!(false))),
        ("title eq null", compare(attr("title"), CompareOp::Eq, Value::Null)),
        ("level gt 10", compare(attr("level"), CompareOp::Gt, json!(10))),
        ("level ge -1.5", compare(attr("level"), CompareOp::Ge, json!(-1.5))),
        ("level lt 2e3", compare(attr("level"), CompareOp::Lt, json!(2000.0))),
        ("level le 1.5E-2", compare(attr("level"), CompareOp::Le, json!(0.015))),
        ("level eq 0", compare(attr("level"), CompareOp::Eq, json!(0))),
        (
            r#"userName eq "a\"b\\c\u00e9\n""#,
            eq("userName", "a\"b\\c\u{e9}\n"),
        ),
        ("userName eq \"\u{e9}t\u{e9}\"", eq("userName", "\u{e9}t\u{e9}")),
        // Paths.
        ("groups.$ref pr", Filter::Present(sub("groups", "$ref"))),
        ("members[$ref eq \"x\"]", value_path("members", eq("$ref", "x"))),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"701984\"",
            compare(qualified(ENTERPRISE, "employeeNumber", None), CompareOp::Eq, json!("701984")),
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"2611\"",
            compare(qualified(ENTERPRISE, "manager", Some("value")), CompareOp::Eq, json!("2611")),
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User pr",
            Filter::Present(attr(ENTERPRISE)),
        ),
        ("x-custom_1 pr", pr("x-custom_1")),
        // Value paths.
        (
            "emails[type eq \"work\"].value eq \"x\"",
            value_path("emails", and(eq("type", "work"), eq("value", "x"))),
        ),
        (
            "emails[type eq \"work\"].primary pr",
            value_path("emails", and(eq("type", "work"), pr("primary"))),
        ),
        (
            "emails[not (type eq \"work\")]",
            value_path("emails", not(eq("type", "work"))),
        ),
        (
            "not (emails[type eq \"work\"]) and userName pr",
            and(not(value_path("emails", eq("type", "work"))), pr("userName")),
        ),
        // Keywords used as attribute names.
        ("not pr", pr("not")),
        ("not eq \"x\"", eq("not", "x")),
        ("and pr and or pr", and(pr("and"), pr("or"))),
        ("pr eq \"x\"", eq("pr", "x")),
    ];

    for (input, expected) in cases {
        assert_eq!(parse_filter(input), Ok(expected), "filter {input:?}");
    }
}

#[test]
fn parse_invalid_filters() {
    let deep = format!("{}a pr{}", "(".repeat(33), ")".repeat(33));
    let long = "a".repeat(MAX_FILTER_LENGTH + 1);
    let cases: Vec<(&str, usize, &str)> = vec![
        ("", 0, "filter is empty"),
        ("   ", 3, "filter is empty"),
        ("userName eqq \"x\"", 9, "found \"eqq\""),
        (
            "userName",
            8,
            "expected a comparison operator after \"userName\", found end of input",
        ),
        ("userName eq", 11, "expected a comparison value"),
        ("userName eq bjensen", 12, "found \"bjensen\""),
        ("userName eq \"x", 12, "unterminated string"),
        ("userName eq \"\\q\"", 14, "invalid string: invalid escape"),
        ("userName eq 01", 12, "invalid number"),
        ("userName eq -", 12, "invalid number"),
        ("userName eq 1e999", 12, "invalid number"),
        ("userName eq \"x\" and", 19, "expected an attribute path"),
        ("userName eq \"x\" and ()", 21, "found \")\""),
        (
            "userName eq \"x\" userName",
            16,
            "expected \"and\", \"or\" or the end of the filter",
        ),
        (
            "(userName eq \"x\"",
            16,
            "\")\" to close the \"(\" at position 0",
        ),
        (
            "userName eq \"x\")",
            15,
            "the end of the filter, found \")\"",
        ),
        (
            "emails[type eq \"work\"",
            21,
            "\"]\" to close the \"[\" at position 6",
        ),
        ("emails[type eq \"work\"]]", 22, "the end of the filter"),
        ("emails[type eq \"work\"] eq \"x\"", 23, "found \"eq\""),
        (
            "emails[type eq \"work\"].",
            23,
            "expected a sub-attribute name",
        ),
        (
            "emails[addresses[type eq \"work\"]]",
            16,
            "value paths cannot be nested",
        ),
        ("name.familyName[x pr]", 15, "names a sub-attribute"),
        ("a.b.c pr", 3, "more than one sub-attribute"),
        ("1abc pr", 0, "invalid character '1'"),
        ("a$b pr", 1, "invalid character '$'"),
        ("foo:bar eq \"x\"", 3, "must start with \"urn:\""),
        ("urn:foo eq \"x\"", 0, "expected a schema URN"),
        ("urn:a:b: pr", 8, "expected an attribute name"),
        (
            "not userName eq \"x\"",
            4,
            "expected \"(\" after \"not\", found \"userName\"",
        ),
        ("not", 3, "expected \"(\" after \"not\", found end of input"),
        ("title pr and not", 16, "expected \"(\" after \"not\""),
        ("emails [type eq \"work\"]", 7, "found \"[\""),
        ("= \"x\"", 0, "expected an attribute path"),
        ("title gt", 8, "after \"gt\", found end of input"),
        ("userName eq1", 9, "found \"eq1\""),
        (&deep, 32, "nested deeper than the maximum of 32 levels"),
        (
            &long,
            MAX_FILTER_LENGTH,
            "longer than the maximum of 16384 bytes",
        ),
    ];

    for (input, position, message) in cases {
        let error = parse_filter(input).expect_err(input);
        assert_eq!(
            error.position, position,
            "position for {input:?}: {}",
            error.message
        );
        assert!(
            error.message.contains(message),
            "message for {input:?}: {:?} lacks {message:?}",
            error.message
        );
    }
}

#[test]
fn parse_error_names_operator_found() {
    let error = parse_filter("userName eqq \"x\"").unwrap_err();
    assert_eq!(
        error.message,
        "expected a comparison operator after \"userName\", found \"eqq\""
    );
}

#[test]
fn parse_depth_limit_counts_not_and_value_paths() {
    let at_limit = format!(
        "{}a pr{}",
        "(".repeat(MAX_FILTER_DEPTH),
        ")".repeat(MAX_FILTER_DEPTH)
    );
    assert!(parse_filter(&at_limit).is_ok());

    let nots = format!("{}a pr{}", "not (".repeat(16), ")".repeat(16));
    assert!(parse_filter(&nots).is_ok());
    let too_many_nots = format!("{}a pr{}", "not (".repeat(17), ")".repeat(17));
    assert!(parse_filter(&too_many_nots).is_err());

    let in_value_path = format!("emails[{}a pr{}]", "(".repeat(31), ")".repeat(31));
    assert!(parse_filter(&in_value_path).is_ok());
    let over = format!("emails[{}a pr{}]", "(".repeat(32), ")".repeat(32));
    assert!(parse_filter(&over).is_err());
}

#[test]
fn parse_hostile_nesting_returns_error() {
    let inputs = [
        "(".repeat(10_000),
        "not (".repeat(2_000),
        "emails[".repeat(1_000),
        format!("{}a pr", "(".repeat(4_000)),
        "a pr and ".repeat(500),
    ];
    for input in inputs {
        assert!(parse_filter(&input).is_err());
        assert!(parse_patch_path(&input).is_err());
    }
}

#[test]
fn parse_long_and_chain() {
    let input = vec!["a pr"; 450].join(" and ");
    assert!(input.len() <= MAX_FILTER_LENGTH);

    let filter = parse_filter(&input).unwrap();
    assert!(matches(&filter, ResourceKind::User, &json!({ "a": 1 })));
    assert_eq!(parse_filter(&filter.to_string()), Ok(filter));
}

#[test]
fn parse_longest_chain_on_small_stack() {
    // One `or` term per four bytes: the deepest tree a filter within the length limit makes.
    let input = vec!["a pr"; (MAX_FILTER_LENGTH + 4) / 8].join(" or ");
    assert!(input.len() <= MAX_FILTER_LENGTH);
    // Tokio's worker threads have 2 MiB stacks; half of that must be enough.
    let worker = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || {
            let filter = parse_filter(&input).unwrap();
            let matched = matches(&filter, ResourceKind::User, &json!({ "b": 1 }));
            let printed = filter.to_string();
            let reparsed = parse_filter(&printed);
            (matched, reparsed == Ok(filter))
        })
        .unwrap();
    let (matched, round_trip) = worker.join().expect("the chain fits in the stack");
    assert!(!matched);
    assert!(round_trip);
}

#[test]
fn parse_valid_patch_paths() {
    let cases: Vec<(&str, PatchPath)> = vec![
        ("userName", PatchPath::Attr(attr("userName"))),
        ("  userName  ", PatchPath::Attr(attr("userName"))),
        (
            "name.familyName",
            PatchPath::Attr(sub("name", "familyName")),
        ),
        (
            "members[value eq \"2819c223\"]",
            PatchPath::Filtered {
                path: attr("members"),
                filter: eq("value", "2819c223"),
                sub_attr: None,
            },
        ),
        (
            "emails[type eq \"work\"].value",
            PatchPath::Filtered {
                path: attr("emails"),
                filter: eq("type", "work"),
                sub_attr: Some("value".to_string()),
            },
        ),
        (
            "members[value eq \"a\" or value eq \"b\"]",
            PatchPath::Filtered {
                path: attr("members"),
                filter: or(eq("value", "a"), eq("value", "b")),
                sub_attr: None,
            },
        ),
        (
            "addresses[type eq \"work\"].streetAddress",
            PatchPath::Filtered {
                path: attr("addresses"),
                filter: eq("type", "work"),
                sub_attr: Some("streetAddress".to_string()),
            },
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            PatchPath::Attr(qualified(ENTERPRISE, "department", None)),
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            PatchPath::Attr(qualified(ENTERPRISE, "manager", Some("value"))),
        ),
        (
            "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName",
            PatchPath::Attr(qualified(CORE_USER, "name", Some("givenName"))),
        ),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            PatchPath::Attr(attr(ENTERPRISE)),
        ),
        (
            "members[$ref pr]",
            PatchPath::Filtered {
                path: attr("members"),
                filter: pr("$ref"),
                sub_attr: None,
            },
        ),
    ];

    for (input, expected) in cases {
        assert_eq!(parse_patch_path(input), Ok(expected), "path {input:?}");
    }
}

#[test]
fn parse_invalid_patch_paths() {
    let cases: Vec<(&str, usize, &str)> = vec![
        ("", 0, "path is empty"),
        ("  ", 2, "path is empty"),
        ("members[value eq \"x\"", 20, "\"]\" to close"),
        (
            "emails[type eq \"work\"].",
            23,
            "expected a sub-attribute name",
        ),
        (
            "emails[type eq \"work\"] x",
            23,
            "expected the end of the path after \"emails[type eq \\\"work\\\"]\"",
        ),
        ("name.familyName[x pr]", 15, "names a sub-attribute"),
        ("userName eq \"x\"", 9, "expected the end of the path"),
        (
            "a b",
            2,
            "expected the end of the path after \"a\", found \"b\"",
        ),
        ("members[value[x pr]]", 13, "value paths cannot be nested"),
        ("[value eq \"x\"]", 0, "expected an attribute path"),
        ("emails[]", 7, "expected an attribute path"),
    ];

    for (input, position, message) in cases {
        let error = parse_patch_path(input).expect_err(input);
        assert_eq!(
            error.position, position,
            "position for {input:?}: {}",
            error.message
        );
        assert!(
            error.message.contains(message),
            "message for {input:?}: {:?} lacks {message:?}",
            error.message
        );
    }
}

proptest! {
    #[test]
    fn parse_never_panics(input in "\\PC{0,64}") {
        let _ = parse_filter(&input);
        let _ = parse_patch_path(&input);
    }

    #[test]
    fn parse_never_panics_on_filter_alphabet(input in "[a-z()\\[\\]\". :$0-9\\\\-]{0,80}") {
        let _ = parse_filter(&input);
        let _ = parse_patch_path(&input);
    }

    #[test]
    fn parse_never_panics_on_deep_brackets(
        depth in 0usize..10_000,
        opener in prop_oneof![Just("("), Just("not ("), Just("a["), Just("a[(")],
        tail in "[a-z()\\[\\] \"]{0,16}",
    ) {
        let input = format!("{}{tail}", opener.repeat(depth));
        let _ = parse_filter(&input);
        let _ = parse_patch_path(&input);
    }
}
