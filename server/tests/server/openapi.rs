//! `GET /api/v1/openapi.json` against the router: every route is
//! described, every described operation is routed, and the roles each
//! operation lists are the roles that get past its role check.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use safecity_server::{app, routes};
use serde_json::Value;
use tower::ServiceExt;

use crate::support::Fixture;

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

async fn document(f: &Fixture) -> Value {
    let a = f
        .call(
            Method::GET,
            "/api/v1/openapi.json",
            None,
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers["content-type"], "application/json");
    a.json()
}

/// Every `(method, path)` the document describes, with its operation.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(METHODS.contains(&method.as_str()), "{path}: {method}");
            out.push((method.to_uppercase(), path.clone(), op.clone()));
        }
    }
    out
}

/// The path with each `{name}` replaced by its parameter's example.
fn probe_path(path: &str, op: &Value) -> String {
    let mut out = path.to_owned();
    for p in op["parameters"].as_array().unwrap() {
        if p["in"] == "path" {
            let name = p["name"].as_str().unwrap();
            let example = p["example"]
                .as_str()
                .unwrap_or_else(|| panic!("{path}: path parameter {name} has no example"));
            out = out.replace(&format!("{{{name}}}"), example);
        }
    }
    assert!(
        !out.contains('{'),
        "{path}: a path parameter is not described"
    );
    out
}

/// Status and, for JSON answers, the error message. Event streams are not
/// read (they do not end).
async fn status_of(
    f: &Fixture,
    method: &str,
    uri: &str,
    token: Option<&str>,
) -> (StatusCode, Option<String>) {
    let mut req = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(uri);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let res = app(f.state.clone())
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let json = res
        .headers()
        .get("content-type")
        .is_some_and(|v| v == "application/json");
    if !json {
        return (status, None);
    }
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    (status, v["error"].as_str().map(str::to_owned))
}

fn is_no_route(answer: &(StatusCode, Option<String>)) -> bool {
    answer.0 == StatusCode::METHOD_NOT_ALLOWED
        || (answer.0 == StatusCode::NOT_FOUND
            && answer
                .1
                .as_deref()
                .is_some_and(|e| e.starts_with("no route")))
}

#[tokio::test]
async fn the_document_describes_exactly_the_routes_the_router_serves() {
    let f = Fixture::new();
    let doc = document(&f).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    let routed: BTreeSet<(String, String)> = routes()
        .into_iter()
        .map(|(m, p)| (m.as_str().to_owned(), p.to_owned()))
        .collect();
    let missing: Vec<_> = routed.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes not in the OpenAPI document: {missing:?}"
    );
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(
        extra.is_empty(),
        "documented operations with no route: {extra:?}"
    );
    for must in [
        ("POST", "/api/v1/events"),
        ("GET", "/api/v1/search"),
        ("GET", "/api/v1/plates/{plate}/track"),
        ("GET", "/api/v1/alerts/stream"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/healthz"),
    ] {
        assert!(
            routed.contains(&(must.0.to_owned(), must.1.to_owned())),
            "{must:?}"
        );
    }
}

#[tokio::test]
async fn every_documented_operation_is_reachable_and_an_unknown_one_is_not() {
    let f = Fixture::new();
    let doc = document(&f).await;
    for (method, path, op) in operations(&doc) {
        let uri = probe_path(&path, &op);
        let answer = status_of(&f, &method, &uri, Some(&f.admin)).await;
        assert!(!is_no_route(&answer), "{method} {uri}: {answer:?}");
    }
    // The probe tells a missing route apart.
    let answer = status_of(&f, "GET", "/api/v1/nothing-here", Some(&f.admin)).await;
    assert!(is_no_route(&answer), "{answer:?}");
    let answer = status_of(&f, "DELETE", "/api/v1/search", Some(&f.admin)).await;
    assert!(is_no_route(&answer), "{answer:?}");
}

