//! SCIM filters and attribute paths (RFC 7644 section 3.4.2.2 and the PATCH `path` grammar of
//! section 3.5.2): parser, AST and evaluator.
//!
//! The parser is hand-written recursive descent, because no crate parses the whole grammar
//! (value paths, URN-qualified paths, keywords in any case) with byte positions in its errors
//! and a bound on nesting. Every nested construct passes through `Parser::enter`, so a hostile
//! filter ends in a `FilterError`, never in a stack overflow.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use serde_json::{Number, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::error::ScimError;
use super::schema::{self, AttrDef, AttrType, ResourceKind};

/// Maximum length of a filter or PATCH path, in bytes.
pub const MAX_FILTER_LENGTH: usize = 4096;

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
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
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

/// Parses a `filter` query parameter.
pub fn parse_filter(input: &str) -> Result<Filter, FilterError> {
    let mut parser = Parser::new(input, "filter")?;
    parser.skip_whitespace();
    if parser.at_end() {
        return Err(parser.error(parser.pos, "filter is empty"));
    }

    let filter = parser.parse_or()?;
    parser.expect_closer(Closer::FilterEnd)?;
    Ok(filter)
}

/// Parses a PATCH `path`: `attrPath` or `attrPath "[" valFilter "]" ["." subAttr]`.
/// Whitespace around the path is ignored.
pub fn parse_patch_path(input: &str) -> Result<PatchPath, FilterError> {
    let mut parser = Parser::new(input, "path")?;
    parser.skip_whitespace();
    if parser.at_end() {
        return Err(parser.error(parser.pos, "path is empty"));
    }

    let start = parser.pos;
    let path = parser.parse_attr_path()?;
    let patch_path = if parser.peek() == Some(b'[') {
        let filter = parser.parse_value_filter(&path, start)?;
        let sub_attr = parser.parse_trailing_sub_attr()?;
        PatchPath::Filtered {
            path,
            filter,
            sub_attr,
        }
    } else {
        PatchPath::Attr(path)
    };

    parser.expect_closer(Closer::PathEnd(start))?;
    Ok(patch_path)
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

    /// Parses an operator keyword in any case.
    fn from_keyword(word: &str) -> Option<CompareOp> {
        const ALL: [CompareOp; 9] = [
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
        ALL.into_iter()
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

/// The token that must end the expression just parsed. Positions are those of the opening
/// bracket or of the path, for the error message.
#[derive(Clone, Copy)]
enum Closer {
    FilterEnd,
    PathEnd(usize),
    Paren(usize),
    Bracket(usize),
}

/// Maximum length of an input excerpt quoted in an error message, in bytes.
const MAX_EXCERPT: usize = 40;

struct Parser<'a> {
    input: &'a str,
    pos: usize,
    depth: usize,
    in_value_filter: bool,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str, input_name: &str) -> Result<Parser<'a>, FilterError> {
        if input.len() > MAX_FILTER_LENGTH {
            return Err(FilterError {
                position: MAX_FILTER_LENGTH,
                message: format!(
                    "{input_name} is {} bytes long, longer than the maximum of {MAX_FILTER_LENGTH} bytes",
                    input.len()
                ),
            });
        }
        Ok(Parser {
            input,
            pos: 0,
            depth: 0,
            in_value_filter: false,
        })
    }

    fn peek(&self) -> Option<u8> {
        self.input.as_bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    fn skip_whitespace(&mut self) {
        self.pos = self.whitespace_end(self.pos);
    }

    fn whitespace_end(&self, from: usize) -> usize {
        let bytes = self.input.as_bytes();
        let mut end = from;
        while bytes.get(end).is_some_and(u8::is_ascii_whitespace) {
            end += 1;
        }
        end
    }

    fn error(&self, position: usize, message: impl Into<String>) -> FilterError {
        FilterError {
            position,
            message: message.into(),
        }
    }

    /// Describes the token at `position` for an error message: a quoted word or character, or
    /// "end of input".
    fn found(&self, position: usize) -> String {
        let Some(rest) = self.input.get(position..).filter(|rest| !rest.is_empty()) else {
            return "end of input".to_string();
        };
        let run = run_length(rest.as_bytes(), is_path_byte);
        let token = match run {
            0 => rest.chars().next().map_or("", |c| &rest[..c.len_utf8()]),
            _ => &rest[..run.min(MAX_EXCERPT)],
        };
        format!("{token:?}")
    }

    /// Returns the run of ASCII letters at `position`.
    fn word_at(&self, position: usize) -> &'a str {
        let rest = self.input.get(position..).unwrap_or("");
        &rest[..run_length(rest.as_bytes(), |b| b.is_ascii_alphabetic())]
    }

    /// Returns whether `keyword`, in any case, is at `position` as a whole word.
    fn keyword_at(&self, position: usize, keyword: &str) -> bool {
        let word = self.word_at(position);
        let after = self.input.as_bytes().get(position + word.len()).copied();
        word.eq_ignore_ascii_case(keyword) && !after.is_some_and(is_path_byte)
    }

    /// Skips whitespace and consumes `keyword` when it comes next.
    fn next_keyword(&mut self, keyword: &str) -> bool {
        self.skip_whitespace();
        if !self.keyword_at(self.pos, keyword) {
            return false;
        }
        self.pos += keyword.len();
        true
    }

    /// Adds one nesting level; the caller calls `leave` when the construct ends.
    fn enter(&mut self, position: usize) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_FILTER_DEPTH {
            return Err(self.error(
                position,
                format!("filter is nested deeper than the maximum of {MAX_FILTER_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// `orExpr = andExpr *("or" andExpr)`: `or` binds loosest and associates to the left.
    fn parse_or(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.parse_and()?;
        while self.next_keyword("or") {
            let right = self.parse_and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `andExpr = unary *("and" unary)`.
    fn parse_and(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.parse_unary()?;
        while self.next_keyword("and") {
            let right = self.parse_unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `unary = "not" "(" filter ")" / "(" filter ")" / attrExp / valuePath`.
    fn parse_unary(&mut self) -> Result<Filter, FilterError> {
        self.skip_whitespace();
        let start = self.pos;
        if self.peek() == Some(b'(') {
            return self.parse_group();
        }
        if self.keyword_at(start, "not") && !self.is_attribute_named_not(start) {
            return self.parse_not(start);
        }
        if self.at_end() || !self.peek().is_some_and(is_path_byte) {
            return Err(self.error(
                start,
                format!(
                    "expected an attribute path, \"not\" or \"(\", found {}",
                    self.found(start)
                ),
            ));
        }
        self.parse_attr_expression()
    }

    /// Returns whether the `not` at `start` is an attribute name, which it is when a value
    /// filter follows it directly or an operator follows after whitespace.
    fn is_attribute_named_not(&self, start: usize) -> bool {
        let after = start + 3;
        if self.peek_at(after) == Some(b'[') {
            return true;
        }
        let next = self.whitespace_end(after);
        let word = self.word_at(next);
        let is_operator =
            word.eq_ignore_ascii_case("pr") || CompareOp::from_keyword(word).is_some();
        next > after && is_operator && self.keyword_at(next, word)
    }

    fn peek_at(&self, position: usize) -> Option<u8> {
        self.input.as_bytes().get(position).copied()
    }

    fn parse_not(&mut self, start: usize) -> Result<Filter, FilterError> {
        self.pos = self.whitespace_end(start + 3);
        if self.peek() != Some(b'(') {
            return Err(self.error(
                self.pos,
                format!(
                    "expected \"(\" after \"not\", found {}",
                    self.found(self.pos)
                ),
            ));
        }

        self.enter(start)?;
        let inner = self.parse_group()?;
        self.leave();
        Ok(Filter::Not(Box::new(inner)))
    }

    /// `"(" filter ")"`, starting at the "(".
    fn parse_group(&mut self) -> Result<Filter, FilterError> {
        let open = self.pos;
        self.enter(open)?;
        self.pos += 1;
        let inner = self.parse_or()?;
        self.expect_closer(Closer::Paren(open))?;
        self.leave();
        Ok(inner)
    }

    /// `attrPath "pr"`, `attrPath compareOp compValue` or a value path.
    fn parse_attr_expression(&mut self) -> Result<Filter, FilterError> {
        let start = self.pos;
        let path = self.parse_attr_path()?;
        if self.peek() != Some(b'[') {
            return self.parse_operation(path, start);
        }

        let mut filter = self.parse_value_filter(&path, start)?;
        if self.peek() == Some(b'.') {
            // `emails[type eq "work"].value eq "x"`: both conditions must hold on one element.
            let sub_attr = self.parse_trailing_sub_attr()?.unwrap_or_default();
            let sub_path = AttrPath {
                urn: None,
                name: sub_attr,
                sub_attr: None,
            };
            let condition = self.parse_operation(sub_path, start)?;
            filter = Filter::And(Box::new(filter), Box::new(condition));
        }
        Ok(Filter::ValuePath {
            path,
            filter: Box::new(filter),
        })
    }

    /// Parses the operator and value after the path that started at `path_start`.
    fn parse_operation(
        &mut self,
        path: AttrPath,
        path_start: usize,
    ) -> Result<Filter, FilterError> {
        let path_text = self.excerpt(path_start, self.pos);
        self.skip_whitespace();
        let op_start = self.pos;
        if self.keyword_at(op_start, "pr") {
            self.pos += 2;
            return Ok(Filter::Present(path));
        }

        let word = self.word_at(op_start);
        let op = CompareOp::from_keyword(word).filter(|_| self.keyword_at(op_start, word));
        let Some(op) = op else {
            return Err(self.error(
                op_start,
                format!(
                    "expected a comparison operator after {path_text:?}, found {}",
                    self.found(op_start)
                ),
            ));
        };

        self.pos += word.len();
        let value = self.parse_value(op)?;
        Ok(Filter::Compare { path, op, value })
    }

    /// `compValue = false / null / true / number / string`, keywords in any case.
    fn parse_value(&mut self, op: CompareOp) -> Result<Value, FilterError> {
        self.skip_whitespace();
        let start = self.pos;
        match self.peek() {
            Some(b'"') => return self.parse_string().map(Value::String),
            Some(b'-' | b'0'..=b'9') => return self.parse_number(),
            _ => {}
        }

        let word = self.word_at(start);
        let value = match word.to_ascii_lowercase().as_str() {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            "null" => Some(Value::Null),
            _ => None,
        };
        match value.filter(|_| self.keyword_at(start, word)) {
            Some(value) => {
                self.pos += word.len();
                Ok(value)
            }
            None => Err(self.error(
                start,
                format!(
                    "expected a comparison value (a string, number, true, false or null) \
                     after \"{}\", found {}",
                    op.as_str(),
                    self.found(start)
                ),
            )),
        }
    }

    /// Parses a JSON string that starts at the opening quote. `serde_json` decodes the escapes.
    fn parse_string(&mut self) -> Result<String, FilterError> {
        let start = self.pos;
        let bytes = self.input.as_bytes();
        let mut index = start + 1;
        loop {
            match bytes.get(index) {
                None => {
                    return Err(self.error(start, "unterminated string: expected a closing '\"'"))
                }
                Some(b'\\') => index += 2,
                Some(b'"') => break,
                Some(_) => index += 1,
            }
        }

        // The slice ends on the closing quote, an ASCII byte, so it is on a char boundary.
        let literal = &self.input[start..=index];
        let text = serde_json::from_str::<String>(literal).map_err(|error| {
            let position = start + error.column().saturating_sub(1);
            self.error(
                position,
                format!("invalid string: {}", json_error_reason(&error)),
            )
        })?;
        self.pos = index + 1;
        Ok(text)
    }

    /// Parses a JSON number: integer or decimal, optionally negative, with an optional exponent.
    fn parse_number(&mut self) -> Result<Value, FilterError> {
        let start = self.pos;
        let rest = self.input.get(start..).unwrap_or("");
        let length = run_length(rest.as_bytes(), |b| {
            b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E')
        });
        let literal = &rest[..length];
        match serde_json::from_str::<Number>(literal).map(|number| exact_number(literal, number)) {
            Ok(number) => {
                self.pos = start + length;
                Ok(Value::Number(number))
            }
            Err(error) => Err(self.error(
                start,
                format!(
                    "invalid number {:?}: {}",
                    self.excerpt(start, start + length),
                    json_error_reason(&error)
                ),
            )),
        }
    }

    /// `[URN ":"] attrName ["." subAttr]`. The URN is everything before the last ":", because
    /// URNs such as `urn:ietf:params:scim:schemas:core:2.0:User` contain dots.
    fn parse_attr_path(&mut self) -> Result<AttrPath, FilterError> {
        let start = self.pos;
        let rest = self.input.get(start..).unwrap_or("");
        let token = &rest[..run_length(rest.as_bytes(), is_path_byte)];
        if token.is_empty() {
            return Err(self.error(
                start,
                format!("expected an attribute path, found {}", self.found(start)),
            ));
        }

        let path = split_attr_path(token, start)?;
        self.pos = start + token.len();
        Ok(path)
    }

    /// `"[" valFilter "]"` after `path`, which started at `path_start`.
    fn parse_value_filter(
        &mut self,
        path: &AttrPath,
        path_start: usize,
    ) -> Result<Filter, FilterError> {
        let open = self.pos;
        let path_text = self.excerpt(path_start, open);
        if self.in_value_filter {
            return Err(self.error(
                open,
                format!("value paths cannot be nested, but {path_text:?} opens one inside a value filter"),
            ));
        }
        if path.sub_attr.is_some() {
            return Err(self.error(
                open,
                format!(
                    "a value filter must follow a multi-valued attribute, but {path_text:?} \
                     names a sub-attribute"
                ),
            ));
        }

        self.enter(open)?;
        self.pos += 1;
        self.in_value_filter = true;
        let filter = self.parse_or()?;
        self.expect_closer(Closer::Bracket(open))?;
        self.in_value_filter = false;
        self.leave();
        Ok(filter)
    }

    /// `["." subAttr]` right after a value filter's "]".
    fn parse_trailing_sub_attr(&mut self) -> Result<Option<String>, FilterError> {
        if self.peek() != Some(b'.') {
            return Ok(None);
        }
        self.pos += 1;

        let start = self.pos;
        let rest = self.input.get(start..).unwrap_or("");
        let name = &rest[..run_length(rest.as_bytes(), is_name_byte)];
        if name.is_empty() {
            return Err(self.error(
                start,
                format!(
                    "expected a sub-attribute name after \"].\", found {}",
                    self.found(start)
                ),
            ));
        }
        check_attr_name(name, start)?;
        self.pos = start + name.len();
        Ok(Some(name.to_string()))
    }

    /// Skips whitespace and consumes the token that `closer` expects.
    fn expect_closer(&mut self, closer: Closer) -> Result<(), FilterError> {
        let end = self.pos;
        self.skip_whitespace();
        let (byte, expected) = match closer {
            Closer::FilterEnd => (None, "\"and\", \"or\" or the end of the filter".to_string()),
            Closer::PathEnd(start) => (
                None,
                format!("the end of the path after {:?}", self.excerpt(start, end)),
            ),
            Closer::Paren(open) => (
                Some(b')'),
                format!("\"and\", \"or\" or \")\" to close the \"(\" at position {open}"),
            ),
            Closer::Bracket(open) => (
                Some(b']'),
                format!("\"and\", \"or\" or \"]\" to close the \"[\" at position {open}"),
            ),
        };

        if self.peek() == byte {
            self.pos += usize::from(byte.is_some());
            return Ok(());
        }
        Err(self.error(
            self.pos,
            format!("expected {expected}, found {}", self.found(self.pos)),
        ))
    }

    /// Returns the input between two positions, shortened for an error message.
    fn excerpt(&self, start: usize, end: usize) -> &'a str {
        let text = self.input.get(start..end).unwrap_or("");
        let mut cut = text.len().min(MAX_EXCERPT);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        &text[..cut]
    }
}

/// Re-reads a decimal with the standard library, which rounds correctly, because `serde_json`
/// without its `float_roundtrip` feature may be off by one unit in the last place.
fn exact_number(literal: &str, number: Number) -> Number {
    if !number.is_f64() {
        return number;
    }
    literal
        .parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .unwrap_or(number)
}

/// Splits a path token that started at byte `offset` into URN, name and sub-attribute.
fn split_attr_path(token: &str, offset: usize) -> Result<AttrPath, FilterError> {
    let is_urn = token
        .get(..4)
        .is_some_and(|head| head.eq_ignore_ascii_case("urn:"));
    if !is_urn {
        if let Some(colon) = token.find(':') {
            return Err(FilterError {
                position: offset + colon,
                message: format!(
                    "invalid attribute path {token:?}: a schema URN must start with \"urn:\""
                ),
            });
        }
        let (name, sub_attr) = split_name(token, offset)?;
        return Ok(AttrPath {
            urn: None,
            name,
            sub_attr,
        });
    }

    // A whole extension URN names the extension object itself, as in a PATCH that removes
    // every enterprise attribute.
    if is_extension_urn(token) {
        return Ok(AttrPath {
            urn: None,
            name: token.to_string(),
            sub_attr: None,
        });
    }

    let colon = token.rfind(':').unwrap_or(0);
    if colon <= 3 {
        return Err(FilterError {
            position: offset,
            message: format!(
                "invalid attribute path {token:?}: expected a schema URN, \":\" and an attribute name"
            ),
        });
    }
    let (name, sub_attr) = split_name(&token[colon + 1..], offset + colon + 1)?;
    Ok(AttrPath {
        urn: Some(token[..colon].to_string()),
        name,
        sub_attr,
    })
}

fn is_extension_urn(token: &str) -> bool {
    [ResourceKind::User, ResourceKind::Group]
        .into_iter()
        .flat_map(schema::extensions)
        .any(|extension| extension.id.eq_ignore_ascii_case(token))
}

/// Splits `name["." subAttr]`, which started at byte `offset`.
fn split_name(text: &str, offset: usize) -> Result<(String, Option<String>), FilterError> {
    let Some((name, sub_attr)) = text.split_once('.') else {
        check_attr_name(text, offset)?;
        return Ok((text.to_string(), None));
    };

    check_attr_name(name, offset)?;
    let sub_offset = offset + name.len() + 1;
    if let Some(dot) = sub_attr.find('.') {
        return Err(FilterError {
            position: sub_offset + dot,
            message: format!("attribute path {text:?} has more than one sub-attribute"),
        });
    }
    check_attr_name(sub_attr, sub_offset)?;
    Ok((name.to_string(), Some(sub_attr.to_string())))
}

/// `ATTRNAME = ALPHA *(ALPHA / DIGIT / "-" / "_")`, or `$ref` (RFC 7643 section 2.1).
fn check_attr_name(name: &str, offset: usize) -> Result<(), FilterError> {
    if name.eq_ignore_ascii_case("$ref") {
        return Ok(());
    }
    let bad = name.bytes().enumerate().find(|&(index, byte)| match index {
        0 => !byte.is_ascii_alphabetic(),
        _ => !(byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'),
    });

    match (name.is_empty(), bad) {
        (true, _) => Err(FilterError {
            position: offset,
            message: "expected an attribute name, found nothing".to_string(),
        }),
        (false, Some((index, byte))) => Err(FilterError {
            position: offset + index,
            message: format!(
                "invalid character {:?} in attribute name {name:?}: a name starts with a letter \
                 and contains only letters, digits, \"-\" and \"_\"",
                char::from(byte)
            ),
        }),
        (false, None) => Ok(()),
    }
}

/// Returns the reason of a `serde_json` error without its "at line 1 column N" suffix.
fn json_error_reason(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(index) => text[..index].to_string(),
        None => text,
    }
}

fn run_length(bytes: &[u8], accept: impl Fn(u8) -> bool) -> usize {
    bytes.iter().take_while(|&&byte| accept(byte)).count()
}

/// Bytes of an attribute name.
fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'$')
}

/// Bytes of a whole attribute path, URN and sub-attribute included.
fn is_path_byte(byte: u8) -> bool {
    is_name_byte(byte) || matches!(byte, b'.' | b':')
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
            Filter::And(left, right) => {
                write_operand(f, left, matches!(**left, Filter::Or(..)))?;
                f.write_str(" and ")?;
                write_operand(
                    f,
                    right,
                    matches!(**right, Filter::And(..) | Filter::Or(..)),
                )
            }
            Filter::Or(left, right) => {
                write!(f, "{left} or ")?;
                write_operand(f, right, matches!(**right, Filter::Or(..)))
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
        }
    }
}

fn write_operand(f: &mut fmt::Formatter<'_>, operand: &Filter, bracket: bool) -> fmt::Result {
    if bracket {
        write!(f, "({operand})")
    } else {
        write!(f, "{operand}")
    }
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

/// Tests a whole resource (its JSON representation, extension objects under their URN keys).
///
/// A multi-valued attribute matches when any element matches, and a complex multi-valued
/// attribute without a sub-attribute compares each element's `value`. `ne` is the negation
/// of `eq`, so it holds when the attribute is absent and, on a multi-valued attribute, when
/// no element is equal.
pub fn matches(filter: &Filter, kind: ResourceKind, resource: &Value) -> bool {
    evaluate(filter, Scope::Resource(kind), resource)
}

/// Tests one element of the multi-valued attribute `parent` against a value filter, as in
/// `emails[type eq "work"]`; paths in `filter` are relative to the element.
pub fn matches_element(
    filter: &Filter,
    kind: ResourceKind,
    parent: &AttrPath,
    element: &Value,
) -> bool {
    evaluate(
        filter,
        Scope::Element(schema::resolve(kind, parent)),
        element,
    )
}

/// Checks operator and value types against the schema (RFC 7644 section 3.4.2.2): ordering
/// operators are rejected on boolean and binary attributes and with a boolean or null value,
/// and `co`, `sw`, `ew` need a string value.
///
/// NOTE: the AST keeps no byte offsets, so the error's position is 0 and its message names
/// the attribute instead.
pub fn validate(filter: &Filter, kind: ResourceKind) -> Result<(), FilterError> {
    validate_in(filter, Scope::Resource(kind))
}

/// Orders two resources by the `sortBy` attribute (RFC 7644 section 3.4.2.3) in ascending
/// order. A multi-valued attribute sorts by its primary element, or else by its first one.
/// Resources without a value sort last. Strings honour `caseExact`, and dateTime values
/// compare as instants.
pub fn compare_for_sort(kind: ResourceKind, path: &AttrPath, a: &Value, b: &Value) -> Ordering {
    let mut def = schema::resolve(kind, path);
    if path.sub_attr.is_none() && def.is_some_and(|def| def.ty == AttrType::Complex) {
        def = def.and_then(|def| schema::find_sub_attr(def, "value"));
    }

    match (sort_key(kind, path, a), sort_key(kind, path, b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) => order_sort_values(def, a, b),
    }
}

/// Top-level core attributes that the store indexes, in lowercase.
const INDEXED_ATTRIBUTES: [&str; 4] = ["username", "externalid", "displayname", "id"];

/// Finds an `eq` with a string value on `userName`, `externalId`, `displayName` or `id`
/// (unqualified, without sub-attribute) that the whole filter requires: the filter itself or
/// either side of an `and`. Returns the lowercase attribute name and the value as written.
///
/// The store may look candidates up by this value, but must still run `matches` on them,
/// because the rest of the filter and the attribute's `caseExact` rule still apply.
pub fn indexed_eq(filter: &Filter) -> Option<(String, String)> {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: Value::String(value),
        } if path.urn.is_none() && path.sub_attr.is_none() => {
            let name = path.name.to_ascii_lowercase();
            INDEXED_ATTRIBUTES
                .contains(&name.as_str())
                .then(|| (name, value.clone()))
        }
        Filter::And(left, right) => indexed_eq(left).or_else(|| indexed_eq(right)),
        _ => None,
    }
}

/// Lookup context for the paths of a filter: a whole resource, or one element of a
/// multi-valued attribute whose definition, when known, gives the sub-attributes.
#[derive(Clone, Copy)]
enum Scope {
    Resource(ResourceKind),
    Element(Option<&'static AttrDef>),
}

/// The values a path selects, with arrays flattened, and the definition of those values.
struct Target<'v> {
    def: Option<&'static AttrDef>,
    values: Vec<&'v Value>,
}

fn evaluate(filter: &Filter, scope: Scope, node: &Value) -> bool {
    match filter {
        Filter::Present(path) => lookup(scope, path, node).values.into_iter().any(is_present),
        Filter::Compare { path, op, value } => evaluate_compare(scope, path, *op, value, node),
        Filter::ValuePath { path, filter } => {
            let target = lookup(scope, path, node);
            let element_scope = Scope::Element(target.def);
            target
                .values
                .into_iter()
                .any(|element| evaluate(filter, element_scope, element))
        }
        Filter::And(left, right) => evaluate(left, scope, node) && evaluate(right, scope, node),
        Filter::Or(left, right) => evaluate(left, scope, node) || evaluate(right, scope, node),
        Filter::Not(inner) => !evaluate(inner, scope, node),
    }
}

fn evaluate_compare(
    scope: Scope,
    path: &AttrPath,
    op: CompareOp,
    expected: &Value,
    node: &Value,
) -> bool {
    let target = compared_values(lookup(scope, path, node));
    if expected.is_null() {
        let present = target.values.iter().any(|value| is_present(value));
        return match op {
            CompareOp::Eq => !present,
            CompareOp::Ne => present,
            _ => false,
        };
    }

    let compare = |op, actual: &&Value| compare_leaf(target.def, op, actual, expected);
    match op {
        CompareOp::Ne => !target
            .values
            .iter()
            .any(|actual| compare(CompareOp::Eq, actual)),
        _ => target.values.iter().any(|actual| compare(op, actual)),
    }
}

/// Replaces complex values by their `value` sub-attribute, as RFC 7644 section 3.4.2.2 does
/// for `emails co "example.com"`.
fn compared_values(target: Target<'_>) -> Target<'_> {
    let is_complex = target.def.is_some_and(|def| def.ty == AttrType::Complex)
        || target.values.iter().any(|value| value.is_object());
    if !is_complex {
        return target;
    }

    let values = target
        .values
        .into_iter()
        .filter_map(|value| match value {
            Value::Object(_) => get_ignore_case(value, "value"),
            _ => Some(value),
        })
        .collect();
    let def = target
        .def
        .and_then(|def| schema::find_sub_attr(def, "value"));
    Target { def, values }
}

fn lookup<'v>(scope: Scope, path: &AttrPath, node: &'v Value) -> Target<'v> {
    let attribute = match scope {
        Scope::Resource(kind) => resource_attribute(kind, path, node),
        Scope::Element(_) => element_attribute(node, &path.name),
    };

    let mut values = Vec::new();
    match (attribute, &path.sub_attr) {
        (None, _) => {}
        (Some(value), None) => values.extend(flatten(value)),
        (Some(value), Some(sub_attr)) => {
            let subs = flatten(value).filter_map(|item| get_ignore_case(item, sub_attr));
            values.extend(subs.flat_map(flatten));
        }
    }
    Target {
        def: definition(scope, path),
        values,
    }
}

fn definition(scope: Scope, path: &AttrPath) -> Option<&'static AttrDef> {
    match scope {
        Scope::Resource(kind) => schema::resolve(kind, path),
        Scope::Element(parent) => {
            let attr = schema::find_sub_attr(parent?, &path.name)?;
            match &path.sub_attr {
                Some(sub_attr) => schema::find_sub_attr(attr, sub_attr),
                None => Some(attr),
            }
        }
    }
}

/// Finds the attribute a path names in a resource: core attributes at the top level, and
/// extension attributes inside the object under the extension URN.
fn resource_attribute<'v>(
    kind: ResourceKind,
    path: &AttrPath,
    resource: &'v Value,
) -> Option<&'v Value> {
    let base = match &path.urn {
        Some(urn) if !schema::core_schema(kind).id.eq_ignore_ascii_case(urn) => {
            get_ignore_case(resource, urn)?
        }
        Some(_) => resource,
        // An extension attribute named without its URN, such as `manager.value`.
        None => match schema::extension_defining(kind, &path.name) {
            Some(extension) => get_ignore_case(resource, extension.id)?,
            None => resource,
        },
    };
    get_ignore_case(base, &path.name)
}

