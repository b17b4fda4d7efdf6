//! Alerts POSTed to a webhook, retried after a failure.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use axum::http::StatusCode;
use safecity_server::{Priority, ServerConfig, WebhookConfig};
use serde_json::{json, Value};

use crate::support::*;

/// A receiver on a loopback port: answers 503 to the first request and
/// 200 to the rest, and passes on each request's headers and body.
fn receiver() -> (String, mpsc::Receiver<(Vec<String>, Value)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let mut conn = conn.unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
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
            let status = if n == 0 {
                "503 Service Unavailable"
            } else {
                "200 OK"
            };
            write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            if tx
                .send((headers, serde_json::from_slice(&body).unwrap()))
                .is_err()
            {
                return;
            }
        }
    });
    (url, rx)
}

#[tokio::test]
async fn alerts_at_or_above_the_minimum_priority_are_posted_with_retries() {
    let (url, received) = receiver();
    let f = Fixture::with_config(ServerConfig {
        webhooks: vec![WebhookConfig {
            url,
            secret: Some("s3cret".into()),
            secret_header: "X-Safecity-Secret".into(),
            min_priority: Priority::High,
            max_attempts: 5,
            timeout_s: 10,
        }],
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
