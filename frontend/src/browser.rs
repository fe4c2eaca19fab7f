//! Thin wrappers over the browser: clock, randomness, local storage, the
//! URL (fragment and the WebSocket address derived from the page's own
//! location), the page title, and local date/time formatting.

use banter_protocol::{Nick, RoomName};
use wasm_bindgen::JsValue;

const NICK_KEY: &str = "banter.nick";
const ROOMS_KEY: &str = "banter.rooms";
const TOKEN_KEY: &str = "banter.token";

fn window() -> web_sys::Window {
    web_sys::window().expect("a browser window")
}

pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

pub fn random() -> f64 {
    js_sys::Math::random()
}

/// `ws://host/ws`, or `wss://` on https, beside the page: a page at
/// `/chat/` (behind a proxy) talks to `/chat/ws`.
pub fn ws_url() -> String {
    let location = window().location();
    let protocol = location.protocol().unwrap_or_default();
    let host = location.host().unwrap_or_default();
    let path = location.pathname().unwrap_or_else(|_| "/".into());
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let dir = if dir.is_empty() { "/" } else { dir };
    let scheme = if protocol == "https:" { "wss" } else { "ws" };
    format!("{scheme}://{host}{dir}ws")
}

fn storage() -> Option<web_sys::Storage> {
    window().local_storage().ok().flatten()
}

/// The login token remembered from the last visit.
pub fn load_token() -> Option<String> {
    storage()?.get_item(TOKEN_KEY).ok().flatten()
}

/// The nick and rooms remembered from the last visit.
pub fn load_session() -> (Option<Nick>, Vec<RoomName>) {
    let Some(storage) = storage() else {
        return (None, Vec::new());
    };
    let nick = storage
        .get_item(NICK_KEY)
        .ok()
        .flatten()
        .and_then(|n| Nick::new(n).ok());
    let rooms = storage
        .get_item(ROOMS_KEY)
        .ok()
        .flatten()
        .and_then(|json| serde_json::from_str::<Vec<String>>(&json).ok())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| RoomName::new(r).ok())
        .collect();
    (nick, rooms)
}

/// Keeps the login token, or forgets it: also when the nick is forgotten
/// (a revoked login ends at the sign-in form), so a reload never tries a
/// dead token.
pub fn save_token(token: Option<&str>) {
    let Some(storage) = storage() else { return };
    let _ = match token {
        Some(token) => storage.set_item(TOKEN_KEY, token),
        None => storage.remove_item(TOKEN_KEY),
    };
}

pub fn save_session(nick: Option<&Nick>, rooms: &[String]) {
    let Some(storage) = storage() else { return };
    match nick {
        Some(nick) => {
            let _ = storage.set_item(NICK_KEY, nick.as_str());
        }
        None => {
            let _ = storage.remove_item(NICK_KEY);
        }
    }
    if let Ok(json) = serde_json::to_string(rooms) {
        let _ = storage.set_item(ROOMS_KEY, &json);
    }
}

pub fn forget_session() {
    if let Some(storage) = storage() {
        let _ = storage.remove_item(NICK_KEY);
        let _ = storage.remove_item(ROOMS_KEY);
        let _ = storage.remove_item(TOKEN_KEY);
    }
}

/// The browser's own prompt; `None` if cancelled.
pub fn prompt(question: &str, default: &str) -> Option<String> {
    window()
        .prompt_with_message_and_default(question, default)
        .ok()
        .flatten()
}

/// The browser's own confirmation dialog.
pub fn confirm(question: &str) -> bool {
    window().confirm_with_message(question).unwrap_or(false)
}

/// The input with this `id`, which must be on the page (a form read when
/// it is submitted).
pub fn input(id: &str) -> web_sys::HtmlInputElement {
    use wasm_bindgen::JsCast;
    window()
        .document()
        .and_then(|d| d.get_element_by_id(id))
        .expect("an input on the page")
        .unchecked_into()
}

/// Moves the keyboard focus (and a screen reader) to the element `id`.
pub fn focus(id: &str) {
    use wasm_bindgen::JsCast;
    if let Some(el) = window().document().and_then(|d| d.get_element_by_id(id)) {
        let _ = el.unchecked_into::<web_sys::HtmlElement>().focus();
    }
}

