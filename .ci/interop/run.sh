#!/usr/bin/env bash
# Interop run: trustmail against real programs nobody here wrote: BIND 9 serves the records, aiosmtpd
# receives the mail, dkimpy verifies its DKIM signatures.
#
#   .ci/interop/run.sh          (called by .ci/run after its release build; runs alone too)
#
# BIND 9 is authoritative for test. and shopco.test. on a free loopback port and takes nsupdate from
# 127.0.0.1; the region's DKIM zone, dkim.shopco.test., is delegated in shopco.test. and BIND forwards it to
# trustmail's own DNS (dkim_dns.listen), so a DKIM CNAME published in shopco.test. leads to the key trustmail
# serves. aiosmtpd is the SMTP relay and keeps every message in a folder (mail_sink.py); `trustmail serve`
# resolves through BIND and sends through aiosmtpd. Then, for a.shopco.test, with RSA-2048 DKIM keys:
#   every record starts VERIFICATION_REQUIRED; everything in …/zoneFile but the environment TXT is
#   published with nsupdate and ownership, DKIM and SPF go ACTIVE while the environment record does not;
#   a trusted sender gets its code by mail and is activated with it; once the environment TXT is
#   published a second sender is ACTIVE at once; the ownership TXT deleted shows MISSING_AFTER_ACTIVE
#   while its status stays ACTIVE;
#   then the sending scenario (send_scenario): BIND answers the signing selector with the CNAME and the key
#   behind it; a MAIL FROM domain goes ACTIVE; a message sent through POST …/messages reaches aiosmtpd and
#   dkimpy (dkim_verify.py, resolving through BIND) verifies it; its envelope sender is on the MAIL FROM
#   domain as a return path; a copy with one body line changed fails; after POST …/dkim/rotate a new message verifies with the
#   new selector and the one sent before still does; …/zoneFile (the default and ?format=bind), with an SOA
#   and NS put in front, passes BIND's named-checkzone; a DSN built with Python's email package and delivered
#   with smtplib to that message's return path at trustmail's feedback MX bounces the recipient (BOUNCED,
#   suppressed, the next message to it refused).
# Then trustmail is restarted with a fresh database and Ed25519 keys, b.shopco.test is published whole, and
# the sending scenario runs again. Last, the web console's browser test (.ci/console/) runs against it.
# Each check is a step; the run goes on past a failed step when later steps do not need it, names every
# failed step at the end and exits 1. Scratch files go in .ci/build/interop.*; kept when a step failed.
#
# Knobs (environment): TRUSTMAIL (binary to test; default: build target/release/trustmail).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
BUILD=$ROOT/.ci/build
VENV=$BUILD/venv
mkdir -p "$BUILD"

# aiosmtpd is the relay; dkimpy verifies signatures, Ed25519 ones with pynacl, and looks keys up with dnspython.
PYTHON_PACKAGES=(aiosmtpd==1.4.6 dkimpy==1.1.8 pynacl==1.6.2 dnspython==2.9.2)
DKIM_ZONE=dkim.shopco.test
DOMAIN=a.shopco.test
SYSTEM_SENDER=interop@trustmail.test
FIRST_SENDER=noreply@$DOMAIN
SECOND_SENDER=alerts@$DOMAIN

LOG_TAG=interop
# shellcheck source=.ci/lib.sh
. "$ROOT/.ci/lib.sh"
# shellcheck source=.ci/interop/lib.sh
. "$ROOT/.ci/interop/lib.sh"

