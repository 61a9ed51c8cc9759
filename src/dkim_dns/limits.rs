//! Bounded work: a token bucket per source prefix for UDP (whose source can be forged, which
//! is what reflection attacks use), and one for all queries together.

use std::{collections::HashMap, net::IpAddr, sync::Mutex, time::Instant};

use crate::config;

/// Past this many tracked prefixes the idle ones are forgotten (or all, if none is idle): a
/// bound on memory, not a policy.
const SOURCES_CAPACITY: usize = 65_536;

struct Bucket {
    tokens: f64,
    at: Instant,
    /// Queries refused since the bucket last had a token, for the slip count.
    refused: u32,
}

impl Bucket {
    fn full(burst: f64) -> Self {
        Self {
            tokens: burst,
            at: Instant::now(),
            refused: 0,
        }
    }

    fn refill(&mut self, rate: f64, burst: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.at = now;
    }

    fn take(&mut self, rate: f64, burst: f64) -> bool {
        self.refill(rate, burst, Instant::now());
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.refused = 0;
            true
        } else {
            self.refused = self.refused.saturating_add(1);
            false
        }
    }
}

/// What a UDP query gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Answer,
    /// Over its source's limit, and its turn for an empty truncated answer.
    Slip,
    /// Not answered; the label says why (`dkim_dns_dropped_total`).
    Drop(&'static str),
}

pub(super) struct Limits {
    global: Option<(f64, Mutex<Bucket>)>,
    per_source: Option<(f64, Mutex<HashMap<IpAddr, Bucket>>)>,
    slip: u32,
    ipv4_prefix: u8,
    ipv6_prefix: u8,
}

impl Limits {
    pub(super) fn new(config: &config::DkimDns) -> Self {
        let rate = |r: u32| (r > 0).then_some(f64::from(r));
        Self {
            global: rate(config.max_queries_per_second).map(|r| (r, Mutex::new(Bucket::full(r)))),
            per_source: rate(config.rate_limit_per_source).map(|r| (r, Mutex::new(HashMap::new()))),
            slip: config.rate_limit_slip,
            ipv4_prefix: config.rate_limit_ipv4_prefix,
            ipv6_prefix: config.rate_limit_ipv6_prefix,
        }
    }

    /// A query from anywhere, over either transport: within the global bound?
    pub(super) fn global(&self) -> bool {
        let Some((rate, bucket)) = &self.global else {
            return true;
        };
        bucket
            .lock()
            .map(|mut b| b.take(*rate, *rate))
            .unwrap_or(true)
    }

    /// A UDP query from `source`.
    pub(super) fn udp(&self, source: IpAddr) -> Verdict {
        if let Some((rate, sources)) = &self.per_source {
            let burst = 2.0 * rate;
            let prefix = self.prefix(source);
            let Ok(mut sources) = sources.lock() else {
                return Verdict::Answer;
            };
            if sources.len() >= SOURCES_CAPACITY && !sources.contains_key(&prefix) {
                let now = Instant::now();
                sources.retain(|_, b| {
                    b.refill(*rate, burst, now);
                    b.tokens < burst
                });
                if sources.len() >= SOURCES_CAPACITY {
                    sources.clear();
                }
            }
            let bucket = sources.entry(prefix).or_insert_with(|| Bucket::full(burst));
            if !bucket.take(*rate, burst) {
                let slip = self.slip > 0 && bucket.refused % self.slip == 0;
                return if slip {
                    Verdict::Slip
                } else {
                    Verdict::Drop("source_rate")
                };
            }
        }
        if self.global() {
            Verdict::Answer
        } else {
            Verdict::Drop("global_rate")
        }
    }

    /// The source's address with the host bits cleared.
    fn prefix(&self, source: IpAddr) -> IpAddr {
        match source {
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.ipv4_prefix))
                    .unwrap_or(0);
                let bits = u32::from(v4) & mask;
                IpAddr::V4(bits.into())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.ipv6_prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_source: u32, global: u32, slip: u32) -> Limits {
        Limits::new(&config::DkimDns {
            rate_limit_per_source: per_source,
            max_queries_per_second: global,
            rate_limit_slip: slip,
            ..config::DkimDns::default()
        })
    }

    #[test]
    fn a_source_past_its_burst_is_dropped_with_every_nth_slipped() {
        let limits = limits(10, 0, 3);
        let flood: IpAddr = "198.51.100.7".parse().unwrap();
        let verdicts: Vec<Verdict> = (0..200).map(|_| limits.udp(flood)).collect();
        let answered = verdicts.iter().filter(|v| **v == Verdict::Answer).count();
        // The burst (twice the rate), and the little that refills while the loop runs.
        assert!((20..40).contains(&answered), "{answered}");
        let slipped = verdicts.iter().filter(|v| **v == Verdict::Slip).count();
        let dropped = verdicts
            .iter()
            .filter(|v| **v == Verdict::Drop("source_rate"))
            .count();
        assert!(
            slipped > 0 && dropped >= 2 * slipped - 2,
            "{slipped} {dropped}"
        );
        // The same /24 shares the bucket; another prefix has its own.
        assert_ne!(
            limits.udp("198.51.100.200".parse().unwrap()),
            Verdict::Answer
        );
        assert_eq!(limits.udp("203.0.113.1".parse().unwrap()), Verdict::Answer);
        assert_eq!(
            limits.udp("2001:db8:1:1::1".parse().unwrap()),
            Verdict::Answer
        );
    }

    #[test]
    fn the_global_bound_covers_every_source() {
        let limits = limits(0, 50, 2);
        let answered = (0..200u8)
            .filter(|i| limits.udp(IpAddr::from([10, *i, 0, 1])) == Verdict::Answer)
            .count();
        assert!((50..70).contains(&answered), "{answered}");
        assert!(!limits.global());
    }

    #[test]
    fn prefixes_clear_the_host_bits() {
        let limits = limits(1, 0, 0);
        assert_eq!(
            limits.prefix("192.0.2.77".parse().unwrap()),
            "192.0.2.0".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            limits.prefix("2001:db8:aa:bbcc::1".parse().unwrap()),
            "2001:db8:aa:bb00::".parse::<IpAddr>().unwrap()
        );
    }
}
