//! `trustmail secrets …`: the master key (README § Master key rotation).

use std::{path::PathBuf, process::ExitCode};

use clap::Subcommand;

use super::{BoxError, EXIT_REFUSED, Output};
use crate::{
    config::Config,
    secrets::{KeyId, MasterKey},
    startup::open_for_rotation,
    store::ResealedColumn,
};

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Re-seal every sealed value (token and DKIM private keys, queued mail, webhook secrets and
    /// headers) under a new master key, in batches; run it again after an interruption, and
    /// after the key files are swapped (values already under the new key are left as they are).
    RotateMasterKey {
        /// The new key: base64 of 32 bytes, readable by the owner only; made (mode 0600) when
        /// the file does not exist.
        #[arg(long, value_name = "PATH")]
        new_key_file: PathBuf,
    },
}

pub(super) async fn secrets_command(
    command: SecretsCommand,
    config: &Config,
    public_url: &str,
    out: &Output,
) -> Result<ExitCode, BoxError> {
    let SecretsCommand::RotateMasterKey { new_key_file } = command;
    let new_key = match MasterKey::load(&new_key_file)? {
        Some(key) => key,
        None => {
            let key = MasterKey::load_or_create(&new_key_file)?;
            println!(
                "created master key {} in {}",
                key.key_id(),
                new_key_file.display()
            );
            key
        }
    };
    let new_id = new_key.key_id().clone();
    let (service, configured) = open_for_rotation(config, public_url, new_key).await?;
    let columns = service.reseal_secrets().await?;
    print_columns(out, &columns);
    let resealed: u64 = columns.iter().map(|c| c.resealed).sum();
    let changed: u64 = columns.iter().map(|c| c.changed_meanwhile).sum();
    let unreadable: u64 = columns.iter().map(|c| c.unreadable).sum();
    println!("re-sealed {resealed} values under master key {new_id}");
    let path = new_key_file.display();
    let old_id = configured.first().map(KeyId::as_str).unwrap_or("?");
    if configured.first() == Some(&new_id) {
        if resealed == 0 && changed == 0 {
            println!(
                "every readable value is under master key {new_id}, the configured one: unset \
                 secrets.previous_master_key_file on every replica and restart them one by one"
            );
        } else {
            println!("run this again until it re-seals nothing");
        }
    } else {
        if !configured.contains(&new_id) {
            eprintln!(
                "trustmail: warning: this configuration does not open values under {new_id}: \
                 replicas that run with it cannot open what was re-sealed until they do (set \
                 secrets.previous_master_key_file to {path} and restart them)"
            );
        }
        println!(
            "next, on every replica: set secrets.master_key_file to {path} and \
             secrets.previous_master_key_file to the current key's file (key {old_id}), and \
             restart them one by one; then run this again with that configuration, to re-seal \
             what they sealed under {old_id} meanwhile"
        );
    }
    if unreadable == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    let mut loaded = vec![new_id.as_str()];
    loaded.extend(
        configured
            .iter()
            .map(KeyId::as_str)
            .filter(|id| *id != new_id.as_str()),
    );
    eprintln!(
        "trustmail: {unreadable} values open with none of the loaded keys ({}) and were left as \
         they are:",
        loaded.join(", ")
    );
    for column in &columns {
        for (row, why) in &column.unreadable_rows {
            eprintln!("  {}.{} of {row}: {why}", column.table, column.column);
        }
    }
    Ok(ExitCode::from(EXIT_REFUSED))
}

fn print_columns(out: &Output, columns: &[ResealedColumn]) {
    out.table(
        ["COLUMN", "RE-SEALED", "CHANGED MEANWHILE", "UNREADABLE"],
        columns.iter().map(|c| {
            [
                format!("{}.{}", c.table, c.column),
                c.resealed.to_string(),
                c.changed_meanwhile.to_string(),
                c.unreadable.to_string(),
            ]
        }),
    );
}
