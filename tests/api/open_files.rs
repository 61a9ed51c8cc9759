//! `trustmail serve` against the open-file limit (startup/open_files.rs), run under `prlimit`:
//! a hard limit too low for `http.max_connections` stops it at start with exit code 2 and what
//! to change; a low soft limit under a high enough hard one is raised.

use std::{
    path::Path,
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

/// `trustmail serve` on a fresh data directory with the open-file limit `soft:hard`.
fn serve_under(dir: &Path, soft: u64, hard: u64, max_connections: u32) -> Command {
    let mut command = Command::new("prlimit");
    command
        .arg(format!("--nofile={soft}:{hard}"))
        .arg(env!("CARGO_BIN_EXE_trustmail"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("TRUSTMAIL_LISTEN", "127.0.0.1:0")
        .env("TRUSTMAIL_FEEDBACK__LISTEN", "127.0.0.1:0")
        .env(
            "TRUSTMAIL_DATABASE_URL",
            format!("sqlite://{}", dir.join("trustmail.db").display()),
        )
        .env("TRUSTMAIL_SECRETS__MASTER_KEY_FILE", dir.join("master.key"))
        .env("TRUSTMAIL_DNS__RESOLVERS", "127.0.0.1:9")
        .env(
            "TRUSTMAIL_HTTP__MAX_CONNECTIONS",
            max_connections.to_string(),
        )
        .stdin(Stdio::null());
    command
}

/// This process's hard open-file limit: what `prlimit` may set without privilege.
fn hard_limit() -> u64 {
    rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(1 << 20)
}

#[test]
fn a_hard_limit_below_max_connections_stops_the_server_with_what_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let Output { status, stderr, .. } = serve_under(dir.path(), 600, 600, 1000).output().unwrap();
    let stderr = String::from_utf8_lossy(&stderr);
    assert_eq!(status.code(), Some(2), "{stderr}");
    for part in [
        "http.max_connections = 1000 needs 1256 open files",
        "(RLIMIT_NOFILE) is 600",
        "at most 344",
        "LimitNOFILE=1256",
    ] {
        assert!(stderr.contains(part), "{part:?} not in {stderr}");
    }
    // Stopped before the store: nothing was created.
    assert!(!dir.path().join("trustmail.db").exists());
}

/// The process's soft and hard open-file limits as /proc shows them.
fn limits_of(child: &Child) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

#[test]
fn a_low_soft_limit_is_raised_to_the_hard_one() {
    let hard = hard_limit();
    if hard < 1300 {
        eprintln!("skipped: the hard open-file limit here ({hard}) is below what the test needs");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let stderr_path = dir.path().join("serve.stderr");
    let mut child = serve_under(dir.path(), 600, hard, 1000)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let mut raised = false;
    for _ in 0..300 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "serve exited ({status}): {}",
                std::fs::read_to_string(&stderr_path).unwrap()
            );
        }
        // Logged once raised; the store and listeners come after.
        let log = std::fs::read_to_string(&stderr_path).unwrap();
        if log.contains("raised the soft open-file limit") {
            raised = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let limits = limits_of(&child);
    let _ = child.kill();
    let _ = child.wait();
    assert!(raised, "{}", std::fs::read_to_string(&stderr_path).unwrap());
    assert_eq!(limits, (hard, hard));
}
