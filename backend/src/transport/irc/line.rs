//! IRC lines, both ways: [`Line::parse`] reads one (RFC 1459/2812 framing
//! with IRCv3 message tags), [`Line::write`] writes one, and [`Splitter`]
//! cuts a byte stream into lines ended by CR, LF or CRLF. Every line the
//! server sends is built as a [`Line`], so what we write is what we parse.
//!
//! Limits (IRCv3): the tag section, `@` and its trailing space included,
//! is at most [`MAX_TAGS`] bytes; the rest, CRLF included, at most
//! [`MAX_BODY`] bytes.

use std::fmt;

/// Longest message body (source, command, parameters), CRLF included.
pub const MAX_BODY: usize = 512;
/// Longest tag section, the leading `@` and the space after it included.
pub const MAX_TAGS: usize = 8191;
/// Most parameters a line may have.
pub const MAX_PARAMS: usize = 15;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Line {
    /// Message tags in order; an empty value means "no value".
    pub tags: Vec<(String, String)>,
    pub source: Option<String>,
    /// Upper case: a word of letters, or three digits.
    pub command: String,
    pub params: Vec<String>,
    /// Write the last parameter with a `:` even where it needs none, as is
    /// customary for free text.
    pub trailing: bool,
}

/// Why a line could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("the line is not valid UTF-8")]
    InvalidUtf8,
    #[error("the line contains a NUL byte")]
    Nul,
    #[error("the line has no command")]
    NoCommand,
    #[error("the command must be letters or a three-digit number")]
    BadCommand,
    #[error("a message tag is malformed")]
    BadTag,
    #[error("more than 15 parameters")]
    TooManyParams,
    #[error("the line is longer than 512 bytes")]
    BodyTooLong,
    #[error("the message tags are longer than 8191 bytes")]
    TagsTooLong,
}

impl Line {
    /// A line from the server (or another source) with parameters.
    pub fn new(source: Option<&str>, command: &str, params: &[&str]) -> Line {
        Line {
            tags: Vec::new(),
            source: source.map(str::to_string),
            command: command.to_string(),
            params: params.iter().map(|p| p.to_string()).collect(),
            trailing: false,
        }
    }

    /// The same line, its last parameter written with `:`.
    pub fn text(mut self) -> Line {
        self.trailing = true;
        self
    }

    /// Parameter `i`, if present.
    pub fn param(&self, i: usize) -> Option<&str> {
        self.params.get(i).map(String::as_str)
    }

