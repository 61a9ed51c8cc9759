//! The DNS check sweep of `bench/dns_sweep.sh`: trustmail's library checking every record of many
//! domains against a real authoritative server, as the background job and `POST …/verification` do.
//!
//! ```text
//! dns_sweep setup --database FILE --master-key FILE --out DIR [--environments 20] [--domains 50]
//! dns_sweep sweep --database FILE --master-key FILE --dns 127.0.0.1:PORT [--concurrency 64] [--lookups-only]
//! ```
//!
//! `setup` makes a fresh SQLite store with `environments` × `domains` trusted domains
//! (`d0.shopco.test`, `d1.shopco.test`, …) and writes, for BIND and dnsperf:
//! - `DIR/shopco.test.records`: every record of every domain as zone-file lines (TXT for ownership,
//!   environment and SPF; CNAME for DKIM), as `…/zoneFile` renders them;
//! - `DIR/trustmail.example.records`: the TXT record of the SPF include (`records.spf_include`),
//!   which the SPF check looks up to count lookups, and the DKIM key record behind each selector
//!   (as trustmail's own DNS serves them), which the DKIM check compares with the key it holds;
//! - `DIR/queries.txt`: the lookups one check of every domain makes, in dnsperf's format (`NAME TYPE`).
//!
//! `sweep` opens that store and checks every record of every domain now
//! (`Service::check_domain(…, CheckScope::All, …)`), `--concurrency` domains at a time, each check
//! on a Tokio task of its own. `sweep --lookups-only` times the DNS half alone: the same record
//! checks (`dns::check_record`, all of a domain's records at once as `check_domain` runs them)
//! with the records read from the store beforehand, and nothing saved. DNS queries are counted
//! with the `dns_queries_total` counter the DNS client increments (read from the process's
//! Prometheus recorder); CPU time is the process's user + system time from `/proc/self/stat`.
//! The last line is `RESULT key=value …` for the script.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use futures_util::{StreamExt, future::join_all, stream};
use secrecy::SecretString;
use trustmail::{
    api::middleware::metrics_handle,
    config::Config,
    dns::{DnsClient, Expected, check_record},
    domain::{
        CheckedRecord, DkimKey, EmailDomain, Geography, ReasonCode, RecordKind, RecordStatus, Role,
    },
    service::{Actor, CheckScope, Service},
    startup::open_service,
};

const PUBLIC_URL: &str = "http://bench";
const TTL: u32 = 60;

#[derive(Parser)]
struct Cli {
    /// The SQLite database file.
    #[arg(long, required_unless_present = "database_url")]
    database: Option<PathBuf>,
    /// A database URL instead (`postgres://…`): replicas share it.
    #[arg(long, conflicts_with = "database")]
    database_url: Option<String>,
    /// Ask the resolver over pipelined TCP (`dns.transport = "tcp"`) instead of UDP.
    #[arg(long)]
    tcp: bool,
    /// The master key file (created when missing).
    #[arg(long)]
    master_key: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the environments and domains; write their records and the dnsperf query file.
    Setup {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 20)]
        environments: u32,
        /// Per environment (at most `limits.domains_per_environment`, 50).
        #[arg(long, default_value_t = 50)]
        domains: u32,
    },
    /// Make every record due now (before a `sweep --scheduled`; replicas then share one pass).
    MakeDue,
    /// Check every record of every domain once, timed.
    Sweep {
        /// The DNS server, IP:PORT.
        #[arg(long)]
        dns: String,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
        /// Only the DNS lookups and comparisons: no lease, nothing saved.
        #[arg(long)]
        lookups_only: bool,
        /// As the background job sweeps (after `make-due`): one pass of
        /// `jobs::dns::sweep_due(concurrency)` (the pipeline: read-ahead leases, `concurrency`
        /// checks in flight, results written in grouped transactions) over whatever is due.
        #[arg(long, conflicts_with = "lookups_only")]
        scheduled: bool,
    },
}

impl Cli {
    fn database_url(&self) -> String {
        match (&self.database_url, &self.database) {
            (Some(url), _) => url.clone(),
            (None, Some(file)) => format!("sqlite://{}", file.display()),
            (None, None) => unreachable!("clap requires one of them"),
        }
    }

