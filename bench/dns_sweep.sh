#!/usr/bin/env bash
# Benchmark: trustmail's DNS check sweep against dnsperf, both asking the same BIND 9 the same questions.
#
#   bench/dns_sweep.sh
#
# Builds release (examples/dns_sweep.rs), which makes a fresh SQLite store with 20 environments × 50
# domains (1,000 domains, 6 records each) and writes their records and the lookups one check makes
# (ownership TXT, environment TXT, 3 DKIM CNAMEs, SPF TXT and the TXT of its include: 7 per domain).
# BIND 9 (.ci/interop/lib.sh, as the interop run starts it) serves those records on a free loopback port.
# Then, in alternating rounds:
#   trustmail sweep: every record made due, then Service::check_due_domains(64) until none is (the
#              background job's batched path); `dns_sweep sweep` without --scheduled times
#              Service::check_domain(…, CheckScope::All, …) for every domain, 64 at a time, each on a
#              Tokio task: every record looked up, compared and saved (lease, results, release) in the store;
#              DNS queries counted with the dns_queries_total counter;
#   trustmail record checks alone: the same lookups and comparisons (dns::check_record) with nothing read
#              or written in the store while timed: where the sweep's time goes, DNS client or store;
#   dnsperf:   the same names and types (queries.txt), for as long as trustmail's sweep took (>= 1 s).
# It prints domains checked/s, trustmail's queries/s, how many records ended ACTIVE (all must), dnsperf's
# queries/s and the ratio trustmail q/s / dnsperf q/s (median of the rounds' ratios). Target: ratio >= 0.5;
# the script reports whether it is met and fails only when the benchmark itself cannot run.
#
# Knobs (environment): BENCH_ROUNDS (default 5), BENCH_CONCURRENCY (domains checked at once, 64),
# BENCH_ENVIRONMENTS (20), BENCH_DOMAINS (per environment, 50; at most 50), BENCH_DB_DIR (where the SQLite
# file lives; default the scratch folder, set /dev/shm to take fsync out), BENCH_PERF=1 (one more sweep
# under `perf record`, with its top symbols).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BUILD=$ROOT/.ci/build
ROUNDS=${BENCH_ROUNDS:-5}
CONCURRENCY=${BENCH_CONCURRENCY:-64}
ENVIRONMENTS=${BENCH_ENVIRONMENTS:-20}
DOMAINS=${BENCH_DOMAINS:-50}
PERF=${BENCH_PERF:-0}

TARGET_RATIO=0.5

LOG_TAG=bench
# shellcheck source=.ci/lib.sh
. "$ROOT/.ci/lib.sh"
# shellcheck source=.ci/interop/lib.sh
. "$ROOT/.ci/interop/lib.sh"