    /// Parses one line without its line ending.
    pub fn parse(bytes: &[u8]) -> Result<Line, LineError> {
        let text = std::str::from_utf8(bytes).map_err(|_| LineError::InvalidUtf8)?;
        if text.contains('\0') {
            return Err(LineError::Nul);
        }
        let mut rest = text.trim_start_matches(' ');
        let mut line = Line::default();
        if let Some(after) = rest.strip_prefix('@') {
            let (tags, body) = after.split_once(' ').unwrap_or((after, ""));
            if tags.len() + 2 > MAX_TAGS {
                return Err(LineError::TagsTooLong);
            }
            line.tags = parse_tags(tags)?;
            rest = body.trim_start_matches(' ');
        }
        // The body limit counts the CRLF we were not given.
        if rest.len() + 2 > MAX_BODY {
            return Err(LineError::BodyTooLong);
        }
        if let Some(after) = rest.strip_prefix(':') {
            let (source, body) = after.split_once(' ').unwrap_or((after, ""));
            if source.is_empty() {
                return Err(LineError::NoCommand);
            }
            line.source = Some(source.to_string());
            rest = body.trim_start_matches(' ');
        }
        let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
        if command.is_empty() {
            return Err(LineError::NoCommand);
        }
        let numeric = command.len() == 3 && command.bytes().all(|b| b.is_ascii_digit());
        if !numeric && !command.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(LineError::BadCommand);
        }
        line.command = command.to_ascii_uppercase();
        loop {
            rest = rest.trim_start_matches(' ');
            if rest.is_empty() {
                break;
            }
            if line.params.len() == MAX_PARAMS {
                return Err(LineError::TooManyParams);
            }
            if let Some(trailing) = rest.strip_prefix(':') {
                line.params.push(trailing.to_string());
                line.trailing = true;
                break;
            }
            let (param, after) = rest.split_once(' ').unwrap_or((rest, ""));
            line.params.push(param.to_string());
            rest = after;
        }
        Ok(line)
    }

    /// Appends the line and its CRLF to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        if !self.tags.is_empty() {
            out.push(b'@');
            for (i, (key, value)) in self.tags.iter().enumerate() {
                if i > 0 {
                    out.push(b';');
                }
                out.extend_from_slice(key.as_bytes());
                if !value.is_empty() {
                    out.push(b'=');
                    escape_tag_value(value, out);
                }
            }
            out.push(b' ');
        }
        if let Some(source) = &self.source {
            out.push(b':');
            out.extend_from_slice(source.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(self.command.as_bytes());
        if let Some((last, middle)) = self.params.split_last() {
            for param in middle {
                out.push(b' ');
                out.extend_from_slice(param.as_bytes());
            }
            out.extend_from_slice(if self.trailing || needs_colon(last) {
                b" :"
            } else {
                b" "
            });
            out.extend_from_slice(last.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }

    /// Bytes [`write`](Self::write) produces without tags and CRLF; the
    /// body limit applies to this plus 2.
    pub fn body_len(&self) -> usize {
        let mut len = self.source.as_ref().map_or(0, |s| s.len() + 2) + self.command.len();
        for param in &self.params {
            len += param.len() + 1;
        }
        if let Some(last) = self.params.last()
            && (self.trailing || needs_colon(last))
        {
            len += 1;
        }
        len
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::new();
        self.write(&mut out);
        out.truncate(out.len() - 2);
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

/// Whether a last parameter must be written with a leading `:`.
fn needs_colon(param: &str) -> bool {
    param.is_empty() || param.starts_with(':') || param.contains(' ')
}

fn valid_tag_key(key: &str) -> bool {
    let key = key.strip_prefix('+').unwrap_or(key);
    let (vendor, name) = key.rsplit_once('/').unwrap_or(("", key));
    let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let vendor_ok = vendor
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    name_ok && vendor_ok
}

fn parse_tags(section: &str) -> Result<Vec<(String, String)>, LineError> {
    let mut tags: Vec<(String, String)> = Vec::new();
    for tag in section.split(';').filter(|t| !t.is_empty()) {
        let (key, value) = tag.split_once('=').unwrap_or((tag, ""));
        if !valid_tag_key(key) {
            return Err(LineError::BadTag);
        }
        let value = unescape_tag_value(value);
        // A repeated key: the last value wins.
        match tags.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => tags.push((key.to_string(), value)),
        }
    }
    if tags.is_empty() {
        return Err(LineError::BadTag);
    }
    Ok(tags)
}

pub fn escape_tag_value(value: &str, out: &mut Vec<u8>) {
    for b in value.bytes() {
        match b {
            b';' => out.extend_from_slice(b"\\:"),
            b' ' => out.extend_from_slice(b"\\s"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

pub fn unescape_tag_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            // A lone trailing backslash is dropped.
            None => {}
        }
    }
    out
}

/// Cuts a byte stream into lines. CR, LF and CRLF all end a line; empty
/// lines are skipped. A line longer than `max` yields one
/// [`Piece::TooLong`] and is dropped up to its end, so the stream stays
/// usable.
#[derive(Debug)]
pub struct Splitter {
    buf: Vec<u8>,
    start: usize,
    /// The longest line (`u32`: with the flags below, it fits in the
    /// word `start` leaves).
    max: u32,
    discarding: bool,
    /// The stream ended; lines already in the buffer still count.
    ended: bool,
}

/// What [`Splitter::next_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Line(&'a [u8]),
    TooLong,
}

impl Splitter {
    pub fn new(max: usize) -> Self {
        Splitter {
            buf: Vec::new(),
            start: 0,
            max: u32::try_from(max).unwrap_or(u32::MAX),
            discarding: false,
            ended: false,
        }
    }

    /// Notes that the stream ended.
    pub fn end(&mut self) {
        self.ended = true;
    }

    /// Whether the stream ended.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Lets `read` write up to `max` bytes into the buffer; returns its result.
    pub fn fill<E>(
        &mut self,
        max: usize,
        read: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + max, 0);
        let result = read(&mut self.buf[old..]);
        let got = *result.as_ref().unwrap_or(&0);
        self.buf.truncate(old + got.min(max));
        result
    }

    /// Releases the buffer when nothing is pending (for idle connections).
    pub fn shrink_if_idle(&mut self) {
        if self.start == self.buf.len() {
            self.buf = Vec::new();
            self.start = 0;
        }
    }

    /// How many pieces [`next_line`](Self::next_line) would return before
    /// it needs more input, counting at most `limit` of them.
    pub fn complete_lines(&self, limit: usize) -> usize {
        let (mut start, mut discarding, mut count) = (self.start, self.discarding, 0);
        while count < limit {
            let pending = &self.buf[start..];
            let Some(end) = pending.iter().position(|&b| b == b'\r' || b == b'\n') else {
                if !discarding && pending.len() > self.max as usize {
                    count += 1;
                }
                break;
            };
            let (from, to) = (start, start + end);
            start = to + 1;
            if std::mem::take(&mut discarding) || from == to {
                continue;
            }
            count += 1;
        }
        count
    }

    /// The next line's bytes so far (after any line breaks).
    pub fn peek(&self) -> &[u8] {
        let pending = &self.buf[self.start..];
        let skip = pending
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(pending.len());
        &pending[skip..]
    }

    /// Bytes read and not yet returned as lines.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    pub fn next_line(&mut self) -> Option<Piece<'_>> {
        loop {
            let pending = &self.buf[self.start..];
            let Some(end) = pending.iter().position(|&b| b == b'\r' || b == b'\n') else {
                if !self.discarding && pending.len() > self.max as usize {
                    self.discarding = true;
                    self.start = self.buf.len();
                    return Some(Piece::TooLong);
                }
                if self.discarding {
                    self.start = self.buf.len();
                }
                return None;
            };
            let (from, to) = (self.start, self.start + end);
            self.start = to + 1;
            if std::mem::take(&mut self.discarding) || from == to {
                continue;
            }
            if to - from > self.max as usize {
                return Some(Piece::TooLong);
            }
            return Some(Piece::Line(&self.buf[from..to]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Line {
        Line::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn reads_the_usual_shapes() {
        let l = parse("PRIVMSG #lobby :hello there");
        assert_eq!(l.command, "PRIVMSG");
        assert_eq!(l.params, ["#lobby", "hello there"]);
        assert!(l.trailing);
        let l = parse(":nick!user@host  join   #a,#b  ");
        assert_eq!(l.source.as_deref(), Some("nick!user@host"));
        assert_eq!(
            (l.command.as_str(), &l.params[..]),
            ("JOIN", &["#a,#b".to_string()][..])
        );
        let l = parse("USER guest 0 * :Real Name");
        assert_eq!(l.params, ["guest", "0", "*", "Real Name"]);
        let l = parse("PRIVMSG #a ::-) colon");
        assert_eq!(l.params[1], ":-) colon");
        let l = parse("TOPIC #a :");
        assert_eq!(
            l.params,
            ["#a", ""],
            "an empty trailing parameter is a parameter"
        );
        assert_eq!(parse("001 x :hi").command, "001");
    }

    #[test]
    fn reads_and_unescapes_tags() {
        let l = parse(
            r"@time=2025-01-01T00:00:00.000Z;+draft/reply=a\sb\:c\\d\ne;flag :n PRIVMSG #a :x",
        );
        assert_eq!(
            l.tags,
            vec![
                ("time".into(), "2025-01-01T00:00:00.000Z".into()),
                ("+draft/reply".into(), "a b;c\\d\ne".into()),
                ("flag".into(), String::new()),
            ]
        );
        // `\;` is no escape: the `;` still separates, and lone `\`s vanish.
        assert_eq!(
            parse(r"@a=x\;b=\ PING").tags,
            vec![("a".into(), "x".into()), ("b".into(), String::new())]
        );
        assert_eq!(
            parse(r"@a=x\ PING").tags[0].1,
            "x",
            "a trailing backslash is dropped"
        );
        assert_eq!(parse("@a=1;a=2 PING").tags, vec![("a".into(), "2".into())]);
    }

    #[test]
    fn refuses_broken_lines() {
        for (line, want) in [
            (&b""[..], LineError::NoCommand),
            (b"   ", LineError::NoCommand),
            (b":source", LineError::NoCommand),
            (b": PRIVMSG", LineError::NoCommand),
            (b"PRIV-MSG x", LineError::BadCommand),
            (b"12 x", LineError::BadCommand),
            (b"@ PING", LineError::BadTag),
            (b"@bad_key=1 PING", LineError::BadTag),
            (b"PING \xff", LineError::InvalidUtf8),
            (b"PING a\0b", LineError::Nul),
            (
                b"X 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16",
                LineError::TooManyParams,
            ),
        ] {
            assert_eq!(
                Line::parse(line),
                Err(want),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        let body = format!("PRIVMSG #a :{}", "x".repeat(510 - 12));
        assert!(Line::parse(body.as_bytes()).is_ok(), "510 bytes + CRLF fit");
        let body = format!("{body}x");
        assert_eq!(Line::parse(body.as_bytes()), Err(LineError::BodyTooLong));
        let tags = format!("@a={} PING", "v".repeat(8191 - 4));
        assert!(
            Line::parse(tags.as_bytes()).is_ok(),
            "8191 bytes of tags fit"
        );
        let tags = format!("@a={} PING", "v".repeat(8191 - 3));
        assert_eq!(Line::parse(tags.as_bytes()), Err(LineError::TagsTooLong));
    }

    #[test]
    fn writes_what_it_reads() {
        let mut line = Line::new(Some("banter"), "001", &["alice", "Welcome to Banter"]);
        line.tags.push(("time".into(), "a b;c".into()));
        let mut out = Vec::new();
        line.write(&mut out);
        assert_eq!(
            out,
            b"@time=a\\sb\\:c :banter 001 alice :Welcome to Banter\r\n"
        );
        assert_eq!(line.body_len() + 2, out.len() - "@time=a\\sb\\:c ".len());
        assert_eq!(Line::new(None, "PING", &["x"]).to_string(), "PING x");
        assert_eq!(
            Line::new(None, "PRIVMSG", &["#a", "hi"]).text().to_string(),
            "PRIVMSG #a :hi"
        );
        assert_eq!(
            Line::new(None, "TOPIC", &["#a", ""]).to_string(),
            "TOPIC #a :"
        );
    }

    #[test]
    fn splits_on_cr_lf_and_crlf_and_skips_over_long_lines() {
        let mut s = Splitter::new(10);
        let input = b"A\r\nB\nC\rD\r\n\r\n0123456789abc\nE\n";
        s.fill(input.len(), |buf| {
            buf.copy_from_slice(input);
            Ok::<_, ()>(input.len())
        })
        .unwrap();
        let mut got = Vec::new();
        while let Some(piece) = s.next_line() {
            got.push(match piece {
                Piece::Line(l) => String::from_utf8_lossy(l).into_owned(),
                Piece::TooLong => "<too long>".into(),
            });
        }
        assert_eq!(got, ["A", "B", "C", "D", "<too long>", "E"]);
        // An over-long line that arrives in pieces is reported once.
        let mut s = Splitter::new(4);
        for chunk in [&b"xxxxxx"[..], b"yyyy", b"yy\nOK\n"] {
            s.fill(chunk.len(), |buf| {
                buf.copy_from_slice(chunk);
                Ok::<_, ()>(chunk.len())
            })
            .unwrap();
            while let Some(piece) = s.next_line() {
                got.push(format!("{piece:?}"));
            }
        }
        assert_eq!(&got[6..], ["TooLong", "Line([79, 75])"]);
    }

    fn param() -> impl Strategy<Value = String> {
        "[^ :\r\n\0][^ \r\n\0]{0,12}"
    }

    fn line() -> impl Strategy<Value = Line> {
        (
            proptest::collection::vec(
                ("\\+?([a-z0-9.]{1,5}/)?[a-zA-Z0-9-]{1,8}", "\\PC{0,10}"),
                0..4,
            ),
            proptest::option::of("[a-zA-Z][a-zA-Z0-9!@.]{0,15}"),
            "[A-Z]{1,10}|[0-9]{3}",
            proptest::collection::vec(param(), 0..8),
            proptest::option::of("[^\r\n\0]{0,40}"),
            any::<bool>(),
        )
            .prop_map(|(tags, source, command, mut params, last, trailing)| {
                let mut seen = Vec::new();
                let tags = tags
                    .into_iter()
                    .filter(|(k, _)| {
                        let fresh = !seen.contains(k);
                        seen.push(k.clone());
                        fresh
                    })
                    .collect();
                params.extend(last);
                let trailing = trailing && !params.is_empty();
                Line {
                    tags,
                    source,
                    command,
                    params,
                    trailing,
                }
            })
    }

    proptest! {
        #[test]
        fn parse_inverts_write(line in line()) {
            let mut out = Vec::new();
            line.write(&mut out);
            prop_assert!(out.ends_with(b"\r\n"));
            let back = Line::parse(&out[..out.len() - 2]).unwrap();
            let mut want = line.clone();
            want.trailing = line.params.last().is_some_and(|p| line.trailing || needs_colon(p));
            prop_assert_eq!(back, want);
        }

        #[test]
        fn any_bytes_parse_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(line) = Line::parse(&bytes) {
                prop_assert!(line.params.len() <= MAX_PARAMS);
                prop_assert!(!line.command.is_empty());
                // What parsed writes back to something that parses the same.
                let mut out = Vec::new();
                line.write(&mut out);
                let again = Line::parse(&out[..out.len() - 2]);
                prop_assert_eq!(again.map(|l| (l.tags, l.source, l.command, l.params)),
                    Ok((line.tags, line.source, line.command, line.params)));
            }
        }

        #[test]
        fn tag_values_survive_escaping(value in "\\PC{0,30}|[;\\\\ \r\n]{0,10}") {
            let mut out = Vec::new();
            escape_tag_value(&value, &mut out);
            prop_assert!(!out.iter().any(|b| matches!(b, b';' | b' ' | b'\r' | b'\n' | 0)));
            prop_assert_eq!(unescape_tag_value(std::str::from_utf8(&out).unwrap()), value);
        }

        #[test]
        fn splitter_never_yields_line_ends(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..10)) {
            let mut s = Splitter::new(16);
            for chunk in chunks {
                s.fill(chunk.len(), |buf| { buf.copy_from_slice(&chunk); Ok::<_, ()>(chunk.len()) }).unwrap();
                while let Some(piece) = s.next_line() {
                    if let Piece::Line(l) = piece {
                        prop_assert!(!l.is_empty() && l.len() <= 16);
                        prop_assert!(!l.contains(&b'\r') && !l.contains(&b'\n'));
                    }
                }
            }
        }

        /// Flood control counts waiting lines with `complete_lines`: it
        /// must agree with what `next_line` then returns.
        #[test]
        fn complete_lines_predicts_next_line(chunks in proptest::collection::vec(proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'a')], 0..40), 0..10)) {
            let mut s = Splitter::new(8);
            for chunk in chunks {
                s.fill(chunk.len(), |buf| { buf.copy_from_slice(&chunk); Ok::<_, ()>(chunk.len()) }).unwrap();
                let predicted = s.complete_lines(usize::MAX);
                prop_assert_eq!(s.complete_lines(1), predicted.min(1));
                let mut got = 0;
                while s.next_line().is_some() {
                    got += 1;
                }
                prop_assert_eq!(got, predicted);
            }
        }
    }
}
