//! The top-level component: sign-in or the chat layout (rooms, the
//! conversation, members), the status bar, the page title and URL.

use banter_protocol::{Nick, NotifyLevel, RoomName};
use yew::prelude::*;

use super::Ctx;
use super::account::AccountPanel;
use super::admin::AdminPanel;
use super::attention::{MentionsPanel, SearchPanel};
use super::composer::Composer;
use super::members::Members;
use super::messages::MessageList;
use super::sidebar::Sidebar;
use super::signin::SignIn;
use crate::browser;
use crate::chat::{Chat, Panel, Status, View};
use crate::conn;

/// Which side panel is open on a narrow screen.
#[derive(Clone, Copy, PartialEq)]
enum Drawer {
    None,
    Rooms,
    Members,
}

#[component]
pub fn App() -> Html {
    let chat = use_mut_ref(|| {
        let (nick, mut rooms) = browser::load_session();
        // `.ok()`, not `.expect()`: the name is valid, and formatting a
        // `NameError` for a panic would cost download size.
        if rooms.is_empty() {
            rooms.extend(RoomName::new("lobby").ok());
        }
        let mut chat = Chat::new(nick, rooms);
        chat.token = browser::load_token();
        if let Some(view) = View::from_fragment(&browser::fragment()) {
            chat.select(view);
        }
        chat.visible = browser::page_visible();
        chat
    });
    let redraw = use_force_update();
    let sender = {
        let chat = chat.clone();
        let redraw = redraw.clone();
        use_memo((), move |_| {
            conn::start(chat, Callback::from(move |_| redraw.force_update()))
        })
    };
    let ctx = Ctx {
        chat: chat.clone(),
        version: chat.borrow().version,
        sender: (*sender).clone(),
        redraw: {
            let redraw = redraw.clone();
            Callback::from(move |_| redraw.force_update())
        },
    };
    let drawer = use_state(|| Drawer::None);
    // An opened drawer takes the focus (its Close button); a closed one
    // gives it back to its toggle, unless a panel opened from it took it.
    {
        let was = use_mut_ref(|| Drawer::None);
        let now = *drawer;
        use_effect(move || {
            let before = was.replace(now);
            match (before, now) {
                (a, b) if a == b => {}
                (_, Drawer::Rooms) => browser::focus("rooms-close"),
                (_, Drawer::Members) => browser::focus("members-close"),
                (Drawer::Rooms, _) => browser::focus_back("rooms-toggle", "rooms"),
                _ => browser::focus_back("members-toggle", "members"),
            }
        });
    }

    {
        let ctx = ctx.clone();
        use_effect_with((), move |_| {
            let on_hash = ctx.clone();
            browser::listen("hashchange", move || {
                if let Some(view) = View::from_fragment(&browser::fragment()) {
                    on_hash.act(|chat| chat.select(view));
                }
            });
            let on_push = ctx.clone();
            browser::listen("visibilitychange", move || {
                ctx.act(|chat| chat.set_visible(browser::page_visible()));
            });
            // A Web Push notification's click, posted by the service worker.
            browser::start_worker(move |data| {
                let text = |key| browser::field(&data, key).as_string();
                let id = browser::field(&data, "id").as_f64().unwrap_or(0.0) as u64;
                let view = match (text("room"), text("with")) {
                    (Some(room), _) => RoomName::new(room).ok().map(View::Room),
                    (None, Some(nick)) => Nick::new(nick).ok().map(View::Direct),
                    _ => None,
                };
                if let Some(view) = view {
                    on_push.act(|chat| chat.open_at(view, id, browser::now_ms()));
                }
            });
        });
    }
    // After every change: remember the session, show the view in the URL
    // and the unread count in the title.
    use_effect({
        let chat = chat.clone();
        let ctx = ctx.clone();
        move || {
            // Notifications owed while the page is hidden (the newest few).
            let notices = std::mem::take(&mut chat.borrow_mut().attention.notices);
            if browser::notification_permission() == "granted" {
                for notice in notices.into_iter().rev().take(4) {
                    let ctx = ctx.clone();
                    let (view, id) = (notice.view.clone(), notice.id);
                    browser::notify(&notice.title, &notice.body, &view.fragment(), move || {
                        ctx.act(|chat| chat.open_at(view, id, browser::now_ms()));
                    });
                }
            }
            let chat = chat.borrow();
            if chat.signed_out {
                browser::forget_session();
                browser::reload();
                return;
            }
            browser::save_token(chat.token.as_deref());
            if chat.wants_connection() {
                browser::save_session(chat.nick.as_ref(), &chat.saved_rooms());
            }
            let unread = chat.unread_total();
            let mentions = chat.mention_total();
            let place = chat.view.as_ref().map(View::title).unwrap_or_default();
            if let Some(view) = &chat.view {
                browser::set_fragment(&view.fragment());
            }
            let counts = match (unread, mentions) {
                (0, 0) => String::new(),
                (n, 0) => format!("({n}) "),
                (n, m) => format!("({n} · @{m}) "),
            };
            let place = if place.is_empty() {
                "Banter"
            } else {
                &format!("{place} · Banter")
            };
            browser::set_title(&format!("{counts}{place}"));
        }
    });

    let state = chat.borrow();
    let signing_in =
        state.signing_in || matches!(state.status, Status::SignedOut | Status::NickRefused(_));
    let body = if signing_in {
        html! { <SignIn /> }
    } else {
        let toggle = |which: Drawer| {
            let drawer = drawer.clone();
            Callback::from(move |_: MouseEvent| {
                drawer.set(if *drawer == which {
                    Drawer::None
                } else {
                    which
                })
            })
        };
        let close_drawer = {
            let drawer = drawer.clone();
            Callback::from(move |_: ()| drawer.set(Drawer::None))
        };
        let panel = state.panel;
        let open = *drawer != Drawer::None;
        let unread = state.unread_total();
        let rooms_label = match unread {
            0 => "Rooms and conversations".to_string(),
            n => format!("Rooms and conversations, {n} unread"),
        };
        // An open drawer keeps the keyboard: Escape closes it, Tab cycles
        // inside it (the rest of the page is inert meanwhile).
        let onkeydown = {
            let drawer = drawer.clone();
            Callback::from(move |e: KeyboardEvent| {
                let id = match *drawer {
                    Drawer::Rooms => "rooms",
                    Drawer::Members => "members",
                    Drawer::None => return,
                };
                match e.key().as_str() {
                    "Escape" => drawer.set(Drawer::None),
                    "Tab" => browser::trap_tab(id, &e),
                    _ => {}
                }
            })
        };
        let title = match (&state.view, panel) {
            (_, Some(Panel::Account)) => "Account".into(),
            (_, Some(Panel::Admin)) => "Administration".into(),
            (_, Some(Panel::Mentions)) => "Mentions".into(),
            (_, Some(Panel::Search)) => "Search".into(),
            (Some(view), None) => view.title(),
            (None, None) => "Banter".into(),
        };
        let layout = classes!(
            "layout",
            (*drawer == Drawer::Rooms).then_some("rooms-open"),
            (*drawer == Drawer::Members).then_some("members-open"),
        );
        let in_room = matches!(state.view, Some(View::Room(_))) && panel.is_none();
        let may_edit_topic = match &state.view {
            Some(View::Room(room)) => in_room && state.is_online() && state.may_set_topic(room),
            _ => false,
        };
        let topic = match &state.view {
            _ if panel.is_some() => None,
            Some(View::Room(room)) => state
                .rooms
                .get(room)
                .and_then(|r| r.topic.as_ref())
                .map(|t| t.text.clone()),
            Some(View::Direct(nick)) => state.away.get(nick).map(|m| format!("away: {m}")),
            None => None,
        };
        html! {
            <div class={layout} {onkeydown}>
                if panel.is_none() {
                    <a class="skip" href="#composer-text" onclick={Callback::from(|e: MouseEvent| {
                        e.prevent_default();
                        browser::focus("composer-text");
                    })}>{"Skip to the message box"}</a>
                }
                <Sidebar on_navigate={close_drawer.clone()} inert={*drawer == Drawer::Members} />
                <header class="topbar" inert={open}>
                    <button id="rooms-toggle" class="icon-button only-narrow" aria-label={rooms_label}
                        aria-expanded={(*drawer == Drawer::Rooms).to_string()}
                        onclick={toggle(Drawer::Rooms)}>{icon(MENU)}
                        if unread > 0 { <span class="badge" aria-hidden="true">{unread.min(99)}</span> }
                    </button>
                    // Before the heading: on a phone both toggles are on the first row (the
                    // title and topic below), and Tab follows what the eye sees.
                    if in_room {
                        <button id="members-toggle" class="icon-button only-narrow" aria-label="Members"
                            aria-expanded={(*drawer == Drawer::Members).to_string()}
                            onclick={toggle(Drawer::Members)}>{icon(PEOPLE)}</button>
                    }
                    <div class="heading">
                        <h1 class="title">{title}</h1>
                        if may_edit_topic {
                            <button class="link edit-topic" onclick={{
                                let ctx = ctx.clone();
                                let current = topic.clone().unwrap_or_default();
                                Callback::from(move |_: MouseEvent| {
                                    if let Some(text) = browser::prompt("Room topic", &current) {
                                        ctx.act(|chat| chat.set_topic(text.trim().to_string()));
                                    }
                                })
                            }}>{"Edit topic"}</button>
                        }
                        if let Some(topic) = topic {
                            <p class="topic">{super::messages::rich_text(&topic)}</p>
                        }
                    </div>
                    if let (Some(view), None, Some(_)) = (&state.view, panel, &state.account) {
                        {level_picker(&ctx, view, state.level(view))}
                    }
                    <StatusPill status={state.status.clone()} />
                </header>

                <main class="conversation" id="main" inert={open}>
                    if panel == Some(Panel::Account) {
                        <AccountPanel />
                    } else if panel == Some(Panel::Admin) {
                        <AdminPanel />
                    } else if panel == Some(Panel::Mentions) {
                        <MentionsPanel />
                    } else if panel == Some(Panel::Search) {
                        <SearchPanel />
                    } else {
                        <MessageList />
                        <Composer />
                    }
                </main>
                if in_room {
                    <Members on_navigate={close_drawer.clone()} inert={*drawer == Drawer::Rooms} />
                }
                <div class="scrim" onclick={toggle(Drawer::None)} aria-hidden="true"></div>
            </div>
        }
    };
    drop(state);
    html! {
        <ContextProvider<Ctx> context={ctx}>
            {body}
        </ContextProvider<Ctx>>
    }
}

