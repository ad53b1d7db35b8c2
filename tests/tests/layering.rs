//! The layering the architecture document promises, checked on the source: within each crate, no
//! two top-level modules import each other (a cycle means neither can be read, tested or moved
//! without the other). Crate-level rules (core never sees Redis or a transport) are kept by
//! Cargo, which refuses a dependency a crate's manifest does not list.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("a readable source directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// The top-level modules each top-level module of the crate in `src` names as `crate::…`
/// outside comments.
fn module_imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(src) {
        let relative = file.strip_prefix(src).expect("under src");
        let first = relative
            .components()
            .next()
            .expect("a path")
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("a readable source file");
        let named = imports.entry(module.clone()).or_default();
        for line in text
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
        {
            for (at, _) in line.match_indices("crate::") {
                let rest = &line[at + "crate::".len()..];
                let end = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                let other = &rest[..end];
                // `burnbox_crate::x` is another crate's path, not this one's.
                let in_this_crate =
                    !line[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_');
                if in_this_crate && !other.is_empty() && other != module {
                    named.insert(other.to_owned());
                }
            }
        }
    }
    imports
}

#[test]
fn no_two_modules_import_each_other() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .expect("crates/")
        .map(|entry| entry.expect("an entry").path().join("src"))
        .filter(|src| src.is_dir())
        .collect();
    crates.push(root.join("tests/src"));
    assert!(crates.len() > 5, "found the crates: {crates:?}");
    let mut cycles = Vec::new();
    for src in &crates {
        let imports = module_imports(src);
        for (module, named) in &imports {
            for other in named {
                let back = imports
                    .get(other)
                    .is_some_and(|theirs| theirs.contains(module));
                if back && module < other {
                    cycles.push(format!("{}: {module} <-> {other}", src.display()));
                }
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "modules that import each other: {cycles:#?}"
    );
}
