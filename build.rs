//! Tells the test suite which outside tools this machine lacks, so that a
//! test needing one is *ignored* — counted as such in `cargo test`'s
//! summary, with what it needs — instead of passing without having run:
//!
//! - `ph_no_browser`: Chromium (`/usr/bin/chromium` or `$CHROMIUM`), `node`,
//!   or `tests/browser/node_modules/playwright-core` or `…/axe-core` (the
//!   accessibility scan) is missing (`tests/browser.rs`, `tests/browser_cc.rs`,
//!   `tests/agent_page.rs`, `tests/screens.rs`, `tests/web_security.rs`);
//! - `ph_no_haproxy`: `haproxy` is not on the `PATH` (`tests/haproxy.rs`);
//! - `ph_no_node`: `node` is not on the `PATH` (`tests/client_js.rs`);
//! - `ph_no_kubeval`: `kubernetes-validate` (PyPI) is not on the `PATH`, or
//!   `node` or `tests/kubernetes/node_modules` (the CRDs' schemas) is
//!   missing (`tests/deploy.rs`, the schema check of `deploy/kubernetes/`).
//!
//! With `CI` set (`.ci/run` exports it) nothing is ever ignored: a missing
//! tool fails its test there. The script reruns when `CI`, `CHROMIUM` or a
//! directory where a tool would appear changes (installing a tool makes the
//! next `cargo test` run its tests). Nothing here affects the hub itself.

use std::env;
use std::path::{Path, PathBuf};

fn path_dirs() -> Vec<PathBuf> {
    env::var_os("PATH")
        .map(|p| env::split_paths(&p).filter(|d| d.is_dir()).collect())
        .unwrap_or_default()
}

fn on_path(dirs: &[PathBuf], name: &str) -> bool {
    dirs.iter().any(|d| d.join(name).is_file())
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(ph_no_browser, ph_no_haproxy, ph_no_node, ph_no_kubeval)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed=CHROMIUM");
    let dirs = path_dirs();
    for d in &dirs {
        println!("cargo::rerun-if-changed={}", d.display());
    }
    let manifest = env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let browser_dir = manifest
        .as_deref()
        .unwrap_or(Path::new("."))
        .join("tests/browser");
    let playwright = browser_dir.join("node_modules/playwright-core/package.json");
    // A missing file would make cargo rerun this script on every build:
    // watch it when it is there, else the directory it would appear in.
    if playwright.is_file() {
        println!("cargo::rerun-if-changed={}", playwright.display());
    } else if browser_dir.is_dir() {
        println!("cargo::rerun-if-changed={}", browser_dir.display());
    }
    let kube_dir = manifest
        .as_deref()
        .unwrap_or(Path::new("."))
        .join("tests/kubernetes");
    let crd_models =
        kube_dir.join("node_modules/@kubernetes-models/prometheus-operator/package.json");
    if crd_models.is_file() {
        println!("cargo::rerun-if-changed={}", crd_models.display());
    } else if kube_dir.is_dir() {
        println!("cargo::rerun-if-changed={}", kube_dir.display());
    }
    let chromium = env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if let Some(parent) = chromium.parent().filter(|p| p.is_dir()) {
        println!("cargo::rerun-if-changed={}", parent.display());
    }

    if env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        return; // CI: every test runs, and fails if its tools are missing.
    }
    let node = on_path(&dirs, "node");
    let mut lacking = Vec::new();
    if !chromium.exists() {
        lacking.push("chromium");
    }
    if !node {
        lacking.push("node");
    }
    if !playwright.is_file() {
        lacking.push("playwright-core (npm ci --prefix tests/browser)");
    }
    if !browser_dir
        .join("node_modules/axe-core/package.json")
        .is_file()
    {
        lacking.push("axe-core (npm ci --prefix tests/browser)");
    }
    if !lacking.is_empty() {
        println!("cargo::rustc-cfg=ph_no_browser");
        println!(
            "cargo::warning=browser tests will be ignored: no {}",
            lacking.join(", no ")
        );
    }
    if !on_path(&dirs, "haproxy") {
        println!("cargo::rustc-cfg=ph_no_haproxy");
        println!("cargo::warning=HAProxy tests will be ignored: no haproxy on the PATH");
    }
    if !node {
        println!("cargo::rustc-cfg=ph_no_node");
        println!("cargo::warning=the client library's test will be ignored: no node on the PATH");
    }
    let mut lacking = Vec::new();
    if !on_path(&dirs, "kubernetes-validate") {
        lacking.push("kubernetes-validate (pip install kubernetes-validate)");
    }
    if !node {
        lacking.push("node");
    }
    if !crd_models.is_file() {
        lacking.push("tests/kubernetes/node_modules (npm ci --prefix tests/kubernetes)");
    }
    if !lacking.is_empty() {
        println!("cargo::rustc-cfg=ph_no_kubeval");
        println!(
            "cargo::warning=the Kubernetes manifests' schema test will be ignored: no {}",
            lacking.join(", no ")
        );
    }
}
