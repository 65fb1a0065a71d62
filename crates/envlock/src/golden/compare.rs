//! Comparing a golden case's output with the baseline's, with numeric tolerance.
//!
//! The baseline is the reference: a number passes when `|actual − expected| ≤ atol +
//! rtol·|expected|`; NaN matches NaN, ±inf only itself; strings, integers, booleans and
//! labels compare exactly; structure (keys, lengths, types) is checked first. Errors are
//! measured on every value, so a pass still reports how far it moved.

use std::collections::BTreeMap;

use serde_json::Value;

/// Relative and absolute tolerance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Tolerance {
    /// Relative to the expected value.
    pub rtol: f64,
    /// Absolute.
    pub atol: f64,
}

/// How two outputs compare.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Comparison {
    /// Values compared.
    pub values: usize,
    /// Values outside their tolerance (or not equal, for exact ones).
    pub out_of_tolerance: usize,
    /// The largest absolute error of a number.
    pub max_abs: f64,
    /// The largest relative error of a number.
    pub max_rel: f64,
    /// JSON pointer of the value with the largest error (relative to its tolerance).
    pub worst: Option<String>,
    /// The first structural difference: a key, a length or a type.
    pub structure: Option<String>,
}

impl Comparison {
    /// Whether the outputs match.
    pub(crate) fn passes(&self) -> bool {
        self.out_of_tolerance == 0 && self.structure.is_none()
    }
}

/// Why an output could not be read in its format.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OutputError {
    /// Not JSON (with its line and column).
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A word of a numbers output that is not a number.
    #[error("`{word}` is not a number")]
    NotANumber {
        word: String,
        #[source]
        source: std::num::ParseFloatError,
    },
}

/// Parses output as JSON, accepting the `NaN`, `Infinity` and `-Infinity` that Python's
/// `json.dumps` writes by default.
pub(crate) fn parse_json(text: &str) -> Result<Value, OutputError> {
    let mut clean = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(character) = rest.chars().next() {
        if in_string {
            clean.push(character);
            match character {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            rest = &rest[character.len_utf8()..];
            continue;
        }
        let token = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|token| rest.starts_with(token));
        if let Some(token) = token {
            // The sentinel's NUL written as a JSON escape: a raw one is not allowed there.
            clean.push_str(&format!("\"\\u0000envlock-float:{token}\""));
            rest = &rest[token.len()..];
            continue;
        }
        if character == '"' {
            in_string = true;
        }
        clean.push(character);
        rest = &rest[character.len_utf8()..];
    }
    Ok(serde_json::from_str(&clean)?)
}