/// Keeps Tab inside the element `id` (an open drawer): from its last
/// visible control to its first, and Shift+Tab from the first to the last.
pub fn trap_tab(id: &str, e: &web_sys::KeyboardEvent) {
    let Some(doc) = window().document() else {
        return;
    };
    let Some(el) = doc.get_element_by_id(id) else {
        return;
    };
    let found = call(
        &el,
        "querySelectorAll",
        &[&"a[href],button,input,select,summary".into()],
    );
    let shown: Vec<JsValue> = js_sys::Array::from(&found)
        .iter()
        .filter(|c| call(c, "checkVisibility", &[]).is_truthy())
        .collect();
    let (Some(first), Some(last)) = (shown.first(), shown.last()) else {
        return;
    };
    let active = get(&doc, "activeElement");
    let (from, to) = if e.shift_key() {
        (first, last)
    } else {
        (last, first)
    };
    if &active == from || !call(&el, "contains", &[&active]).is_truthy() {
        e.prevent_default();
        call(to, "focus", &[]);
    }
}

/// Focuses `id` if the focus is lost (on the page itself) or still in
/// `within` (a drawer just closed).
pub fn focus_back(id: &str, within: &str) {
    let Some(doc) = window().document() else {
        return;
    };
    let active = get(&doc, "activeElement");
    let lost = active.is_null() || active == JsValue::from(doc.body());
    let inside = doc
        .get_element_by_id(within)
        .is_some_and(|el| call(&el, "contains", &[&active]).is_truthy());
    if lost || inside {
        focus(id);
    }
}

pub fn reload() {
    let _ = window().location().reload();
}

pub fn fragment() -> String {
    window().location().hash().unwrap_or_default()
}

/// Puts the view in the URL without adding a history entry per click.
pub fn set_fragment(fragment: &str) {
    let wanted = format!("#{fragment}");
    if self::fragment() == wanted {
        return;
    }
    if let Ok(history) = window().history() {
        let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&wanted));
    }
}

pub fn set_title(title: &str) {
    if let Some(doc) = window().document() {
        doc.set_title(title);
    }
}

pub fn page_visible() -> bool {
    window()
        .document()
        .is_none_or(|d| d.visibility_state() == web_sys::VisibilityState::Visible)
}

fn date(ts: u64) -> js_sys::Date {
    js_sys::Date::new(&JsValue::from_f64(ts as f64))
}

/// `14:05` (in the user's locale and time zone).
pub fn local_time(ts: u64) -> String {
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"hour".into(), &"2-digit".into());
    let _ = js_sys::Reflect::set(&options, &"minute".into(), &"2-digit".into());
    date(ts)
        .to_locale_time_string_with_options("default", &options)
        .into()
}

/// `Tuesday, 1 December 2026` (in the user's locale).
pub fn local_day(ts: u64) -> String {
    let options = js_sys::Object::new();
    for (key, value) in [
        ("weekday", "long"),
        ("year", "numeric"),
        ("month", "long"),
        ("day", "numeric"),
    ] {
        let _ = js_sys::Reflect::set(&options, &key.into(), &value.into());
    }
    date(ts).to_locale_date_string("default", &options).into()
}

/// How far local time is ahead of UTC now, in milliseconds (for day
/// separators: one call per redraw, not one per line).
pub fn utc_offset_ms() -> i64 {
    -(js_sys::Date::new_0().get_timezone_offset() * 60_000.0) as i64
}

/// Calls `f` on every `event` of the window (or of the document, for
/// `visibilitychange`) for the life of the page.
pub fn listen(event: &str, f: impl Fn() + 'static) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    let closure = Closure::<dyn Fn()>::new(f);
    let target: web_sys::EventTarget = if event == "visibilitychange" {
        match window().document() {
            Some(doc) => doc.into(),
            None => return,
        }
    } else {
        window().into()
    };
    let _ = target.add_event_listener_with_callback(event, closure.as_ref().unchecked_ref());
    // The app lives as long as the page: the listener does too.
    closure.forget();
}

// Notifications, the service worker and Web Push, reached through
// `Reflect` rather than web-sys bindings: a few shared helpers cost less
// download than a binding per method.

