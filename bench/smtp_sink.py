"""SMTP sink and plain client for bench/send_path.sh.

    PYTHONPATH=bench python -m aiosmtpd -n -l 127.0.0.1:PORT -c smtp_sink.CountingSink FILE
    python bench/smtp_sink.py send PORT MESSAGE_FILE COUNT

CountingSink (an aiosmtpd handler) appends one line per message it accepts to FILE: the time it
accepted it (seconds since the epoch) and the message's size, so `wc -l FILE` counts deliveries.
It keeps a message containing "bench" as FILE.first.eml whenever that file is missing.

`send` is the baseline client: Python's smtplib sends the message in MESSAGE_FILE COUNT times to
127.0.0.1:PORT over one connection, one after the other (MAIL FROM, RCPT TO, DATA each), as
trustmail's outbox delivers them; it prints `RESULT seconds=… messages_per_s=…`.
"""

import os
import smtplib
import sys
import time


class CountingSink:
    def __init__(self, path):
        self.path = path
        self.file = open(path, "a", buffering=1)

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("smtp_sink.CountingSink takes one argument: the file to count in")
        return cls(args[0])

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        first = self.path + ".first.eml"
        if b"bench" in raw[:4096] and not os.path.exists(first):
            with open(first + ".tmp", "wb") as f:
                f.write(raw)
            os.replace(first + ".tmp", first)
        self.file.write(f"{time.time():.6f} {len(raw)}\n")
        return "250 2.0.0 Ok: queued"


def send(port, message_file, count):
    with open(message_file, "rb") as f:
        message = f.read()
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for _ in range(count):
            smtp.sendmail("noreply@bench.shopco.test", ["ann@example.com"], message)
    seconds = time.perf_counter() - started
    print(f"RESULT seconds={seconds:.4f} messages_per_s={count / seconds:.1f}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "send":
        send(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(__doc__)
