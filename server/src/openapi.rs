//! The OpenAPI 3.1 description of the HTTP API, served at
//! `GET /api/v1/openapi.json` (no token needed).
//!
//! It is written by hand. Each operation names the roles that may call it,
//! in its description and as `x-roles` (absent on the open routes). Path
//! parameters carry an `example` that the route is reachable with. A test
//! checks the document against the router's `routes` (in `api`): every route is
//! described, every described operation is routed, and each role listed
//! (and only those) gets past the role check.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// `GET /api/v1/openapi.json`.
pub(crate) async fn serve() -> Response {
    static BODY: OnceLock<String> = OnceLock::new();
    let body = BODY.get_or_init(|| openapi_document().to_string());
    ([(header::CONTENT_TYPE, "application/json")], body.as_str()).into_response()
}

/// A `$ref` to a component.
fn r(kind: &str, name: &str) -> Value {
    json!({ "$ref": format!("#/components/{kind}/{name}") })
}

/// A JSON response with `schema`.
fn json_response(description: &str, schema: Value) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": schema } },
    })
}

/// The error answers a route may give, by status, from the shared ones.
fn errors(statuses: &[&str]) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    for s in statuses {
        let name = match *s {
            "400" => "BadRequest",
            "401" => "Unauthorized",
            "403" => "Forbidden",
            "404" => "NotFound",
            "409" => "Conflict",
            "413" => "PayloadTooLarge",
            "415" => "UnsupportedMediaType",
            "429" => "TooManyRequests",
            "500" => "Internal",
            "503" => "Unavailable",
            "507" => "InsufficientStorage",
            other => panic!("no shared response for status {other}"),
        };
        out.insert((*s).to_owned(), r("responses", name));
    }
    out
}

/// An operation: `roles` empty means open (no token).
fn op(
    summary: &str,
    description: &str,
    roles: &[&str],
    parameters: Value,
    body: Option<Value>,
    ok: (&str, Value),
    error_statuses: &[&str],
) -> Value {
    let mut responses = serde_json::Map::new();
    responses.insert(ok.0.to_owned(), ok.1);
    let mut description = description.to_owned();
    let mut statuses: Vec<&str> = Vec::new();
    if !roles.is_empty() {
        description.push_str(&format!(
            "\n\nRoles: {}. Needs `Authorization: Bearer TOKEN`: no or an unknown token gets 401, a token of another role 403; after 20 failed authentications from one address within 60 s, tokens this server has not seen yet get 429 for the rest of the minute.",
            roles.join(", ")
        ));
        statuses.extend(["401", "403", "429"]);
    }
    statuses.extend(error_statuses);
    statuses.push("500");
    responses.extend(errors(&statuses));
    let mut o = json!({
        "summary": summary,
        "description": description,
        "parameters": parameters,
        "responses": responses,
    });
    if roles.is_empty() {
        o["security"] = json!([]);
    } else {
        o["security"] = json!([{ "bearer": [] }]);
        o["x-roles"] = json!(roles);
    }
    if let Some(b) = body {
        o["requestBody"] = b;
    }
    o
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false,
            "description": description, "schema": schema })
}

fn path_param(name: &str, description: &str, example: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description,
            "schema": { "type": "string" }, "example": example })
}

const INVESTIGATORS: &[&str] = &["investigator", "admin"];
const VIEWERS: &[&str] = &["investigator", "operator", "admin"];
const OPERATORS: &[&str] = &["operator", "admin"];
const EDGES: &[&str] = &["edge", "admin"];
const EVERYONE: &[&str] = &["edge", "operator", "investigator", "admin"];
const EVENT_ID: &str = "01JD3Q6Z8W4M2K9T7R5N1C0XYZ";

