"""dkimpy baseline for bench/dkim_sign.sh: signs the messages of `dkim_sign setup` with its keys.

    python bench/dkim_sign_dkimpy.py verify DIR
    python bench/dkim_sign_dkimpy.py measure DIR [SECONDS]

`verify` checks, with dkimpy, every `msg-*.<algorithm>.signed.eml` that trustmail signed
(the key records come from DIR/<algorithm>.txt instead of DNS), and signs each message with
dkimpy and verifies that too: both sides sign the same messages with the same keys, validly.

`measure` signs each message with each key for SECONDS (default 0.5) per case, with the options
trustmail's signer uses: relaxed/relaxed, the same header list (mail::dkim::SIGNED_HEADERS),
rsa-sha256 or ed25519-sha256 (dkimpy signs Ed25519 through PyNaCl, RSA in its own Python code).
It prints one `RESULT algorithm=… message=… dkimpy=<signs/s>` line per case.
"""

import pathlib
import sys
import time

import dkim

DOMAIN = b"auth.shopco.test"
SELECTOR = b"bench1"
# trustmail's mail::dkim::SIGNED_HEADERS.
HEADERS = [
    h.lower().encode()
    for h in (
        "From",
        "Reply-To",
        "Subject",
        "Date",
        "To",
        "Cc",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
    )
]
ALGORITHMS = {
    "rsa2048": (b"rsa-sha256", "rsa2048.pem"),
    "ed25519": (b"ed25519-sha256", "ed25519.seed"),
}
MESSAGES = ("2k", "50k")


def key(folder, algorithm):
    return (folder / ALGORITHMS[algorithm][1]).read_bytes().strip()


def sign(message, folder, algorithm, private_key):
    return dkim.sign(
        message,
        SELECTOR,
        DOMAIN,
        private_key,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=HEADERS,
        signature_algorithm=ALGORITHMS[algorithm][0],
    )


def verify(folder):
    def dnsfunc(name, timeout=5):
        if name != SELECTOR + b"._domainkey." + DOMAIN + b".":
            raise AssertionError(f"unexpected lookup {name!r}")
        return verify.record

    failed = 0
    for algorithm in ALGORITHMS:
        verify.record = (folder / f"{algorithm}.txt").read_bytes().strip()
        private_key = key(folder, algorithm)
        for name in MESSAGES:
            signed = (folder / f"msg-{name}.{algorithm}.signed.eml").read_bytes()
            ours = dkim.verify(signed, dnsfunc=dnsfunc)
            message = (folder / f"msg-{name}.eml").read_bytes()
            theirs = dkim.verify(sign(message, folder, algorithm, private_key) + message, dnsfunc=dnsfunc)
            print(f"{algorithm} {name}: trustmail's signature verifies: {ours}; dkimpy's: {theirs}")
            failed += (not ours) + (not theirs)
    return 1 if failed else 0


def measure(folder, seconds):
    for algorithm in ALGORITHMS:
        private_key = key(folder, algorithm)
        for name in MESSAGES:
            message = (folder / f"msg-{name}.eml").read_bytes()
            count = 0
            started = time.perf_counter()
            while count < 3 or time.perf_counter() - started < seconds:
                sign(message, folder, algorithm, private_key)
                count += 1
            rate = count / (time.perf_counter() - started)
            print(f"RESULT algorithm={algorithm} message={name} dkimpy={rate:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    command, folder = sys.argv[1], pathlib.Path(sys.argv[2])
    if command == "verify":
        sys.exit(verify(folder))
    elif command == "measure":
        sys.exit(measure(folder, float(sys.argv[3]) if len(sys.argv) > 3 else 0.5))
    sys.exit(f"unknown command {command!r}")
