//! Image history with secrets taken out. Each step's `created_by` spells out the Dockerfile
//! instruction, and those of `ENV`, `ARG` and `RUN` carry values that are often secrets:
//!
//! | builder | form |
//! | --- | --- |
//! | legacy | `/bin/sh -c #(nop)  ENV K=V K2=V2`, `/bin/sh -c #(nop)  ENV K V` |
//! | legacy | `/bin/sh -c #(nop)  ARG K=V` |
//! | legacy | `\|2 K=V K2=V2 /bin/sh -c …` (a RUN with the build arguments in force) |
//! | BuildKit | `ENV K=V`, `ARG K=V`, `RUN \|2 K=V K2=V2 /bin/sh -c … # buildkit` |
//!
//! The instruction is read where the builder writes it (never searched for inside a
//! command), and only the values of variables outside the allow-list are replaced by
//! [`REDACTED`]; every other step (`LABEL`, `COPY`, a RUN's command) is kept as written.

use crate::capture::env::ALLOW_LIST;

/// What stands in for a value that is not stored.
pub(crate) const REDACTED: &str = "<redacted>";

/// The legacy builder's marker for a step that ran no command.
const NOP: &str = "#(nop)";

/// `step` with the values of variables and build arguments outside the allow-list redacted.
pub(crate) fn redact_step(step: &str) -> String {
    if step.starts_with('|') {
        return redact_run_arguments(step);
    }
    if let Some(nop) = step
        .find(NOP)
        .filter(|_| step.starts_with("/bin/sh -c #(nop)"))
    {
        let start = nop + NOP.len();
        let rest = &step[start..];
        let spaces = rest.len() - rest.trim_start().len();
        let (head, instruction) = step.split_at(start + spaces);
        return format!("{head}{}", redact_instruction(instruction, true));
    }
    redact_instruction(step, false)
}

/// An instruction as written: `ENV …`, `ARG …`, `RUN |N …`; anything else unchanged.
fn redact_instruction(text: &str, legacy: bool) -> String {
    let (word, rest) = text.split_once(' ').unwrap_or((text, ""));
    match word {
        // The legacy builder also writes `ENV NAME value`; BuildKit only `NAME=value`.
        "ENV" if legacy => format!("ENV {}", redact_env(rest)),
        "ENV" => format!("ENV {}", redact_assignments(rest, false)),
        "ARG" => format!("ARG {}", redact_assignments(rest, true)),
        "RUN" if rest.starts_with('|') => format!("RUN {}", redact_run_arguments(rest)),
        _ => text.to_string(),
    }
}

/// `K=V …`, or the legacy `NAME value with spaces`.
fn redact_env(text: &str) -> String {
    let first = text.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let value = text.trim_start()[first.len()..].trim();
        return match keeps(first) {
            true => format!("{first} {value}"),
            false => format!("{first} {REDACTED}"),
        };
    }
    redact_assignments(text, false)
}

/// `|N K=V K2=V2 COMMAND`: the N build arguments in force, then the command, kept. A value
/// may hold spaces, so the arguments end where the command starts (the shell, or an exec
/// form's `[`), not after N words.
fn redact_run_arguments(text: &str) -> String {
    let rest = text.trim_start_matches('|');
    let (count, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let command_start = ["/bin/sh -c", "/bin/bash -c", "/bin/ash -c", "["]
        .iter()
        .filter_map(|shell| find_word(rest, shell))
        .min()
        .unwrap_or(rest.len());
    let (arguments, command) = rest.split_at(command_start);
    let arguments = redact_assignments(arguments.trim_end(), false);
    let separator = if arguments.is_empty() { "" } else { " " };
    format!("|{count} {arguments}{separator}{command}")
}

/// The byte position of `word` in `text` where it starts a word.
fn find_word(text: &str, word: &str) -> Option<usize> {
    text.match_indices(word)
        .map(|(index, _)| index)
        .find(|&index| index == 0 || text[..index].ends_with(' '))
}

/// `A=1 B="x y"` with the values of names outside the allow-list redacted; a word that is
/// not `NAME=…` belongs to the value before it, unless `bare_names` (ARG's `NAME` without
/// a default).
fn redact_assignments(text: &str, bare_names: bool) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut keep_value = true;
    for word in text.split_whitespace() {
        match word.split_once('=') {
            Some((name, value)) if is_name(name) => {
                keep_value = keeps(name);
                out.push(if keep_value {
                    format!("{name}={value}")
                } else {
                    format!("{name}={REDACTED}")
                });
            }
            None if bare_names && keep_value && is_name(word) => {
                // `ARG NAME` without a default: nothing to hide. After a redacted value the
                // word may be the rest of that value, so it goes with it.
                keep_value = true;
                out.push(word.to_string());
            }
            _ if keep_value => out.push(word.to_string()),
            _ => {}
        }
    }
    out.join(" ")
}

