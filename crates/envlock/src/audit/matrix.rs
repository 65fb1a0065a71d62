//! The matrix of an audit: a column per runtime (its facts, by row key), and a row per fact
//! (the Python, the platform, each package, conda and system package, each model). A
//! matrix is built from columns, whether they were captured here or read back from shards'
//! outputs, so a merged audit and an unsharded one are the same matrix.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::lock::{Lock, Sha256};

/// A row of the matrix: one fact and its value in each runtime (`None`: absent there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// `python`, `platform`, `packages`, `conda-packages`, `system-packages` or `models`.
    pub area: String,
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
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    /// The operands, as given (a repository's tags, listed).
    pub operands: Vec<String>,
    /// The rows, by area then name.
    pub rows: Vec<Row>,
}

/// The areas, in the matrix's order.
const AREAS: &[&str] = &[
    "python",
    "platform",
    "packages",
    "conda-packages",
    "system-packages",
    "models",
];

/// Where a row goes: its area's place, then the fixed rows' place (`os/arch` before `libc`),
/// then its name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Key {
    area: usize,
    place: usize,
    name: String,
}

impl Key {
    /// The key of a row of `area` named `name`; `None` for an area no matrix has.
    pub(super) fn new(area: &str, name: &str) -> Option<Key> {
        let area = AREAS.iter().position(|known| *known == area)?;
        let place = usize::from(AREAS[area] == "platform" && name == "libc");
        Some(Key {
            area,
            place,
            name: name.to_string(),
        })
    }
}

/// One runtime's facts, by row.
pub(super) type Column = BTreeMap<Key, String>;

/// The facts of `lock`, one per row it has.
pub(super) fn column(lock: &Lock) -> Column {
    let mut column = Column::new();
    let mut add = |area: &str, name: &str, value: String| {
        let key = Key::new(area, name).expect("a known area");
        column.insert(key, value);
    };
    if let Some(python) = &lock.python {
        let version = match python.implementation.as_str() {
            "cpython" => python.version.clone(),
            other => format!("{other} {}", python.version),
        };
        add("python", "version", version);
    }
    let platform = &lock.platform;
    // A lock without a platform (an SBOM, a project's lock) has no row for it.
    if !platform.os.is_empty() {
        add(
            "platform",
            "os/arch",
            format!("{}/{}", platform.os, platform.arch),
        );
    }
    if let Some(libc) = platform.libc.as_deref() {
        let version = platform.libc_version.as_deref().unwrap_or("");
        add(
            "platform",
            "libc",
            format!("{libc} {version}").trim().into(),
        );
    }
    for package in &lock.packages {
        add("packages", &package.name, package.version.clone());
    }
    for package in &lock.conda_packages {
        let value = format!("{} ({})", package.version, package.build);
        add("conda-packages", &package.name, value);
    }
    for package in &lock.system_packages {
        add("system-packages", &package.name, package.version.clone());
    }
    for model in &lock.models {
        // A short prefix is enough to tell models apart by eye.
        let hex = Sha256::hex(&model.sha256);
        add(
            "models",
            &model.path,
            format!("sha256:{}", &hex[..hex.len().min(12)]),
        );
    }
    column
}

/// What to show: every row (`all`), or the rows that differ; with `packages`, only the
/// package rows (Python, conda and system) whose names match one of those globs.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Focus {
    /// Show rows that agree too.
    pub all: bool,
    /// Package-name globs (`numpy`, `torch*`); empty: every row.
    pub packages: Vec<String>,
}

impl Focus {
    /// Whether `--package` lets a row of `area` named `name` through.
    fn wants(&self, area: &str, name: &str) -> bool {
        self.packages.is_empty()
            || (area.ends_with("packages")
                && self
                    .packages
                    .iter()
                    .any(|glob| crate::diff::name_glob(glob, name)))
    }
}

/// The matrix of `columns` (one per operand, in order), with `focus`.
pub(super) fn from_columns(operands: &[String], columns: &[Column], focus: &Focus) -> Matrix {
    let keys: BTreeSet<&Key> = columns.iter().flat_map(|column| column.keys()).collect();
    let rows = keys
        .into_iter()
        .map(|key| Row {
            area: AREAS[key.area].to_string(),
            name: key.name.clone(),
            values: columns
                .iter()
                .map(|column| column.get(key).cloned())
                .collect(),
        })
        .filter(|row| focus.wants(&row.area, &row.name) && (focus.all || !row.agrees()))
        .collect();
    Matrix {
        operands: operands.to_vec(),
        rows,
    }
}

/// The matrix of `locks` (captured from `operands`).
pub fn matrix(operands: &[String], locks: &[Lock], focus: &Focus) -> Matrix {
    let columns: Vec<Column> = locks.iter().map(column).collect();
    from_columns(operands, &columns, focus)
}

/// How `envlock audit` prints its matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum AuditFormat {
    /// An aligned table for people (`-`: absent).
    Human,
    /// A Markdown table.
    Markdown,
    /// `{"schema": 1, "operands": [...], "rows": [{"area", "name", "values"}]}`, `null` for
    /// absent; with `--shard`, also `"shard"` (what the whole audit was), for `--merge`.
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
            [row.area.clone(), row.name.clone()]
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
                let record: Vec<String> = [row.area.clone(), row.name.clone()]
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
