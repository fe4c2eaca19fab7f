//! How message text is shown: `/me` actions (CTCP ACTION, as IRC sends
//! them), IRC formatting codes stripped for display, and links found in
//! plain text. Everything here returns plain strings; the view turns them
//! into text nodes and `<a>` elements, never into HTML.

/// `\x01ACTION waves\x01`: how `/me` travels, on every transport.
pub fn encode_action(action: &str) -> String {
    format!("\u{1}ACTION {action}\u{1}")
}

/// The action of a CTCP ACTION text, if it is one.
pub fn decode_action(text: &str) -> Option<&str> {
    let inner = text.strip_prefix("\u{1}ACTION")?;
    let inner = inner.strip_suffix('\u{1}').unwrap_or(inner);
    Some(inner.strip_prefix(' ').unwrap_or(inner))
}

/// Removes IRC formatting codes (bold, colours, italics, reset...) so the
/// web shows the words plainly; IRC clients get them untouched.
pub fn strip_formatting(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\u{2}' | '\u{f}' | '\u{11}' | '\u{16}' | '\u{1d}' | '\u{1e}' | '\u{1f}' => {}
            '\u{3}' => {
                // ^C[fg[,bg]] with one or two digits each.
                skip_digits(&mut chars);
                if chars.peek() == Some(&',') {
                    let mut ahead = chars.clone();
                    ahead.next();
                    if ahead.peek().is_some_and(char::is_ascii_digit) {
                        chars.next();
                        skip_digits(&mut chars);
                    }
                }
            }
            '\u{4}' => {
                // ^D followed by a six-digit hex colour, optionally ,bg.
                for _ in 0..6 {
                    chars.next_if(char::is_ascii_hexdigit);
                }
            }
            '\u{1}' => {}
            ch => out.push(ch),
        }
    }
    out
}

fn skip_digits(chars: &mut std::iter::Peekable<std::str::Chars>) {
    for _ in 0..2 {
        chars.next_if(char::is_ascii_digit);
    }
}

/// A piece of message text: words, or a link to make clickable.
#[derive(Clone, Debug, PartialEq)]
pub enum Segment<'a> {
    Text(&'a str),
    Link(&'a str),
}

/// Splits text into plain parts and `http(s)://` links. Trailing
/// punctuation (`.`, `,`, `)`...) stays outside the link. Only http and
/// https become links, so no `javascript:` URL is ever clickable.
pub fn linkify(text: &str) -> Vec<Segment<'_>> {
    let mut segments = Vec::new();
    let mut rest = text;
    while let Some(start) = find_link_start(rest) {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
            .unwrap_or(tail.len());
        let mut link = &tail[..end];
        while let Some(last) = link.chars().last() {
            let unbalanced_paren =
                last == ')' && link.matches('(').count() < link.matches(')').count();
            if matches!(last, '.' | ',' | ';' | ':' | '!' | '?' | '\'' | ']' | '}')
                || unbalanced_paren
            {
                link = &link[..link.len() - last.len_utf8()];
            } else {
                break;
            }
        }
        let scheme_only = link.ends_with("://");
        if start > 0 {
            segments.push(Segment::Text(&rest[..start]));
        }
        if scheme_only {
            segments.push(Segment::Text(link));
        } else {
            segments.push(Segment::Link(link));
        }
        rest = &tail[link.len()..];
    }
    if !rest.is_empty() {
        segments.push(Segment::Text(rest));
    }
    segments
}

fn find_link_start(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find("http") {
        let at = from + pos;
        let after = &lower[at..];
        let boundary = at == 0 || !lower.as_bytes()[at - 1].is_ascii_alphanumeric();
        if boundary && (after.starts_with("http://") || after.starts_with("https://")) {
            return Some(at);
        }
        from = at + 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use Segment::{Link, Text};

    #[test]
    fn actions_round_trip() {
        let wire = encode_action("waves");
        assert_eq!(wire, "\u{1}ACTION waves\u{1}");
        assert_eq!(decode_action(&wire), Some("waves"));
        assert_eq!(decode_action("\u{1}ACTION waves"), Some("waves"));
        assert_eq!(decode_action("waves"), None);
    }

    #[test]
    fn formatting_is_stripped() {
        assert_eq!(strip_formatting("\u{2}bold\u{2} plain"), "bold plain");
        assert_eq!(strip_formatting("\u{3}4,12red\u{3} x"), "red x");
        assert_eq!(strip_formatting("\u{3}04red"), "red");
        assert_eq!(
            strip_formatting("\u{3}4,x"),
            ",x",
            "a comma without a digit stays"
        );
        assert_eq!(strip_formatting("\u{1d}it\u{f}"), "it");
        assert_eq!(strip_formatting("\u{4}ff00aahex"), "hex");
        assert_eq!(strip_formatting("5 < 6 & ok"), "5 < 6 & ok");
    }

    #[test]
    fn links_are_found_and_trimmed() {
        assert_eq!(
            linkify("see https://example.com/a?b=1."),
            vec![Text("see "), Link("https://example.com/a?b=1"), Text(".")]
        );
        assert_eq!(
            linkify("(http://x.org/wiki/Foo_(bar)) ok"),
            vec![Text("("), Link("http://x.org/wiki/Foo_(bar)"), Text(") ok")]
        );
        assert_eq!(linkify("no links here"), vec![Text("no links here")]);
        assert_eq!(
            linkify("javascript:alert(1) xhttp://no"),
            vec![Text("javascript:alert(1) xhttp://no")]
        );
        assert_eq!(
            linkify("http:// alone"),
            vec![Text("http://"), Text(" alone")]
        );
        assert_eq!(
            linkify("<img src=http://e.x/i.png>"),
            vec![Text("<img src="), Link("http://e.x/i.png"), Text(">")]
        );
    }
}
