"""Verifies a message's DKIM signature with dkimpy, an implementation trustmail does not share code with.

    BIND_PORT=PORT python dkim_verify.py MESSAGE_FILE

The key is looked up through the DNS server on 127.0.0.1:BIND_PORT only (dnspython, EDNS with a 4096-byte
buffer and TCP when an answer is truncated: a 2048-bit RSA key record does not fit in 512 bytes), so the
customer's CNAME and the key record behind it come from that server. Prints the signature's d=, s= and a=,
the CNAME chain and the key record it found, and the result; exits 0 when the signature verifies, 1 when it
does not, 2 on a usage error.
"""

import os
import re
import sys

import dkim
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.rcode

SERVER = "127.0.0.1"


def query(name, port, timeout):
    """The answer to a TXT query for NAME: over UDP with EDNS, again over TCP when it is truncated."""
    request = dns.message.make_query(name, dns.rdatatype.TXT, use_edns=0, payload=4096)
    answer = dns.query.udp(request, SERVER, port=port, timeout=timeout)
    if answer.flags & dns.flags.TC:
        answer = dns.query.tcp(request, SERVER, port=port, timeout=timeout)
    return answer


def txt_through(port):
    """A dkimpy dnsfunc: the TXT record at a name (bytes in, bytes out), following the CNAMEs the server
    answers with, or None when there is none."""

    def dnsfunc(name, timeout=5):
        qname = dns.name.from_text(name.decode("ascii") if isinstance(name, bytes) else name)
        try:
            answer = query(qname, port, timeout)
        except dns.exception.Timeout:
            raise dkim.DnsTimeoutError(f"no answer from {SERVER}:{port} for {qname} TXT") from None
        rcode = dns.rcode.to_text(answer.rcode())
        owner = qname
        for rrset in answer.answer:  # the chain starts at the query name; each CNAME moves it on
            if rrset.name == owner and rrset.rdtype == dns.rdatatype.CNAME:
                owner = rrset[0].target
                print(f"  DNS: {rrset.name} CNAME {owner}")
        for rrset in answer.answer:
            if rrset.name == owner and rrset.rdtype == dns.rdatatype.TXT:
                value = b"".join(rrset[0].strings)
                print(f"  DNS: {owner} TXT {value.decode('ascii', 'replace')[:60]}… ({len(value)} bytes)")
                return value
        print(f"  DNS: {qname} TXT: {rcode}, no TXT record at {owner}")
        return None

    return dnsfunc


def main():
    if len(sys.argv) != 2 or "BIND_PORT" not in os.environ:
        print(__doc__, file=sys.stderr)
        return 2
    path = sys.argv[1]
    with open(path, "rb") as f:
        message = f.read()
    header = re.search(rb"^DKIM-Signature:(.*(?:\r?\n[ \t].*)*)", message, re.MULTILINE | re.IGNORECASE)
    if header is None:
        print(f"{path}: FAIL: no DKIM-Signature header")
        return 1
    tags = dict(
        (k.strip(), v.strip())
        for k, _, v in (t.partition(b"=") for t in re.sub(rb"\s+", b"", header.group(1)).split(b";") if t)
    )
    print(f"{path}: d={tags.get(b'd', b'?').decode()} s={tags.get(b's', b'?').decode()} a={tags.get(b'a', b'?').decode()}")
    errors = []

    class Log:  # dkimpy reports why a signature fails through its logger
        def debug(self, *args):
            pass

        info = warning = debug

        def error(self, msg, *args):
            errors.append(msg % args if args else msg)

    verifier = dkim.DKIM(message, logger=Log())
    try:
        ok = verifier.verify(dnsfunc=txt_through(int(os.environ["BIND_PORT"])))
    except dkim.DKIMException as e:
        ok = False
        errors.append(str(e))
    if ok:
        print(f"{path}: PASS: dkimpy verified the signature")
        return 0
    print(f"{path}: FAIL: dkimpy did not verify the signature{': ' + '; '.join(errors) if errors else ''}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
