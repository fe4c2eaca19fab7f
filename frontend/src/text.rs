//! How message text is shown: `/me` actions and links found in plain
//! text (IRC formatting codes are stripped by the protocol crate's
//! `strip_formatting`). Everything here returns plain strings; the view
//! turns them into text nodes and `<a>` elements, never into HTML.

use banter_protocol::ACTION_PREFIX;

/// `/me waves` travels as the text `"/me waves"` on every transport (IRC
/// clients see a CTCP ACTION).
pub fn encode_action(action: &str) -> String {
    format!("{ACTION_PREFIX}{action}")
}

/// The action of an action text, if it is one.
pub fn decode_action(text: &str) -> Option<&str> {
    text.strip_prefix(ACTION_PREFIX)
}

/// A piece of message text: words, or a link to make clickable.
#[derive(Clone, Debug, PartialEq)]
pub enum Segment<'a> {
    Text(&'a str),
    Link(&'a str),
}

/// `banter_protocol::mentions`, the one rule for what mentions a user
/// (its nick or a highlight word as a whole word, any case), with the
/// lowercasing done by the browser (`toLowerCase`, the same Unicode
/// mapping): Rust's case tables would cost the download budget. Tested
/// against the protocol's function.
pub fn mentions(text: &str, nick: &str, highlights: &[String]) -> bool {
    banter_protocol::mentions_lowered(text, nick, highlights, lower)
}

#[cfg(target_arch = "wasm32")]
fn lower(s: &str) -> String {
    js_sys::JsString::from(s).to_lower_case().into()
}

#[cfg(not(target_arch = "wasm32"))]
fn lower(s: &str) -> String {
    s.to_lowercase()
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
        assert_eq!(wire, "/me waves");
        assert_eq!(decode_action(&wire), Some("waves"));
        assert_eq!(decode_action("waves"), None);
        assert_eq!(decode_action("/meh"), None);
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

    #[test]
    fn mentions_follow_the_protocols_rule() {
        let words = vec!["deploy".to_string(), "Ünïcode".to_string()];
        for text in [
            "hey alice",
            "ALICE!",
            "alicex",
            "xalice",
            "alice_",
            "[alice]",
            "@alice:",
            "Deploy now",
            "redeploy",
            "ÜNÏCODE rocks",
            "ünïcodes",
            "",
            "ali ce",
        ] {
            assert_eq!(
                mentions(text, "alice", &words),
                banter_protocol::mentions(text, "alice", &words),
                "{text}"
            );
        }
    }
}
