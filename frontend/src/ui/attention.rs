//! The Mentions panel (recent mentions, with a jump to each; browser
//! notifications, Web Push on this device, highlight words) and the
//! Search panel (a query, results newest first, older pages). Both are
//! shown in the conversation's place, like the Account panel.

use yew::prelude::*;

use super::{Ctx, raw};
use crate::browser;
use crate::chat::Hit;

/// A list of messages found; a click opens each at its place.
fn hits(ctx: &Ctx, hits: &[Hit]) -> Html {
    let items = hits.iter().map(|hit| {
        let open = {
            let ctx = ctx.clone();
            let (view, id) = (hit.view.clone(), hit.id);
            Callback::from(move |_: MouseEvent| {
                let view = view.clone();
                ctx.act(|chat| chat.open_at(view, id, browser::now_ms()));
            })
        };
        let place = hit.view.title();
        html! {
            <li key={format!("{}/{}", place, hit.id)}>
                <button class="hit" onclick={open}>
                    <span class="meta"><span class="where">{place}</span>{" "}<b>{hit.from.to_string()}</b>{" "}
                        <time datetime={hit.ts.to_string()}>{format!("{} {}", browser::local_day(hit.ts), browser::local_time(hit.ts))}</time></span>
                    <span class="text">{banter_protocol::strip_formatting(&hit.text)}</span>
                </button>
            </li>
        }
    });
    html! { <ul class="hits">{ for items }</ul> }
}

fn back(ctx: &Ctx) -> Html {
    let ctx = ctx.clone();
    let onclick = Callback::from(move |_: MouseEvent| ctx.act(|chat| chat.open_panel(None)));
    html! { <button class="link" {onclick}>{"Back to the conversation"}</button> }
}

// Fixed text, as markup constants (see `raw`).
const MENTIONS_ABOUT: &str = r#"<p class="muted">Messages that name you (your nick or a highlight word), and direct messages, newest first.</p>"#;
const NO_MENTIONS: &str = r#"<p class="empty">No mentions in the messages loaded here.</p>"#;
const GRANTED: &str = "<p>Notifications are on in this browser: while this page is hidden, messages at a conversation's level show as system notifications.</p>";
const DENIED: &str =
    "<p>Notifications are blocked for this site: allow them in the browser's site settings.</p>";
const NO_NOTIFICATIONS: &str = "<p>This browser cannot show notifications.</p>";
const ASK: &str = r#"<p id="notify-about">Show a system notification when a message at a conversation's level arrives while this page is hidden.</p>"#;
const PUSH_ABOUT: &str = r#"<p id="push-about">Web Push reaches this device while no Banter page of yours is open (the browser's push service carries it).</p>"#;
const LEVELS_ABOUT: &str = r#"<p class="muted">Each conversation's level (all messages, mentions, muted) is set in its header.</p>"#;
const WORDS_LABEL: &str = r#"<label for="highlight-words">Words that mention you besides your nick <span class="muted">(up to 20, separated by spaces)</span></label>"#;
const SEARCH_HELP: &str = r#"<p id="search-help" class="help">Words and "quoted phrases"; from:nick, in:#room or in:nick narrow it.</p>"#;

