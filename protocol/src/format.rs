//! IRC formatting codes in message text. Texts keep them as sent, so IRC
//! clients show colours and bold; [`strip_formatting`] gives the plain
//! text that a web page shows.

/// Bold, italics, underline, strikethrough, monospace, reverse, reset.
const TOGGLES: &[char] = &['\x02', '\x1d', '\x1f', '\x1e', '\x11', '\x16', '\x0f'];
const COLOR: char = '\x03';
const HEX_COLOR: char = '\x04';

/// `text` without IRC formatting codes: toggles vanish, and colour codes
/// (`\x03` with up to two digits, optionally `,` and two more; `\x04` with
/// six hex digits, likewise) vanish together with their numbers.
pub fn strip_formatting(text: &str) -> String {
    if !text.contains(|c: char| c == COLOR || c == HEX_COLOR || TOGGLES.contains(&c)) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if TOGGLES.contains(&c) {
            continue;
        }
        let (max, digit): (usize, fn(char) -> bool) = match c {
            COLOR => (2, |c| c.is_ascii_digit()),
            HEX_COLOR => (6, |c| c.is_ascii_hexdigit()),
            _ => {
                out.push(c);
                continue;
            }
        };
        let take = |chars: &mut std::iter::Peekable<std::str::Chars>| {
            let mut n = 0;
            while n < max && chars.peek().is_some_and(|&c| digit(c)) {
                chars.next();
                n += 1;
            }
            n
        };
        if take(&mut chars) > 0 && chars.peek() == Some(&',') {
            // A comma starts a background colour only if digits follow.
            let mut ahead = chars.clone();
            ahead.next();
            if ahead.peek().is_some_and(|&c| digit(c)) {
                chars.next();
                take(&mut chars);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn codes_vanish_and_text_stays() {
        assert_eq!(strip_formatting("plain"), "plain");
        assert_eq!(
            strip_formatting("\x02bold\x02 and \x1ditalic\x0f"),
            "bold and italic"
        );
        assert_eq!(
            strip_formatting("\x0304red\x03 \x034,12on blue"),
            "red on blue"
        );
        assert_eq!(strip_formatting("\x03,5 comma stays"), ",5 comma stays");
        assert_eq!(strip_formatting("\x0312,x"), ",x");
        assert_eq!(strip_formatting("\x04FF0000hex\x04"), "hex");
        assert_eq!(strip_formatting("\x03123"), "3", "two digits at most");
    }

    proptest! {
        #[test]
        fn text_without_codes_is_unchanged(s in "[^\\x02\\x03\\x04\\x0f\\x11\\x16\\x1d\\x1e\\x1f]{0,50}") {
            prop_assert_eq!(strip_formatting(&s), s);
        }

        #[test]
        fn never_leaves_a_code(s in "\\PC{0,40}", codes in proptest::collection::vec(0usize..9, 0..5)) {
            let all = ['\x02', '\x03', '\x04', '\x0f', '\x11', '\x16', '\x1d', '\x1e', '\x1f'];
            let mut text = s;
            for (i, c) in codes.into_iter().enumerate() {
                let at = text.char_indices().nth(i * 3).map_or(text.len(), |(p, _)| p);
                text.insert(at, all[c]);
            }
            let plain = strip_formatting(&text);
            prop_assert!(!plain.contains(&all[..]));
        }
    }
}
