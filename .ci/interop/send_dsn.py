"""Bounce a message the way a receiving MTA does: an RFC 3464 DSN built with Python's email
package and delivered with smtplib (neither written here) to the message's return path at
trustmail's feedback MX.

    send_dsn.py HOST PORT RETURN_PATH RECIPIENT

Prints the server's reply to the message; exits 1 unless it took it (250).
"""

import smtplib
import sys
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText


def dsn(return_path: str, recipient: str) -> MIMEMultipart:
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "MAILER-DAEMON@mx.customer.test"
    report["To"] = return_path
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report.attach(MIMEText("Your message could not be delivered.\n"))
    status = Message()
    status.set_type("message/delivery-status")
    per_message = Message()
    per_message["Reporting-MTA"] = "dns; mx.customer.test"
    per_recipient = Message()
    per_recipient["Final-Recipient"] = f"rfc822; {recipient}"
    per_recipient["Action"] = "failed"
    per_recipient["Status"] = "5.1.1"
    per_recipient["Diagnostic-Code"] = f"smtp; 550 5.1.1 <{recipient}>: no such user"
    status.set_payload([per_message, per_recipient])
    report.attach(status)
    return report


def main() -> int:
    host, port, return_path, recipient = sys.argv[1:5]
    with smtplib.SMTP(host, int(port), timeout=30) as smtp:
        smtp.ehlo("mx.customer.test")
        # The null reverse path, as every DSN has (RFC 3464 § 2).
        smtp.mail("")
        code, reply = smtp.rcpt(return_path)
        if code != 250:
            print(f"RCPT TO:<{return_path}> answered {code} {reply.decode()}")
            return 1
        code, reply = smtp.data(dsn(return_path, recipient).as_bytes())
        print(f"{code} {reply.decode()}")
        return 0 if code == 250 else 1


if __name__ == "__main__":
    sys.exit(main())
