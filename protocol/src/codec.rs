//! JSON lines: one JSON object per `\n`-terminated line, as spoken on the
//! raw TCP port. A sans-I/O decoder: feed it bytes as they arrive and take
//! complete lines out. `\r\n` is accepted, blank lines are skipped, and a
//! line longer than the limit yields one [`LineTooLong`] and is skipped up
//! to its end, so the stream stays usable.

use serde::Serialize;

/// Default longest line, in bytes, excluding the line ending.
pub const DEFAULT_MAX_LINE: usize = 16 * 1024;

/// A line exceeded the decoder's limit; it has been (or will be) skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line longer than {max} bytes")]
pub struct LineTooLong {
    pub max: usize,
}

/// Splits a byte stream into lines of at most `max_line` bytes.
#[derive(Debug)]
pub struct LineDecoder {
    buf: Vec<u8>,
    /// Start of the first unreturned byte in `buf`.
    start: usize,
    /// Bytes in `buf[start..scanned]` are known to contain no `\n`.
    scanned: usize,
    max_line: usize,
    /// Inside an over-long line that was already reported: drop bytes
    /// until its end.
    discarding: bool,
}

impl LineDecoder {
    pub fn new(max_line: usize) -> Self {
        LineDecoder {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            max_line,
            discarding: false,
        }
    }

    /// Appends received bytes. Call [`next_line`](Self::next_line) until it
    /// returns `None` before feeding more.
    pub fn feed(&mut self, data: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Lets `read` write up to `max` bytes straight into the buffer (no
    /// intermediate copy) and keeps the bytes it reports. Returns what
    /// `read` returned.
    pub fn fill<E>(
        &mut self,
        max: usize,
        read: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        self.feed(&[]);
        let old = self.buf.len();
        self.buf.resize(old + max, 0);
        let result = read(&mut self.buf[old..]);
        let got = *result.as_ref().unwrap_or(&0);
        self.buf.truncate(old + got.min(max));
        result
    }

    /// Bytes held that are not yet part of a returned line.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Releases the buffer's memory when it holds nothing (for idle sessions).
    pub fn shrink_if_idle(&mut self) {
        if self.pending() == 0 {
            self.buf = Vec::new();
            self.start = 0;
            self.scanned = 0;
        }
    }

    /// The next complete line without its line ending, or an error for a
    /// line over the limit, or `None` when more bytes are needed.
    pub fn next_line(&mut self) -> Option<Result<&[u8], LineTooLong>> {
        loop {
            let found = self.buf[self.scanned..].iter().position(|&b| b == b'\n');
            let Some(offset) = found else {
                self.scanned = self.buf.len();
                if self.discarding {
                    self.buf.clear();
                    self.start = 0;
                    self.scanned = 0;
                    return None;
                }
                if self.pending() > self.max_line + 1 {
                    // Only a trailing '\r' may still belong to a legal line.
                    self.discarding = true;
                    self.buf.clear();
                    self.start = 0;
                    self.scanned = 0;
                    return Some(Err(LineTooLong { max: self.max_line }));
                }
                return None;
            };
            let end = self.scanned + offset;
            let begin = self.start;
            self.start = end + 1;
            self.scanned = self.start;
            if self.discarding {
                self.discarding = false;
                continue;
            }
            let mut line = &self.buf[begin..end];
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            if line.len() > self.max_line {
                return Some(Err(LineTooLong { max: self.max_line }));
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            // Re-borrow so the returned slice ties to `self` once.
            let (b, e) = (begin, begin + line.len());
            return Some(Ok(&self.buf[b..e]));
        }
    }
}

/// Encodes a message as one JSON line (with its trailing `\n`).
/// JSON strings escape newlines, so the line never contains another one.
pub fn encode_line<T: Serialize>(message: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec(message).expect("protocol types always serialize");
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lines(dec: &mut LineDecoder) -> Vec<Result<String, LineTooLong>> {
        let mut out = Vec::new();
        while let Some(item) = dec.next_line() {
            out.push(item.map(|l| String::from_utf8(l.to_vec()).unwrap()));
        }
        out
    }

    #[test]
    fn splits_and_tolerates_crlf_and_blank_lines() {
        let mut dec = LineDecoder::new(100);
        dec.feed(b"one\r\ntwo\n\n  \r\nthr");
        assert_eq!(lines(&mut dec), vec![Ok("one".into()), Ok("two".into())]);
        dec.feed(b"ee\n");
        assert_eq!(lines(&mut dec), vec![Ok("three".into())]);
        assert_eq!(dec.pending(), 0);
    }

    #[test]
    fn overlong_line_is_reported_once_and_skipped() {
        let mut dec = LineDecoder::new(8);
        dec.feed(b"ok\n0123456789");
        assert_eq!(
            lines(&mut dec),
            vec![Ok("ok".into()), Err(LineTooLong { max: 8 })]
        );
        dec.feed(b"more garbage");
        assert_eq!(lines(&mut dec), vec![]);
        dec.feed(b" end\nnext\n");
        assert_eq!(lines(&mut dec), vec![Ok("next".into())]);
        // A long line that arrives whole is reported too.
        dec.feed(b"0123456789\nafter\n");
        assert_eq!(
            lines(&mut dec),
            vec![Err(LineTooLong { max: 8 }), Ok("after".into())]
        );
        // Exactly at the limit is fine, with or without CR.
        dec.feed(b"01234567\r\n01234567\n");
        assert_eq!(
            lines(&mut dec),
            vec![Ok("01234567".into()), Ok("01234567".into())]
        );
    }

    #[test]
    fn fill_reads_in_place() {
        let mut dec = LineDecoder::new(100);
        let n = dec
            .fill(16, |buf| {
                buf[..4].copy_from_slice(
                    b"ab
c",
                );
                Ok::<_, ()>(4)
            })
            .unwrap();
        assert_eq!(n, 4);
        assert_eq!(lines(&mut dec), vec![Ok("ab".into())]);
        assert_eq!(dec.pending(), 1);
        assert!(dec.fill(16, |_| Err::<usize, _>("boom")).is_err());
        assert_eq!(dec.pending(), 1, "a failed read adds nothing");
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_without_newlines() {
        let mut dec = LineDecoder::new(1024);
        for _ in 0..1000 {
            dec.feed(&[b'x'; 4096]);
            while dec.next_line().is_some() {}
            assert!(dec.pending() <= 1024 + 4096);
        }
    }

    proptest! {
        /// However the stream is chopped, the same lines come out.
        #[test]
        fn chunking_does_not_matter(
            content in proptest::collection::vec("[a-z{}\":]{0,20}", 0..20),
            cuts in proptest::collection::vec(0usize..400, 0..10),
        ) {
            let stream: Vec<u8> = content.iter().flat_map(|l| format!("{l}\r\n").into_bytes()).collect();
            let expected: Vec<_> = content.iter().filter(|l| !l.is_empty()).cloned().map(Ok).collect();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
            cuts.sort();
            let mut dec = LineDecoder::new(64);
            let mut got = Vec::new();
            let mut prev = 0;
            for cut in cuts.into_iter().chain([stream.len()]) {
                dec.feed(&stream[prev..cut]);
                prev = cut;
                got.extend(lines(&mut dec));
            }
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn arbitrary_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..20)) {
            let mut dec = LineDecoder::new(16);
            for c in chunks {
                dec.feed(&c);
                while let Some(item) = dec.next_line() {
                    if let Ok(line) = item { prop_assert!(line.len() <= 16); }
                }
            }
        }
    }
}