# ---------------------------------------------------------------------------------------------------
# Clean-up: BIND, aiosmtpd and trustmail are stopped whatever happens.
TM_PID=""
SMTP_PID=""
WORK=""
FAILED_STEPS=()
cleanup() {
	local rc=$?
	stop_pid "$TM_PID"
	stop_pid "$SMTP_PID"
	bind_stop
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if [ "$rc" -ne 0 ]; then
			show_logs 30 "$WORK"/*.stderr "$WORK"/ed25519/*.stderr "$WORK"/bind/named.stderr
			printf '\n' >&2
			note "scratch files kept in $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
	if [ ${#FAILED_STEPS[@]} -gt 0 ]; then
		printf '\n' >&2
		note "FAILED steps:"
		printf '  - %s\n' "${FAILED_STEPS[@]}" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT

# step NAME FUNCTION: runs FUNCTION in a subshell with errexit, so any failing command ends the step (a
# function called from a condition would run with errexit off). A failure is recorded, not fatal: after a
# step the later ones need, require_passed stops the run.
LAST_STEP_PASSED=""
step() {
	local rc
	section "$1"
	set +e
	(
		set -e
		"$2"
	)
	rc=$?
	set -e
	LAST_STEP_PASSED=$([ "$rc" -eq 0 ] && echo yes || echo no)
	if [ "$rc" -ne 0 ]; then
		FAILED_STEPS+=("$1")
		note "step FAILED: $1"
	fi
}
require_passed() { # the steps after the last one need it
	[ "$LAST_STEP_PASSED" = yes ] || die "stopping: the remaining steps need the failed one"
}

# ---------------------------------------------------------------------------------------------------
section "tools: curl, jq, BIND 9, aiosmtpd, dkimpy, trustmail"
need_commands curl jq
ensure_bind
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# installed_versions PKG==VERSION...: PKG==<the version in the venv> for each, or nothing when one is missing.
installed_versions() {
	"$VENV/bin/python" -c 'import sys
from importlib.metadata import version
print(" ".join(f"{p}=={version(p)}" for p in (a.split("==")[0] for a in sys.argv[1:])))' "$@" 2>/dev/null || true
}
[ "$(installed_versions "${PYTHON_PACKAGES[@]}")" = "${PYTHON_PACKAGES[*]}" ] ||
	"$VENV/bin/pip" install --quiet --disable-pip-version-check "${PYTHON_PACKAGES[@]}"
echo "$(named -v); $(installed_versions "${PYTHON_PACKAGES[@]}")"
if [ -z "${TRUSTMAIL:-}" ]; then
	cargo build --release --bin trustmail
	TRUSTMAIL=$ROOT/target/release/trustmail
fi
[ -x "$TRUSTMAIL" ] || die "no trustmail binary at $TRUSTMAIL"

WORK=$(mktemp -d "$BUILD/interop.XXXXXX")
mkdir "$WORK/bind" "$WORK/mail"

# ---------------------------------------------------------------------------------------------------
section "BIND 9: authoritative for test. and shopco.test.; $DKIM_ZONE. forwarded to trustmail's DNS"
DKIM_DNS_PORT=$(free_port)
bind_start "$WORK/bind" --forward "$DKIM_ZONE" "$DKIM_DNS_PORT"

# ---------------------------------------------------------------------------------------------------
section "aiosmtpd: SMTP relay writing every message to $WORK/mail"
SMTP_PORT=$(free_port)
# trustmail's feedback MX, where send_dsn.py delivers a bounce.
FEEDBACK_PORT=$(free_port)
# No __pycache__ next to mail_sink.py: the folder is part of the repository.
PYTHONPATH=$ROOT/.ci/interop PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" \
	-c mail_sink.MailSink "$WORK/mail" >"$WORK/aiosmtpd.stdout" 2>"$WORK/aiosmtpd.stderr" </dev/null &
SMTP_PID=$!
for tries in $(seq 1 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$SMTP_PORT") 2>/dev/null && break
	kill -0 "$SMTP_PID" 2>/dev/null || die "aiosmtpd exited at start"
	[ "$tries" -lt 100 ] || die "aiosmtpd did not listen on 127.0.0.1:$SMTP_PORT within 10 s"
	sleep 0.1
done
echo "aiosmtpd pid $SMTP_PID on 127.0.0.1:$SMTP_PORT"

# ---------------------------------------------------------------------------------------------------
# start_trustmail DIR ALGORITHM: trustmail serve with a fresh database in DIR and new DKIM keys of ALGORITHM,
# resolving through BIND, sending through aiosmtpd, answering DNS for the one region's DKIM zone on
# 127.0.0.1:DKIM_DNS_PORT, where BIND forwards that zone.
start_trustmail() {
	DATA_DIR=$1
	trustmail_start "$1" \
		TRUSTMAIL_DNS__RESOLVERS="127.0.0.1:$BIND_PORT" \
		TRUSTMAIL_DNS__TIMEOUT_MS=1000 \
		TRUSTMAIL_DNS__MIN_RECHECK_INTERVAL_S=0 \
		TRUSTMAIL_MAIL__SMTP_URL="smtp://127.0.0.1:$SMTP_PORT" \
		TRUSTMAIL_MAIL__SYSTEM_SENDER="$SYSTEM_SENDER" \
		TRUSTMAIL_REGIONS="[{ name = \"us-east-1\", dkim_zone = \"$DKIM_ZONE\" }]" \
		TRUSTMAIL_DKIM_DNS__LISTEN="127.0.0.1:$DKIM_DNS_PORT" \
		TRUSTMAIL_FEEDBACK__LISTEN="127.0.0.1:$FEEDBACK_PORT" \
		TRUSTMAIL_DKIM__ALGORITHM="$2"
}

section "trustmail serve: resolvers = BIND, smtp_url = aiosmtpd, DKIM zone $DKIM_ZONE on 127.0.0.1:$DKIM_DNS_PORT, rsa-2048"
start_trustmail "$WORK" rsa-2048
dig +short -p "$BIND_PORT" @127.0.0.1 SOA "$DKIM_ZONE." | grep -q . ||
	die "BIND does not answer SOA $DKIM_ZONE. through trustmail's DNS: $(dig -p "$BIND_PORT" @127.0.0.1 SOA "$DKIM_ZONE.")"
echo "BIND answers SOA $DKIM_ZONE.: $(dig +short -p "$BIND_PORT" @127.0.0.1 SOA "$DKIM_ZONE.")"

# call METHOD PATH STATUS [BODY [CONTENT_TYPE]] -> the response body; dies unless the answer is STATUS.
call() {
	local method=$1 path=$2 want=$3 out code
	local args=(-s -X "$method" -H "$AUTH" -w '\n%{http_code}')
	[ $# -lt 4 ] || args+=(-H "Content-Type: ${5:-application/json}" --data-binary "$4")
	out=$(curl "${args[@]}" "$BASE$path") || die "$method $path: curl failed"
	code=${out##*$'\n'}
	[ "$code" = "$want" ] || die "$method $path answered $code, expected $want: ${out%$'\n'*}"
	printf '%s' "${out%$'\n'*}"
}

# status_is TRIES WANT PATH FILTER: GETs PATH (a status GET re-checks DNS here) until every value the jq
# FILTER picks equals WANT, at most TRIES times 0.1 s apart.
status_is() {
	local tries=$1 want=$2 path=$3 filter=$4 body values
	for _ in $(seq 1 "$tries"); do
		body=$(call GET "$path" 200)
		values=$(jq -r "$filter" <<<"$body")
		if [ -n "$values" ] && ! grep -qvx -- "$want" <<<"$values"; then
			echo "GET …${path##*/}: $filter = $want"
			return 0
		fi
		sleep 0.1
	done
	die "GET $path: expected $filter = $want (tries: $tries), last answer: $body"
}

