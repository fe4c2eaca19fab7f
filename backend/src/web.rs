//! Serves the web client (Trunk's `frontend/dist`) on the HTTP port, beside
//! `/ws`. Release builds embed it, with gzip and brotli versions computed at
//! build time, so the binary alone is a deployment; `--web-dir DIR` serves a
//! directory instead (for front-end work).
//!
//! Caching: Trunk puts a content hash in the names of the wasm, JS and CSS
//! files, so those are cached for a year (`immutable`); everything else
//! (`index.html`, the icon, the manifest) is revalidated with its ETag.
//!
//! Security headers ([`security_headers`]), on every response of the HTTP
//! port, the built-in client's and a `--web-dir`'s alike: a
//! Content-Security-Policy that lets only the page's own files run (and
//! its wasm compile), plus the hash of the one inline script Trunk writes
//! (the module that starts the wasm); no framing; no referrer; no MIME
//! sniffing; and HSTS when banter itself serves TLS.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rust_embed_for_web::{EmbedableFile, RustEmbed};
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

#[derive(RustEmbed)]
#[folder = "$CARGO_MANIFEST_DIR/../frontend/dist"]
#[allow_missing = true]
struct Client;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// The routes for the web client: everything the other routes don't claim.
pub fn routes<S: Clone + Send + Sync + 'static>(web_dir: Option<PathBuf>) -> Router<S> {
    // Responses that are not precompressed (a --web-dir, or a debug build,
    // which reads the files from disk) are compressed on the fly.
    let compression = CompressionLayer::new()
        .no_deflate()
        .no_zstd()
        .quality(CompressionLevel::Default);
    match web_dir {
        Some(dir) => Router::new()
            .fallback_service(ServeDir::new(dir).append_index_html_on_directories(true))
            .layer(SetResponseHeaderLayer::overriding(
                header::CACHE_CONTROL,
                HeaderValue::from_static(REVALIDATE),
            ))
            .layer(compression),
        None => Router::new().fallback(embedded).layer(compression),
    }
}

/// Whether the embedded client (or, in debug builds, `frontend/dist`) is there.
pub fn embedded_client_present() -> bool {
    Client::get("index.html").is_some()
}

async fn embedded(request: Request) -> Response {
    let path = request.uri().path().trim_start_matches('/');
    let path = if path.is_empty() || path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path.to_string()
    };
    let Some(file) = Client::get(&path) else {
        if path == "index.html" {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "Banter is running, but this build has no web client in it.\n\
                 Build it with scripts/run (or `trunk build --release`, then rebuild banter),\n\
                 or point --web-dir at a built client. WebSocket clients can use /ws.\n",
            )
                .into_response();
        }
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    serve(&path, file, request.headers())
}

fn serve(path: &str, file: impl EmbedableFile, request: &HeaderMap) -> Response {
    let etag = file.etag();
    let mut response = if if_none_match(request, etag.as_ref()) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let accepts = |coding: &str| {
            request
                .get_all(header::ACCEPT_ENCODING)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|c| c.split(';').next().unwrap_or("").trim() == coding)
        };
        let (body, encoding) = match (file.data_br(), file.data_gzip()) {
            (Some(br), _) if accepts("br") => (Body::from(br.as_ref().to_vec()), Some("br")),
            (_, Some(gz)) if accepts("gzip") => (Body::from(gz.as_ref().to_vec()), Some("gzip")),
            _ => (Body::from(file.data().as_ref().to_vec()), None),
        };
        let mut response = Response::new(body);
        if let Some(encoding) = encoding {
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
        let mime = file.mime_type();
        let mime = mime
            .as_ref()
            .map_or("application/octet-stream", |m| m.as_ref());
        if let Ok(value) = HeaderValue::from_str(mime) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        response
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(etag.as_ref()) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if is_hashed(path) {
            IMMUTABLE
        } else {
            REVALIDATE
        }),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn if_none_match(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == etag
        })
}

