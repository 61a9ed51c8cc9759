//! Baseline for `bench/get_domain.sh`: the cheapest axum 0.8 server that answers one JSON route.
//!
//! `cargo run --release --example bare_axum -- PORT [BODY_BYTES]` serves `GET /baseline` on
//! 127.0.0.1:PORT with a fixed `application/json` body of exactly BODY_BYTES bytes (default 900;
//! `BARE_AXUM_BODY_BYTES` is read when the argument is absent), so the benchmark compares trustmail's
//! GET-one-domain against the same payload size with no auth, no store and no middleware.

use std::{env, net::SocketAddr, process::ExitCode};

use axum::{Router, http::header, response::IntoResponse, routing::get};

const DEFAULT_BODY_BYTES: usize = 900;

/// A JSON object `{"pad":"xxxx…"}` padded to exactly `size` bytes (at least the 10 bytes of `{"pad":""}`).
fn body_of_size(size: usize) -> String {
    let empty = serde_json::json!({ "pad": "" }).to_string();
    let pad = "x".repeat(size.saturating_sub(empty.len()));
    serde_json::json!({ "pad": pad }).to_string()
}

fn parse_args() -> Result<(u16, usize), String> {
    let mut args = env::args().skip(1);
    let port = args
        .next()
        .ok_or("usage: bare_axum PORT [BODY_BYTES]")?
        .parse::<u16>()
        .map_err(|e| format!("PORT: {e}"))?;
    let size = match args
        .next()
        .or_else(|| env::var("BARE_AXUM_BODY_BYTES").ok())
    {
        Some(s) => s.parse::<usize>().map_err(|e| format!("BODY_BYTES: {e}"))?,
        None => DEFAULT_BODY_BYTES,
    };
    Ok((port, size))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (port, size) = match parse_args() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let body: &'static str = Box::leak(body_of_size(size).into_boxed_str());
    let app =
        Router::new().route(
            "/baseline",
            get(move || async move {
                ([(header::CONTENT_TYPE, "application/json")], body).into_response()
            }),
        );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bind {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "bare_axum: GET http://{addr}/baseline -> {} bytes",
        body.len()
    );
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("serve: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
