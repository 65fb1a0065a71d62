//! Static capture of an image (`--no-exec`, an image without Python, or one read from its
//! layers): the platform, the interpreter and its site read from the image's files, with
//! nothing from the image run.

use super::{unreadable, Chosen, Files, Inside};
use crate::capture::fs::{Files as _, ReadError};
use crate::capture::platform;
use crate::capture::read::conda;
use crate::capture::read::distributions::read_sys_path;
use crate::capture::read::facts::Facts;
use crate::capture::read::imports::Modules;
use crate::capture::read::site::{self as static_python, StaticPython};
use crate::capture::read::system;
use crate::error::{Error, Result};
use crate::lock::{CaptureMode, Numerics, Platform, SystemPackage};
use crate::settings::Settings;
use crate::warning::{Warning, WarningCode};

/// What static capture reads besides the interpreter.
pub(super) struct Inputs<'a> {
    pub(super) files: Files<'a>,
    pub(super) reference: &'a str,
    pub(super) facts: &'a Facts,
    pub(super) system_packages: &'a [SystemPackage],
}

/// The platform from the image's files: `os-release`, and libc from the system packages.
async fn read_platform(
    files: Files<'_>,
    facts: &Facts,
    system_packages: &[SystemPackage],
) -> Result<Platform, ReadError> {
    let [first, second] = system::OS_RELEASE;
    let os_release = match files.read(first).await? {
        Some(bytes) => Some(bytes),
        None => files.read(second).await?,
    };
    let (libc, libc_version) = system::libc_of(system_packages);
    let os_release = os_release.map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
    Ok(platform::platform(
        &facts.os,
        &facts.arch,
        libc,
        libc_version,
        os_release.as_deref(),
    ))
}

pub(super) async fn from_files(
    inputs: &Inputs<'_>,
    chosen: Option<&Chosen>,
    settings: &Settings,
) -> Result<Inside> {
    let Inputs {
        files,
        reference,
        facts,
        system_packages,
    } = *inputs;
    let unreadable = |error| unreadable(reference, error);
    let platform = read_platform(files, facts, system_packages)
        .await
        .map_err(unreadable)?;
    let mut inside = Inside {
        conda_packages: Vec::new(),
        mode: CaptureMode::Static,
        python: None,
        packages: Vec::new(),
        pth_files: Vec::new(),
        platform,
        models: Vec::new(),
        system_packages: Vec::new(),
        others: Vec::new(),
        warnings: Vec::new(),
        notes: Vec::new(),
        binaries: Vec::new(),
        modules: Modules::default(),
        probed: None,
        numerics: Numerics::default(),
        ran: None,
    };
    let Some(chosen) = chosen else {
        inside.warnings.push(Warning::new(
            WarningCode::NoPython,
            format!("image `{reference}` has no `python3` or `python` on its PATH: captured without Python"),
        ));
        return Ok(inside);
    };
    let system_python = system::system_python_version(system_packages);
    let home = system::home_of(&files, facts.config.user.as_deref())
        .await
        .map_err(unreadable)?;
    let runs = static_python::Runs {
        env: &facts.env,
        home: &home,
        manager: system_packages.first().map(|p| p.manager.as_str()),
    };
    let read = static_python::read_python(&files, &chosen.path, &runs, system_python.as_deref())
        .await
        .map_err(unreadable)?;
    let Some(found_python) = read else {
        if settings.requested_image_python().is_some() {
            return Err(Error::ImagePython {
                path: chosen.path.clone(),
                reference: reference.to_string(),
                detail: "its files do not say which Python it is".to_string(),
            });
        }
        inside.warnings.push(Warning::new(
            WarningCode::NoPython,
            format!(
                "`{}` in image `{reference}` does not look like a Python install: captured without Python",
                chosen.path
            ),
        ));
        return Ok(inside);
    };
    add_site(&mut inside, &files, found_python)
        .await
        .map_err(unreadable)?;
    Ok(inside)
}

/// The distributions and conda packages of the Python static capture found.
async fn add_site(
    inside: &mut Inside,
    files: &Files<'_>,
    found_python: StaticPython,
) -> Result<(), ReadError> {
    let found = read_sys_path(files, &found_python.python.sys_path).await?;
    inside.warnings.extend(found_python.warnings);
    inside.warnings.extend(found.warnings);
    let prefixes: Vec<&str> = [
        &found_python.python.prefix,
        &found_python.python.base_prefix,
    ]
    .into_iter()
    .flatten()
    .map(String::as_str)
    .collect();
    inside.conda_packages = conda::read_prefixes(files, &prefixes, &mut inside.warnings).await?;
    inside.python = Some(found_python.python);
    inside.binaries = found.binaries;
    inside.modules = found.modules;
    inside.packages = found.packages;
    inside.pth_files = found.pth_files;
    Ok(())
}
