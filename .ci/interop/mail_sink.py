"""aiosmtpd handler for the interop run: keeps every message it receives as files in a folder.

    PYTHONPATH=.ci/interop python -m aiosmtpd -n -l 127.0.0.1:PORT -c mail_sink.MailSink FOLDER

For message N (0001, 0002, ...) it writes
  N.eml   the message as received (bytes),
  N.json  the envelope (mail_from, rcpt_tos, peer) and the From, To and Subject headers,
  N.txt   the decoded text/plain parts, so a script can grep them whatever the transfer encoding.
N.json is written last and by rename, so a reader that waits for *.json sees complete messages.
"""

import itertools
import json
import os
from email import policy
from email.parser import BytesParser


class MailSink:
    def __init__(self, folder):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.numbers = itertools.count(1)

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("mail_sink.MailSink takes one argument: the folder to write messages to")
        return cls(args[0])

    def _write(self, name, data):
        path = os.path.join(self.folder, name)
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)

    async def handle_DATA(self, server, session, envelope):
        n = f"{next(self.numbers):04d}"
        raw = envelope.original_content or envelope.content
        message = BytesParser(policy=policy.default).parsebytes(raw)
        texts = [
            part.get_content()
            for part in message.walk()
            if part.get_content_type() == "text/plain"
        ]
        self._write(f"{n}.eml", raw)
        self._write(f"{n}.txt", "\n".join(texts).encode())
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "peer": str(session.peer),
            "from": str(message["From"] or ""),
            "to": str(message["To"] or ""),
            "subject": str(message["Subject"] or ""),
        }
        self._write(f"{n}.json", json.dumps(meta, indent=2).encode())
        return "250 Message accepted for delivery"
