//! The checkers' modules import each other without cycles: a checker takes
//! its configuration from `spec` and its words from `text`, never from the
//! `registry` that builds it or from another checker's file. Read from the
//! sources (`crate::MODULE` paths outside comments and unit tests), so a
//! new cycle fails here rather than in a review. No function outside unit
//! tests is longer than 150 lines, read from the sources the same way.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The top-level modules of `src/`, and which others each one names.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut modules = BTreeSet::new();
    for entry in std::fs::read_dir(src).expect("src") {
        let path = entry.expect("entry").path();
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
        if name != "lib" && (path.is_dir() || path.extension().is_some_and(|e| e == "rs")) {
            modules.insert(name);
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(src).expect("under src");
            let first = rel.components().next().expect("a component");
            let top = Path::new(first.as_os_str())
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            if top == "lib" || path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source");
            // Unit tests may reach anywhere; doc comments are not imports.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for line in code.lines().map(|l| l.split("//").next().unwrap_or_default()) {
                for (i, _) in line.match_indices("crate::") {
                    let name: String = line[i + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if name != top && modules.contains(&name) {
                        graph.entry(top.clone()).or_default().insert(name);
                    }
                }
            }
        }
    }
    graph
}

/// A cycle through `start`, if there is one.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        node: &str,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(node).into_iter().flatten() {
            if next == start {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, next, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_owned()];
    walk(graph, start, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn the_modules_of_checkers_import_each_other_without_cycles() {
    let graph = module_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(graph.get("registry").is_some_and(|d| d.contains("linear")), "{graph:?}");
    let cycles: Vec<String> =
        graph.keys().filter_map(|m| cycle_from(&graph, m)).map(|c| c.join(" -> ")).collect();
    assert!(cycles.is_empty(), "import cycles among checkers' modules: {cycles:#?}");
}

/// The longest a function of `src/` may be, in lines from its `fn` line to
/// its closing brace. Longer ones hide their steps; split them into helpers
/// named for what each step means.
const MAX_FUNCTION_LINES: usize = 150;

/// One function of `src/` and its length.
#[derive(Debug)]
struct FunctionLength {
    /// Its file, relative to `src/`, with `/` separators.
    file: String,
    name: String,
    /// 1-based line of its `fn`.
    line: usize,
    lines: usize,
}

/// The lines of `text` with every `#[cfg(test)]` item blanked (kept as
/// empty lines, so line numbers stay): the attribute's item runs to the
/// line that closes it at the attribute's indentation, or is its own line
/// when that line ends the item (`mod tests;`, `impl X for Y {}`).
fn without_test_items(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() != "#[cfg(test)]" {
            i += 1;
            continue;
        }
        let indent = &lines[i][..lines[i].len() - lines[i].trim_start().len()];
        let close = format!("{indent}}}");
        let mut end = i + 1;
        // The item's first line, past any other attributes and doc lines.
        while end < lines.len() && lines[end].trim_start().starts_with(['#', '/']) {
            end += 1;
        }
        let first = lines.get(end).map_or("", |l| l.trim_end());
        if !(first.ends_with(';') || first.ends_with('}')) {
            while end < lines.len() && lines[end] != close {
                end += 1;
            }
        }
        for line in lines.iter_mut().take(end + 1).skip(i) {
            *line = "";
        }
        i = end + 1;
    }
    lines
}

/// The name of the function a line declares (`pub(crate) async fn name(`),
/// if it declares one.
fn declared_fn(line: &str) -> Option<&str> {
    let mut rest = line.trim_start();
    if let Some(after) = rest.strip_prefix("pub") {
        rest = match after.strip_prefix('(') {
            Some(scoped) => scoped.split_once(')')?.1,
            None => after,
        }
        .trim_start();
    }
    for qualifier in ["const ", "async ", "unsafe ", "extern \"C\" "] {
        rest = rest.strip_prefix(qualifier).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("fn ")?;
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    (end > 0 && rest[end..].starts_with(['(', '<'])).then(|| &rest[..end])
}

/// Every function with a body in `src/`, outside `#[cfg(test)]` items,
/// with its length: from its `fn` line to the line that closes it at the
/// same indentation (as rustfmt lays functions out).
fn function_lengths(src: &Path) -> Vec<FunctionLength> {
    let mut found = Vec::new();
    let mut stack = vec![src.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).expect("under src");
            let file =
                rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>();
            let text = std::fs::read_to_string(&path).expect("source");
            let lines = without_test_items(&text);
            for (i, line) in lines.iter().enumerate() {
                let Some(name) = declared_fn(line) else { continue };
                // A declaration without a body (in a trait) ends at `;`
                // before any `{`.
                let Some(open) = (i..lines.len()).find(|&j| lines[j].contains(['{', ';'])) else {
                    continue;
                };
                if !lines[open].contains('{') {
                    continue;
                }
                let body = lines[open].trim_end();
                let one_line =
                    body.ends_with('}') && body.matches('{').count() == body.matches('}').count();
                let indent = &line[..line.len() - line.trim_start().len()];
                let close = format!("{indent}}}");
                let end = if one_line {
                    Some(open)
                } else {
                    (open + 1..lines.len()).find(|&j| lines[j] == close)
                };
                let Some(end) = end else { continue };
                found.push(FunctionLength {
                    file: file.join("/"),
                    name: name.to_owned(),
                    line: i + 1,
                    lines: end - i + 1,
                });
            }
        }
    }
    found.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    found
}

#[test]
fn no_function_of_checkers_is_longer_than_150_lines() {
    let lengths = function_lengths(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    // The scan itself must see the code: a function we know, at its length.
    assert!(
        lengths.iter().any(|f| f.file == "session/mod.rs" && f.name == "from_spec"),
        "the scan found no session::from_spec: {} functions",
        lengths.len()
    );
    let mut problems = Vec::new();
    for f in &lengths {
        if f.lines > MAX_FUNCTION_LINES {
            problems.push(format!(
                "src/{}:{}: fn {} is {} lines long (at most {MAX_FUNCTION_LINES})",
                f.file, f.line, f.name, f.lines
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "functions longer than {MAX_FUNCTION_LINES} lines; split each into helpers named for \
         its steps:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_function_scan_skips_test_items_and_bodiless_declarations() {
    let text = "fn kept(a: u32) -> u32 {\n    a\n}\n\n#[cfg(test)]\nfn helper() {\n    x();\n}\n\
                #[cfg(test)]\nimpl A for B {}\n\ntrait T {\n    fn declared(&self);\n    \
                fn short(&self) { 1 }\n}\n#[cfg(test)]\nmod tests {\n    fn inner() {\n    }\n}\n";
    let lines = without_test_items(text);
    assert_eq!(lines.len(), text.lines().count(), "line numbers stay");
    let named: Vec<&str> = lines.iter().filter_map(|l| declared_fn(l)).collect();
    assert_eq!(named, vec!["kept", "declared", "short"]);
    assert_eq!(declared_fn("    pub(crate) async fn go<T>(x: T) {"), Some("go"));
    assert_eq!(declared_fn("    pub(in crate::elle) const fn k() -> u8 {"), Some("k"));
    assert_eq!(declared_fn("/// fn not_code("), None);
    assert_eq!(declared_fn("let f = fn_ptr(1);"), None);
}
