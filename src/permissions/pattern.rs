//! Resource patterns: `*` matches any run of characters (including none), every
//! other character matches itself, case-sensitively.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A validated resource pattern such as `"*"`, `"report:weekly"` or `"asset:rig-*"`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResourcePattern(String);

/// The reason a string is not a valid resource pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    #[error("resource pattern is empty; write a resource name, or \"*\" for every resource")]
    Empty,
    #[error("resource pattern {pattern:?} contains whitespace; remove it, since resource names contain none")]
    Whitespace { pattern: String },
    #[error("resource pattern {pattern:?} contains a control character; remove it")]
    Control { pattern: String },
}

impl ResourcePattern {
    pub fn new(text: &str) -> Result<Self, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        let pattern = text.to_string();
        if text.chars().any(char::is_whitespace) {
            return Err(PatternError::Whitespace { pattern });
        }
        if text.chars().any(char::is_control) {
            return Err(PatternError::Control { pattern });
        }
        Ok(ResourcePattern(pattern))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Reports whether `resource` matches the whole pattern.
    ///
    /// Takes time at most proportional to the number of stars times the
    /// resource length, without backtracking, because the literal pieces
    /// between stars are found left to right and the leftmost match of each
    /// piece is always a safe choice.
    pub fn matches(&self, resource: &str) -> bool {
        let mut pieces = self.0.split('*');
        let first = pieces.next().unwrap_or_default();
        let Some(rest) = resource.strip_prefix(first) else {
            return false;
        };

        let middle: Vec<&str> = pieces.collect();
        let Some((last, inner)) = middle.split_last() else {
            // No star at all, so the pattern must equal the resource.
            return rest.is_empty();
        };
        let Some(mut remaining) = rest.strip_suffix(last) else {
            return false;
        };

        for piece in inner {
            match remaining.find(piece) {
                Some(start) => remaining = &remaining[start + piece.len()..],
                None => return false,
            }
        }
        true
    }
}

impl TryFrom<String> for ResourcePattern {
    type Error = PatternError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        ResourcePattern::new(&text)
    }
}

impl From<ResourcePattern> for String {
    fn from(pattern: ResourcePattern) -> Self {
        pattern.0
    }
}

impl fmt::Display for ResourcePattern {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_matching_table() {
        let cases = [
            ("*", "", true),
            ("*", "asset:rig-1", true),
            ("asset:rig-*", "asset:rig-1", true),
            ("asset:rig-*", "asset:rig-", true),
            ("asset:rig-*", "asset:rug-1", false),
            ("asset:rig-*", "ASSET:rig-1", false),
            ("report:weekly", "report:weekly", true),
            ("report:weekly", "report:weekly2", false),
            ("report:weekly", "report:week", false),
            ("*:read", "asset:read", true),
            ("*:read", "asset:write", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "acb", false),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("**", "x", true),
            ("a*b", "ab-b", true),
            ("é*ü", "éxü", true),
            ("*rig*", "asset:rig-7", true),
            ("*rig*", "asset:rug-7", false),
        ];
        for (pattern, resource, expected) in cases {
            let compiled = ResourcePattern::new(pattern);
            let matched = compiled.map(|compiled| compiled.matches(resource));
            assert_eq!(matched, Ok(expected), "{pattern:?} against {resource:?}");
        }
    }

    #[test]
    fn pattern_validation_table() {
        let cases = [
            ("", Err(PatternError::Empty)),
            (
                "asset: rig",
                Err(PatternError::Whitespace {
                    pattern: "asset: rig".into(),
                }),
            ),
            (
                "asset:\trig",
                Err(PatternError::Whitespace {
                    pattern: "asset:\trig".into(),
                }),
            ),
            (
                "asset:\u{0}rig",
                Err(PatternError::Control {
                    pattern: "asset:\u{0}rig".into(),
                }),
            ),
            (
                "asset:\u{7f}",
                Err(PatternError::Control {
                    pattern: "asset:\u{7f}".into(),
                }),
            ),
            ("asset:rig-*", Ok(())),
        ];
        for (text, expected) in cases {
            let result = ResourcePattern::new(text).map(|_| ());
            assert_eq!(result, expected, "{text:?}");
        }
    }

    #[test]
    fn pattern_serde_rejects_invalid() {
        let valid: Result<ResourcePattern, _> = serde_json::from_str("\"asset:*\"");
        let invalid: Result<ResourcePattern, _> = serde_json::from_str("\"a b\"");
        assert_eq!(valid.ok().map(String::from).as_deref(), Some("asset:*"));
        assert!(invalid.is_err());
    }
}
