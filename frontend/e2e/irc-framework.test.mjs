// Banter's IRC face driven by irc-framework, the library Kiwi IRC is built
// on: over the IRC port and over IRC-over-WebSocket (`/irc`), it logs in
// with SASL, joins, chats with a JSON user, reads extended-join account
// names, MONITOR's online and offline, a labeled response and a
// CHATHISTORY page. The library parses every line itself, so this checks
// the server against an implementation that is not ours. Last, what an
// IRC user sets (bot mode, real name) shows on the web page.

import test from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { WebSocket } from 'ws';
import {
  TcpClient, WAIT_MS, expectLine, launchBrowser, openPage, say, signIn, startBanter,
} from './harness.mjs';

const require = createRequire(import.meta.url);
const IRC = require('irc-framework');
const WebSocketTransport = require('irc-framework/src/transports/websocket');
// Node 20 has no WebSocket of its own; the library expects the browser's.
globalThis.WebSocket ??= WebSocket;

const PASSWORD = 'correct horse battery';

/** Resolves with the first `name` event matching `match`. */
function event(client, name, match = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`irc-framework never emitted ${name}`)), WAIT_MS);
    const listener = (e) => {
      if (!match(e)) return;
      clearTimeout(timer);
      client.removeListener(name, listener);
      resolve(e);
    };
    client.on(name, listener);
  });
}

/** Registers `nick` as an account over the JSON-lines port. */
async function register(addr, nick) {
  const tcp = await TcpClient.open(addr);
  tcp.send({ type: 'register', nick, password: PASSWORD });
  await tcp.waitFor((m) => m.type === 'registered');
  tcp.close();
}

/** An irc-framework client logged into `nick` with SASL, registered. */
async function connect(options) {
  const client = new IRC.Client();
  client.requestCap('labeled-response');
  client.requestCap('draft/chathistory');
  const registered = event(client, 'registered');
  client.connect({
    auto_reconnect: false,
    username: options.nick,
    gecos: `${options.nick} via irc-framework`,
    account: { account: options.nick, password: PASSWORD },
    ...options,
  });
  await registered;
  return client;
}

/** The lines the client received, as the library saw them. */
function recordLines(client) {
  const lines = [];
  client.on('raw', (e) => {
    if (e.from_server) lines.push(e.line);
  });
  return lines;
}

async function chatsWithAJsonUser(server, transport) {
  const nick = `kiwi${transport ? 'ws' : 'tcp'}`;
  const room = `#${nick}`;
  await register(server.tcp, nick);
  await register(server.tcp, `${nick}2`);
  const [host, port] = server.http.split(':');
  const [ircHost, ircPort] = server.irc.split(':');
  const where = transport
    ? { host, port: Number(port), path: '/irc', transport }
    : { host: ircHost, port: Number(ircPort) };
  const client = await connect({ nick, ...where });
  const lines = recordLines(client);
  assert.equal(client.user.nick, nick);
  for (const cap of ['extended-join', 'account-notify', 'labeled-response', 'draft/chathistory']) {
    assert.ok(client.network.cap.isEnabled(cap), `${cap} enabled`);
  }

  // MONITOR: offline first, online once a JSON user takes the nick.
  const offline = event(client, 'users offline');
  client.addMonitor('later');
  assert.deepEqual((await offline).nicks, ['later']);

  const joined = event(client, 'join', (e) => e.nick === nick);
  client.join(room);
  const own = await joined;
  assert.equal(own.account, nick, 'our own extended JOIN names our account');

  // A JSON guest joins (account `*`) and says hello; we answer.
  const online = event(client, 'users online');
  const webJoin = event(client, 'join', (e) => e.nick === 'later');
  const web = await TcpClient.open(server.tcp);
  web.send({ type: 'hello', nick: 'later', realname: 'Later Person' });
  await web.waitFor((m) => m.type === 'welcome');
  assert.deepEqual((await online).nicks, ['later']);
  web.send({ type: 'join', room: room.slice(1) });
  const theirs = await webJoin;
  assert.equal(theirs.account, false, 'a guest has no account');
  assert.equal(theirs.gecos, 'Later Person');
  const said = event(client, 'privmsg', (e) => e.nick === 'later');
  web.send({ type: 'say', room: room.slice(1), text: 'hello from json' });
  assert.equal((await said).message, 'hello from json');
  client.say(room, 'hello from irc-framework');
  const heard = await web.waitFor((m) => m.type === 'message' && m.from === nick);
  assert.equal(heard.text, 'hello from irc-framework');

  // Another account joins over IRC: its extended JOIN names its account.
  const acctJoin = event(client, 'join', (e) => e.nick === `${nick}2`);
  const other = await connect({ nick: `${nick}2`, ...where });
  other.join(room);
  assert.equal((await acctJoin).account, `${nick}2`);
  other.quit('bye');

  // A labeled command's answer comes in a labeled-response batch.
  const batch = event(client, 'batch end labeled-response');
  client.raw('@label=who1 WHOIS later');
  const answered = await batch;
  assert.ok(answered.commands.some((c) => c.command === 'RPL_WHOISUSER' || c.command === '311'));
  assert.ok(lines.some((l) => l.startsWith('@label=who1 ') && l.includes(' BATCH +')));

  // A CHATHISTORY page holds what was said, oldest first.
  const page = event(client, 'batch end chathistory');
  client.raw(`CHATHISTORY LATEST ${room} * 10`);
  const history = await page;
  const texts = history.commands.map((c) => c.params[c.params.length - 1]);
  assert.deepEqual(texts, ['hello from json', 'hello from irc-framework']);

  // MONITOR: offline again when the JSON user leaves.
  const gone = event(client, 'users offline');
  web.close();
  assert.deepEqual((await gone).nicks, ['later']);
  client.quit('done');
}

test('irc-framework chats over the IRC port', async () => {
  const server = await startBanter();
  try {
    await chatsWithAJsonUser(server, null);
  } finally {
    await server.stop();
  }
});

test('irc-framework chats over IRC over WebSocket (/irc)', async () => {
  const server = await startBanter();
  try {
    await chatsWithAJsonUser(server, WebSocketTransport);
  } finally {
    await server.stop();
  }
});

// What an IRC user sets shows on the page: its bot mode in the member
// list, its real name in /whois, both as they change.
test('a bot and its real name set on IRC show on the page', async () => {
  const server = await startBanter();
  const browser = await launchBrowser();
  try {
    const page = await openPage(browser, server.url);
    await signIn(page, 'viewer');
    const [ircHost, ircPort] = server.irc.split(':');
    const bot = new IRC.Client();
    const registered = event(bot, 'registered');
    bot.connect({ host: ircHost, port: Number(ircPort), nick: 'robot', username: 'robot', gecos: 'Robo the Helper', auto_reconnect: false });
    await registered;
    bot.raw('MODE robot +B');
    bot.join('#lobby');
    const members = page.locator('.members');
    await members.getByText('robot').waitFor({ timeout: WAIT_MS });
    const role = members.locator('li', { hasText: 'robot' }).locator('.role');
    await role.filter({ hasText: 'bot' }).waitFor({ timeout: WAIT_MS });
    await say(page, '/whois robot');
    await expectLine(page, 'robot (Robo the Helper), a bot: in #lobby');
    // No longer a bot: the list says so at once.
    bot.raw('MODE robot -B');
    await role.waitFor({ state: 'detached', timeout: WAIT_MS });
    assert.deepEqual(page.errors, []);
    bot.quit('done');
  } finally {
    await browser.close();
    await server.stop();
  }
});
