//! The right column: who is in the current room; click a member to
//! whisper to them; invite someone by nick.

use banter_protocol::Nick;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::Ctx;
use crate::chat::View;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub on_navigate: Callback<()>,
}

#[component]
pub fn Members(props: &Props) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let invite_value = use_state(String::new);
    let chat = ctx.chat.borrow();
    let Some(View::Room(room)) = chat.view.clone() else {
        return html! {};
    };
    let Some(state) = chat.rooms.get(&room) else {
        return html! {};
    };
    let operator = chat.is_operator(&room);
    let items = state.members.iter().map(|nick| {
        let me = chat.nick.as_ref() == Some(nick);
        // Roles are held by accounts; a logged-in user's nick is its account.
        let role = if state.owner.as_ref() == Some(nick) {
            Some("owner")
        } else if state.ops.contains(nick) {
            Some("operator")
        } else {
            None
        };
        let moderate = |ban: bool| {
            let ctx = ctx.clone();
            let (room, nick) = (room.clone(), nick.clone());
            Callback::from(move |_: MouseEvent| {
                let (room, nick) = (room.clone(), nick.clone());
                ctx.act(|chat| chat.moderate(room, nick, ban));
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
                    <span class={state_class} title={status.clone()}><span class="presence" aria-hidden="true"></span>{nick.to_string()}<span class="muted">{" (you)"}</span>
                        if let Some(role) = role { <span class="role">{format!(" · {role}")}</span> }
                    </span>
                } else {
                    <button class={state_class} onclick={whisper} title={format!("{status} · whisper to {nick}")}
                        aria-label={format!("{nick}, {status}: send a direct message")}>
                        <span class="presence" aria-hidden="true"></span>{nick.to_string()}
                        if let Some(role) = role { <span class="role">{format!(" · {role}")}</span> }
                    </button>
                    if operator {
                        <button class="mod" onclick={moderate(false)} aria-label={format!("Kick {nick} from #{room}")}>{"Kick"}</button>
                        <button class="mod" onclick={moderate(true)} aria-label={format!("Ban {nick} from #{room}")}>{"Ban"}</button>
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
    html! {
        <aside class="members" aria-label={format!("Members of #{room}")}>
            <h2>{format!("Members · {}", state.members.len())}</h2>
            <ul class="list">{ for items }</ul>
            <form class="invite" onsubmit={invite} aria-label={format!("Invite someone to #{room}")}>
                <input name="nick" placeholder="nick" aria-label="Nick to invite" maxlength="24"
                    value={(*invite_value).clone()} {oninput} />
                <button type="submit">{"Invite"}</button>
            </form>
        </aside>
    }
}
