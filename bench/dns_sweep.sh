#!/usr/bin/env bash
# Benchmark: trustmail's DNS check sweep against dnsperf, both asking the same BIND 9 the same questions.
#
#   bench/dns_sweep.sh
#
# Builds release (examples/dns_sweep.rs), which makes a fresh SQLite store with 20 environments × 50
# domains (1,000 domains, 6 records each) and writes their records and the lookups one check makes
# (ownership TXT, environment TXT, 3 DKIM CNAMEs and the 3 key records they lead to, SPF TXT and the TXT of
# its include: 10 per domain).
# BIND 9 (.ci/interop/lib.sh, as the interop run starts it) serves those records on a free loopback port.
# Then, in alternating rounds:
#   trustmail sweep: every record made due (`dns_sweep make-due`), then one pass of the background job's
#              pipeline (`jobs::dns::sweep_due`, --concurrency checks in flight, read-ahead leases, results
#              written in grouped transactions) with `dns_sweep sweep --scheduled`: every record looked up,
#              compared and saved; DNS queries counted with the dns_queries_total counter;
#   trustmail record checks alone: the same lookups and comparisons (dns::check_record) with nothing read
#              or written in the store while timed: where the sweep's time goes, DNS client or store;
#   dnsperf:   the same names and types (queries.txt), for as long as trustmail's sweep took (>= 1 s).
# It prints domains checked/s, trustmail's queries/s, how many records ended ACTIVE (all must), dnsperf's
# queries/s and the ratio trustmail q/s / dnsperf q/s (median of the rounds' ratios). Target: ratio >= 0.5;
# the script reports whether it is met and fails only when the benchmark itself cannot run.
#
# Knobs (environment): BENCH_ROUNDS (default 5), BENCH_CONCURRENCY (domains checked at once, 128, as the job),
# BENCH_ENVIRONMENTS (20), BENCH_DOMAINS (per environment, 50; at most 50), BENCH_DB_DIR (where the SQLite
# file lives; default the scratch folder, set /dev/shm to take fsync out), BENCH_PERF=1 (one more sweep
# and one more run of the record checks alone under `perf record`, with its top symbols), BENCH_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres:
# then the same sweep on a fresh PostgreSQL database, by one process and by BENCH_REPLICAS (2) processes at once,
# which must check every domain exactly once between them; the combined rate is all their queries over the
# slowest one's time), BENCH_DNS_TRANSPORT (udp, as the default configuration; tcp = dns.transport "tcp").
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BUILD=$ROOT/.ci/build
ROUNDS=${BENCH_ROUNDS:-5}
CONCURRENCY=${BENCH_CONCURRENCY:-128}
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
TRANSPORT=()
[ "${BENCH_DNS_TRANSPORT:-udp}" = tcp ] && TRANSPORT=(--tcp)
STORE=(--database "$DB_DIR/trustmail.db" --master-key "$WORK/master.key" "${TRANSPORT[@]}")

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
tm_rss_all=()
tm_writes_all=()
lookups_qps_all=()
lookups_cpu_all=()
perf_qps_all=()
for round in $(seq 1 "$ROUNDS"); do
	section "round $round/$ROUNDS: trustmail sweep (concurrency $CONCURRENCY)"
	"$SWEEP" "${STORE[@]}" make-due
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
	tm_rss_all+=("$(field peak_rss_mb "$WORK/sweep$round.out")")
	tm_writes_all+=("$(field writes "$WORK/sweep$round.out")")
	lookups_qps_all+=("$(field queries_per_s "$WORK/lookups$round.out")")
	lookups_cpu_all+=("$(field cpu_seconds "$WORK/lookups$round.out")")
	perf_qps_all+=("$qps")
	ratios+=("$(awk -v a="${tm_qps_all[-1]}" -v b="$qps" 'BEGIN { printf "%.3f", a / b }')")
	lookup_ratios+=("$(awk -v a="${lookups_qps_all[-1]}" -v b="$qps" 'BEGIN { printf "%.3f", a / b }')")
done

if [ "$PERF" = 1 ]; then
	# profile NAME ARGS...: one more run of the sweep process under perf record, its top symbols and threads.
	profile() {
		local name=$1
		shift
		perf record -q -g -o "$WORK/perf-$name.data" -- "$SWEEP" "${STORE[@]}" sweep --dns "127.0.0.1:$BIND_PORT" \
			--concurrency "$CONCURRENCY" "$@" 2>"$WORK/perf-$name.stderr"
		perf_top "$WORK/perf-$name.data"
	}
	section "profile: one more sweep under perf record (on-CPU samples of the sweep process)"
	"$SWEEP" "${STORE[@]}" make-due
	profile sweep --scheduled
	section "profile: the record checks alone under perf record"
	profile lookups --lookups-only
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
printf '%-44s %12s\n' "peak RSS of the sweep process (MB)" "$(median "${tm_rss_all[@]}")"
printf '%-44s %12s\n' "result transactions per sweep" "$(median "${tm_writes_all[@]}")"
echo
printf 'ratio trustmail q/s / dnsperf q/s: %s   (target >= %s: %s)\n' "$RATIO" "$TARGET_RATIO" \
	"$(met "$RATIO >= $TARGET_RATIO")"

