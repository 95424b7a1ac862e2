# SPDX-License-Identifier: MIT
"""A real SMTP server for the integration tests (tests/harness/smtp.c starts it).

aiosmtpd (Debian's python3-aiosmtpd; run it with /usr/bin/python3) on 127.0.0.1:PORT
(or --host),
writing every accepted message into the Maildir DIR/mail (tmp/ then new/, named
000001.smtp, 000002.smtp... in the order they arrived) with the envelope on top:
X-MailFrom, X-RcptTo (comma-separated), X-Conn (which connection carried it, from 1),
X-TLS (yes/no) and X-Auth (the user, or "-"). DIR/connections holds the number of
connections accepted so far; DIR/ready appears once the server listens.

Options: --tls-cert/--tls-key offer STARTTLS (and then require it before MAIL) or, with
--implicit-tls, speak TLS from the first byte; --auth USER:PASSWORD requires AUTH (PLAIN,
LOGIN) before MAIL; scripted answers: --fail-data N answers the first N DATA commands
with --data-reply (default "451 4.3.0 try later"), --rcpt-reply REPLY answers every RCPT
with REPLY, --hang greeting|data never answers the greeting, or the end of the data.
"""
import argparse
import asyncio
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class Handler:
    def __init__(self, args):
        self.args = args
        self.datas = 0
        self.saved = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.args.rcpt_reply:
            return self.args.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.datas += 1
        if self.args.hang == "data":
            await asyncio.sleep(3600)
        if self.datas <= self.args.fail_data:
            return self.args.data_reply
        self.saved += 1
        name = "%06d.smtp" % self.saved
        auth = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else "-"
        head = "X-MailFrom: %s\r\nX-RcptTo: %s\r\nX-Conn: %d\r\nX-TLS: %s\r\nX-Auth: %s\r\n" % (
            envelope.mail_from, ",".join(envelope.rcpt_tos), server.conn_no,
            "yes" if server.transport.get_extra_info("ssl_object") else "no", auth)
        tmp = os.path.join(self.args.dir, "mail", "tmp", name)
        with open(tmp, "wb") as f:
            f.write(head.encode() + envelope.original_content)
        os.rename(tmp, os.path.join(self.args.dir, "mail", "new", name))
        return "250 2.0.0 Ok: queued as Q%06d" % self.saved


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--implicit-tls", action="store_true")
    ap.add_argument("--auth")
    ap.add_argument("--fail-data", type=int, default=0)
    ap.add_argument("--data-reply", default="451 4.3.0 try later")
    ap.add_argument("--rcpt-reply")
    ap.add_argument("--hang", choices=["greeting", "data"])
    args = ap.parse_args()
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(args.dir, "mail", sub), exist_ok=True)

    ctx = None
    if args.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        user, _, password = args.auth.partition(":")
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user
              and auth_data.password.decode() == password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    handler = Handler(args)
    conns = [0]
    write_atomic(os.path.join(args.dir, "connections"), "0\n")

    class Counted(SMTP):
        def connection_made(self, transport):
            if self._original_transport is None:  # not the STARTTLS upgrade of one
                conns[0] += 1
                write_atomic(os.path.join(args.dir, "connections"), "%d\n" % conns[0])
                self.conn_no = conns[0]
            super().connection_made(transport)

    class Silent(asyncio.Protocol):
        def connection_made(self, transport):
            conns[0] += 1
            write_atomic(os.path.join(args.dir, "connections"), "%d\n" % conns[0])
            self.transport = transport  # keeps it open, never says a word

    def factory():
        if args.hang == "greeting":
            return Silent()
        return Counted(
            handler,
            hostname="localhost",
            tls_context=None if args.implicit_tls else ctx,
            require_starttls=bool(ctx) and not args.implicit_tls,
            auth_required=bool(args.auth),
            auth_require_tls=False,
            authenticator=authenticator if args.auth else None,
            enable_SMTPUTF8=True,
        )

    async def serve():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            factory, args.host, args.port, ssl=ctx if args.implicit_tls else None,
            reuse_address=True)
        write_atomic(os.path.join(args.dir, "ready"), "%d\n" % os.getpid())
        async with server:
            await server.serve_forever()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
