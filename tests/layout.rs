//! The code keeps the shape the README promises a newcomer: in every crate under `shared/`,
//! `functions/` and `infra/` no two modules import each other (directly or round a longer loop); in `relay-core` nothing imports upwards through
//! the layers (primitives → model → ports → workflows → test doubles); the domain crate depends
//! on no AWS or Lambda crate; and no source file in `shared/` or `functions/` grows past 500
//! lines unless it is listed here with the reason.
//!
//! Imports are read from the source text, comments taken out and literals blanked: `use` trees
//! (renames included) and inline paths that start with `crate::`, `super::` or the name of one of
//! the module's own submodules (the ways this codebase names another module), test modules left
//! out. A path into the crate root counts as an edge to the root, so a root re-export cannot
//! hide an import. Not read: paths made by macros (none name modules here) and inline `mod x {}`
//! blocks other than tests (give a module its own file).

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
/// file declared as `mod tests;` (or `mod <topic>_tests;`) beside its parent is the parent's test
/// module: `None`.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    // A main.rs beside a lib.rs is another crate (the binary); it names the library by its name.
    if file == src.join("main.rs") && src.join("lib.rs").exists() {
        return None;
    }
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    if parts.last().is_some_and(|p| p == "tests" || p.ends_with("_tests")) {
        return None;
    }
    Some(parts.join("::"))
}

/// The code of a file, masked (see [`mask`]), without its `#[cfg(test)] mod ... { }` block
/// (tests may use anything; they are not part of the layering; by convention they end a file).
fn code(text: &str) -> String {
    let masked = mask(text);
    let lines: Vec<&str> = masked.lines().collect();
    let mut kept = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let next = lines[i + 1..].iter().map(|l| l.trim()).find(|l| !l.is_empty()).unwrap_or("");
        if line.trim() == "#[cfg(test)]" && next.starts_with("mod ") && next.ends_with('{') {
            break;
        }
        kept.push(*line);
    }
    kept.join("\n")
}

