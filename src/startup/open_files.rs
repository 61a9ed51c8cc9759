//! The open-file limit (RLIMIT_NOFILE) against what `serve` may open: every HTTP connection up
//! to `http.max_connections`, every DKIM DNS TCP connection up to `dkim_dns.max_tcp_connections`,
//! and a reserve for the database pool, DNS sockets, SMTP and webhook connections and files.
//! Past the soft limit `accept` fails with EMFILE and the server stalls in a loop of errors,
//! so the check is made once at start: a low soft limit is raised, a low hard limit is the
//! operator's to fix.

use crate::config::Config;

/// Descriptors beyond the listeners' connections: the store's pool (at most 16), the DNS
/// client's sockets, SMTP pools, webhook connections, the listeners, log and key files.
pub const RESERVE: u64 = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "http.max_connections = {max_connections}{dkim} needs {needed} open files ({RESERVE} kept for \
     the database, DNS, SMTP, webhooks and files), but the hard open-file limit (RLIMIT_NOFILE) \
     is {hard}: lower http.max_connections to at most {fits}, or raise the limit to {needed} \
     (`ulimit -n {needed}` in the shell that starts trustmail as root, `LimitNOFILE={needed}` in \
     its systemd unit, `--ulimit nofile={needed}` for a container)",
    dkim = match dkim_tcp { 0 => String::new(), n => format!(" with dkim_dns.max_tcp_connections = {n}") },
)]
pub struct OpenFilesError {
    pub max_connections: u32,
    pub dkim_tcp: u32,
    pub needed: u64,
    pub hard: u64,
    /// The largest `http.max_connections` the hard limit allows (0 when none does).
    pub fits: u64,
}

/// What to do about the limit, given what is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Enough,
    /// Raise the soft limit to this (the hard limit, or `needed` when that is unlimited).
    Raise(u64),
    /// The hard limit is below what is needed.
    TooLow {
        hard: u64,
    },
}

/// `None` is unlimited, as `getrlimit` reports RLIM_INFINITY.
fn plan(needed: u64, soft: Option<u64>, hard: Option<u64>) -> Plan {
    if soft.is_none_or(|soft| soft >= needed) {
        return Plan::Enough;
    }
    match hard {
        Some(hard) if hard < needed => Plan::TooLow { hard },
        Some(hard) => Plan::Raise(hard),
        None => Plan::Raise(needed),
    }
}

/// Checks the process's open-file limit against `config`, raising the soft limit when the
/// hard one allows.
#[cfg(unix)]
pub fn ensure(config: &Config) -> Result<(), OpenFilesError> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

    let max_connections = config.http.max_connections;
    let dkim_tcp = if config.dkim_dns.listen.is_empty() {
        0
    } else {
        config.dkim_dns.max_tcp_connections
    };
    let needed = u64::from(max_connections) + u64::from(dkim_tcp) + RESERVE;
    let limit = getrlimit(Resource::Nofile);
    match plan(needed, limit.current, limit.maximum) {
        Plan::Enough => Ok(()),
        Plan::Raise(to) => {
            let raised = Rlimit {
                current: Some(to),
                maximum: limit.maximum,
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => tracing::info!(
                    from = limit.current,
                    to,
                    needed,
                    "raised the soft open-file limit for http.max_connections"
                ),
                // The kernel may cap below the hard limit (fs.nr_open); then what we have is
                // what we get, and accept errors are logged if it runs out.
                Err(e) => tracing::warn!(
                    soft = limit.current,
                    needed,
                    error = %e,
                    "cannot raise the soft open-file limit; connections past it will be refused"
                ),
            }
            Ok(())
        }
        Plan::TooLow { hard } => Err(OpenFilesError {
            max_connections,
            dkim_tcp,
            needed,
            hard,
            fits: hard.saturating_sub(u64::from(dkim_tcp) + RESERVE),
        }),
    }
}

#[cfg(not(unix))]
pub fn ensure(_config: &Config) -> Result<(), OpenFilesError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_soft_limit_at_or_over_the_need_is_left_alone() {
        assert_eq!(plan(1_000, Some(1_000), Some(1_000)), Plan::Enough);
        assert_eq!(plan(1_000, None, None), Plan::Enough);
    }

    #[test]
    fn a_low_soft_limit_is_raised_to_the_hard_one() {
        assert_eq!(
            plan(10_256, Some(1_024), Some(524_288)),
            Plan::Raise(524_288)
        );
        assert_eq!(plan(10_256, Some(1_024), None), Plan::Raise(10_256));
    }

    #[test]
    fn a_hard_limit_under_the_need_is_refused() {
        assert_eq!(
            plan(10_256, Some(1_024), Some(4_096)),
            Plan::TooLow { hard: 4_096 }
        );
    }

    #[test]
    fn the_error_says_what_to_change_and_to_what() {
        let e = OpenFilesError {
            max_connections: 10_000,
            dkim_tcp: 0,
            needed: 10_256,
            hard: 4_096,
            fits: 3_840,
        };
        let text = e.to_string();
        for part in [
            "http.max_connections = 10000 needs 10256",
            "hard open-file limit (RLIMIT_NOFILE) is 4096",
            "at most 3840",
            "LimitNOFILE=10256",
        ] {
            assert!(text.contains(part), "{part} not in {text}");
        }
    }
}