# mail_to ADDRESS: the numbers (0001, …) of the messages received for ADDRESS, one a line.
mail_to() {
	local meta
	for meta in "$WORK"/mail/*.json; do
		[ -e "$meta" ] || continue
		if jq -e --arg to "$1" 'any(.rcpt_tos[]; . == $to)' "$meta" >/dev/null; then
			basename "$meta" .json
		fi
	done
}

# publish FILE: adds FILE's records (zone-file lines from …/zoneFile) to shopco.test. with nsupdate.
publish() {
	sed 's/^/update add /' "$1" | nsupdate_send shopco.test
	echo "published with nsupdate:"
	cat "$1"
}

# new_domain ENVIRONMENT_NAME: a new environment (region NA) with DOMAIN in it; sets ENV_ID, DOMAIN_ID and D.
new_domain() {
	ENV_ID=$(call POST /v1/environments 201 "{\"name\":\"$1\",\"region\":\"NA\"}" | jq -er .id)
	DOMAIN_ID=$(call POST "/v1/environments/$ENV_ID/emailDomains" 201 "{\"domainName\":\"$DOMAIN\"}" | jq -er .id)
	D=/v1/environments/$ENV_ID/emailDomains/$DOMAIN_ID
	echo "environment $ENV_ID, domain $DOMAIN ($DOMAIN_ID)"
}

# active_at_once ADDRESS: POST …/trustedEmails for ADDRESS answers 201 with status ACTIVE.
active_at_once() {
	local created
	created=$(call POST "$D/trustedEmails" 201 "{\"emailAddress\":\"$1\"}")
	echo "$created"
	[ "$(jq -r .status <<<"$created")" = ACTIVE ] || die "POST …/trustedEmails: expected status ACTIVE, got: $created"
}

new_domain Interop

# ---------------------------------------------------------------------------------------------------
before_publishing() {
	status_is 1 VERIFICATION_REQUIRED "$D/ownership" '.regions[].status'
	status_is 1 VERIFICATION_REQUIRED "$D/ownership" '.environmentDnsRecord.status'
	status_is 1 VERIFICATION_REQUIRED "$D/dkim" '.regions[].status'
	status_is 1 VERIFICATION_REQUIRED "$D/spf" '.status'
}
step "(1) nothing published: ownership, environment record, DKIM and SPF are VERIFICATION_REQUIRED" before_publishing
require_passed

publish_all_but_environment() {
	local zone
	zone=$(call GET "$D/zoneFile" 200)
	printf '%s\n' "$zone" | tee "$WORK/zoneFile.txt"
	grep -v '^;' "$WORK/zoneFile.txt" | grep . >"$WORK/records.txt"
	grep '^_trustmail-environment\.' "$WORK/records.txt" >"$WORK/environment.txt" ||
		die "…/zoneFile has no _trustmail-environment record"
	grep -v '^_trustmail-environment\.' "$WORK/records.txt" >"$WORK/others.txt" ||
		die "…/zoneFile has nothing but the environment record"
	publish "$WORK/others.txt"
	status_is 50 ACTIVE "$D/ownership" '.regions[].status'
	status_is 50 ACTIVE "$D/dkim" '.regions[].status'
	status_is 50 ACTIVE "$D/spf" '.status'
	status_is 1 VERIFICATION_REQUIRED "$D/ownership" '.environmentDnsRecord.status'
}
step "(2) publish every record but the environment TXT: ownership, DKIM, SPF ACTIVE; environment record not" \
	publish_all_but_environment
require_passed

sender_with_code() {
	local created id code number='' subject from
	created=$(call POST "$D/trustedEmails" 201 "{\"emailAddress\":\"$FIRST_SENDER\"}")
	echo "$created"
	[ "$(jq -r .status <<<"$created")" = VERIFICATION_REQUIRED ] ||
		die "POST …/trustedEmails: expected status VERIFICATION_REQUIRED, got: $created"
	id=$(jq -er .id <<<"$created")
	for _ in $(seq 1 150); do
		number=$(mail_to "$FIRST_SENDER" | head -n 1)
		[ -z "$number" ] || break
		sleep 0.1
	done
	[ -n "$number" ] || die "no mail for $FIRST_SENDER reached aiosmtpd within 15 s"
	cat "$WORK/mail/$number.json"
	echo
	subject=$(jq -r .subject "$WORK/mail/$number.json")
	from=$(jq -r .from "$WORK/mail/$number.json")
	[ "$subject" = "Your trustmail verification code" ] || die "mail $number: unexpected Subject: $subject"
	[[ $from == *"$SYSTEM_SENDER"* ]] || die "mail $number: From is not $SYSTEM_SENDER: $from"
	code=$(sed -nE 's/.*Verification code: ([a-z0-9]{8}).*/\1/p' "$WORK/mail/$number.txt" | head -n 1)
	[ -n "$code" ] || die "mail $number has no 'Verification code: <8 of [a-z0-9]>' line: $(cat "$WORK/mail/$number.txt")"
	echo "code from mail $number: $code"
	call POST "$D/trustedEmails/$id" 200 "{\"verificationCode\":\"$code\"}" \
		application/vnd.pingidentity.trustedEmail.activate+json | tee "$WORK/activated.json"
	echo
	[ "$(jq -r .status "$WORK/activated.json")" = ACTIVE ] || die "activate: expected status ACTIVE"
	status_is 1 ACTIVE "$D/trustedEmails/$id" '.status'
}
step "(3) trusted sender $FIRST_SENDER: VERIFICATION_REQUIRED, code mailed through aiosmtpd, activated" \
	sender_with_code

