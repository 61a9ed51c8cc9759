//! Verification rules: reason codes, the re-check schedule, the grace period, SPF advice.
//! Pure: the DNS answers come in as values, decisions go out.

use time::{Duration, OffsetDateTime};

use super::{RecordKind, RecordStatus, SendingRegion};

wire_enum!(
    /// Why a record has the status it has (stable codes, README § DNS verification).
    ReasonCode {
        NotChecked => "NOT_CHECKED",
        Ok => "OK",
        NotFound => "NOT_FOUND",
        NoRecord => "NO_RECORD",
        ValueMismatch => "VALUE_MISMATCH",
        DoubledZoneSuffix => "DOUBLED_ZONE_SUFFIX",
        CnameConflict => "CNAME_CONFLICT",
        MultipleSpf => "MULTIPLE_SPF",
        SpfTooManyLookups => "SPF_TOO_MANY_LOOKUPS",
        SpfInvalid => "SPF_INVALID",
        DnsError => "DNS_ERROR",
        MissingAfterActive => "MISSING_AFTER_ACTIVE",
    }
);

/// RFC 7208 § 4.6.4: at most 10 terms that cause DNS lookups.
pub const SPF_LOOKUP_LIMIT: u32 = 10;

/// What one check of one record found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub reason: ReasonCode,
    /// The values DNS returned at the name (TXT strings joined, CNAME targets, MX exchanges).
    pub observed: Vec<String>,
    /// Plain words: what was expected, where, and what was found.
    pub message: String,
    /// SPF only: the user's record with our include merged in, and its lookup count.
    pub suggested: Option<String>,
    pub lookups: Option<u32>,
}

impl Observation {
    pub fn new(reason: ReasonCode, observed: Vec<String>, message: impl Into<String>) -> Self {
        Self {
            reason,
            observed,
            message: message.into(),
            suggested: None,
            lookups: None,
        }
    }
}

/// A record with everything its checks have found so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedRecord {
    pub record: super::DnsRecord,
    pub reason: ReasonCode,
    pub message: String,
    pub observed: Vec<String>,
    pub suggested: Option<String>,
    pub lookups: Option<u32>,
    /// When the record was first asked for (the schedule's origin).
    pub created_at: OffsetDateTime,
    pub last_checked_at: Option<OffsetDateTime>,
    pub next_check_at: OffsetDateTime,
    pub failing_since: Option<OffsetDateTime>,
    /// DNS errors in a row (0 after any real answer): the re-check backs off with it.
    pub error_streak: u32,
}

impl CheckedRecord {
    pub fn state(&self) -> CheckState {
        CheckState {
            status: self.record.status,
            reason: self.reason,
            failing_since: self.failing_since,
            error_streak: self.error_streak,
        }
    }

    /// The record after a check that saw `observation` at `now`.
    pub fn after_check(
        &self,
        observation: Observation,
        now: OffsetDateTime,
        grace: Duration,
        initial_interval: Duration,
    ) -> CheckedRecord {
        let state = next_state(&self.state(), &observation, now, grace);
        let delay = next_check_delay(&state, now - self.created_at, initial_interval);
        let mut record = self.record.clone();
        record.status = state.status;
        // A DNS error keeps what the last real answer showed.
        let keep_observed = observation.reason == ReasonCode::DnsError;
        CheckedRecord {
            record,
            reason: state.reason,
            message: if state.reason == ReasonCode::MissingAfterActive {
                format!(
                    "{} The record stays ACTIVE until {} (grace period).",
                    observation.message,
                    state
                        .failing_since
                        .map(|since| since + grace)
                        .unwrap_or(now + grace)
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                )
            } else {
                observation.message
            },
            observed: if keep_observed {
                self.observed.clone()
            } else {
                observation.observed
            },
            suggested: observation.suggested.or_else(|| self.suggested.clone()),
            lookups: observation.lookups.or(self.lookups),
            created_at: self.created_at,
            last_checked_at: Some(now),
            next_check_at: now + delay,
            failing_since: state.failing_since,
            error_streak: state.error_streak,
        }
    }
}