/// The document.
pub fn openapi_document() -> Value {
    let reason = r("parameters", "reason");
    let event_id = path_param("id", "The event id (a ULID made on the edge).", EVENT_ID);
    let alert_id = path_param("id", "The alert id, a positive number.", "1");
    let ok_json = |schema: Value| ("200", json_response("OK", schema));
    let media = |noun: &str, mime: &str| -> Value {
        op(
            &format!("Download an event's {noun}"),
            &format!("The stored {noun} bytes (`Cache-Control: private, no-store`). The call and its reason are written to the audit log."),
            VIEWERS,
            json!([event_id, reason]),
            None,
            (
                "200",
                json!({ "description": format!("The {noun}"),
                        "content": { mime: { "schema": { "type": "string", "format": "binary" } } } }),
            ),
            &["400", "404"],
        )
    };
    let alert_change = |verb: &str, to: &str| -> Value {
        op(
            &format!("{verb} an alert"),
            &format!("Moves the alert to `{to}` (a new alert can be acknowledged; a new or acknowledged alert closed; a closed one never changes). The change, who made it and the note go to the alert's history and the audit log."),
            OPERATORS,
            json!([alert_id]),
            Some(json!({
                "required": false,
                "content": { "application/json": { "schema": r("schemas", "Note") } },
            })),
            ok_json(r("schemas", "Alert")),
            &["400", "404", "409", "413", "415"],
        )
    };

    let mut clip_upload = op(
        "Upload an event's clip",
        "The MP4 bytes of a clip for an event already stored (a pillar alarm's clip), from the edge that sent the event (another edge's token gets 403). Evidence is written once: the same bytes again answer 200 and change nothing; other bytes for an event that has its clip get 409. Stores, and refusals with who tried, go to the audit log.",
        EDGES,
        json!([event_id]),
        Some(json!({
            "required": true,
            "content": { "video/mp4": { "schema": { "type": "string", "format": "binary" } } },
        })),
        ("201", json_response("Stored and linked", r("schemas", "ClipStored"))),
        &["400", "404", "409", "413", "415", "507"],
    );
    clip_upload["responses"]["200"] = json_response(
        "These bytes are already the event's clip",
        r("schemas", "ClipStored"),
    );
    let paths = json!({
        "/api/v1/events": {
            "post": op(
                "Ingest a batch of events",
                "A JSON array of events (see the Event schema), optionally gzip-compressed (`Content-Encoding: gzip`). Idempotent by event id: an id already stored is counted as a duplicate and left as it is. Answers only after the batch is durably committed; the whole batch is refused when one event is invalid. An edge token speaks for the edge it is named after: an event with another `edge_id` refuses the batch with 403.",
                EDGES,
                json!([{ "name": "Content-Encoding", "in": "header", "required": false,
                         "schema": { "type": "string", "enum": ["gzip", "identity"] } }]),
                Some(json!({
                    "required": true,
                    "content": { "application/json": { "schema": {
                        "type": "array", "items": r("schemas", "Event") } } },
                })),
                ok_json(r("schemas", "IngestResult")),
                &["400", "413", "415", "507"],
            ),
        },
        "/api/v1/events/{id}/clip": {
            "put": clip_upload,
            "get": media("clip", "video/mp4"),
        },
        "/api/v1/events/{id}/snapshot": {
            "get": media("snapshot", "image/jpeg"),
        },
        "/api/v1/search": {
            "get": op(
                "Search plate reads and events",
                "Events matching every filter given, newest first, a page at a time (`next_cursor`). The call, its reason and the result count are written to the audit log.",
                INVESTIGATORS,
                json!([
                    query("plate", "A plate (exact or fuzzy) or a pattern with `?` (one character) and `*` (any run).", json!({ "type": "string" })),
                    query("mode", "How `plate` matches; `wildcard` when it has `?` or `*`, else `exact`.", json!({ "type": "string", "enum": ["exact", "wildcard", "fuzzy"] })),
                    query("max_distance", "For mode=fuzzy: the largest weighted look-alike distance (default 1).", json!({ "type": "number", "minimum": 0, "maximum": 2 })),
                    query("from", "Earliest capture time, RFC 3339 (inclusive).", json!({ "type": "string", "format": "date-time" })),
                    query("to", "Latest capture time, RFC 3339 (inclusive).", json!({ "type": "string", "format": "date-time" })),
                    { "name": "camera", "in": "query", "required": false, "style": "form", "explode": true,
                      "description": "Only these cameras (repeat the parameter).",
                      "schema": { "type": "array", "items": { "type": "string" } } },
                    query("near", "`lat,lon,metres`: only cameras within that circle (at most 100000 metres).", json!({ "type": "string", "example": "43.2389,76.8897,500" })),
                    query("class", "Vehicle class, e.g. car.", json!({ "type": "string" })),
                    query("colour", "Vehicle colour, e.g. white.", json!({ "type": "string" })),
                    query("kind", "Event kind.", json!({ "type": "string", "enum": ["plate_read", "vehicle", "panic_alarm", "camera_status"] })),
                    query("limit", "Results per page (default 50).", json!({ "type": "integer", "minimum": 1, "maximum": 500 })),
                    query("cursor", "`next_cursor` of the previous page.", json!({ "type": "string" })),
                    reason,
                ]),
                None,
                ok_json(r("schemas", "SearchPage")),
                &["400"],
            ),
        },
        "/api/v1/me": {
            "get": op(
                "Who am I",
                "The name and role of the calling token, so that a client shows each role its own views.",
                EVERYONE,
                json!([]),
                None,
                ok_json(json!({ "type": "object", "required": ["name", "role"], "properties": {
                    "name": { "type": "string" },
                    "role": { "type": "string", "enum": ["edge", "operator", "investigator", "admin"] } } })),
                &[],
            ),
        },
        "/api/v1/cameras": {
            "get": op(
                "List cameras and pillars",
                "The camera and pillar registry, by id.",
                EVERYONE,
                json!([]),
                None,
                ok_json(json!({ "type": "object", "required": ["cameras"],
                    "properties": { "cameras": { "type": "array", "items": r("schemas", "Camera") } } })),
                &[],
            ),
        },
        "/api/v1/cameras/{id}": {
            "get": op(
                "Get a camera or pillar",
                "One registry entry.",
                EVERYONE,
                json!([path_param("id", "The camera or pillar id.", "alm-cam-0042")]),
                None,
                ok_json(r("schemas", "Camera")),
                &["404"],
            ),
            "put": op(
                "Add or replace a camera or pillar",
                "Stores the entry under the id in the path (a body `id`, if given, must be the same). Audited.",
                &["admin"],
                json!([path_param("id", "The camera or pillar id: 1 to 64 printable ASCII characters.", "alm-cam-0042")]),
                Some(json!({
                    "required": true,
                    "content": { "application/json": { "schema": r("schemas", "CameraBody") } },
                })),
                ok_json(r("schemas", "Camera")),
                &["400", "413", "415"],
            ),
        },
        "/api/v1/plates/{plate}/track": {
            "get": op(
                "Follow a plate across the city",
                "The plate's sightings in time order with camera positions, and the hops between them; a hop faster than a car can go is flagged `impossible` (a sign of a cloned plate). The call, its reason and the result count are audited.",
                INVESTIGATORS,
                json!([
                    path_param("plate", "The plate, e.g. 123ABC02 or `123 ABC 02` (no wildcards).", "123ABC02"),
                    { "name": "from", "in": "query", "required": true, "description": "Start of the window, RFC 3339.",
                      "schema": { "type": "string", "format": "date-time" } },
                    { "name": "to", "in": "query", "required": true, "description": "End of the window, RFC 3339.",
                      "schema": { "type": "string", "format": "date-time" } },
                    reason,
                ]),
                None,
                ok_json(r("schemas", "Track")),
                &["400"],
            ),
        },
        "/api/v1/watchlist": {
            "get": op(
                "List watchlist entries",
                "Active entries, or every entry with `include_removed=true`. Audited.",
                OPERATORS,
                json!([query("include_removed", "Also list removed entries.", json!({ "type": "boolean" }))]),
                None,
                ok_json(json!({ "type": "object", "required": ["entries"],
                    "properties": { "entries": { "type": "array", "items": r("schemas", "WatchEntry") } } })),
                &["400"],
            ),
            "post": op(
                "Add a watchlist entry",
                "Every plate read ingested from now on is matched against it; a hit raises an alert. Audited with its reason.",
                OPERATORS,
                json!([]),
                Some(json!({
                    "required": true,
                    "content": { "application/json": { "schema": r("schemas", "NewWatch") } },
                })),
                ("201", json_response("Added", r("schemas", "WatchEntry"))),
                &["400", "413", "415"],
            ),
        },
        "/api/v1/watchlist/{id}": {
            "delete": op(
                "Remove a watchlist entry",
                "The entry stops matching; it is kept, marked removed, for the alerts that name it. Audited, with the optional reason.",
                OPERATORS,
                json!([
                    path_param("id", "The entry id, a positive number.", "1"),
                    query("reason", "Why it is removed (kept in the audit log).", json!({ "type": "string" })),
                ]),
                None,
                ok_json(r("schemas", "WatchEntry")),
                &["400", "404"],
            ),
        },
        "/api/v1/alerts": {
            "get": op(
                "List alerts",
                "Stored alerts, newest first, a page at a time. Audited.",
                OPERATORS,
                json!([
                    query("state", "Only alerts in this state.", json!({ "type": "string", "enum": ["new", "acknowledged", "closed"] })),
                    query("limit", "Alerts per page (default 50).", json!({ "type": "integer", "minimum": 1, "maximum": 500 })),
                    query("cursor", "`next_cursor` of the previous page.", json!({ "type": "string" })),
                ]),
                None,
                ok_json(json!({ "type": "object", "required": ["alerts", "next_cursor"], "properties": {
                    "alerts": { "type": "array", "items": r("schemas", "Alert") },
                    "next_cursor": { "type": ["string", "null"] } } })),
                &["400"],
            ),
        },
        "/api/v1/alerts/stream": {
            "get": op(
                "Watch live alerts",
                "Server-sent events: one `alert` event per new alert, its `id` the alert id and its data an Alert as JSON. With `Last-Event-ID` or `since`, the stored alerts after that id are replayed first. Audited.",
                OPERATORS,
                json!([
                    query("since", "Replay stored alerts after this alert id (0 for all).", json!({ "type": "integer" })),
                    { "name": "Last-Event-ID", "in": "header", "required": false,
                      "description": "The id of the last alert seen, when reconnecting.",
                      "schema": { "type": "string" } },
                ]),
                None,
                ("200", json!({ "description": "An endless event stream",
                    "content": { "text/event-stream": { "schema": { "type": "string" } } } })),
                &["400"],
            ),
        },
        "/api/v1/alerts/{id}": {
            "get": op(
                "Get an alert and its history",
                "One alert with `history`, its state changes oldest first. Audited.",
                OPERATORS,
                json!([alert_id]),
                None,
                ok_json(r("schemas", "Alert")),
                &["400", "404"],
            ),
        },
        "/api/v1/alerts/{id}/ack": { "post": alert_change("Acknowledge", "acknowledged") },
        "/api/v1/alerts/{id}/close": { "post": alert_change("Close", "closed") },
        "/api/v1/audit": {
            "get": op(
                "Read the audit log",
                "Who called what, when, with which reason and how many results, newest first. The log is append-only and never purged.",
                &["admin"],
                json!([
                    query("limit", "Records per page (default 100).", json!({ "type": "integer", "minimum": 1, "maximum": 1000 })),
                    query("before", "Only records before this `seq` (`next_before` of the previous page).", json!({ "type": "integer" })),
                ]),
                None,
                ok_json(r("schemas", "AuditPage")),
                &["400"],
            ),
        },
        "/api/v1/openapi.json": {
            "get": op(
                "This document",
                "The OpenAPI description of the API. Open: no token needed.",
                &[],
                json!([]),
                None,
                ok_json(json!({ "type": "object" })),
                &[],
            ),
        },
        "/healthz": {
            "get": op(
                "Health",
                "`ok` (text) while the database answers and the data disk has room; `{\"status\": \"degraded\", \"reasons\": [...]}` with 200 when the disk is nearly full (under 1 GiB or 5 % free); 503 with `status` `down`, the `reasons` and the `error` when the database does not answer or under 16 MiB are free. Open.",
                &[],
                json!([]),
                None,
                ("200", json!({ "description": "Alive: `ok`, or degraded with its reasons",
                    "content": {
                        "text/plain": { "schema": { "type": "string" } },
                        "application/json": { "schema": { "type": "object",
                            "properties": { "status": { "type": "string", "enum": ["degraded"] },
                                            "reasons": { "type": "array", "items": { "type": "string" } } } } } } })),
                &["503"],
            ),
        },
        "/metrics": {
            "get": op(
                "Prometheus metrics",
                "Counters in the Prometheus text format (ingest, alerts, webhooks, retention purges, requests by route), `safecity_health` (0 ok, 1 degraded, 2 down, as /healthz) and `safecity_disk_free_bytes`. Open.",
                &[],
                json!([]),
                None,
                ("200", json!({ "description": "Prometheus text exposition",
                    "content": { "text/plain": { "schema": { "type": "string" } } } })),
                &[],
            ),
        },
    });

    let error_response = |description: &str| json_response(description, r("schemas", "Error"));
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "safecity search server",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Ingest from edges, plate search and trajectories for investigators, watchlists and live alerts for the operations centre, the camera registry and the audit log. Every /api/v1 call except this document needs `Authorization: Bearer TOKEN`; tokens carry a role (edge, operator, investigator, admin), and each operation lists the roles it allows. Errors are JSON `{\"error\": \"...\"}`; unknown query parameters and unknown body fields are refused with 400.",
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer",
                    "description": "A token made with `safecity-server token create --role ROLE --name NAME`, or SAFECITY_ADMIN_TOKEN." },
            },
            "parameters": {
                "reason": { "name": "reason", "in": "query", "required": true,
                    "description": "Why you look (a case number or the like), up to 1000 characters; kept in the audit log.",
                    "schema": { "type": "string", "minLength": 1, "maxLength": 1000 } },
            },
            "responses": {
                "BadRequest": error_response("Bad input: malformed JSON, a wrong type, an unknown field or parameter, an invalid plate, pattern or time, or a missing reason"),
                "Unauthorized": error_response("No token, or an unknown one"),
                "Forbidden": error_response("The token's role may not do this"),
                "NotFound": error_response("No such item (or, for an unknown path, no such route)"),
                "Conflict": error_response("The alert's state does not allow this change"),
                "PayloadTooLarge": error_response("The body is over the limit"),
                "UnsupportedMediaType": error_response("Wrong Content-Type or Content-Encoding"),
                "Internal": error_response("A storage failure; the server log has the details"),
                "Unavailable": error_response("The database does not answer; the error says why"),
                "InsufficientStorage": error_response("The server's disk is full: nothing of the request was stored; send it again later"),
                "TooManyRequests": error_response("20 failed authentications from this address within 60 s: a token this server has not seen yet is refused until the minute is over"),
            },
            "schemas": schemas(),
        },
    })
}