publish_environment() {
	publish "$WORK/environment.txt"
	status_is 50 ACTIVE "$D/ownership" '.environmentDnsRecord.status'
}
step "(4) publish the environment TXT: environment record ACTIVE" publish_environment
require_passed

sender_active_at_once() {
	date +%s >"$WORK/second_sender.created"
	active_at_once "$SECOND_SENDER"
}
step "(5) trusted sender $SECOND_SENDER with the environment record ACTIVE: 201 ACTIVE at once" \
	sender_active_at_once

ownership_removed() {
	local name checked ownership
	name=$(awk '{ print $1; exit }' <(grep '^_trustmail\.' "$WORK/others.txt"))
	[ -n "$name" ] || die "…/zoneFile had no _trustmail ownership record"
	printf 'update delete %s TXT\n' "$name" | nsupdate_send shopco.test
	echo "deleted the TXT records at $name"
	checked=$(call POST "$D/verification" 200)
	ownership=$(jq -c '[.records[] | select(.record == "OWNERSHIP")]' <<<"$checked")
	echo "$ownership"
	jq -e 'length > 0 and all(.[]; .reason == "MISSING_AFTER_ACTIVE" and .status == "ACTIVE")' \
		<<<"$ownership" >/dev/null || die "expected every OWNERSHIP record MISSING_AFTER_ACTIVE and ACTIVE"
	status_is 1 MISSING_AFTER_ACTIVE "$D/verification" '.records[] | select(.record == "OWNERSHIP") | .reason'
	status_is 1 ACTIVE "$D/ownership" '.regions[].status'
}
step "(6) delete the ownership TXT: POST …/verification says MISSING_AFTER_ACTIVE, status stays ACTIVE" \
	ownership_removed