#[tokio::test]
async fn the_roles_each_operation_lists_are_the_roles_it_lets_in() {
    let f = Fixture::new();
    let doc = document(&f).await;
    let tokens = [
        ("admin", f.admin.as_str()),
        ("edge", f.edge.as_str()),
        ("investigator", f.investigator.as_str()),
        ("operator", f.operator.as_str()),
    ];
    for (method, path, op) in operations(&doc) {
        let uri = probe_path(&path, &op);
        let description = op["description"].as_str().unwrap();
        match op.get("x-roles") {
            None => {
                assert_eq!(op["security"], serde_json::json!([]), "{method} {path}");
                let (status, _) = status_of(&f, &method, &uri, None).await;
                assert_eq!(status, StatusCode::OK, "{method} {path} is open");
            }
            Some(roles) => {
                let roles: Vec<&str> = roles
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap())
                    .collect();
                assert!(
                    description.contains(&format!("Roles: {}.", roles.join(", "))),
                    "{method} {path}: {description}"
                );
                assert_eq!(
                    op["security"],
                    serde_json::json!([{ "bearer": [] }]),
                    "{method} {path}"
                );
                for status in ["401", "403", "500"] {
                    assert!(
                        op["responses"][status].is_object(),
                        "{method} {path} lacks {status}"
                    );
                }
                let (status, _) = status_of(&f, &method, &uri, None).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
                for (role, token) in tokens {
                    let (status, error) = status_of(&f, &method, &uri, Some(token)).await;
                    if roles.contains(&role) {
                        assert!(
                            status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                            "{method} {path} as {role}: {status} {error:?}"
                        );
                    } else {
                        assert_eq!(
                            status,
                            StatusCode::FORBIDDEN,
                            "{method} {path} as {role}: {error:?}"
                        );
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn a_required_reason_is_documented_where_it_is_required() {
    let f = Fixture::new();
    let doc = document(&f).await;
    let reason = &doc["components"]["parameters"]["reason"];
    assert_eq!(reason["required"], true);
    assert_eq!(reason["in"], "query");
    let mut with_reason = Vec::new();
    for (method, path, op) in operations(&doc) {
        let documented = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["$ref"] == "#/components/parameters/reason");
        let uri = probe_path(&path, &op);
        let (status, error) = status_of(&f, &method, &uri, Some(&f.admin)).await;
        let refused = status == StatusCode::BAD_REQUEST
            && error
                .as_deref()
                .is_some_and(|e| e.starts_with("reason is required"));
        assert_eq!(
            documented, refused,
            "{method} {path}: reason documented as required: {documented}, answer {status} {error:?}"
        );
        if documented {
            with_reason.push(format!("{method} {path}"));
        }
    }
    assert!(with_reason.contains(&"GET /api/v1/search".to_owned()));
    assert!(with_reason.contains(&"GET /api/v1/plates/{plate}/track".to_owned()));
    assert!(with_reason.contains(&"GET /api/v1/events/{id}/snapshot".to_owned()));
}

/// Every `$ref` in `v` points at something in `doc`.
fn check_refs(doc: &Value, v: &Value, at: &str) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                let pointer = target.strip_prefix('#').expect("a local $ref");
                assert!(
                    doc.pointer(pointer).is_some(),
                    "{at}: $ref {target} points at nothing"
                );
            }
            for (k, child) in map {
                check_refs(doc, child, &format!("{at}/{k}"));
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                check_refs(doc, child, &format!("{at}/{i}"));
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn references_resolve_and_errors_share_the_json_shape() {
    let f = Fixture::new();
    let doc = document(&f).await;
    check_refs(&doc, &doc, "");
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(error["required"], serde_json::json!(["error"]));
    for (name, response) in doc["components"]["responses"].as_object().unwrap() {
        assert_eq!(
            response["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/Error",
            "{name}"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for (method, path, op) in operations(&doc) {
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|k| k.starts_with('2')),
            "{method} {path} has no success answer"
        );
        for (status, r) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert!(
                    r["$ref"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("#/components/responses/")),
                    "{method} {path} {status}"
                );
            }
        }
        if method == "POST" || method == "PUT" {
            let takes_body = op.get("requestBody").is_some();
            assert!(takes_body, "{method} {path} has no request body");
        }
    }
}