    /// A plain pool on the database, for what the benchmark does below the service.
    async fn pool(&self) -> anyhow::Result<sqlx::AnyPool> {
        sqlx::any::install_default_drivers();
        Ok(sqlx::AnyPool::connect(&self.database_url()).await?)
    }
}

fn config(cli: &Cli, resolver: &str, timeout_ms: u64) -> Config {
    let mut config = Config {
        database_url: SecretString::from(cli.database_url()),
        ..Config::default()
    };
    config.secrets.master_key_file = cli.master_key.clone();
    config.domains.extra_public_suffixes = vec!["test".to_owned()];
    config.dns.resolvers = vec![resolver.to_owned()];
    config.dns.timeout_ms = timeout_ms;
    if cli.tcp {
        config.dns.transport = trustmail::config::DnsTransport::Tcp;
    }
    // The sweep measures checks, not key generation: Ed25519 keys are made in microseconds.
    config.dkim.algorithm = trustmail::domain::DkimAlgorithm::Ed25519;
    config
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Setup {
            out,
            environments,
            domains,
        } => {
            // No lookups during setup: DNS points at the discard port.
            let service = open_service(&config(&cli, "127.0.0.1:9", 1000), PUBLIC_URL).await?;
            setup(&service, out, *environments, *domains).await
        }
        Command::MakeDue => {
            let pool = cli.pool().await?;
            sqlx::query("UPDATE dns_records SET next_check_at = 0")
                .execute(&pool)
                .await?;
            pool.close().await;
            Ok(())
        }
        Command::Sweep {
            dns,
            concurrency,
            timeout_ms,
            lookups_only,
            scheduled,
        } => {
            let metrics = metrics_handle();
            let config = config(&cli, dns, *timeout_ms);
            let service = open_service(&config, PUBLIC_URL).await?;
            if *scheduled {
                return scheduled_sweep(&cli, &service, *concurrency, || {
                    dns_queries(&metrics.render())
                })
                .await;
            }
            let client = lookups_only
                .then(|| DnsClient::new(&config.dns))
                .transpose()?;
            sweep(&service, client, *concurrency, || {
                dns_queries(&metrics.render())
            })
            .await
        }
    }
}