/// A record's state between checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckState {
    pub status: RecordStatus,
    pub reason: ReasonCode,
    /// When a record that was ACTIVE was first seen missing (the grace period's start).
    pub failing_since: Option<OffsetDateTime>,
    /// DNS errors in a row.
    pub error_streak: u32,
}

/// The state after `observation`: DNS errors change nothing visible; a record lost after
/// ACTIVE stays ACTIVE for `grace`, counted from the first failing check.
pub fn next_state(
    previous: &CheckState,
    observation: &Observation,
    now: OffsetDateTime,
    grace: Duration,
) -> CheckState {
    match observation.reason {
        ReasonCode::DnsError => CheckState {
            status: previous.status,
            reason: ReasonCode::DnsError,
            failing_since: previous.failing_since,
            error_streak: previous.error_streak.saturating_add(1),
        },
        ReasonCode::Ok => CheckState {
            status: RecordStatus::Active,
            reason: ReasonCode::Ok,
            failing_since: None,
            error_streak: 0,
        },
        // An SPF record over the lookup limit still publishes our include: it stays usable,
        // and the diagnosis says what to fix.
        ReasonCode::SpfTooManyLookups => CheckState {
            status: RecordStatus::Active,
            reason: ReasonCode::SpfTooManyLookups,
            failing_since: None,
            error_streak: 0,
        },
        failing if previous.status == RecordStatus::Active => {
            let since = previous.failing_since.unwrap_or(now);
            if now - since < grace {
                CheckState {
                    status: RecordStatus::Active,
                    reason: ReasonCode::MissingAfterActive,
                    failing_since: Some(since),
                    error_streak: 0,
                }
            } else {
                CheckState {
                    status: RecordStatus::VerificationRequired,
                    reason: failing,
                    failing_since: None,
                    error_streak: 0,
                }
            }
        }
        failing => CheckState {
            status: RecordStatus::VerificationRequired,
            reason: failing,
            failing_since: None,
            error_streak: 0,
        },
    }
}

/// The longest wait between re-checks of a record that keeps failing to answer.
pub const MAX_ERROR_BACKOFF: Duration = Duration::HOUR;

/// When to look again (README § DNS verification): every `initial` for 15 minutes, then every
/// 15 minutes to an hour, hourly to 72 hours, daily after; ACTIVE records daily; a record lost
/// after ACTIVE every `initial`; DNS errors after `initial`, doubling with each error in a row
/// up to `MAX_ERROR_BACKOFF`.
pub fn next_check_delay(state: &CheckState, age: Duration, initial: Duration) -> Duration {
    if state.reason == ReasonCode::DnsError {
        let doublings = state.error_streak.saturating_sub(1).min(20);
        return (initial * 2_i32.pow(doublings)).min(MAX_ERROR_BACKOFF.max(initial));
    }
    if state.reason == ReasonCode::MissingAfterActive {
        return initial;
    }
    if state.status == RecordStatus::Active {
        return Duration::DAY;
    }
    if age < Duration::minutes(15) {
        initial
    } else if age < Duration::HOUR {
        Duration::minutes(15)
    } else if age < Duration::hours(72) {
        Duration::HOUR
    } else {
        Duration::DAY
    }
}

/// Whether a TXT value is an SPF record (`v=spf1` alone or followed by a space; any case).
pub fn is_spf(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() >= 6
        && bytes[..6].eq_ignore_ascii_case(b"v=spf1")
        && (bytes.len() == 6 || bytes[6] == b' ')
}

/// The user's SPF record with `include:<include>` added before its `all` term (or a redirect
/// modifier), keeping every other term as it was.
pub fn merge_spf_include(existing: &str, include: &str) -> String {
    let terms: Vec<&str> = existing.split_ascii_whitespace().collect();
    let wanted = format!("include:{include}");
    if terms.iter().any(|t| {
        t.trim_start_matches(['+', '-', '~', '?'])
            .eq_ignore_ascii_case(&wanted)
    }) {
        return terms.join(" ");
    }
    let is_tail = |t: &&str| {
        let t = t
            .trim_start_matches(['+', '-', '~', '?'])
            .to_ascii_lowercase();
        t == "all" || t.starts_with("redirect=")
    };
    let position = terms.iter().position(is_tail).unwrap_or(terms.len());
    let mut merged: Vec<&str> = terms[..position].to_vec();
    merged.push(&wanted);
    merged.extend_from_slice(&terms[position..]);
    if position == terms.len() {
        merged.push("~all");
    }
    merged.join(" ")
}