no_code_for_active_sender() {
	local created_at
	if [ ! -s "$WORK/second_sender.created" ]; then
		echo "skipped: step (5) did not create $SECOND_SENDER"
		return 0
	fi
	# The outbox is read every second: 2 s after the create, a code mail would have arrived.
	created_at=$(cat "$WORK/second_sender.created")
	while [ "$(date +%s)" -le $((created_at + 2)) ]; do sleep 0.2; done
	[ -z "$(mail_to "$SECOND_SENDER")" ] || die "a message went to $SECOND_SENDER, which was ACTIVE at once"
	echo "no mail to $SECOND_SENDER; $(find "$WORK/mail" -name '*.json' | wc -l) message(s) in all"
}
step "(7) no code mailed to $SECOND_SENDER" no_code_for_active_sender

# ---------------------------------------------------------------------------------------------------
# The sending scenario, once per DKIM algorithm. It reads ALGORITHM, DOMAIN, D (the domain's path), ENV_ID and
# SENDER (an ACTIVE trusted address of DOMAIN); its files go in $WORK/$ALGORITHM.*.

# dkim_verify FILE: dkimpy's verdict on FILE's signature, keys looked up through BIND only.
dkim_verify() { BIND_PORT=$BIND_PORT "$VENV/bin/python" "$ROOT/.ci/interop/dkim_verify.py" "$1"; }

# verified FILE: shows dkimpy's verdict on FILE (also kept in FILE.dkimpy) and dies unless it verifies.
verified() {
	local rc=0
	dkim_verify "$1" >"$1.dkimpy" || rc=$?
	cat "$1.dkimpy"
	[ "$rc" -eq 0 ] || die "dkimpy did not verify ${1##*/}"
}

# signing_selector: the selector that signs for DOMAIN now, from GET …/dkim.
signing_selector() { call GET "$D/dkim" 200 | jq -er '.regions[0].signingSelector'; }

key_through_bind() {
	local selector name answer key_type=${ALGORITHM%%-*}
	selector=$(signing_selector)
	name=$selector._domainkey.$DOMAIN
	answer=$(dig +time=2 +tries=1 -p "$BIND_PORT" @127.0.0.1 TXT "$name" +noall +answer)
	printf '%s\n' "$answer"
	awk -v n="$name." -v t="$selector.$DKIM_ZONE." '$1 == n && $4 == "CNAME" && $5 == t { found = 1 } END { exit !found }' \
		<<<"$answer" || die "BIND's answer for $name TXT has no CNAME to $selector.$DKIM_ZONE."
	awk -v t="$selector.$DKIM_ZONE." '$1 == t && $4 == "TXT"' <<<"$answer" | grep -q "\"v=DKIM1; k=$key_type; p=" ||
		die "BIND's answer for $name TXT has no \"v=DKIM1; k=$key_type; p=…\" TXT at $selector.$DKIM_ZONE."
}

