//! SCIM filters and attribute paths (RFC 7644 section 3.4.2.2 and the PATCH `path` grammar of
//! section 3.5.2): parser, AST and evaluator.
//!
//! This file defines the AST, its printed form and `FilterError`. `parse` turns text into the
//! AST. `eval` tests resources against it, checks it against the schema, orders resources for
//! `sortBy` and finds the comparison that the store can look up in its index.

mod eval;
#[cfg(test)]
mod fixtures;
mod parse;

use std::fmt;

use serde_json::Value;

use super::error::ScimError;

pub use eval::{compare_for_sort, get_ignore_case, indexed_eq, matches, matches_element, validate};
pub use parse::{parse_filter, parse_patch_path};

/// Maximum length of a filter or PATCH path, in bytes, which bounds the work and memory one
/// filter costs. A PATCH that removes members by `members[value eq "ID" or value eq "ID" ...]`
/// names about 300 UUIDs within it. The stack a filter uses follows its nesting depth, not its
/// length (`parse_longest_chain_on_small_stack` checks the longest chain).
pub const MAX_FILTER_LENGTH: usize = 16 * 1024;

/// Reports whether a filter compares or tests the top-level attribute `name` anywhere (any case).
pub fn mentions_attribute(filter: &Filter, name: &str) -> bool {
    match filter {
        Filter::Present(path) | Filter::Compare { path, .. } | Filter::ValuePath { path, .. } => {
            path.name.eq_ignore_ascii_case(name)
        }
        Filter::And(terms) | Filter::Or(terms) => terms.iter().any(|term| mentions_attribute(term, name)),
        Filter::Not(inner) => mentions_attribute(inner, name),
    }
}

/// Maximum nesting depth. Brackets, `not` and value paths each add one level.
pub const MAX_FILTER_DEPTH: usize = 32;

/// `[URN ":"] attrName ["." subAttr]`. Names keep the case the client sent; lookups ignore case.
#[derive(Debug, Clone, PartialEq)]
pub struct AttrPath {
    pub urn: Option<String>,
    pub name: String,
    pub sub_attr: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attrPath pr`
    Present(AttrPath),
    /// `attrPath op compValue`; the value is a JSON string, number, boolean or null.
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: Value,
    },
    /// `attrPath "[" valFilter "]"`; paths inside `filter` are relative to each element.
    ValuePath {
        path: AttrPath,
        filter: Box<Filter>,
    },
    /// Two or more terms joined by `and`. A chain is one node, not a nested pair per term, so
    /// recursion over a filter follows its brackets, which the parser bounds, and never its
    /// length.
    And(Vec<Filter>),
    /// Two or more terms joined by `or`, as one node like `And`.
    Or(Vec<Filter>),
    Not(Box<Filter>),
}

/// A PATCH operation's `path`.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchPath {
    /// `attrPath`
    Attr(AttrPath),
    /// `attrPath "[" valFilter "]" ["." subAttr]`
    Filtered {
        path: AttrPath,
        filter: Filter,
        sub_attr: Option<String>,
    },
}

/// Where and why a filter or path failed to parse; `position` is a byte offset into the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub position: usize,
    pub message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at position {}", self.message, self.position)
    }
}

impl std::error::Error for FilterError {}

impl From<FilterError> for ScimError {
    fn from(error: FilterError) -> Self {
        ScimError::invalid_filter(format!("{} at position {}", error.message, error.position))
    }
}

impl CompareOp {
    /// The operator keyword in lowercase.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    /// Every comparison operator of RFC 7644 section 3.4.2.2.
    pub const ALL: [CompareOp; 9] = [
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ];

    /// Parses an operator keyword in any case.
    fn from_keyword(word: &str) -> Option<CompareOp> {
        Self::ALL.into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(word))
    }

    fn is_ordering(self) -> bool {
        matches!(
            self,
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
        )
    }

    fn is_substring(self) -> bool {
        matches!(self, CompareOp::Co | CompareOp::Sw | CompareOp::Ew)
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub_attr) = &self.sub_attr {
            write!(f, ".{sub_attr}")?;
        }
        Ok(())
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Prints the filter in the RFC 7644 syntax, with brackets only where precedence needs them,
/// so that the output parses back to the same AST.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::Compare { path, op, value } => write!(f, "{path} {op} {value}"),
            Filter::ValuePath { path, filter } => write!(f, "{path}[{filter}]"),
            // A term that is itself a chain came from brackets, so it gets them back.
            Filter::And(terms) => write_chain(f, terms, " and ", |term| matches!(term, Filter::And(_) | Filter::Or(_))),
            Filter::Or(terms) => write_chain(f, terms, " or ", |term| matches!(term, Filter::Or(_))),
            Filter::Not(inner) => write!(f, "not ({inner})"),
        }
    }
}

fn write_chain(
    f: &mut fmt::Formatter<'_>,
    terms: &[Filter],
    separator: &str,
    bracket: impl Fn(&Filter) -> bool,
) -> fmt::Result {
    for (index, term) in terms.iter().enumerate() {
        if index > 0 {
            f.write_str(separator)?;
        }
        if bracket(term) {
            write!(f, "({term})")?;
        } else {
            write!(f, "{term}")?;
        }
    }
    Ok(())
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatchPath::Attr(path) => write!(f, "{path}"),
            PatchPath::Filtered {
                path,
                filter,
                sub_attr,
            } => {
                write!(f, "{path}[{filter}]")?;
                match sub_attr {
                    Some(sub_attr) => write!(f, ".{sub_attr}"),
                    None => Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::fixtures::filter_strategy;
    use super::*;

    #[test]
    fn display_prints_reparsable_filters() {
        let cases = [
            ("userName eq \"x\"", "userName eq \"x\""),
            ("a pr or b pr and c pr", "a pr or b pr and c pr"),
            ("(a pr or b pr) and c pr", "(a pr or b pr) and c pr"),
            ("a pr and (b pr and c pr)", "a pr and (b pr and c pr)"),
            ("NOT(a pr)", "not (a pr)"),
            (
                "emails[type eq \"work\"].value eq \"x\"",
                "emails[type eq \"work\" and value eq \"x\"]",
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value EQ 1.5",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq 1.5",
            ),
        ];

        for (input, printed) in cases {
            let filter = parse_filter(input).unwrap();
            assert_eq!(filter.to_string(), printed);
            assert_eq!(parse_filter(printed), Ok(filter));
        }
    }

    #[test]
    fn display_prints_patch_paths() {
        for input in [
            "members[value eq \"x\"]",
            "emails[type eq \"work\"].value",
            "name.givenName",
        ] {
            assert_eq!(parse_patch_path(input).unwrap().to_string(), input);
        }
    }

    #[test]
    fn filter_error_becomes_invalid_filter() {
        let error = ScimError::from(parse_filter("title eqq 1").unwrap_err());
        assert_eq!(error.status, 400);
        assert_eq!(
            error.scim_type,
            Some(super::super::error::ScimType::InvalidFilter)
        );
        assert!(error.detail.ends_with("at position 6"), "{}", error.detail);
    }

    proptest! {
        #[test]
        fn printed_filter_reparses(filter in filter_strategy()) {
            let printed = filter.to_string();
            prop_assert_eq!(parse_filter(&printed), Ok(filter), "printed {}", printed);
        }
    }
}
