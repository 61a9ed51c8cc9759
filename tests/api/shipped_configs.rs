//! Every configuration file the repository ships starts as shipped: the real binary serves
//! `/healthz` with it, only its listener and database moved to a scratch place.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// `config.example.toml` and every `examples/*.toml`.
fn shipped_configs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut configs = vec![root.join("config.example.toml")];
    let mut examples: Vec<PathBuf> = std::fs::read_dir(root.join("examples"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    examples.sort();
    assert!(!examples.is_empty(), "examples/ ships a configuration");
    configs.extend(examples);
    configs
}

/// A port nobody listens on just now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn every_shipped_configuration_starts_and_serves_healthz() {
    for config in shipped_configs() {
        // Relative paths in the file (the master key file) land in the scratch directory.
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut server = Server(
            Command::new(env!("CARGO_BIN_EXE_trustmail"))
                .arg("--config")
                .arg(&config)
                .arg("serve")
                .current_dir(dir.path())
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("TRUSTMAIL_LISTEN", format!("127.0.0.1:{port}"))
                .env("TRUSTMAIL_FEEDBACK__LISTEN", "127.0.0.1:0")
                .env(
                    "TRUSTMAIL_DATABASE_URL",
                    format!("sqlite://{}", dir.path().join("trustmail.db").display()),
                )
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let url = format!("http://127.0.0.1:{port}/healthz");
        let mut healthy = false;
        for _ in 0..300 {
            if let Some(status) = server.0.try_wait().unwrap() {
                let mut stderr = String::new();
                std::io::Read::read_to_string(server.0.stderr.as_mut().unwrap(), &mut stderr)
                    .unwrap();
                panic!("{} does not start ({status}):\n{stderr}", config.display());
            }
            if let Ok(response) = reqwest::get(&url).await {
                assert_eq!(response.status(), reqwest::StatusCode::OK, "{url}");
                healthy = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(healthy, "{} never served {url}", config.display());
    }
}
