//! `envlock audit`: many runtimes side by side. A registry repository's tags are listed
//! (`expand`), every operand is captured (concurrently, within a bound, sharing the layers
//! tags have in common), and what differs across them becomes a matrix (`matrix`): a row per
//! fact (the Python, the platform, each package, conda and system package, each model), a
//! column per operand. "Which of our tags still ship numpy 1.x" is one row. One audit can
//! be split across a CI matrix or a Kubernetes Indexed Job and merged again (`shard`).

mod matrix;
mod shard;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::capture::{Session, Source};
use crate::error::{Error, Result};
use crate::lock::Lock;
use crate::settings::Settings;

pub use matrix::{matrix, render, AuditFormat, Focus, Matrix, Row};
pub use shard::{merge, output as shard_output, own_operands, Audit, Shard};

/// The operands with each `registry:HOST/REPO` (no tag, no digest) replaced by its tags
/// that match one of `tags` (every tag when empty), sorted by version where tags are
/// versions; and a note per repository listed.
pub fn expand(
    settings: &Settings,
    operands: &[String],
    tags: &[String],
) -> Result<(Vec<String>, Vec<String>)> {
    let session = Session::new(settings);
    let mut expanded = Vec::new();
    let mut notes = Vec::new();
    let mut listed_any = false;
    for operand in operands {
        let Some(repository) = repository(operand) else {
            expanded.push(operand.clone());
            continue;
        };
        listed_any = true;
        let all = crate::capture::repository_tags(repository, settings, &session)?;
        let mut chosen: Vec<String> = all
            .iter()
            .filter(|tag| tags.is_empty() || tags.iter().any(|glob| crate::diff::glob(glob, tag)))
            .cloned()
            .collect();
        if chosen.is_empty() {
            return Err(Error::NoTags {
                repository: Some(operand.clone()),
                detail: if all.is_empty() {
                    "it has no tags".into()
                } else {
                    let shown: Vec<&str> = all.iter().take(8).map(String::as_str).collect();
                    let more = if all.len() > 8 { ", …" } else { "" };
                    format!(
                        "none of its {} tags matches `--tags {}` (it has {}{more})",
                        all.len(),
                        tags.join("`, `--tags "),
                        shown.join(", ")
                    )
                },
            });
        }
        sort_tags(&mut chosen);
        notes.push(format!(
            "{operand}: {} of {} tags{}",
            chosen.len(),
            all.len(),
            if tags.is_empty() {
                ""
            } else {
                " match `--tags`"
            }
        ));
        expanded.extend(chosen.iter().map(|tag| format!("{operand}:{tag}")));
    }
    if !tags.is_empty() && !listed_any {
        return Err(Error::NoTags {
            repository: None,
            detail: "`--tags` narrows the tags of a `registry:HOST/REPO` operand (one with no tag), and none was given".into(),
        });
    }
    Ok((expanded, notes))
}

/// `HOST/REPO` of an operand `registry:HOST/REPO` that names no tag or digest.
fn repository(operand: &str) -> Option<&str> {
    let rest = operand.strip_prefix("registry:")?;
    let (_, path) = rest.split_once('/')?;
    let last = path.rsplit('/').next()?;
    (!last.is_empty() && !last.contains(':') && !last.contains('@')).then_some(rest)
}

/// Tags that are versions (`1.4.2`, `v2.0`) first, in version order, then the others
/// (`latest`, `main-3f2a`) by name.
fn sort_tags(tags: &mut [String]) {
    let version = |tag: &str| {
        let text = tag.strip_prefix('v').unwrap_or(tag);
        text.parse::<pep440_rs::Version>().ok()
    };
    tags.sort_by(|a, b| match (version(a), version(b)) {
        (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    });
}

/// Captures every operand (`jobs` at a time; locks are read) and returns their locks in the
/// operands' order, with the warnings of their captures. The first operand that cannot be
/// captured is the error, naming it; the others still finish.
pub fn capture_all(
    settings: &Settings,
    operands: &[String],
    jobs: usize,
) -> Result<(Vec<Lock>, Vec<String>)> {
    let sources = operands
        .iter()
        .map(|operand| Source::parse(operand))
        .collect::<Result<Vec<_>>>()?;
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<crate::Snapshot>>>> =
        operands.iter().map(|_| Mutex::new(None)).collect();
    // Tags of one repository share their base layers: every worker reads from one cache.
    let layers = Arc::default();
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, operands.len().max(1)) {
            scope.spawn(|| {
                // Each worker has its own engine connection.
                let session = Session::sharing(settings, Arc::clone(&layers));
                let models = &settings.config.models.paths;
                while settings.stop.requested().is_none() {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(source) = sources.get(index) else {
                        return;
                    };
                    // A project's lock is selected for a runtime, below.
                    if matches!(source, Source::Declared(_)) {
                        continue;
                    }
                    let operand = &operands[index];
                    let result = crate::check::capture_operand(
                        operand,
                        source,
                        models,
                        settings,
                        &session,
                        &crate::capture::Jobs::default(),
                    );
                    *results[index].lock().expect("never poisoned") = Some(result);
                }
            });
        }
    });
    // A stop leaves operands uncaptured: it is the error.
    settings.stop.check()?;
    select_declared(settings, operands, &sources, &results)?;
    let mut locks = Vec::with_capacity(operands.len());
    let mut warnings = Vec::new();
    for (operand, result) in operands.iter().zip(results) {
        let result = result.into_inner().expect("never poisoned");
        let snapshot = result.expect("without a stop, every operand was captured");
        let snapshot = snapshot.map_err(|error| Error::AuditOperand {
            operand: operand.clone(),
            source: Box::new(error),
        })?;
        warnings.extend(
            snapshot
                .warnings
                .into_iter()
                .map(|warning| format!("{operand}: {warning}")),
        );
        locks.push(snapshot.lock);
    }
    Ok((locks, warnings))
}

