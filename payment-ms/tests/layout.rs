//! The source tree reads as the architecture (docs/architecture.md): one folder per context,
//! no context importing another in a circle, no module that grew past what one can read.
//!
//! `lib.rs` and `state.rs` put the contexts together (every route takes the shared state), so
//! they are the root of the graph, not part of it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// What may stand at `src/`'s root besides the context folders.
const ROOT_FILES: [&str; 6] = [
    "lib.rs",
    "main.rs",
    "state.rs",
    "config.rs",
    "jobs.rs",
    "clock.rs",
];
const COMPOSITION_ROOT: [&str; 3] = ["lib", "main", "state"];
const MAX_LINES: usize = 520;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module at the root of `src/` a file belongs to: `orders` for `src/orders/store.rs`.
fn context_of(path: &Path) -> String {
    let relative = path.strip_prefix(src()).expect("under src");
    let first = relative.components().next().expect("a component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_owned()
}

/// The root modules a file's code (not its unit tests) names through `crate::`.
fn imports(code: &str) -> BTreeSet<String> {
    let code = code.split("#[cfg(test)]").next().unwrap_or(code);
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::x, b::y}`: every path's first segment.
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for path in group.split(',') {
                let name: String = path
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let context = context_of(&file);
        let code = fs::read_to_string(&file).expect("a source file is readable");
        let entry = graph.entry(context.clone()).or_default();
        for name in imports(&code) {
            if name != context {
                entry.insert(name);
            }
        }
    }
    graph
}

/// A path from `from` back to itself, if there is one, through modules that are not the
/// composition root.
fn cycle_through(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![from.to_owned()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().expect("a path is never empty");
        for next in graph.get(last).into_iter().flatten() {
            if COMPOSITION_ROOT.contains(&next.as_str()) {
                continue;
            }
            if next == from {
                let mut cycle = path.clone();
                cycle.push(next.clone());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn no_context_imports_another_in_a_circle() {
    let graph = graph();
    for context in graph.keys() {
        if COMPOSITION_ROOT.contains(&context.as_str()) {
            continue;
        }
        assert_eq!(
            cycle_through(&graph, context),
            None,
            "an import cycle through {context}"
        );
    }
}

#[test]
fn the_platform_knows_no_context() {
    let graph = graph();
    let platform = &graph["platform"];
    for context in [
        "orders",
        "payments",
        "refunds",
        "webhooks",
        "providers",
        "inbound",
    ] {
        assert!(!platform.contains(context), "platform imports {context}");
    }
}

#[test]
fn the_root_holds_the_contexts_and_a_few_files() {
    for entry in fs::read_dir(src()).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        let name = path
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        assert!(
            path.is_dir() || ROOT_FILES.contains(&name.as_str()),
            "{name} at the root of src: it belongs in a context"
        );
    }
}

#[test]
fn no_module_is_too_long_to_read() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    for file in files {
        let code = fs::read_to_string(&file).expect("a source file is readable");
        let lines = code.lines().count();
        assert!(
            lines <= MAX_LINES,
            "{} has {lines} lines; split it",
            file.display()
        );
    }
}

#[test]
fn the_checks_see_what_they_check() {
    // The parser finds grouped and plain paths, and a cycle is found when there is one.
    assert_eq!(
        imports("use crate::{orders::x, payments::y};\nuse crate::events::Event;"),
        BTreeSet::from(["orders".into(), "payments".into(), "events".into()])
    );
    let mut graph = BTreeMap::new();
    graph.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    graph.insert("b".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert_eq!(
        cycle_through(&graph, "a"),
        Some(vec!["a".to_owned(), "b".to_owned(), "a".to_owned()])
    );
}