/// The text with its comments taken out and the insides of its string and character literals
/// blanked, so that neither can be read as a path or a `use`; lines are kept.
fn mask(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    // Skips to the end of a literal, keeping its line breaks.
    let newlines =
        |out: &mut String, from: usize, to: usize| c[from..to.min(c.len())].iter().filter(|ch| **ch == '\n').for_each(|_| out.push('\n'));
    while i < c.len() {
        match c[i] {
            '/' if c.get(i + 1) == Some(&'/') => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '/' if c.get(i + 1) == Some(&'*') => {
                let start = i;
                i += 2;
                while i < c.len() && !(c[i] == '*' && c.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                i += 2;
                newlines(&mut out, start, i);
            }
            'r' if matches!(c.get(i + 1), Some('"' | '#')) && (i == 0 || !ident(c[i - 1]) || c[i - 1] == 'b') => {
                let mut j = i + 1;
                let mut hashes = 0;
                while c.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if c.get(j) != Some(&'"') {
                    out.push('r');
                    i += 1;
                    continue;
                }
                let start = j;
                j += 1;
                while j < c.len() && !(c[j] == '"' && (0..hashes).all(|k| c.get(j + 1 + k) == Some(&'#'))) {
                    j += 1;
                }
                out.push_str("\"\"");
                newlines(&mut out, start, j);
                i = j + 1 + hashes;
            }
            '"' => {
                let start = i;
                i += 1;
                while i < c.len() && c[i] != '"' {
                    i += if c[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
                newlines(&mut out, start, i);
            }
            '\'' if c.get(i + 1) == Some(&'\\') => {
                let mut j = i + 3;
                while j < c.len() && c[j] != '\'' {
                    j += 1;
                }
                out.push_str("' '");
                i = j + 1;
            }
            '\'' if c.get(i + 2) == Some(&'\'') => {
                out.push_str("' '");
                i += 3;
            }
            ch => {
                out.push(ch);
                i += 1;
            }
        }
    }
    out
}

/// Expands one `use` tree (`crate::a::{b, c::{D, e}}`) into its paths.
fn expand(tree: &str) -> Vec<String> {
    // `x as y` names the same module as `x`.
    let mut joined = String::new();
    let mut tokens = tree.split_whitespace();
    while let Some(t) = tokens.next() {
        if t == "as" {
            if let Some(alias) = tokens.next() {
                joined.push_str(alias.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_'));
            }
            continue;
        }
        joined.push_str(t);
    }
    let tree = joined;
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

/// Every path a file names that starts with `crate::`, `super::` or one of `children`.
fn paths(code: &str, children: &[String]) -> Vec<String> {
    let starts =
        |p: &str| p.starts_with("crate::") || p.starts_with("super::") || children.iter().any(|c| p.starts_with(&format!("{c}::")));
    let mut out = Vec::new();
    // `use` trees, braces and all: a `use` that begins a statement (after attributes or `pub`).
    for stmt in code.split(';') {
        let Some(i) = use_keyword(stmt) else { continue };
        let tree = stmt[i + 4..].trim();
        if starts(tree) {
            out.extend(expand(tree));
        }
    }
    // Inline paths (`crate::model::ids::new_source_id()`, `sources::route(..)`).
    let bytes = code.as_bytes();
    let mut anchors = vec!["crate::".to_string(), "super::".to_string()];
    anchors.extend(children.iter().map(|c| format!("{c}::")));
    for anchor in &anchors {
        let mut from = 0;
        while let Some(i) = code[from..].find(anchor.as_str()).map(|i| i + from) {
            let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b':');
            let end = code[i..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).map_or(code.len(), |e| e + i);
            // A bare `crate::` before a brace is a `use` tree, read above.
            if boundary && end > i + anchor.len() {
                out.push(code[i..end].trim_end_matches(':').to_string());
            }
            from = end.max(i + anchor.len());
        }
    }
    out
}

/// Where the `use` keyword of a statement is: at its start, after attributes, or after `pub`.
fn use_keyword(stmt: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = stmt[from..].find("use ").map(|i| i + from) {
        let before = stmt[..i].trim_end();
        let word_start = i == 0 || stmt.as_bytes()[i - 1].is_ascii_whitespace();
        let at_start = before.is_empty() || before.ends_with(['}', ']', '{']) || before.ends_with("pub") || before.ends_with(')');
        if word_start && at_start {
            return Some(i);
        }
        from = i + 4;
    }
    None
}

/// The module a path lands in: its longest prefix that is a module of the crate.
fn resolve(path: &str, from: &str, modules: &BTreeSet<String>) -> Option<String> {
    let mut segments: Vec<&str> = Vec::new();
    let mut rest = path;
    if let Some(r) = rest.strip_prefix("crate::") {
        rest = r;
    } else if !rest.starts_with("super::") {
        // A path from one of the module's own submodules.
        segments.extend(from.split("::").filter(|s| !s.is_empty()));
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
        let prefix = if module.is_empty() { String::new() } else { format!("{module}::") };
        let children: Vec<String> = modules
            .iter()
            .filter_map(|m| m.strip_prefix(&prefix).filter(|rest| !m.is_empty() && !rest.contains("::")).map(str::to_string))
            .collect();
        let targets = graph.entry(module.clone()).or_default();
        for path in paths(&code(text), &children) {
            if let Some(target) = resolve(&path, module, &modules) {
                if &target != module {
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
        (_, "webhooks" | "webhooks::verify" | "webhooks::mapping" | "webhooks::sources")
        | (
            _,
            "payroll" | "payroll::rules" | "payroll::compute" | "payroll::sepa" | "payroll::pdf" | "payroll::job" | "payroll::schedule",
        )
        | (_, "provision" | "provision::tenant" | "provision::licence" | "provision::cloud_init" | "provision::fleet")
        | ("model", _) => (1, "model"),
        ("ports" | "metrics", _) => (2, "ports"),
        ("auth" | "idempotent" | "ingest" | "delivery" | "manage" | "mail" | "notify", _)
        | (_, "webhooks::receive" | "payroll::run" | "payroll::requests" | "payroll::tick")
        | (_, "provision::workflow" | "provision::steps" | "provision::requests" | "provision::integrations") => (3, "workflows"),
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
    assert_eq!(mask(r#"let u = "https://x crate::b"; // note crate::a"#), r#"let u = ""; "#);
    assert_eq!(
        mask("if c == '\"' { crate::a::f() } /* crate::c\n */ let r = r#\"crate::d\"#;"),
        "if c == ' ' { crate::a::f() } \n let r = \"\";"
    );
    assert_eq!(expand("crate::model as m"), ["crate::model"]);
    assert_eq!(expand("crate::crypto::{hmac as sign, sha}"), ["crate::crypto::hmac", "crate::crypto::sha"]);
    let children = ["sources".to_string()];
    let found =
        paths("pub use sources::X;\nlet y = sources::route(a);\n#[allow(x)]\nuse crate::{a::{B, c}, d};\nfn f() { refuse x; }", &children);
    assert_eq!(found, ["sources::X", "crate::a::B", "crate::a::c", "crate::d", "sources::X", "sources::route"]);
    let cyclic = BTreeMap::from([
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["c".to_string()])),
        ("c".to_string(), BTreeSet::from(["a".to_string()])),
        ("d".to_string(), BTreeSet::from(["a".to_string()])),
    ]);
    assert_eq!(cycles(&cyclic), vec![vec!["a".to_string(), "b".to_string(), "c".to_string()]]);
}
