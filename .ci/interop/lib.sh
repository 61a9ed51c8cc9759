# BIND helpers for the interop run (.ci/interop/run.sh) and bench/dns_sweep.sh: an authoritative BIND 9
# on loopback (bind_start says what it serves). Source it; it sources ../lib.sh (die, stop_pid,
# apt_install, free_port). The caller stops BIND in its own EXIT trap (bind_stop).
# shellcheck shell=bash

# shellcheck source=.ci/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

BIND_PID=""
BIND_PORT=""

# ensure_bind: named, named-checkzone, nsupdate and dig, from Debian's packages when named is missing.
ensure_bind() {
	command -v named >/dev/null || apt_install bind9 bind9-dnsutils
	local tool
	for tool in named named-checkzone nsupdate dig; do
		command -v "$tool" >/dev/null || die "$tool is needed (apt-get install bind9 bind9-dnsutils)"
	done
}

# bind_start DIR [--forward ZONE PORT]... [ZONE...]: named authoritative on 127.0.0.1:<free port> (sets BIND_PORT,
# BIND_PID), serving `test.` (read-only: DMARC lookups walk up to it), `shopco.test.` and each ZONE, both open to
# nsupdate from 127.0.0.1. DIR must be a fresh directory (a stale .jnl journal gives stale answers). Records in
# DIR/<zone>.records (zone-file lines, absolute names) are appended to that zone's file before start.
# named's log is DIR/named.stderr.
# --forward ZONE PORT: BIND also answers ZONE, a child of a zone it serves, by asking the DNS server on
# 127.0.0.1:PORT (nothing needs to listen there yet). Below a zone BIND is primary for, a forward zone alone is
# not enough: the parent gets a delegation (NS ns1.ZONE + glue), and recursion is on for loopback with no
# cache, so that an answer changed behind ZONE shows at once. BIND is then also primary for an empty root zone,
# so that recursion for a name outside every zone ends in NXDOMAIN here rather than in a query to the Internet.
bind_start() {
	local dir=$1 zone parent i
	shift
	local forwards=() # ZONE PORT pairs
	while [ "${1:-}" = --forward ]; do
		[ $# -ge 3 ] || die "bind_start: --forward needs ZONE and PORT"
		forwards+=("$2" "$3")
		shift 3
	done
	local zones=(test shopco.test "$@")
	BIND_PORT=$(free_port)
	local recursion='recursion no;'
	[ ${#forwards[@]} -eq 0 ] ||
		recursion='recursion yes; allow-recursion { 127.0.0.1; }; max-cache-ttl 0; max-ncache-ttl 0;'
	{
		cat <<EOF
options { directory "$dir"; pid-file none; session-keyfile none;
          listen-on port $BIND_PORT { 127.0.0.1; }; listen-on-v6 { none; };
          $recursion dnssec-validation no; notify no; };
controls { };
zone "test" { type primary; file "test.zone"; };
EOF
		for zone in "${zones[@]:1}"; do
			printf 'zone "%s" { type primary; file "%s.zone"; allow-update { 127.0.0.1; }; };\n' "$zone" "$zone"
		done
		if [ ${#forwards[@]} -gt 0 ]; then
			printf 'zone "." { type primary; file "root.zone"; };\n'
			# shellcheck disable=SC2016 # $TTL is zone-file syntax, not a shell variable
			printf '$TTL 60\n@ IN SOA ns1.root. hostmaster.root. 1 3600 600 86400 60\n@ IN NS ns1.root.\nns1.root. IN A 127.0.0.1\n' \
				>"$dir/root.zone"
		fi
		for ((i = 0; i < ${#forwards[@]}; i += 2)); do
			printf 'zone "%s" { type forward; forward only; forwarders { 127.0.0.1 port %s; }; };\n' \
				"${forwards[i]}" "${forwards[i + 1]}"
		done
	} >"$dir/named.conf"
	for ((i = 0; i < ${#forwards[@]}; i += 2)); do
		zone=${forwards[i]}
		parent=${zone#*.}
		[[ " ${zones[*]} " == *" $parent "* ]] || die "bind_start: --forward $zone: BIND does not serve its parent $parent"
		printf '%s. IN NS ns1.%s.\nns1.%s. IN A 127.0.0.1\n' "$zone" "$zone" "$zone" >>"$dir/$parent.delegations"
	done
	for zone in "${zones[@]}"; do
		{
			# shellcheck disable=SC2016 # $TTL is zone-file syntax, not a shell variable
			printf '$TTL 60\n@ IN SOA ns1.%s. hostmaster.%s. 1 3600 600 86400 60\n' "$zone" "$zone"
			printf '@ IN NS ns1\nns1 IN A 127.0.0.1\n'
			if [ -f "$dir/$zone.delegations" ]; then cat "$dir/$zone.delegations"; fi
			if [ -f "$dir/$zone.records" ]; then cat "$dir/$zone.records"; fi
		} >"$dir/$zone.zone"
	done
	named -g -c "$dir/named.conf" >"$dir/named.stdout" 2>"$dir/named.stderr" </dev/null &
	BIND_PID=$!
	local tries
	for zone in "${zones[@]}"; do
		for tries in $(seq 1 100); do
			dig +short +time=1 +tries=1 -p "$BIND_PORT" @127.0.0.1 SOA "$zone." 2>/dev/null | grep -q . && break
			kill -0 "$BIND_PID" 2>/dev/null || die "named exited at start (log: $dir/named.stderr)"
			[ "$tries" -lt 100 ] || die "named did not serve $zone. within 10 s (log: $dir/named.stderr)"
			sleep 0.1
		done
	done
	echo "named pid $BIND_PID on 127.0.0.1:$BIND_PORT, zones: ${zones[*]}"
	for ((i = 0; i < ${#forwards[@]}; i += 2)); do
		echo "  and ${forwards[i]}, delegated and forwarded to 127.0.0.1:${forwards[i + 1]}"
	done
}

# bind_stop: stops named if bind_start started it.
bind_stop() {
	stop_pid "$BIND_PID"
	BIND_PID=""
}

# nsupdate_send ZONE: sends the `update add|delete …` lines read from stdin to BIND as one update.
nsupdate_send() {
	{
		printf 'server 127.0.0.1 %s\nzone %s\n' "$BIND_PORT" "$1"
		cat
		printf 'send\n'
	} | nsupdate
}
