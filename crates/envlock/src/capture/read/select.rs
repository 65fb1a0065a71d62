//! Which Python an image runs: the one its ENTRYPOINT and CMD start (through the usual
//! wrappers, a shell's `-c`, `conda run`, `uv run`, or a script's shebang), else `python3`,
//! then `python`, on its `PATH`. The same choice serves exec and static capture.
//!
//! Nothing from the image runs here: scripts are read (their first few KiB) from the
//! image's files ([`Files`]), symlinks resolved inside the image.

use crate::warning::{Warning, WarningCode};
use std::sync::Mutex;

use crate::capture::fs::{self, base_name, Files, Kind, ReadError};
use crate::lock::SelectedBy;

/// `PATH` inside a container whose image sets none.
pub(crate) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How much of a script is read for its shebang (and kept of one read from layers).
pub(crate) const HEAD_LIMIT: u64 = 4096;

/// Scripts followed through their shebangs before giving up (a loop ends here).
const SHEBANG_DEPTH: usize = 4;

/// The interpreter chosen, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Choice {
    /// An absolute path inside the image, or a name to look up on its `PATH`.
    pub(crate) program: String,
    /// How it was chosen.
    pub(crate) selected_by: SelectedBy,
}

/// What the image's config says about what runs.
pub(crate) struct Command<'a> {
    pub(crate) entrypoint: &'a [String],
    pub(crate) cmd: &'a [String],
    pub(crate) workdir: &'a str,
    /// The image's `PATH`.
    pub(crate) path: &'a str,
}

/// A word of the command line, and whether it came from ENTRYPOINT or CMD.
#[derive(Debug, Clone)]
struct Word {
    text: String,
    by: SelectedBy,
}

/// Reads what selection needs from the image's files. A read that fails is kept (the
/// choice goes on as if the file were absent) and [`Reader::failure`] ends the capture.
pub(crate) struct Reader<'a, F> {
    files: &'a F,
    failed: Mutex<Option<ReadError>>,
}

