//! Fixtures: events, tokens and a server state in a temporary directory.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use safecity_core::{parse_plate, EventId};
use safecity_server::{
    app, new_token, token_hash, AppState, BlobStore, PostgresStore, Role, ServerConfig,
    SqliteStore, Store, TokenOwner,
};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tower::ServiceExt;

/// A small JPEG-looking payload for snapshots.
pub const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4, 0xFF, 0xD9];

/// Milliseconds of 2026-11-22T10:00:00Z.
pub const T0: u64 = 1_795_341_600_000;

pub fn rfc3339(ms: u64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

/// A valid event: a plate read when `plate` is given, else a vehicle.
pub fn event(
    n: u128,
    ts_ms: u64,
    camera: &str,
    plate: Option<&str>,
    class: &str,
    colour: &str,
) -> Value {
    let mut e = json!({
        "id": EventId::new(ts_ms, n).to_string(),
        "kind": if plate.is_some() { "plate_read" } else { "vehicle" },
        "edge_id": "edge-alm-01",
        "camera_id": camera,
        "ts": rfc3339(ts_ms),
        "vehicle": {"class": class, "colour": colour, "confidence": 0.9,
                    "bbox": [700, 380, 320, 210], "track_id": n as u64},
    });
    if let Some(p) = plate {
        let parsed = parse_plate(p).unwrap();
        e["plate"] = json!({
            "text": parsed.text, "display": parsed.display, "confidence": 0.95,
            "format": parsed.format, "bbox": [812, 540, 96, 24],
        });
    }
    e
}

pub fn id_of(e: &Value) -> String {
    e["id"].as_str().unwrap().to_owned()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// A server state in a temporary directory with one token per role, and
/// a second edge's.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub state: AppState,
    pub admin: String,
    /// Edge `edge-alm-01`'s, the edge of [`event`] and [`alarm`].
    pub edge: String,
    /// Edge `edge-alm-02`'s.
    pub other_edge: String,
    pub investigator: String,
    pub operator: String,
}

/// An answer: status, headers and body.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The `error` message of a JSON error answer.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .expect("an error message")
            .to_owned()
    }
}

/// Where a fixture keeps its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in the fixture's temporary directory.
    Sqlite,
    /// A fresh database, by URL, on the shared test PostgreSQL server.
    Postgres(String),
}

impl Backend {
    /// A new PostgreSQL database, or `None` (said on standard error) when
    /// PostgreSQL is not installed.
    pub fn postgres() -> Option<Backend> {
        crate::pg::database().map(Backend::Postgres)
    }
}

/// Makes, for each `async fn NAME(backend: Backend)`, the tests
/// `NAME::sqlite` and `NAME::postgres`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(crate::support::Backend::Sqlite).await
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(backend) = crate::support::Backend::postgres() {
                    super::$name(backend).await
                }
            }
        }
    )*};
}
pub(crate) use on_both_backends;

impl Fixture {
    pub fn new() -> Fixture {
        Self::with_config(ServerConfig::default())
    }

    pub fn with_config(config: ServerConfig) -> Fixture {
        Self::with_config_on(config, Backend::Sqlite)
    }

    pub fn on(backend: Backend) -> Fixture {
        Self::with_config_on(ServerConfig::default(), backend)
    }