#[component]
pub fn MentionsPanel() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    // Redrawn when the browser answers (permission, subscription).
    let asked = use_state(|| 0u32);
    // This browser's push subscription, once looked up (`Some(true)`: on).
    let pushing = use_state(|| None::<bool>);
    let failed = use_state(|| false);
    use_effect_with((), {
        let (ctx, pushing) = (ctx.clone(), pushing.clone());
        move |_| {
            browser::focus("mentions-title");
            wasm_bindgen_futures::spawn_local(async move {
                let found = browser::push_subscription(None).await;
                pushing.set(Some(found.is_some()));
                // The server may have dropped it: say it again.
                if let Some((endpoint, p256dh, auth)) = found {
                    ctx.act(|chat| chat.push_subscribe(endpoint, p256dh, auth));
                }
            });
        }
    });
    let chat = ctx.chat.borrow();
    let mentions = chat.recent_mentions();
    let account = chat.account.is_some();
    let key = chat.attention.vapid_key.clone();
    let words = chat.attention.highlights.join(" ");
    drop(chat);
    let permission = browser::notification_permission();
    let enable = {
        let asked = asked.clone();
        Callback::from(move |_: MouseEvent| {
            let asked = asked.clone();
            browser::ask_notifications(move || asked.set(*asked + 1));
        })
    };
    let can_push = account && key.is_some() && pushing.is_some();
    let toggle_push = {
        let (ctx, pushing, failed) = (ctx.clone(), pushing.clone(), failed.clone());
        Callback::from(move |_: MouseEvent| {
            let (ctx, pushing, key) = (ctx.clone(), pushing.clone(), key.clone());
            let failed = failed.clone();
            let on = *pushing == Some(true);
            wasm_bindgen_futures::spawn_local(async move {
                if on {
                    if let Some(endpoint) = browser::push_unsubscribe().await {
                        ctx.act(|chat| chat.push_unsubscribe(endpoint));
                    }
                    pushing.set(Some(false));
                } else if let Some((endpoint, p256dh, auth)) = browser::push_subscription(key).await
                {
                    ctx.act(|chat| chat.push_subscribe(endpoint, p256dh, auth));
                    pushing.set(Some(true));
                } else {
                    failed.set(true);
                }
            });
        })
    };
    let save_words = {
        let ctx = ctx.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let words = browser::input("highlight-words").value();
            ctx.act(|chat| chat.set_highlights(&words));
        })
    };
    let notifications = match permission.as_str() {
        "granted" => raw(GRANTED),
        "denied" => raw(DENIED),
        "" => raw(NO_NOTIFICATIONS),
        _ => html! {
            <>
                {raw(ASK)}
                <button class="primary" onclick={enable} aria-describedby="notify-about">{"Enable notifications"}</button>
            </>
        },
    };
    html! {
        <section class="account attention" aria-labelledby="mentions-title">
            <h2 id="mentions-title" tabindex="-1">{"Mentions"}</h2>
            {raw(MENTIONS_ABOUT)}
            if mentions.is_empty() {
                {raw(NO_MENTIONS)}
            } else {
                {hits(&ctx, &mentions)}
            }
            <section class="card" aria-labelledby="notify-title">
                <h3 id="notify-title">{"Notifications"}</h3>
                {notifications}
                if can_push {
                    {raw(PUSH_ABOUT)}
                    <button onclick={toggle_push} aria-describedby="push-about">
                        { if *pushing == Some(true) { "Stop notifying this device" } else { "Notify me on this device" } }
                    </button>
                    if *failed {
                        <p class="help error" role="alert">{"This browser could not subscribe (notifications not allowed, or its push service unreachable)."}</p>
                    }
                }
                {raw(LEVELS_ABOUT)}
            </section>
            if account {
                <form class="card" onsubmit={save_words} aria-labelledby="words-title">
                    <h3 id="words-title">{"Highlight words"}</h3>
                    {raw(WORDS_LABEL)}
                    <input id="highlight-words" value={words} autocapitalize="off" spellcheck="false" />
                    <button>{"Save"}</button>
                </form>
            }
            {back(&ctx)}
        </section>
    }
}

#[component]
pub fn SearchPanel() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    use_effect_with((), |_| browser::focus("search-query"));
    let chat = ctx.chat.borrow();
    let search = chat.attention.search.clone();
    drop(chat);
    let onsubmit = {
        let ctx = ctx.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let query = browser::input("search-query").value();
            ctx.act(|chat| chat.search(&query));
        })
    };
    let older = {
        let ctx = ctx.clone();
        Callback::from(move |_: MouseEvent| ctx.act(|chat| chat.search_older()))
    };
    let status = match (&search.error, search.waiting, search.results.len()) {
        (Some(error), _, _) => error.clone(),
        (None, true, _) => "Searching…".into(),
        (None, false, 0) if !search.query.is_empty() => "Nothing found.".into(),
        (None, false, 0) => String::new(),
        (None, false, 1) => "1 message found.".into(),
        (None, false, n) => format!("{n} messages found."),
    };
    html! {
        <section class="account search" aria-labelledby="search-title">
            <h2 id="search-title">{"Search"}</h2>
            <form class="search-form" role="search" {onsubmit}>
                <label for="search-query">{"Search your rooms and conversations"}</label>
                <div class="row">
                    <input id="search-query" type="search" value={search.query.clone()} maxlength="256"
                        autocapitalize="off" spellcheck="false" aria-describedby="search-help" />
                    <button class="primary">{"Search"}</button>
                </div>
                {raw(SEARCH_HELP)}
            </form>
            <p class={classes!("help", search.error.is_some().then_some("error"))} role="status">{status}</p>
            {hits(&ctx, &search.results)}
            if search.more {
                <button onclick={older} disabled={search.waiting}>{"Older results"}</button>
            }
            {back(&ctx)}
        </section>
    }
}