# zone_file_checks: …/zoneFile as BIND reads it. The default and ?format=bind are the same lines (MAIL FROM's MX
# among them); with $ORIGIN, SOA and NS for DOMAIN put in front (the file holds only the domain's records,
# every name absolute), named-checkzone loads it with every check it can fail on set to fail.
zone_file_checks() {
	local lines=$WORK/$ALGORITHM.zoneFile.txt zone=$WORK/$ALGORITHM.zone
	{
		call GET "$D/zoneFile" 200
		echo
	} >"$lines"
	{
		call GET "$D/zoneFile?format=bind" 200
		echo
	} | cmp - "$lines" || die "…/zoneFile?format=bind is not the same as …/zoneFile"
	grep -q ' IN MX ' "$lines" || die "…/zoneFile has no MX record, though the MAIL FROM domain is set"
	{
		# shellcheck disable=SC2016 # $ORIGIN and $TTL are zone-file syntax, not shell variables
		printf '$ORIGIN %s.\n$TTL 3600\n' "$DOMAIN"
		printf '@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 127.0.0.1\n'
		cat "$lines"
	} >"$zone"
	cat "$zone"
	named-checkzone -k fail -m fail -M fail -n fail -r fail -S fail -i local "$DOMAIN" "$zone"
}

# dkim_zone_file_checks: `trustmail dkim zone-file --region us-east-1` on the running server's database, its
# in-zone NS (ns1.$DKIM_ZONE) given an address (dkim_dns.nameserver_addresses), loads in named-checkzone.
dkim_zone_file_checks() {
	local zone=$WORK/$ALGORITHM.dkim.zone
	env TRUSTMAIL_DATABASE_URL="sqlite://$DATA_DIR/trustmail.db" \
		TRUSTMAIL_SECRETS__MASTER_KEY_FILE="$DATA_DIR/master.key" \
		TRUSTMAIL_REGIONS="[{ name = \"us-east-1\", dkim_zone = \"$DKIM_ZONE\" }]" \
		TRUSTMAIL_DKIM_DNS__NAMESERVER_ADDRESSES='["127.0.0.1"]' \
		"$TRUSTMAIL" dkim zone-file --region us-east-1 >"$zone"
	cat "$zone"
	grep -q " IN TXT " "$zone" || die "trustmail dkim zone-file printed no key"
	named-checkzone -k fail -m fail -M fail -n fail -r fail -S fail -i local "$DKIM_ZONE" "$zone"
}

set_mail_from() {
	call PUT "$D/mailFromDomain" 200 "{\"mailFrom\":{\"domain\":\"$MAIL_FROM\"}}"
	echo
	call GET "$D/zoneFile" 200 | grep -v '^;' | awk -v n="$MAIL_FROM." '$1 == n' >"$WORK/$ALGORITHM.mailfrom.txt"
	grep -q . "$WORK/$ALGORITHM.mailfrom.txt" || die "…/zoneFile has no record at $MAIL_FROM. after PUT …/mailFromDomain"
	publish "$WORK/$ALGORITHM.mailfrom.txt"
	status_is 50 ACTIVE "$D/mailFromDomain" '.status'
}