/// Trunk's hashed names: `banter-frontend-0123456789abcdef_bg.wasm`,
/// `banter-0123456789abcdef.css`. The hash is a 64-bit number in hex
/// without leading zeros: 16 digits, or fewer one build in sixteen (fewer
/// than 12 is too rare to matter, and too short to tell from a word).
fn is_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let stem = name.split('.').next().unwrap_or(name);
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.rsplit_once('-').is_some_and(|(_, hash)| {
        (12..=16).contains(&hash.len()) && hash.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// The Content-Security-Policy for a page whose inline scripts are those
/// of `index_html` (by hash: Trunk starts the wasm from an inline module).
/// `'wasm-unsafe-eval'` lets the page compile its own wasm (and nothing
/// else: `eval` stays off); `connect-src 'self'` covers the WebSocket to
/// the same host and port (`ws:`/`wss:`, CSP level 3).
pub fn content_security_policy(index_html: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let mut scripts = String::from("'self' 'wasm-unsafe-eval'");
    for inline in inline_scripts(index_html) {
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(inline));
        scripts.push_str(&format!(" 'sha256-{hash}'"));
    }
    format!(
        "default-src 'self'; script-src {scripts}; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// The contents of the `<script>` elements without a `src`.
fn inline_scripts(html: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let after = &rest[start..];
        let Some(open_end) = after.find('>') else {
            break;
        };
        let open = &after[..open_end];
        let body = &after[open_end + 1..];
        let Some(close) = body.find("</script>") else {
            break;
        };
        if !open.contains(" src=") {
            found.push(&body[..close]);
        }
        rest = &body[close..];
    }
    found
}

/// The policy of the built-in client's page (computed once).
static EMBEDDED_CSP: LazyLock<Option<HeaderValue>> = LazyLock::new(|| {
    let page = Client::get("index.html")?;
    let html = String::from_utf8_lossy(page.data().as_ref()).into_owned();
    HeaderValue::from_str(&content_security_policy(&html)).ok()
});

/// The policy for the page in `dir` (read for every response: a client
/// under development changes).
fn web_dir_csp(dir: &Path) -> Option<HeaderValue> {
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap_or_default();
    HeaderValue::from_str(&content_security_policy(&html)).ok()
}

/// What [`security_headers`] adds.
#[derive(Clone, Debug)]
pub struct SecurityHeaders {
    /// `--web-dir`: the page's policy comes from there.
    pub web_dir: Option<PathBuf>,
    /// The HTTP listener serves TLS: add `Strict-Transport-Security`.
    pub tls: bool,
}

/// Adds the security headers to every response (a middleware for the
/// whole HTTP app).
pub async fn security_headers(
    axum::extract::State(config): axum::extract::State<Arc<SecurityHeaders>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let csp = match &config.web_dir {
        Some(dir) => web_dir_csp(dir),
        None => EMBEDDED_CSP.clone(),
    };
    let headers = response.headers_mut();
    let csp = csp.unwrap_or_else(|| {
        HeaderValue::from_str(&content_security_policy("")).expect("an ASCII policy")
    });
    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if config.tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_the_inline_scripts_by_hash() {
        let html = "<head><script type=\"module\">import init from './a.js';</script>\
                    <script src=\"x.js\"></script></head>";
        let csp = content_security_policy(html);
        // printf %s "import init from './a.js';" | openssl dgst -sha256 -binary | base64
        assert!(
            csp.contains("script-src 'self' 'wasm-unsafe-eval' 'sha256-6oqgbfn6ppHRCcvwFgNKcyE2Z700tAXhDCvp66A853M='"),
            "{csp}"
        );
        assert_eq!(csp.matches("'sha256-").count(), 1, "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
    }

    #[test]
    fn hashed_names_are_recognised() {
        assert!(is_hashed("banter-frontend-0123456789abcdef_bg.wasm"));
        assert!(is_hashed("banter-frontend-0123456789abcdef.js"));
        assert!(is_hashed("sub/banter-89abcdef01234567.css"));
        // A hash with a leading zero digit is written without it.
        assert!(is_hashed("banter-frontend-996741330dab14a_bg.wasm"));
        assert!(!is_hashed("banter-frontend-cafe.js"));
        assert!(!is_hashed("index.html"));
        assert!(!is_hashed("icon.svg"));
        assert!(!is_hashed("banter-frontend-xyz.js"));
    }

    #[test]
    fn etags_match_strong_weak_and_star() {
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"a\", W/\"b\""),
        );
        assert!(if_none_match(&h, "\"b\""));
        assert!(if_none_match(&h, "\"a\""));
        assert!(!if_none_match(&h, "\"c\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(if_none_match(&h, "\"z\""));
    }
}
