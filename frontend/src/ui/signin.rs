//! The sign-in form: choose a nick, checked as the server would check it,
//! with the server's refusal (a nick in use) shown in place.

use banter_protocol::Nick;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::Ctx;
use crate::chat::Status;

#[component]
pub fn SignIn() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let value = use_state(String::new);
    let touched = use_state(|| false);
    let server_error = match &ctx.chat.borrow().status {
        Status::NickRefused(message) => Some(message.clone()),
        _ => None,
    };
    let check = Nick::new(value.trim());
    let error = match (&check, *touched) {
        (Err(e), true) => Some(e.problem.to_string()),
        _ => server_error,
    };
    let oninput = {
        let value = value.clone();
        Callback::from(move |e: InputEvent| {
            value.set(e.target_unchecked_into::<HtmlInputElement>().value());
        })
    };
    let onsubmit = {
        let touched = touched.clone();
        let ctx = ctx.clone();
        let check = check.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            touched.set(true);
            if let Ok(nick) = check.clone() {
                ctx.act(|chat| chat.sign_in(nick));
            }
        })
    };
    html! {
        <main class="signin">
            <form class="card" onsubmit={onsubmit} novalidate=true>
                <img src="icon.svg" alt="" width="56" height="56" />
                <h1>{"Banter"}</h1>
                <p class="muted">{"Chat with people on the web and on IRC or TCP clients, in the same rooms."}</p>
                <label for="nick">{"Choose a nick"}</label>
                <input id="nick" name="nick" autocomplete="nickname" autocapitalize="off" spellcheck="false"
                    maxlength="24" placeholder="e.g. alice" value={(*value).clone()} oninput={oninput}
                    aria-invalid={error.is_some().to_string()} aria-describedby="nick-help" autofocus=true />
                <p id="nick-help" class={classes!("help", error.is_some().then_some("error"))} role="alert">
                    { error.unwrap_or_else(|| "1–24 characters: letters, digits, - and []\\`_^{|}; not a digit first.".into()) }
                </p>
                <button type="submit" class="primary">{"Start chatting"}</button>
            </form>
        </main>
    }
}
