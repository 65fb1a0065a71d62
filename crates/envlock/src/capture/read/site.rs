//! Static capture: an image's Python runtime read from its files (the one view,
//! [`Files`]), with nothing from the image run. `sys.path` is rebuilt as the interpreter's
//! `site` module builds it: `PYTHONPATH`, then the user site and the site folders of the
//! layout around the interpreter (a venv's `pyvenv.cfg`, the official images' `/usr/local`,
//! Debian's `dist-packages`, Fedora's `lib64`, conda), each followed by the folders its
//! `.pth` files name. Links resolve in the view, so a site folder, a venv or a `.dist-info`
//! that is a symlink reads as the interpreter reads it.

use crate::warning::{Warning, WarningCode};
use std::collections::BTreeMap;

use super::select::is_python;
use crate::capture::fs::{base_name, join, normalize, parent, Files, ReadError};
use crate::lock::Python;

/// A Python runtime found in an image's files.
pub(crate) struct StaticPython {
    /// What could be known without running it; `sys_path` as the interpreter builds it.
    pub(crate) python: Python,
    /// What static capture cannot do as the interpreter would (a `.pth` line that runs code).
    pub(crate) warnings: Vec<Warning>,
}

/// Where an interpreter lives and what its layout says.
struct Layout {
    /// The path on `PATH` that would be started (what `sys.executable` reports).
    invoked: String,
    /// `prefix/bin/pythonX` after symlinks: it decides the prefix.
    prefix: String,
    /// The venv around `invoked`, with its `pyvenv.cfg`.
    venv: Option<(String, BTreeMap<String, String>)>,
    /// `3.11`.
    minor: String,
    /// `3.11.7` when the files tell.
    version: Option<String>,
    /// `cpython` or `pypy`.
    implementation: &'static str,
    /// Debian's own layout (`dist-packages`), for its `/usr` Python.
    debian: bool,
    /// The standard library is under `lib64` (Fedora and RHEL: `sys.platlibdir`), so
    /// `lib64` site folders come before `lib` ones.
    lib64: bool,
}

/// Where the image runs: its variables and the home of its user.
pub(crate) struct Runs<'a> {
    /// The config's `Env`.
    pub(crate) env: &'a BTreeMap<String, String>,
    /// The user's home (from `/etc/passwd`): its user site is on `sys.path`.
    pub(crate) home: &'a str,
    /// The system's package manager (`dpkg`, `apk`, `rpm`): Debian's `/usr` Python reads
    /// `dist-packages`; Fedora's and RHEL's also `/usr/local`.
    pub(crate) manager: Option<&'a str>,
}

/// Reads the interpreter `invoked` (an absolute path in the image) and its `sys.path`.
/// `None` when the files do not say which Python it is.
pub(crate) async fn read_python(
    files: &impl Files,
    invoked: &str,
    runs: &Runs<'_>,
    system_version: Option<&str>,
) -> Result<Option<StaticPython>, ReadError> {
    let Some(layout) = find_layout(files, invoked, runs, system_version).await? else {
        return Ok(None);
    };
    let mut warnings = Vec::new();
    let sys_path = sys_path(files, &layout, runs, &mut warnings).await?;
    let (prefix, base_prefix) = match &layout.venv {
        Some((root, _)) => (root.clone(), layout.prefix.clone()),
        None => (layout.prefix.clone(), layout.prefix.clone()),
    };
    Ok(Some(StaticPython {
        python: Python {
            implementation: layout.implementation.to_string(),
            version: layout.version.unwrap_or(layout.minor),
            // As `sys.executable` reports it: the path that was started, not its target.
            executable: Some(layout.invoked),
            prefix: Some(prefix),
            base_prefix: Some(base_prefix),
            soabi: None,
            cache_tag: None,
            sys_path,
            markers: BTreeMap::new(),
            selected_by: None,
        },
        warnings,
    }))
}

