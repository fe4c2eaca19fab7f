//! The conversation: messages grouped by sender, day separators, local
//! times, clickable links, and scrolling that follows new messages only
//! while the reader is at the bottom (otherwise a "new messages" button).
//! Each message carries its reply quote, reactions and actions (Reply,
//! React, Edit, Delete), shown on hover and whenever focus is inside it:
//! arrow keys move the focus from message to message, Tab reaches its
//! actions. Their buttons are constant markup naming what they do
//! (`data-a`); one click handler on the list reads it (code, not markup,
//! is what the download budget pays for). Under the list, who is typing.

use std::rc::Rc;

use banter_protocol::Nick;
use wasm_bindgen::JsCast;
use web_sys::{Element, HtmlElement};
use yew::prelude::*;
use yew::virtual_dom::Key;

use super::{Ctx, raw};
use crate::browser;
use crate::chat::{Line, Quote, View, typing_sentence};
use crate::text::{self, Segment};

macro_rules! actions {
    ($($button:ident)*) => { actions!($($button)*, "false") };
    ($($button:ident)*, $open:literal) => {
        concat!(
            r#"<div class="actions"><button data-a="reply">Reply</button>"#,
            $(actions!(@ $button, $open),)*
            "</div>"
        )
    };
    (@ REACT, $open:literal) => { concat!(r#"<button data-a="react" aria-expanded=""#, $open, r#"">React</button>"#) };
    (@ EDIT, $open:literal) => { r#"<button data-a="edit">Edit</button>"# };
    (@ DELETE, $open:literal) => { r#"<button data-a="delete">Delete</button>"# };
}

macro_rules! pick {
    ($emoji:literal) => {
        concat!(
            r#"<button data-a="pick" value=""#,
            $emoji,
            r#"">"#,
            $emoji,
            "</button>"
        )
    };
}

/// A message's actions: what anyone may do, then what a room's operators
/// may do too, then its author; each with the picker closed and open.
const ACTIONS: [&str; 6] = [
    actions!(REACT),
    actions!(REACT DELETE),
    actions!(REACT EDIT DELETE),
    actions!(REACT, "true"),
    actions!(REACT DELETE, "true"),
    actions!(REACT EDIT DELETE, "true"),
];

/// The reaction picker: common emoji, one click each.
const PICKER: &str = concat!(
    r#"<div class="picker" role="group" aria-label="Add a reaction">"#,
    pick!("👍"),
    pick!("❤️"),
    pick!("😂"),
    pick!("🎉"),
    pick!("😮"),
    pick!("😢"),
    pick!("🙏"),
    pick!("👀"),
    "</div>"
);

/// Consecutive messages of one sender within this long share a header.
const GROUP_MS: u64 = 5 * 60 * 1000;
/// How near the bottom (in pixels) still counts as "at the bottom".
const STICKY_PX: i32 = 48;
/// Scrolled this near the top, older messages are fetched.
const LOAD_OLDER_PX: i32 = 120;

#[component]
pub fn MessageList() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let list = use_node_ref();
    let at_bottom = use_mut_ref(|| true);
    let unseen = use_state(|| false);
    let chat = ctx.chat.borrow();
    let view = chat.view.clone();
    let lines: Vec<Rc<Line>> = chat
        .current()
        .map(|c| c.lines.iter().cloned().collect())
        .unwrap_or_default();
    let count = lines.len();
    let last_ts = lines.last().map_or(0, |l| l.ts());
    let first_ts = lines.first().map_or(0, |l| l.ts());
    let (more_before, loading_older) = match &view {
        Some(View::Room(room)) => chat
            .rooms
            .get(room)
            .map_or((false, false), |r| (r.more_before, r.loading_older)),
        _ => (false, false),
    };
    // The scroll height before this render, to keep the reader's place
    // when older messages are put above.
    let last_height = use_mut_ref(|| (0i32, 0u64));
    // Every message button's click, read from its `data-a` (and a
    // reaction's `value`).
    let onclick = {
        let ctx = ctx.clone();
        Callback::from(move |e: MouseEvent| {
            let Some(button) = e
                .target_dyn_into::<Element>()
                .and_then(|t| t.closest("[data-a]").ok().flatten())
            else {
                return;
            };
            let Some(msg) = button.closest(".msg").ok().flatten() else {
                return;
            };
            let mid = msg.id();
            let Some(Ok(id)) = mid.strip_prefix('m').map(str::parse) else {
                return;
            };
            let what = button.get_attribute("data-a").unwrap_or_default();
            let value = button.get_attribute("value").unwrap_or_default();
            if what == "delete"
                && !browser::confirm(
                    "Delete this message? Everyone will see \"message deleted\" in its place.",
                )
            {
                return;
            }
            ctx.act(|c| c.message_action(&what, id, &value, browser::now_ms()));
            if what == "pick" {
                // The picker is gone: the focus stays on the message.
                browser::focus(&mid);
            }
        })
    };
    let jump_to = chat.jump;

    // A new conversation starts at its newest message.
    {
        let at_bottom = at_bottom.clone();
        let unseen = unseen.clone();
        use_effect_with(view.clone(), move |_| {
            *at_bottom.borrow_mut() = true;
            unseen.set(false);
        });
    }
    {
        let list = list.clone();
        let at_bottom = at_bottom.clone();
        let unseen = unseen.clone();
        let last_height = last_height.clone();
        use_effect_with(
            (view.clone(), count, first_ts, last_ts),
            move |(_, _, first_ts, _)| {
                if let Some(el) = list.cast::<HtmlElement>() {
                    let (height, old_first) = *last_height.borrow();
                    let prepended = old_first != 0 && *first_ts < old_first;
                    if prepended {
                        // Older messages went in above: stay on what was read.
                        el.set_scroll_top(el.scroll_top() + el.scroll_height() - height);
                    } else if *at_bottom.borrow() {
                        el.set_scroll_top(el.scroll_height());
                    } else if count > 0 {
                        unseen.set(true);
                    }
                    *last_height.borrow_mut() = (el.scroll_height(), *first_ts);
                }
            },
        );
    }
    let load_older = {
        let ctx = ctx.clone();
        Callback::from(move |_: ()| ctx.act(|chat| chat.load_older()))
    };
    let onscroll = {
        let ctx = ctx.clone();
        let list = list.clone();
        let at_bottom = at_bottom.clone();
        let unseen = unseen.clone();
        let load_older = load_older.clone();
        Callback::from(move |_: Event| {
            if let Some(el) = list.cast::<HtmlElement>() {
                let bottom = el.scroll_height() - el.scroll_top() - el.client_height() < STICKY_PX;
                let was = at_bottom.replace(bottom);
                if bottom != was {
                    // The newest message came on screen (or left it).
                    ctx.act(|chat| chat.set_reading(bottom));
                }
                if bottom && *unseen {
                    unseen.set(false);
                }
                if el.scroll_top() < LOAD_OLDER_PX && more_before && !loading_older {
                    load_older.emit(());
                }
            }
        })
    };
    // A quote was clicked: its original takes the focus (which scrolls
    // it into view), after any older page went in above.
    use_effect_with(jump_to, |jump| {
        if let Some((id, _)) = jump {
            browser::focus(&format!("m{id}"));
        }
    });
    let picking = chat.picking;
    let onkeydown = {
        let list = list.clone();
        let ctx = ctx.clone();
        Callback::from(move |e: KeyboardEvent| {
            let up = match e.key().as_str() {
                "ArrowUp" => true,
                "ArrowDown" => false,
                "Escape" => {
                    if let Some(id) = picking {
                        ctx.act(|c| c.message_action("react", id, "", 0));
                        browser::focus(&format!("m{id}"));
                    }
                    return;
                }
                _ => return,
            };
            let (Some(list), Some(active)) = (
                list.cast::<Element>(),
                document().and_then(|d| d.active_element()),
            ) else {
                return;
            };
            let step = |el: &Element| {
                if up {
                    el.previous_element_sibling()
                } else {
                    el.next_element_sibling()
                }
            };
            // From the list itself, up goes to the newest message.
            let mut next = if active == list {
                if !up {
                    return;
                }
                list.last_element_child()
            } else {
                match active.closest(".msg") {
                    Ok(Some(msg)) => step(&msg),
                    _ => return,
                }
            };
            while let Some(el) = next {
                if el.matches(".msg").unwrap_or(false) {
                    e.prevent_default();
                    let _ = el.unchecked_into::<HtmlElement>().focus();
                    return;
                }
                next = step(&el);
            }
        })
    };
    let jump = {
        let ctx = ctx.clone();
        let list = list.clone();
        let unseen = unseen.clone();
        let at_bottom = at_bottom.clone();
        Callback::from(move |_: MouseEvent| {
            if let Some(el) = list.cast::<HtmlElement>() {
                el.set_scroll_top(el.scroll_height());
            }
            *at_bottom.borrow_mut() = true;
            unseen.set(false);
            ctx.act(|chat| chat.set_reading(true));
        })
    };

    let me = chat.nick.clone();
    let reactor = chat.me();
    let op = match &view {
        Some(View::Room(room)) => chat.is_operator(room),
        _ => false,
    };
    let conv = chat.current();
    let highlight = jump_to.map(|(id, _)| id);
    let offset = browser::utc_offset_ms();
    let day_of = |ts: u64| (ts as i64 + offset).div_euclid(86_400_000);
    let mut items = Vec::with_capacity(count + 4);
    let mut prev: Option<&Line> = None;
    for line in &lines {
        let ts = line.ts();
        let day = day_of(ts);
        let new_day = prev.is_none_or(|p| day_of(p.ts()) != day);
        if new_day {
            items.push(html! {
                <div class="day" role="separator" key={format!("day-{day}")}><span>{browser::local_day(ts)}</span></div>
            });
        }
        let grouped = !new_day
            && matches!((prev, line.as_ref()), (
                Some(Line::Chat { from: a, ts: t0, text: prev_text, .. }),
                Line::Chat { from: b, text: this_text, reply_to: None, .. },
            ) if a == b && ts.saturating_sub(*t0) < GROUP_MS
                && text::decode_action(prev_text).is_none()
                && text::decode_action(this_text).is_none());
        let mut props = Props {
            own: false,
            quote: None,
            mine: 0,
            highlight: false,
            mention: false,
            actions: 0,
        };
        // A message keeps its key (its id) when it changes, so the focus
        // stays on it; an event line is keyed by its address.
        let key = match line.as_ref() {
            Line::Chat {
                id,
                from,
                reply_to,
                reactions,
                text,
                deleted,
                ..
            } => {
                props.own = me.as_ref() == Some(from);
                props.mention = !props.own && !deleted && chat.names_me(text);
                props.quote = reply_to.map(|r| conv.map_or(Quote::Unknown, |c| c.quote(r)));
                props.highlight = highlight == Some(*id);
                props.actions = match (props.own, op) {
                    (true, _) => 2,
                    (false, true) => 1,
                    (false, false) => 0,
                } + 3 * usize::from(picking == Some(*id));
                for (i, r) in reactions.iter().enumerate().take(64) {
                    if r.nicks.iter().any(|n| Some(n) == reactor) {
                        props.mine |= 1 << i;
                    }
                }
                Key::from(format!("m{id}"))
            }
            Line::Event { .. } => Key::from(Rc::as_ptr(line) as usize),
        };
        items.push(html! { <MessageLine {key} line={line.clone()} {grouped} {props} /> });
        prev = Some(line);
    }
    let typing = conv
        .map(|c| typing_sentence(c, browser::now_ms()))
        .unwrap_or_default();
    let empty = lines.is_empty();
    let placeholder = match &view {
        None => {
            "Join a room to start chatting: type a name on the left, or /join lobby.".to_string()
        }
        Some(View::Room(room)) => format!("This is the start of #{room}. Say hello!"),
        Some(View::Direct(nick)) => {
            format!("Your direct conversation with {nick}. Only the two of you see it.")
        }
    };
    html! {
        <div class="messages-wrap">
            <div class="messages" ref={list} {onscroll} {onkeydown} {onclick} role="log" aria-live="polite"
                aria-label={view.as_ref().map(|v| format!("Messages in {}", v.title())).unwrap_or_else(|| "Messages".into())}
                tabindex="0">
                if empty {
                    <p class="empty">{placeholder}</p>
                } else if more_before {
                    <button class="older link" onclick={load_older.reform(|_: MouseEvent| ())} disabled={loading_older}>
                        { if loading_older { "Loading earlier messages…" } else { "Load earlier messages" } }
                    </button>
                } else if let Some(View::Room(room)) = &view {
                    <p class="beginning">{format!("This is the beginning of #{room}.")}</p>
                }
                { for items }
            </div>
            if *unseen {
                <button class="new-messages" onclick={jump}>{"New messages ↓"}</button>
            }
            <p class="typing" aria-live="polite">{typing}</p>
        </div>
    }
}

fn document() -> Option<web_sys::Document> {
    web_sys::window()?.document()
}

/// What a line shows beyond its message, worked out by the list.
#[derive(Clone, PartialEq)]
struct Props {
    /// Ours (underlined; it may be edited).
    own: bool,
    /// The quote of a reply.
    quote: Option<Quote>,
    /// Bit `i`: we left the message's reaction `i`.
    mine: u64,
    /// A quote's click brought it here.
    highlight: bool,
    /// It names us (our nick or a highlight word).
    mention: bool,
    /// Which of [`ACTIONS`] it offers (odd: the picker is open).
    actions: usize,
}

#[derive(Properties)]
struct LineProps {
    line: Rc<Line>,
    grouped: bool,
    props: Props,
}

impl PartialEq for LineProps {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.line, &other.line)
            && self.grouped == other.grouped
            && self.props == other.props
    }
}

/// One line; drawn once, then skipped by every redraw that leaves it alone.
#[component]
fn MessageLine(props: &LineProps) -> Html {
    let LineProps {
        line,
        grouped,
        props:
            Props {
                own,
                quote,
                mine,
                highlight,
                mention,
                actions,
            },
    } = props;
    let (id, from, body, ts, edited, deleted, reactions) = match line.as_ref() {
        Line::Event { text, ts } => {
            return html! {
                <div class="event">
                    <span>{text.clone()}</span>
                    <time datetime={ts.to_string()}>{browser::local_time(*ts)}</time>
                </div>
            };
        }
        Line::Chat {
            id,
            from,
            text,
            ts,
            edited,
            deleted,
            reactions,
            ..
        } => (*id, from, text, *ts, *edited, *deleted, reactions),
    };
    let action = text::decode_action(body).filter(|_| !deleted);
    let time = html! { <time datetime={ts.to_string()}>{browser::local_time(ts)}</time> };
    html! {
        <div class={classes!("msg", (*grouped || action.is_some()).then_some("cont"), own.then_some("own"),
                action.is_some().then_some("action"), highlight.then_some("highlight"),
                mention.then_some("mention"))}
            id={format!("m{id}")} tabindex="-1">
            if let Some(quote) = quote {
                <button class="quote" data-a="show" title="Show the original message">
                    <span class="visually-hidden">{"In reply to "}</span>
                    {match quote {
                        Quote::Found(nick, text) => html! { <><b>{nick.to_string()}</b>{" "}{text.clone()}</> },
                        Quote::Deleted => html! { <i>{"message deleted"}</i> },
                        Quote::Unknown => html! { {"an earlier message"} },
                    }}
                </button>
            }
            if !*grouped && action.is_none() {
                <div class="meta">
                    <b class={classes!("from", nick_class(from))}>{from.to_string()}</b>
                    {time.clone()}
                </div>
            }
            <div class="body">
                if let Some(action) = action {
                    {"* "}<b class={nick_class(from)}>{from.to_string()}</b>{" "}{rich_text(action)}
                    {" "}{time}
                } else if deleted {
                    <i class="gone">{"message deleted"}</i>
                } else {
                    {rich_text(body)}
                }
                if edited {
                    <span class="edited">{" (edited)"}</span>
                }
            </div>
            if !reactions.is_empty() {
                <div class="reactions">
                    { for reactions.iter().enumerate().map(|(i, r)| {
                        let label = format!("{} by {}", r.reaction, join_nicks(&r.nicks));
                        let pressed = i < 64 && mine & (1 << i) != 0;
                        html! {
                            <button class="reaction" data-a="pick" value={r.reaction.clone()}
                                aria-pressed={pressed.to_string()} aria-label={label.clone()} title={label}>
                                {r.reaction.clone()}<span>{r.nicks.len()}</span>
                            </button>
                        }
                    }) }
                </div>
            }
            if !deleted {
                {raw(ACTIONS[*actions])}
                if *actions > 2 {
                    {raw(PICKER)}
                }
            }
        </div>
    }
}

/// "alice", "alice, bob".
fn join_nicks(nicks: &[Nick]) -> String {
    let mut out = String::new();
    for n in nicks {
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(n.as_str());
    }
    out
}

/// Text nodes and safe links; never HTML.
pub(super) fn rich_text(raw: &str) -> Html {
    let plain = banter_protocol::strip_formatting(raw);
    text::linkify(&plain)
        .into_iter()
        .map(|segment| match segment {
            Segment::Text(t) => html! { {t.to_string()} },
            Segment::Link(url) => html! {
                <a href={url.to_string()} target="_blank" rel="noopener noreferrer">{url.to_string()}</a>
            },
        })
        .collect::<Html>()
}

/// One of eight colours, the same for a nick on every screen.
fn nick_class(nick: &Nick) -> String {
    let hash = nick.as_str().bytes().fold(5381u32, |h, b| {
        h.wrapping_mul(33) ^ u32::from(b.to_ascii_lowercase())
    });
    format!("nick-c{}", hash % 8)
}
