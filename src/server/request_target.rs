//! Percent-encodes the bytes in HTTP/1.1 request targets that clients often send unencoded.
//!
//! Hand-written SCIM clients, curl users and some HTTP libraries put filters in the query as
//! typed: `?filter=userName eq "ada@example.org"`. The `http` crate (1.x), which hyper uses
//! to parse the request line, rejects `"`, `<`, `>`, `` ` `` and spaces in a query, and hyper
//! then responds with a bare 400 before any SCIM code runs. This reader sits between TLS and hyper,
//! follows HTTP/1.1 message framing (RFC 9112 section 6), and rewrites only request lines,
//! so the filter reaches the SCIM layer as `%22ada@example.org%22`. Headers and bodies pass
//! unchanged. On anything it does not recognise as HTTP/1.x framing it stops rewriting and
//! passes every later byte through, so hyper receives the original bytes and rejects them itself.
//!
//! No crate offers this: the repair has to happen before hyper parses the request line.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Maximum line length buffered before the reader gives up and passes bytes through. The `http` crate
/// rejects longer request targets anyway.
const MAX_LINE: usize = 64 * 1024;
/// Size of each read from the TLS stream.
const READ_CHUNK: usize = 16 * 1024;

/// Position of the scanner in the byte stream of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before a request line; empty lines here are allowed (RFC 9112 section 2.2).
    RequestLine,
    /// Inside a header section.
    Header { content_length: Option<u64>, chunked: bool },
    /// Inside a body of known length, with this many bytes to go.
    Body(u64),
    /// Before a chunk-size line.
    ChunkSize,
    /// Inside chunk data, with this many bytes to go.
    ChunkData(u64),
    /// After chunk data, before its CRLF.
    ChunkEnd,
    /// Inside the trailer section after the last chunk.
    Trailer,
    /// Unrecognised framing: every later byte passes through unchanged.
    Passthrough,
}

/// The framing state machine, fed with bytes as they arrive.
#[derive(Debug)]
struct Scanner {
    state: State,
    line: Vec<u8>,
}

impl Scanner {
    fn new() -> Scanner {
        Scanner { state: State::RequestLine, line: Vec::new() }
    }

    /// Appends the repaired form of `input` to `out`. Bytes of an unfinished line stay
    /// buffered until the rest of the line arrives.
    fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            match self.state {
                State::Passthrough => {
                    out.extend_from_slice(input);
                    return;
                }
                State::Body(remaining) | State::ChunkData(remaining) => {
                    let take = usize::try_from(remaining).unwrap_or(usize::MAX).min(input.len());
                    out.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    let left = remaining - take as u64;
                    self.state = match (self.state, left) {
                        (State::Body(_), 0) => State::RequestLine,
                        (State::Body(_), left) => State::Body(left),
                        (_, 0) => State::ChunkEnd,
                        (_, left) => State::ChunkData(left),
                    };
                }
                _ => {
                    let end = input.iter().position(|&byte| byte == b'\n');
                    let (part, rest) = match end {
                        Some(end) => input.split_at(end + 1),
                        None => (input, &input[input.len()..]),
                    };
                    self.line.extend_from_slice(part);
                    input = rest;
                    if self.line.len() > MAX_LINE {
                        self.pass_through(out);
                    } else if end.is_some() {
                        let line = std::mem::take(&mut self.line);
                        self.finish_line(&line, out);
                    }
                }
            }
        }
    }

    /// Flushes a buffered partial line, for end of input.
    fn finish(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.line);
    }

    fn pass_through(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.line);
        self.state = State::Passthrough;
    }

    /// Handles one complete line, ending in `\n`.
    fn finish_line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let content = strip_line_end(line);
        let next = match self.state {
            State::RequestLine if content.is_empty() => Some(State::RequestLine),
            State::RequestLine => match repair_request_line(content) {
                Some(repaired) => {
                    out.extend_from_slice(&repaired);
                    out.extend_from_slice(&line[content.len()..]);
                    self.state = State::Header { content_length: None, chunked: false };
                    return;
                }
                None => None,
            },
            State::Header { content_length, chunked } if content.is_empty() => Some(match (chunked, content_length) {
                (true, _) => State::ChunkSize,
                (false, Some(length)) if length > 0 => State::Body(length),
                (false, _) => State::RequestLine,
            }),
            State::Header { content_length, chunked } => read_header(content, content_length, chunked),
            State::ChunkSize => parse_chunk_size(content).map(|size| match size {
                0 => State::Trailer,
                size => State::ChunkData(size),
            }),
            State::ChunkEnd if content.is_empty() => Some(State::ChunkSize),
            State::Trailer if content.is_empty() => Some(State::RequestLine),
            State::Trailer => Some(State::Trailer),
            _ => None,
        };
        out.extend_from_slice(line);
        self.state = next.unwrap_or(State::Passthrough);
    }
}

fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Returns the header state after one field line, or `None` for framing this scanner does not
/// follow (obsolete line folding, an invalid or conflicting length, a transfer coding other
/// than chunked last).
fn read_header(content: &[u8], content_length: Option<u64>, chunked: bool) -> Option<State> {
    if content.first().is_some_and(|&byte| byte == b' ' || byte == b'\t') {
        return None;
    }
    let colon = content.iter().position(|&byte| byte == b':')?;
    let name = &content[..colon];
    let value = std::str::from_utf8(&content[colon + 1..]).ok()?.trim();
    if name.eq_ignore_ascii_case(b"content-length") {
        let length: u64 = value.parse().ok()?;
        if content_length.is_some_and(|earlier| earlier != length) {
            return None;
        }
        return Some(State::Header { content_length: Some(length), chunked });
    }
    if name.eq_ignore_ascii_case(b"transfer-encoding") {
        let last = value.rsplit(',').next().unwrap_or("").trim();
        if !last.eq_ignore_ascii_case("chunked") {
            return None;
        }
        return Some(State::Header { content_length, chunked: true });
    }
    Some(State::Header { content_length, chunked })
}

/// `chunk-size [chunk-ext]` (RFC 9112 section 7.1).
fn parse_chunk_size(content: &[u8]) -> Option<u64> {
    let size = content.split(|&byte| byte == b';').next()?;
    let size = std::str::from_utf8(size).ok()?.trim();
    if size.is_empty() {
        return None;
    }
    u64::from_str_radix(size, 16).ok()
}

/// Rewrites `method SP target SP HTTP/1.x` with the target's unsafe bytes percent-encoded.
/// Spaces inside the target are found by taking the first and the last space of the line.
/// Returns `None` when the line is not an HTTP/1.x request line.
fn repair_request_line(content: &[u8]) -> Option<Vec<u8>> {
    let first = content.iter().position(|&byte| byte == b' ')?;
    let last = content.iter().rposition(|&byte| byte == b' ')?;
    if last <= first + 1 {
        return None;
    }
    let (method, target, version) = (&content[..first], &content[first + 1..last], &content[last + 1..]);
    if method.is_empty() || !method.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    if version != b"HTTP/1.1" && version != b"HTTP/1.0" {
        return None;
    }
    let mut repaired = Vec::with_capacity(content.len() + 16);
    repaired.extend_from_slice(method);
    repaired.push(b' ');
    for &byte in target {
        if needs_encoding(byte) {
            repaired.extend_from_slice(format!("%{byte:02X}").as_bytes());
        } else {
            repaired.push(byte);
        }
    }
    repaired.push(b' ');
    repaired.extend_from_slice(version);
    Some(repaired)
}

/// Bytes that the `http` crate rejects in a query, plus `#` and every byte above 0x7F. A
/// request target has no fragment (RFC 9112 section 3.2), so a `#` there is part of a value
/// the client left unencoded. Bytes above 0x7F are rejected when they are not UTF-8; encoded,
/// they reach the SCIM layer, which returns a SCIM error instead of hyper's bare 400.
fn needs_encoding(byte: u8) -> bool {
    byte <= b' ' || byte >= 0x7F || matches!(byte, b'"' | b'<' | b'>' | b'`' | b'#')
}

/// A byte stream whose HTTP/1.1 request targets come out repaired; writes pass through.
pub struct RepairedRequestTargets<S> {
    inner: S,
    scanner: Scanner,
    pending: Vec<u8>,
    pending_start: usize,
    chunk: Box<[u8]>,
}