/// Names compare ignoring case and one trailing dot.
pub fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// Sorts records as the API shows them: by kind (ownership, environment, DKIM, SPF, MAIL
/// FROM), then regions in configuration order, then position.
pub fn region_order(regions: &[SendingRegion], records: &mut [CheckedRecord]) {
    let rank = |r: &CheckedRecord| {
        r.record
            .region
            .as_ref()
            .and_then(|name| regions.iter().position(|g| &g.name == name))
            .unwrap_or(usize::MAX)
    };
    let kind_rank = |r: &CheckedRecord| RecordKind::ALL.iter().position(|k| *k == r.record.kind);
    records.sort_by_key(|r| {
        (
            kind_rank(r),
            rank(r),
            r.record.region.clone(),
            r.record.position,
        )
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const QUALIFIERS: [char; 4] = ['+', '-', '~', '?'];

    /// SPF-looking records: terms in any case, with and without qualifiers, `all` anywhere.
    fn spf_like() -> impl Strategy<Value = String> {
        "(v=spf1|V=SPF1|v=spf10|)( {1,2}[-+~?]?(all|ALL|mx|a|ip4:10.0.0.[0-9]|include:[a-z]{1,4}\\.test|INCLUDE:SPF.TRUSTMAIL.TEST|redirect=[a-z]{1,4}\\.test)){0,6} ?"
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        /// Any value: SPF exactly when it starts with `v=spf1` in any case, alone or then a space.
        #[test]
        fn is_spf_reads_the_version_term(value in prop_oneof![any::<String>(), spf_like()]) {
            let lower = value.to_ascii_lowercase();
            let expected = lower == "v=spf1" || lower.starts_with("v=spf1 ");
            prop_assert_eq!(is_spf(&value), expected);
        }

        /// Merging adds the include once, before the tail, keeps every other term in its order,
        /// and merging again changes nothing.
        #[test]
        fn merging_adds_the_include_once_and_keeps_the_rest(
            existing in prop_oneof![any::<String>(), spf_like()],
        ) {
            let include = "spf.trustmail.test";
            let wanted = format!("include:{include}");
            let is_wanted =
                |t: &&str| t.trim_start_matches(QUALIFIERS).eq_ignore_ascii_case(&wanted);
            let original: Vec<&str> = existing.split_ascii_whitespace().collect();
            let merged = merge_spf_include(&existing, include);
            prop_assert_eq!(merge_spf_include(&merged, include), merged.clone());
            let mut terms: Vec<&str> = merged.split_ascii_whitespace().collect();
            if !original.iter().any(is_wanted) {
                let at = terms.iter().position(|t| *t == wanted);
                prop_assert!(at.is_some(), "{}", merged);
                terms.remove(at.unwrap_or_default());
                let tail = |t: &&str| {
                    let t = t.trim_start_matches(QUALIFIERS).to_ascii_lowercase();
                    t == "all" || t.starts_with("redirect=")
                };
                if !original.iter().any(tail) {
                    prop_assert_eq!(terms.pop(), Some("~all"));
                }
            }
            prop_assert_eq!(terms, original);
        }
    }

    fn state(status: RecordStatus, reason: ReasonCode) -> CheckState {
        CheckState {
            status,
            reason,
            failing_since: None,
            error_streak: 0,
        }
    }

    fn seen(reason: ReasonCode) -> Observation {
        Observation::new(reason, vec![], "")
    }

    #[test]
    fn dns_errors_change_nothing_visible() {
        let now = OffsetDateTime::now_utc();
        for status in [RecordStatus::Active, RecordStatus::VerificationRequired] {
            let next = next_state(
                &state(status, ReasonCode::Ok),
                &seen(ReasonCode::DnsError),
                now,
                Duration::HOUR,
            );
            assert_eq!(next.status, status);
            assert_eq!(next.reason, ReasonCode::DnsError);
        }
    }

    #[test]
    fn a_record_lost_after_active_has_a_grace_period() {
        let t0 = OffsetDateTime::now_utc();
        let grace = Duration::hours(72);
        let active = state(RecordStatus::Active, ReasonCode::Ok);
        let first = next_state(&active, &seen(ReasonCode::NotFound), t0, grace);
        assert_eq!(first.status, RecordStatus::Active);
        assert_eq!(first.reason, ReasonCode::MissingAfterActive);
        assert_eq!(first.failing_since, Some(t0));
        // A DNS error in between neither starts nor ends it.
        let blip = next_state(
            &first,
            &seen(ReasonCode::DnsError),
            t0 + Duration::hours(1),
            grace,
        );
        assert_eq!(blip.failing_since, Some(t0));
        let later = next_state(
            &blip,
            &seen(ReasonCode::NotFound),
            t0 + Duration::hours(71),
            grace,
        );
        assert_eq!(later.status, RecordStatus::Active);
        let lost = next_state(
            &later,
            &seen(ReasonCode::NotFound),
            t0 + Duration::hours(72),
            grace,
        );
        assert_eq!(lost.status, RecordStatus::VerificationRequired);
        assert_eq!(lost.reason, ReasonCode::NotFound);
        let back = next_state(
            &first,
            &seen(ReasonCode::Ok),
            t0 + Duration::hours(2),
            grace,
        );
        assert_eq!(
            (back.status, back.failing_since),
            (RecordStatus::Active, None)
        );
    }

    #[test]
    fn the_schedule_slows_down_with_age() {
        let pending = state(RecordStatus::VerificationRequired, ReasonCode::NotFound);
        let initial = Duration::seconds(60);
        assert_eq!(
            next_check_delay(&pending, Duration::minutes(5), initial),
            initial
        );
        assert_eq!(
            next_check_delay(&pending, Duration::minutes(20), initial),
            Duration::minutes(15)
        );
        assert_eq!(
            next_check_delay(&pending, Duration::hours(5), initial),
            Duration::HOUR
        );
        assert_eq!(
            next_check_delay(&pending, Duration::hours(80), initial),
            Duration::DAY
        );
        let active = state(RecordStatus::Active, ReasonCode::Ok);
        assert_eq!(
            next_check_delay(&active, Duration::minutes(1), initial),
            Duration::DAY
        );
    }

    #[test]
    fn dns_errors_back_off_doubling_to_an_hour() {
        let initial = Duration::seconds(60);
        let mut erring = state(RecordStatus::Active, ReasonCode::Ok);
        let mut delays = Vec::new();
        for _ in 0..8 {
            erring = next_state(
                &erring,
                &seen(ReasonCode::DnsError),
                OffsetDateTime::UNIX_EPOCH,
                initial,
            );
            delays.push(next_check_delay(&erring, Duration::hours(100), initial).whole_minutes());
        }
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(
            erring.status,
            RecordStatus::Active,
            "a DNS error is never a verdict"
        );
        // Any real answer ends the streak.
        let answered = next_state(
            &erring,
            &seen(ReasonCode::Ok),
            OffsetDateTime::UNIX_EPOCH,
            initial,
        );
        assert_eq!(answered.error_streak, 0);
        assert_eq!(
            next_check_delay(&answered, Duration::hours(100), initial),
            Duration::DAY
        );
    }

    #[test]
    fn spf_records_are_recognised_and_merged_before_all() {
        assert!(is_spf("v=spf1 -all"));
        assert!(is_spf("V=SPF1"));
        assert!(!is_spf("v=spf10 -all"));
        assert!(!is_spf("v=spf2.0/pra"));
        assert_eq!(
            merge_spf_include(
                "v=spf1 ip4:192.0.2.1 include:_spf.google.com -all",
                "spf.t.example"
            ),
            "v=spf1 ip4:192.0.2.1 include:_spf.google.com include:spf.t.example -all"
        );
        assert_eq!(
            merge_spf_include("v=spf1 mx", "x.example"),
            "v=spf1 mx include:x.example ~all"
        );
        assert_eq!(
            merge_spf_include("v=spf1 redirect=_spf.example.com", "x.example"),
            "v=spf1 include:x.example redirect=_spf.example.com"
        );
        assert_eq!(
            merge_spf_include("v=spf1 INCLUDE:X.example ~all", "x.example"),
            "v=spf1 INCLUDE:X.example ~all"
        );
    }
}
