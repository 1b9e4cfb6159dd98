//! Ctrl-C stops everything local-stack started: no moto, no simulator left.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every descendant of `pid` (via /proc/<pid>/task/*/children).
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}

fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

#[test]
fn ctrl_c_stops_everything_it_started() {
    if std::env::var_os("AWS_ENDPOINT_URL").is_some() {
        return; // then moto is not ours to start
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_local-stack"))
        .args(["--minutes", "60", "--containers", "5"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("local-stack starts");
    let pid = child.id();
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    // The dashboard line comes once moto, the simulator and the tables are up.
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.expect("line");
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("dashboard at") {
            break;
        }
    }
    assert!(
        seen.contains("dashboard at"),
        "local-stack did not come up: {seen}"
    );
    let started = descendants(pid);
    assert!(!started.is_empty(), "moto runs as a child process");
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("exits");
    assert!(
        !exit.success(),
        "an interrupted run does not report success"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    for p in started {
        while running(p) {
            assert!(
                Instant::now() < deadline,
                "process {p} outlived local-stack"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
