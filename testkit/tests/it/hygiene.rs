//! No test leaves a process behind: a child test process that starts moto and
//! then panics must take moto down with it.

use std::process::Command;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "VA_HYGIENE_CHILD";

/// Runs only as the child of the test below.
#[test]
fn hygiene_child_starts_moto_then_panics() {
    if std::env::var(CHILD_ENV).is_err() {
        return;
    }
    match testkit::aws::endpoint().expect("moto starts") {
        testkit::aws::Endpoint::Moto { pid, .. } => println!("MOTO_PID={pid}"),
        other => println!("NOT_MOTO {other:?}"),
    }
    panic!("the child test panics on purpose");
}

fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // A zombie has exited; it only waits for a reaper.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn moto_dies_with_a_test_process_that_panicked() {
    if std::env::var("AWS_ENDPOINT_URL").is_ok() || std::env::var("VA_TEST_REAL_AWS").is_ok() {
        return; // moto is not ours to start
    }
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new(exe)
        .args([
            "--exact",
            "hygiene::hygiene_child_starts_moto_then_panics",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .expect("child runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "the child test must have failed: {stdout}"
    );
    let pid: u32 = stdout
        .lines()
        .find_map(|l| l.split_once("MOTO_PID=").map(|(_, p)| p))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("child printed no moto pid: {stdout}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while running(pid) {
        assert!(
            Instant::now() < deadline,
            "moto (pid {pid}) outlived its test process"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
