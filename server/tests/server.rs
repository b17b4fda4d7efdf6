//! The server, driven over HTTP.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

#[tokio::test]
async fn healthz_answers_ok() {
    let res = safecity_server::app()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
    assert_eq!(&body[..], b"ok\n");
}

/// The server must build where GStreamer and ONNX Runtime are not installed,
/// so none of its dependencies may link them.
#[test]
fn depends_on_neither_gstreamer_nor_onnx_runtime() {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-p",
            "safecity-server",
            "-e",
            "normal,build",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    assert!(tree.contains("safecity-core"), "{tree}");
    for forbidden in [
        "gstreamer",
        "ort ",
        "ort-sys",
        "safecity-pipeline",
        "safecity-models",
    ] {
        assert!(
            !tree.contains(forbidden),
            "safecity-server depends on {forbidden}:\n{tree}"
        );
    }
}