async fn setup(
    service: &Service,
    out: &Path,
    environments: u32,
    per_environment: u32,
) -> anyhow::Result<()> {
    let credentials = service
        .bootstrap(PUBLIC_URL)
        .await?
        .context("the database is not empty; setup needs a fresh one")?;
    let actor = Actor {
        client_id: credentials.client_id,
        environment_id: credentials.environment_id,
        role: Role::OrganizationAdmin,
    };
    let started = Instant::now();
    let spf_include = service.settings().records.spf_include.clone();
    let (mut zone, mut queries) = (String::new(), String::new());
    // The DKIM key records behind the CNAMEs live in the regions' zones under trustmail.example.
    let mut key_zone = String::new();
    let mut count = 0u32;
    for e in 0..environments {
        let environment = service
            .create_environment(&actor, &format!("Bench {e}"), Geography::Na)
            .await?;
        for _ in 0..per_environment {
            let domain = service
                .create_domain(&actor, &environment, &format!("d{count}.shopco.test"))
                .await?;
            count += 1;
            for key in service.dkim_keys(&domain).await? {
                let zone = service
                    .settings()
                    .regions
                    .iter()
                    .find(|r| r.name == key.region)
                    .map(|r| r.dkim_zone.clone())
                    .context("a key of an unknown region")?;
                let name = key.fqdn(&zone);
                writeln!(key_zone, "{name}. {TTL} IN TXT {}", zone_txt(&key.txt())?)?;
                writeln!(queries, "{name} TXT")?;
            }
            for checked in service.verification(&domain).await? {
                let record = &checked.record;
                let name = record.fqdn(&domain.name);
                let (rtype, rdata) = match record.kind {
                    RecordKind::Dkim => ("CNAME", format!("{}.", record.value)),
                    RecordKind::Ownership | RecordKind::Environment | RecordKind::Spf => {
                        ("TXT", zone_txt(&record.value)?)
                    }
                    RecordKind::MailFrom => bail!("a new domain has no MAIL FROM record"),
                };
                writeln!(zone, "{name}. {TTL} IN {rtype} {rdata}")?;
                writeln!(queries, "{name} {rtype}")?;
                if record.kind == RecordKind::Spf {
                    // The SPF check also reads the include's record to count lookups.
                    writeln!(queries, "{spf_include} TXT")?;
                }
            }
        }
    }
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("shopco.test.records"), zone)?;
    std::fs::write(
        out.join("trustmail.example.records"),
        format!("{spf_include}. {TTL} IN TXT \"v=spf1 ip4:192.0.2.0/24 -all\"\n{key_zone}"),
    )?;
    std::fs::write(out.join("queries.txt"), &queries)?;
    println!(
        "setup: {environments} environments, {count} domains, {} lookups per sweep in queries.txt, \
         in {:.1} s",
        queries.lines().count(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Every domain of every environment, as the operator sees them.
async fn all_domains(service: &Service) -> anyhow::Result<Vec<EmailDomain>> {
    let operator = service
        .operator()
        .await?
        .context("the database has no operator; run setup first")?;
    let mut domains = Vec::new();
    for environment in service.list_environments(&operator).await? {
        domains.extend(service.list::<EmailDomain>(environment.id).await?);
    }
    Ok(domains)
}

/// One sweep: through `Service::check_domain`, or with `client` the record checks alone.
async fn sweep(
    service: &Service,
    client: Option<DnsClient>,
    concurrency: usize,
    queries_so_far: impl Fn() -> u64,
) -> anyhow::Result<()> {
    let domains = all_domains(service).await?;
    let mut work = Vec::with_capacity(domains.len());
    for domain in &domains {
        // The lookups-only mode reads the records up front so that no store work is timed.
        let (records, keys) = match client {
            Some(_) => (
                service.verification(domain).await?,
                service.dkim_keys(domain).await?,
            ),
            None => (Vec::new(), Vec::new()),
        };
        work.push((domain.clone(), records, keys));
    }
    let spf_include = service.settings().records.spf_include.clone();
    let queries_before = queries_so_far();
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let results: Vec<_> = stream::iter(work)
        .map(|(domain, records, keys)| {
            let service = service.clone();
            let client = client.clone();
            let spf_include = spf_include.clone();
            tokio::spawn(async move {
                match client {
                    None => service.check_domain(&domain, CheckScope::All, None).await,
                    Some(dns) => {
                        Ok(check_records(&dns, &domain, records, &keys, &spf_include).await)
                    }
                }
            })
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let queries = queries_so_far() - queries_before;

    let (mut records, mut active, mut errors) = (0usize, 0usize, 0usize);
    let mut reasons: BTreeMap<&'static str, usize> = BTreeMap::new();
    // The first few sentences of records that did not end ACTIVE, to say why.
    let mut why_not: BTreeMap<String, usize> = BTreeMap::new();
    for result in results {
        match result {
            Ok(Ok(checked)) => {
                for r in checked {
                    records += 1;
                    active += usize::from(r.record.status == RecordStatus::Active);
                    *reasons.entry(r.reason.as_str()).or_default() += 1;
                    if r.record.status != RecordStatus::Active {
                        *why_not.entry(r.message.clone()).or_default() += 1;
                    }
                }
            }
            Ok(Err(e)) => {
                errors += 1;
                eprintln!("check failed: {e}");
            }
            Err(e) => {
                errors += 1;
                eprintln!("check task failed: {e}");
            }
        }
    }
    for (message, n) in why_not.iter().take(5) {
        eprintln!("not ACTIVE ({n}×): {message}");
    }
    let reasons = reasons
        .iter()
        .map(|(reason, n)| format!("{reason}:{n}"))
        .collect::<Vec<_>>()
        .join(",");
    let cpu = cpu.map_or_else(|| "unknown".to_owned(), |c| format!("{c:.2}"));
    println!(
        "{}: {} domains, {records} records ({active} ACTIVE; reasons {reasons}), {errors} failed \
         checks, {queries} DNS queries in {seconds:.3} s, {cpu} s CPU",
        if client.is_some() {
            "lookups only"
        } else {
            "sweep"
        },
        domains.len()
    );
    println!(
        "RESULT domains={} records={records} active={active} errors={errors} queries={queries} \
         seconds={seconds:.4} cpu_seconds={cpu} domains_per_s={:.1} queries_per_s={:.1}",
        domains.len(),
        domains.len() as f64 / seconds,
        queries as f64 / seconds
    );
    Ok(())
}

/// The background job's sweep: one pass of the pipeline over whatever is due.
async fn scheduled_sweep(
    cli: &Cli,
    service: &Service,
    slots: usize,
    queries_so_far: impl Fn() -> u64,
) -> anyhow::Result<()> {
    let queries_before = queries_so_far();
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let stats = trustmail::jobs::dns::sweep_due(service, slots).await?;
    let checked = stats.checked;
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let queries = queries_so_far() - queries_before;
    let peak_rss_mb = peak_rss_mb().unwrap_or(0.0);
    // Counted below the service: one query, whatever the number of domains.
    let pool = cli.pool().await?;
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN status = 'ACTIVE' THEN 1 ELSE 0 END), 0) \
         AS active FROM dns_records",
    )
    .fetch_one(&pool)
    .await?;
    pool.close().await;
    let records: i64 = sqlx::Row::try_get(&row, "n")?;
    let active: i64 = sqlx::Row::try_get(&row, "active")?;
    let cpu = cpu.map_or_else(|| "unknown".to_owned(), |c| format!("{c:.2}"));
    println!(
        "scheduled sweep: {checked} domains, {records} records ({active} ACTIVE), {queries} DNS \
         queries in {seconds:.3} s, {cpu} s CPU, {} transactions, {} results discarded, peak \
         RSS {peak_rss_mb:.0} MB",
        stats.writes, stats.saved.discarded
    );
    println!(
        "RESULT domains={checked} records={records} active={active} errors=0 queries={queries} \
         seconds={seconds:.4} cpu_seconds={cpu} domains_per_s={:.1} queries_per_s={:.1} \
         writes={} discarded={} peak_rss_mb={peak_rss_mb:.1}",
        checked as f64 / seconds,
        queries as f64 / seconds,
        stats.writes,
        stats.saved.discarded,
    );
    Ok(())
}

/// This process's peak resident memory (Linux `/proc/self/status`, `VmHWM`), in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// `check_domain`'s DNS half: every record of the domain looked up and compared at once; a
/// record counts as ACTIVE when its check says OK.
async fn check_records(
    dns: &DnsClient,
    domain: &EmailDomain,
    mut records: Vec<CheckedRecord>,
    keys: &[DkimKey],
    spf_include: &str,
) -> Vec<CheckedRecord> {
    let names: Vec<String> = records
        .iter()
        .map(|r| r.record.fqdn(&domain.name))
        .collect();
    let observations = join_all(records.iter().zip(&names).map(|(r, name)| {
        let expected = Expected {
            kind: r.record.kind,
            name,
            value: &r.record.value,
            spf_include,
            dkim_public_key: keys
                .iter()
                .find(|k| {
                    Some(&k.region) == r.record.region.as_ref() && k.position == r.record.position
                })
                .filter(|_| r.record.kind == RecordKind::Dkim)
                .map(|k| k.public_key.as_str()),
        };
        async move { check_record(dns, &expected).await }
    }))
    .await;
    for (record, observation) in records.iter_mut().zip(observations) {
        record.reason = observation.reason;
        record.record.status = if observation.reason == ReasonCode::Ok {
            RecordStatus::Active
        } else {
            RecordStatus::VerificationRequired
        };
    }
    records
}

/// This process's user + system CPU time so far (Linux `/proc/self/stat`, in USER_HZ = 100 ticks).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// The sum of the `dns_queries_total` series (one per record type) in a Prometheus rendering.
fn dns_queries(rendered: &str) -> u64 {
    rendered
        .lines()
        .filter(|line| line.starts_with("dns_queries_total"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// A TXT value as zone-file text: one quoted string per 255 bytes. Tokens and SPF values are
/// printable ASCII without quotes or backslashes; anything else is refused rather than escaped.
fn zone_txt(value: &str) -> anyhow::Result<String> {
    if !value
        .bytes()
        .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\')
    {
        bail!("TXT value {value:?} needs escaping");
    }
    Ok(value
        .as_bytes()
        .chunks(255)
        .map(|chunk| format!("\"{}\"", String::from_utf8_lossy(chunk)))
        .collect::<Vec<_>>()
        .join(" "))
}
