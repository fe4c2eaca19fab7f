//! `labeled-response`: a command sent with a `label` tag gets its answer
//! marked with it. One line carries the tag; several come in a
//! `labeled-response` batch whose start carries it; none is an `ACK`.
//!
//! A command's answer is what its first request's first reply renders
//! (the router answers asynchronously, by ref), or the lines made at once
//! for a command that asks the router nothing. A command that makes
//! several requests (`JOIN #a,#b`) has only its first one's reply
//! labeled.

use std::cell::Cell;

use super::Client;
use super::caps::LABELED_RESPONSE;
use super::line::{Line, escape_tag_value};
use super::numeric::server;

/// The label of the line being handled, until its first request or
/// lines take it (a `Cell`: lines are made through `&self`).
#[derive(Default)]
pub(super) struct Pending(Cell<Option<Box<str>>>);

impl Pending {
    pub fn set(&self, label: Option<Box<str>>) {
        self.0.set(label);
    }

    pub fn take(&self) -> Option<Box<str>> {
        self.0.take()
    }

    pub fn is_set(&mut self) -> bool {
        self.0.get_mut().is_some()
    }
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pending")
    }
}

/// Longest label kept, in bytes (the spec suggests at most 64); a longer
/// one is ignored.
pub const MAX_LABEL: usize = 64;

impl Client {
    /// The label of an incoming line, if the client asked for labels.
    pub(super) fn label_of(&self, line: &Line) -> Option<Box<str>> {
        if !self.caps.has(LABELED_RESPONSE) {
            return None;
        }
        line.tags
            .iter()
            .find(|(k, _)| k == "label")
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty() && v.len() <= MAX_LABEL)
            .map(Into::into)
    }
}

/// Appends `lines`, the whole answer to the command labeled `label` (in a
/// batch only if the client takes batches). Labeled batches are never
/// nested in one another, so one reference does for all.
pub(super) fn labeled(label: &str, lines: &[u8], batches: bool, out: &mut Vec<u8>) {
    {
        let mut tag = b"label=".to_vec();
        escape_tag_value(label, &mut tag);
        let count = lines
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        match count {
            0 => {
                out.push(b'@');
                out.extend_from_slice(&tag);
                out.push(b' ');
                Line::new(Some(server()), "ACK", &[]).write(out);
            }
            1 => with_tag(lines, &tag, out),
            _ if !batches => out.extend_from_slice(lines),
            // One batch (a draft/multiline message) carries the label on
            // its opening line, as the multiline spec says.
            _ if one_batch(lines) => {
                let first = lines
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(lines.len(), |i| i + 1);
                with_tag(&lines[..first], &tag, out);
                out.extend_from_slice(&lines[first..]);
            }
            _ => {
                let id = "labeled";
                out.push(b'@');
                out.extend_from_slice(&tag);
                out.push(b' ');
                let start = format!("+{id}");
                Line::new(Some(server()), "BATCH", &[&start, "labeled-response"]).write(out);
                let batch = format!("batch={id}");
                for line in lines.split_inclusive(|&b| b == b'\n') {
                    // A line of a batch inside the answer is in that one.
                    if in_batch(line) {
                        out.extend_from_slice(line);
                    } else {
                        with_tag(line, batch.as_bytes(), out);
                    }
                }
                Line::new(Some(server()), "BATCH", &[&format!("-{id}")]).write(out);
            }
        }
    }
}

/// The batch type that carries a label itself.
const MULTILINE: &str = "draft/multiline";

/// Whether `lines` are one whole `draft/multiline` batch: it opens first,
/// closes last. (Other batches, such as a chathistory page, go inside a
/// `labeled-response` batch.)
fn one_batch(lines: &[u8]) -> bool {
    let mut all = lines
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty());
    let (Some(first), Some(last)) = (all.next(), all.next_back()) else {
        return false;
    };
    let reference = |raw: &[u8], sign: char| {
        let line = Line::parse(raw).ok()?;
        let param = line.params.first()?;
        let multiline = sign == '-' || line.params.get(1).map(String::as_str) == Some(MULTILINE);
        (line.command == "BATCH" && param.starts_with(sign) && multiline)
            .then(|| param[1..].to_string())
    };
    matches!((reference(first, '+'), reference(last, '-')), (Some(a), Some(b)) if a == b)
}

/// Whether `line`'s tags put it in a batch.
fn in_batch(line: &[u8]) -> bool {
    let Some(tags) = line.strip_prefix(b"@") else {
        return false;
    };
    let tags = tags.split(|&b| b == b' ').next().unwrap_or_default();
    tags.split(|&b| b == b';').any(|t| t.starts_with(b"batch="))
}

/// Appends `line` (one, CRLF-terminated) with `tag` (`key=value`, escaped)
/// added to its tags.
fn with_tag(line: &[u8], tag: &[u8], out: &mut Vec<u8>) {
    out.push(b'@');
    out.extend_from_slice(tag);
    match line.strip_prefix(b"@") {
        Some(rest) => {
            out.push(b';');
            out.extend_from_slice(rest);
        }
        None => {
            out.push(b' ');
            out.extend_from_slice(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_joins_the_tags_a_line_has() {
        let mut out = Vec::new();
        with_tag(b"@time=x :a PRIVMSG b :c\r\n", b"label=1", &mut out);
        assert_eq!(out, b"@label=1;time=x :a PRIVMSG b :c\r\n");
        out.clear();
        with_tag(b":a PONG a :t\r\n", b"label=1", &mut out);
        assert_eq!(out, b"@label=1 :a PONG a :t\r\n");
    }
}
