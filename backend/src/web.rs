//! Serves the web client (Trunk's `frontend/dist`) on the HTTP port, beside
//! `/ws`. Release builds embed it, with gzip and brotli versions computed at
//! build time, so the binary alone is a deployment; `--web-dir DIR` serves a
//! directory instead (for front-end work).
//!
//! Caching: Trunk puts a content hash in the names of the wasm, JS and CSS
//! files, so those are cached for a year (`immutable`); everything else
//! (`index.html`, the icon, the manifest) is revalidated with its ETag.

use std::path::PathBuf;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
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

#[cfg(test)]
mod tests {
    use super::*;

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
