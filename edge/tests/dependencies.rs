//! What each deployable links. The video crate and the edge daemon's
//! library carry no simulator, no RTSP server and no random-scene
//! generator; those belong to `safecity-sim`, which only the
//! `safecity-edge` command links. The server must build where GStreamer and
//! ONNX Runtime are not installed, so none of its dependencies may link
//! them.

/// The crates `package` builds on (normal and build dependencies), one
/// `name version` per line.
fn tree(package: &str) -> String {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-p",
            package,
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
    String::from_utf8(out.stdout).unwrap()
}

/// Asserts that none of `forbidden` (crate names; `name*` for every crate
/// whose name starts so) is among `package`'s dependencies.
fn assert_links_none(package: &str, forbidden: &[&str]) {
    let tree = tree(package);
    assert!(tree.contains(package), "{tree}");
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for pattern in forbidden {
        let hit = names.iter().find(|name| match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => *name == pattern,
        });
        assert!(hit.is_none(), "{package} depends on {hit:?}:\n{tree}");
    }
}

#[test]
fn the_server_links_neither_gstreamer_nor_onnx_runtime() {
    assert_links_none(
        "safecity-server",
        &[
            "gstreamer*",
            "ort",
            "ort-sys",
            "safecity-pipeline",
            "safecity-models",
            "safecity-sim",
        ],
    );
}

#[test]
fn the_daemon_library_links_no_simulator() {
    assert_links_none(
        "safecity-edge",
        &[
            "safecity-sim",
            "gstreamer-rtsp-server",
            "rand",
            "rand_chacha",
        ],
    );
}

#[test]
fn the_video_crate_is_video_in_only() {
    assert_links_none(
        "safecity-pipeline",
        &[
            "safecity-sim",
            "gstreamer-rtsp-server",
            "rand",
            "rand_chacha",
            "ureq",
            "rayon",
            "image",
        ],
    );
}

/// The checks above can fail: the command line links the simulator.
#[test]
fn the_command_line_links_the_simulator() {
    let tree = tree("safecity-edge-cli");
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for name in ["safecity-sim", "gstreamer-rtsp-server", "rand"] {
        assert!(names.contains(&name), "{name} missing:\n{tree}");
    }
}
