//! The composer: Enter sends, Shift+Enter adds a line, slash commands,
//! the byte count against the server's limit, and errors shown in place.

use web_sys::HtmlTextAreaElement;
use yew::prelude::*;

use super::Ctx;
use crate::browser;
use crate::chat::View;

#[component]
pub fn Composer() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let value = use_state(String::new);
    let error = use_state(|| None::<String>);
    let chat = ctx.chat.borrow();
    let max = chat.max_text_bytes();
    let online = chat.is_online();
    let place = chat.view.as_ref().map(View::title);
    drop(chat);
    let bytes = value.len();
    let over = bytes > max;

    let submit = {
        let ctx = ctx.clone();
        let value = value.clone();
        let error = error.clone();
        move || {
            if value.trim().is_empty() {
                return;
            }
            match ctx.try_act(|chat| chat.submit(&value, browser::now_ms())) {
                Ok(()) => {
                    value.set(String::new());
                    error.set(None);
                }
                Err(e) => error.set(Some(e)),
            }
        }
    };
    let onkeydown = {
        let submit = submit.clone();
        Callback::from(move |e: KeyboardEvent| {
            if e.key() == "Enter" && !e.shift_key() && !e.is_composing() {
                e.prevent_default();
                submit();
            }
        })
    };
    let onsubmit = Callback::from(move |e: SubmitEvent| {
        e.prevent_default();
        submit();
    });
    let oninput = {
        let value = value.clone();
        let error = error.clone();
        Callback::from(move |e: InputEvent| {
            value.set(e.target_unchecked_into::<HtmlTextAreaElement>().value());
            if error.is_some() {
                error.set(None);
            }
        })
    };
    let placeholder = match &place {
        Some(place) => format!("Message {place} — /help for commands"),
        None => "Type /join room to start".into(),
    };
    let counter_class = classes!(
        "counter",
        over.then_some("over"),
        (bytes * 10 > max * 8).then_some("near")
    );
    html! {
        <form class="composer" onsubmit={onsubmit}>
            <label for="composer-text" class="visually-hidden">{placeholder.clone()}</label>
            <textarea id="composer-text" rows="1" placeholder={placeholder} value={(*value).clone()}
                oninput={oninput} onkeydown={onkeydown} aria-invalid={(over || error.is_some()).to_string()}
                aria-describedby="composer-help composer-count" enterkeyhint="send" />
            <span id="composer-count" class={counter_class} aria-live="polite">
                if bytes * 10 > max * 8 { {format!("{bytes}/{max}")} }
            </span>
            <button type="submit" class="primary" disabled={!online || over} aria-label="Send">{"Send"}</button>
            <p id="composer-help" class={classes!("help", error.is_some().then_some("error"))} role="alert">
                {
                    if let Some(e) = (*error).clone() { e }
                    else if over { format!("{bytes} bytes: the limit is {max}") }
                    else if !online { "Not connected: your text stays here until Banter is back.".into() }
                    else { String::new() }
                }
            </p>
        </form>
    }
}
