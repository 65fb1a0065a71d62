//! Every command transcript in README.md and docs/*.md, run with the real binary.
//!
//! A transcript is a ```` ```console ```` block: a line starting `$ ` is a command, the lines
//! after it are what it prints (stdout and stderr together, in the order written). In the
//! expected text, `[..]` matches anything within a line, `[TIME]` a duration (`741 ms`,
//! `0.53 s`), `[ROOT]` the folder the block runs in, and a line holding only `...` matches
//! any number of lines. Commands are `envlock ARGS` (words split as a shell splits them; no
//! pipes or redirections; `NAME=value` words before it set variables), `cd DIR` and `echo $?`
//! (the last command's exit code). Each block
//! runs in a fresh temp folder holding a copy of `fixtures/`, so `-o` writes land there.
//!
//! A block that needs what a test machine may lack (a Docker engine, a registry, a venv built
//! with wheels) says so in its info string, ```` ```console,ignore-needs-docker ````, and is
//! illustrative: it is counted, not run, but its `envlock` command lines must still parse
//! (they are run with `--help` appended, which clap answers only for valid flags).
//!
//! Hand-written rather than trycmd: the format is the few rules above, while trycmd would
//! bring snapbox and its own markdown conventions for them, and `cd` / `echo $?` steps would
//! still need code of our own.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::support::{copy_tree, envlock, root};

/// A fenced block of a markdown file.
struct Block {
    file: String,
    /// 1-based line of the opening fence.
    line: usize,
    info: String,
    lines: Vec<String>,
}

/// The fenced blocks of a markdown text, their lines unindented by the fence's indent
/// (blocks inside list items are indented).
fn blocks(file: &str, text: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        let trimmed = line.trim_start();
        let Some(info) = trimmed.strip_prefix("```") else {
            continue;
        };
        let indent = line.len() - trimmed.len();
        let mut body = Vec::new();
        for (_, inner) in lines.by_ref() {
            if inner.trim_start().starts_with("```") {
                break;
            }
            let cut = inner.len() - inner.trim_start().len();
            body.push(inner[cut.min(indent)..].to_string());
        }
        found.push(Block {
            file: file.to_string(),
            line: number + 1,
            info: info.trim().to_string(),
            lines: body,
        });
    }
    found
}

/// One `$ ` command and the output written under it.
struct Step {
    command: String,
    expected: Vec<String>,
}

fn steps(block: &Block) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for line in &block.lines {
        if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step {
                command: command.to_string(),
                expected: Vec::new(),
            });
        } else if let Some(step) = steps.last_mut() {
            step.expected.push(line.clone());
        }
    }
    steps
}

/// Splits a command line into words as `sh` does for quotes and backslashes; `None` when it
/// uses what this runner does not do (pipes, redirections, `&&`, `;`, variables).
fn words(command: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    word.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => word.push(chars.next()?),
                        '$' | '`' => return None,
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next()?);
            }
            '|' | '>' | '<' | '&' | ';' | '$' | '`' | '(' | ')' => return None,
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

/// The leading `NAME=value` words of a command, and the rest.
fn assignments(words: &[String]) -> (Vec<(&str, &str)>, &[String]) {
    let count = words
        .iter()
        .take_while(|word| {
            word.split_once('=').is_some_and(|(name, _)| {
                !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            })
        })
        .count();
    let variables = words[..count]
        .iter()
        .map(|word| word.split_once('=').unwrap())
        .collect();
    (variables, &words[count..])
}

/// The end offsets at which a duration (`741 ms`, `0.53 s`, `12.4s`) starting at `text`'s
/// beginning may end.
fn duration_ends(text: &str) -> Vec<usize> {
    let digits = |from: usize| {
        from + text[from..]
            .chars()
            .take_while(char::is_ascii_digit)
            .count()
    };
    let mut end = digits(0);
    if end == 0 {
        return Vec::new();
    }
    if text[end..].starts_with('.') && digits(end + 1) > end + 1 {
        end = digits(end + 1);
    }
    let after_space = if text[end..].starts_with(' ') {
        end + 1
    } else {
        end
    };
    ["ms", "µs", "us", "ns", "s", "min"]
        .iter()
        .filter(|unit| text[after_space..].starts_with(**unit))
        .map(|unit| after_space + unit.len())
        .filter(|&end| !text[end..].starts_with(|c: char| c.is_alphanumeric()))
        .collect()
}