/// The conversation's notification level: all messages, mentions, none.
fn level_picker(ctx: &Ctx, view: &View, level: NotifyLevel) -> Html {
    let onchange = {
        let (ctx, view) = (ctx.clone(), view.clone());
        Callback::from(move |e: Event| {
            let value = e
                .target_unchecked_into::<web_sys::HtmlInputElement>()
                .value();
            let level = match value.as_str() {
                "all" => NotifyLevel::All,
                "none" => NotifyLevel::None,
                _ => NotifyLevel::Mentions,
            };
            let view = view.clone();
            ctx.act(|chat| chat.set_level(view, level));
        })
    };
    let option = |value: NotifyLevel, label: &'static str| {
        html! { <option value={value.as_str()} selected={level == value}>{label}</option> }
    };
    html! {
        <select class="level" {onchange} title="Notifications"
            aria-label={format!("Notifications for {}", view.title())}>
            {option(NotifyLevel::All, "All messages")}
            {option(NotifyLevel::Mentions, "Mentions")}
            {option(NotifyLevel::None, "Muted")}
        </select>
    }
}

const MENU: &str = "M3 6h18M3 12h18M3 18h18";
const PEOPLE: &str = "M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM1 21v-1a6 6 0 0 1 6-6h4a6 6 0 0 1 6 6v1M16 3.5a4 4 0 0 1 0 7M19 14a6 6 0 0 1 4 6v1";

/// A line icon (emoji fonts are not everywhere).
fn icon(path: &'static str) -> Html {
    html! {
        <svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true" fill="none"
            stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">
            <path d={path} />
        </svg>
    }
}

#[derive(Properties, PartialEq)]
struct StatusProps {
    status: Status,
}

/// The connection state, always on screen.
#[component]
fn StatusPill(props: &StatusProps) -> Html {
    let (class, text, detail) = match &props.status {
        Status::Online => ("online", "Online".to_string(), None),
        Status::Connecting { attempt: 0 } => ("connecting", "Connecting…".into(), None),
        Status::Connecting { attempt } => (
            "connecting",
            format!("Reconnecting… (try {})", attempt + 1),
            None,
        ),
        Status::Registering => ("connecting", "Signing in…".into(), None),
        Status::Offline {
            wait_ms, reason, ..
        } => (
            "offline",
            format!("Offline · retrying in {}s", wait_ms.div_ceil(1000)),
            reason.clone(),
        ),
        Status::SignedOut | Status::NickRefused(_) => ("offline", "Signed out".into(), None),
    };
    html! {
        <div class={classes!("status", class)} role="status" aria-live="polite" title={detail}>
            <span class="dot" aria-hidden="true"></span>{text}
        </div>
    }
}
