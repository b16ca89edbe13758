//! Serving the dashboard: from a directory (trunk's `dist`), or, in a binary built
//! with the `embed-dashboard` feature, from the copy inside the binary. Unknown paths
//! get `index.html`, so deep links into the app work. Responses are gzipped for a
//! browser that accepts it (the wasm goes over the network at about 40% of its size).

use axum::extract::Request;
use axum::response::{Html, IntoResponse};
use axum::Router;
use std::path::Path;
use tower::ServiceExt;
use tower_http::compression::CompressionLayer;
use tower_http::services::{ServeDir, ServeFile};

/// Adds the dashboard as `router`'s fallback: `dir` if it holds a build, else the
/// embedded copy if there is one, else a page saying how to build it.
pub fn attach(router: Router, dir: &Path) -> Router {
    let index = dir.join("index.html");
    if index.is_file() {
        tracing::info!(dir = %dir.display(), "serving the dashboard from a directory");
        let files = ServeDir::new(dir).fallback(ServeFile::new(index.clone()));
        let index = ServeFile::new(index);
        // A path the file system cannot look up (a name longer than it allows) would
        // be a 500 from ServeDir; no file of the build has one, so it is a deep link.
        let serve = move |request: Request| {
            let files = files.clone();
            let index = index.clone();
            async move {
                if unservable(request.uri().path()) {
                    index.oneshot(request).await.into_response()
                } else {
                    files.oneshot(request).await.into_response()
                }
            }
        };
        return router.fallback_service(axum::routing::any(serve).layer(compression()));
    }
    #[cfg(feature = "embed-dashboard")]
    if embedded_available() {
        tracing::info!("serving the dashboard embedded in the binary");
        return router.fallback_service(axum::routing::any(embedded::serve).layer(compression()));
    }
    tracing::warn!(dir = %dir.display(), "dashboard not built; serving a notice at /");
    router.fallback(missing)
}

/// Whether `path` is longer, or has a segment longer, than a file system looks up.
fn unservable(path: &str) -> bool {
    path.len() > 1024 || path.split('/').any(|segment| segment.len() > 255)
}

/// gzip for the dashboard's files, when the request accepts it (tower-http's
/// defaults: not for responses under 32 bytes, nor for images). At the fastest level,
/// the wasm goes as half its size (323 of 657 KB) with no load time lost over
/// loopback; the default level (257 KB) made the page 40-150 ms slower there.
fn compression() -> CompressionLayer {
    CompressionLayer::new().quality(tower_http::CompressionLevel::Fastest)
}

/// Whether this binary carries a built dashboard.
pub fn embedded_available() -> bool {
    #[cfg(feature = "embed-dashboard")]
    return embedded::Assets::get("index.html").is_some();
    #[cfg(not(feature = "embed-dashboard"))]
    false
}

async fn missing() -> impl IntoResponse {
    (
        axum::http::StatusCode::NOT_FOUND,
        Html(
            "<!doctype html><title>Cortex Relay</title><h1>Cortex Relay</h1>\
             <p>The dashboard is not built. Run <code>cargo xtask run</code>, or point \
             <code>--dashboard-dir</code> at trunk's <code>dist</code>.</p>",
        ),
    )
}

#[cfg(feature = "embed-dashboard")]
mod embedded {
    use axum::http::{header, StatusCode, Uri};
    use axum::response::{IntoResponse, Response};

    /// trunk's output, taken into the binary at compile time.
    /// (Empty when `dist/` was not built before compiling.)
    #[derive(rust_embed::RustEmbed)]
    #[folder = "$CARGO_MANIFEST_DIR/../dist"]
    #[allow_missing = true]
    pub(super) struct Assets;

    /// A file of the build, or `index.html` for any other path.
    pub(super) async fn serve(uri: Uri) -> Response {
        let path = uri.path().trim_start_matches('/');
        let (file, path) = match Assets::get(path) {
            Some(file) if !path.is_empty() => (file, path),
            _ => match Assets::get("index.html") {
                Some(file) => (file, "index.html"),
                None => return StatusCode::NOT_FOUND.into_response(),
            },
        };
        let mime = file.metadata.mimetype().to_owned();
        // trunk names the dashboard's assets by content hash, so they never change;
        // index.html, the JS client (`client/`) and the examples keep their names.
        let fixed_name =
            path == "index.html" || path.starts_with("client/") || path.starts_with("examples/");
        let cache = if fixed_name {
            "no-cache"
        } else {
            "public, max-age=31536000, immutable"
        };
        (
            [
                (header::CONTENT_TYPE, mime),
                (header::CACHE_CONTROL, cache.to_owned()),
            ],
            file.data.into_owned(),
        )
            .into_response()
    }
}