/// What the files around `invoked` say about it.
async fn find_layout(
    files: &impl Files,
    invoked: &str,
    runs: &Runs<'_>,
    system_version: Option<&str>,
) -> Result<Option<Layout>, ReadError> {
    let invoked = invoked.to_string();
    let Some(resolved) = files.stat(&invoked).await?.map(|stat| stat.resolved) else {
        return Ok(None);
    };
    let venv = venv_config(files, &invoked).await?.map(|(_, bytes)| {
        (
            parent(&parent(&invoked)),
            parse_pyvenv(&String::from_utf8_lossy(&bytes)),
        )
    });
    // The interpreter's real location decides its prefix and minor version; a venv made
    // with `--copies` holds a copy, and its `home` names the base's `bin`.
    let real_name = base_name(&resolved).to_string();
    if !is_python(base_name(&invoked)) && !is_python(&real_name) {
        return Ok(None);
    }
    let home = venv.as_ref().and_then(|(root, config)| {
        let copied = resolved.starts_with(&format!("{root}/"));
        config
            .get("home")
            .filter(|home| copied && home.starts_with('/'))
            .map(|home| normalize(home))
    });
    let prefix = match home {
        Some(bin) => parent(&bin),
        None => parent(&parent(&resolved)),
    };
    // `version` (venv), or virtualenv's `version_info = 3.11.7.final.0`: the release only.
    let mut version = venv.as_ref().and_then(|(_, config)| {
        config
            .get("version")
            .or_else(|| config.get("version_info"))
            .map(|text| release_of(text))
    });
    let minor = version.as_deref().map(minor_of).or_else(|| {
        real_name
            .strip_prefix("python")
            .filter(|v| v.contains('.'))
            .map(str::to_string)
    });
    let minor = match minor {
        Some(minor) => minor,
        None => match find_minor(files, &prefix).await? {
            Some(minor) => minor,
            None => return Ok(None),
        },
    };
    let lib64 = files
        .is_folder(&format!("{prefix}/lib64/python{minor}"))
        .await?;
    let debian = prefix == "/usr"
        && (runs.manager == Some("dpkg")
            || files.is_folder("/usr/lib/python3/dist-packages").await?);
    if version.is_none() {
        let header = format!("{prefix}/include/python{minor}/patchlevel.h");
        version = files
            .read(&header)
            .await?
            .and_then(|bytes| patchlevel_version(&String::from_utf8_lossy(&bytes)))
            .or_else(|| {
                system_version
                    .filter(|full| full.starts_with(&minor))
                    .map(str::to_string)
            });
    }
    Ok(Some(Layout {
        invoked,
        prefix,
        venv,
        minor,
        version,
        implementation: if real_name.contains("pypy") {
            "pypy"
        } else {
            "cpython"
        },
        debian,
        lib64,
    }))
}

/// `sys.path` as the interpreter's `site` module builds it (its stdlib folders aside, which
/// hold no distributions): `PYTHONPATH`; the venv's site folders; then, unless the venv
/// shuts them out, the user site and the base's site folders; each site folder that exists
/// followed by the folders its `.pth` files name.
async fn sys_path(
    files: &impl Files,
    layout: &Layout,
    runs: &Runs<'_>,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<String>, ReadError> {
    let minor = &layout.minor;
    let mut sys_path: Vec<String> = Vec::new();
    for entry in runs
        .env
        .get("PYTHONPATH")
        .map(|value| {
            value
                .split(':')
                .filter(|p| p.starts_with('/'))
                .collect::<Vec<&str>>()
        })
        .unwrap_or_default()
    {
        let entry = normalize(entry);
        if files.is_folder(&entry).await? && !sys_path.contains(&entry) {
            sys_path.push(entry);
        }
    }
    let base_sites = if layout.debian {
        // Debian's layout: pip's installs, then the distribution's own packages.
        vec![
            format!("/usr/local/lib/python{minor}/dist-packages"),
            "/usr/lib/python3/dist-packages".to_string(),
            format!("/usr/lib/python{minor}/dist-packages"),
        ]
    } else {
        // Upstream's layout: `platlibdir` first, then `lib`; Fedora and RHEL put
        // `/usr/local` before their `/usr` Python's own folders.
        let prefixes: &[&str] = match layout.prefix.as_str() {
            "/usr" if runs.manager == Some("rpm") => &["/usr/local", "/usr"],
            prefix => &[prefix],
        };
        prefixes
            .iter()
            .flat_map(|prefix| site_folders(prefix, layout))
            .collect()
    };
    // `site.venv()` adds the venv's folders first ("venv takes precedence over user-site");
    // `include-system-site-packages` (true when absent) keeps the user site and the base's.
    let (with_base, mut sites) = match &layout.venv {
        Some((root, config)) => (
            config
                .get("include-system-site-packages")
                .is_none_or(|value| value.eq_ignore_ascii_case("true")),
            site_folders(root, layout),
        ),
        None => (true, Vec::new()),
    };
    if with_base {
        sites.extend(user_site(runs, minor));
        sites.extend(base_sites);
    }
    // Listed at once first: an engine tars each folder in its own process, and the view
    // keeps what it listed, so the walk below reads from memory.
    for listed in futures_util::future::join_all(sites.iter().map(|site| files.list(site))).await {
        listed?;
    }
    for site in sites {
        add_site_folder(files, &site, &mut sys_path, warnings).await?;
    }
    Ok(sys_path)
}