/// Finds the attribute `name` of an element. A simple element, such as a string in an array of
/// strings, is its own `value`.
fn element_attribute<'v>(element: &'v Value, name: &str) -> Option<&'v Value> {
    match element {
        Value::Object(_) => get_ignore_case(element, name),
        _ if name.eq_ignore_ascii_case("value") => Some(element),
        _ => None,
    }
}

/// Looks a key up in a JSON object, preferring an exact match, then ignoring ASCII case.
pub fn get_ignore_case<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    let object = value.as_object()?;
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| value)
    })
}

fn flatten(value: &Value) -> Box<dyn Iterator<Item = &Value> + '_> {
    match value {
        Value::Array(items) => Box::new(items.iter()),
        other => Box::new(std::iter::once(other)),
    }
}

/// `pr` (RFC 7644 section 3.4.2.2): present and not null, "", [] or {}.
fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(members) => !members.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// Compares one attribute value with the comparison value by the attribute's type, or by the
/// JSON type of the value when the attribute is not in the schema.
fn compare_leaf(def: Option<&AttrDef>, op: CompareOp, actual: &Value, expected: &Value) -> bool {
    let Some(ty) = def.map(|def| def.ty).or_else(|| json_type(actual)) else {
        return false;
    };
    let case_exact = def.is_some_and(|def| def.case_exact);

    match ty {
        AttrType::String | AttrType::Reference => compare_strings(op, actual, expected, case_exact),
        AttrType::Binary => {
            matches!(op, CompareOp::Eq | CompareOp::Ne)
                && compare_strings(op, actual, expected, true)
        }
        AttrType::Boolean => compare_booleans(op, actual, expected),
        AttrType::Integer | AttrType::Decimal => compare_numbers(op, actual, expected),
        AttrType::DateTime => compare_date_times(op, actual, expected),
        AttrType::Complex => false,
    }
}

