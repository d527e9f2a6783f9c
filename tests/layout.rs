//! The code keeps the shape the README promises a newcomer: in every crate no two modules import
//! each other (directly or round a longer loop); in `relay-core` nothing imports upwards through
//! the layers (primitives → model → ports → workflows → test doubles); the domain crate depends
//! on no AWS or Lambda crate; and no source file in `shared/` or `functions/` grows past 500
//! lines unless it is listed here with the reason.
//!
//! Imports are read from the source text (`use` trees and inline `crate::`/`super::` paths,
//! test modules left out), which is all Rust allows a module to depend on within a crate.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use relay_e2e::repo_root;

/// Files allowed past the line budget, and why.
const LONG_FILES: &[(&str, &str)] = &[];

/// The most lines a source file in `shared/` or `functions/` should have.
const MAX_LINES: usize = 500;

/// The tree read: this repository, or another checkout named by `RELAY_LAYOUT_ROOT` (to compare
/// an older commit's shape with `git worktree add`).
fn root() -> PathBuf {
    std::env::var("RELAY_LAYOUT_ROOT").map(PathBuf::from).unwrap_or_else(|_| repo_root())
}

/// Every crate's source root.
fn crate_roots() -> Vec<PathBuf> {
    let root = root();
    let mut out = Vec::new();
    for group in ["shared", "functions", "infra"] {
        for entry in std::fs::read_dir(root.join(group)).expect("a crate group").flatten() {
            let src = entry.path().join("src");
            if src.is_dir() {
                out.push(src);
            }
        }
    }
    out.sort();
    out
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a source directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// `a/b.rs` and `a/b/mod.rs` are `a::b`; `lib.rs` and `main.rs` are the crate root (`""`). A
/// file declared as `mod tests;` beside its parent is the parent's test module: `None`.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    if parts.last().map(String::as_str) == Some("tests") {
        return None;
    }
    Some(parts.join("::"))
}

/// The code of a file without its comments and without its `#[cfg(test)]` part (tests may use
/// anything; they are not part of the layering).
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// Expands one `use` tree (`crate::a::{b, c::{D, e}}`) into its paths.
fn expand(tree: &str) -> Vec<String> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(open) = tree.find('{') else { return vec![tree] };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts.into_iter().filter(|p| !p.is_empty()).flat_map(|p| expand(&format!("{prefix}{p}"))).collect()
}

/// Every path a file names that starts with `crate::` or `super::`.
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    // `use` trees, braces and all.
    for stmt in code.split(';') {
        if let Some(i) = stmt.find("use ") {
            let tree = stmt[i + 4..].trim();
            if tree.starts_with("crate::") || tree.starts_with("super::") {
                out.extend(expand(tree));
            }
        }
    }
    // Inline paths (`crate::model::ids::new_source_id()`).
    let bytes = code.as_bytes();
    for anchor in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(anchor).map(|i| i + from) {
            let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b':');
            let end = code[i..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).map_or(code.len(), |e| e + i);
            if boundary {
                out.push(code[i..end].trim_end_matches(':').to_string());
            }
            from = end.max(i + anchor.len());
        }
    }
    out
}

/// The module a path lands in: its longest prefix that is a module of the crate.
fn resolve(path: &str, from: &str, modules: &BTreeSet<String>) -> Option<String> {
    let mut segments: Vec<&str> = Vec::new();
    let mut rest = path;
    if let Some(r) = rest.strip_prefix("crate::") {
        rest = r;
    } else {
        segments.extend(from.split("::").filter(|s| !s.is_empty()));
        while let Some(r) = rest.strip_prefix("super::") {
            segments.pop();
            rest = r;
        }
    }
    segments.extend(rest.split("::").filter(|s| !s.is_empty() && *s != "self"));
    (0..=segments.len()).rev().map(|n| segments[..n].join("::")).find(|m| modules.contains(m))
}

/// Module → the modules it imports, for one crate.
fn import_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let files: Vec<(String, String)> = rust_files(src)
        .into_iter()
        .filter_map(|f| Some((module_of(src, &f)?, std::fs::read_to_string(&f).expect("a source file"))))
        .collect();
    let modules: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in &files {
        let targets = graph.entry(module.clone()).or_default();
        for path in paths(&code(text)) {
            if let Some(target) = resolve(&path, module, &modules) {
                // A module's own submodules and the crate root (declarations only) are not edges.
                if &target != module && !target.is_empty() && !target.starts_with(&format!("{module}::")) {
                    targets.insert(target);
                }
            }
        }
    }
    graph
}

