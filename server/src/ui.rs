//! The web UI: static files embedded in the binary, served at `GET /`
//! (the page) and `GET /ui/{file}` (its scripts, styles and icon).
//!
//! The files live in `server/ui/` as plain ES modules and CSS, with no
//! build step; they call the API under `/api/v1` with the user's token.
//! Nothing is loaded from elsewhere: the page's Content-Security-Policy
//! allows only this server (and `blob:` URLs for snapshots and clips).
//! The UI routes need no token; the data behind them does.
//!
//! Each answer carries an `ETag` (a hash of the file) and
//! `Cache-Control: no-cache`, so browsers revalidate and pick up a new
//! binary's files at once while an unchanged file costs a `304`.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use sha2::{Digest, Sha256};

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../ui/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the UI; `index.html` is served at `/`, all at `/ui/NAME`.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("i18n.js", JS),
    asset!("util.js", JS),
    asset!("snapshots.js", JS),
    asset!("search.js", JS),
    asset!("track.js", JS),
    asset!("board.js", JS),
    asset!("watchlist.js", JS),
    asset!("audit.js", JS),
];

/// What the page may load and connect to: this server only.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; \
    font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// The routes of the UI, for any router state.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/ui/{file}", get(file))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    serve(&name, &headers)
}

/// The `ETag` of each asset, in the order of [`ASSETS`], made once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = Sha256::digest(a.body);
                let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    })
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({
                "error": format!("no UI file {name:?}; the web UI is at /")
            })),
        )
            .into_response();
    };
    let asset = &ASSETS[i];
    let etag = &etags()[i];
    let common = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::ETAG,
            HeaderValue::from_str(etag).expect("a hex ETag is a valid header"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    let mut response = (
        common,
        [(header::CONTENT_TYPE, asset.content_type)],
        asset.body,
    )
        .into_response();
    if name == "index.html" {
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(path: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut request = Request::get(path);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = router::<()>()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, body.to_vec())
    }

    /// The values of `attr="..."` in `text`.
    fn attribute_values<'a>(text: &'a str, attr: &str) -> Vec<&'a str> {
        let needle = format!("{attr}=\"");
        text.match_indices(&needle)
            .filter_map(|(i, _)| {
                let rest = &text[i + needle.len()..];
                rest.find('"').map(|end| &rest[..end])
            })
            .collect()
    }

    /// The modules a script imports: `from './x.js'` and `import('./x.js')`.
    fn imports(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        for marker in ["from './", "import('./"] {
            for (i, _) in text.match_indices(marker) {
                let rest = &text[i + marker.len()..];
                if let Some(end) = rest.find('\'') {
                    out.push(&rest[..end]);
                }
            }
        }
        out
    }

    #[tokio::test]
    async fn the_page_and_everything_it_references_are_served() {
        let (status, headers, page) = get("/", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY));
        let page = String::from_utf8(page).unwrap();

        let mut referenced: Vec<String> = ["src", "href"]
            .iter()
            .flat_map(|a| attribute_values(&page, a))
            .filter(|v| !v.starts_with('#'))
            .map(|v| {
                assert!(
                    v.starts_with("/ui/"),
                    "index.html refers to {v}, which is not an embedded file"
                );
                v.trim_start_matches("/ui/").to_owned()
            })
            .collect();
        assert!(referenced.iter().any(|r| r == "app.js"), "{referenced:?}");
        assert!(
            referenced.iter().any(|r| r == "style.css"),
            "{referenced:?}"
        );
        // Follow the module graph from the page's scripts.
        let mut seen = Vec::new();
        while let Some(name) = referenced.pop() {
            if seen.contains(&name) {
                continue;
            }
            let (status, headers, body) = get(&format!("/ui/{name}"), &[]).await;
            assert_eq!(status, StatusCode::OK, "/ui/{name}");
            assert!(!body.is_empty(), "/ui/{name} is empty");
            let expected = match name.rsplit('.').next() {
                Some("js") => "text/javascript; charset=utf-8",
                Some("css") => "text/css; charset=utf-8",
                Some("svg") => "image/svg+xml",
                Some("html") => "text/html; charset=utf-8",
                other => panic!("/ui/{name}: unexpected extension {other:?}"),
            };
            assert_eq!(headers[header::CONTENT_TYPE], expected, "/ui/{name}");
            assert!(headers.contains_key(header::ETAG), "/ui/{name}");
            if name.ends_with(".js") {
                let text = String::from_utf8(body).unwrap();
                referenced.extend(imports(&text).into_iter().map(str::to_owned));
            }
            seen.push(name);
        }
        // Every embedded file is used: none is dead weight.
        for a in ASSETS {
            assert!(
                a.name == "index.html" || seen.iter().any(|s| s == a.name),
                "{} is embedded but nothing refers to it",
                a.name
            );
        }
    }

    #[tokio::test]
    async fn unknown_files_are_404_and_unchanged_ones_304() {
        for path in ["/ui/nope.js", "/ui/..%2Fapi.rs", "/ui/index.htm"] {
            let (status, headers, body) = get(path, &[]).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(headers[header::CONTENT_TYPE], "application/json");
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert!(v["error"].as_str().unwrap().contains("no UI file"), "{v}");
        }
        let (_, headers, _) = get("/ui/app.js", &[]).await;
        let etag = headers[header::ETAG].to_str().unwrap().to_owned();
        let (status, _, body) = get("/ui/app.js", &[("if-none-match", &etag)]).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
        let (status, _, _) = get("/ui/app.js", &[("if-none-match", "\"other\"")]).await;
        assert_eq!(status, StatusCode::OK);
    }
}
