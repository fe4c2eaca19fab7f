// What the browser tests share: a real banter process on free ports, a
// JSON-lines TCP client, headless Chromium (Debian's, driven by
// playwright-core) and nginx as a real reverse proxy serving Banter under
// /chat/. Everything is started by the test and stopped when it ends.

import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BANTER_BIN = process.env.BANTER_BIN || path.join(ROOT, 'target/debug/banter');
export const WAIT_MS = 15_000;

/** Starts banter; resolves once it logs `banter ready:` with its addresses. */
export async function startBanter({ http = '127.0.0.1:0', args = [] } = {}) {
  if (!fs.existsSync(BANTER_BIN)) {
    throw new Error(`${BANTER_BIN} is missing: build banter first (scripts/test does)`);
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'banter-e2e-'));
  const child = spawn(BANTER_BIN, [
    '--http', http, '--tcp', '127.0.0.1:0', '--irc', '127.0.0.1:0',
    '--data-dir', dataDir, '--log', 'info', '--argon2-memory-kib', '64', ...args,
  ], { stdio: ['ignore', 'ignore', 'pipe'], env: withoutRustLog() });
  const logs = [];
  const lines = readline.createInterface({ input: child.stderr });
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`banter did not start:\n${logs.join('\n')}`)), WAIT_MS);
    lines.on('line', (line) => {
      logs.push(line);
      const m = line.match(/banter ready: (.*)$/);
      if (m) {
        clearTimeout(timer);
        const addr = (key) => m[1].split(/\s+/).find((w) => w.startsWith(key + '='))?.slice(key.length + 1);
        resolve({ http: addr('http'), tcp: addr('tcp'), irc: addr('irc') });
      }
    });
    child.on('exit', (code) => reject(new Error(`banter exited (${code}):\n${logs.join('\n')}`)));
  });
  let addrs;
  try {
    addrs = await ready;
  } catch (e) {
    child.kill('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
  return {
    ...addrs,
    url: `http://${addrs.http}/`,
    logs,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function withoutRustLog() {
  const env = { ...process.env };
  delete env.RUST_LOG;
  return env;
}

/** A bot on the JSON-lines TCP port. */
export class TcpClient {
  static async connect(addr, nick) {
    const client = await TcpClient.open(addr);
    client.send({ type: 'hello', nick });
    await client.waitFor((m) => m.type === 'welcome');
    return client;
  }

  /** Connected, before `hello`: the test says it (with a token, say). */
  static async open(addr) {
    const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
    const socket = net.connect(port, host);
    await once(socket, 'connect');
    return new TcpClient(socket);
  }

  constructor(socket) {
    this.socket = socket;
    this.seen = [];
    this.waiters = [];
    readline.createInterface({ input: socket }).on('line', (line) => {
      const msg = JSON.parse(line);
      this.seen.push(msg);
      this.waiters = this.waiters.filter((w) => !w(msg));
    });
  }

  send(msg) {
    this.socket.write(JSON.stringify(msg) + '\n');
  }

  /** Resolves with the first message (seen before or later) that matches. */
  waitFor(match, what = match.toString()) {
    const found = this.seen.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`TCP client never got: ${what}\nseen: ${JSON.stringify(this.seen)}`)), WAIT_MS);
      this.waiters.push((msg) => {
        if (!match(msg)) return false;
        clearTimeout(timer);
        resolve(msg);
        return true;
      });
    });
  }

  close() {
    this.socket.destroy();
  }
}

/** Debian's Chromium, headless, with a fresh profile (playwright makes one). */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

/** A page of its own (its own local storage), with errors collected. */
export async function openPage(browser, url, { viewport = { width: 1280, height: 800 }, colorScheme = 'light' } = {}) {
  const context = await browser.newContext({ viewport, colorScheme });
  const page = await context.newPage();
  page.errors = [];
  page.dialogs = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  // Dialogs are recorded and dismissed, unless a test answers them
  // (page.answerDialog = 'text').
  page.on('dialog', (d) => {
    page.dialogs.push(d.message());
    if (page.answerDialog !== undefined) d.accept(page.answerDialog);
    else d.dismiss();
  });
  await page.goto(url);
  return page;
}

/** Signs in on the sign-in form and waits until the page is online. */
export async function signIn(page, nick) {
  await page.getByLabel('Choose a nick').fill(nick);
  await page.getByRole('button', { name: 'Start chatting' }).click();
  await page.locator('.status.online').waitFor({ timeout: WAIT_MS });
}

export async function say(page, text) {
  const box = page.locator('#composer-text');
  await box.fill(text);
  await box.press('Enter');
}

/** Waits until the conversation on screen shows `text`. */
export async function expectLine(page, text) {
  await page.locator('.messages').getByText(text, { exact: false }).first().waitFor({ timeout: WAIT_MS });
}

/** nginx in front of banter: `/chat/` → banter's `/`, WebSocket included. */
export async function startNginx(upstream) {
  const which = spawnSync('sh', ['-c', 'command -v nginx || ls /usr/sbin/nginx'], { encoding: 'utf8' });
  const bin = which.stdout.trim().split('\n')[0];
  if (!bin) throw new Error('nginx is not installed (scripts/test installs it)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'banter-nginx-'));
  const port = await freePort();
  fs.mkdirSync(path.join(dir, 'logs'));
  const conf = `
daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/logs/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:${port};
    location = /chat { return 301 /chat/; }
    location /chat/ {
      proxy_pass http://${upstream}/;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_read_timeout 120s;
    }
  }
}`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const child = spawn(bin, ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  await waitForPort(port, () => `nginx did not start: ${stderr}`);
  return {
    url: `http://127.0.0.1:${port}/chat/`,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGQUIT');
        await once(child, 'exit');
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function freePort() {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

async function waitForPort(port, why) {
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.on('connect', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(why());
}
