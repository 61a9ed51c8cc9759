# Shell helpers shared by .ci/run, .ci/interop/run.sh and bench/*.sh: messages, starting trustmail and
# stopping background servers, their logs, Debian packages, free ports and a benchmark's figures. Source
# it, e.g.
#   . "$(dirname "${BASH_SOURCE[0]}")/../.ci/lib.sh"
# LOG_TAG names the script in its messages and section titles (default: the script's file name), so
# that the interop run's output can be told from .ci/run's around it: LOG_TAG=interop.
# shellcheck shell=bash

# section TITLE...: a step's title, on a line of its own.
section() { printf '\n==== %s: %s ====\n' "${LOG_TAG:-${0##*/}}" "$*"; }

# note MESSAGE...: MESSAGE on stderr, tagged with the script.
note() { printf '%s: %s\n' "${LOG_TAG:-${0##*/}}" "$*" >&2; }

# die MESSAGE...: note MESSAGE and exit 1 (the caller's EXIT trap runs).
die() {
	note "$@"
	exit 1
}

# stop_pid PID [TIMEOUT_S]: stops a background process of this shell: SIGTERM, up to TIMEOUT_S seconds
# (default 10) for it to exit, then SIGKILL; then reaps it. An empty PID, or one already gone, is fine.
# Always returns 0: a caller that must know the process was still running checks `kill -0` first.
stop_pid() {
	local pid=${1:-} timeout=${2:-10} tenths
	[ -n "$pid" ] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((tenths = 0; tenths < timeout * 10; tenths++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			note "pid $pid still running ${timeout} s after SIGTERM; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || true
}

# show_logs LINES FILE...: on stderr, each non-empty FILE: whole when it is short, else its first 5 lines
# (where a panic's message is) and its last LINES lines (where it ended).
show_logs() {
	local lines=$1 f
	shift
	for f in "$@"; do
		[ -s "$f" ] || continue
		printf '\n---- %s ----\n' "$f" >&2
		if [ "$(wc -l <"$f")" -gt $((lines + 5)) ]; then
			head -n 5 "$f" >&2
			printf '[…]\n' >&2
			tail -n "$lines" "$f" >&2
		else
			cat "$f" >&2
		fi
	done
}

# trustmail_start DIR [VAR=VALUE...]: starts "$TRUSTMAIL serve" in the background on 127.0.0.1 (port 0:
# the kernel picks it; public_url, and so tokenUrl, names the port bound) with a fresh SQLite database
# and master key in DIR, `test` as a public suffix and the VAR=VALUE settings on top. Its output goes to
# DIR/trustmail.stdout and DIR/trustmail.stderr. Waits (10 s at most each) for its bootstrap JSON and
# for GET /healthz to answer 200, then takes a token with the bootstrap client. Sets TM_PID (the
# caller's EXIT trap stops it: stop_pid "$TM_PID"), BASE (scheme://host:port) and AUTH (the
# Authorization header with the token).
trustmail_start() {
	local dir=$1 tries boot token_url client_id client_secret token
	shift
	env TRUSTMAIL_LISTEN=127.0.0.1:0 \
		TRUSTMAIL_DATABASE_URL="sqlite://$dir/trustmail.db" \
		TRUSTMAIL_SECRETS__MASTER_KEY_FILE="$dir/master.key" \
		TRUSTMAIL_DOMAINS__EXTRA_PUBLIC_SUFFIXES=test \
		"$@" \
		"$TRUSTMAIL" serve >"$dir/trustmail.stdout" 2>"$dir/trustmail.stderr" </dev/null &
	TM_PID=$!
	for tries in $(seq 1 100); do
		[ -s "$dir/trustmail.stdout" ] && break
		kill -0 "$TM_PID" 2>/dev/null || die "trustmail serve exited before printing its bootstrap JSON"
		[ "$tries" -lt 100 ] || die "trustmail serve printed no bootstrap JSON within 10 s"
		sleep 0.1
	done
	boot=$(head -n 1 "$dir/trustmail.stdout")
	client_id=$(jq -er .clientId <<<"$boot")
	client_secret=$(jq -er .clientSecret <<<"$boot")
	token_url=$(jq -er .tokenUrl <<<"$boot")
	BASE=$(sed -E 's#^(https?://[^/]+).*#\1#' <<<"$token_url")
	for tries in $(seq 1 100); do
		curl -sf -o /dev/null "$BASE/healthz" && break
		kill -0 "$TM_PID" 2>/dev/null || die "trustmail serve exited"
		[ "$tries" -lt 100 ] || die "GET $BASE/healthz did not answer 200 within 10 s"
		sleep 0.1
	done
	token=$(curl -sf -u "$client_id:$client_secret" -d grant_type=client_credentials "$token_url" |
		jq -er .access_token)
	# shellcheck disable=SC2034 # AUTH is for the caller
	AUTH="Authorization: Bearer $token"
	echo "trustmail pid $TM_PID at $BASE"
}

# apt_install PKG... : installs Debian packages, running apt-get update only when the first try fails.
apt_install() {
	apt-get install -y --no-install-recommends "$@" ||
		{ apt-get update && apt-get install -y --no-install-recommends "$@"; }
}

# need_commands CMD... : installs the Debian packages named like the missing commands, then dies unless
# every command is there.
need_commands() {
	local cmd missing=()
	for cmd in "$@"; do
		command -v "$cmd" >/dev/null || missing+=("$cmd")
	done
	[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
	for cmd in "$@"; do
		command -v "$cmd" >/dev/null || die "$cmd is needed (apt-get install $cmd)"
	done
}

# free_port: a loopback port free for both TCP and UDP right now (DNS needs both). The kernel picks it.
free_port() {
	python3 - <<'EOF'
import socket
for _ in range(50):
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    port = tcp.getsockname()[1]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        udp.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        udp.close()
        tcp.close()
    print(port)
    break
else:
    raise SystemExit("no port free for both TCP and UDP")
EOF
}

# median NUMBER...: the median of the numbers.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# met AWK-CONDITION: "met" when the condition holds, else "NOT met".
met() {
	if awk "BEGIN { exit !($1) }"; then echo met; else echo "NOT met"; fi
}

# perf_top DATA: a benchmark's profile summary from `perf record -g -o DATA`: the top 30 symbols by
# self time, then the top 10 threads (the reports are kept beside DATA as DATA.txt and DATA-comm.txt).
perf_top() {
	local data=$1
	perf report -i "$data" --no-children --sort dso,symbol --stdio >"$data.txt" 2>/dev/null
	awk '/^ +[0-9.]+%/ && n++ < 30 { sub(/[ -]+$/, ""); print }' "$data.txt"
	echo
	echo "by thread:"
	perf report -i "$data" --no-children --sort comm --stdio >"$data-comm.txt" 2>/dev/null
	awk '/^ +[0-9.]+%/ && n++ < 10 { sub(/[ -]+$/, ""); print }' "$data-comm.txt"
}
