//! The project's own shape: the crates depend one way (the model reader on none of the
//! engine's or the registry's stacks), and no folder of a crate imports one that imports it
//! back. CONTRIBUTING.md's layout is what these keep true.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The source folders checked, each a crate's `src/`.
const CRATES: [&str; 3] = ["src", "crates/envlock/src", "crates/envlock-model/src"];

/// What the model reader must build without: it is the part other tools embed and fuzz alone.
const NOT_UNDER_THE_MODEL_READER: [&str; 6] = [
    "bollard",
    "tokio",
    "oci-client",
    "reqwest",
    "rusqlite",
    "envlock",
];

#[test]
fn no_folder_of_a_crate_imports_one_that_imports_it_back() {
    for src in CRATES {
        let graph = folder_graph(&Path::new(ROOT).join(src));
        assert!(
            graph.len() > 1,
            "{src}: no folders found; is the layout check reading the right place?"
        );
        if let Some(cycle) = find_cycle(&graph) {
            panic!(
                "{src}: the folders import each other in a cycle: {}\n{}",
                cycle.join(" -> "),
                explain(&graph, &cycle)
            );
        }
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle_and_passes_a_chain() {
    let mut graph = Graph::new();
    edge(&mut graph, "capture", "lock", "capture/mod.rs");
    edge(&mut graph, "lock", "diff", "lock/mod.rs");
    assert_eq!(find_cycle(&graph), None);
    edge(&mut graph, "diff", "capture", "diff/mod.rs");
    let cycle = find_cycle(&graph).expect("capture -> lock -> diff -> capture is a cycle");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4, "{cycle:?}");
}

#[test]
fn grouped_and_nested_imports_name_each_path() {
    let me = ["capture".to_owned(), "read".to_owned()];
    let code = "use crate::{golden, lock::{Lock, Sha256}};\nuse super::super::diff::Code;\n\
                let x = crate::report::json(&y);";
    let paths = referenced_paths(code, &me);
    let named = |path: &[&str]| paths.iter().any(|p| p == path);
    assert!(named(&["golden"]), "{paths:?}");
    assert!(named(&["lock", "Lock"]), "{paths:?}");
    assert!(named(&["lock", "Sha256"]), "{paths:?}");
    assert!(named(&["diff", "Code"]), "{paths:?}");
    assert!(named(&["report", "json"]), "{paths:?}");
    assert_eq!(paths.len(), 5, "{paths:?}");
}

#[test]
fn the_model_reader_builds_without_the_engine_or_registry_stacks() {
    let output = std::process::Command::new(env!("CARGO"))
        .args(["tree", "--edges", "normal", "--prefix", "none", "--package"])
        .arg("envlock-model")
        .args(["--format", "{p}"])
        .current_dir(ROOT)
        .output()
        .expect("cargo runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let names: BTreeSet<&str> = text
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(names.contains("envlock-model"), "{text}");
    assert!(names.contains("flate2"), "the zip reader inflates: {text}");
    let under: Vec<&&str> = NOT_UNDER_THE_MODEL_READER
        .iter()
        .filter(|name| names.contains(**name))
        .collect();
    assert!(
        under.is_empty(),
        "envlock-model depends on {under:?}:\n{text}"
    );
}

/// Folder -> folders it imports, each with the first file that does.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

fn edge(graph: &mut Graph, from: &str, to: &str, file: &str) {
    graph
        .entry(from.to_owned())
        .or_default()
        .entry(to.to_owned())
        .or_insert_with(|| file.to_owned());
}

/// The import graph between the units of `src`: each top-level module, and each child of
/// `capture/` (the sources and the readers are folders of their own). Tests are left out:
/// a test may reach anywhere.
fn folder_graph(src: &Path) -> Graph {
    let files = rust_files(src);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|file| module_of(src, file)).collect();
    let mut graph = Graph::new();
    for file in &files {
        if file.file_name().is_some_and(|name| name == "tests.rs") {
            continue;
        }
        let me = module_of(src, file);
        let text = std::fs::read_to_string(file).expect("a source file reads");
        // A file's test module is left out; other items under `#[cfg(test)]` stay (a
        // fixture macro imports nothing).
        let code = text.split("#[cfg(test)]\nmod ").next().unwrap_or_default();
        let relative = file.strip_prefix(src).unwrap().display().to_string();
        for path in referenced_paths(code, &me) {
            let target = (1..=path.len())
                .rev()
                .map(|k| path[..k].to_vec())
                .find(|prefix| modules.contains(prefix));
            let Some(target) = target else { continue };
            let (from, to) = (unit(&me), unit(&target));
            if from != to {
                edge(&mut graph, &from, &to, &relative);
            }
        }
        graph.entry(unit(&me)).or_default();
    }
    graph
}

fn rust_files(folder: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).expect("a source folder lists") {
        let path = entry.expect("a folder entry reads").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

/// `capture/read/mod.rs` -> `[capture, read]`; `lib.rs` -> `[]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

fn unit(module: &[String]) -> String {
    match module {
        [] => "lib".to_owned(),
        [capture, child, ..] if capture == "capture" => format!("capture/{child}"),
        [first, ..] => first.clone(),
    }
}

/// The module paths `code` names with `crate::` or `super::`, made absolute; a group
/// (`crate::{golden, lock::Lock}`) names each of its paths.
fn referenced_paths(code: &str, me: &[String]) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        paths.extend(expand(&code[at + "crate::".len()..]));
    }
    for (at, _) in code.match_indices("super::") {
        if code[..at].ends_with("super::")
            || code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_')
        {
            continue;
        }
        let mut rest = &code[at..];
        let mut up = 0;
        while let Some(after) = rest.strip_prefix("super::") {
            up += 1;
            rest = after;
        }
        let base = &me[..me.len().saturating_sub(up)];
        for path in expand(rest) {
            paths.push(base.iter().cloned().chain(path).collect());
        }
    }
    paths
}

/// The paths a `use` tree's text starts with: `a::b::C` is one, `a::{b, c::{d}}` three.
fn expand(text: &str) -> Vec<Vec<String>> {
    let mut prefix = Vec::new();
    let mut rest = text.trim_start();
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut start = 0;
            let mut paths = Vec::new();
            for (at, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' | ',' if depth == 1 => {
                        for path in expand(&group[start..at]) {
                            paths.push(prefix.iter().cloned().chain(path).collect());
                        }
                        start = at + 1;
                        if c == '}' {
                            return paths;
                        }
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            return paths;
        }
        let word: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if word.is_empty() {
            return if prefix.is_empty() {
                Vec::new()
            } else {
                vec![prefix]
            };
        }
        rest = rest[word.len()..].trim_start();
        prefix.push(word);
        match rest.strip_prefix("::") {
            Some(after) => rest = after.trim_start(),
            None => return vec![prefix],
        }
    }
}

/// A cycle as `[a, b, ..., a]`, if the graph has one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = stack.iter().position(|n| n == node).unwrap();
                let mut cycle = stack[start..].to_vec();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_owned(), Mark::Open);
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flat_map(BTreeMap::keys) {
            if let Some(cycle) = visit(next, graph, marks, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut marks, &mut Vec::new()))
}

fn explain(graph: &Graph, cycle: &[String]) -> String {
    cycle
        .windows(2)
        .map(|pair| {
            format!(
                "  {} imports {} in {}",
                pair[0], pair[1], graph[&pair[0]][&pair[1]]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
