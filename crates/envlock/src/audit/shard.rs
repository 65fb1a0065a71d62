//! One audit split across machines: `--shard K/N` captures every N-th operand from the K-th
//! (after a repository's tags are listed and sorted), and its JSON output holds, beside its
//! own columns, what the whole audit was (every operand, the options). `--merge` checks that
//! the shards are the N parts of one audit, each once, and joins their columns into the
//! matrix an unsharded run gives.

use serde::{Deserialize, Serialize};

use super::matrix::{from_columns, Column, Focus, Key, Matrix, Row};
use crate::error::{Error, Result};
use crate::lock::Lock;

/// `--shard K/N`: the K-th of N parts, K from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// K, from 1 to `count`.
    pub index: usize,
    /// N.
    pub count: usize,
}

impl Shard {
    /// `K/N`, or `/N` with K from `job_index` (Kubernetes's `JOB_COMPLETION_INDEX`, from 0).
    pub fn parse(text: &str, job_index: Option<&str>) -> Result<Shard> {
        let invalid = |detail: String| Error::InvalidShard {
            spec: text.to_string(),
            detail,
        };
        let number = |part: &str| part.trim().parse::<usize>().ok();
        let (index, count) = text.split_once('/').ok_or_else(|| {
            invalid("it is written K/N: the K-th of N shards, K from 1 to N".into())
        })?;
        let count = number(count)
            .filter(|count| *count > 0)
            .ok_or_else(|| invalid("N is not a whole number of shards, 1 or more".into()))?;
        let index = if index.trim().is_empty() {
            let job_index = job_index.ok_or_else(|| {
                invalid(format!(
                    "`/{count}` takes K from `JOB_COMPLETION_INDEX` (a Kubernetes Indexed Job), which is not set; give `--shard K/{count}`"
                ))
            })?;
            number(job_index)
                .and_then(|index| index.checked_add(1))
                .ok_or_else(|| {
                    invalid(format!(
                        "`JOB_COMPLETION_INDEX={job_index}` is not a whole number"
                    ))
                })?
        } else {
            number(index).ok_or_else(|| invalid("K is not a whole number".into()))?
        };
        if index == 0 || index > count {
            return Err(invalid(format!(
                "K is {index}, and must be from 1 to {count} (`JOB_COMPLETION_INDEX` counts from 0)"
            )));
        }
        Ok(Shard { index, count })
    }

    /// Whether the operand at `position` (from 0) is this shard's.
    pub fn takes(&self, position: usize) -> bool {
        position % self.count == self.index - 1
    }
}

/// What makes shards parts of one audit: every operand, the options, the models of the
/// configuration, and the envlock that ran it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Audit {
    /// `envlock X.Y.Z`: shards of two versions may read runtimes differently.
    pub envlock: String,
    /// The configuration's model paths (`envlock.toml`'s `models`).
    pub models: Vec<String>,
    /// Every operand of the whole audit, a repository's tags listed.
    pub operands: Vec<String>,
    /// What to show.
    pub focus: Focus,
    /// `--tags`.
    pub tags: Vec<String>,
    /// `--no-exec`.
    pub no_exec: bool,
    /// `--extra`.
    pub extras: Vec<String>,
    /// `--group`.
    pub groups: Vec<String>,
}

/// A shard's JSON output.
#[derive(Serialize, Deserialize)]
struct Output {
    schema: u32,
    shard: Part,
    /// This shard's operands.
    operands: Vec<String>,
    /// Every row of this shard's operands (those that agree too: agreement is the whole
    /// audit's to judge).
    rows: Vec<Row>,
}

#[derive(Serialize, Deserialize)]
struct Part {
    index: usize,
    count: usize,
    audit: Audit,
}

/// The JSON output of `shard` of `audit`, with the locks of its operands.
pub fn output(audit: &Audit, shard: Shard, locks: &[Lock]) -> String {
    let operands: Vec<String> = own_operands(audit, shard);
    let every_row = Focus {
        all: true,
        packages: audit.focus.packages.clone(),
    };
    let matrix = super::matrix::matrix(&operands, locks, &every_row);
    let output = Output {
        schema: 1,
        shard: Part {
            index: shard.index,
            count: shard.count,
            audit: audit.clone(),
        },
        operands: matrix.operands,
        rows: matrix.rows,
    };
    serde_json::to_string_pretty(&output).unwrap_or_default() + "\n"
}

/// The operands of `audit` that `shard` takes.
pub fn own_operands(audit: &Audit, shard: Shard) -> Vec<String> {
    let operands = audit.operands.iter().enumerate();
    operands
        .filter(|(position, _)| shard.takes(*position))
        .map(|(_, operand)| operand.clone())
        .collect()
}

