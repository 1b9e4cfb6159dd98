//! Headless Chromium driven by Playwright (`playwright-core`, pinned, from
//! the npm registry, installed once into the build directory): the dashboard
//! tests click through the sign-in as a person does. Debian's Chromium,
//! started as this machine's probe starts it (no background networking).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The pinned Playwright release.
pub const PLAYWRIGHT_VERSION: &str = "1.64.1";

/// Chromium on this machine, if installed.
pub fn chromium() -> Option<PathBuf> {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// Installs `playwright-core` into `<build dir>/playwright-<version>` unless
/// it is there; returns that folder. Built beside it and renamed into
/// place, so concurrent test processes never see half an install.
pub fn ensure_playwright() -> Result<PathBuf, String> {
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _one = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let dir = crate::aws::build_dir().join(format!("playwright-{PLAYWRIGHT_VERSION}"));
    let marker = |d: &Path| d.join("node_modules/playwright-core/package.json");
    if marker(&dir).exists() {
        return Ok(dir);
    }
    let tmp = crate::aws::build_dir().join(format!(
        "playwright-{PLAYWRIGHT_VERSION}.tmp-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let out = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(&tmp)
        .arg(format!("playwright-core@{PLAYWRIGHT_VERSION}"))
        .output()
        .map_err(|e| format!("npm (Node.js) is needed for the browser tests: {e}"))?;
    if !out.status.success() || !marker(&tmp).exists() {
        return Err(format!(
            "npm install playwright-core@{PLAYWRIGHT_VERSION} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if let Err(e) = std::fs::rename(&tmp, &dir) {
        // Another process won the race.
        let _ = std::fs::remove_dir_all(&tmp);
        if !marker(&dir).exists() {
            return Err(format!("{}: {e}", dir.display()));
        }
    }
    Ok(dir)
}

/// The driver: signs in (first with a wrong password when asked), waits
/// for the page to show data, takes a screenshot, prints JSON.
const DRIVER: &str = include_str!("browser_driver.cjs");

/// What one visit saw.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Visit {
    /// The page's DOM once it showed data.
    pub dom: String,
    /// The sign-in form's message after a wrong password, when tried.
    #[serde(default)]
    pub wrong_password: Option<String>,
    /// The data was hidden until the sign-in.
    pub dashboard_hidden_before_sign_in: bool,
    /// And stayed hidden after a wrong password.
    #[serde(default)]
    pub dashboard_hidden_after_wrong_password: Option<bool>,
}

/// A CSV the page let a person download.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Download {
    /// The file name the page suggested.
    pub name: String,
    /// Its text.
    pub text: String,
}

/// What the everyday path showed ([`explore`]).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Exploration {
    /// The first view's DOM.
    pub dom: String,
    /// The per-flow table, exported.
    pub flows_csv: Download,
    /// The time series, exported.
    pub series_csv: Download,
    /// The first view's bucket.
    pub bucket: String,
    /// Flow ids in table order, first view (most sessions first).
    pub table_ids: Vec<String>,
    /// After a click on "Containment %": the sort, and the flow ids in order.
    pub sorted_by: String,
    #[allow(missing_docs)]
    pub sorted_ids: Vec<String>,
    /// That column's definition (its tooltip).
    pub definition: Option<String>,
    /// Per-point tooltips on the sessions chart.
    pub tooltips: u64,
    /// After picking a flow by name: its id, its sessions, the status line.
    pub picked_flow: String,
    #[allow(missing_docs)]
    pub picked_started: i64,
    #[allow(missing_docs)]
    pub picked_scope: String,
    /// After "7 days": the range, its bucket, its sessions.
    pub range: String,
    #[allow(missing_docs)]
    pub range_bucket: String,
    #[allow(missing_docs)]
    pub range_started: i64,
    /// The page's address at the end (its state is in the query).
    pub url: String,
}

/// Signs in at `url` (`width` px wide), takes `screenshots` (the first view
/// and the last), then exports both CSVs, sorts the table by containment,
/// picks the flow named `flow_name` and switches to the 7-day preset.
pub fn explore(
    url: &str,
    user: &str,
    password: &str,
    width: u32,
    screenshots: (&Path, &Path),
    flow_name: &str,
) -> Result<Exploration, String> {
    let out = run_driver(
        url,
        user,
        password,
        false,
        width,
        Some(screenshots.0),
        &[
            ("EXPLORE", "1"),
            ("FLOW_NAME", flow_name),
            ("SCREENSHOT_AFTER", &screenshots.1.display().to_string()),
        ],
    )?;
    serde_json::from_slice(&out).map_err(|e| format!("driver output: {e}"))
}

/// Opens `url`, signs in as `user`, and returns the page once it shows data.
pub fn visit(
    url: &str,
    user: &str,
    password: &str,
    wrong_first: bool,
    width: u32,
    screenshot: Option<&Path>,
) -> Result<Visit, String> {
    let out = run_driver(url, user, password, wrong_first, width, screenshot, &[])?;
    serde_json::from_slice(&out).map_err(|e| format!("driver output: {e}"))
}

fn run_driver(
    url: &str,
    user: &str,
    password: &str,
    wrong_first: bool,
    width: u32,
    screenshot: Option<&Path>,
    extra: &[(&str, &str)],
) -> Result<Vec<u8>, String> {
    let bin = chromium().ok_or("chromium is not installed")?;
    let pw = ensure_playwright()?;
    let script =
        std::env::temp_dir().join(format!("va-driver-{}.cjs", uuid::Uuid::new_v4().simple()));
    std::fs::write(&script, DRIVER).map_err(|e| e.to_string())?;
    let out = Command::new("node")
        .arg(&script)
        .env("PW_DIR", &pw)
        .env("CHROMIUM", &bin)
        .env("URL", url)
        .env("VA_USER", user)
        .env("VA_PASSWORD", password)
        .env("WRONG_FIRST", if wrong_first { "1" } else { "0" })
        .env("WIDTH", width.to_string())
        .env(
            "SCREENSHOT",
            screenshot
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        )
        .envs(extra.iter().copied())
        .output()
        .map_err(|e| format!("node: {e}"));
    let _ = std::fs::remove_file(&script);
    let out = out?;
    if !out.status.success() {
        return Err(format!(
            "the browser driver failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out.stdout)
}
