//! Builds every payroll rule table in `rules/payroll/` into the crate, so a table for another
//! year or country is a new data file there and nothing else: `payroll::rules::built_in()`.

use std::path::{Path, PathBuf};

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest).join("../../rules/payroll");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect())
        .unwrap_or_default();
    files.sort();
    let mut list = String::from("/// Every rule table's JSON, in file-name order.\npub const BUILT_IN: &[&str] = &[\n");
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let path = file.canonicalize().expect("a rule table's path");
        list.push_str(&format!("    include_str!({:?}),\n", path.display().to_string()));
    }
    list.push_str("];\n");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(Path::new(&out).join("payroll_tables.rs"), list).expect("write payroll_tables.rs");
}