/// The schemas of the request and response bodies.
fn schemas() -> Value {
    let nullable_string = json!({ "type": ["string", "null"] });
    let mut out = serde_json::Map::new();
    out.insert("Error".into(), json!({ "type": "object", "required": ["error"], "additionalProperties": false,
                    "properties": { "error": { "type": "string", "description": "What is wrong and what to do." } } }));
    out.insert("Event".into(), json!({
                    "type": "object", "required": ["id", "kind", "edge_id", "camera_id", "ts"],
                    "description": "An event as the edge sends it (see docs/contract.md). Unknown fields are refused.",
                    "properties": {
                        "id": { "type": "string", "description": "ULID made on the edge; the idempotency key. Either letter case names the same event; it is stored and returned in upper case." },
                        "kind": { "type": "string", "enum": ["plate_read", "vehicle", "panic_alarm", "camera_status"] },
                        "edge_id": { "type": "string" },
                        "camera_id": { "type": "string" },
                        "ts": { "type": "string", "format": "date-time", "description": "Capture time, UTC, in the years 2000 to 2099." },
                        "plate": { "type": "object", "properties": {
                            "text": { "type": "string" }, "display": { "type": "string", "maxLength": 32 },
                            "confidence": { "type": "number" }, "format": { "type": "string" },
                            "region": { "type": "string", "maxLength": 32 },
                            "candidates": { "type": "array", "maxItems": 16, "items": { "type": "object" } },
                            "bbox": { "type": "array", "items": { "type": "integer" }, "minItems": 4, "maxItems": 4 } } },
                        "vehicle": { "type": "object", "properties": {
                            "class": { "type": "string", "maxLength": 32 }, "colour": { "type": "string", "maxLength": 32 },
                            "confidence": { "type": "number" },
                            "bbox": { "type": "array", "items": { "type": "integer" }, "minItems": 4, "maxItems": 4 },
                            "track_id": { "type": "integer" } } },
                        "alarm": { "type": "object", "properties": {
                            "source": { "type": "string", "maxLength": 32 }, "clip": { "type": "string", "maxLength": 128 } } },
                        "status": { "type": "object", "properties": {
                            "state": { "type": "string", "maxLength": 32 }, "message": { "type": "string", "maxLength": 1000 } } },
                        "snapshot": { "type": "string", "contentEncoding": "base64",
                            "description": "JPEG of the best frame's crop; stored apart and served at /events/{id}/snapshot." },
                    },
                }));
    out.insert("IngestResult".into(), json!({ "type": "object", "required": ["accepted", "duplicates"], "properties": {
                    "accepted": { "type": "integer", "description": "Events stored now." },
                    "duplicates": { "type": "integer", "description": "Events whose id was already stored." } } }));
    out.insert("ClipStored".into(), json!({ "type": "object", "required": ["id", "sha256", "bytes"], "properties": {
                    "id": { "type": "string" }, "sha256": { "type": "string" }, "bytes": { "type": "integer" } } }));
    out.insert("SearchPage".into(), json!({ "type": "object", "required": ["results", "next_cursor"], "properties": {
                    "results": { "type": "array", "items": { "type": "object", "required": ["event"], "properties": {
                        "event": r("schemas", "Event"),
                        "snapshot_url": nullable_string,
                        "clip_url": nullable_string,
                        "distance": { "type": "number", "description": "Look-alike distance, for fuzzy searches." } } } },
                    "next_cursor": nullable_string } }));
    out.insert(
        "Camera".into(),
        json!({ "type": "object", "required": ["id", "name", "kind", "lat", "lon"], "properties": {
                    "id": { "type": "string" }, "name": { "type": "string" },
                    "kind": { "type": "string", "enum": ["camera", "pillar"] },
                    "lat": { "type": "number", "minimum": -90, "maximum": 90 },
                    "lon": { "type": "number", "minimum": -180, "maximum": 180 },
                    "health": { "type": "object", "required": ["status", "since", "last_seen"],
                        "description": "Returned by GET only: `status` is the state of the latest camera_status event, or online when events came after it or without one, unknown when the camera never sent anything.",
                        "properties": {
                            "status": { "type": "string", "enum": ["online", "offline", "unknown"] },
                            "since": { "type": ["string", "null"], "format": "date-time", "description": "Capture time of the latest camera_status event." },
                            "last_seen": { "type": ["string", "null"], "format": "date-time", "description": "Capture time of the latest event." } } } } }),
    );
    out.insert("CameraBody".into(), json!({ "type": "object", "required": ["name", "kind", "lat", "lon"], "additionalProperties": false, "properties": {
                    "id": { "type": "string", "description": "Optional; must equal the path's id." },
                    "name": { "type": "string", "minLength": 1, "maxLength": 200 },
                    "kind": { "type": "string", "enum": ["camera", "pillar"] },
                    "lat": { "type": "number", "minimum": -90, "maximum": 90 },
                    "lon": { "type": "number", "minimum": -180, "maximum": 180 } } }));
    out.insert("Track".into(), json!({ "type": "object", "required": ["plate", "from", "to", "sightings", "hops", "impossible_hops", "truncated"], "properties": {
                    "plate": { "type": "string" },
                    "from": { "type": "string", "format": "date-time" },
                    "to": { "type": "string", "format": "date-time" },
                    "sightings": { "type": "array", "items": { "type": "object", "properties": {
                        "event_id": { "type": "string" }, "ts": { "type": "string", "format": "date-time" },
                        "camera_id": { "type": "string" }, "camera_name": nullable_string,
                        "lat": { "type": ["number", "null"] }, "lon": { "type": ["number", "null"] },
                        "confidence": { "type": ["number", "null"] },
                        "snapshot_url": nullable_string, "clip_url": nullable_string } } },
                    "hops": { "type": "array", "items": { "type": "object", "properties": {
                        "from_event": { "type": "string" }, "to_event": { "type": "string" },
                        "from_camera": { "type": "string" }, "to_camera": { "type": "string" },
                        "distance_m": { "type": ["number", "null"] }, "elapsed_s": { "type": ["number", "null"] },
                        "speed_kmh": { "type": ["number", "null"] }, "impossible": { "type": "boolean" } } } },
                    "impossible_hops": { "type": "integer" },
                    "truncated": { "type": "boolean" },
                    "limits": { "type": "object" } } }));
    out.insert("NewWatch".into(), json!({ "type": "object", "required": ["pattern", "reason"], "additionalProperties": false, "properties": {
                    "pattern": { "type": "string", "description": "A plate, a pattern with ? and *, or a plate to match fuzzily." },
                    "mode": { "type": "string", "enum": ["exact", "wildcard", "fuzzy"] },
                    "max_distance": { "type": "number", "minimum": 1, "maximum": 2 },
                    "reason": { "type": "string", "minLength": 1, "maxLength": 1000 },
                    "priority": { "type": "string", "enum": ["low", "normal", "high", "critical"] },
                    "expires": { "type": "string", "format": "date-time" } } }));
    out.insert("WatchEntry".into(), json!({ "type": "object", "required": ["id", "pattern", "mode", "reason", "priority", "active", "created", "created_by"], "properties": {
                    "id": { "type": "integer" }, "pattern": { "type": "string" },
                    "mode": { "type": "string", "enum": ["exact", "wildcard", "fuzzy"] },
                    "max_distance": { "type": ["number", "null"] }, "reason": { "type": "string" },
                    "priority": { "type": "string", "enum": ["low", "normal", "high", "critical"] },
                    "expires": nullable_string, "active": { "type": "boolean" },
                    "created": { "type": "string", "format": "date-time" }, "created_by": { "type": "string" },
                    "removed": nullable_string, "removed_by": nullable_string } }));
    out.insert("Alert".into(), json!({ "type": "object", "required": ["id", "kind", "state", "priority", "event_id", "camera_id", "ts"], "properties": {
                    "id": { "type": "integer" },
                    "kind": { "type": "string", "enum": ["watchlist", "panic_alarm"] },
                    "state": { "type": "string", "enum": ["new", "acknowledged", "closed"] },
                    "priority": { "type": "string", "enum": ["low", "normal", "high", "critical"] },
                    "event_id": { "type": "string" }, "event_kind": { "type": "string" },
                    "camera_id": { "type": "string" }, "camera": { "type": ["object", "null"] },
                    "plate": nullable_string, "ts": { "type": "string", "format": "date-time" },
                    "created": { "type": "string", "format": "date-time" },
                    "updated": { "type": "string", "format": "date-time" },
                    "watchlist": { "type": ["object", "null"] },
                    "distance": { "type": ["number", "null"] },
                    "snapshot_url": nullable_string, "clip_url": nullable_string,
                    "history": { "type": "array", "description": "Only on GET /alerts/{id}.", "items": {
                        "type": "object", "properties": {
                            "at": { "type": "string", "format": "date-time" }, "who": { "type": "string" },
                            "role": { "type": "string" }, "from": { "type": "string" }, "to": { "type": "string" },
                            "note": nullable_string } } } } }));
    out.insert(
        "Note".into(),
        json!({ "type": "object", "additionalProperties": false, "properties": {
                    "note": { "type": "string", "maxLength": 2000 } } }),
    );
    out.insert("AuditPage".into(), json!({ "type": "object", "required": ["records", "next_before"], "properties": {
                    "records": { "type": "array", "items": { "type": "object", "properties": {
                        "seq": { "type": "integer" }, "at": { "type": "string", "format": "date-time" },
                        "who": { "type": "string" }, "role": { "type": "string" },
                        "route": { "type": "string" }, "query": { "type": "string" },
                        "reason": nullable_string, "results": { "type": ["integer", "null"] },
                        "detail": nullable_string } } },
                    "next_before": { "type": ["integer", "null"] } } }));
    Value::Object(out)
}