/// Each declared lock among the operands, selected for the first runtime among them (the
/// one a CI matrix names first), or for none when every operand is a lock of a project.
fn select_declared(
    settings: &Settings,
    operands: &[String],
    sources: &[Source],
    results: &[Mutex<Option<Result<crate::Snapshot>>>],
) -> Result<()> {
    let target: Option<Lock> = results.iter().find_map(|result| {
        let result = result.lock().expect("never poisoned");
        match result.as_ref() {
            Some(Ok(snapshot)) => Some(snapshot.lock.clone()),
            _ => None,
        }
    });
    for (index, source) in sources.iter().enumerate() {
        let Source::Declared(declared) = source else {
            continue;
        };
        let selected = crate::declared::baseline(declared, target.as_ref(), &settings.selection)
            .map_err(|error| Error::AuditOperand {
                operand: operands[index].clone(),
                source: Box::new(error),
            });
        *results[index].lock().expect("never poisoned") =
            Some(selected.map(|selected| {
                crate::Snapshot::of(selected.lock, selected.warnings, selected.notes)
            }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> (Vec<String>, Vec<Lock>) {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/locks");
        let operands = vec!["baseline.lock".to_string(), "target.lock".to_string()];
        let locks = operands
            .iter()
            .map(|name| crate::lock::read_lock(&folder.join(name)).unwrap())
            .collect();
        (operands, locks)
    }

    #[test]
    fn repositories_and_their_tags() {
        assert_eq!(
            repository("registry:127.0.0.1:5000/ml"),
            Some("127.0.0.1:5000/ml")
        );
        assert_eq!(
            repository("registry:host.io/team/ml"),
            Some("host.io/team/ml")
        );
        assert_eq!(repository("registry:127.0.0.1:5000/ml:v1"), None);
        assert_eq!(repository("registry:host.io/ml@sha256:abc"), None);
        assert_eq!(repository("ml-model"), None);
        let mut tags: Vec<String> = ["latest", "v1.10.0", "1.9", "v1.9.1", "main-3f2a", "2.0rc1"]
            .map(String::from)
            .to_vec();
        sort_tags(&mut tags);
        assert_eq!(
            tags,
            ["1.9", "v1.9.1", "v1.10.0", "2.0rc1", "latest", "main-3f2a"]
        );
    }

    #[test]
    fn rows_that_differ_and_focus() {
        let (operands, locks) = fixtures();
        let matrix = matrix(&operands, &locks, &Focus::default());
        assert!(matrix.rows.iter().all(|row| !row.agrees()));
        let scikit = matrix
            .rows
            .iter()
            .find(|row| row.name == "scikit-learn")
            .unwrap();
        assert_eq!(scikit.values, [Some("1.5.2".into()), Some("1.6.0".into())]);
        let all = super::matrix(
            &operands,
            &locks,
            &Focus {
                all: true,
                packages: vec![],
            },
        );
        assert!(all.rows.len() > matrix.rows.len());
        let focus = Focus {
            all: true,
            packages: vec!["scikit_*".into()],
        };
        let focused = super::matrix(&operands, &locks, &focus);
        assert_eq!(focused.rows.len(), 1, "{focused:?}");
        let csv = render(&focused, AuditFormat::Csv);
        assert_eq!(
            csv,
            "area,name,baseline.lock,target.lock\npackages,scikit-learn,1.5.2,1.6.0\n"
        );
    }
}
