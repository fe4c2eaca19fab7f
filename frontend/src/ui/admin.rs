//! The Administration panel, in the conversation's place (only for a
//! server administrator): the rooms and their member counts, the members
//! of a chosen room with "Disconnect", the server bans with "Lift", a form
//! that adds a server ban and one that removes an account. What the
//! server answers lands in [`Admin`](crate::chat::Admin)'s `reply`, shown
//! at the top of the panel (it stays in view while scrolling) and
//! announced.

use yew::prelude::*;

use super::{Ctx, raw};
use crate::browser;
use crate::chat::ban_target;

#[component]
pub fn AdminPanel() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    use_effect_with((), |_| browser::focus("admin-title"));
    let chat = ctx.chat.borrow();
    let busy = !chat.is_online();
    let admin = &chat.admin;
    let (text, ok) = match &admin.reply {
        Some(Ok(text)) => (text.clone(), true),
        Some(Err(text)) => (text.clone(), false),
        None => (String::new(), true),
    };
    let act = |f: fn(&mut crate::chat::Chat) -> Vec<crate::chat::Request>| {
        let ctx = ctx.clone();
        Callback::from(move |_: MouseEvent| ctx.act(f))
    };
    let rooms = admin.rooms.iter().map(|info| {
        let (ctx, room) = (ctx.clone(), info.room.clone());
        let show = Callback::from(move |_: MouseEvent| {
            let room = room.clone();
            ctx.act(|chat| chat.admin_members(room))
        });
        html! {
            <li><button class="link" onclick={show}>{format!("#{}", info.room)}</button>
                {format!(" · {} members", info.members)}</li>
        }
    });
    let members = admin.room.as_ref().map(|(room, members)| {
        let rows = members.iter().map(|nick| {
            let label = format!("Disconnect {nick}");
            let (ctx, victim) = (ctx.clone(), nick.clone());
            let kill = Callback::from(move |_: MouseEvent| {
                let nick = &victim;
                // The browser's prompt is the confirmation: cancel does nothing.
                let question = format!("Disconnect {nick}? Reason (optional):");
                if let Some(reason) = browser::prompt(&question, "") {
                    let nick = nick.clone();
                    ctx.act(|chat| chat.kill(nick, reason.trim().to_string()));
                }
            });
            html! {
                <li>{nick.to_string()}
                    <button onclick={kill} disabled={busy} aria-label={label}>{"Disconnect"}</button></li>
            }
        });
        html! {
            <section class="card" aria-labelledby="people-title">
                <h3 id="people-title">{format!("People in #{room}")}</h3>
                <ul class="rows">{for rows}</ul>
            </section>
        }
    });
    let bans = admin.klines.iter().map(|ban| {
        let target = ban_target(ban);
        let until = ban.expires.map(|ts| {
            format!(
                " · until {} {}",
                browser::local_day(ts),
                browser::local_time(ts)
            )
        });
        let (ctx, lifted) = (ctx.clone(), ban.clone());
        let lift = Callback::from(move |_: MouseEvent| ctx.act(|chat| chat.unkline(&lifted)));
        html! {
            <li>{format!("{target}: {}", ban.reason)}
                <span class="muted">{format!(" · by {}", ban.by)}{until}</span>
                <button onclick={lift} disabled={busy} aria-label={format!("Lift the ban on {target}")}>{"Lift"}</button></li>
        }
    });
    let kline = {
        let ctx = ctx.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let (target, reason) = (browser::input("ban-target"), browser::input("ban-reason"));
            let minutes = browser::input("ban-minutes").value().parse().ok();
            ctx.act(|chat| chat.kline(&target.value(), reason.value(), minutes));
            target.set_value("");
        })
    };
    let remove = {
        let ctx = ctx.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let name = browser::input("remove-name");
            ctx.act(|chat| chat.remove_account(&name.value()));
            name.set_value("");
        })
    };
    html! {
        <section class="account admin" aria-labelledby="admin-title">
            <h2 id="admin-title" tabindex="-1">{"Server administration"}</h2>
            <p id="admin-help" class={classes!("help", "note", if ok { "ok" } else { "error" })} role="alert">{text}</p>
            <button onclick={act(crate::chat::Chat::admin_refresh)} disabled={busy}>{"Refresh"}</button>
            <section class="card" aria-labelledby="rooms-title">
                <h3 id="rooms-title">{"Rooms"}</h3>
                if admin.rooms.is_empty() {
                    <p class="muted">{"No room has members."}</p>
                }
                <ul class="rows">{for rooms}</ul>
            </section>
            {for members}
            <section class="card" aria-labelledby="bans-title">
                <h3 id="bans-title">{"Server bans"}</h3>
                if admin.klines.is_empty() {
                    <p class="muted">{"Nobody is banned from the server."}</p>
                }
                <ul class="rows">{for bans}</ul>
            </section>
            <form class="card" onsubmit={kline} aria-labelledby="kline-title">
                {raw(KLINE_FIELDS)}
                <button class="primary" disabled={busy}>{"Ban"}</button>
            </form>
            <form class="card" onsubmit={remove} aria-labelledby="remove-title">
                {raw(REMOVE_FIELDS)}
                <button class="danger" disabled={busy}>{"Remove account"}</button>
            </form>
            <button class="link" onclick={act(|chat| chat.open_panel(None))}>{"Back to the conversation"}</button>
        </section>
    }
}

const KLINE_FIELDS: &str = concat!(
    r#"<h3 id="kline-title">Ban from the server</h3>"#,
    r#"<label for="ban-target">Account, address or range <span class="muted">(bob, 192.0.2.7, 2001:db8::/32)</span></label>"#,
    r#"<input id="ban-target" autocapitalize="off" spellcheck="false" required>"#,
    r#"<label for="ban-reason">Reason</label><input id="ban-reason" required maxlength="300">"#,
    r#"<label for="ban-minutes">Minutes <span class="muted">(empty: until lifted)</span></label>"#,
    r#"<input id="ban-minutes" type="number" min="1" inputmode="numeric">"#,
);

const REMOVE_FIELDS: &str = concat!(
    r#"<h3 id="remove-title">Remove an account</h3>"#,
    "<p>Its saved logins, room roles and waiting whispers go too; its sessions go on as guests. There is no undo.</p>",
    r#"<label for="remove-name">Account</label>"#,
    r#"<input id="remove-name" autocapitalize="off" spellcheck="false" required>"#,
    r#"<label class="check"><input type="checkbox" required>Yes, remove this account for good</label>"#,
);
