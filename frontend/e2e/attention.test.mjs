// Attention (issue 25) in the web client, in headless Chromium against a
// real banter with its SQLite store: a hidden page gets a system
// notification for a mention (the permission granted by the test; the
// page's visibility overridden), and a click on it opens the message;
// mention counts in the room list and the title, and the Mentions panel's
// jump; a notification level set in the header; a search whose result
// opens its room at the message, loading the history back to it; the
// service worker and the manifest that make the app installable. Real
// push delivery needs a browser push service (the internet): the server's
// side of it is tested in backend/tests/push.rs.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  TcpClient, WAIT_MS, expectLine, launchBrowser, openPage, startBanter,
} from './harness.mjs';

let browser;
let server;
before(async () => {
  browser = await launchBrowser();
  // A bot fills a room with history at once: above the default message rate.
  server = await startBanter({ args: ['--history-len', '20', '--message-rate', '0'] });
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Records every Notification the page makes (and keeps the last). */
function spyOnNotifications() {
  window.__notes = [];
  const Real = window.Notification;
  const Spy = function (title, options) {
    const shown = { title, ...options, close() {}, onclick: null };
    window.__notes.push(shown);
    return shown;
  };
  Object.defineProperty(Spy, 'permission', { get: () => Real.permission });
  Spy.requestPermission = () => Real.requestPermission();
  window.Notification = Spy;
  // `document.visibilityState`, as the test says.
  Object.defineProperty(document, 'visibilityState', {
    configurable: true,
    get: () => (window.__hidden ? 'hidden' : 'visible'),
  });
  window.__setHidden = (hidden) => {
    window.__hidden = hidden;
    document.dispatchEvent(new Event('visibilitychange'));
  };
}

/** A page signed in with a new account `nick`. */
async function accountPage(nick) {
  const page = await openPage(browser, server.url);
  await page.context().grantPermissions(['notifications'], { origin: new URL(server.url).origin });
  await page.addInitScript(spyOnNotifications);
  await page.reload();
  await page.getByLabel('Choose a nick').fill(nick);
  await page.locator('#password').fill('correct horse');
  await page.getByLabel(/Create an account/).check();
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.locator('.status.online').waitFor({ timeout: WAIT_MS });
  return page;
}

async function join(page, room) {
  await page.getByLabel('Join or create a room').fill(room);
  await page.getByRole('button', { name: 'Join', exact: true }).click();
  await page.getByRole('heading', { name: `#${room}` }).waitFor({ timeout: WAIT_MS });
}

async function bot(nick, rooms) {
  const client = await TcpClient.connect(server.tcp, nick);
  for (const room of rooms) {
    client.send({ type: 'join', room });
    await client.waitFor((m) => m.type === 'joined' && m.room === room);
  }
  return client;
}

test('a hidden page notifies a mention; counts, the Mentions panel and levels', async () => {
  const page = await accountPage('ada');
  const bob = await bot('bob', ['lobby', 'den']);
  try {
    await join(page, 'den');
    await page.locator('.sidebar').getByRole('link', { name: /lobby/ }).click();

    // The Mentions panel offers notifications from a click, never on load.
    await page.getByRole('button', { name: 'Mentions' }).click();
    await page.getByRole('heading', { name: 'Notifications' }).waitFor({ timeout: WAIT_MS });
    assert.equal(await page.getByRole('button', { name: 'Enable notifications' }).count(), 0,
      'the permission is granted already: nothing to ask');
    await page.getByRole('button', { name: 'Back to the conversation' }).click();

    // Hidden: a mention becomes a notification; chatter does not.
    await page.evaluate(() => window.__setHidden(true));
    bob.send({ type: 'say', room: 'den', text: 'just chatting' });
    bob.send({ type: 'say', room: 'den', text: 'ada: the deploy is done' });
    await page.waitForFunction(() => window.__notes.length > 0, null, { timeout: WAIT_MS });
    const notes = await page.evaluate(() => window.__notes.map((n) => ({ title: n.title, body: n.body })));
    assert.deepEqual(notes, [{ title: 'bob in #den', body: 'ada: the deploy is done' }]);

    // The room list and the title count the mention apart from the unread.
    const den = page.locator('.sidebar li', { hasText: 'den' });
    await den.locator('.badge.mention').getByText('@1').waitFor({ timeout: WAIT_MS });
    await den.locator('.badge:not(.mention)').getByText('2').waitFor({ timeout: WAIT_MS });
    assert.match(await page.title(), /^\(2 · @1\) #lobby · Banter$/);

    // A click on the notification opens the room at the message.
    await page.evaluate(() => {
      window.__setHidden(false);
      window.__notes[0].onclick();
    });
    await page.getByRole('heading', { name: '#den' }).waitFor({ timeout: WAIT_MS });
    const mention = page.locator('.msg.mention', { hasText: 'the deploy is done' });
    await mention.waitFor({ timeout: WAIT_MS });
    await page.locator('.msg.highlight', { hasText: 'the deploy is done' }).waitFor({ timeout: WAIT_MS });
    assert.equal(await den.locator('.badge').count(), 0, 'read now');

    // The Mentions panel lists it, and jumps to it.
    await page.locator('.sidebar').getByRole('link', { name: /lobby/ }).click();
    await page.getByRole('button', { name: 'Mentions' }).click();
    const hit = page.locator('.hits .hit', { hasText: 'the deploy is done' });
    await hit.waitFor({ timeout: WAIT_MS });
    assert.match(await hit.innerText(), /#den\s+bob/);
    await hit.click();
    await page.getByRole('heading', { name: '#den' }).waitFor({ timeout: WAIT_MS });

    // Muted in the header: the server keeps it; the room shows a dot.
    await page.getByLabel('Notifications for #den').selectOption('none');
    const me = await TcpClient.open(server.tcp);
    const token = await page.evaluate(() => localStorage.getItem('banter.token'));
    me.send({ type: 'hello', nick: 'ada_phone', token });
    await me.waitFor((m) => m.type === 'notify_levels');
    assert.deepEqual(me.seen.find((m) => m.type === 'notify_levels').levels, [{ room: 'den', level: 'none' }]);
    me.close();
    await page.locator('.sidebar').getByRole('link', { name: /lobby/ }).click();
    bob.send({ type: 'say', room: 'den', text: 'ada, muted now?' });
    await den.locator('.unread-dot').waitFor({ timeout: WAIT_MS });
    assert.equal(await den.locator('.badge').count(), 0, 'a muted room shows no badge');
    assert.deepEqual(page.errors, []);
  } finally {
    bob.close();
    await page.context().close();
  }
});

test('a search result opens its room at the message, history loaded back to it', async () => {
  const bob = await bot('carl', ['archive']);
  bob.send({ type: 'say', room: 'archive', text: 'the secret plan is on the wiki' });
  for (let i = 0; i < 60; i++) bob.send({ type: 'say', room: 'archive', text: `filler ${i}` });
  await bob.waitFor((m) => m.type === 'message' && m.text === 'filler 59');
  const page = await accountPage('eve');
  try {
    await join(page, 'archive');
    await expectLine(page, 'filler 59');
    assert.equal(await page.locator('.msg', { hasText: 'secret plan' }).count(), 0, 'not loaded yet');

    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByLabel('Search your rooms and conversations').fill('secret in:#archive');
    await page.getByLabel('Search your rooms and conversations').press('Enter');
    const hit = page.locator('.hits .hit', { hasText: 'the secret plan' });
    await hit.waitFor({ timeout: WAIT_MS });
    await page.getByRole('status').getByText('1 message found.').waitFor({ timeout: WAIT_MS });
    await hit.click();
    await page.getByRole('heading', { name: '#archive' }).waitFor({ timeout: WAIT_MS });
    await page.locator('.msg.highlight', { hasText: 'the secret plan' }).waitFor({ timeout: WAIT_MS });
    assert.ok(await page.locator('.msg', { hasText: 'filler 0' }).count() > 0, 'the history between is there');
    assert.deepEqual(page.errors, []);
  } finally {
    bob.close();
    await page.context().close();
  }
});

test('the service worker registers and the manifest makes the app installable', async () => {
  const page = await openPage(browser, server.url);
  try {
    const script = await page.evaluate(() => navigator.serviceWorker.ready.then((r) => r.active.scriptURL));
    assert.equal(script, new URL('sw.js', server.url).href);
    const href = await page.locator('link[rel="manifest"]').getAttribute('href');
    const manifest = await page.evaluate((h) => fetch(h).then((r) => r.json()), href);
    assert.equal(manifest.name, 'Banter');
    assert.equal(manifest.display, 'standalone');
    assert.equal(manifest.start_url, './');
    const sizes = manifest.icons.map((i) => i.sizes);
    assert.ok(sizes.includes('192x192') && sizes.includes('512x512'), JSON.stringify(sizes));
    for (const icon of manifest.icons) {
      const type = await page.evaluate((src) => fetch(src).then((r) => (r.ok ? r.headers.get('content-type') : `HTTP ${r.status}`)), icon.src);
      assert.equal(type.split(';')[0], icon.type, icon.src);
    }
    // The page never asks for notifications by itself.
    assert.equal(await page.evaluate(() => Notification.permission), 'default');
    assert.deepEqual(page.errors, []);
  } finally {
    await page.context().close();
  }
});
