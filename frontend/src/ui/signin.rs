//! The sign-in form: a nick (checked as the server would check it), and
//! optionally a password to log into that nick's account or to create
//! one (with an invite code, which some servers need). The server's
//! refusals (nick in use, reserved, wrong password, no invite) are shown
//! in place.

use banter_protocol::Nick;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::Ctx;
use crate::chat::Status;

/// Passwords the server accepts (bytes).
const PASSWORD_LEN: std::ops::RangeInclusive<usize> = 8..=256;

#[component]
pub fn SignIn() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let nick = use_state(String::new);
    let password = use_state(String::new);
    let invite = use_state(String::new);
    let create = use_state(|| false);
    let touched = use_state(|| false);
    let server_error = match &ctx.chat.borrow().status {
        Status::NickRefused(message) => Some(message.clone()),
        _ => None,
    };
    let check = Nick::new(nick.trim());
    let password_error = (*create && !PASSWORD_LEN.contains(&password.len()))
        .then(|| "a new account's password has 8 to 256 characters".to_string());
    let error = match (&check, *touched) {
        (Err(e), true) => Some(nick_problem(&nick, &e.problem.to_string())),
        _ => server_error,
    };
    let bad_password = password_error.is_some();
    let password_error = password_error.filter(|_| *touched);
    let input = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |e: InputEvent| {
            state.set(e.target_unchecked_into::<HtmlInputElement>().value());
        })
    };
    let toggle = {
        let create = create.clone();
        Callback::from(move |e: Event| {
            create.set(e.target_unchecked_into::<HtmlInputElement>().checked());
        })
    };
    let onsubmit = {
        let touched = touched.clone();
        let ctx = ctx.clone();
        let (check, password, create) = (check.clone(), password.clone(), *create);
        let invite = invite.trim().to_string();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            touched.set(true);
            if let (Ok(nick), false) = (check.clone(), bad_password) {
                let password = (!password.is_empty()).then(|| (*password).clone());
                let invite = (!invite.is_empty()).then_some(invite.clone());
                ctx.act(|chat| chat.sign_in(nick, password, create, invite));
            }
        })
    };
    let waiting = !matches!(
        ctx.chat.borrow().status,
        Status::SignedOut | Status::NickRefused(_)
    );
    let button = match (*create, password.is_empty()) {
        _ if waiting => "Signing in…",
        (true, _) => "Create account",
        (false, false) => "Log in",
        (false, true) => "Start chatting",
    };
    html! {
        <main class="signin">
            <form class="card" onsubmit={onsubmit} novalidate=true>
                <img src="icon.svg" alt="" width="56" height="56" />
                <h1>{"Banter"}</h1>
                <p class="muted">{"Chat with people on the web and on IRC or TCP clients, in the same rooms."}</p>
                <label for="nick">{"Choose a nick"}</label>
                <input id="nick" name="nick" autocomplete="username" autocapitalize="off" spellcheck="false"
                    maxlength="24" placeholder="e.g. alice" value={(*nick).clone()} oninput={input(&nick)}
                    aria-invalid={error.is_some().to_string()} aria-describedby="nick-help" autofocus=true />
                <p id="nick-help" class={classes!("help", error.is_some().then_some("error"))} role="alert">
                    { error.unwrap_or_else(|| "Without a password you chat as a guest. Nicks: 1–24 characters, letters, digits, - and []\\`_^{|}; not a digit first.".into()) }
                </p>
                <label for="password">{"Password "}<span class="muted">{"(only for an account)"}</span></label>
                <input id="password" name="password" type="password" maxlength="256"
                    autocomplete={if *create { "new-password" } else { "current-password" }}
                    value={(*password).clone()} oninput={input(&password)} aria-describedby="password-help"
                    aria-invalid={password_error.is_some().to_string()} />
                <label class="check">
                    <input type="checkbox" checked={*create} onchange={toggle} />
                    {"Create an account with this nick and password"}
                </label>
                if *create {
                    <label for="invite">{"Invite code "}<span class="muted">{"(optional)"}</span></label>
                    <input id="invite" name="invite" autocomplete="off" autocapitalize="off" spellcheck="false"
                        maxlength="128" value={(*invite).clone()} oninput={input(&invite)} aria-describedby="invite-help" />
                    <p id="invite-help" class="help">{"Some servers need one to create an account: their administrator gives it out."}</p>
                }
                <p id="password-help" class="help error" role="alert">{password_error}</p>
                <button type="submit" class="primary" disabled={waiting}>{button}</button>
            </form>
        </main>
    }
}

/// The nick check's refusal, naming every character a nick cannot have
/// (the check itself stops at the first).
fn nick_problem(nick: &str, problem: &str) -> String {
    let mut bad = Vec::new();
    for c in nick.trim().chars() {
        if !(c.is_ascii_alphanumeric() || "-[]\\`_^{|}".contains(c) || bad.contains(&c)) {
            bad.push(c);
        }
    }
    if bad.is_empty() {
        return format!("This nick: {problem}");
    }
    let shown: Vec<String> = bad.iter().map(|c| format!("{c:?}")).collect();
    format!(
        "Not allowed in a nick: {}. Use letters, digits, - and []\\`_^{{|}}",
        shown.join(" ")
    )
}