/// The user site (`site.getusersitepackages`): under `PYTHONUSERBASE`, else under `HOME`
/// (the image's, else its user's from `/etc/passwd`), `.local`; none with
/// `PYTHONNOUSERSITE`.
fn user_site(runs: &Runs<'_>, minor: &str) -> Option<String> {
    let set = |name: &str| runs.env.get(name).filter(|value| !value.is_empty());
    if set("PYTHONNOUSERSITE").is_some() {
        return None;
    }
    let base = match set("PYTHONUSERBASE") {
        Some(base) => base.trim_end_matches('/').to_string(),
        None => {
            let home = set("HOME").map_or(runs.home, String::as_str);
            format!("{}/.local", home.trim_end_matches('/'))
        }
    };
    Some(format!("{base}/lib/python{minor}/site-packages"))
}

/// The `pyvenv.cfg` that `site` finds for an interpreter started as `invoked`: beside the
/// executable or one folder up, by the path that was started (a venv's `bin/python` is a
/// link to the base interpreter). Its resolved path and bytes.
pub(crate) async fn venv_config(
    files: &impl Files,
    invoked: &str,
) -> Result<Option<(String, Vec<u8>)>, ReadError> {
    let bin = parent(invoked);
    for folder in [bin.clone(), parent(&bin)] {
        let config = join(&folder, "pyvenv.cfg");
        if let Some(bytes) = files.read(&config).await? {
            let resolved = files
                .stat(&config)
                .await?
                .map_or(config, |stat| stat.resolved);
            return Ok(Some((resolved, bytes)));
        }
    }
    Ok(None)
}

/// `3.11.7` of `3.11.7.final.0`: the release, as the interpreter reports its version.
fn release_of(text: &str) -> String {
    let parts: Vec<&str> = text
        .trim()
        .split('.')
        .take_while(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        .take(3)
        .collect();
    if parts.is_empty() {
        text.trim().to_string()
    } else {
        parts.join(".")
    }
}

/// Whether `name`, in a site folder, is a `.pth` file `site` processes (hidden ones are
/// skipped, as CPython skips them).
pub(crate) fn is_pth(name: &str) -> bool {
    name.ends_with(".pth") && !name.starts_with('.')
}

/// `prefix/lib64/pythonX.Y/site-packages` (when the layout's `platlibdir` is `lib64`) and
/// `prefix/lib/pythonX.Y/site-packages`.
fn site_folders(prefix: &str, layout: &Layout) -> Vec<String> {
    let libdirs: &[&str] = if layout.lib64 {
        &["lib64", "lib"]
    } else {
        &["lib"]
    };
    let prefix = prefix.trim_end_matches('/');
    libdirs
        .iter()
        .map(|libdir| format!("{prefix}/{libdir}/python{}/site-packages", layout.minor))
        .collect()
}

/// `site.addsitedir`: the folder, when it is one, then its `.pth` files in sorted order
/// (hidden ones skipped): each line a folder (relative to the site folder) added when it
/// exists; `import` lines run code, which static capture never does (a warning says so).
async fn add_site_folder(
    files: &impl Files,
    site: &str,
    sys_path: &mut Vec<String>,
    warnings: &mut Vec<Warning>,
) -> Result<(), ReadError> {
    let Some(entries) = files.list(site).await? else {
        return Ok(());
    };
    let site = normalize(site);
    if !sys_path.contains(&site) {
        sys_path.push(site.clone());
    }
    for entry in entries {
        if !is_pth(&entry.name) {
            continue;
        }
        let path = join(&site, &entry.name);
        let Some(bytes) = files.read(&path).await? else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        let mut warned = false;
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if line.starts_with("import ") || line.starts_with("import\t") {
                if !warned {
                    warned = true;
                    warnings.push(Warning::new(
                        WarningCode::PthImport,
                        format!("`{path}` has an `import` line, which runs code when the interpreter starts: static capture does not run it"),
                    ));
                }
                continue;
            }
            let folder = normalize(&join(&site, line.trim_end()));
            if !sys_path.contains(&folder) && files.exists(&folder).await? {
                sys_path.push(folder);
            }
        }
    }
    Ok(())
}

