//! Banter's web client: a Yew app compiled to wasm by Trunk and served by
//! `banter` beside its `/ws` endpoint.
//!
//! * [`chat`] — all state and protocol logic, free of browser APIs (tested natively).
//! * [`command`] — the composer's slash commands; [`text`] — actions,
//!   IRC formatting and links; [`reconnect`] — backoff with jitter.
//! * [`conn`] — the WebSocket task; [`browser`] — storage, URL, clock, title.
//! * [`ui`] — the components.

mod browser;
mod chat;
mod command;
mod conn;
mod reconnect;
mod text;
mod ui;

fn main() {
    // The page's "Loading…" placeholder goes once the app can draw.
    if let Some(boot) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("boot"))
    {
        boot.remove();
    }
    yew::Renderer::<ui::App>::new().render();
}
