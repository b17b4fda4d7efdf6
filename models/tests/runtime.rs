//! ONNX Runtime comes up from the library `make setup` installs.
//!
//! One test function: ort allows one library per process, and the test
//! binary is that process.

use std::path::Path;

use safecity_models::{Runtime, RuntimeError};

#[test]
fn loads_the_installed_library_once_and_names_bad_paths() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libonnxruntime.so");
    std::fs::write(&fake, b"not a shared library").unwrap();

    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let installed = workspace.join(".deps/onnxruntime/libonnxruntime.so");
    assert!(
        installed.is_file(),
        "{} is missing: run `make setup` (make test does it)",
        installed.display()
    );

    let missing = dir.path().join("nowhere.so");
    assert_eq!(Runtime::candidates(Some(&missing)), vec![missing.clone()]);

    let rt = Runtime::get(Some(&installed)).expect("the installed ONNX Runtime loads");
    assert_eq!(rt.library(), installed);
    // The same runtime again; another library is refused by name.
    assert_eq!(Runtime::get(None).unwrap().library(), installed);
    match Runtime::get(Some(&fake)) {
        Err(RuntimeError::AlreadyLoaded { requested, .. }) => assert_eq!(requested, fake),
        other => panic!("expected AlreadyLoaded, got {other:?}"),
    }
}
