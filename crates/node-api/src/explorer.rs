//! The explorer page: HTML, CSS and JavaScript built into the binary and
//! served as they are. No build step, nothing loaded from another host.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("explorer/index.html");
const STYLE: &str = include_str!("explorer/explorer.css");
const SCRIPT: &str = include_str!("explorer/explorer.js");

/// The page's routes; its own navigation happens after `#`.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { page("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/explorer.css",
            get(|| async { page("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/explorer.js",
            get(|| async { page("text/javascript; charset=utf-8", SCRIPT) }),
        )
}

fn page(kind: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, kind),
            // Only this host's own scripts, styles and API.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:",
            ),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
