//! Package URLs (`pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS`), in the canonical form
//! `packageurl-python` writes: qualifiers sorted by key, and every byte outside the
//! unreserved set (and `:`, and `/` in a qualifier's value) percent-encoded.

use std::collections::BTreeMap;

/// A package URL's parts, decoded.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Purl {
    pub(super) kind: String,
    pub(super) namespace: Option<String>,
    pub(super) name: String,
    pub(super) version: Option<String>,
    pub(super) qualifiers: BTreeMap<String, String>,
}

impl Purl {
    /// `pkg:KIND/NAME@VERSION`.
    pub(super) fn new(kind: &str, name: &str, version: &str) -> Purl {
        Purl {
            kind: kind.to_string(),
            name: name.to_string(),
            version: Some(version.to_string()),
            ..Purl::default()
        }
    }

    pub(super) fn namespace(mut self, namespace: Option<&str>) -> Purl {
        self.namespace = namespace.filter(|n| !n.is_empty()).map(str::to_string);
        self
    }

    /// Adds qualifier `key` when it has a non-empty value.
    pub(super) fn qualifier(mut self, key: &str, value: Option<&str>) -> Purl {
        if let Some(value) = value.filter(|value| !value.is_empty()) {
            self.qualifiers.insert(key.to_string(), value.to_string());
        }
        self
    }

    /// The canonical text.
    pub(super) fn text(&self) -> String {
        let mut out = format!("pkg:{}/", self.kind);
        if let Some(namespace) = &self.namespace {
            for segment in namespace.split('/') {
                out.push_str(&encode(segment, ":"));
                out.push('/');
            }
        }
        out.push_str(&encode(&self.name, ":"));
        if let Some(version) = &self.version {
            out.push('@');
            out.push_str(&encode(version, ":"));
        }
        let qualifiers: Vec<String> = self
            .qualifiers
            .iter()
            .map(|(key, value)| format!("{key}={}", encode(value, ":/")))
            .collect();
        if !qualifiers.is_empty() {
            out.push('?');
            out.push_str(&qualifiers.join("&"));
        }
        out
    }

    /// Reads a package URL; `None` when `text` is not one.
    pub(super) fn parse(text: &str) -> Option<Purl> {
        let rest = text.strip_prefix("pkg:")?.trim_start_matches('/');
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let (rest, qualifiers) = match rest.split_once('?') {
            Some((rest, qualifiers)) => (rest, qualifiers),
            None => (rest, ""),
        };
        let (kind, path) = rest.split_once('/')?;
        if kind.is_empty()
            || !kind
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".+-".contains(&b))
        {
            return None;
        }
        // `@` separates the version from the last segment (a namespace may not hold one).
        let (path, version) = match path.rsplit_once('@') {
            Some((path, version)) if !path.contains('@') => (path, Some(decode(version)?)),
            Some(_) => return None,
            None => (path, None),
        };
        let path = path.trim_end_matches('/');
        let (namespace, name) = match path.rsplit_once('/') {
            Some((namespace, name)) => (Some(namespace), name),
            None => (None, path),
        };
        let namespace = match namespace {
            Some(namespace) => Some(
                namespace
                    .split('/')
                    .map(decode)
                    .collect::<Option<Vec<_>>>()?
                    .join("/"),
            ),
            None => None,
        };
        let name = decode(name)?;
        if name.is_empty() {
            return None;
        }
        let mut parsed = Purl {
            kind: kind.to_ascii_lowercase(),
            namespace,
            name,
            version,
            qualifiers: BTreeMap::new(),
        };
        for pair in qualifiers.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=')?;
            parsed
                .qualifiers
                .insert(key.to_ascii_lowercase(), decode(value)?);
        }
        Some(parsed)
    }
}

/// Percent-encodes every byte outside the unreserved set and `safe`.
fn encode(text: &str, safe: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric()
            || b"-._~".contains(&byte)
            || safe.as_bytes().contains(&byte)
        {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Percent-decodes `text`; `None` for a bad escape or bytes that are not UTF-8.
fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_and_back() {
        let purl = Purl::new("deb", "bsdutils", "1:2.38.1-5+deb12u1")
            .namespace(Some("debian"))
            .qualifier("distro", Some("debian-12"))
            .qualifier("arch", Some("amd64"))
            .qualifier("empty", Some(""));
        let text = purl.text();
        assert_eq!(
            text,
            "pkg:deb/debian/bsdutils@1:2.38.1-5%2Bdeb12u1?arch=amd64&distro=debian-12"
        );
        assert_eq!(Purl::parse(&text), Some(purl));
        let conda = Purl::new("conda", "libstdc++", "1 2")
            .qualifier("channel", Some("https://conda.anaconda.org/conda-forge"));
        assert_eq!(
            conda.text(),
            "pkg:conda/libstdc%2B%2B@1%202?channel=https://conda.anaconda.org/conda-forge"
        );
        assert_eq!(Purl::parse(&conda.text()), Some(conda));
    }

    #[test]
    fn what_is_not_a_purl() {
        for text in [
            "",
            "pkg:",
            "pkg:pypi",
            "pkg:pypi/",
            "npm:x/y",
            "pkg:pypi/a@1@2",
            "pkg:pypi/a%zz@1",
            "pkg:pypi/a@%ff",
            "pkg:p y/a",
            "pkg:pypi/a?novalue",
        ] {
            assert_eq!(Purl::parse(text), None, "{text}");
        }
        let parsed = Purl::parse("pkg:PyPI/Boolean.py@5.0#sub/path").unwrap();
        assert_eq!(
            (parsed.kind.as_str(), parsed.name.as_str()),
            ("pypi", "Boolean.py")
        );
        assert_eq!(parsed.version.as_deref(), Some("5.0"));
    }
}
