// SPDX-License-Identifier: MIT
// Real mail servers for the email tests, on free loopback ports in temp dirs: Dovecot (IMAP,
// with TLS from a throw-away CA) and aiosmtpd (SMTP, Debian's python3-aiosmtpd, writing each
// message it accepts to a Maildir). Messages reach Dovecot by IMAP APPEND, as a mail client
// files them (the curl command's upload to an imap:// URL).
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { freePort, sleep } from './lib.mjs';

function tmpdir(tag) {
  const base = process.env.SB_TEST_TMP || os.tmpdir();
  fs.mkdirSync(base, { recursive: true });
  return fs.mkdtempSync(path.join(base, `sb-${tag}-`));
}

// Waits until something accepts connections on port (a server's readiness).
async function waitPort(port, timeoutMs = 10000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const ok = await new Promise((r) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); r(true); });
      s.on('error', () => r(false));
    });
    if (ok) return;
    await sleep(30);
  }
  throw new Error(`nothing listens on ${port}`);
}

// A CA and a localhost certificate it signed (openssl command), for both servers.
export function makeCA() {
  const dir = tmpdir('ca');
  const run = (...a) => execFileSync('openssl', a, { stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  run('req', '-x509', ...ec, '-keyout', `${dir}/ca.key`, '-out', `${dir}/ca.pem`, '-days', '2',
    '-subj', '/CN=Switchboard Test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  run('req', '-new', ...ec, '-keyout', `${dir}/key.pem`, '-out', `${dir}/s.csr`,
    '-subj', '/CN=localhost');
  fs.writeFileSync(`${dir}/s.ext`,
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  run('x509', '-req', '-in', `${dir}/s.csr`, '-CA', `${dir}/ca.pem`, '-CAkey', `${dir}/ca.key`,
    '-CAcreateserial', '-days', '2', '-extfile', `${dir}/s.ext`, '-out', `${dir}/cert.pem`);
  for (const f of ['cert.pem', 'key.pem', 'ca.pem']) fs.chmodSync(`${dir}/${f}`, 0o644);
  return { dir, ca: `${dir}/ca.pem`, cert: `${dir}/cert.pem`, key: `${dir}/key.pem`,
    remove() { fs.rmSync(dir, { recursive: true, force: true }); } };
}

// Dovecot runs its processes as the current user, or as Debian's dovecot/dovenull users
// when that is root (Dovecot refuses root for logins and mail).
export class Dovecot {
  static async start(ca, { password = 'secret' } = {}) {
    const d = new Dovecot();
    d.dir = tmpdir('dovecot');
    fs.chmodSync(d.dir, 0o755);
    d.port = await freePort();
    d.password = password;
    d.ca = ca;
    const root = process.getuid() === 0;
    const user = root ? 'dovecot' : os.userInfo().username;
    const login = root ? 'dovenull' : user;
    const group = root ? 'dovecot' : execFileSync('id', ['-gn'], { encoding: 'utf8' }).trim();
    for (const sub of ['run', 'state', 'mail', 'home']) fs.mkdirSync(`${d.dir}/${sub}`);
    if (root) execFileSync('chown', ['-R', `${user}:${group}`, `${d.dir}/mail`, `${d.dir}/home`]);
    d.conf = `${d.dir}/dovecot.conf`;
    fs.writeFileSync(d.conf, `protocols = imap
listen = 127.0.0.1
base_dir = ${d.dir}/run
state_dir = ${d.dir}/state
log_path = ${d.dir}/dovecot.log
ssl = yes
ssl_cert = <${ca.cert}
ssl_key = <${ca.key}
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
first_valid_gid = 1
# IDLE hears of new mail through inotify; where inotify is short (many servers at once),
# Dovecot checks the folder this often instead of every 30 s
mailbox_idle_check_interval = 1 secs
default_internal_user = ${user}
default_internal_group = ${group}
default_login_user = ${login}
mail_location = maildir:${d.dir}/mail/%n
passdb {
  driver = static
  args = password=${password}
}
userdb {
  driver = static
  args = uid=${user} gid=${group} home=${d.dir}/home/%n
}
service imap-login {
  chroot =
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = ${d.port}
    ssl = yes
  }
}
service anvil {
  chroot =
}
service stats {
  chroot =
}
`);
    await d.run();
    return d;
  }

  // Dovecot's master and the processes it starts run in a process group of their own, so
  // kill() ends them all at once (a child left holding the port would take the restart's).
  async run() {
    this.proc = spawn('dovecot', ['-c', this.conf, '-F'], { stdio: 'ignore', detached: true });
    this.exited = new Promise((r) => this.proc.on('exit', r));
    await waitPort(this.port);
    // listening is not logging in yet: wait until a command goes through
    const until = Date.now() + 10000;
    for (;;) {
      try {
        execFileSync('curl', ['-sS', '--cacert', this.ca.ca, '-u', `probe:${this.password}`,
          '-X', 'NOOP', `imaps://localhost:${this.port}/`], { stdio: 'ignore' });
        return;
      } catch (e) {
        if (Date.now() > until) throw e;
        await sleep(50);
      }
    }
  }

  // imaps URL for a user, as a `mailbox` line takes it.
  url(user) { return `imaps://${user}:${this.password}@localhost:${this.port}/INBOX`; }

  // Files a raw message into user's INBOX by IMAP APPEND.
  append(user, raw, folder = 'INBOX') {
    const f = path.join(this.dir, `append-${process.hrtime.bigint()}.eml`);
    fs.writeFileSync(f, raw.replace(/\r?\n/g, '\r\n'));
    execFileSync('curl', ['-sS', '--cacert', this.ca.ca, '-u', `${user}:${this.password}`,
      '-T', f, `imaps://localhost:${this.port}/${folder}`]);
    fs.rmSync(f);
  }

  // One IMAP command's untagged answer lines (curl's custom request).
  command(user, cmd, folder = 'INBOX') {
    return execFileSync('curl', ['-sS', '--cacert', this.ca.ca, '-u', `${user}:${this.password}`,
      '-X', cmd, `imaps://localhost:${this.port}/${folder}`], { encoding: 'utf8' });
  }

  async kill() {
    process.kill(-this.proc.pid, 'SIGKILL');
    await this.exited;
    for (const until = Date.now() + 10000; Date.now() < until; await sleep(20)) {
      try { process.kill(-this.proc.pid, 0); } catch { break; } // the whole group is gone
    }
    fs.rmSync(`${this.dir}/run/master.pid`, { force: true }); // a pid file stays after a kill
  }

  async stop() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      await this.exited;
    }
    try { process.kill(-this.proc.pid, 'SIGKILL'); } catch { /* all gone */ }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// The tests' SMTP server (tests/harness/smtp_server.py, on Debian's aiosmtpd) with STARTTLS
// required: each accepted message a file in a Maildir, with the envelope on top (X-MailFrom,
// X-RcptTo). opts.args passes its scripted answers (--fail-data N, --rcpt-reply REPLY…).
const SMTP_SERVER = path.join(path.dirname(new URL(import.meta.url).pathname),
  '../harness/smtp_server.py');

export class Smtp {
  static async start(ca, { args = [] } = {}) {
    const s = new Smtp();
    s.dir = tmpdir('smtp');
    s.port = await freePort();
    s.log = '';
    s.proc = spawn('/usr/bin/python3', [SMTP_SERVER, '--port', String(s.port), '--dir', s.dir,
      '--tls-cert', ca.cert, '--tls-key', ca.key, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    s.proc.stdout.on('data', (b) => { s.log += b; });
    s.proc.stderr.on('data', (b) => { s.log += b; });
    s.exited = new Promise((r) => s.proc.on('exit', r));
    const until = Date.now() + 10000;
    while (!fs.existsSync(`${s.dir}/ready`)) {
      if (Date.now() > until) throw new Error(`smtp server not ready:\n${s.log}`);
      await sleep(20);
    }
    return s;
  }

  url() { return `smtp://localhost:${this.port}`; }

  // Every message received so far, oldest first: {raw, headers (lower-case names), body}.
  messages() {
    const dir = `${this.dir}/mail/new`;
    return fs.readdirSync(dir)
      .map((f) => ({ f, t: fs.statSync(`${dir}/${f}`).mtimeMs }))
      .sort((a, b) => a.t - b.t || a.f.localeCompare(b.f))
      .map(({ f }) => parseMail(fs.readFileSync(`${dir}/${f}`, 'utf8')));
  }

  // Waits for a received message matching pred.
  async waitFor(pred, timeoutMs = 10000) {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const m = this.messages().find(pred);
      if (m) return m;
      await sleep(50);
    }
    throw new Error(`no such mail in ${timeoutMs} ms; got ${this.messages().length}:\n${this.log}`);
  }

  async stop() {
    this.proc.kill('SIGTERM');
    await this.exited;
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// Headers (unfolded; lower-case names, the first of each) and the body of a raw message.
export function parseMail(raw) {
  const sep = raw.search(/\r?\n\r?\n/);
  const head = raw.slice(0, sep).replace(/\r?\n[ \t]+/g, ' ');
  const headers = {};
  for (const line of head.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) {
      const k = line.slice(0, i).toLowerCase();
      if (!(k in headers)) headers[k] = line.slice(i + 1).trim();
    }
  }
  return { raw, headers, body: raw.slice(sep).replace(/^\r?\n\r?\n/, '') };
}