fn get(value: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(value, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

fn call(value: &JsValue, method: &str, args: &[&JsValue]) -> JsValue {
    use wasm_bindgen::JsCast;
    let args: js_sys::Array = args.iter().copied().collect();
    get(value, method)
        .dyn_ref::<js_sys::Function>()
        .and_then(|f| f.apply(value, &args).ok())
        .unwrap_or(JsValue::UNDEFINED)
}

/// Waits for a promise (or a value); `None` if it was rejected.
async fn settle(value: JsValue) -> Option<JsValue> {
    let promise = js_sys::Promise::resolve(&value);
    wasm_bindgen_futures::JsFuture::from(promise)
        .await
        .ok()
        .filter(|v| !v.is_null() && !v.is_undefined())
}

fn object(pairs: &[(&str, JsValue)]) -> JsValue {
    let object = js_sys::Object::new();
    for (key, value) in pairs {
        let _ = js_sys::Reflect::set(&object, &(*key).into(), value);
    }
    object.into()
}

fn notification_api() -> JsValue {
    get(&window(), "Notification")
}

/// `granted`, `denied` or `default` (not asked yet); empty where the
/// browser has no notifications.
pub fn notification_permission() -> String {
    get(&notification_api(), "permission")
        .as_string()
        .unwrap_or_default()
}

/// Asks the user to allow notifications (only ever from a click); `f`
/// runs once the answer is in.
pub fn ask_notifications(f: impl FnOnce() + 'static) {
    let asked = call(&notification_api(), "requestPermission", &[]);
    wasm_bindgen_futures::spawn_local(async move {
        settle(asked).await;
        f();
    });
}

/// A system notification (one per `tag`: a newer one replaces it); a
/// click focuses the page and runs `on_click`.
pub fn notify(title: &str, body: &str, tag: &str, on_click: impl FnOnce() + 'static) {
    use wasm_bindgen::JsCast;
    let Ok(api) = notification_api().dyn_into::<js_sys::Function>() else {
        return;
    };
    let options = object(&[
        ("body", body.into()),
        ("tag", tag.into()),
        ("icon", "icon-192.png".into()),
    ]);
    let args = js_sys::Array::of2(&title.into(), &options);
    let Ok(shown) = js_sys::Reflect::construct(&api, &args) else {
        return;
    };
    let this = shown.clone();
    let click = wasm_bindgen::closure::Closure::once_into_js(move || {
        let _ = window().focus();
        call(&this, "close", &[]);
        on_click();
    });
    let _ = js_sys::Reflect::set(&shown, &"onclick".into(), &click);
}

fn service_worker() -> JsValue {
    get(&get(&window(), "navigator"), "serviceWorker")
}

/// Registers `sw.js` (beside the page, so its scope is the page's) and
/// hands `on_message` what it posts: a push notification's click.
pub fn start_worker(on_message: impl Fn(JsValue) + 'static) {
    use wasm_bindgen::closure::Closure;
    let worker = service_worker();
    if worker.is_undefined() {
        return;
    }
    let registered = call(&worker, "register", &[&"sw.js".into()]);
    wasm_bindgen_futures::spawn_local(async move {
        settle(registered).await;
    });
    let listener = Closure::<dyn Fn(JsValue)>::new(move |e: JsValue| on_message(get(&e, "data")));
    call(
        &worker,
        "addEventListener",
        &[&"message".into(), listener.as_ref()],
    );
    listener.forget();
}

/// A field of a message the worker posted.
pub fn field(data: &JsValue, key: &str) -> JsValue {
    get(data, key)
}

/// This browser's Web Push subscription as (endpoint, p256dh, auth): a
/// new one for the server's `key`, or (no key) the one it has, if any.
pub async fn push_subscription(key: Option<String>) -> Option<(String, String, String)> {
    if service_worker().is_undefined() {
        return None;
    }
    let ready = settle(get(&service_worker(), "ready")).await?;
    let manager = get(&ready, "pushManager");
    let subscription = match key {
        Some(key) => {
            let options = object(&[
                ("userVisibleOnly", true.into()),
                ("applicationServerKey", key.into()),
            ]);
            settle(call(&manager, "subscribe", &[&options])).await?
        }
        None => settle(call(&manager, "getSubscription", &[])).await?,
    };
    let json = call(&subscription, "toJSON", &[]);
    let keys = get(&json, "keys");
    Some((
        get(&json, "endpoint").as_string()?,
        get(&keys, "p256dh").as_string()?,
        get(&keys, "auth").as_string()?,
    ))
}

/// Ends this browser's Web Push subscription; its endpoint, if it had one.
pub async fn push_unsubscribe() -> Option<String> {
    let ready = settle(get(&service_worker(), "ready")).await?;
    let subscription = settle(call(&get(&ready, "pushManager"), "getSubscription", &[])).await?;
    let endpoint = get(&subscription, "endpoint").as_string();
    settle(call(&subscription, "unsubscribe", &[])).await;
    endpoint
}