impl<'a, F: Files> Reader<'a, F> {
    pub(crate) fn new(files: &'a F) -> Reader<'a, F> {
        Reader {
            files,
            failed: Mutex::new(None),
        }
    }

    /// The first read that failed, if one did.
    pub(crate) fn failure(&self) -> Option<ReadError> {
        self.failed.lock().expect("never poisoned").take()
    }

    fn keep<T: Default>(&self, read: Result<T, ReadError>) -> T {
        read.unwrap_or_else(|error| {
            self.failed
                .lock()
                .expect("never poisoned")
                .get_or_insert(error);
            T::default()
        })
    }

    async fn is_file(&self, path: &str) -> bool {
        self.resolved_file(path).await.is_some()
    }

    /// The resolved path of the file at `path`, if one is there.
    pub(crate) async fn resolved_file(&self, path: &str) -> Option<String> {
        let found = self.keep(self.files.stat(path).await)?;
        (found.kind == Kind::File).then_some(found.resolved)
    }

    /// Whether starting `a` and starting `b` give the same runtime: the same file, and the
    /// same venv (`site` finds `pyvenv.cfg` from the path that was started, so a venv's
    /// `python3` linked to its `python` is the same, and the base interpreter it links to is
    /// not).
    pub(crate) async fn same_interpreter(&self, a: &str, b: &str) -> bool {
        if self.resolved_file(a).await != self.resolved_file(b).await {
            return false;
        }
        self.venv_of(a).await == self.venv_of(b).await
    }

    /// The `pyvenv.cfg` that `site` would find for an interpreter started as `invoked`.
    async fn venv_of(&self, invoked: &str) -> Option<String> {
        let found = self.keep(super::site::venv_config(self.files, invoked).await);
        found.map(|(resolved, _)| resolved)
    }

    /// A script's head (up to [`HEAD_LIMIT`]); a file that is no script gives its first two
    /// bytes (all a source that streams whole images keeps of it).
    async fn head(&self, path: &str) -> Vec<u8> {
        let magic = self
            .keep(self.files.head(path, 2).await)
            .unwrap_or_default();
        if magic != b"#!" {
            return magic;
        }
        self.keep(self.files.head(path, HEAD_LIMIT).await)
            .unwrap_or_default()
    }

    /// `name` looked up on `path`, as `execvp` does.
    /// A name with a `/` is a path, relative to `workdir` (the container's working folder)
    /// unless absolute.
    pub(crate) async fn which(&self, name: &str, path: &str, workdir: &str) -> Option<String> {
        if name.contains('/') {
            let candidate = if name.starts_with('/') {
                name.to_string()
            } else {
                fs::normalize(&fs::join(workdir, name))
            };
            return self.is_file(&candidate).await.then_some(candidate);
        }
        for folder in path.split(':').filter(|folder| folder.starts_with('/')) {
            let candidate = format!("{}/{name}", folder.trim_end_matches('/'));
            if self.is_file(&candidate).await {
                return Some(candidate);
            }
        }
        None
    }
}

/// The interpreter the image's ENTRYPOINT and CMD start, or `None` (with the reason as a
/// warning when there was something to understand and envlock could not).
pub(crate) async fn from_command(
    reader: &Reader<'_, impl Files>,
    command: &Command<'_>,
    warnings: &mut Vec<Warning>,
) -> Option<Choice> {
    let words: Vec<Word> = command
        .entrypoint
        .iter()
        .map(|text| (text, SelectedBy::Entrypoint))
        .chain(command.cmd.iter().map(|text| (text, SelectedBy::Cmd)))
        .map(|(text, by)| Word {
            text: text.clone(),
            by,
        })
        .collect();
    match follow(reader, command, words, 0).await {
        Ok(choice) => choice,
        Err(problem) => {
            warnings.push(Warning::new(
                WarningCode::CommandNotFollowed,
                format!(
                    "{problem}; captured `python3` on the image's PATH instead \
                 (pass `--python PATH` to name the interpreter the image runs)"
                ),
            ));
            None
        }
    }
}

/// Why the image's command could not be followed to the Python it starts: a warning, and
/// the `python3` on the image's PATH is captured instead.
#[derive(Debug, thiserror::Error)]
enum NotFollowed {
    #[error("`{name}` leads through more than {SHEBANG_DEPTH} shebangs (a loop?)")]
    TooDeep { name: String },
    #[error("the image's command `{name}` is not in the image")]
    Missing { name: String },
    #[error("`{path}` has an empty shebang")]
    EmptyShebang { path: String },
    #[error("`{path}` is a shell script envlock cannot follow to a Python")]
    Shell { path: String },
}

/// Follows one command line to the Python it starts: `Ok(None)` when it starts none.
async fn follow(
    reader: &Reader<'_, impl Files>,
    command: &Command<'_>,
    words: Vec<Word>,
    depth: usize,
) -> Result<Option<Choice>, NotFollowed> {
    let words = unwrap(words);
    let Some(first) = words.first() else {
        return Ok(None);
    };
    let name = base_name(&first.text);
    if is_python(name) {
        return Ok(Some(Choice {
            program: first.text.clone(),
            selected_by: first.by,
        }));
    }
    match name {
        "sh" | "bash" | "dash" | "ash" => {
            let Some(script) = shell_script(&words) else {
                return Ok(None);
            };
            // The last command of the line is the one that serves; earlier ones set it up.
            for segment in split_shell(&script.text).into_iter().rev() {
                let segment = segment
                    .into_iter()
                    .map(|text| Word {
                        text,
                        by: script.by,
                    })
                    .collect();
                if let Some(choice) = Box::pin(follow(reader, command, segment, depth)).await? {
                    return Ok(Some(choice));
                }
            }
            Ok(None)
        }
        "conda" | "mamba" | "micromamba" => conda_run(reader, command, &words).await,
        // uv's project venv, and Poetry's with `virtualenvs.in-project`.
        "uv" | "poetry" if words.get(1).is_some_and(|word| word.text == "run") => {
            Ok(Some(Choice {
                program: format!("{}/.venv/bin/python", command.workdir.trim_end_matches('/')),
                selected_by: first.by,
            }))
        }
        _ => shebang(reader, command, first, depth).await,
    }
}

/// Drops what runs the real command: `VAR=value` assignments, `exec`, init wrappers and
/// user switchers with their options.
fn unwrap(mut words: Vec<Word>) -> Vec<Word> {
    loop {
        let Some(first) = words.first() else {
            return words;
        };
        let name = base_name(&first.text).to_string();
        let skip = match name.as_str() {
            _ if is_assignment(&first.text) => 1,
            "exec" | "nohup" => 1,
            "tini" | "tini-static" | "dumb-init" | "catatonit" => {
                with_separator(&words, 1 + options(&words[1..], &[]))
            }
            "env" => with_separator(
                &words,
                1 + options(&words[1..], &["-u", "--unset", "-C", "--chdir"]),
            ),
            "gosu" | "su-exec" => 2,
            _ => return words,
        };
        words.drain(..skip.min(words.len()));
    }
}

/// How many leading words are options (`-x`, or `-u VALUE` for those in `with_value`).
fn options(words: &[Word], with_value: &[&str]) -> usize {
    let mut count = 0;
    while let Some(word) = words.get(count) {
        if word.text == "--" || !word.text.starts_with('-') {
            break;
        }
        count += if with_value.contains(&word.text.as_str()) {
            2
        } else {
            1
        };
    }
    count
}

/// `skip`, and one more when the word there is the `--` that ends a wrapper's options.
fn with_separator(words: &[Word], skip: usize) -> usize {
    skip + usize::from(words.get(skip).is_some_and(|word| word.text == "--"))
}

fn is_assignment(text: &str) -> bool {
    text.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// `python`, `python3`, `python3.11`, `pypy3`: a name an interpreter goes by.
pub(crate) fn is_python(name: &str) -> bool {
    let rest = name
        .strip_prefix("python")
        .or_else(|| name.strip_prefix("pypy"));
    rest.is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

/// The script of `sh -c SCRIPT` (options such as `-e` may come first).
fn shell_script(words: &[Word]) -> Option<Word> {
    let position = words.iter().position(|word| {
        word.text.starts_with('-') && !word.text.starts_with("--") && word.text.contains('c')
    })?;
    words.get(position + 1).cloned()
}

/// `conda run -n ENV …` (or `-p PREFIX`): the environment's own `bin/python`.
async fn conda_run(
    reader: &Reader<'_, impl Files>,
    command: &Command<'_>,
    words: &[Word],
) -> Result<Option<Choice>, NotFollowed> {
    if words.get(1).is_none_or(|word| word.text != "run") {
        return Ok(None);
    }
    let flag = |names: &[&str]| {
        words.windows(2).find_map(|pair| {
            let (key, value) = (&pair[0].text, &pair[1].text);
            names.contains(&key.as_str()).then(|| value.clone())
        })
    };
    let prefix = match (flag(&["-p", "--prefix"]), flag(&["-n", "--name"])) {
        (Some(prefix), _) => prefix,
        (None, Some(name)) => {
            // envs live beside the `conda` that runs them: ROOT/bin/conda, ROOT/envs/NAME.
            let conda = reader
                .which(&words[0].text, command.path, command.workdir)
                .await;
            let root = conda
                .as_deref()
                .and_then(|path| path.rsplit_once('/'))
                .and_then(|(bin, _)| bin.rsplit_once('/'))
                .map_or("/opt/conda".to_string(), |(root, _)| root.to_string());
            format!("{root}/envs/{name}")
        }
        (None, None) => return Ok(None),
    };
    Ok(Some(Choice {
        program: format!("{}/bin/python", prefix.trim_end_matches('/')),
        selected_by: words[0].by,
    }))
}

/// A program that is not an interpreter: a script whose shebang names one.
async fn shebang(
    reader: &Reader<'_, impl Files>,
    command: &Command<'_>,
    program: &Word,
    depth: usize,
) -> Result<Option<Choice>, NotFollowed> {
    let name = &program.text;
    if depth >= SHEBANG_DEPTH {
        return Err(NotFollowed::TooDeep { name: name.clone() });
    }
    let Some(path) = reader.which(name, command.path, command.workdir).await else {
        return Err(NotFollowed::Missing { name: name.clone() });
    };
    let head = reader.head(&path).await;
    let Some(line) = head.strip_prefix(b"#!") else {
        // A binary (or a script without a shebang): it starts no Python envlock can name.
        return Ok(None);
    };
    let line = line.split(|&byte| byte == b'\n').next().unwrap_or_default();
    let words: Vec<Word> = String::from_utf8_lossy(line)
        .split_whitespace()
        .map(|text| Word {
            text: text.to_string(),
            by: SelectedBy::Shebang,
        })
        .collect();
    let words = unwrap(words);
    let Some(interpreter) = words.first() else {
        return Err(NotFollowed::EmptyShebang { path });
    };
    let interpreter_name = base_name(&interpreter.text);
    if is_python(interpreter_name) {
        return Ok(Some(Choice {
            program: interpreter.text.clone(),
            selected_by: SelectedBy::Shebang,
        }));
    }
    if matches!(interpreter_name, "sh" | "bash" | "dash" | "ash") {
        return Err(NotFollowed::Shell { path });
    }
    let next = vec![interpreter.clone()];
    Box::pin(follow(reader, command, next, depth + 1)).await
}

/// A shell command line split into simple commands (at `&&`, `||`, `;`, `|` and line
/// breaks), each split into words with quotes and backslashes removed. Expansions (`$X`)
/// are left as written: envlock does not run the shell.
fn split_shell(script: &str) -> Vec<Vec<String>> {
    let mut commands = vec![Vec::new()];
    let mut word = String::new();
    let mut in_word = false;
    let mut characters = script.chars().peekable();
    let mut quote: Option<char> = None;
    let end_word = |word: &mut String, in_word: &mut bool, commands: &mut Vec<Vec<String>>| {
        if *in_word {
            commands
                .last_mut()
                .expect("never empty")
                .push(std::mem::take(word));
            *in_word = false;
        }
    };
    while let Some(character) = characters.next() {
        match (quote, character) {
            (Some(open), c) if c == open => quote = None,
            (Some('"'), '\\') => {
                if let Some(next) = characters.next() {
                    word.push(next);
                }
            }
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(character);
                in_word = true;
            }
            (None, '\\') => {
                if let Some(next) = characters.next() {
                    word.push(next);
                    in_word = true;
                }
            }
            (None, ';' | '&' | '|' | '\n') => {
                end_word(&mut word, &mut in_word, &mut commands);
                if characters.peek() == Some(&character) {
                    characters.next();
                }
                if !commands.last().expect("never empty").is_empty() {
                    commands.push(Vec::new());
                }
            }
            (None, c) if c.is_whitespace() => end_word(&mut word, &mut in_word, &mut commands),
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    end_word(&mut word, &mut in_word, &mut commands);
    commands.retain(|command| !command.is_empty());
    commands
}

/// For the fuzz targets (`src/fuzzing.rs`): a shell command line of an image's config.
pub(crate) fn fuzz_command_line(script: &str) {
    let _ = split_shell(script);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(texts: &[&str]) -> Vec<Word> {
        texts
            .iter()
            .map(|text| Word {
                text: text.to_string(),
                by: SelectedBy::Cmd,
            })
            .collect()
    }

    fn texts(words: Vec<Word>) -> Vec<String> {
        words.into_iter().map(|word| word.text).collect()
    }

    #[test]
    fn wrappers_are_unwrapped() {
        assert_eq!(
            texts(unwrap(words(&["tini", "-s", "--", "python", "x.py"]))),
            ["python", "x.py"]
        );
        assert_eq!(
            texts(unwrap(words(&[
                "/usr/bin/dumb-init",
                "--",
                "gosu",
                "app",
                "exec",
                "A=1",
                "/usr/bin/env",
                "-u",
                "X",
                "B=2",
                "python3",
            ]))),
            ["python3"]
        );
        assert_eq!(
            texts(unwrap(words(&["su-exec", "1000:1000", "gunicorn"]))),
            ["gunicorn"]
        );
    }

    #[test]
    fn interpreter_names() {
        for name in ["python", "python3", "python3.11", "pypy3"] {
            assert!(is_python(name), "{name}");
        }
        for name in ["python-config", "pythonw-x", "gunicorn", "ipython"] {
            assert!(!is_python(name), "{name}");
        }
    }

    #[test]
    fn shell_lines_split_into_commands() {
        assert_eq!(
            split_shell("cd /app && exec \"/opt/venv/bin/python\" -m 'my app' ; echo a\\ b"),
            vec![
                vec!["cd", "/app"],
                vec!["exec", "/opt/venv/bin/python", "-m", "my app"],
                vec!["echo", "a b"],
            ]
        );
        assert_eq!(
            split_shell("a | b || c"),
            vec![vec!["a"], vec!["b"], vec!["c"]]
        );
        assert!(split_shell("  ").is_empty());
    }

    #[test]
    fn shell_scripts_are_found_after_options() {
        let script = shell_script(&words(&["/bin/sh", "-ec", "python x.py"])).unwrap();
        assert_eq!(script.text, "python x.py");
        assert!(shell_script(&words(&["/bin/sh", "run.sh"])).is_none());
    }

    proptest::proptest! {
        #[test]
        fn command_lines_never_panic(script in ".{0,120}", words in proptest::collection::vec("[a-z/=-]{0,8}", 0..8)) {
            let _ = split_shell(&script);
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            let _ = unwrap(super::tests::words(&words));
            let _ = shell_script(&super::tests::words(&words));
        }
    }
}
