//! The left column: join or create a room, the rooms and direct
//! conversations with their unread counts, and who you are.

use banter_protocol::{NotifyLevel, RoomName};
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::Ctx;
use crate::browser;
use crate::chat::{Panel, View};

#[derive(Properties, PartialEq)]
pub struct Props {
    /// Called after choosing a conversation (closes the drawer on phones).
    pub on_navigate: Callback<()>,
    /// Out of reach while the other drawer is open.
    pub inert: bool,
}

#[component]
pub fn Sidebar(props: &Props) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let join_value = use_state(String::new);
    let join_error = use_state(|| None::<String>);
    let chat = ctx.chat.borrow();

    let select = |view: View| {
        let ctx = ctx.clone();
        let on_navigate = props.on_navigate.clone();
        Callback::from(move |e: MouseEvent| {
            e.prevent_default();
            let view = view.clone();
            ctx.act(|chat| chat.select(view));
            on_navigate.emit(());
        })
    };
    let onsubmit = {
        let ctx = ctx.clone();
        let join_value = join_value.clone();
        let join_error = join_error.clone();
        let on_navigate = props.on_navigate.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let name = join_value.trim().trim_start_matches('#').to_string();
            match RoomName::new(name) {
                Ok(room) => {
                    let result = ctx
                        .try_act(|chat| chat.submit(&format!("/join {room}"), browser::now_ms()));
                    match result {
                        Ok(()) => {
                            join_value.set(String::new());
                            join_error.set(None);
                            on_navigate.emit(());
                        }
                        Err(e) => join_error.set(Some(e)),
                    }
                }
                Err(e) => join_error.set(Some(e.problem.to_string())),
            }
        })
    };
    let oninput = {
        let join_value = join_value.clone();
        Callback::from(move |e: InputEvent| {
            join_value.set(e.target_unchecked_into::<HtmlInputElement>().value());
        })
    };
    let rooms = chat.rooms.iter().map(|(room, state)| {
        let view = View::Room(room.clone());
        let current = chat.view.as_ref() == Some(&view);
        let leave = {
            let ctx = ctx.clone();
            let room = room.clone();
            Callback::from(move |_: MouseEvent| {
                let room = room.clone();
                ctx.act(|chat| vec![chat.part(room)]);
            })
        };
        html! {
            <li key={room.to_string()} class={classes!(current.then_some("current"))}>
                <a href={format!("#{}", view.fragment())} onclick={select(view.clone())}
                    aria-current={current.then_some("page")}>
                    <span class="hash" aria-hidden="true">{"#"}</span>
                    <span class="name">{room.to_string()}</span>
                    <Badge count={state.conv.unread} mentions={state.conv.mentions}
                        muted={chat.level(&view) == NotifyLevel::None} />
                </a>
                <button class="leave" onclick={leave} aria-label={format!("Leave #{room}")} title="Leave"><span aria-hidden="true">{"×"}</span></button>
            </li>
        }
    });
    let directs = chat.directs.iter().map(|(nick, conv)| {
        let view = View::Direct(nick.clone());
        let current = chat.view.as_ref() == Some(&view);
        let close = {
            let ctx = ctx.clone();
            let nick = nick.clone();
            Callback::from(move |_: MouseEvent| {
                let nick = nick.clone();
                ctx.act(|chat| {
                    chat.close_direct(&nick);
                    Vec::new()
                });
            })
        };
        html! {
            <li key={nick.to_string()} class={classes!(current.then_some("current"))}>
                <a href={format!("#{}", view.fragment())} onclick={select(view.clone())}
                    aria-current={current.then_some("page")}>
                    <span class="hash" aria-hidden="true">{"@"}</span>
                    <span class="name">{nick.to_string()}</span>
                    <Badge count={conv.unread} mentions={conv.mentions}
                        muted={chat.level(&view) == NotifyLevel::None} />
                </a>
                <button class="leave" onclick={close} aria-label={format!("Close the conversation with {nick}")} title="Close"><span aria-hidden="true">{"×"}</span></button>
            </li>
        }
    });
    let sign_out = {
        let ctx = ctx.clone();
        Callback::from(move |_: MouseEvent| ctx.act(|chat| chat.sign_out()))
    };
    let open = |panel: Panel| {
        let ctx = ctx.clone();
        let on_navigate = props.on_navigate.clone();
        Callback::from(move |_: MouseEvent| {
            ctx.act(|chat| chat.open_panel(Some(panel)));
            on_navigate.emit(());
        })
    };
    let who = if chat.account.is_some() {
        " (account)"
    } else {
        " (guest)"
    };
    html! {
        <nav id="rooms" class="sidebar" aria-label="Rooms and conversations" inert={props.inert}>
            <button id="rooms-close" class="only-narrow close" onclick={props.on_navigate.reform(|_| ())}>{"Close"}</button>
            <form class="join" onsubmit={onsubmit}>
                <label for="join-room">{"Join or create a room"}</label>
                <div class="row">
                    <input id="join-room" placeholder="room-name" autocapitalize="off" spellcheck="false"
                        maxlength="33" value={(*join_value).clone()} oninput={oninput}
                        aria-invalid={join_error.is_some().to_string()} aria-describedby="join-help" />
                    <button type="submit">{"Join"}</button>
                </div>
                <p id="join-help" class="help error" role="alert">{(*join_error).clone()}</p>
            </form>
            <div class="finders">
                <button onclick={open(Panel::Mentions)} aria-pressed={(chat.panel == Some(Panel::Mentions)).to_string()}>
                    {"Mentions"}<Badge count={0} mentions={chat.mention_total()} muted=false />
                </button>
                <button onclick={open(Panel::Search)} aria-pressed={(chat.panel == Some(Panel::Search)).to_string()}>{"Search"}</button>
            </div>
            <h2>{"Rooms"}</h2>
            <ul class="list">{ for rooms }</ul>
            if !chat.directs.is_empty() {
                <h2>{"Direct messages"}</h2>
                <ul class="list">{ for directs }</ul>
            }
            <footer class="whoami">
                <span>{"Signed in as "}<b>{chat.nick.as_ref().map(|n| n.to_string()).unwrap_or_default()}</b><span class="muted">{who}</span></span>
                <span>
                    if chat.administers {
                        <button class="link" onclick={open(Panel::Admin)}>{"Administration"}</button>
                    }
                    if chat.account.is_some() {
                        <button class="link" onclick={open(Panel::Account)}>{"Account"}</button>
                    }
                    <button class="link" onclick={sign_out}>{"Sign out"}</button>
                </span>
            </footer>
        </nav>
    }
}

#[derive(Properties, PartialEq)]
struct BadgeProps {
    count: u32,
    mentions: u32,
    /// Muted: a dot for unread messages, no counts.
    muted: bool,
}

/// Unread messages and, apart, the mentions among them.
#[component]
fn Badge(props: &BadgeProps) -> Html {
    let shown = |n: u32| {
        if n > 99 {
            "99+".to_string()
        } else {
            n.to_string()
        }
    };
    if props.muted {
        return match props.count {
            0 => html! {},
            _ => html! { <span class="unread-dot" role="img" aria-label="unread (muted)"></span> },
        };
    }
    html! {
        <>
            if props.mentions > 0 {
                <span class="badge mention" aria-label={format!("{} mentions", props.mentions)}>{"@"}{shown(props.mentions)}</span>
            }
            if props.count > 0 {
                <span class="badge" aria-label={format!("{} unread", props.count)}>{shown(props.count)}</span>
            }
        </>
    }
}