fn is_name(word: &str) -> bool {
    word.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn keeps(name: &str) -> bool {
    ALLOW_LIST.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_both_builders_write() {
        for (step, redacted) in [
            (
                "/bin/sh -c #(nop)  ENV OMP_NUM_THREADS=2 API_TOKEN=secret",
                "/bin/sh -c #(nop)  ENV OMP_NUM_THREADS=2 API_TOKEN=<redacted>",
            ),
            (
                "/bin/sh -c #(nop)  ENV KEY hunter2 x",
                "/bin/sh -c #(nop)  ENV KEY <redacted>",
            ),
            (
                "/bin/sh -c #(nop)  ENV TZ Europe/Paris",
                "/bin/sh -c #(nop)  ENV TZ Europe/Paris",
            ),
            (
                "/bin/sh -c #(nop)  ARG HF_TOKEN=hf_abc",
                "/bin/sh -c #(nop)  ARG HF_TOKEN=<redacted>",
            ),
            ("/bin/sh -c #(nop)  ARG MODE", "/bin/sh -c #(nop)  ARG MODE"),
            (
                "/bin/sh -c #(nop)  LABEL maintainer=ml@example.com",
                "/bin/sh -c #(nop)  LABEL maintainer=ml@example.com",
            ),
            (
                "|2 TOKEN=abc BASE=img /bin/sh -c make",
                "|2 TOKEN=<redacted> BASE=<redacted> /bin/sh -c make",
            ),
            (
                "|1 PASSWORD=two words /bin/sh -c make",
                "|1 PASSWORD=<redacted> /bin/sh -c make",
            ),
            (
                "ENV PASSWORD=\"two words\" TZ=UTC",
                "ENV PASSWORD=<redacted> TZ=UTC",
            ),
            ("ARG HF_TOKEN=hf_abc", "ARG HF_TOKEN=<redacted>"),
            ("ARG HF_TOKEN=two words", "ARG HF_TOKEN=<redacted>"),
            ("ARG MODE TZ=UTC", "ARG MODE TZ=UTC"),
            ("ARG OMP_NUM_THREADS=4", "ARG OMP_NUM_THREADS=4"),
            (
                "RUN |2 HF_TOKEN=hf_abc MODE=prod /bin/sh -c pip install x # buildkit",
                "RUN |2 HF_TOKEN=<redacted> MODE=<redacted> /bin/sh -c pip install x # buildkit",
            ),
            (
                "RUN |1 HF_TOKEN=hf_abc [\"pip\", \"install\", \"x\"]",
                "RUN |1 HF_TOKEN=<redacted> [\"pip\", \"install\", \"x\"]",
            ),
            (
                "RUN /bin/sh -c echo MY_ENV x # buildkit",
                "RUN /bin/sh -c echo MY_ENV x # buildkit",
            ),
            (
                "/bin/sh -c echo ENV TOKEN=x > /etc/env",
                "/bin/sh -c echo ENV TOKEN=x > /etc/env",
            ),
            (
                "LABEL org.opencontainers.image.version=1.0",
                "LABEL org.opencontainers.image.version=1.0",
            ),
            (
                "COPY requirements.txt . # buildkit",
                "COPY requirements.txt . # buildkit",
            ),
            ("", ""),
        ] {
            assert_eq!(redact_step(step), redacted, "{step}");
        }
    }

    proptest::proptest! {
        #[test]
        fn history_steps_never_panic(step in "(\\|[0-9] |RUN |ENV |ARG |/bin/sh -c #\\(nop\\)  (ENV|ARG) )?.{0,80}") {
            let redacted = redact_step(&step);
            // A value after `NAME=` in ENV/ARG never survives unless allow-listed.
            if let Some(rest) = step.strip_prefix("ENV ") {
                for word in rest.split_whitespace() {
                    if let Some((name, value)) = word.split_once('=') {
                        if is_name(name) && !keeps(name) && !value.is_empty() && !value.contains(REDACTED) {
                            proptest::prop_assert!(!redacted.contains(&format!("{name}={value}")), "{redacted}");
                        }
                    }
                }
            }
        }
    }
}
