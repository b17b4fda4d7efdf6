//! Alerts POSTed to a webhook, retried after a failure.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use tokio_rustls::rustls::{ServerConnection, StreamOwned};

use axum::http::StatusCode;
use safecity_server::{Priority, ServerConfig, WebhookConfig};
use serde_json::{json, Value};

use crate::support::*;

/// A receiver on a loopback port, over TLS with `tls`: answers 503 to the
/// first request and 200 to the rest, and passes on each request's
/// headers and body.
fn receiver(
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
) -> (String, mpsc::Receiver<(Vec<String>, Value)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let conn = conn.unwrap();
            let status = if n == 0 {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            let got = match &tls {
                None => answer(conn, status),
                Some(config) => {
                    let session = ServerConnection::new(config.clone()).unwrap();
                    let mut stream = StreamOwned::new(session, conn);
                    let got = answer(&mut stream, status);
                    stream.conn.send_close_notify();
                    let _ = stream.flush();
                    got
                }
            };
            if tx.send(got).is_err() {
                return;
            }
        }
    });
    (url, rx)
}

/// Reads one request from `stream` and answers `status`; returns the
/// request's headers (lower case) and JSON body.
fn answer(mut stream: impl Read + Write, status: &str) -> (Vec<String>, Value) {
    let mut reader = BufReader::new(&mut stream);
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        headers.push(line.to_ascii_lowercase());
    }
    let length: usize = headers
        .iter()
        .find_map(|h| h.strip_prefix("content-length: "))
        .map_or(0, |v| v.parse().unwrap());
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    stream.flush().unwrap();
    (headers, serde_json::from_slice(&body).unwrap())
}

fn hook(url: String, ca: Option<PathBuf>) -> WebhookConfig {
    WebhookConfig {
        url,
        ca,
        secret: Some("s3cret".into()),
        secret_header: "X-Safecity-Secret".into(),
        min_priority: Priority::High,
        max_attempts: 5,
        timeout_s: 10,
    }
}

#[tokio::test]
async fn alerts_at_or_above_the_minimum_priority_are_posted_with_retries() {
    let (url, received) = receiver(None);
    posted_with_retries(hook(url, None), received).await;
}

#[tokio::test]
async fn alerts_go_to_an_https_webhook_trusted_through_its_ca() {
    let pki = tempfile::tempdir().unwrap();
    crate::tls::certificates(pki.path());
    let tls = safecity_core::tls::server_config(
        &pki.path().join("server.pem"),
        &pki.path().join("server.key"),
    )
    .unwrap();
    let (url, received) = receiver(Some(tls));
    assert!(url.starts_with("https://127.0.0.1:"));
    posted_with_retries(hook(url, Some(pki.path().join("ca.pem"))), received).await;
}

#[test]
fn a_webhook_ca_that_is_not_a_certificate_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate\n").unwrap();
    let err = hook("https://127.0.0.1:9/hook".into(), Some(ca.clone()))
        .validate(0)
        .unwrap_err();
    assert!(
        err.contains("webhooks[0].ca") && err.contains("ca.pem"),
        "{err}"
    );
    let err = hook("http://127.0.0.1:9/hook".into(), Some(ca))
        .validate(0)
        .unwrap_err();
    assert!(err.contains("not https://"), "{err}");
    assert!(hook("ftp://x/hook".into(), None).validate(0).is_err());
    assert!(hook("https://x/hook".into(), None).validate(0).is_ok());
}

/// `hook` gets the alarm (after one 503) and not the low-priority hit.
async fn posted_with_retries(hook: WebhookConfig, received: mpsc::Receiver<(Vec<String>, Value)>) {
    let f = Fixture::with_config(ServerConfig {
        webhooks: vec![hook],
        ..ServerConfig::default()
    });
    let a = f
        .post_json(
            "/api/v1/watchlist",
            &f.operator,
            &json!({"pattern": "123ABC02", "reason": "r", "priority": "low"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    // A low-priority hit is not sent; the alarm is, after one refusal.
    let read = event(1, T0, "cam-a", Some("123ABC02"), "car", "white");
    let a = f.post_events(&[read, alarm(2, T0 + 1, "pillar-1")]).await;
    assert_eq!(a.status, StatusCode::OK);

    let wait = Duration::from_secs(60);
    let (first_headers, first) = received.recv_timeout(wait).expect("a webhook request");
    let (headers, body) = received
        .recv_timeout(wait)
        .expect("a retried webhook request");
    assert_eq!(first, body, "the retry sends the same alert");
    assert!(
        first_headers.contains(&"x-safecity-secret: s3cret".to_owned()),
        "{first_headers:?}"
    );
    assert!(headers
        .iter()
        .any(|h| h.starts_with("content-type: application/json")));
    assert_eq!(body["kind"], "panic_alarm");
    assert_eq!(body["priority"], "critical");
    assert_eq!(body["camera_id"], "pillar-1");
    assert_eq!(body["state"], "new");
    assert_eq!(body["id"], 2);
    assert!(
        received.recv_timeout(Duration::from_millis(300)).is_err(),
        "nothing else is sent"
    );
    // The counters show the retry and the delivery.
    let text = String::from_utf8(
        f.call(
            axum::http::Method::GET,
            "/metrics",
            None,
            &[],
            axum::body::Body::empty(),
        )
        .await
        .body
        .to_vec(),
    )
    .unwrap();
    assert!(text.contains("safecity_webhooks_retried_total 1"), "{text}");
}