# send TAG: sends a message from SENDER to ALGORITHM.TAG@customer.test through POST …/messages, waits (15 s at most)
# until GET …/messages/{id} says SENT, and copies what aiosmtpd received to $WORK/$ALGORITHM.TAG.{eml,json};
# the message's id goes to $WORK/$ALGORITHM.TAG.id.
send() {
	local tag=$1 to=$ALGORITHM.$1@customer.test body id message status='' number='' out=$WORK/$ALGORITHM.$1
	body=$(jq -nc --arg from "$SENDER" --arg to "$to" --arg tag "$tag" \
		'{from: $from, to: [$to], subject: "Your order (\($tag))", text: "Order 1234 ships today.\nThank you."}')
	id=$(call POST "/v1/environments/$ENV_ID/messages" 202 "$body" | jq -er .id)
	echo "$id" >"$out.id"
	for _ in $(seq 1 150); do
		message=$(call GET "/v1/environments/$ENV_ID/messages/$id" 200)
		status=$(jq -r .status <<<"$message")
		[ "$status" = QUEUED ] || break
		sleep 0.1
	done
	echo "$message"
	[ "$status" = SENT ] || die "message $id: expected status SENT within 15 s, got: $message"
	number=$(mail_to "$to")
	[ -n "$number" ] || die "message $id is SENT but aiosmtpd has no mail for $to"
	[ "$(wc -l <<<"$number")" -eq 1 ] || die "aiosmtpd has more than one mail for $to: $number"
	cp "$WORK/mail/$number.eml" "$out.eml"
	cp "$WORK/mail/$number.json" "$out.json"
	echo "received as mail $number: $(jq -c '{mail_from, rcpt_tos}' "$out.json")"
}

send_verified() {
	send first
	verified "$WORK/$ALGORITHM.first.eml"
	grep -q " a=$ALGORITHM_TAG\$" "$WORK/$ALGORITHM.first.eml.dkimpy" || die "the signature's a= is not $ALGORITHM_TAG"
}

envelope_on_mail_from() {
	local mail_from
	mail_from=$(jq -r .mail_from "$WORK/$ALGORITHM.first.json")
	echo "MAIL FROM:<$mail_from>"
	[ "${mail_from##*@}" = "$MAIL_FROM" ] || die "the envelope sender $mail_from is not on the MAIL FROM domain $MAIL_FROM"
	[[ "${mail_from%@*}" == b-* ]] || die "the envelope sender $mail_from is not a return path (b-…)"
}

# bounced_over_smtp: smtplib delivers a DSN for the first message's recipient to the return path aiosmtpd
# saw; the recipient reads BOUNCED, is on the suppression list, and a message to it alone is refused.
bounced_over_smtp() {
	local mail_from to id message
	mail_from=$(jq -r .mail_from "$WORK/$ALGORITHM.first.json")
	to=$(jq -r '.rcpt_tos[0]' "$WORK/$ALGORITHM.first.json")
	id=$(cat "$WORK/$ALGORITHM.first.id")
	"$VENV/bin/python" "$ROOT/.ci/interop/send_dsn.py" 127.0.0.1 "$FEEDBACK_PORT" "$mail_from" "$to" ||
		die "the feedback MX did not take the DSN"
	status_is 50 BOUNCED "/v1/environments/$ENV_ID/messages/$id" '.recipientStatuses[].status'
	message=$(call GET "/v1/environments/$ENV_ID/messages/$id" 200)
	jq -e '.recipientStatuses[0].events[0] | .source == "DSN" and .status == "5.1.1"' <<<"$message" >/dev/null ||
		die "the recipient's event is not the DSN's: $message"
	call GET "/v1/environments/$ENV_ID/suppressions/$to" 200 | jq -e '.reason == "BOUNCE"' >/dev/null ||
		die "$to is not suppressed for BOUNCE"
	call POST "/v1/environments/$ENV_ID/messages" 400 \
		"$(jq -nc --arg from "$SENDER" --arg to "$to" '{from: $from, to: [$to], subject: "Again", text: "x"}')" >/dev/null
	echo "$to: BOUNCED (DSN 5.1.1), suppressed, the next message to it refused"
}

tampered_fails() {
	local copy=$WORK/$ALGORITHM.first.tampered.eml out
	# Only the body: lines after the first empty one.
	awk 'body && !done && sub(/ships today/, "ships tomorrow") { done = 1 } /^\r?$/ { body = 1 } { print }' \
		"$WORK/$ALGORITHM.first.eml" >"$copy"
	! cmp -s "$WORK/$ALGORITHM.first.eml" "$copy" || die "no body line with 'ships today' to change in $ALGORITHM.first.eml"
	diff "$WORK/$ALGORITHM.first.eml" "$copy" || true
	if out=$(dkim_verify "$copy"); then
		printf '%s\n' "$out"
		die "dkimpy verified a copy whose body was changed"
	fi
	printf '%s\n' "$out"
	# For that reason, not for one that would fail the untouched message too (a key not found, say).
	grep -q 'body hash mismatch' <<<"$out" || die "dkimpy failed the changed copy, but not for its body hash"
}