fn json_type(value: &Value) -> Option<AttrType> {
    match value {
        Value::String(_) => Some(AttrType::String),
        Value::Bool(_) => Some(AttrType::Boolean),
        Value::Number(_) => Some(AttrType::Decimal),
        _ => None,
    }
}

fn compare_strings(op: CompareOp, actual: &Value, expected: &Value, case_exact: bool) -> bool {
    let (Value::String(actual), Value::String(expected)) = (actual, expected) else {
        return false;
    };
    // Identifiers such as member values are ASCII, and large groups compare many of them, so
    // equality on ASCII text avoids the lowercase copies.
    let is_equality = matches!(op, CompareOp::Eq | CompareOp::Ne);
    if is_equality && !case_exact && actual.is_ascii() && expected.is_ascii() {
        return actual.eq_ignore_ascii_case(expected) == (op == CompareOp::Eq);
    }

    let (actual, expected): (Cow<str>, Cow<str>) = if case_exact {
        (actual.into(), expected.into())
    } else {
        (actual.to_lowercase().into(), expected.to_lowercase().into())
    };

    match op {
        CompareOp::Co => actual.contains(expected.as_ref()),
        CompareOp::Sw => actual.starts_with(expected.as_ref()),
        CompareOp::Ew => actual.ends_with(expected.as_ref()),
        _ => ordering_matches(op, actual.cmp(&expected)),
    }
}

