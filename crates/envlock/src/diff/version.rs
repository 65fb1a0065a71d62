//! Classifying a version change by the first PEP 440 part that differs.

use std::cmp::Ordering;
use std::str::FromStr;

use pep440_rs::Version;
use schemars::JsonSchema;
use serde::Serialize;

/// Which part of a version changed first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema, strum::AsRefStr,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Change {
    /// `N!`: the epoch.
    Epoch,
    /// The first release number.
    Major,
    /// The second release number.
    Minor,
    /// The third or a later release number.
    Patch,
    /// `aN`, `bN`, `rcN`.
    Pre,
    /// `.postN`.
    Post,
    /// `.devN`.
    Dev,
    /// `+label`: another build of the same version.
    Local,
    /// The same version with another build string (conda packages).
    Build,
}

/// Whether the target is newer or older than the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema, strum::AsRefStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Direction {
    /// The target is newer.
    Upgrade,
    /// The target is older.
    Downgrade,
}

/// How `target` differs from `baseline`; `None` when they are equal by PEP 440 or either is
/// not a PEP 440 version.
pub(super) fn classify(baseline: &str, target: &str) -> Option<(Change, Direction)> {
    let old = Version::from_str(baseline).ok()?;
    let new = Version::from_str(target).ok()?;
    let direction = match old.cmp(&new) {
        Ordering::Equal => return None,
        Ordering::Less => Direction::Upgrade,
        Ordering::Greater => Direction::Downgrade,
    };
    let release =
        |version: &Version, index: usize| version.release().get(index).copied().unwrap_or(0);
    let width = old.release().len().max(new.release().len());
    let change = if old.epoch() != new.epoch() {
        Change::Epoch
    } else if let Some(index) = (0..width).find(|&i| release(&old, i) != release(&new, i)) {
        match index {
            0 => Change::Major,
            1 => Change::Minor,
            _ => Change::Patch,
        }
    } else if old.pre() != new.pre() {
        Change::Pre
    } else if old.post() != new.post() {
        Change::Post
    } else if old.dev() != new.dev() {
        Change::Dev
    } else {
        Change::Local
    };
    Some((change, direction))
}

/// Whether two version strings name the same version by PEP 440 (`1.0` equals `1.0.0`);
/// strings that do not parse are compared as text.
pub(super) fn same(baseline: &str, target: &str) -> bool {
    match (Version::from_str(baseline), Version::from_str(target)) {
        (Ok(old), Ok(new)) => old == new,
        _ => baseline == target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_differing_part_decides() {
        let cases = [
            ("1.26.4", "2.0.2", Change::Major, Direction::Upgrade),
            ("1.26.4", "1.25.0", Change::Minor, Direction::Downgrade),
            ("1.26.4", "1.26.5", Change::Patch, Direction::Upgrade),
            ("1.2.3.4", "1.2.3.5", Change::Patch, Direction::Upgrade),
            ("2.0.0rc1", "2.0.0", Change::Pre, Direction::Upgrade),
            ("1.0", "1.0.post1", Change::Post, Direction::Upgrade),
            ("1.0.dev1", "1.0.dev2", Change::Dev, Direction::Upgrade),
            (
                "2.1.0+cu121",
                "2.1.0+cpu",
                Change::Local,
                Direction::Downgrade,
            ),
            ("1!1.0", "2.0", Change::Epoch, Direction::Downgrade),
            ("1.9", "1.10", Change::Minor, Direction::Upgrade),
        ];
        for (old, new, change, direction) in cases {
            assert_eq!(
                classify(old, new),
                Some((change, direction)),
                "{old} -> {new}"
            );
        }
    }

    #[test]
    fn equal_by_pep440_is_no_change() {
        assert_eq!(classify("1.0", "1.0.0"), None);
        assert!(same("1.0", "1.0.0"));
        assert!(!same("1.0+cpu", "1.0+cu121"));
        assert_eq!(classify("not a version", "1.0"), None);
    }
}
