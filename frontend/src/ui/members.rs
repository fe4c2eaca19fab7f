//! The right column: who is in the current room; click a member to
//! whisper to them; invite someone by nick; the room's settings (its
//! modes), which its operators change.

use banter_protocol::{Nick, RoomModes};
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::{Ctx, raw};
use crate::browser;
use crate::chat::{View, describe_modes};

#[derive(Properties, PartialEq)]
pub struct Props {
    pub on_navigate: Callback<()>,
    /// Out of reach while the other drawer is open.
    pub inert: bool,
}

#[component]
pub fn Members(props: &Props) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let invite_value = use_state(String::new);
    let chat = ctx.chat.borrow();
    // The settings form (operators only) shows the room's modes whenever
    // they change, or another room is shown.
    let form = match &chat.view {
        Some(View::Room(room)) if chat.is_operator(room) => {
            let modes = chat.rooms.get(room).map(|r| r.modes.clone());
            Some((room.clone(), modes.unwrap_or_default()))
        }
        _ => None,
    };
    use_effect_with(form, |form| {
        if let Some((_, modes)) = form {
            show_modes(modes);
        }
    });
    let Some(View::Room(room)) = chat.view.clone() else {
        return html! {};
    };
    let Some(state) = chat.rooms.get(&room) else {
        return html! {};
    };
    let operator = chat.is_operator(&room);
    let items = state.members.iter().map(|nick| {
        let me = chat.nick.as_ref() == Some(nick);
        let voiced = state.voiced.contains(nick);
        // Roles are held by accounts; a logged-in user's nick is its account.
        // With its separator: shown as is, and the whisper button's name starts
        // with what it shows (WCAG 2.5.3).
        let role = if state.owner.as_ref() == Some(nick) {
            Some(" · owner")
        } else if state.ops.contains(nick) {
            Some(" · operator")
        } else if voiced {
            Some(" · voice")
        } else if chat.bots.contains(nick) {
            // What it says it is (`profile`; IRC's `+B`).
            Some(" · bot")
        } else {
            None
        };
        let moderate = |what: &'static str| {
            let ctx = ctx.clone();
            let (room, nick) = (room.clone(), nick.clone());
            Callback::from(move |_: MouseEvent| {
                let (room, nick) = (room.clone(), nick.clone());
                ctx.act(|chat| chat.moderate(room, nick, what));
            })
        };
        let away = chat.away.get(nick);
        let state_class = classes!("member", me.then_some("me"), away.is_some().then_some("away"));
        let status = match away {
            Some(message) => format!("away: {message}"),
            None => "online".into(),
        };
        let whisper = {
            let ctx = ctx.clone();
            let nick = nick.clone();
            let on_navigate = props.on_navigate.clone();
            Callback::from(move |_: MouseEvent| {
                let view = View::Direct(nick.clone());
                ctx.act(|chat| chat.select(view));
                on_navigate.emit(());
            })
        };
        html! {
            <li key={nick.to_string()} class="member-row">
                if me {
                    <span class={state_class} title={status.clone()}><span class="presence" aria-hidden="true"></span><span class="nick">{nick.to_string()}</span><span class="muted">{" (you)"}</span>
                        if let Some(role) = role { <span class="role">{role}</span> }
                    </span>
                } else {
                    <button class={state_class} onclick={whisper} title={format!("{status} · whisper to {nick}")}
                        aria-label={format!("{nick}{}, {status}: send a direct message", role.unwrap_or_default())}>
                        <span class="presence" aria-hidden="true"></span><span class="nick">{nick.to_string()}</span>
                        if let Some(role) = role { <span class="role">{role}</span> }
                    </button>
                    if operator {
                        <button class="mod" onclick={moderate("kick")} aria-label={format!("Kick {nick} from #{room}")}>{"Kick"}</button>
                        <button class="mod" onclick={moderate("ban")} aria-label={format!("Ban {nick} from #{room}")}>{"Ban"}</button>
                        if voiced {
                            <button class="mod" onclick={moderate("devoice")} aria-label={format!("Take {nick}'s voice in #{room}")}>{"Devoice"}</button>
                        } else if state.modes.moderated {
                            <button class="mod" onclick={moderate("voice")} aria-label={format!("Let {nick} speak in #{room}")}>{"Voice"}</button>
                        }
                    }
                }
            </li>
        }
    });
    // Invite someone by nick (the server says whether we may).
    let invite = {
        let ctx = ctx.clone();
        let invite_value = invite_value.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if let Ok(nick) = Nick::new(invite_value.trim()) {
                invite_value.set(String::new());
                ctx.act(|chat| chat.invite(nick));
            }
        })
    };
    let oninput = {
        let invite_value = invite_value.clone();
        Callback::from(move |e: InputEvent| {
            invite_value.set(e.target_unchecked_into::<HtmlInputElement>().value());
        })
    };
    let save = {
        let (ctx, room) = (ctx.clone(), room.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let want = read_modes();
            let room = room.clone();
            ctx.act(|chat| chat.set_modes(room, want));
        })
    };
    html! {
        <aside id="members" class="members" aria-label={format!("Members of #{room}")} inert={props.inert}>
            <button id="members-close" class="only-narrow close" onclick={props.on_navigate.reform(|_| ())}>{"Close"}</button>
            <h2>{format!("Members · {}", state.members.len())}</h2>
            <ul class="list">{ for items }</ul>
            <form class="invite" onsubmit={invite} aria-label={format!("Invite someone to #{room}")}>
                <input name="nick" placeholder="nick" aria-label="Nick to invite" maxlength="24"
                    value={(*invite_value).clone()} {oninput} />
                <button type="submit">{"Invite"}</button>
            </form>
            <section class="settings" aria-labelledby="settings-title">
                <h2 id="settings-title">{"Room settings"}</h2>
                <p>{describe_modes(&state.modes)}</p>
                if operator {
                    <details>
                        <summary>{"Change"}</summary>
                        <form onsubmit={save} aria-label={format!("Settings of #{room}")}>
                            {raw(MODE_FIELDS)}
                            <button class="primary" type="submit">{"Save"}</button>
                        </form>
                    </details>
                }
            </section>
        </aside>
    }
}

