//! ONNX Runtime errors name the file and say what to do. Its own test binary,
//! because a failed load leaves the process without a runtime.

use safecity_models::{Runtime, RuntimeError};

#[test]
fn a_missing_or_broken_library_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere/libonnxruntime.so");
    let err = Runtime::get(Some(&missing)).unwrap_err();
    assert!(matches!(err, RuntimeError::NotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("nowhere/libonnxruntime.so") && msg.contains("make setup"),
        "{msg}"
    );
}

#[test]
fn a_file_that_is_not_a_library_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libonnxruntime.so");
    std::fs::write(&fake, b"not a shared library").unwrap();
    // Run in a child process: this one may already hold the result of the
    // other test.
    if std::env::var_os("SAFECITY_CHILD").is_none() {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "a_file_that_is_not_a_library_is_refused_by_name",
                "--nocapture",
            ])
            .env("SAFECITY_CHILD", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        return;
    }
    let err = Runtime::get(Some(&fake)).unwrap_err();
    match &err {
        RuntimeError::Load { path, .. } => assert_eq!(path, &fake),
        other => panic!("expected a load error, got {other:?}"),
    }
    assert!(err.to_string().contains(fake.to_str().unwrap()), "{err}");
}
