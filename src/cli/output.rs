//! Messages on stderr: `error:`, `warning:`, `hint:`, coloured only on a terminal and never
//! when `NO_COLOR` is set.

use std::io::IsTerminal;

/// How to write to stderr.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Whether to use ANSI colours.
    pub color: bool,
    /// Whether stderr is a terminal (progress bars only there).
    pub terminal: bool,
}

impl Output {
    /// Looks at stderr and `NO_COLOR`.
    pub fn detect() -> Output {
        let terminal = std::io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        Output {
            color: terminal && !no_color,
            terminal,
        }
    }

    fn label(&self, text: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[1;{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// `warning: …`
    pub fn warning(&self, message: &str) {
        eprintln!("{}: {message}", self.label("warning", "33"));
    }

    /// `note: …`, for a summary of what was done.
    pub fn note(&self, message: &str) {
        eprintln!("{}: {message}", self.label("note", "36"));
    }

    /// `error: …`, each cause on its own line, and the hint of an envlock error.
    pub fn error(&self, error: &anyhow::Error) {
        eprintln!("{}: {error}", self.label("error", "31"));
        for cause in error.chain().skip(1) {
            let text = cause.to_string();
            let mut lines = text.trim_end().lines();
            if let Some(first) = lines.next() {
                eprintln!("  caused by: {first}");
            }
            for line in lines {
                eprintln!("    {line}");
            }
        }
        if let Some(hint) = error
            .chain()
            .find_map(|cause| cause.downcast_ref::<crate::Error>())
            .and_then(crate::Error::hint)
        {
            eprintln!("{}: {hint}", self.label("hint", "36"));
        }
    }
}