/// Whether one actual line matches one expected line with its `[..]` and `[TIME]`.
fn line_matches(pattern: &str, line: &str) -> bool {
    let next = ["[..]", "[TIME]"]
        .iter()
        .filter_map(|token| pattern.find(token).map(|at| (at, *token)))
        .min();
    let Some((at, token)) = next else {
        return pattern == line;
    };
    let Some(rest) = line.strip_prefix(&pattern[..at]) else {
        return false;
    };
    let pattern = &pattern[at + token.len()..];
    if token == "[..]" {
        rest.char_indices()
            .map(|(i, _)| i)
            .chain([rest.len()])
            .any(|i| line_matches(pattern, &rest[i..]))
    } else {
        duration_ends(rest)
            .into_iter()
            .any(|end| line_matches(pattern, &rest[end..]))
    }
}

/// Whether the actual lines match the expected ones, a `...` line matching any run of lines.
fn lines_match(expected: &[&str], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((&"...", rest)) => (0..=actual.len()).any(|skip| lines_match(rest, &actual[skip..])),
        Some((first, rest)) => actual
            .split_first()
            .is_some_and(|(line, more)| line_matches(first, line) && lines_match(rest, more)),
    }
}

/// The text's lines, trailing spaces and trailing blank lines dropped.
fn normalized(lines: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut lines: Vec<String> = lines
        .into_iter()
        .map(|line| line.trim_end().to_string())
        .collect();
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

fn matches(expected: &[String], actual: &str) -> bool {
    let expected = normalized(expected.iter().cloned());
    let actual = normalized(actual.lines().map(str::to_string));
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    let actual: Vec<&str> = actual.iter().map(String::as_str).collect();
    lines_match(&expected, &actual)
}

/// Runs envlock with stdout and stderr on one file, so their lines interleave as on a
/// terminal; returns the exit code and the text, the block's folder written `[ROOT]`.
fn run_envlock(
    variables: &[(&str, &str)],
    args: &[String],
    cwd: &Path,
    top: &Path,
) -> (i32, String) {
    let output = tempfile::NamedTempFile::new().unwrap();
    let out: File = output.reopen().unwrap();
    let err = out.try_clone().unwrap();
    let status = envlock()
        .envs(variables.iter().copied())
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .expect("envlock starts");
    let mut text = std::fs::read_to_string(output.path()).expect("output is UTF-8");
    for folder in [top.canonicalize().unwrap(), top.to_path_buf()] {
        text = text.replace(folder.to_str().unwrap(), "[ROOT]");
    }
    (status.code().expect("envlock exits, not killed"), text)
}

/// Runs a block; returns what went wrong, if anything.
fn check(block: &Block) -> Result<usize, String> {
    let steps = steps(block);
    if steps.is_empty() {
        return Err("a console block without a `$ ` command".to_string());
    }
    let top = tempfile::tempdir().unwrap();
    copy_tree(&root().join("fixtures"), &top.path().join("fixtures"));
    let mut cwd: PathBuf = top.path().to_path_buf();
    let mut last_code: Option<i32> = None;
    for step in &steps {
        let Some(words) = words(&step.command) else {
            if step.command == "echo $?" {
                let Some(code) = last_code else {
                    return Err("`echo $?` before any command".to_string());
                };
                let actual = format!("{code}\n");
                if !matches(&step.expected, &actual) {
                    return Err(format!(
                        "`$ {}`: expected\n{}\nactual\n{actual}",
                        step.command,
                        step.expected.join("\n")
                    ));
                }
                continue;
            }
            return Err(format!(
                "`$ {}` is not runnable here (pipes, redirections, variables): mark the block \
                 `console,ignore-needs-…` or write it as a plain envlock command",
                step.command
            ));
        };
        let (variables, words) = assignments(&words);
        match words.first().map(String::as_str) {
            Some("cd") if words.len() == 2 => {
                cwd = cwd.join(&words[1]);
                if !cwd.is_dir() {
                    return Err(format!("`$ {}`: no such folder", step.command));
                }
            }
            Some("envlock") => {
                let (code, actual) = run_envlock(&variables, &words[1..], &cwd, top.path());
                last_code = Some(code);
                if !matches(&step.expected, &actual) {
                    return Err(format!(
                        "`$ {}` (exit code {code}): expected\n{}\n--- actual\n{actual}",
                        step.command,
                        step.expected.join("\n")
                    ));
                }
            }
            _ => {
                return Err(format!(
                    "`$ {}` is not an envlock command: mark the block `console,ignore-needs-…`",
                    step.command
                ));
            }
        }
    }
    Ok(steps.len())
}

/// For an illustrative block: its envlock command lines must still be ones envlock accepts.
fn check_flags(block: &Block) -> Result<(), String> {
    for step in steps(block) {
        let Some(words) = words(&step.command) else {
            continue;
        };
        let (variables, words) = assignments(&words);
        if words.first().map(String::as_str) != Some("envlock") {
            continue;
        }
        let (code, text) = run_envlock(
            &variables,
            &[&words[1..], &["--help".to_string()]].concat(),
            &root().join("fixtures"),
            &root().join("fixtures"),
        );
        if code != 0 {
            return Err(format!(
                "`$ {}` is not accepted by envlock:\n{text}",
                step.command
            ));
        }
    }
    Ok(())
}

fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

#[test]
fn every_transcript_in_the_readme_and_docs_matches_the_binary() {
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut commands = 0;
    let mut skipped: std::collections::BTreeMap<String, usize> = Default::default();
    for path in markdown_files() {
        let name = path.strip_prefix(root()).unwrap().display().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        for block in blocks(&name, &text) {
            let mut parts = block.info.split(',').map(str::trim);
            let language = parts.next().unwrap_or("");
            let marks: Vec<&str> = parts.collect();
            let place = format!("{}:{}", block.file, block.line);
            if language != "console" {
                // A transcript must say it is one, or it would go unchecked.
                if block.lines.iter().any(|line| line.starts_with("$ ")) {
                    failures.push(format!(
                        "{place}: a block with `$ ` commands must be ```console"
                    ));
                }
                continue;
            }
            match marks.as_slice() {
                [] => match check(&block) {
                    Ok(count) => {
                        checked += 1;
                        commands += count;
                    }
                    Err(problem) => failures.push(format!("{place}: {problem}")),
                },
                [mark] if mark.starts_with("ignore-needs-") => {
                    *skipped.entry(mark.to_string()).or_default() += 1;
                    if let Err(problem) = check_flags(&block) {
                        failures.push(format!("{place}: {problem}"));
                    }
                }
                _ => failures.push(format!(
                    "{place}: unknown marks {marks:?} (`ignore-needs-docker`, …)"
                )),
            }
        }
    }
    let skipped_total: usize = skipped.values().sum();
    eprintln!(
        "docs: checked {checked} transcripts ({commands} commands); skipped {skipped_total} \
         illustrative ones, their envlock flags still parsed: {skipped:?}"
    );
    assert!(
        failures.is_empty(),
        "{} transcript problem(s):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // An extractor that finds nothing passes everything: insist on the transcripts we have.
    assert!(checked >= 10, "only {checked} transcripts were checked");
}

#[test]
fn transcript_matching_catches_a_changed_line_and_honours_its_wildcards() {
    let expected = |text: &str| text.lines().map(str::to_string).collect::<Vec<_>>();
    assert!(matches(&expected("a\nb"), "a\nb\n"));
    assert!(!matches(&expected("a\nb"), "a\nc\n"));
    assert!(!matches(&expected("a"), "a\nb\n"));
    assert!(matches(&expected("a\n...\nd"), "a\nb\nc\nd\n"));
    assert!(matches(&expected("a\n...\nd"), "a\nd\n"));
    assert!(!matches(&expected("a\n...\nd"), "a\nb\n"));
    assert!(matches(
        &expected("note: [..] into `x`"),
        "note: 3 packages into `x`"
    ));
    assert!(!matches(
        &expected("note: [..] into `x`"),
        "note: 3 packages into `y`"
    ));
    assert!(matches(&expected("took [TIME] here"), "took 0.53 s here"));
    assert!(matches(&expected("took [TIME] here"), "took 741ms here"));
    assert!(!matches(&expected("took [TIME] here"), "took many s here"));
    assert!(!matches(&expected("[TIME]"), "5 seconds"));
}

#[test]
fn transcript_commands_split_as_a_shell_splits_them() {
    assert_eq!(
        words(r#"envlock audit a.lock --package 'torch*' --package "nu mpy" x\ y"#).unwrap(),
        [
            "envlock",
            "audit",
            "a.lock",
            "--package",
            "torch*",
            "--package",
            "nu mpy",
            "x y"
        ]
    );
    assert!(words("envlock completions bash > out").is_none());
    assert!(words("envlock diff a b && echo ok").is_none());
}
