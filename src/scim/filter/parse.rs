//! Parser for filters and PATCH paths into the AST of the parent module.
//!
//! The parser is hand-written recursive descent, because no crate parses the whole grammar
//! (value paths, URN-qualified paths, keywords in any case) with byte positions in its errors
//! and a bound on nesting. Every nested construct passes through `Parser::enter`, so a hostile
//! filter ends in a `FilterError`, never in a stack overflow.

use serde_json::{Number, Value};

use super::{
    AttrPath, CompareOp, Filter, FilterError, PatchPath, MAX_FILTER_DEPTH, MAX_FILTER_LENGTH,
};
use crate::scim::schema::{self, ResourceKind};

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

/// Returns a single term as it is, and several terms as one chain node built by `node`.
fn chain(mut terms: Vec<Filter>, node: fn(Vec<Filter>) -> Filter) -> Filter {
    if terms.len() == 1 {
        terms.pop().expect("one term")
    } else {
        node(terms)
    }
}

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
        let mut terms = vec![self.parse_and()?];
        while self.next_keyword("or") {
            terms.push(self.parse_and()?);
        }
        Ok(chain(terms, Filter::Or))
    }

    /// `andExpr = unary *("and" unary)`.
    fn parse_and(&mut self) -> Result<Filter, FilterError> {
        let mut terms = vec![self.parse_unary()?];
        while self.next_keyword("and") {
            terms.push(self.parse_unary()?);
        }
        Ok(chain(terms, Filter::And))
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
            filter = Filter::And(vec![filter, condition]);
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

#[cfg(test)]
mod tests;
