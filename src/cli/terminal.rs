//! Messages on stderr: `error:`, `warning:`, `note:`, `hint:`. Styled with `anstyle` and
//! written through `anstream`, which keeps colour only where it is wanted (`--color`, a
//! terminal, `NO_COLOR`).

use anstyle::{AnsiColor, Style};

fn label(text: &str, color: AnsiColor) -> String {
    let style = Style::new().bold().fg_color(Some(color.into()));
    format!("{style}{text}{style:#}")
}

/// `warning: …`
pub(super) fn warning(message: &str) {
    anstream::eprintln!("{}: {message}", label("warning", AnsiColor::Yellow));
}

/// `note: …`, for a summary of what was done.
pub(super) fn note(message: &str) {
    anstream::eprintln!("{}: {message}", label("note", AnsiColor::Cyan));
}

/// `error: …`, each cause on its own line, and the hint of an envlock error.
pub(super) fn error(error: &anyhow::Error) {
    anstream::eprintln!("{}: {error}", label("error", AnsiColor::Red));
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        let mut lines = text.trim_end().lines();
        if let Some(first) = lines.next() {
            anstream::eprintln!("  caused by: {first}");
        }
        for line in lines {
            anstream::eprintln!("    {line}");
        }
    }
    if let Some(hint) = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<envlock::Error>())
        .and_then(envlock::Error::hint)
    {
        anstream::eprintln!("{}: {hint}", label("hint", AnsiColor::Cyan));
    }
}
