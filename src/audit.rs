//! `envlock audit`: many runtimes side by side. Every operand is captured (concurrently,
//! within a bound), and what differs across them becomes a matrix: a row per fact (the
//! Python, the platform, each package, conda and system package, each model), a column per
//! operand. "Which of our tags still ship numpy 1.x" is one row.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::capture::{Session, Source};
use crate::error::{Error, Result};
use crate::lock::{Lock, Sha256};
use crate::settings::Settings;

/// A row of the matrix: one fact and its value in each runtime (`None`: absent there).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// `python`, `platform`, `packages`, `conda-packages`, `system-packages` or `models`.
    pub area: &'static str,
    /// What the row is about: a package's name, `version`, `os/arch`, a model's path.
    pub name: String,
    /// Its value in each operand, in the operands' order.
    pub values: Vec<Option<String>>,
}

impl Row {
    /// Whether every runtime has the same value.
    pub fn agrees(&self) -> bool {
        self.values.windows(2).all(|pair| pair[0] == pair[1])
    }
}

/// The audit of several runtimes.
#[derive(Debug, Serialize)]
pub struct Matrix {
    /// The operands, as given.
    pub operands: Vec<String>,
    /// The rows, by area then name.
    pub rows: Vec<Row>,
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
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, operands.len().max(1)) {
            scope.spawn(|| {
                // Each worker has its own engine connection.
                let session = Session::new(settings);
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
                    let result = crate::capture_operand(
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

/// What to show: every row (`all`), or the rows that differ; with `packages`, only the
/// package rows (Python, conda and system) whose names match one of those globs.
#[derive(Debug, Default)]
pub struct Focus {
    /// Show rows that agree too.
    pub all: bool,
    /// Package-name globs (`numpy`, `torch*`); empty: every row.
    pub packages: Vec<String>,
}

/// The matrix of `locks` (captured from `operands`).
pub fn matrix(operands: &[String], locks: &[Lock], focus: &Focus) -> Matrix {
    let mut rows = Vec::new();
    let mut add = |area: &'static str, name: String, value: &dyn Fn(&Lock) -> Option<String>| {
        rows.push(Row {
            area,
            name,
            values: locks.iter().map(value).collect(),
        });
    };
    add("python", "version".into(), &|lock| {
        let python = lock.python.as_ref()?;
        Some(match python.implementation.as_str() {
            "cpython" => python.version.clone(),
            other => format!("{other} {}", python.version),
        })
    });
    add("platform", "os/arch".into(), &|lock| {
        Some(format!("{}/{}", lock.platform.os, lock.platform.arch))
    });
    add("platform", "libc".into(), &|lock| {
        let platform = &lock.platform;
        let libc = platform.libc.as_deref()?;
        Some(
            format!("{libc} {}", platform.libc_version.as_deref().unwrap_or(""))
                .trim()
                .into(),
        )
    });
    for name in names(locks, |lock| {
        lock.packages.iter().map(|p| p.name.clone()).collect()
    }) {
        add("packages", name.clone(), &|lock| {
            let package = lock.packages.iter().find(|p| p.name == name)?;
            Some(package.version.clone())
        });
    }
    for name in names(locks, |lock| {
        lock.conda_packages.iter().map(|p| p.name.clone()).collect()
    }) {
        add("conda-packages", name.clone(), &|lock| {
            let package = lock.conda_packages.iter().find(|p| p.name == name)?;
            Some(format!("{} ({})", package.version, package.build))
        });
    }
    for name in names(locks, |lock| {
        lock.system_packages
            .iter()
            .map(|p| p.name.clone())
            .collect()
    }) {
        add("system-packages", name.clone(), &|lock| {
            let package = lock.system_packages.iter().find(|p| p.name == name)?;
            Some(package.version.clone())
        });
    }
    for path in names(locks, |lock| {
        lock.models.iter().map(|m| m.path.clone()).collect()
    }) {
        add("models", path.clone(), &|lock| {
            let model = lock.models.iter().find(|m| m.path == path)?;
            // A short prefix is enough to tell models apart by eye.
            let hex = Sha256::hex(&model.sha256);
            Some(format!("sha256:{}", &hex[..hex.len().min(12)]))
        });
    }
    let is_package = |row: &Row| row.area.ends_with("packages");
    rows.retain(|row| {
        let wanted = focus.packages.is_empty()
            || (is_package(row)
                && focus
                    .packages
                    .iter()
                    .any(|glob| crate::diff::name_glob(glob, &row.name)));
        wanted && (focus.all || !row.agrees())
    });
    Matrix {
        operands: operands.to_vec(),
        rows,
    }
}

/// Every name any lock has, sorted and once.
fn names(locks: &[Lock], of: impl Fn(&Lock) -> Vec<String>) -> Vec<String> {
    let mut names: Vec<String> = locks.iter().flat_map(of).collect();
    names.sort();
    names.dedup();
    names
}

/// How `envlock audit` prints its matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditFormat {
    /// An aligned table for people (`-`: absent).
    Human,
    /// A Markdown table.
    Markdown,
    /// `{"schema": 1, "operands": [...], "rows": [{"area", "name", "values"}]}`, `null` for absent.
    Json,
    /// `area,name,OPERAND...`, an empty cell for absent.
    Csv,
}

/// The JSON form, with its schema version.
#[derive(Serialize)]
struct Envelope<'a> {
    schema: u32,
    #[serde(flatten)]
    matrix: &'a Matrix,
}

/// `matrix` as `format`.
pub fn render(matrix: &Matrix, format: AuditFormat) -> String {
    let cell = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_string());
    let header: Vec<String> = ["area".to_string(), "name".to_string()]
        .into_iter()
        .chain(matrix.operands.iter().cloned())
        .collect();
    let lines: Vec<Vec<String>> = matrix
        .rows
        .iter()
        .map(|row| {
            [row.area.to_string(), row.name.clone()]
                .into_iter()
                .chain(row.values.iter().map(cell))
                .collect()
        })
        .collect();
    match format {
        AuditFormat::Json => {
            let envelope = Envelope { schema: 1, matrix };
            serde_json::to_string_pretty(&envelope).unwrap_or_default() + "\n"
        }
        AuditFormat::Csv => {
            let mut writer = csv::Writer::from_writer(Vec::new());
            let _ = writer.write_record(&header);
            for row in &matrix.rows {
                let values = row.values.iter().map(|v| v.clone().unwrap_or_default());
                let record: Vec<String> = [row.area.to_string(), row.name.clone()]
                    .into_iter()
                    .chain(values)
                    .collect();
                let _ = writer.write_record(&record);
            }
            String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
        }
        AuditFormat::Markdown => {
            let escape = |text: &String| text.replace('|', "\\|");
            let mut out = format!(
                "| {} |\n",
                header.iter().map(escape).collect::<Vec<_>>().join(" | ")
            );
            out.push_str(&format!("|{}\n", " --- |".repeat(header.len())));
            for line in &lines {
                out.push_str(&format!(
                    "| {} |\n",
                    line.iter().map(escape).collect::<Vec<_>>().join(" | ")
                ));
            }
            out.push_str(&footer(matrix));
            out
        }
        AuditFormat::Human => {
            let widths: Vec<usize> = (0..header.len())
                .map(|column| {
                    std::iter::once(&header)
                        .chain(&lines)
                        .map(|line| line[column].chars().count())
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let mut out = String::new();
            for line in std::iter::once(&header).chain(&lines) {
                let cells: Vec<String> = line
                    .iter()
                    .zip(&widths)
                    .map(|(text, width)| format!("{text:<width$}"))
                    .collect();
                out.push_str(cells.join("  ").trim_end());
                out.push('\n');
            }
            out.push_str(&footer(matrix));
            out
        }
    }
}

/// `3 rows differ across 5 runtimes.`
fn footer(matrix: &Matrix) -> String {
    let differ = matrix.rows.iter().filter(|row| !row.agrees()).count();
    format!(
        "\n{differ} of {} rows differ across {} runtimes.\n",
        matrix.rows.len(),
        matrix.operands.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> (Vec<String>, Vec<Lock>) {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/locks");
        let operands = vec!["baseline.lock".to_string(), "target.lock".to_string()];
        let locks = operands
            .iter()
            .map(|name| crate::lock::read_lock(&folder.join(name)).unwrap())
            .collect();
        (operands, locks)
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