/// Without a venv or a versioned interpreter name, the minor version is the
/// `lib/python3.X` folder under the prefix.
async fn find_minor(files: &impl Files, prefix: &str) -> Result<Option<String>, ReadError> {
    for minor in (6..=20).rev() {
        for libdir in ["lib", "lib64"] {
            let candidate = format!("{prefix}/{libdir}/python3.{minor}");
            if files.is_folder(&candidate).await? {
                return Ok(Some(format!("3.{minor}")));
            }
        }
    }
    Ok(None)
}

fn minor_of(version: &str) -> String {
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// Whether the file `name` in the folder `parent` is one the layout is read from: a venv's
/// `pyvenv.cfg`, an install's `include/pythonX.Y/patchlevel.h`.
pub(crate) fn is_layout_file(parent: &str, name: &str) -> bool {
    name == "pyvenv.cfg" || (name == "patchlevel.h" && parent.starts_with("python"))
}

/// `key = value` lines of `pyvenv.cfg`.
fn parse_pyvenv(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect()
}

/// `#define PY_VERSION "3.11.7"` in `patchlevel.h`.
fn patchlevel_version(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix("#define PY_VERSION"))
        .map(|rest| rest.trim().trim_matches('"').to_string())
}

/// For the fuzz targets (`src/fuzzing.rs`): `pyvenv.cfg` and `patchlevel.h`.
pub(crate) fn fuzz_layout_files(text: &str) {
    let _ = parse_pyvenv(text);
    let _ = patchlevel_version(text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_sources() {
        assert_eq!(
            patchlevel_version("/* x */\n#define PY_VERSION      \"3.11.7\"\n").as_deref(),
            Some("3.11.7")
        );
        let cfg = parse_pyvenv(
            "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11.2\n",
        );
        assert_eq!(cfg["version"], "3.11.2");
        // Keys as CPython reads them: lower-cased.
        assert_eq!(parse_pyvenv("Home = /x\n")["home"], "/x");
        assert_eq!(release_of("3.11.7.final.0"), "3.11.7");
        assert_eq!(release_of("3.12.1"), "3.12.1");
        assert!(is_pth("a.pth") && !is_pth(".hidden.pth") && !is_pth("a.PTH"));
    }

    #[test]
    fn a_venv_with_system_site_packages_comes_before_the_user_site_and_the_base() {
        use crate::capture::fs::{memory::MemoryFiles, Kind};
        use futures_util::FutureExt as _;
        let mut files = MemoryFiles::default();
        let venv = "/opt/venv/lib/python3.11/site-packages";
        let user = "/root/.local/lib/python3.11/site-packages";
        let base = "/usr/local/lib/python3.11/site-packages";
        for folder in [venv, user, base, "/extra"] {
            let (parent, name) = folder.rsplit_once('/').unwrap();
            files.add_entry(parent, name.to_string(), Kind::Folder);
            files.add_entry(folder, "keep".to_string(), Kind::File);
        }
        files.add_entry(base, "x.pth".to_string(), Kind::File);
        files.add_file(
            format!("{base}/x.pth"),
            b"# c\nimport os\n/extra\n/missing\n".to_vec(),
        );
        let layout = Layout {
            invoked: "/opt/venv/bin/python".into(),
            prefix: "/usr/local".into(),
            venv: Some(("/opt/venv".into(), parse_pyvenv("home = /usr/local/bin\n"))),
            minor: "3.11".into(),
            version: None,
            implementation: "cpython",
            debian: false,
            lib64: false,
        };
        let env = BTreeMap::new();
        let runs = Runs {
            env: &env,
            home: "/root",
            manager: None,
        };
        let mut warnings = Vec::new();
        let path = sys_path(&files, &layout, &runs, &mut warnings)
            .now_or_never()
            .unwrap()
            .unwrap();
        // No `include-system-site-packages` key is `true`; an `import` line is skipped
        // (warned once) and the lines after it still count.
        assert_eq!(path, vec![venv, user, base, "/extra"]);
        assert_eq!(warnings.len(), 1);
        let mut env = BTreeMap::new();
        env.insert("PYTHONNOUSERSITE".to_string(), "1".to_string());
        let runs = Runs {
            env: &env,
            home: "/root",
            manager: None,
        };
        let path = sys_path(&files, &layout, &runs, &mut warnings)
            .now_or_never()
            .unwrap()
            .unwrap();
        assert_eq!(path, vec![venv, base, "/extra"]);
    }

    proptest::proptest! {
        #[test]
        fn layout_files_never_panic(text in ".{0,400}") {
            let _ = parse_pyvenv(&text);
            let _ = patchlevel_version(&text);
        }
    }
}
