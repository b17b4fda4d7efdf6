//! The server's modules depend on each other one way only: `model` (the
//! shared value types) and `error` at the bottom, `config`, the stores and
//! the domain logic above them, the HTTP layer on top. Read from the
//! sources' `crate::` paths; `lib.rs` and `main.rs`, which wire everything
//! together, are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module -> the top-level modules its files name.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// The names right after each `crate::` in `text` (each name of a
/// `crate::{a, b::c}` group).
fn crate_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let ident = |from: usize| -> String {
        text[from..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut at = 0;
    while let Some(i) = text[at..].find("crate::") {
        let start = at + i + "crate::".len();
        at = start;
        if bytes.get(start) == Some(&b'{') {
            // Names at the group's first level.
            let mut depth = 0;
            let mut expect_name = true;
            for (k, c) in text[start..].char_indices() {
                match c {
                    '{' => {
                        depth += 1;
                        expect_name = depth == 1;
                    }
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => expect_name = true,
                    c if expect_name && depth == 1 && (c.is_ascii_alphabetic() || c == '_') => {
                        out.push(ident(start + k));
                        expect_name = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(ident(start));
        }
    }
    out
}

fn graph() -> (Graph, Vec<String>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = Graph::new();
    let mut root_paths = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap();
            let first = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            let top = first.trim_end_matches(".rs").to_owned();
            if top == "lib" || top == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let deps = graph.entry(top.clone()).or_default();
            for name in crate_paths(&text) {
                if name.starts_with(|c: char| c.is_ascii_uppercase()) {
                    root_paths.push(format!("{}: crate::{name}", rel.display()));
                } else if !name.is_empty() && name != top && name != "self" {
                    deps.insert(name);
                }
            }
        }
    }
    (graph, root_paths)
}

/// A cycle through `from`, as the modules on it, if there is one.
fn cycle_from(graph: &Graph, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![(from.to_owned(), vec![from.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in graph.get(&at).into_iter().flatten() {
            if next == from {
                let mut cycle = path.clone();
                cycle.push(from.to_owned());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn no_module_depends_on_itself_through_others() {
    let (graph, _) = graph();
    // The reading sees the layers (so that this test can fail).
    assert!(graph["api"].contains("store"), "{graph:?}");
    assert!(graph["store"].contains("model"), "{graph:?}");
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|m| cycle_from(&graph, m))
        .map(|c| c.join(" -> "))
        .collect();
    assert!(cycles.is_empty(), "module cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_value_types_depend_on_no_layer_above_them() {
    let (graph, _) = graph();
    let allowed: BTreeSet<&str> = ["error", "auth"].into();
    let above: Vec<&String> = graph["model"]
        .iter()
        .filter(|m| !allowed.contains(m.as_str()))
        .collect();
    assert!(above.is_empty(), "model uses {above:?}");
}

/// Modules name the module an item lives in, not the crate root's
/// re-exports, so that the graph above sees every dependency.
#[test]
fn modules_import_from_modules_not_from_the_crate_root() {
    let (graph, mut root_paths) = graph();
    for (module, deps) in &graph {
        for dep in deps.iter().filter(|d| !graph.contains_key(*d)) {
            root_paths.push(format!("{module}: crate::{dep} is not a module"));
        }
    }
    assert!(root_paths.is_empty(), "{}", root_paths.join("\n"));
}

#[test]
fn crate_paths_are_read_from_groups_and_paths() {
    let names = crate_paths(
        "use crate::model::{A, B};\nuse crate::{error::Result, store::{self, Store}};\nlet x = crate::api::now_ms();",
    );
    assert_eq!(names, ["model", "error", "store", "api"]);
}