/// The settings form's fields (`m-i` is `+i`, and so on).
const MODE_FIELDS: &str = concat!(
    r#"<label class="check"><input type="checkbox" id="m-i"><span>Invite only <span class="muted">(+i)</span></span></label>"#,
    r#"<label class="check"><input type="checkbox" id="m-m"><span>Moderated: only voiced members and operators speak <span class="muted">(+m)</span></span></label>"#,
    r#"<label class="check"><input type="checkbox" id="m-s"><span>Secret: hidden from the room list <span class="muted">(+s)</span></span></label>"#,
    r#"<label class="check"><input type="checkbox" id="m-R"><span>Accounts only: no guests <span class="muted">(+R)</span></span></label>"#,
    r#"<label for="m-k">Key <span class="muted">(a password to join; empty: none)</span></label>"#,
    r#"<input id="m-k" maxlength="32" autocomplete="off" autocapitalize="off" spellcheck="false">"#,
    r#"<label for="m-l">Member limit <span class="muted">(empty: none)</span></label>"#,
    r#"<input id="m-l" type="number" min="1" max="100000" inputmode="numeric">"#,
);

/// Puts `modes` into the settings form.
fn show_modes(modes: &RoomModes) {
    browser::input("m-i").set_checked(modes.invite_only);
    browser::input("m-m").set_checked(modes.moderated);
    browser::input("m-s").set_checked(modes.secret);
    browser::input("m-R").set_checked(modes.registered_only);
    browser::input("m-k").set_value(modes.key.as_deref().unwrap_or(""));
    let limit = modes.limit.map(|l| l.to_string()).unwrap_or_default();
    browser::input("m-l").set_value(&limit);
}

/// What the settings form asks for.
fn read_modes() -> RoomModes {
    let key = browser::input("m-k").value().trim().to_string();
    RoomModes {
        invite_only: browser::input("m-i").checked(),
        key: (!key.is_empty()).then_some(key),
        limit: browser::input("m-l")
            .value()
            .parse()
            .ok()
            .filter(|l| *l > 0),
        moderated: browser::input("m-m").checked(),
        secret: browser::input("m-s").checked(),
        registered_only: browser::input("m-R").checked(),
    }
}
