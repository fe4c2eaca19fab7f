//! Search queries (`search`): words and "quoted phrases", all required,
//! with `from:nick` (the sender) and `in:#room` (or `in:nick`: the direct
//! conversation with that account). Parsed once here; each store turns
//! [`Query::match_text`] into its own full-text search (SQLite FTS5,
//! PostgreSQL `websearch_to_tsquery`), which read it alike.

use banter_protocol::{ErrorCode, Nick, RoomName};

/// Longest query, in bytes.
pub const MAX_QUERY_BYTES: usize = 256;
/// Most words and phrases in one query.
pub const MAX_TERMS: usize = 16;
/// Most results in one page, and how many without `limit`.
pub const MAX_RESULTS: u32 = 50;
pub const DEFAULT_RESULTS: u32 = 20;

/// A parsed query.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    /// Words and phrases (a phrase's words in order), each required.
    pub terms: Vec<String>,
    pub from: Option<Nick>,
    pub room: Option<RoomName>,
    /// The other account of a direct conversation.
    pub with: Option<Nick>,
}

type Refusal = (ErrorCode, String);

fn bad(message: impl Into<String>) -> Refusal {
    (ErrorCode::BadRequest, message.into())
}

impl Query {
    /// Reads `text`, or says what is wrong with it.
    pub fn parse(text: &str) -> Result<Query, Refusal> {
        if text.len() > MAX_QUERY_BYTES {
            return Err((
                ErrorCode::TextTooLong,
                format!("a search is at most {MAX_QUERY_BYTES} bytes"),
            ));
        }
        let mut query = Query::default();
        let mut rest = text.trim();
        while !rest.is_empty() {
            let (token, quoted, after) = match rest.strip_prefix('"') {
                Some(inner) => match inner.find('"') {
                    Some(end) => (&inner[..end], true, &inner[end + 1..]),
                    None => (inner, true, ""),
                },
                None => {
                    let end = rest
                        .find(|c: char| c.is_whitespace() || c == '"')
                        .unwrap_or(rest.len());
                    (&rest[..end], false, &rest[end..])
                }
            };
            rest = after.trim_start();
            if !quoted && let Some((key, value)) = token.split_once(':') {
                match key.to_ascii_lowercase().as_str() {
                    "from" => {
                        let nick = Nick::new(value)
                            .map_err(|_| bad(format!("from: takes a nick, not {value:?}")))?;
                        query.from = Some(nick);
                        continue;
                    }
                    "in" => {
                        match value.strip_prefix('#') {
                            Some(room) => {
                                query.room = Some(RoomName::new(room).map_err(|_| {
                                    bad(format!("in: takes #room or a nick, not {value:?}"))
                                })?)
                            }
                            None => {
                                query.with = Some(Nick::new(value).map_err(|_| {
                                    bad(format!("in: takes #room or a nick, not {value:?}"))
                                })?)
                            }
                        }
                        continue;
                    }
                    _ => {}
                }
            }
            let words: Vec<&str> = token
                .split(|c: char| c.is_whitespace() || c.is_control())
                .filter(|w| !w.is_empty())
                .collect();
            if !words.is_empty() {
                query.terms.push(words.join(" "));
            }
        }
        if query.terms.len() > MAX_TERMS {
            return Err(bad(format!(
                "a search has at most {MAX_TERMS} words and phrases"
            )));
        }
        if query.terms.is_empty() && query.from.is_none() {
            return Err((
                ErrorCode::EmptyText,
                "search for some words, or from:nick".into(),
            ));
        }
        Ok(query)
    }

    /// The terms as a full-text query, each one quoted (a phrase) and all
    /// required: `"word" "two words"`; `None` when there are none.
    pub fn match_text(&self) -> Option<String> {
        if self.terms.is_empty() {
            return None;
        }
        let quoted: Vec<String> = self
            .terms
            .iter()
            .map(|t| format!("\"{}\"", t.replace('"', "")))
            .collect();
        Some(quoted.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_phrases_and_filters() {
        let q = Query::parse(r#"  deploy "release candidate" from:Alice in:#ops "#).unwrap();
        assert_eq!(q.terms, ["deploy", "release candidate"]);
        assert_eq!(q.from, Some(Nick::new("alice").unwrap()));
        assert_eq!(q.room, Some(RoomName::new("ops").unwrap()));
        assert_eq!(
            q.match_text().as_deref(),
            Some(r#""deploy" "release candidate""#)
        );
        let q = Query::parse("in:bob lunch").unwrap();
        assert_eq!(q.with, Some(Nick::new("bob").unwrap()));
        // Only a sender: every message of theirs.
        assert_eq!(Query::parse("from:bob").unwrap().match_text(), None);
        // A colon in a quoted phrase or an unknown key is a word.
        let q = Query::parse(r#""from:bob" note:this"#).unwrap();
        assert_eq!(q.terms, ["from:bob", "note:this"]);
        // An unclosed quote runs to the end.
        assert_eq!(Query::parse(r#"a "b c"#).unwrap().terms, ["a", "b c"]);
    }

    #[test]
    fn bad_queries_say_why() {
        let code = |q: &str| Query::parse(q).unwrap_err().0;
        assert_eq!(code(""), ErrorCode::EmptyText);
        assert_eq!(code("in:#ops"), ErrorCode::EmptyText);
        assert_eq!(code(r#""" "  ""#), ErrorCode::EmptyText);
        assert_eq!(code("from:no!body"), ErrorCode::BadRequest);
        assert_eq!(code("in:#Bad!Room"), ErrorCode::BadRequest);
        assert_eq!(code(&"x ".repeat(17)), ErrorCode::BadRequest);
        assert_eq!(code(&"x".repeat(257)), ErrorCode::TextTooLong);
    }
}
