#!/usr/bin/env bash
# Benchmark: messages/s through trustmail's whole sending path, against the SMTP sink's own rate.
#
#   bench/send_path.sh
#
# Builds release (`trustmail`) and a Python venv with aiosmtpd (.ci/build/bench-venv). BIND 9
# (.ci/interop/lib.sh) serves shopco.test. and trustmail.example.; aiosmtpd (bench/smtp_sink.py's
# CountingSink) is the relay and writes one line per message it accepts. For each DKIM algorithm
# (rsa-2048, ed25519) a fresh `trustmail serve` on SQLite (resolvers = BIND, the relay = the sink,
# limits.messages_per_minute raised, `dkim.algorithm` set) gets an environment and a domain, whose
# …/zoneFile records and DKIM key TXTs (`trustmail dkim zone-file`) are published with nsupdate; the
# domain is checked (POST …/verification: everything ACTIVE) and a trusted sender made (ACTIVE at once,
# the environment TXT being published). Then, in alternating rounds:
#   trustmail: BENCH_MESSAGES (500) × POST /v1/environments/{envId}/messages (a 2 KB text + HTML
#              message; curl, BENCH_CONCURRENCY (32) at a time), clock stopped when the sink has counted
#              them all: API → compose → outbox row (SQLite) → outbox job → DKIM sign → lettre → sink;
#   baseline:  Python's smtplib sends the message trustmail delivered (signed, same size) as many times
#              to the same sink, one connection, one after the other (as the outbox job delivers).
# It prints messages/s of both, their ratio (median of the rounds' ratios), and where the time goes:
# the POST phase's rate (accepted/s), the delivery tail after the last 202, and trustmail's CPU per
# message (user + system from /proc). No target in the issue for this figure; the script fails only
# when the benchmark itself cannot run (or a POST is not 202, or a message never arrives).
#
# Knobs (environment): BENCH_ROUNDS (3), BENCH_MESSAGES (500), BENCH_CONCURRENCY (32), BENCH_DB_DIR
# (where the SQLite file lives; /dev/shm takes fsync out), BENCH_PERF=1 (one more trustmail round under
# `perf record`, with its top symbols and threads), BENCH_ALGORITHMS ("rsa-2048 ed25519").
# shellcheck disable=SC2034 # the RESULT_* arrays are read through row()'s nameref
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BUILD=$ROOT/.ci/build
VENV=$BUILD/bench-venv
ROUNDS=${BENCH_ROUNDS:-3}
MESSAGES=${BENCH_MESSAGES:-500}
CONCURRENCY=${BENCH_CONCURRENCY:-32}
PERF=${BENCH_PERF:-0}
read -r -a ALGORITHMS <<<"${BENCH_ALGORITHMS:-rsa-2048 ed25519}"
AIOSMTPD_VERSION=1.4.6
REGION=us-east-1

LOG_TAG=bench
# shellcheck source=.ci/lib.sh
. "$ROOT/.ci/lib.sh"
# shellcheck source=.ci/interop/lib.sh
. "$ROOT/.ci/interop/lib.sh"

