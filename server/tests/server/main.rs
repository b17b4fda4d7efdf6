//! The server, driven over HTTP: through the router without a socket
//! (`api`, `trajectory`, `alerts`, `webhooks`, `openapi`, `retention`) and as
//! the real binary on a loopback port (`socket`). Most run on both
//! backends: SQLite, and PostgreSQL on a server the tests start (`pg`).

mod alerts;
mod api;
mod layers;
mod openapi;
mod pg;
mod plate_index;
mod postgres;
mod retention;
mod socket;
mod support;
mod tls;
mod trajectory;
mod webhooks;

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
