//! The official Genesys Cloud Python SDK (`PureCloudPlatformClientV2`,
//! pinned in `testkit/conformance/requirements.lock`) and the conformance
//! script that drives the simulator with it (`testkit/conformance/
//! sdk_conformance.py`): every response must match the SDK's models.
//!
//! The SDK is installed on first use into `<build dir>/genesys-sdk-venv-<version>`
//! with the same installer as moto (built beside, then renamed).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::aws::{VenvError, ensure_venv};

/// The SDK release the conformance check is pinned to.
pub const SDK_VERSION: &str = "269.0.0";

/// Where the script and its lock file live.
pub fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance")
}

/// Installs the SDK (exact versions from the lock file) unless it is there;
/// returns the virtualenv's `python`.
pub fn ensure_sdk_installed() -> Result<PathBuf, VenvError> {
    let lock = conformance_dir().join("requirements.lock");
    let lock = lock
        .to_str()
        .ok_or_else(|| VenvError::Install(format!("{} is not a UTF-8 path", lock.display())))?;
    ensure_venv(
        &format!("genesys-sdk-venv-{SDK_VERSION}"),
        &format!("the Genesys Cloud Python SDK PureCloudPlatformClientV2 {SDK_VERSION}"),
        &["-r", lock],
    )
}

/// What one run of the conformance script printed and how it exited
/// (0 all checks passed, 1 a check failed, 2 SDK not importable, 3 bad scenario).
#[derive(Debug, Clone)]
pub struct ConformanceRun {
    pub exit_code: Option<i32>,
    pub output: String,
}

impl ConformanceRun {
    /// The `FAIL ...` lines (with their indented continuation lines).
    pub fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for line in self.output.lines() {
            if line.starts_with("FAIL") {
                out.push(line.to_string());
            } else if line.starts_with("       ")
                && let Some(last) = out.last_mut()
            {
                last.push('\n');
                last.push_str(line);
            }
        }
        out
    }
}

/// Writes `scenario` next to a temporary file and runs the script on it
/// (blocking; call from `spawn_blocking` when a simulator runs on the same runtime).
pub fn run_conformance(scenario: &serde_json::Value) -> Result<ConformanceRun, VenvError> {
    let python = ensure_sdk_installed()?;
    let dir = crate::aws::build_dir().join("tmp");
    std::fs::create_dir_all(&dir).map_err(|e| VenvError::Install(e.to_string()))?;
    let file = dir.join(format!(
        "conformance-scenario-{}-{}.json",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::write(&file, scenario.to_string()).map_err(|e| VenvError::Install(e.to_string()))?;
    let out = Command::new(&python)
        .arg(conformance_dir().join("sdk_conformance.py"))
        .arg(&file)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| VenvError::Install(format!("running {}: {e}", python.display())));
    let _ = std::fs::remove_file(&file);
    let out = out?;
    let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(ConformanceRun {
        exit_code: out.status.code(),
        output,
    })
}
