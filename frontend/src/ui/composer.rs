//! The composer: Enter sends, Shift+Enter adds a line, slash commands,
//! the byte count against the server's limit, and errors shown in place.
//! It also replies ("Replying to alice: …") and edits (the message's text
//! in the box; Escape cancels either; up-arrow in an empty box edits our
//! last message), and tells the others we are typing.

use web_sys::HtmlTextAreaElement;
use yew::prelude::*;

use super::Ctx;
use crate::browser;
use crate::chat::{Draft, Quote, View};

#[component]
pub fn Composer() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let value = use_state(String::new);
    let error = use_state(|| None::<String>);
    let chat = ctx.chat.borrow();
    let max = chat.max_text_bytes();
    let online = chat.is_online();
    let place = chat.view.as_ref().map(View::title);
    let draft = chat.draft.clone();
    let draft_line = match &draft {
        Some(Draft::Reply(id)) => Some(match chat.current().map(|c| c.quote(*id)) {
            Some(Quote::Found(nick, text)) => format!("Replying to {nick}: {text}"),
            _ => "Replying to an earlier message".into(),
        }),
        Some(Draft::Edit(..)) => Some("Editing your message".into()),
        None => None,
    };
    drop(chat);
    let editing = matches!(draft, Some(Draft::Edit(..)));
    // An edit puts the message's text in the box, and takes it away
    // when it ends; a reply or an edit takes the focus (the box is on the
    // page already: no effect needed).
    let seen = use_mut_ref(|| None::<Draft>);
    if *seen.borrow() != draft {
        let was_editing = matches!(seen.replace(draft.clone()), Some(Draft::Edit(..)));
        match &draft {
            Some(Draft::Edit(_, text)) => value.set(text.clone()),
            _ if was_editing => value.set(String::new()),
            _ => {}
        }
        if draft.is_some() {
            browser::focus("composer-text");
        }
    }
    let cancel = {
        let ctx = ctx.clone();
        Callback::from(move |_: ()| {
            ctx.act(|chat| {
                chat.cancel_draft();
                Vec::new()
            })
        })
    };
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
        let ctx = ctx.clone();
        let cancel = cancel.clone();
        let empty = value.is_empty();
        let drafting = draft_line.is_some();
        Callback::from(move |e: KeyboardEvent| match e.key().as_str() {
            "Enter" if !e.shift_key() && !e.is_composing() => {
                e.prevent_default();
                submit();
            }
            "Escape" if drafting => {
                e.prevent_default();
                cancel.emit(());
            }
            "ArrowUp" if empty => {
                e.prevent_default();
                ctx.act(|chat| {
                    chat.edit_last();
                    Vec::new()
                });
            }
            _ => {}
        })
    };
    let onsubmit = Callback::from(move |e: SubmitEvent| {
        e.prevent_default();
        submit();
    });
    let oninput = {
        let value = value.clone();
        let error = error.clone();
        let ctx = ctx.clone();
        Callback::from(move |e: InputEvent| {
            let text = e.target_unchecked_into::<HtmlTextAreaElement>().value();
            ctx.act_quietly(|chat| chat.typed(&text, browser::now_ms()));
            value.set(text);
            if error.is_some() {
                error.set(None);
            }
        })
    };
    let placeholder = match &place {
        Some(place) => format!("Message {place}"),
        None => "Type /join room to start".into(),
    };
    let counter_class = classes!(
        "counter",
        over.then_some("over"),
        (bytes * 10 > max * 8).then_some("near")
    );
    html! {
        <form class={classes!("composer", editing.then_some("editing"))} onsubmit={onsubmit}>
            if let Some(line) = draft_line {
                <div class="draft">
                    <span>{line}</span>
                    <button type="button" class="link" onclick={cancel.reform(|_: MouseEvent| ())}>{"Cancel"}</button>
                </div>
            }
            <label for="composer-text" class="visually-hidden">{placeholder.clone()}</label>
            <textarea id="composer-text" rows="1" placeholder={placeholder} value={(*value).clone()}
                oninput={oninput} onkeydown={onkeydown} aria-invalid={(over || error.is_some()).to_string()}
                aria-describedby="composer-help composer-count" enterkeyhint="send" />
            <span id="composer-count" class={counter_class} aria-live="polite">
                if bytes * 10 > max * 8 { {format!("{bytes}/{max}")} }
            </span>
            <button type="submit" class="primary" disabled={!online || over}>{if editing { "Save" } else { "Send" }}</button>
            <p id="composer-help" class={classes!("help", error.is_some().then_some("error"))} role="alert">
                {
                    if let Some(e) = (*error).clone() { e }
                    else if over { format!("{bytes} bytes: the limit is {max}") }
                    else if !online { "Not connected: your text stays here until Banter is back.".into() }
                    else { "Enter sends, Shift+Enter starts a line, /help lists commands".into() }
                }
            </p>
        </form>
    }
}