/// The matrix of the whole audit that `files` (name, bytes) are the shards of, with the
/// focus it was run with.
pub fn merge(files: &[(String, Vec<u8>)]) -> Result<Matrix> {
    let invalid = |file: &str, detail: String| Error::AuditMerge {
        file: Some(file.to_string()),
        detail,
    };
    let mut parts: Vec<(&str, Output)> = Vec::new();
    for (file, bytes) in files {
        let output: Output = serde_json::from_slice(bytes).map_err(|error| {
            let plain = serde_json::from_slice::<Matrix>(bytes).is_ok();
            invalid(
                file,
                if plain {
                    "it is the output of an audit run whole, not of a shard (`envlock audit --shard K/N --format json`)".into()
                } else {
                    format!("it is not the JSON output of `envlock audit --shard K/N --format json` ({error})")
                },
            )
        })?;
        if output.schema != 1 {
            return Err(invalid(
                file,
                format!("its schema is {}; this envlock reads 1", output.schema),
            ));
        }
        parts.push((file, output));
    }
    let Some((first_file, first)) = parts.first() else {
        return Err(Error::AuditMerge {
            file: None,
            detail: "no shard outputs were given".into(),
        });
    };
    let (audit, count) = (&first.shard.audit, first.shard.count);
    // Fewer files than shards: some are missing (said before anything is allocated for
    // the count the file gives).
    if count > parts.len() {
        let given: Vec<usize> = parts.iter().map(|(_, output)| output.shard.index).collect();
        let missing: Vec<String> = (1..=count)
            .filter(|index| !given.contains(index))
            .take(5)
            .map(|index| format!("{index}/{count}"))
            .collect();
        let more = count - parts.len();
        return Err(Error::AuditMerge {
            file: None,
            detail: format!(
                "shard {}{} of this audit is missing",
                missing.join(", "),
                if more > missing.len() {
                    format!(" and {} more", more - missing.len())
                } else {
                    String::new()
                }
            ),
        });
    }
    let mut by_index: Vec<Option<(&str, &Output)>> = vec![None; count];
    for (file, output) in &parts {
        let shard = &output.shard;
        if shard.count != count || shard.audit != *audit {
            let what = if shard.count != count {
                format!(
                    "it is one of {} shards, and `{first_file}` one of {count}",
                    shard.count
                )
            } else if shard.audit.operands != audit.operands {
                format!("its audit had other operands than `{first_file}`'s")
            } else if shard.audit.envlock != audit.envlock {
                format!(
                    "it was written by {}, and `{first_file}` by {}",
                    shard.audit.envlock, audit.envlock
                )
            } else if shard.audit.models != audit.models {
                format!("its configuration had other models than `{first_file}`'s")
            } else {
                format!("its audit had other options (--package, --all, --tags, --no-exec, --extra, --group) than `{first_file}`'s")
            };
            return Err(invalid(
                file,
                format!("it is part of another audit: {what}"),
            ));
        }
        let slot = shard
            .index
            .checked_sub(1)
            .and_then(|index| by_index.get_mut(index))
            .ok_or_else(|| {
                invalid(
                    file,
                    format!("its shard number {} is not from 1 to {count}", shard.index),
                )
            })?;
        if let Some((other, _)) = slot {
            return Err(invalid(
                file,
                format!("it and `{other}` are both shard {}/{count}", shard.index),
            ));
        }
        let wanted = own_operands(
            audit,
            Shard {
                index: shard.index,
                count,
            },
        );
        if output.operands != wanted {
            return Err(invalid(
                file,
                format!(
                    "it does not hold the operands of shard {}/{count}",
                    shard.index
                ),
            ));
        }
        *slot = Some((file, output));
    }
    let missing: Vec<String> = (1..=count)
        .filter(|index| by_index[index - 1].is_none())
        .map(|index| format!("{index}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(Error::AuditMerge {
            file: None,
            detail: format!("shard {} of this audit is missing", missing.join(", ")),
        });
    }
    // Each operand's column, from the shard that captured it.
    let mut columns: Vec<Column> = vec![Column::new(); audit.operands.len()];
    for (index, part) in by_index.iter().enumerate() {
        let (file, output) = part.expect("every shard is present");
        let positions: Vec<usize> = (0..audit.operands.len())
            .filter(|position| position % count == index)
            .collect();
        for row in &output.rows {
            let key = Key::new(&row.area, &row.name)
                .ok_or_else(|| invalid(file, format!("its row area `{}` is unknown", row.area)))?;
            if row.values.len() != positions.len() {
                return Err(invalid(
                    file,
                    format!(
                        "its row `{} {}` has {} values for {} operands",
                        row.area,
                        row.name,
                        row.values.len(),
                        positions.len()
                    ),
                ));
            }
            for (value, position) in row.values.iter().zip(&positions) {
                if let Some(value) = value {
                    columns[*position].insert(key.clone(), value.clone());
                }
            }
        }
    }
    Ok(from_columns(&audit.operands, &columns, &audit.focus))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_specs() {
        assert_eq!(
            Shard::parse("2/3", None).unwrap(),
            Shard { index: 2, count: 3 }
        );
        assert_eq!(
            Shard::parse("/3", Some("0")).unwrap(),
            Shard { index: 1, count: 3 }
        );
        assert_eq!(
            Shard::parse("3/3", Some("0")).unwrap(),
            Shard { index: 3, count: 3 }
        );
        for (spec, job, says) in [
            ("3/2", None, "from 1 to 2"),
            ("0/2", None, "from 1 to 2"),
            ("a/b", None, "N is not"),
            ("a/2", None, "K is not"),
            ("2", None, "written K/N"),
            ("1/0", None, "N is not"),
            ("/2", None, "JOB_COMPLETION_INDEX"),
            ("/2", Some("2"), "from 1 to 2"),
            ("/2", Some("x"), "JOB_COMPLETION_INDEX=x"),
        ] {
            let error = Shard::parse(spec, job).unwrap_err().to_string();
            assert!(error.contains(says), "{spec}: {error}");
        }
        let shard = Shard { index: 2, count: 3 };
        let taken: Vec<usize> = (0..8).filter(|position| shard.takes(*position)).collect();
        assert_eq!(taken, [1, 4, 7]);
    }

    fn fixture_locks() -> Vec<Lock> {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/locks");
        [
            "baseline.lock",
            "target.lock",
            "models.lock",
            "baseline.lock",
            "target.lock",
        ]
        .iter()
        .map(|name| crate::lock::read_lock(&folder.join(name)).unwrap())
        .collect()
    }

    #[test]
    fn merged_shards_are_the_whole_audit() {
        let locks = fixture_locks();
        let operands: Vec<String> = (1..=locks.len()).map(|n| format!("op{n}")).collect();
        let audit = Audit {
            envlock: "envlock 0.1.0".into(),
            models: vec![],
            operands: operands.clone(),
            focus: Focus::default(),
            tags: vec![],
            no_exec: false,
            extras: vec![],
            groups: vec![],
        };
        let whole = super::super::matrix::matrix(&operands, &locks, &audit.focus);
        let outputs: Vec<(String, Vec<u8>)> = (1..=3)
            .map(|index| {
                let shard = Shard { index, count: 3 };
                let own: Vec<Lock> = locks
                    .iter()
                    .enumerate()
                    .filter(|(position, _)| shard.takes(*position))
                    .map(|(_, lock)| lock.clone())
                    .collect();
                (
                    format!("s{index}.json"),
                    output(&audit, shard, &own).into_bytes(),
                )
            })
            .collect();
        assert_eq!(merge(&outputs).unwrap(), whole);
        // Another order of the files is the same audit.
        let reversed: Vec<_> = outputs.iter().rev().cloned().collect();
        assert_eq!(merge(&reversed).unwrap(), whole);
        let error = merge(&outputs[..2]).unwrap_err().to_string();
        assert!(
            error.contains("shard 3/3 of this audit is missing"),
            "{error}"
        );
        let twice = [outputs[0].clone(), outputs[0].clone(), outputs[2].clone()];
        assert!(merge(&twice)
            .unwrap_err()
            .to_string()
            .contains("both shard 1/3"));
        let mut other = audit.clone();
        other.operands.push("op6".into());
        let foreign = (
            "other.json".to_string(),
            output(&other, Shard { index: 3, count: 3 }, &locks[2..3]).into_bytes(),
        );
        let mixed = [outputs[0].clone(), outputs[1].clone(), foreign];
        let error = merge(&mixed).unwrap_err().to_string();
        assert!(error.contains("other operands"), "{error}");
        // A count from the file is checked against the files given before anything is
        // allocated for it.
        let mut hostile: serde_json::Value = serde_json::from_slice(&outputs[0].1).unwrap();
        hostile["shard"]["count"] = serde_json::json!(usize::MAX);
        let hostile = ("hostile.json".to_string(), hostile.to_string().into_bytes());
        let error = merge(&[hostile]).unwrap_err().to_string();
        assert!(
            error.contains("shard 2/18446744073709551615, 3/"),
            "{error}"
        );
        let plain = super::super::matrix::render(&whole, super::super::matrix::AuditFormat::Json);
        let error = merge(&[("plain.json".into(), plain.into_bytes())])
            .unwrap_err()
            .to_string();
        assert!(error.contains("run whole"), "{error}");
    }
}
