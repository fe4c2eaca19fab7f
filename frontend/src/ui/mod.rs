//! The page: [`App`] owns the [`Chat`] and the connection and hands both to
//! the components through a [`Ctx`] context.

mod account;
mod admin;
mod app;
mod attention;
mod composer;
mod members;
mod messages;
mod sidebar;
mod signin;

use std::cell::RefCell;
use std::rc::Rc;

use yew::{AttrValue, Callback, Html};

pub use app::App;

use crate::chat::{Chat, Request};
use crate::conn;

/// What every component can reach: the state (read it with `borrow()`),
/// and `act` to change it and send what the change asks for.
#[derive(Clone)]
pub struct Ctx {
    pub chat: Rc<RefCell<Chat>>,
    /// The state's version when this context was made; a new one redraws.
    pub version: u64,
    sender: conn::Sender,
    redraw: Callback<()>,
}

impl PartialEq for Ctx {
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version
            && Rc::ptr_eq(&self.chat, &other.chat)
            && self.sender == other.sender
    }
}

impl Ctx {
    /// Runs `f` on the state, sends the requests it returns, redraws.
    pub fn act(&self, f: impl FnOnce(&mut Chat) -> Vec<Request>) {
        let requests = f(&mut self.chat.borrow_mut());
        self.send(requests);
    }

    /// Like [`act`](Self::act) for changes that may be refused with a
    /// sentence for the user (nothing is sent then).
    pub fn try_act(
        &self,
        f: impl FnOnce(&mut Chat) -> Result<Vec<Request>, String>,
    ) -> Result<(), String> {
        let requests = f(&mut self.chat.borrow_mut())?;
        self.send(requests);
        Ok(())
    }

    /// Like [`act`](Self::act) for changes the page does not show (what
    /// we type): nothing is redrawn unless something is sent.
    pub fn act_quietly(&self, f: impl FnOnce(&mut Chat) -> Vec<Request>) {
        let requests = f(&mut self.chat.borrow_mut());
        if !requests.is_empty() {
            self.send(requests);
        }
    }

    fn send(&self, requests: Vec<Request>) {
        if !self.sender.send(requests) {
            web_sys::console::warn_1(&"too many requests waiting; some were dropped".into());
        }
        self.redraw.emit(());
    }
}

/// Markup that never changes, as one string: the same elements written in
/// `html!` cost several times their size in code (the download budget).
/// Only such constants are ever put on the page as HTML, never user text.
fn raw(html: &'static str) -> Html {
    Html::from_html_unchecked(AttrValue::Static(html))
}