fn compare_booleans(op: CompareOp, actual: &Value, expected: &Value) -> bool {
    let (Value::Bool(actual), Value::Bool(expected)) = (actual, expected) else {
        return false;
    };
    match op {
        CompareOp::Eq => actual == expected,
        CompareOp::Ne => actual != expected,
        _ => false,
    }
}

fn compare_numbers(op: CompareOp, actual: &Value, expected: &Value) -> bool {
    let (Value::Number(actual), Value::Number(expected)) = (actual, expected) else {
        return false;
    };
    order_numbers(actual, expected).is_some_and(|ordering| ordering_matches(op, ordering))
}

/// Orders two JSON numbers exactly when both are integers, else as f64.
fn order_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (a.as_i64(), b.as_i64()) {
        return Some(a.cmp(&b));
    }
    if let (Some(a), Some(b)) = (a.as_u64(), b.as_u64()) {
        return Some(a.cmp(&b));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// dateTime values (RFC 7643 section 2.3.5) compare as instants, so `Z` and `+00:00` or
/// different fractions of a second are equal. Substring operators compare the text.
fn compare_date_times(op: CompareOp, actual: &Value, expected: &Value) -> bool {
    if op.is_substring() {
        return compare_strings(op, actual, expected, true);
    }
    let (Value::String(actual_text), Value::String(expected_text)) = (actual, expected) else {
        return false;
    };

    match (parse_date_time(actual_text), parse_date_time(expected_text)) {
        (Some(actual), Some(expected)) => ordering_matches(op, actual.cmp(&expected)),
        _ if matches!(op, CompareOp::Eq | CompareOp::Ne) => {
            compare_strings(op, actual, expected, true)
        }
        _ => false,
    }
}

fn parse_date_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

fn ordering_matches(op: CompareOp, ordering: Ordering) -> bool {
    match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn validate_in(filter: &Filter, scope: Scope) -> Result<(), FilterError> {
    match filter {
        Filter::Present(_) => Ok(()),
        Filter::Compare { path, op, value } => {
            validate_compare(definition(scope, path), path, *op, value)
        }
        Filter::ValuePath { path, filter } => {
            validate_in(filter, Scope::Element(definition(scope, path)))
        }
        Filter::And(left, right) | Filter::Or(left, right) => {
            validate_in(left, scope)?;
            validate_in(right, scope)
        }
        Filter::Not(inner) => validate_in(inner, scope),
    }
}

fn validate_compare(
    def: Option<&AttrDef>,
    path: &AttrPath,
    op: CompareOp,
    value: &Value,
) -> Result<(), FilterError> {
    let ty = def.map(|def| def.ty);
    let message = if op.is_ordering() && matches!(ty, Some(AttrType::Boolean | AttrType::Binary)) {
        format!(
            "operator \"{op}\" cannot order the {} attribute \"{path}\"",
            ty.map_or("", AttrType::as_str)
        )
    } else if op.is_ordering() && matches!(value, Value::Bool(_) | Value::Null) {
        format!("operator \"{op}\" on \"{path}\" needs a string, number or dateTime value, found {value}")
    } else if op.is_substring() && !value.is_string() {
        format!("operator \"{op}\" on \"{path}\" needs a string value, found {value}")
    } else {
        return Ok(());
    };
    Err(FilterError {
        position: 0,
        message,
    })
}

/// Returns the value a resource sorts by, or None when it has none.
fn sort_key<'v>(kind: ResourceKind, path: &AttrPath, resource: &'v Value) -> Option<&'v Value> {
    let attribute = resource_attribute(kind, path, resource)?;
    let chosen = match attribute {
        Value::Array(items) => items
            .iter()
            .find(|item| is_primary(item))
            .or(items.first())?,
        other => other,
    };

    let key = match &path.sub_attr {
        Some(sub_attr) => get_ignore_case(chosen, sub_attr)?,
        None if chosen.is_object() => get_ignore_case(chosen, "value")?,
        None => chosen,
    };
    (!key.is_null()).then_some(key)
}