WORK=""
DB_DIR=""
cleanup() {
	local rc=$?
	bind_stop
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if [ "$rc" -ne 0 ]; then
			show_logs 20 "$WORK"/*.stderr "$WORK"/bind/named.stderr
		fi
		rm -rf "$WORK"
	fi
	[ -z "$DB_DIR" ] || rm -rf "$DB_DIR"
	exit "$rc"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------------
section "tools and build"
ensure_bind
need_commands dnsperf python3
if [ "$PERF" = 1 ]; then
	command -v perf >/dev/null || apt_install linux-perf
	command -v perf >/dev/null || die "perf is needed for BENCH_PERF=1"
fi
cargo build --release --example dns_sweep
SWEEP=$ROOT/target/release/examples/dns_sweep
[ -x "$SWEEP" ] || die "no release binary at $SWEEP"

mkdir -p "$BUILD"
WORK=$(mktemp -d "$BUILD/bench-dns.XXXXXX")
mkdir "$WORK/bind"
if [ -n "${BENCH_DB_DIR:-}" ]; then
	DB_DIR=$(mktemp -d "$BENCH_DB_DIR/trustmail-bench-dns.XXXXXX")
else
	DB_DIR=$WORK/db
	mkdir "$DB_DIR"
fi
STORE=(--database "$DB_DIR/trustmail.db" --master-key "$WORK/master.key")

# ---------------------------------------------------------------------------------------------------
section "setup: $ENVIRONMENTS environments × $DOMAINS domains, their records for BIND, queries for dnsperf"
"$SWEEP" "${STORE[@]}" setup --out "$WORK/bind" --environments "$ENVIRONMENTS" --domains "$DOMAINS" \
	2>"$WORK/setup.stderr"
QUERIES=$WORK/bind/queries.txt
echo "queries.txt: $(wc -l <"$QUERIES") lookups ($(awk '{ print $2 }' "$QUERIES" | sort | uniq -c | xargs))"

# ---------------------------------------------------------------------------------------------------
section "BIND 9: shopco.test. ($(wc -l <"$WORK/bind/shopco.test.records") records), trustmail.example."
bind_start "$WORK/bind" trustmail.example
first=$(head -n 1 "$WORK/bind/shopco.test.records")
answer=$(dig +short -p "$BIND_PORT" @127.0.0.1 "$(awk '{ print $4 }' <<<"$first")" "$(awk '{ print $1 }' <<<"$first")")
[ -n "$answer" ] || die "BIND does not answer for the first record: $first"
echo "BIND answers: $(awk '{ print $1, $4 }' <<<"$first") -> $answer"

# ---------------------------------------------------------------------------------------------------
field() { # field NAME FILE -> the value of NAME= on the RESULT line
	awk -v k="$1" '$1 == "RESULT" { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' "$2"
}
dnsperf_qps() { awk '/Queries per second:/ { print $4 }' "$1"; }

run_sweep() { # run_sweep NAME [--lookups-only] -> prints the example's lines, saves them to $WORK/NAME.out
	local name=$1
	shift
	"$SWEEP" "${STORE[@]}" sweep --dns "127.0.0.1:$BIND_PORT" --concurrency "$CONCURRENCY" "$@" \
		2>"$WORK/$name.stderr" | tee "$WORK/$name.out"
	[ -n "$(field seconds "$WORK/$name.out")" ] || die "$name printed no RESULT line"
	[ "$(field errors "$WORK/$name.out")" = 0 ] || die "$name: domain checks failed (see above)"
	[ "$(field records "$WORK/$name.out")" = "$(field active "$WORK/$name.out")" ] ||
		die "$name: only $(field active "$WORK/$name.out") of $(field records "$WORK/$name.out") records ended ACTIVE"
}

# The machine is shared and noisy, so the sides alternate and the ratio is the median of the rounds' ratios.
ratios=()
lookup_ratios=()
tm_qps_all=()
tm_dps_all=()
tm_seconds_all=()
tm_cpu_all=()
lookups_qps_all=()
lookups_cpu_all=()
perf_qps_all=()
for round in $(seq 1 "$ROUNDS"); do
	section "round $round/$ROUNDS: trustmail sweep (concurrency $CONCURRENCY)"
	run_sweep "sweep$round" --scheduled
	seconds=$(field seconds "$WORK/sweep$round.out")
	records=$(field records "$WORK/sweep$round.out")
	active=$(field active "$WORK/sweep$round.out")

	section "round $round/$ROUNDS: trustmail record checks alone (no store), same concurrency"
	run_sweep "lookups$round" --lookups-only

	duration=$(awk -v s="$seconds" 'BEGIN { printf "%.2f", (s < 1 ? 1 : s) }')
	section "round $round/$ROUNDS: dnsperf, same names and types, ${duration} s"
	dnsperf -s 127.0.0.1 -p "$BIND_PORT" -d "$QUERIES" -l "$duration" 2>"$WORK/dnsperf$round.stderr" |
		tee "$WORK/dnsperf$round.out"
	qps=$(dnsperf_qps "$WORK/dnsperf$round.out")
	[ -n "$qps" ] || die "could not read dnsperf's queries per second"

	tm_qps_all+=("$(field queries_per_s "$WORK/sweep$round.out")")
	tm_dps_all+=("$(field domains_per_s "$WORK/sweep$round.out")")
	tm_seconds_all+=("$seconds")
	tm_cpu_all+=("$(field cpu_seconds "$WORK/sweep$round.out")")
	lookups_qps_all+=("$(field queries_per_s "$WORK/lookups$round.out")")
	lookups_cpu_all+=("$(field cpu_seconds "$WORK/lookups$round.out")")
	perf_qps_all+=("$qps")
	ratios+=("$(awk -v a="${tm_qps_all[-1]}" -v b="$qps" 'BEGIN { printf "%.3f", a / b }')")
	lookup_ratios+=("$(awk -v a="${lookups_qps_all[-1]}" -v b="$qps" 'BEGIN { printf "%.3f", a / b }')")
done

if [ "$PERF" = 1 ]; then
	section "profile: one more sweep under perf record (on-CPU samples of the sweep process)"
	perf record -q -g -o "$WORK/perf.data" -- "$SWEEP" "${STORE[@]}" sweep --dns "127.0.0.1:$BIND_PORT" \
		--concurrency "$CONCURRENCY" 2>"$WORK/perf-sweep.stderr"
	perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio >"$WORK/perf.txt" 2>/dev/null
	awk '/^ +[0-9.]+%/ && n++ < 30 { sub(/[ -]+$/, ""); print }' "$WORK/perf.txt"
	echo
	echo "by thread:"
	perf report -i "$WORK/perf.data" --no-children --sort comm --stdio >"$WORK/perf-comm.txt" 2>/dev/null
	awk '/^ +[0-9.]+%/ && n++ < 10 { sub(/[ -]+$/, ""); print }' "$WORK/perf-comm.txt"
fi

bind_stop
echo "per-round ratios (sweep): ${ratios[*]}"
echo "per-round ratios (record checks alone): ${lookup_ratios[*]}"
RATIO=$(printf '%.2f' "$(median "${ratios[@]}")")
LOOKUP_RATIO=$(printf '%.2f' "$(median "${lookup_ratios[@]}")")
cores=$(nproc)
cpu_share() { awk -v c="$1" -v s="$2" -v n="$cores" 'BEGIN { printf "%.0f%%", 100 * c / (s * n) }'; }
TM_SECONDS=$(median "${tm_seconds_all[@]}")
TM_CPU=$(median "${tm_cpu_all[@]}")

section "results ($(date -u +%Y-%m-%dT%H:%MZ), $cores cores, median of $ROUNDS alternating rounds)"
printf '%-44s %12s %14s %12s\n' "" "sweep" "checks alone" "dnsperf"
printf '%-44s %12.0f %14.0f %12.0f\n' "DNS queries/s" "$(median "${tm_qps_all[@]}")" \
	"$(median "${lookups_qps_all[@]}")" "$(median "${perf_qps_all[@]}")"
printf '%-44s %12s %14s\n' "ratio to dnsperf (median of rounds)" "$RATIO" "$LOOKUP_RATIO"
printf '%-44s %12.0f\n' "domains checked/s" "$(median "${tm_dps_all[@]}")"
printf '%-44s %12.3f\n' "sweep of $records records, 1 check each (s)" "$TM_SECONDS"
printf '%-44s %12s %14s\n' "CPU of the trustmail process (s)" "$TM_CPU" "$(median "${lookups_cpu_all[@]}")"
printf '%-44s %12s\n' "  as a share of $cores cores × the sweep" "$(cpu_share "$TM_CPU" "$TM_SECONDS")"
printf '%-44s %12s\n' "records ACTIVE after each sweep" "$active/$records"
echo
printf 'ratio trustmail q/s / dnsperf q/s: %s   (target >= %s: %s)\n' "$RATIO" "$TARGET_RATIO" \
	"$(met "$RATIO >= $TARGET_RATIO")"