rotated() {
	local before after
	before=$(signing_selector)
	after=$(call POST "$D/dkim/rotate" 200 | jq -er '.regions[0].signingSelector')
	echo "signing selector: $before before the rotation, $after after it"
	[ "$after" != "$before" ] || die "POST …/dkim/rotate left the signing selector at $before"
	send second
	verified "$WORK/$ALGORITHM.second.eml"
	grep -q " s=$after " "$WORK/$ALGORITHM.second.eml.dkimpy" ||
		die "the message sent after the rotation is not signed with s=$after"
	verified "$WORK/$ALGORITHM.first.eml"
}

send_scenario() {
	MAIL_FROM=bounce.$DOMAIN
	ALGORITHM_TAG=$([ "$ALGORITHM" = ed25519 ] && echo ed25519-sha256 || echo rsa-sha256)
	step "($ALGORITHM) BIND answers the signing selector of $DOMAIN: the CNAME, then the k=${ALGORITHM%%-*} key from trustmail's DNS" \
		key_through_bind
	step "($ALGORITHM) MAIL FROM domain $MAIL_FROM: PUT, its records published with nsupdate, ACTIVE" set_mail_from
	step "($ALGORITHM) …/zoneFile (default and ?format=bind) with an SOA in front passes BIND's named-checkzone" \
		zone_file_checks
	step "($ALGORITHM) trustmail dkim zone-file --region us-east-1 passes BIND's named-checkzone" \
		dkim_zone_file_checks
	step "($ALGORITHM) a message from $SENDER: SENT, received by aiosmtpd, dkimpy verifies its $ALGORITHM_TAG signature" \
		send_verified
	[ "$LAST_STEP_PASSED" = yes ] || return 0 # the steps below read that message
	step "($ALGORITHM) its envelope sender is a return path (b-…) on $MAIL_FROM" envelope_on_mail_from
	step "($ALGORITHM) a copy with one body line changed fails dkimpy" tampered_fails
	step "($ALGORITHM) POST …/dkim/rotate: a message sent after it verifies with the new selector, the one before still does" \
		rotated
	step "($ALGORITHM) a DSN delivered with smtplib to its return path: BOUNCED, suppressed, the next send refused" \
		bounced_over_smtp
}

ALGORITHM=rsa-2048
SENDER=$FIRST_SENDER
send_scenario

# ---------------------------------------------------------------------------------------------------
section "(ed25519) trustmail serve again: a fresh database, DKIM keys ed25519"
stop_pid "$TM_PID"
mkdir "$WORK/ed25519"
start_trustmail "$WORK/ed25519" ed25519
ALGORITHM=ed25519
DOMAIN=b.shopco.test
SENDER=noreply@$DOMAIN
new_domain "Interop Ed25519"

publish_everything() {
	call GET "$D/zoneFile" 200 | grep -v '^;' | grep . >"$WORK/ed25519.records.txt"
	publish "$WORK/ed25519.records.txt"
	status_is 50 ACTIVE "$D/ownership" '.regions[].status'
	status_is 50 ACTIVE "$D/ownership" '.environmentDnsRecord.status'
	status_is 50 ACTIVE "$D/dkim" '.regions[].status'
	status_is 50 ACTIVE "$D/spf" '.status'
	active_at_once "$SENDER"
}
step "(ed25519) publish every record of $DOMAIN: ownership, environment, DKIM, SPF ACTIVE; $SENDER ACTIVE at once" \
	publish_everything
require_passed
send_scenario

# ---------------------------------------------------------------------------------------------------
# The web console in headless Chromium against this trustmail, BIND and aiosmtpd (.ci/console/browser.sh).
# shellcheck source=.ci/console/browser.sh
. "$ROOT/.ci/console/browser.sh"
console_step() { console_browser_test "$WORK/ed25519/trustmail.stdout" c.shopco.test; }
step "(console) the web console: sign in, records, live ACTIVE, sender code, axe-core, screenshots" console_step

# ---------------------------------------------------------------------------------------------------
kill -0 "$TM_PID" 2>/dev/null || die "trustmail serve died during the run"
[ ${#FAILED_STEPS[@]} -eq 0 ] || exit 1
section "passed"