# ---------------------------------------------------------------------------------------------------
# Replicas on one PostgreSQL: BENCH_POSTGRES_URL (a server URL; the benchmark makes and drops its own
# database) runs the same sweep with one process, then with BENCH_REPLICAS (2) processes at once.
[ -n "${BENCH_POSTGRES_URL:-}" ] || exit 0
REPLICAS=${BENCH_REPLICAS:-2}
need_commands psql
PG_DB=trustmail_bench_dns
PG_URL="${BENCH_POSTGRES_URL%/*}/$PG_DB"
section "PostgreSQL: a fresh database $PG_DB, the same setup, BIND restarted with its records"
psql "$BENCH_POSTGRES_URL" -q -c "DROP DATABASE IF EXISTS $PG_DB" -c "CREATE DATABASE $PG_DB" >/dev/null
PG_STORE=(--database-url "$PG_URL" --master-key "$WORK/master-pg.key" "${TRANSPORT[@]}")
mkdir "$WORK/bind-pg"
"$SWEEP" "${PG_STORE[@]}" setup --out "$WORK/bind-pg" --environments "$ENVIRONMENTS" --domains "$DOMAINS" \
	2>"$WORK/setup-pg.stderr"
bind_stop
bind_start "$WORK/bind-pg" trustmail.example
TOTAL_DOMAINS=$((ENVIRONMENTS * DOMAINS))

pg_sweep() { # pg_sweep ROUND N: N processes sweep at once; prints domains, queries, seconds (the slowest); their lines on stderr
	local round=$1 n=$2 i pids=()
	"$SWEEP" "${PG_STORE[@]}" make-due
	for i in $(seq 1 "$n"); do
		"$SWEEP" "${PG_STORE[@]}" sweep --dns "127.0.0.1:$BIND_PORT" --concurrency "$CONCURRENCY" --scheduled \
			>"$WORK/pg$round-$n-$i.out" 2>"$WORK/pg$round-$n-$i.stderr" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || die "a PostgreSQL sweep process failed"; done
	local domains=0 queries=0 seconds=0
	for i in $(seq 1 "$n"); do
		sed 's/^/  /' "$WORK/pg$round-$n-$i.out" | grep -v RESULT >&2
		domains=$((domains + $(field domains "$WORK/pg$round-$n-$i.out")))
		queries=$((queries + $(field queries "$WORK/pg$round-$n-$i.out")))
		seconds=$(awk -v a="$seconds" -v b="$(field seconds "$WORK/pg$round-$n-$i.out")" 'BEGIN { print (b > a) ? b : a }')
	done
	[ "$domains" = "$TOTAL_DOMAINS" ] ||
		die "$n processes checked $domains domains in all, not $TOTAL_DOMAINS: a domain was checked twice or not at all"
	echo "$domains $queries $seconds"
}

pg_one=()
pg_many=()
pg_perf=()
for round in $(seq 1 "$ROUNDS"); do
	section "round $round/$ROUNDS: PostgreSQL, 1 process"
	read -r _ q sec < <(pg_sweep "$round" 1)
	pg_one+=("$(awk -v q="$q" -v s="$sec" 'BEGIN { printf "%.1f", q / s }')")
	section "round $round/$ROUNDS: PostgreSQL, $REPLICAS processes at once (each domain checked once in all)"
	read -r _ q sec < <(pg_sweep "$round" "$REPLICAS")
	pg_many+=("$(awk -v q="$q" -v s="$sec" 'BEGIN { printf "%.1f", q / s }')")
	duration=$(awk -v s="$sec" 'BEGIN { printf "%.2f", (s < 1 ? 1 : s) }')
	dnsperf -s 127.0.0.1 -p "$BIND_PORT" -d "$WORK/bind-pg/queries.txt" -l "$duration" >"$WORK/pg-dnsperf$round.out" 2>&1
	pg_perf+=("$(dnsperf_qps "$WORK/pg-dnsperf$round.out")")
done
psql "$BENCH_POSTGRES_URL" -q -c "DROP DATABASE IF EXISTS $PG_DB" >/dev/null
QPD=$(awk -v q="$(wc -l <"$WORK/bind-pg/queries.txt")" -v d="$TOTAL_DOMAINS" 'BEGIN { print q / d }')
section "results on PostgreSQL (median of $ROUNDS rounds; $TOTAL_DOMAINS domains, $QPD queries per domain)"
printf '%-44s %12s %14s %12s\n' "" "1 process" "$REPLICAS processes" "dnsperf"
printf '%-44s %12.0f %14.0f %12.0f\n' "DNS queries/s" "$(median "${pg_one[@]}")" "$(median "${pg_many[@]}")" \
	"$(median "${pg_perf[@]}")"
printf '%-44s %12.0f %14.0f\n' "domains checked/s" "$(awk -v q="$(median "${pg_one[@]}")" -v p="$QPD" 'BEGIN { print q / p }')" \
	"$(awk -v q="$(median "${pg_many[@]}")" -v p="$QPD" 'BEGIN { print q / p }')"

