//! The Account panel, in the conversation's place while it is open (only
//! for a logged-in user): change the password, sign out everywhere, delete
//! the account. The forms are read when submitted; what the server answers
//! comes back through [`Chat::account_reply`](crate::chat::Chat) and shows
//! under the form that asked, as a sentence screen readers announce.

use yew::prelude::*;

use super::Ctx;
use crate::browser;
use crate::chat::AccountAction;

#[component]
pub fn AccountPanel() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    // The two new passwords differ (the browser checks the rest: `required`,
    // `minlength`).
    let mismatch = use_state(|| false);
    // The heading takes the focus, so a screen reader says where we are.
    use_effect_with((), |_| browser::focus("account-title"));
    let chat = ctx.chat.borrow();
    let busy = chat.account_waiting.is_some() || !chat.is_online();
    let account = chat.account.clone();
    let reply = chat.account_reply.clone();
    drop(chat);

    let note = |action: AccountAction, id: &'static str| {
        let (text, ok) = match &reply {
            _ if *mismatch && action == AccountAction::ChangePassword => {
                ("The two new passwords differ.".into(), false)
            }
            Some(r) if r.action == action => match &r.result {
                Ok(text) => (text.clone(), true),
                Err(text) => (text.clone(), false),
            },
            _ => (String::new(), true),
        };
        html! {
            <p id={id} class={classes!("help", if ok { "ok" } else { "error" })} role="alert">{text}</p>
        }
    };
    // Reads a field and empties it: passwords don't linger on the page.
    let take = |id: &str| {
        let input = browser::input(id);
        let value = input.value();
        input.set_value("");
        value
    };
    let close = {
        let ctx = ctx.clone();
        Callback::from(move |_: MouseEvent| ctx.act(|chat| chat.open_panel(None)))
    };
    let change = {
        let (ctx, mismatch) = (ctx.clone(), mismatch.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let (new, again) = (take("new-password"), take("new-password-again"));
            mismatch.set(new != again);
            let old = take("old-password");
            if new == again {
                ctx.act(|chat| chat.change_password(old, new));
            }
        })
    };
    let everywhere = {
        let ctx = ctx.clone();
        Callback::from(move |_: MouseEvent| ctx.act(|chat| chat.sign_out_everywhere()))
    };
    let delete = {
        let ctx = ctx.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let password = take("delete-password");
            ctx.act(|chat| chat.delete_account(password));
        })
    };
    html! {
        <section class="account" aria-labelledby="account-title">
            <h2 id="account-title" tabindex="-1">{"Your account"}</h2>
            if let Some(account) = account {
                <p class="muted">{"Logged in as "}<b>{account.to_string()}</b></p>
                <form class="card" onsubmit={change} aria-labelledby="password-title">
                    <h3 id="password-title">{"Change password"}</h3>
                    <label for="old-password">{"Current password"}</label>
                    <input id="old-password" type="password" autocomplete="current-password" required=true />
                    <label for="new-password">{"New password "}<span class="muted">{"(8 to 256 characters)"}</span></label>
                    <input id="new-password" type="password" autocomplete="new-password" minlength="8" maxlength="256" required=true />
                    <label for="new-password-again">{"New password again"}</label>
                    <input id="new-password-again" type="password" autocomplete="new-password" maxlength="256" required=true
                        aria-describedby="password-help" />
                    {note(AccountAction::ChangePassword, "password-help")}
                    <button class="primary" disabled={busy}>{"Change password"}</button>
                </form>
                <section class="card" aria-labelledby="everywhere-title">
                    <h3 id="everywhere-title">{"Sign out everywhere"}</h3>
                    <p id="everywhere-about">{"Ends every session of this account, this one included, and every saved login."}</p>
                    {note(AccountAction::SignOutEverywhere, "everywhere-help")}
                    <button onclick={everywhere} disabled={busy} aria-describedby="everywhere-about everywhere-help">{"Sign out everywhere"}</button>
                </section>
                <form class="card" onsubmit={delete} aria-labelledby="delete-title">
                    <h3 id="delete-title">{"Delete account"}</h3>
                    <p>{"Its saved logins, room roles and waiting whispers go too, and the nick is free for anyone. This page goes on as a guest. There is no undo."}</p>
                    <label for="delete-password">{"Password"}</label>
                    <input id="delete-password" type="password" autocomplete="current-password" required=true />
                    <label class="check">
                        <input type="checkbox" required=true aria-describedby="delete-help" />
                        {"Yes, delete my account for good"}
                    </label>
                    {note(AccountAction::Delete, "delete-help")}
                    <button class="danger" disabled={busy}>{"Delete account"}</button>
                </form>
            } else {
                {note(AccountAction::Delete, "delete-help")}
            }
            <button class="link" onclick={close}>{"Back to the conversation"}</button>
        </section>
    }
}