/// Parses whitespace-separated numbers (`nan`, `inf`, `-inf` included) as a JSON array.
pub(crate) fn parse_numbers(text: &str) -> Result<Value, OutputError> {
    text.split_whitespace()
        .map(|word| {
            if let Ok(integer) = word.parse::<i64>() {
                return Ok(Value::from(integer));
            }
            let number: f64 = word.parse().map_err(|source| OutputError::NotANumber {
                word: word.to_string(),
                source,
            })?;
            Ok(match serde_json::Number::from_f64(number) {
                Some(number) => Value::Number(number),
                None => Value::String(format!(
                    "{SENTINEL}{}",
                    if number.is_nan() {
                        "NaN"
                    } else if number > 0.0 {
                        "Infinity"
                    } else {
                        "-Infinity"
                    }
                )),
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

/// Marks the non-finite numbers JSON cannot hold, so they still compare as numbers.
const SENTINEL: &str = "\u{0}envlock-float:";

fn as_float(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => match text.strip_prefix(SENTINEL)? {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

fn is_integer(value: &Value) -> bool {
    matches!(value, Value::Number(number) if number.is_i64() || number.is_u64())
}

/// Compares `actual` with `expected`; `fields` overrides the tolerance below a JSON pointer
/// (the longest matching prefix wins).
pub(crate) fn compare(
    expected: &Value,
    actual: &Value,
    tolerance: Tolerance,
    fields: &BTreeMap<String, Tolerance>,
) -> Comparison {
    let mut walker = Walker {
        tolerance,
        fields,
        out: Comparison::default(),
        worst_ratio: -1.0,
    };
    walker.walk(expected, actual, String::new());
    walker.out
}

/// A comparison under way: the tolerances, and what has been found so far.
struct Walker<'a> {
    tolerance: Tolerance,
    fields: &'a BTreeMap<String, Tolerance>,
    out: Comparison,
    /// The largest error seen, relative to its tolerance.
    worst_ratio: f64,
}

/// A JSON pointer as shown to people: `/` for the root.
fn shown(pointer: &str) -> String {
    if pointer.is_empty() {
        "/".to_string()
    } else {
        pointer.to_string()
    }
}

impl Walker<'_> {
    fn tolerance_at(&self, pointer: &str) -> Tolerance {
        self.fields
            .iter()
            .filter(|(prefix, _)| {
                pointer == prefix.as_str()
                    || pointer.starts_with(&format!("{}/", prefix.trim_end_matches('/')))
            })
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(self.tolerance, |(_, tolerance)| *tolerance)
    }

    fn structure(&mut self, difference: String) {
        self.out.structure.get_or_insert(difference);
    }

    fn walk(&mut self, expected: &Value, actual: &Value, pointer: String) {
        match (expected, actual) {
            (Value::Object(old), Value::Object(new)) => {
                let missing = old.keys().find(|key| !new.contains_key(*key));
                let extra = new.keys().find(|key| !old.contains_key(*key));
                if let Some(key) = missing.or(extra) {
                    let side = if missing.is_some() {
                        "baseline"
                    } else {
                        "target"
                    };
                    self.structure(format!(
                        "key `{key}` at {} is only in the {side}",
                        shown(&pointer)
                    ));
                }
                for (key, value) in old {
                    if let Some(other) = new.get(key) {
                        let escaped = key.replace('~', "~0").replace('/', "~1");
                        self.walk(value, other, format!("{pointer}/{escaped}"));
                    }
                }
            }
            (Value::Array(old), Value::Array(new)) => {
                if old.len() != new.len() {
                    self.structure(format!(
                        "length at {}: {} -> {}",
                        shown(&pointer),
                        old.len(),
                        new.len()
                    ));
                }
                for (index, (value, other)) in old.iter().zip(new).enumerate() {
                    self.walk(value, other, format!("{pointer}/{index}"));
                }
            }
            _ => self.leaf(expected, actual, &pointer),
        }
    }

    /// One value: a number within tolerance, an integer or label exactly.
    fn leaf(&mut self, expected: &Value, actual: &Value, pointer: &str) {
        self.out.values += 1;
        let exact = is_integer(expected) && is_integer(actual);
        match (as_float(expected), as_float(actual)) {
            (Some(e), Some(a)) if !exact => self.number(e, a, pointer),
            (Some(e), Some(a)) => {
                // Integers: exact, but their error is still measured.
                let abs = (a - e).abs();
                self.out.max_abs = self.out.max_abs.max(abs);
                if abs > 0.0 {
                    self.out.out_of_tolerance += 1;
                    self.out.worst.get_or_insert(shown(pointer));
                }
            }
            (None, None) if std::mem::discriminant(expected) == std::mem::discriminant(actual) => {
                if expected != actual {
                    self.out.out_of_tolerance += 1;
                    self.out.worst.get_or_insert(shown(pointer));
                }
            }
            _ => self.structure(format!(
                "type at {}: {} -> {}",
                shown(pointer),
                kind(expected),
                kind(actual)
            )),
        }
    }

    fn number(&mut self, expected: f64, actual: f64, pointer: &str) {
        let tolerance = self.tolerance_at(pointer);
        let (abs, rel, ok) = measure(expected, actual, tolerance);
        self.out.max_abs = self.out.max_abs.max(abs);
        self.out.max_rel = self.out.max_rel.max(rel);
        let allowed = tolerance.atol + tolerance.rtol * expected.abs();
        let ratio = if ok && abs == 0.0 {
            0.0
        } else if allowed > 0.0 {
            abs / allowed
        } else {
            f64::INFINITY
        };
        if ratio > self.worst_ratio && abs > 0.0 || !ok && self.out.worst.is_none() {
            self.worst_ratio = ratio;
            self.out.worst = Some(shown(pointer));
        }
        if !ok {
            self.out.out_of_tolerance += 1;
        }
    }
}

/// Absolute error, relative error, and whether it is within tolerance.
fn measure(expected: f64, actual: f64, tolerance: Tolerance) -> (f64, f64, bool) {
    if expected.is_nan() || actual.is_nan() {
        let same = expected.is_nan() && actual.is_nan();
        return if same {
            (0.0, 0.0, true)
        } else {
            (f64::INFINITY, f64::INFINITY, false)
        };
    }
    if expected.is_infinite() || actual.is_infinite() {
        return if expected == actual {
            (0.0, 0.0, true)
        } else {
            (f64::INFINITY, f64::INFINITY, false)
        };
    }
    let abs = (actual - expected).abs();
    let rel = if expected != 0.0 {
        abs / expected.abs()
    } else if abs == 0.0 {
        0.0
    } else {
        f64::INFINITY
    };
    (
        abs,
        rel,
        abs <= tolerance.atol + tolerance.rtol * expected.abs(),
    )
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(text) if text.starts_with(SENTINEL) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// For the fuzz targets (`src/fuzzing.rs`): two outputs (split at the first NUL), each as JSON and as
/// numbers, compared.
pub(crate) fn fuzz(text: &str) {
    let (expected, actual) = text.split_once('\0').unwrap_or((text, text));
    let tolerance = Tolerance {
        rtol: 1e-6,
        atol: 1e-9,
    };
    for parse in [parse_json, parse_numbers] {
        if let (Ok(expected), Ok(actual)) = (parse(expected), parse(actual)) {
            let _ = compare(&expected, &actual, tolerance, &BTreeMap::new());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIGHT: Tolerance = Tolerance {
        rtol: 1e-6,
        atol: 1e-9,
    };

    fn run(expected: &str, actual: &str) -> Comparison {
        compare(
            &parse_json(expected).unwrap(),
            &parse_json(actual).unwrap(),
            TIGHT,
            &BTreeMap::new(),
        )
    }

    #[test]
    fn within_tolerance_passes_and_still_reports_the_error() {
        let result = run(r#"{"p": [0.5, 0.25]}"#, r#"{"p": [0.5000001, 0.25]}"#);
        assert!(result.passes(), "{result:?}");
        assert!(result.max_abs > 9e-8 && result.max_abs < 2e-7);
        assert_eq!(result.worst.as_deref(), Some("/p/0"));
        assert_eq!(result.values, 2);
    }

    #[test]
    fn beyond_tolerance_fails_with_the_worst_place() {
        let result = run(
            r#"{"a": 1.0, "b": [2.0, 3.0]}"#,
            r#"{"a": 1.0, "b": [2.5, 3.0001]}"#,
        );
        assert!(!result.passes());
        assert_eq!(result.out_of_tolerance, 2);
        assert_eq!(result.worst.as_deref(), Some("/b/0"));
        assert!((result.max_abs - 0.5).abs() < 1e-12);
        assert!((result.max_rel - 0.25).abs() < 1e-12);
    }

    #[test]
    fn nan_matches_nan_and_infinity_only_itself() {
        assert!(run("[NaN, Infinity, -Infinity]", "[NaN, Infinity, -Infinity]").passes());
        assert!(!run("[Infinity]", "[-Infinity]").passes());
        assert!(!run("[NaN]", "[1.0]").passes());
        assert!(
            run("[\"NaN\"]", "[\"NaN\"]").passes(),
            "the string NaN is a string"
        );
    }

    #[test]
    fn exact_values_and_structure() {
        assert!(!run(r#"{"label": "setosa"}"#, r#"{"label": "virginica"}"#).passes());
        assert!(
            !run("[1, 2]", "[1, 3]").passes(),
            "integers compare exactly"
        );
        assert!(!run("[true]", "[false]").passes());
        let result = run(r#"{"a": 1}"#, r#"{"b": 1}"#);
        assert!(result.structure.unwrap().contains("key `a`"));
        let result = run("[1.0, 2.0]", "[1.0]");
        assert!(result.structure.unwrap().contains("length at /: 2 -> 1"));
        let result = run(r#"{"a": 1.0}"#, r#"{"a": "1.0"}"#);
        assert!(result
            .structure
            .unwrap()
            .contains("type at /a: number -> string"));
    }

    #[test]
    fn field_tolerances_by_json_pointer() {
        let mut fields = BTreeMap::new();
        fields.insert(
            "/loose".to_string(),
            Tolerance {
                rtol: 0.1,
                atol: 0.0,
            },
        );
        let expected = parse_json(r#"{"loose": [1.0], "tight": 1.0}"#).unwrap();
        let actual = parse_json(r#"{"loose": [1.05], "tight": 1.0}"#).unwrap();
        assert!(compare(&expected, &actual, TIGHT, &fields).passes());
        assert!(!compare(&expected, &actual, TIGHT, &BTreeMap::new()).passes());
    }

    #[test]
    fn whitespace_numbers() {
        let expected = parse_numbers("1.5 2\n nan inf").unwrap();
        let actual = parse_numbers("1.5000000001 2 nan inf").unwrap();
        assert!(compare(&expected, &actual, TIGHT, &BTreeMap::new()).passes());
        assert!(parse_numbers("1.0 abc")
            .unwrap_err()
            .to_string()
            .contains("`abc`"));
    }

    proptest::proptest! {
        #[test]
        fn outputs_never_panic(text in ".{0,200}", other in ".{0,200}") {
            let tolerance = TIGHT;
            let parsed = (parse_json(&text), parse_json(&other));
            if let (Ok(expected), Ok(actual)) = parsed {
                let _ = compare(&expected, &actual, tolerance, &BTreeMap::new());
            }
            let parsed = (parse_numbers(&text), parse_numbers(&other));
            if let (Ok(expected), Ok(actual)) = parsed {
                let result = compare(&expected, &actual, tolerance, &BTreeMap::new());
                proptest::prop_assert!(result.max_abs >= 0.0 || result.max_abs.is_nan());
            }
        }

        #[test]
        fn numbers_compare_with_themselves(values in proptest::collection::vec(proptest::prelude::any::<f64>(), 0..20)) {
            let text: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
            let parsed = parse_numbers(&text.join(" ")).unwrap();
            proptest::prop_assert!(compare(&parsed, &parsed, TIGHT, &BTreeMap::new()).passes());
        }
    }
}