fn is_primary(element: &Value) -> bool {
    get_ignore_case(element, "primary") == Some(&Value::Bool(true))
}

/// Orders sort keys: booleans, then numbers, then strings, then anything else. The order must
/// stay total, because the standard library's sort may panic on an inconsistent order.
fn order_sort_values(def: Option<&AttrDef>, a: &Value, b: &Value) -> Ordering {
    let rank = |value: &Value| match value {
        Value::Bool(_) => 0,
        Value::Number(_) => 1,
        Value::String(_) => 2,
        _ => 3,
    };

    rank(a).cmp(&rank(b)).then_with(|| match (a, b) {
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        (Value::Number(a), Value::Number(b)) => {
            let as_float = |number: &Number| number.as_f64().unwrap_or(f64::NAN);
            as_float(a).total_cmp(&as_float(b))
        }
        (Value::String(a), Value::String(b)) => order_sort_strings(def, a, b),
        _ => Ordering::Equal,
    })
}

fn order_sort_strings(def: Option<&AttrDef>, a: &str, b: &str) -> Ordering {
    if def.is_some_and(|def| def.ty == AttrType::DateTime) {
        // Valid instants first, in time order, then unparsable text.
        return match (parse_date_time(a), parse_date_time(b)) {
            (Some(a), Some(b)) => a.cmp(&b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => a.cmp(b),
        };
    }
    if def.is_some_and(|def| def.case_exact) {
        a.cmp(b)
    } else {
        a.to_lowercase().cmp(&b.to_lowercase())
    }
}

#[cfg(test)]
mod tests {

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
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn attr(name: &str) -> AttrPath {
        AttrPath {
            urn: None,
            name: name.to_string(),
            sub_attr: None,
        }
    }

    fn sub(name: &str, sub_attr: &str) -> AttrPath {
        AttrPath {
            urn: None,
            name: name.to_string(),
            sub_attr: Some(sub_attr.to_string()),
        }
    }

    fn qualified(urn: &str, name: &str, sub_attr: Option<&str>) -> AttrPath {
        AttrPath {
            urn: Some(urn.to_string()),
            name: name.to_string(),
            sub_attr: sub_attr.map(str::to_string),
        }
    }

    fn compare(path: AttrPath, op: CompareOp, value: Value) -> Filter {
        Filter::Compare { path, op, value }
    }

    fn eq(name: &str, value: &str) -> Filter {
        compare(attr(name), CompareOp::Eq, json!(value))
    }

    fn pr(name: &str) -> Filter {
        Filter::Present(attr(name))
    }

    fn and(left: Filter, right: Filter) -> Filter {
        Filter::And(Box::new(left), Box::new(right))
    }

    fn or(left: Filter, right: Filter) -> Filter {
        Filter::Or(Box::new(left), Box::new(right))
    }

    fn not(inner: Filter) -> Filter {
        Filter::Not(Box::new(inner))
    }

    fn value_path(name: &str, filter: Filter) -> Filter {
        Filter::ValuePath {
            path: attr(name),
            filter: Box::new(filter),
        }
    }

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
                "longer than the maximum of 4096 bytes",
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

    fn sample_user() -> Value {
        json!({
            "schemas": [CORE_USER, ENTERPRISE],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "bjensen",
            "userName": "BJensen@example.com",
            "name": { "familyName": "O'Malley", "givenName": "Barbara" },
            "nickName": "",
            "title": "Tour Guide",
            "userType": "Employee",
            "active": true,
            "emails": [
                { "value": "bjensen@example.com", "type": "work", "primary": true },
                { "value": "babs@jensen.org", "type": "home" }
            ],
            "ims": [{ "value": "bjensen@foo.com", "type": "xmpp" }],
            "phoneNumbers": [],
            "meta": {
                "resourceType": "User",
                "created": "2010-01-23T04:56:22Z",
                "lastModified": "2011-05-13T04:42:34Z",
                "version": "W/\"a330bc54f0671c9\""
            },
            ENTERPRISE: {
                "employeeNumber": "701984",
                "costCenter": "4130",
                "manager": { "value": "26118915", "displayName": "John Smith" }
            },
            "level": 7,
            "ratio": 0.5
        })
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
            ("emails.type ne \"work\"", false),
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

    fn name_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z][a-zA-Z0-9_-]{0,6}",
            Just("$ref".to_string()),
            Just("not".to_string()),
            Just("and".to_string()),
            Just("pr".to_string()),
        ]
    }

    fn path_strategy() -> impl Strategy<Value = AttrPath> {
        let urn = proptest::option::of(prop_oneof![Just(CORE_USER), Just(ENTERPRISE)]);
        (urn, name_strategy(), proptest::option::of(name_strategy())).prop_map(
            |(urn, name, sub_attr)| AttrPath {
                urn: urn.map(str::to_string),
                name,
                sub_attr,
            },
        )
    }

    fn value_strategy() -> impl Strategy<Value = Value> {
        let text = proptest::collection::vec(any::<char>(), 0..12).prop_map(String::from_iter);
        prop_oneof![
            text.prop_map(Value::String),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |number| number.is_finite())
                .prop_map(Value::from),
        ]
    }

    fn op_strategy() -> impl Strategy<Value = CompareOp> {
        proptest::sample::select(vec![
            CompareOp::Eq,
            CompareOp::Ne,
            CompareOp::Co,
            CompareOp::Sw,
            CompareOp::Ew,
            CompareOp::Gt,
            CompareOp::Ge,
            CompareOp::Lt,
            CompareOp::Le,
        ])
    }

    fn leaf_strategy() -> impl Strategy<Value = Filter> {
        prop_oneof![
            path_strategy().prop_map(Filter::Present),
            (path_strategy(), op_strategy(), value_strategy())
                .prop_map(|(path, op, value)| Filter::Compare { path, op, value }),
        ]
    }

    fn combine(leaf: BoxedStrategy<Filter>) -> BoxedStrategy<Filter> {
        leaf.prop_recursive(3, 12, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(left, right)| and(left, right)),
                (inner.clone(), inner.clone()).prop_map(|(left, right)| or(left, right)),
                inner.prop_map(not),
            ]
        })
        .boxed()
    }

    fn filter_strategy() -> BoxedStrategy<Filter> {
        let value_path =
            (name_strategy(), combine(leaf_strategy().boxed())).prop_map(|(name, filter)| {
                Filter::ValuePath {
                    path: attr(&name),
                    filter: Box::new(filter),
                }
            });
        combine(prop_oneof![leaf_strategy(), value_path].boxed())
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

        #[test]
        fn printed_filter_reparses(filter in filter_strategy()) {
            let printed = filter.to_string();
            prop_assert_eq!(parse_filter(&printed), Ok(filter), "printed {}", printed);
        }

        #[test]
        fn evaluate_never_panics(filter in filter_strategy()) {
            let _ = matches(&filter, ResourceKind::User, &sample_user());
            let _ = validate(&filter, ResourceKind::User);
        }
    }
}
