//! The conversation: messages grouped by sender, day separators, local
//! times, clickable links, and scrolling that follows new messages only
//! while the reader is at the bottom (otherwise a "new messages" button).

use std::rc::Rc;

use banter_protocol::Nick;
use web_sys::HtmlElement;
use yew::prelude::*;

use super::Ctx;
use crate::browser;
use crate::chat::{Line, View};
use crate::text::{self, Segment};

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
                Line::Chat { from: b, text: this_text, .. },
            ) if a == b && ts.saturating_sub(*t0) < GROUP_MS
                && text::decode_action(prev_text).is_none()
                && text::decode_action(this_text).is_none());
        let own = matches!(line.as_ref(), Line::Chat { from, .. } if me.as_ref() == Some(from));
        let key = Rc::as_ptr(line) as usize;
        items.push(html! { <MessageLine {key} line={line.clone()} {grouped} {own} /> });
        prev = Some(line);
    }
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
            <div class="messages" ref={list} onscroll={onscroll} role="log" aria-live="polite"
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
        </div>
    }
}

#[derive(Properties)]
struct LineProps {
    line: Rc<Line>,
    grouped: bool,
    own: bool,
}

impl PartialEq for LineProps {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.line, &other.line)
            && self.grouped == other.grouped
            && self.own == other.own
    }
}

/// One line; drawn once, then skipped by every redraw that leaves it alone.
#[component]
fn MessageLine(props: &LineProps) -> Html {
    let own = props.own;
    let grouped = props.grouped;
    match props.line.as_ref() {
        Line::Event { text, ts } => html! {
            <div class="event">
                <span>{text.clone()}</span>
                <time datetime={ts.to_string()}>{browser::local_time(*ts)}</time>
            </div>
        },
        Line::Chat {
            id,
            from,
            text: body,
            ts,
        } => {
            let id = format!("m{id}");
            if let Some(action) = text::decode_action(body) {
                return html! {
                    <div class={classes!("msg", "action", own.then_some("own"))} data-id={id}>
                        <span class="body">{"* "}<b class={nick_class(from)}>{from.to_string()}</b>{" "}{rich_text(action)}</span>
                        <time class="side" datetime={ts.to_string()}>{browser::local_time(*ts)}</time>
                    </div>
                };
            }
            html! {
                <div class={classes!("msg", grouped.then_some("cont"), own.then_some("own"))} data-id={id}>
                    if !grouped {
                        <div class="meta">
                            <b class={classes!("from", nick_class(from))}>{from.to_string()}</b>
                            <time datetime={ts.to_string()}>{browser::local_time(*ts)}</time>
                        </div>
                    }
                    <div class="body">{rich_text(body)}</div>
                </div>
            }
        }
    }
}

/// Text nodes and safe links; never HTML.
fn rich_text(raw: &str) -> Html {
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
