// End-to-end tests of the web client in real headless Chromium against a
// real banter: what a user sees and does, next to TCP users.
// Run by scripts/test (or: cd frontend && npm run e2e, after building
// banter and the client).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  TcpClient, WAIT_MS, expectLine, launchBrowser, openPage, say, signIn, startBanter, startNginx,
} from './harness.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

describe('two pages and a TCP client in one room', () => {
  let server;
  let alice;
  let bob;
  let carl;
  before(async () => {
    server = await startBanter();
    carl = await TcpClient.connect(server.tcp, 'carl');
    carl.send({ type: 'join', room: 'lobby' });
    await carl.waitFor((m) => m.type === 'joined');
    alice = await openPage(browser, server.url);
    await signIn(alice, 'alice');
    bob = await openPage(browser, server.url);
    await signIn(bob, 'bob');
  });
  after(async () => {
    carl?.close();
    await server?.stop();
  });

  test('everyone sees everyone: messages and presence', async () => {
    // New users land in #lobby and see who is there.
    await alice.locator('.members').getByText('carl').waitFor({ timeout: WAIT_MS });
    await alice.locator('.members').getByText('bob').waitFor({ timeout: WAIT_MS });
    await expectLine(alice, 'bob joined');
    await carl.waitFor((m) => m.type === 'presence' && m.nick === 'bob' && m.event === 'join');

    await say(alice, 'hello from alice');
    await expectLine(bob, 'hello from alice');
    const m = await carl.waitFor((m) => m.type === 'message' && m.text === 'hello from alice');
    assert.equal(m.from, 'alice');
    assert.equal(m.room, 'lobby');

    carl.send({ type: 'say', room: 'lobby', text: 'carl here, over TCP' });
    await expectLine(alice, 'carl here, over TCP');
    await expectLine(bob, 'carl here, over TCP');

    await say(bob, '/me waves');
    await alice.locator('.msg.action').getByText('waves').waitFor({ timeout: WAIT_MS });
    await carl.waitFor((m) => m.type === 'message' && m.text === '/me waves' && m.from === 'bob');
    assert.deepEqual(alice.errors, []);
  });

  test('the Invite form invites a TCP user, and an invitation shows on the page', async () => {
    const dora = await TcpClient.connect(server.tcp, 'dora');
    try {
      await alice.getByLabel('Nick to invite').fill('dora');
      await alice.getByRole('button', { name: 'Invite', exact: true }).click();
      const invite = await dora.waitFor((m) => m.type === 'invite');
      assert.deepEqual(invite, { type: 'invite', room: 'lobby', from: 'alice' });
      dora.send({ type: 'join', room: 'den' });
      await dora.waitFor((m) => m.type === 'joined' && m.room === 'den');
      dora.send({ type: 'invite', room: 'den', nick: 'alice' });
      await dora.waitFor((m) => m.type === 'invited' && m.nick === 'alice');
      await expectLine(alice, 'dora invites you to #den: /join den');
      assert.deepEqual(alice.errors, []);
    } finally {
      dora.close();
    }
  });

  test('a whisper from the page reaches the TCP client, and back', async () => {
    // Click carl in the member list to open a direct conversation.
    await alice.locator('.members').getByRole('button', { name: /carl/ }).click();
    await alice.locator('h1.title').getByText('@carl').waitFor({ timeout: WAIT_MS });
    assert.match(alice.url(), /#@carl$/);
    await say(alice, 'psst carl');
    const d = await carl.waitFor((m) => m.type === 'direct' && m.text === 'psst carl');
    assert.equal(d.from, 'alice');
    assert.equal(d.to, 'carl');
    carl.send({ type: 'whisper', to: 'alice', text: 'psst back' });
    await expectLine(alice, 'psst back');
    // Bob never sees the whisper.
    await say(bob, 'marker after the whisper');
    await expectLine(bob, 'marker after the whisper');
    assert.equal(await bob.locator('.messages').getByText('psst').count(), 0);
  });

  test('text from TCP is shown as text, never as HTML', async () => {
    await alice.locator('.sidebar').getByRole('link', { name: /lobby/ }).click();
    const evil = '<img src=x onerror=alert(1)>';
    carl.send({ type: 'say', room: 'lobby', text: evil });
    await expectLine(alice, evil);
    assert.equal(await alice.locator('.messages img').count(), 0, 'no element was created');
    assert.deepEqual(alice.dialogs, [], 'no script ran');
    // Links are clickable, safely.
    carl.send({ type: 'say', room: 'lobby', text: 'see https://example.org/x. or javascript:alert(2)' });
    const link = alice.locator('.messages a[href="https://example.org/x"]');
    await link.waitFor({ timeout: WAIT_MS });
    assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
    assert.equal(await alice.locator('.messages a[href^="javascript"]').count(), 0);
  });

  test('unread counts in the room list and the page title', async () => {
    await bob.locator('#join-room').fill('side');
    await bob.locator('#join-room').press('Enter');
    await bob.locator('h1.title').getByText('#side').waitFor({ timeout: WAIT_MS });
    carl.send({ type: 'say', room: 'lobby', text: 'unread one' });
    carl.send({ type: 'say', room: 'lobby', text: 'unread two' });
    const badge = bob.locator('.sidebar li', { hasText: 'lobby' }).locator('.badge');
    await badge.getByText('2').waitFor({ timeout: WAIT_MS });
    await bob.waitForFunction(() => document.title.startsWith('(2)'), null, { timeout: WAIT_MS });
    await bob.locator('.sidebar').getByRole('link', { name: /lobby/ }).click();
    await bob.waitForFunction(() => !document.title.startsWith('('), null, { timeout: WAIT_MS });
    assert.equal(await badge.count(), 0);
  });

  test('commands: unknown ones explain, over-long text is refused before sending', async () => {
    await say(alice, '/dance');
    await alice.locator('#composer-help').getByText(/unknown command \/dance/).waitFor({ timeout: WAIT_MS });
    const long = 'x'.repeat(4097);
    await alice.locator('#composer-text').fill(long);
    await alice.locator('.counter.over').waitFor({ timeout: WAIT_MS });
    assert.equal(await alice.getByRole('button', { name: 'Send', exact: true }).isDisabled(), true);
    await alice.locator('#composer-text').fill('');
  });

  test('a reload remembers the nick and the rooms', async () => {
    await bob.reload();
    await bob.locator('.status.online').waitFor({ timeout: WAIT_MS });
    await bob.locator('.sidebar').getByText('side').waitFor({ timeout: WAIT_MS });
    await bob.locator('.sidebar').getByText('bob', { exact: true }).waitFor({ timeout: WAIT_MS });
  });
});

test('after a server restart the page reconnects by itself and can send again', async () => {
  let server = await startBanter();
  const page = await openPage(browser, server.url);
  try {
    await signIn(page, 'dora');
    await say(page, 'before the restart');
    await expectLine(page, 'before the restart');
    const http = server.http;
    await server.stop();
    await page.locator('.status.offline, .status.connecting').first().waitFor({ timeout: WAIT_MS });
    // Same address, new process.
    server = await startBanter({ http });
    await page.locator('.status.online').waitFor({ timeout: 40_000 });
    const tcp = await TcpClient.connect(server.tcp, 'eve');
    tcp.send({ type: 'join', room: 'lobby' });
    await tcp.waitFor((m) => m.type === 'joined' && m.members.includes('dora'));
    await say(page, 'after the restart');
    await tcp.waitFor((m) => m.type === 'message' && m.text === 'after the restart' && m.from === 'dora');
    tcp.close();
  } finally {
    await page.context().close();
    await server.stop();
  }
});

test('under /chat/ behind nginx the page loads and chats', async () => {
  const server = await startBanter();
  const proxy = await startNginx(server.http);
  const page = await openPage(browser, proxy.url);
  try {
    await signIn(page, 'frank');
    const tcp = await TcpClient.connect(server.tcp, 'gina');
    tcp.send({ type: 'join', room: 'lobby' });
    await tcp.waitFor((m) => m.type === 'joined');
    await say(page, 'hi through the proxy');
    await tcp.waitFor((m) => m.type === 'message' && m.text === 'hi through the proxy');
    tcp.send({ type: 'say', room: 'lobby', text: 'and back through it' });
    await expectLine(page, 'and back through it');
    assert.match(page.url(), /\/chat\/#lobby$/);
    assert.deepEqual(page.errors, []);
    tcp.close();
  } finally {
    await page.context().close();
    await proxy.stop();
    await server.stop();
  }
});

test('on a phone the room and member lists are drawers', async () => {
  const server = await startBanter();
  const page = await openPage(browser, server.url, { viewport: { width: 390, height: 844 } });
  try {
    await signIn(page, 'hana');
    const sidebar = page.locator('.sidebar');
    assert.equal(await sidebar.isVisible(), false, 'rooms are hidden at first');
    await page.getByRole('button', { name: 'Rooms and conversations' }).click();
    await sidebar.waitFor({ state: 'visible', timeout: WAIT_MS });
    await sidebar.getByRole('link', { name: /lobby/ }).click();
    await sidebar.waitFor({ state: 'hidden', timeout: WAIT_MS });
    await page.getByRole('button', { name: 'Members' }).click();
    await page.locator('.members').getByText('hana').waitFor({ state: 'visible', timeout: WAIT_MS });
    // Nothing overflows the phone's width.
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `page is ${width}px wide`);
  } finally {
    await page.context().close();
    await server.stop();
  }
});