    pub fn with_config_on(mut config: ServerConfig, backend: Backend) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        config.data_dir = dir.path().to_owned();
        let path = dir.path().to_owned();
        // The PostgreSQL client blocks on a runtime of its own, which it
        // cannot do on an async test's thread.
        let (store, tokens) = std::thread::spawn(move || {
            let store: Arc<dyn Store> = match backend {
                Backend::Sqlite => Arc::new(SqliteStore::open(&path).unwrap()),
                Backend::Postgres(url) => Arc::new(PostgresStore::connect(&url).unwrap()),
            };
            let mut tokens = Vec::new();
            // An edge token is named after its edge.
            for (role, name) in [
                (Role::Admin, "admin-1"),
                (Role::Edge, "edge-alm-01"),
                (Role::Investigator, "investigator-1"),
                (Role::Operator, "operator-1"),
                (Role::Edge, "edge-alm-02"),
            ] {
                let token = new_token();
                store
                    .add_token(
                        &token_hash(&token),
                        &TokenOwner {
                            name: name.to_owned(),
                            role,
                            expires_ms: None,
                        },
                    )
                    .unwrap();
                tokens.push(token);
            }
            (store, tokens)
        })
        .join()
        .unwrap();
        let blobs = Arc::new(BlobStore::open(&dir.path().join("blobs")).unwrap());
        let state = AppState::new(store, blobs, &config);
        let [admin, edge, investigator, operator, other_edge] = tokens.try_into().unwrap();
        Fixture {
            dir,
            state,
            admin,
            edge,
            other_edge,
            investigator,
            operator,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = app(self.state.clone())
            .oneshot(req.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str, token: &str) -> Answer {
        self.call(Method::GET, uri, Some(token), &[], Body::empty())
            .await
    }

    /// Posts a batch as the edge.
    /// Posts an already gzip-compressed body as the edge does.
    pub async fn post_gzip(&self, body: Vec<u8>) -> Answer {
        self.call(
            Method::POST,
            "/api/v1/events",
            Some(&self.edge),
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            body,
        )
        .await
    }

    pub async fn post_events(&self, events: &[Value]) -> Answer {
        let body = serde_json::to_vec(events).unwrap();
        self.call(
            Method::POST,
            "/api/v1/events",
            Some(&self.edge),
            &[("content-type", "application/json")],
            body,
        )
        .await
    }

    /// Every event id a search finds, following the cursor.
    pub async fn search_all(&self, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut uri = format!("/api/v1/search?reason=test&limit=7&{query}");
            if let Some(c) = &cursor {
                uri.push_str(&format!("&cursor={c}"));
            }
            let a = self.get(&uri, &self.investigator).await;
            assert_eq!(
                a.status,
                StatusCode::OK,
                "{}",
                String::from_utf8_lossy(&a.body)
            );
            let page = a.json();
            out.extend(page["results"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }
}

/// The event ids of search results.
pub fn ids(results: &[Value]) -> Vec<String> {
    results
        .iter()
        .map(|r| r["event"]["id"].as_str().unwrap().to_owned())
        .collect()
}

/// One server-sent event.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SseEvent {
    pub event: String,
    pub id: String,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {}", self.data))
    }
}

/// The body of a server-sent event stream, read event by event.
pub struct EventStream {
    body: Body,
    buf: String,
}

impl EventStream {
    /// The next event, skipping keep-alive comments. Panics when the
    /// stream ends or nothing comes for a long while (a hung test).
    pub async fn next(&mut self) -> SseEvent {
        use http_body_util::BodyExt;
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                let mut ev = SseEvent::default();
                for line in block.lines() {
                    if line.starts_with(':') {
                        continue;
                    }
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "event" => ev.event = value.to_owned(),
                        "id" => ev.id = value.to_owned(),
                        "data" => {
                            if !ev.data.is_empty() {
                                ev.data.push('\n');
                            }
                            ev.data.push_str(value);
                        }
                        _ => {}
                    }
                }
                if ev.event.is_empty() && ev.data.is_empty() {
                    continue;
                }
                return ev;
            }
            let frame = tokio::time::timeout(std::time::Duration::from_secs(60), self.body.frame())
                .await
                .expect("no server-sent event for 60 s")
                .expect("the event stream ended")
                .unwrap();
            if let Ok(data) = frame.into_data() {
                self.buf.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
    }
}

impl Fixture {
    /// Opens `GET uri` as a server-sent event stream.
    pub async fn stream(
        &self,
        uri: &str,
        token: &str,
        headers: &[(&str, &str)],
    ) -> Result<EventStream, Answer> {
        let mut req = Request::builder()
            .method(Method::GET)
            .uri(uri)
            .header("Authorization", format!("Bearer {token}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = app(self.state.clone())
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        if res.status() != StatusCode::OK {
            let status = res.status();
            let headers = res.headers().clone();
            let body = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap();
            return Err(Answer {
                status,
                headers,
                body,
            });
        }
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        Ok(EventStream {
            body: res.into_body(),
            buf: String::new(),
        })
    }

    /// `POST uri` with a JSON body as `token`.
    pub async fn post_json(&self, uri: &str, token: &str, body: &Value) -> Answer {
        self.call(
            Method::POST,
            uri,
            Some(token),
            &[("content-type", "application/json")],
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    /// Registers cameras `(id, kind, lat, lon)` as the admin.
    pub async fn cameras(&self, cameras: &[(&str, &str, f64, f64)]) {
        for (id, kind, lat, lon) in cameras {
            let a = self
                .call(
                    Method::PUT,
                    &format!("/api/v1/cameras/{id}"),
                    Some(&self.admin),
                    &[("content-type", "application/json")],
                    serde_json::to_vec(
                        &json!({"name": format!("{id} crossing"), "kind": kind, "lat": lat, "lon": lon}),
                    )
                    .unwrap(),
                )
                .await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.error());
        }
    }
}

/// A pillar's panic alarm.
pub fn alarm(n: u128, ts_ms: u64, pillar: &str) -> Value {
    json!({
        "id": EventId::new(ts_ms, n).to_string(),
        "kind": "panic_alarm",
        "edge_id": "edge-alm-01",
        "camera_id": pillar,
        "ts": rfc3339(ts_ms),
        "alarm": {"source": "button"},
    })
}
