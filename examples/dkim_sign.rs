//! DKIM signing rate for `bench/dkim_sign.sh`: trustmail's `mail::dkim::Signer::sign` against the
//! raw aws-lc-rs signature operation over the same bytes, RSA-2048 and Ed25519, 2 KB and 50 KB.
//!
//! ```text
//! dkim_sign setup   --dir DIR
//! dkim_sign measure --dir DIR [--seconds 0.5] [--rounds 1]
//! ```
//!
//! `setup` makes one key pair per algorithm with `mail::dkim::generate_key` (as trustmail makes
//! its selectors' keys) and two messages with `mail::compose` (as `POST …/messages` composes
//! them: From, To, Cc, Reply-To, Subject, Date, Message-ID, MIME-Version and a
//! multipart/alternative text + HTML body, padded to 2 KB and 50 KB). It writes, for the
//! dkimpy baseline (`bench/dkim_sign_dkimpy.py`) to sign the same messages with the same keys:
//! - `DIR/rsa2048.der` (PKCS#1) and `DIR/rsa2048.pem`, `DIR/ed25519.der` (PKCS#8) and
//!   `DIR/ed25519.seed` (the 32-byte seed, base64: dkimpy's form);
//! - `DIR/rsa2048.txt`, `DIR/ed25519.txt`: the DKIM key records (`v=DKIM1; k=…; p=…`);
//! - `DIR/msg-2k.eml`, `DIR/msg-50k.eml`: the messages, CRLF line ends;
//! - `DIR/msg-*.{rsa2048,ed25519}.signed.eml`: each message with trustmail's signature in
//!   front, for the script to verify with dkimpy (that the signatures are valid, and that both
//!   sides sign the same thing).
//!
//! `measure` times, per case (algorithm × message), in `--rounds` rounds that alternate the sides,
//! each side for `--seconds` on this one thread:
//! - `trustmail`: `Signer::sign(message)` (parsed once; relaxed/relaxed over `SIGNED_HEADERS`,
//!   the `DKIM-Signature` header as a string);
//! - `raw`: what the DKIM signature costs the crypto library: SHA-256 (aws-lc-rs) of the body as
//!   it is (no canonicalisation), then the signature over the header block a DKIM signature
//!   signs: the message's header section followed by the `DKIM-Signature` header trustmail
//!   produces with `b=` empty (the same bytes within a few, as the messages carry only signed
//!   headers and relaxed canonicalisation changes little). RSA: `RsaKeyPair::sign(&RSA_PKCS1_SHA256,
//!   …)` over that block (which hashes it); Ed25519 (RFC 8463): SHA-256 of the block, then
//!   `Ed25519KeyPair::sign` over the 32-byte digest;
//! - `sign_only`: the signature over the header block alone, no body hash.
//!
//! It prints one `RESULT` line per case and round with signs/s of each side.