/// The import cycles of a graph: each strongly connected set of two or more modules.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let reaches = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(m) = todo.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&String, BTreeSet<String>> = graph.keys().map(|m| (m, reaches(m))).collect();
    let mut found: BTreeSet<Vec<String>> = BTreeSet::new();
    for (m, r) in &reach {
        let mut set: Vec<String> = r.iter().filter(|o| reach.get(o).is_some_and(|back| back.contains(*m))).cloned().collect();
        if !set.is_empty() {
            set.push((*m).clone());
            set.sort();
            set.dedup();
            found.insert(set);
        }
    }
    found.into_iter().collect()
}

/// `relay-core`'s layer of a module (see `shared/core/src/lib.rs`).
fn core_layer(module: &str) -> (u8, &'static str) {
    let top = module.split("::").next().unwrap_or("");
    match (top, module) {
        ("crypto" | "secrets" | "signing" | "ssrf", _) => (0, "primitives"),
        (_, "webhooks" | "webhooks::verify" | "webhooks::mapping" | "webhooks::sources") | ("model", _) => (1, "model"),
        ("ports" | "metrics", _) => (2, "ports"),
        ("auth" | "ingest" | "delivery" | "manage", _) | (_, "webhooks::receive") => (3, "workflows"),
        ("memory", _) => (4, "test doubles"),
        _ => (u8::MAX, "unplaced"),
    }
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let mut problems = Vec::new();
    for src in crate_roots() {
        let graph = import_graph(&src);
        for cycle in cycles(&graph) {
            problems.push(format!("{}: {}", src.display(), cycle.join(" <-> ")));
        }
    }
    assert!(problems.is_empty(), "import cycles:\n{}", problems.join("\n"));
}

#[test]
fn relay_core_imports_only_downwards_through_its_layers() {
    let graph = import_graph(&root().join("shared/core/src"));
    assert!(graph.len() > 30, "the graph was read ({} modules)", graph.len());
    let mut problems = Vec::new();
    for (module, targets) in &graph {
        let (layer, name) = core_layer(module);
        if module.is_empty() {
            continue;
        }
        if layer == u8::MAX {
            problems.push(format!("{module} has no layer: place it in core_layer and in lib.rs's map"));
        }
        for target in targets {
            let (target_layer, target_name) = core_layer(target);
            if target_layer > layer {
                problems.push(format!("{module} ({name}) imports {target} ({target_name})"));
            }
        }
    }
    assert!(problems.is_empty(), "upward imports in relay-core:\n{}", problems.join("\n"));
}

#[test]
fn the_domain_crate_depends_on_no_aws_or_lambda_crate() {
    let manifest = std::fs::read_to_string(root().join("shared/core/Cargo.toml")).expect("Cargo.toml");
    for line in manifest.lines().map(str::trim) {
        assert!(!line.starts_with("aws") && !line.starts_with("lambda"), "relay-core depends on {line}");
    }
}

#[test]
fn no_source_file_in_shared_or_functions_is_over_the_line_budget() {
    let root = root();
    let mut long = Vec::new();
    for src in crate_roots().into_iter().filter(|s| !s.starts_with(root.join("infra"))) {
        for file in rust_files(&src) {
            let rel = file.strip_prefix(&root).unwrap_or(&file).to_string_lossy().into_owned();
            let lines = std::fs::read_to_string(&file).expect("a source file").lines().count();
            if lines > MAX_LINES && !LONG_FILES.iter().any(|(f, _)| *f == rel) {
                long.push(format!("{rel}: {lines} lines"));
            }
        }
    }
    assert!(long.is_empty(), "over {MAX_LINES} lines (split it, or list it in LONG_FILES with the reason):\n{}", long.join("\n"));
}

#[test]
fn the_reader_finds_the_imports_it_must() {
    // The checks above are only as good as the reading: a known edge of each kind is found.
    let core = import_graph(&root().join("shared/core/src"));
    let edges = |m: &str| core.get(m).cloned().unwrap_or_default();
    assert!(edges("delivery").contains("ports"), "a grouped use: {:?}", edges("delivery"));
    assert!(edges("webhooks::receive").contains("webhooks::verify"), "a super:: use: {:?}", edges("webhooks::receive"));
    assert!(edges("model::reply").contains("model::problem"), "a crate:: use: {:?}", edges("model::reply"));
    let cyclic = BTreeMap::from([
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["c".to_string()])),
        ("c".to_string(), BTreeSet::from(["a".to_string()])),
        ("d".to_string(), BTreeSet::from(["a".to_string()])),
    ]);
    assert_eq!(cycles(&cyclic), vec![vec!["a".to_string(), "b".to_string(), "c".to_string()]]);
}
