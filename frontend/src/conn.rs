//! The WebSocket connection: opens `/ws` beside the page, feeds every
//! server frame to [`Chat`], sends what it answers and what the user does,
//! and reconnects with backoff when the connection drops.

use std::cell::RefCell;
use std::rc::Rc;

use banter_protocol::{Envelope, ServerMessage};
use futures_channel::mpsc;
use futures_util::{SinkExt, StreamExt, stream};
use gloo_net::websocket::{Message, futures::WebSocket};
use gloo_timers::future::{IntervalStream, TimeoutFuture};
use yew::Callback;

use crate::browser;
use crate::chat::{Chat, Request};

/// Requests the user made, waiting for the connection. Small: the UI only
/// queues what one person types.
const OUTGOING: usize = 64;

/// The UI's handle on the connection.
#[derive(Clone)]
pub struct Sender(mpsc::Sender<Request>);

impl Sender {
    /// Queues requests; `false` if too many are already waiting.
    pub fn send(&self, requests: Vec<Request>) -> bool {
        let mut tx = self.0.clone();
        requests.into_iter().all(|r| tx.try_send(r).is_ok())
    }
}

impl PartialEq for Sender {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_receiver(&other.0)
    }
}

enum Event {
    Server(Option<Result<Message, gloo_net::websocket::WebSocketError>>),
    User(Request),
    /// A second went by.
    Tick,
}

/// Starts the connection task; `changed` redraws the page.
pub fn start(chat: Rc<RefCell<Chat>>, changed: Callback<()>) -> Sender {
    let (tx, rx) = mpsc::channel(OUTGOING);
    wasm_bindgen_futures::spawn_local(run(chat, changed, rx));
    Sender(tx)
}

async fn run(chat: Rc<RefCell<Chat>>, changed: Callback<()>, mut user: mpsc::Receiver<Request>) {
    loop {
        if chat.borrow().wants_connection() {
            chat.borrow_mut().on_connecting();
            changed.emit(());
            match WebSocket::open(&browser::ws_url()) {
                Ok(ws) => session(ws, &chat, &changed, &mut user).await,
                // The browser's console shows why; the status shows offline.
                Err(_) => web_sys_log("cannot open the WebSocket"),
            }
            let wait = chat
                .borrow_mut()
                .on_close(browser::random(), browser::now_ms());
            changed.emit(());
            TimeoutFuture::new(wait.min(u32::MAX as u64) as u32).await;
        } else {
            // Signed out: wait for the sign-in form.
            TimeoutFuture::new(200).await;
        }
    }
}

async fn session(
    ws: WebSocket,
    chat: &Rc<RefCell<Chat>>,
    changed: &Callback<()>,
    user: &mut mpsc::Receiver<Request>,
) {
    let (mut sink, source) = ws.split();
    // Requests typed while offline were refused already; drop leftovers.
    while user.try_recv().is_ok() {}
    let hello = chat.borrow_mut().on_open();
    if send_all(&mut sink, hello).await.is_err() {
        return;
    }
    changed.emit(());
    let server = source
        .map(|m| Event::Server(Some(m)))
        .chain(stream::once(std::future::ready(Event::Server(None))));
    // Every second: a read mark that had to wait goes.
    let ticks = IntervalStream::new(1000).map(|()| Event::Tick);
    let mut events = stream::select(
        stream::select(server, user.by_ref().map(Event::User)),
        ticks,
    );
    while let Some(event) = events.next().await {
        let replies = match event {
            Event::Server(Some(Ok(Message::Text(text)))) => match decode(&text) {
                Ok(envelope) => chat.borrow_mut().on_message(envelope, browser::now_ms()),
                Err(_) => {
                    // A newer server's message type, most likely. The text
                    // goes to the console rather than serde's explanation,
                    // whose formatting code would cost download size.
                    web_sys_log(&text);
                    continue;
                }
            },
            Event::Server(Some(Ok(Message::Bytes(_)))) => continue,
            Event::Server(Some(Err(_)) | None) => return,
            Event::User(request) => vec![request],
            Event::Tick => {
                let mut chat = chat.borrow_mut();
                let now = browser::now_ms();
                let due = chat.tick(now);
                // Redrawn when something goes, or someone stopped typing.
                if !chat.expire_typing(now) && due.is_empty() {
                    continue;
                }
                due
            }
        };
        changed.emit(());
        if send_all(&mut sink, replies).await.is_err() {
            return;
        }
    }
}

// The wire form is an `Envelope`: the message's fields with `ref` beside
// them. Reading it with the protocol's one-pass decoder and writing the
// message and the `ref` separately gives the same JSON as serde's
// `flatten` with a fraction of its code — and code is what the browser
// downloads.

fn decode(text: &str) -> serde_json::Result<Envelope<ServerMessage>> {
    // The protocol's decoder, as built for the web, reads rooms' history
    // only; search results (rooms' messages and direct ones alike) are
    // read here, straight into their type.
    if text.starts_with(r#"{"type":"search_results""#) {
        #[derive(serde::Deserialize)]
        struct Results {
            messages: Vec<banter_protocol::Found>,
            #[serde(rename = "ref")]
            reference: Option<banter_protocol::Ref>,
        }
        let r: Results = serde_json::from_str(text)?;
        let body = ServerMessage::SearchResults {
            messages: r.messages,
        };
        return Ok(Envelope::with_ref(body, r.reference));
    }
    banter_protocol::decode_server_frame(text)
}

fn encode(request: &Request) -> serde_json::Result<String> {
    // A message is always a JSON object: `{"type":…}`.
    let mut text = serde_json::to_string(&request.body)?;
    if let Some(reference) = &request.reference {
        text.pop();
        text.push_str(",\"ref\":");
        text.push_str(&serde_json::to_string(reference)?);
        text.push('}');
    }
    Ok(text)
}

async fn send_all<S>(sink: &mut S, requests: Vec<Request>) -> Result<(), ()>
where
    S: futures_util::Sink<Message> + Unpin,
{
    for request in requests {
        let text = encode(&request).map_err(drop)?;
        sink.send(Message::Text(text)).await.map_err(drop)?;
    }
    Ok(())
}

fn web_sys_log(text: &str) {
    web_sys::console::warn_1(&text.into());
}

#[cfg(test)]
mod tests {
    use banter_protocol::{ClientMessage, Ref, RoomName, parse_request};

    use super::*;

    #[test]
    fn the_split_encoding_is_the_envelope() {
        let room = RoomName::new("lobby").unwrap();
        for reference in [None, Some(Ref::Int(7)), Some(Ref::Str("a\"b".into()))] {
            for body in [
                ClientMessage::Ping,
                ClientMessage::Join {
                    room: room.clone(),
                    key: None,
                    rejoin: true,
                },
            ] {
                let request = Envelope::with_ref(body, reference.clone());
                let text = encode(&request).unwrap();
                assert_eq!(parse_request(text.as_bytes()).unwrap(), request, "{text}");
            }
        }
        let got = decode(r#"{"type":"parted","room":"lobby","ref":3}"#).unwrap();
        assert_eq!(
            got,
            Envelope::with_ref(
                ServerMessage::Parted { room, reason: None },
                Some(Ref::Int(3))
            )
        );
    }
}