use std::{
    fmt::Write as _,
    fs,
    hint::black_box,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use aws_lc_rs::{
    digest::{SHA256, digest},
    rand::SystemRandom,
    signature::{Ed25519KeyPair, RSA_PKCS1_SHA256, RsaKeyPair},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use clap::{Parser, Subcommand};
use trustmail::{
    domain::DkimAlgorithm,
    mail::{MailRoute, Message, compose, dkim, mailbox, mailboxes},
};

const DOMAIN: &str = "auth.shopco.test";
const SELECTOR: &str = "bench1";
/// Algorithm names in file names and RESULT lines, and the algorithm.
const ALGORITHMS: [(&str, DkimAlgorithm); 2] = [
    ("rsa2048", DkimAlgorithm::Rsa2048),
    ("ed25519", DkimAlgorithm::Ed25519),
];
/// Message names and their sizes in bytes (before the signature).
const MESSAGES: [(&str, usize); 2] = [("2k", 2 * 1024), ("50k", 50 * 1024)];

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make the keys and messages, write them to DIR.
    Setup {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Time trustmail's signer and the raw signature on the keys and messages of DIR.
    Measure {
        #[arg(long)]
        dir: PathBuf,
        /// Per side, case and round.
        #[arg(long, default_value_t = 0.5)]
        seconds: f64,
        #[arg(long, default_value_t = 1)]
        rounds: u32,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Setup { dir } => setup(&dir),
        Command::Measure {
            dir,
            seconds,
            rounds,
        } => measure(&dir, Duration::from_secs_f64(seconds), rounds),
    }
}

// ---------------------------------------------------------------------------------------------------
// setup

/// A message as `POST …/messages` would compose it, its text and HTML parts grown until the whole
/// is at least `size` bytes.
fn message_of_size(size: usize) -> anyhow::Result<String> {
    let opening = "Thank you for your order 4711. Your parcel leaves our warehouse today and \
                   should reach you within two working days; the tracking link follows below. ";
    let line = "One item packed, checked. ";
    let mut lines = 1usize;
    loop {
        let text = format!("{opening}{}", line.repeat(lines));
        let html = format!(
            "<html><body><p>{opening}</p><p>{}</p></body></html>",
            line.repeat(lines)
        );
        let message = Message {
            from: mailbox("from", &format!("Shop Co <noreply@{DOMAIN}>"))?,
            to: mailboxes("to", &["Ann Example <ann@example.com>".into()])?,
            cc: mailboxes("cc", &["orders@example.com".into()])?,
            reply_to: Some(mailbox("replyTo", &format!("support@{DOMAIN}"))?),
            subject: "Your order 4711 ships today".into(),
            text: Some(text),
            html: Some(html),
        };
        let composed = compose(&message, None, MailRoute::Region("us-east-1".into()))?;
        if composed.message.len() >= size {
            return Ok(composed.message);
        }
        // Grow by what is missing, estimated from the size so far (each line lands twice, in
        // the text and the HTML part, plus quoted-printable soft breaks).
        let missing = size - composed.message.len();
        lines += (missing / (2 * line.len() + 8)).max(1);
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    let _ = writeln!(out, "-----END {label}-----");
    out
}

/// The 32-byte seed inside an Ed25519 PKCS#8 document (`OCTET STRING { OCTET STRING (32) }`).
fn ed25519_seed(pkcs8: &[u8]) -> anyhow::Result<&[u8]> {
    let at = pkcs8
        .windows(4)
        .position(|w| w == [0x04, 0x22, 0x04, 0x20])
        .context("no Ed25519 seed in the PKCS#8 document")?;
    pkcs8.get(at + 4..at + 36).context("truncated Ed25519 seed")
}

fn setup(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir)?;
    let mut messages = Vec::new();
    for (name, size) in MESSAGES {
        let message = message_of_size(size)?;
        fs::write(dir.join(format!("msg-{name}.eml")), &message)?;
        println!("msg-{name}.eml: {} bytes", message.len());
        messages.push((name, message));
    }
    for (name, algorithm) in ALGORITHMS {
        let key = dkim::generate_key(algorithm)?;
        fs::write(dir.join(format!("{name}.der")), &key.private_der)?;
        let k = match algorithm {
            DkimAlgorithm::Rsa2048 => {
                fs::write(
                    dir.join(format!("{name}.pem")),
                    pem("RSA PRIVATE KEY", &key.private_der),
                )?;
                "rsa"
            }
            DkimAlgorithm::Ed25519 => {
                let seed = ed25519_seed(&key.private_der)?;
                fs::write(dir.join(format!("{name}.seed")), STANDARD.encode(seed))?;
                "ed25519"
            }
        };
        fs::write(
            dir.join(format!("{name}.txt")),
            format!("v=DKIM1; k={k}; p={}", key.public_key),
        )?;
        let signer = dkim::Signer::new(algorithm, &key.private_der, DOMAIN, SELECTOR)?;
        for (message_name, message) in &messages {
            let signature = signer.sign(message.as_bytes())?;
            fs::write(
                dir.join(format!("msg-{message_name}.{name}.signed.eml")),
                format!("{signature}{message}"),
            )?;
        }
        println!("{name}: key made, messages signed");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------
// measure

enum RawKey {
    Rsa(RsaKeyPair, SystemRandom),
    Ed25519(Ed25519KeyPair),
}

/// The raw baseline's input: the body, and the header block a DKIM signature signs.
struct RawInput {
    body: Vec<u8>,
    header_block: Vec<u8>,
}

impl RawInput {
    fn new(message: &str, signature_header: &str) -> anyhow::Result<Self> {
        let split = message
            .find("\r\n\r\n")
            .context("the message has no header/body separator")?;
        // The DKIM-Signature header as it is signed: everything up to and including `b=`.
        let b = signature_header
            .rmatch_indices("b=")
            .map(|(at, _)| at)
            .find(|&at| {
                at > 0
                    && matches!(
                        signature_header.as_bytes().get(at - 1),
                        Some(b' ' | b'\t' | b';')
                    )
            })
            .context("no b= tag in the DKIM-Signature header")?;
        let mut header_block = message.as_bytes()[..split + 2].to_vec();
        header_block.extend_from_slice(&signature_header.as_bytes()[..b + 2]);
        Ok(Self {
            body: message.as_bytes()[split + 4..].to_vec(),
            header_block,
        })
    }
}

fn sign_header_block(key: &RawKey, block: &[u8], out: &mut [u8]) -> anyhow::Result<usize> {
    match key {
        RawKey::Rsa(pair, rng) => {
            pair.sign(&RSA_PKCS1_SHA256, rng, block, out)
                .map_err(|e| anyhow::anyhow!("RSA sign: {e}"))?;
            Ok(out[0] as usize)
        }
        RawKey::Ed25519(pair) => {
            let digest = digest(&SHA256, block);
            Ok(pair.sign(digest.as_ref()).as_ref()[0] as usize)
        }
    }
}

/// Signatures per second of `op` run for `duration` (at least 3 runs).
fn rate(duration: Duration, mut op: impl FnMut() -> anyhow::Result<usize>) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut count = 0u64;
    let mut sink = 0usize;
    while count < 3 || started.elapsed() < duration {
        sink = sink.wrapping_add(op()?);
        count += 1;
    }
    black_box(sink);
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

fn measure(dir: &Path, duration: Duration, rounds: u32) -> anyhow::Result<()> {
    let read = |name: &str| fs::read(dir.join(name)).with_context(|| format!("{name} in {dir:?}"));
    for round in 1..=rounds {
        for (name, algorithm) in ALGORITHMS {
            let der = read(&format!("{name}.der"))?;
            let signer = dkim::Signer::new(algorithm, &der, DOMAIN, SELECTOR)?;
            let raw = match algorithm {
                DkimAlgorithm::Rsa2048 => RawKey::Rsa(
                    RsaKeyPair::from_der(&der).map_err(|e| anyhow::anyhow!("RSA key: {e}"))?,
                    SystemRandom::new(),
                ),
                DkimAlgorithm::Ed25519 => RawKey::Ed25519(
                    Ed25519KeyPair::from_pkcs8(&der)
                        .map_err(|e| anyhow::anyhow!("Ed25519 key: {e}"))?,
                ),
            };
            let mut out = vec![0u8; 512];
            if let RawKey::Rsa(pair, _) = &raw {
                out.truncate(pair.public_modulus_len());
            }
            for (message_name, _) in MESSAGES {
                let message = String::from_utf8(read(&format!("msg-{message_name}.eml"))?)?;
                let header = signer.sign(message.as_bytes())?;
                let input = RawInput::new(&message, &header)?;
                if input.header_block.len() < 300 {
                    bail!("header block of {} bytes", input.header_block.len());
                }
                let trustmail = rate(duration, || {
                    Ok(signer.sign(black_box(message.as_bytes()))?.len())
                })?;
                let raw_rate = rate(duration, || {
                    let body_hash = digest(&SHA256, black_box(&input.body));
                    Ok(body_hash.as_ref()[0] as usize
                        + sign_header_block(&raw, black_box(&input.header_block), &mut out)?)
                })?;
                let sign_only = rate(duration, || {
                    sign_header_block(&raw, black_box(&input.header_block), &mut out)
                })?;
                println!(
                    "RESULT round={round} algorithm={name} message={message_name} \
                     message_bytes={} header_block_bytes={} trustmail={trustmail:.1} \
                     raw={raw_rate:.1} sign_only={sign_only:.1} ratio_raw={:.4} \
                     ratio_sign_only={:.4}",
                    message.len(),
                    input.header_block.len(),
                    trustmail / raw_rate,
                    trustmail / sign_only,
                );
            }
        }
    }
    Ok(())
}