TM_PID=""
SMTP_PID=""
WORK=""
DB_DIR=""
cleanup() {
	local rc=$?
	stop_pid "$TM_PID"
	stop_pid "$SMTP_PID"
	bind_stop
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if [ "$rc" -ne 0 ]; then
			show_logs 20 "$WORK"/*.stderr "$WORK"/*/*.stderr "$WORK"/bind/named.stderr
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
need_commands curl jq python3
if [ "$PERF" = 1 ]; then
	command -v perf >/dev/null || apt_install linux-perf
	command -v perf >/dev/null || die "perf is needed for BENCH_PERF=1"
fi
mkdir -p "$BUILD"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -c "import aiosmtpd" 2>/dev/null ||
	"$VENV/bin/pip" install --quiet --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION"
cargo build --release --bin trustmail
TRUSTMAIL=$ROOT/target/release/trustmail
[ -x "$TRUSTMAIL" ] || die "no release binary at $TRUSTMAIL"

WORK=$(mktemp -d "$BUILD/bench-send.XXXXXX")
mkdir "$WORK/bind"
if [ -n "${BENCH_DB_DIR:-}" ]; then
	DB_DIR=$(mktemp -d "$BENCH_DB_DIR/trustmail-bench-send.XXXXXX")
fi

# ---------------------------------------------------------------------------------------------------
section "BIND 9 and the SMTP sink"
bind_start "$WORK/bind" trustmail.example
SMTP_PORT=$(free_port)
COUNT=$WORK/sink.count
: >"$COUNT"
PYTHONPATH=$ROOT/bench PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" \
	-c smtp_sink.CountingSink "$COUNT" >"$WORK/aiosmtpd.stdout" 2>"$WORK/aiosmtpd.stderr" </dev/null &
SMTP_PID=$!
for tries in $(seq 1 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$SMTP_PORT") 2>/dev/null && break
	kill -0 "$SMTP_PID" 2>/dev/null || die "aiosmtpd exited at start"
	[ "$tries" -lt 100 ] || die "aiosmtpd did not listen on 127.0.0.1:$SMTP_PORT within 10 s"
	sleep 0.1
done
echo "aiosmtpd pid $SMTP_PID on 127.0.0.1:$SMTP_PORT"

# ---------------------------------------------------------------------------------------------------
# call METHOD PATH STATUS [BODY] -> the response body; dies unless the answer is STATUS.
call() {
	local method=$1 path=$2 want=$3 out code
	local args=(-s -X "$method" -H "$AUTH" -w '\n%{http_code}')
	[ $# -lt 4 ] || args+=(-H "Content-Type: application/json" --data-binary "$4")
	out=$(curl "${args[@]}" "$BASE$path") || die "$method $path: curl failed"
	code=${out##*$'\n'}
	[ "$code" = "$want" ] || die "$method $path answered $code, expected $want: ${out%$'\n'*}"
	printf '%s' "${out%$'\n'*}"
}
delivered() { wc -l <"$COUNT"; }
# wait_delivered COUNT: until the sink has counted COUNT messages in all (60 s without progress: die).
wait_delivered() {
	local want=$1 last=-1 now stalled=0
	while now=$(delivered) && [ "$now" -lt "$want" ]; do
		if [ "$now" = "$last" ]; then stalled=$((stalled + 1)); else stalled=0; fi
		[ "$stalled" -lt 1200 ] || die "the sink counted $now of $want messages, nothing more for 60 s"
		last=$now
		sleep 0.05
	done
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
now_s() { date +%s.%N; }
field() { awk -v k="$1" '$1 == "RESULT" { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' "$2"; }
TICKS=$(getconf CLK_TCK)

# post_messages N OUT: N × POST …/messages, CONCURRENCY at a time; dies unless every answer is 202.
post_messages() {
	local n=$1 out=$2 accepted
	curl -s -Z --parallel-max "$CONCURRENCY" -H "$AUTH" -H 'Content-Type: application/json' \
		--data-binary @"$WORK/message.json" -w '\n%{http_code}\n' "$BASE/v1/environments/$ENV_ID/messages?n=[1-$n]" \
		>"$out" 2>"$out.stderr" || die "curl failed posting messages"
	accepted=$(grep -cx 202 "$out" || true)
	[ "$accepted" = "$n" ] || die "$accepted of $n POST …/messages answered 202: $(grep -vx 202 "$out" | grep -m1 .)"
}

text=$(printf 'Thank you for your order 4711. Your parcel leaves our warehouse today. %.0s' $(seq 1 12))
jq -n --arg text "$text" --arg html "<p>$text</p>" \
	'{from: "Shop Co <noreply@DOMAIN>", to: ["Ann Example <ann@example.com>"], cc: ["orders@example.com"],
	  subject: "Your order 4711 ships today (bench)", text: $text, html: $html}' >"$WORK/message.template.json"

declare -A RESULT_TM RESULT_BASE RESULT_RATIO RESULT_ACCEPT RESULT_TAIL RESULT_CPU RESULT_SIZE RESULT_SHARE
for algorithm in "${ALGORITHMS[@]}"; do
	DIR=$WORK/$algorithm
	mkdir "$DIR"
	DOMAIN=${algorithm%%-*}.shopco.test
	db_dir=${DB_DIR:-$DIR}
	section "$algorithm: trustmail serve (SQLite in $db_dir), environment, domain $DOMAIN, trusted sender"
	STORE_ENV=(TRUSTMAIL_DATABASE_URL="sqlite://$db_dir/$algorithm.db" TRUSTMAIL_SECRETS__MASTER_KEY_FILE="$DIR/master.key")
	trustmail_start "$DIR" "${STORE_ENV[@]}" \
		TRUSTMAIL_DNS__RESOLVERS="127.0.0.1:$BIND_PORT" \
		TRUSTMAIL_DNS__TIMEOUT_MS=1000 \
		TRUSTMAIL_MAIL__SMTP_URL="smtp://127.0.0.1:$SMTP_PORT" \
		TRUSTMAIL_LIMITS__MESSAGES_PER_MINUTE=100000000 \
		TRUSTMAIL_DKIM__ALGORITHM="$algorithm"
	ENV_ID=$(call POST /v1/environments 201 '{"name":"Bench","region":"NA"}' | jq -er .id)
	DOMAIN_ID=$(call POST "/v1/environments/$ENV_ID/emailDomains" 201 "{\"domainName\":\"$DOMAIN\"}" | jq -er .id)
	D=/v1/environments/$ENV_ID/emailDomains/$DOMAIN_ID
	call GET "$D/zoneFile" 200 | grep -v '^;' | grep . | sed 's/^/update add /' | nsupdate_send shopco.test
	# Only the TXT lines are used; the in-zone ns1 needs an address for the file to be printed at all.
	env "${STORE_ENV[@]}" TRUSTMAIL_DKIM_DNS__NAMESERVER_ADDRESSES='["127.0.0.1"]' \
		"$TRUSTMAIL" dkim zone-file --region "$REGION" >"$DIR/dkim.zone" 2>"$DIR/zone-file.stderr"
	# "SELECTOR IN TXT …" under $ORIGIN -> "update add SELECTOR.ORIGIN 300 TXT …"
	awk '$1 == "$ORIGIN" { origin = $2 } $2 == "IN" && $3 == "TXT" { $2 = "300"; print "update add " $1 "." origin, substr($0, length($1) + 2) }' \
		"$DIR/dkim.zone" >"$DIR/dkim.nsupdate"
	[ -s "$DIR/dkim.nsupdate" ] || die "trustmail dkim zone-file printed no key TXT"
	nsupdate_send trustmail.example <"$DIR/dkim.nsupdate"
	echo "published $(call GET "$D/zoneFile" 200 | grep -cv '^;') domain records and $(grep -c TXT "$DIR/dkim.zone") DKIM key TXTs"
	checked=$(call POST "$D/verification" 200)
	inactive=$(jq -r '[.. | objects | select(has("status") and .status != "ACTIVE")] | length' <<<"$checked")
	[ "$inactive" = 0 ] || die "records not ACTIVE after publishing: $checked"
	sender=$(call POST "$D/trustedEmails" 201 "{\"emailAddress\":\"noreply@$DOMAIN\"}")
	[ "$(jq -r .status <<<"$sender")" = ACTIVE ] || die "the trusted sender is not ACTIVE: $sender"
	sed "s/DOMAIN/$DOMAIN/" "$WORK/message.template.json" >"$WORK/message.json"

	section "$algorithm: warm-up, 50 messages"
	before=$(delivered)
	rm -f "$COUNT.first.eml"
	post_messages 50 "$DIR/warmup.out"
	wait_delivered $((before + 50))
	[ -s "$COUNT.first.eml" ] || die "the sink kept no message"
	cp "$COUNT.first.eml" "$DIR/delivered.eml"
	grep -q '^DKIM-Signature: v=1; a=' "$DIR/delivered.eml" || die "the delivered message has no DKIM-Signature"
	size=$(wc -c <"$DIR/delivered.eml")
	echo "delivered message: $size bytes, $(grep -o 'a=[a-z0-9-]*' "$DIR/delivered.eml" | head -n 1)"

	tm_rates=() base_rates=() ratios=() accept_rates=() tails=() cpus=() shares=()
	for round in $(seq 1 "$ROUNDS"); do
		section "$algorithm round $round/$ROUNDS: trustmail, $MESSAGES messages, $CONCURRENCY POSTs at a time"
		before=$(delivered)
		cpu0=$(cpu_ticks "$TM_PID")
		t0=$(now_s)
		post_messages "$MESSAGES" "$DIR/post$round.out"
		t1=$(now_s)
		wait_delivered $((before + MESSAGES))
		t2=$(now_s)
		cpu1=$(cpu_ticks "$TM_PID")
		read -r rate accept tail cpu share < <(awk -v n="$MESSAGES" -v t0="$t0" -v t1="$t1" -v t2="$t2" \
			-v c="$((cpu1 - cpu0))" -v hz="$TICKS" -v cores="$(nproc)" \
			'BEGIN { printf "%.1f %.1f %.3f %.0f %.0f\n", n / (t2 - t0), n / (t1 - t0), t2 - t1,
			         1e6 * c / hz / n, 100 * c / hz / ((t2 - t0) * cores) }')
		echo "trustmail: $rate messages/s end to end; POSTs accepted at $accept/s; last delivery ${tail} s after the last 202; CPU $cpu µs/message ($share% of $(nproc) cores)"

		section "$algorithm round $round/$ROUNDS: baseline, smtplib sends the same message $MESSAGES times"
		"$VENV/bin/python" "$ROOT/bench/smtp_sink.py" send "$SMTP_PORT" "$DIR/delivered.eml" "$MESSAGES" |
			tee "$DIR/base$round.out"
		base=$(field messages_per_s "$DIR/base$round.out")
		[ -n "$base" ] || die "the baseline printed no RESULT line"
		tm_rates+=("$rate") base_rates+=("$base") accept_rates+=("$accept") tails+=("$tail") cpus+=("$cpu") shares+=("$share")
		ratios+=("$(awk -v a="$rate" -v b="$base" 'BEGIN { printf "%.3f", a / b }')")
	done

	if [ "$PERF" = 1 ]; then
		section "$algorithm: profile, one more trustmail round under perf record (the trustmail process)"
		before=$(delivered)
		perf record -q -g -p "$TM_PID" -o "$DIR/perf.data" 2>"$DIR/perf.stderr" &
		perf_pid=$!
		sleep 0.5
		post_messages "$MESSAGES" "$DIR/perf-post.out"
		wait_delivered $((before + MESSAGES))
		kill -INT "$perf_pid"
		wait "$perf_pid" || true
		perf_top "$DIR/perf.data"
		echo
		echo "with callees (children), selected frames:"
		perf report -i "$DIR/perf.data" --children --sort symbol --stdio -g none >"$DIR/perf-children.txt" 2>/dev/null
		grep -E 'Signer::sign|DkimSigner|RsaKeyPair|rsa|sqlite3_step|fsync|fdatasync|send_message|OutboxDelivery|lettre|compose' \
			"$DIR/perf-children.txt" | head -n 25 || true
	fi
	kill -0 "$TM_PID" 2>/dev/null || die "trustmail serve died during the runs"
	stop_pid "$TM_PID"
	TM_PID=""

	echo "$algorithm per-round ratios: ${ratios[*]}"
	RESULT_TM[$algorithm]=$(median "${tm_rates[@]}")
	RESULT_BASE[$algorithm]=$(median "${base_rates[@]}")
	RESULT_RATIO[$algorithm]=$(median "${ratios[@]}")
	RESULT_ACCEPT[$algorithm]=$(median "${accept_rates[@]}")
	RESULT_TAIL[$algorithm]=$(median "${tails[@]}")
	RESULT_CPU[$algorithm]=$(median "${cpus[@]}")
	RESULT_SHARE[$algorithm]=$(median "${shares[@]}")
	RESULT_SIZE[$algorithm]=$size
done

section "results ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $MESSAGES messages, median of $ROUNDS alternating rounds, SQLite in ${BENCH_DB_DIR:-the scratch folder})"
printf '%-46s' ""
for algorithm in "${ALGORITHMS[@]}"; do printf ' %12s' "$algorithm"; done
echo
row() { # row LABEL FORMAT ARRAY-NAME
	local -n values=$3
	printf '%-46s' "$1"
	for algorithm in "${ALGORITHMS[@]}"; do printf " %12$2" "${values[$algorithm]}"; done
	echo
}
row "delivered message (bytes)" s RESULT_SIZE
row "trustmail messages/s (POST to the sink)" .0f RESULT_TM
row "smtplib messages/s to the same sink" .0f RESULT_BASE
row "ratio trustmail / smtplib (median of rounds)" .2f RESULT_RATIO
row "POSTs accepted/s (while delivery runs)" .0f RESULT_ACCEPT
row "delivery tail after the last 202 (s)" .2f RESULT_TAIL
row "trustmail CPU per message (µs)" .0f RESULT_CPU
row "  as a share of $(nproc) cores × the run (%)" .0f RESULT_SHARE