impl<S> RepairedRequestTargets<S> {
    pub fn new(inner: S) -> Self {
        RepairedRequestTargets {
            inner,
            scanner: Scanner::new(),
            pending: Vec::new(),
            pending_start: 0,
            chunk: vec![0; READ_CHUNK].into_boxed_slice(),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for RepairedRequestTargets<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.pending_start < this.pending.len() {
                let available = &this.pending[this.pending_start..];
                let take = available.len().min(buf.remaining());
                buf.put_slice(&available[..take]);
                this.pending_start += take;
                if this.pending_start == this.pending.len() {
                    this.pending.clear();
                    this.pending_start = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.scanner.state == State::Passthrough {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            let mut chunk = ReadBuf::new(&mut this.chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut chunk) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Ready(Ok(())) => {}
            }
            let filled = chunk.filled();
            if filled.is_empty() {
                // End of stream: hand over any partial line, then report the end.
                this.scanner.finish(&mut this.pending);
                if this.pending.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                this.scanner.state = State::Passthrough;
                continue;
            }
            this.scanner.feed(filled, &mut this.pending);
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for RepairedRequestTargets<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes and returns the output.
    fn scan(input: &[u8], step: usize) -> Vec<u8> {
        let mut scanner = Scanner::new();
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            scanner.feed(piece, &mut out);
        }
        scanner.finish(&mut out);
        out
    }

    fn scan_all_steps(input: &[u8]) -> Vec<u8> {
        let whole = scan(input, input.len().max(1));
        for step in [1, 2, 3, 7, 64] {
            assert!(scan(input, step) == whole, "output differs when fed {step} bytes at a time");
        }
        whole
    }

    #[test]
    fn repair_quotes_and_spaces_in_query() {
        let input = b"GET /scim/v2/Users?filter=userName eq \"ada@example.org\" HTTP/1.1\r\nHost: x\r\n\r\n";
        let expected = b"GET /scim/v2/Users?filter=userName%20eq%20%22ada@example.org%22 HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(scan_all_steps(input), expected);
    }

    #[test]
    fn repair_leaves_valid_requests_unchanged() {
        let input = b"GET /scim/v2/Users?filter=userName%20eq%20%22a%22&count=1 HTTP/1.1\r\nHost: x\r\n\r\n\
            PATCH /scim/v2/Groups/g1 HTTP/1.1\r\nContent-Length: 5\r\n\r\n{\"a\"}";
        assert_eq!(scan_all_steps(input), input);
    }

    #[test]
    fn repair_skips_bodies_by_content_length() {
        // The body contains a line shaped like a request line, which must pass unchanged.
        let body = b"GET /x?a=\"b\" HTTP/1.1\r\n";
        let mut head = format!("POST /scim/v2/Users HTTP/1.1\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
        head.extend_from_slice(body);
        let mut input = head.clone();
        input.extend_from_slice(b"GET /scim/v2/Users?filter=a eq \"b\" HTTP/1.1\r\n\r\n");
        let mut expected = head;
        expected.extend_from_slice(b"GET /scim/v2/Users?filter=a%20eq%20%22b%22 HTTP/1.1\r\n\r\n");
        assert_eq!(scan_all_steps(&input), expected);
    }

    #[test]
    fn repair_skips_chunked_bodies() {
        let input = b"POST /scim/v2/Users HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
            5;ext=1\r\n\"a b\"\r\n3\r\n<c>\r\n0\r\nTrailer: t\r\n\r\n\
            GET /scim/v2/Groups?filter=displayName eq \"x\" HTTP/1.1\r\n\r\n";
        let output = scan_all_steps(input);
        let text = String::from_utf8(output).unwrap();
        assert!(text.contains("5;ext=1\r\n\"a b\"\r\n3\r\n<c>\r\n0\r\nTrailer: t\r\n\r\n"), "{text}");
        assert!(text.ends_with("GET /scim/v2/Groups?filter=displayName%20eq%20%22x%22 HTTP/1.1\r\n\r\n"), "{text}");
    }

    #[test]
    fn repair_encodes_hash_and_angle_brackets() {
        let input = b"GET /scim/v2/Groups?filter=displayName eq \"C# <dev>\" HTTP/1.1\r\n\r\n";
        let expected = b"GET /scim/v2/Groups?filter=displayName%20eq%20%22C%23%20%3Cdev%3E%22 HTTP/1.1\r\n\r\n";
        assert_eq!(scan_all_steps(input), expected);
    }

    #[test]
    fn repair_encodes_bytes_above_ascii() {
        let input = b"GET /scim/v2/Groups?filter=displayName eq \"Z\xC3\xBCrich \xFF\" HTTP/1.1\r\n\r\n";
        let expected = b"GET /scim/v2/Groups?filter=displayName%20eq%20%22Z%C3%BCrich%20%FF%22 HTTP/1.1\r\n\r\n";
        assert_eq!(scan_all_steps(input), expected);
    }

    #[test]
    fn repair_passes_unknown_framing_through() {
        let cases: [&[u8]; 5] = [
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\"raw\" \"bytes\" HTTP/1.1\r\n",
            b"GET /a HTTP/1.1\r\nContent-Length: x\r\n\r\nGET /\"b\" HTTP/1.1\r\n",
            b"GET /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nGET /\"b\" HTTP/1.1\r\n",
            b"GET /a HTTP/1.1\r\nX: a\r\n folded\r\n\r\nGET /\"b\" HTTP/1.1\r\n",
            b"not a request line\r\nGET /\"b\" HTTP/1.1\r\n",
        ];
        for input in cases {
            assert_eq!(scan_all_steps(input), input, "{}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn repair_gives_up_on_overlong_line() {
        let mut input = b"GET /".to_vec();
        input.extend(std::iter::repeat_n(b'a', MAX_LINE + 10));
        input.extend_from_slice(b"\" HTTP/1.1\r\n\r\n");
        // Compared with assert! so a failure does not print 64 KiB twice.
        assert!(scan_all_steps(&input) == input, "an overlong request line was rewritten");
    }

    #[test]
    fn repair_keeps_partial_line_at_end() {
        assert_eq!(scan_all_steps(b"GET /a?b=\"c"), b"GET /a?b=\"c");
    }
}
