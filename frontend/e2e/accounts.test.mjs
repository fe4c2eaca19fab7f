// Accounts, history and moderation in the web client, in headless
// Chromium against a real banter with its SQLite store.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  TcpClient, WAIT_MS, expectLine, launchBrowser, openPage, say, startBanter,
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

async function fillSignIn(page, nick, password, create = false) {
  await page.getByLabel('Choose a nick').fill(nick);
  if (password) await page.locator('#password').fill(password);
  if (create) await page.getByLabel(/Create an account/).check();
}

test('register, stay logged in across a reload, sign out, log in again', async () => {
  const page = await openPage(browser, server.url);
  try {
    await fillSignIn(page, 'ada', 'correct horse', true);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.locator('.status.online').waitFor({ timeout: WAIT_MS });
    await page.locator('.whoami').getByText('(account)').waitFor({ timeout: WAIT_MS });
    const token = await page.evaluate(() => localStorage.getItem('banter.token'));
    assert.match(token, /^[0-9a-f]{16,}$/, 'the login token is kept');
    assert.equal(await page.evaluate(() => JSON.stringify(localStorage).includes('correct horse')), false,
      'the password is not stored');

    // A reload logs in with the token, without the form.
    await page.reload();
    await page.locator('.status.online').waitFor({ timeout: WAIT_MS });
    await page.locator('.whoami').getByText('(account)').waitFor({ timeout: WAIT_MS });

    // Signing out revokes the token and forgets the session.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Choose a nick').waitFor({ timeout: WAIT_MS });
    assert.equal(await page.evaluate(() => localStorage.getItem('banter.token')), null);
    const reuse = await TcpClient.open(server.tcp);
    reuse.send({ type: 'hello', nick: 'ada', token, ref: 1 });
    const refused = await reuse.waitFor((m) => m.ref === 1);
    assert.equal(refused.code, 'auth_failed', 'the token was revoked');
    reuse.close();

    // A guest can't take the account's nick; the right password can.
    await fillSignIn(page, 'ada');
    await page.getByRole('button', { name: 'Start chatting' }).click();
    await page.locator('#nick-help').getByText(/account|reserved|password/i).waitFor({ timeout: WAIT_MS });
    await page.locator('#password').fill('wrong password');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.locator('#nick-help').getByText(/password/i).waitFor({ timeout: WAIT_MS });
    await page.locator('#password').fill('correct horse');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.locator('.status.online').waitFor({ timeout: WAIT_MS });
    await page.locator('.whoami').getByText('(account)').waitFor({ timeout: WAIT_MS });
  } finally {
    await page.context().close();
  }
});

test('scrolling up loads older history, down to the first message', async () => {
  const bot = await TcpClient.connect(server.tcp, 'scribe');
  bot.send({ type: 'join', room: 'archive' });
  await bot.waitFor((m) => m.type === 'joined' && m.room === 'archive');
  for (let i = 1; i <= 120; i++) bot.send({ type: 'say', room: 'archive', text: `line ${i}` });
  await bot.waitFor((m) => m.type === 'message' && m.text === 'line 120');
  const page = await openPage(browser, `${server.url}#archive`);
  try {
    await fillSignIn(page, 'reader');
    await page.getByRole('button', { name: 'Start chatting' }).click();
    await expectLine(page, 'line 120');
    // `joined` brings the last 20 (--history-len); the rest comes on scroll.
    assert.equal(await page.locator('.messages').getByText('line 100', { exact: true }).count(), 0);
    const list = page.locator('.messages');
    for (let i = 0; i < 10 && (await page.locator('.messages .beginning').count()) === 0; i++) {
      await list.evaluate((el) => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); });
      await page.waitForTimeout(300);
    }
    await page.locator('.messages .beginning').waitFor({ timeout: WAIT_MS });
    await page.locator('.messages').getByText('line 1', { exact: true }).waitFor({ timeout: WAIT_MS });
    const ids = await page.locator('.messages .msg').evaluateAll((els) => els.map((e) => Number(e.id.slice(1))));
    assert.deepEqual(ids, Array.from({ length: 120 }, (_, i) => i + 1), 'every message once, in order');
  } finally {
    bot.close();
    await page.context().close();
  }
});

test('an owner edits the topic and kicks and bans from the member list', async () => {
  const page = await openPage(browser, `${server.url}#den`);
  const bob = await TcpClient.connect(server.tcp, 'bob');
  try {
    await fillSignIn(page, 'olga', 'olga-password', true);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.locator('h1.title').getByText('#den').waitFor({ timeout: WAIT_MS });
    // The first logged-in user in a new room owns it.
    await page.locator('.members').getByText('owner').waitFor({ timeout: WAIT_MS });

    bob.send({ type: 'join', room: 'den' });
    await bob.waitFor((m) => m.type === 'joined' && m.room === 'den');
    page.answerDialog = 'house rules: be kind';
    await page.getByRole('button', { name: 'Edit topic' }).click();
    await bob.waitFor((m) => m.type === 'topic' && m.topic?.text === 'house rules: be kind');
    await page.locator('.topic').getByText('house rules: be kind').waitFor({ timeout: WAIT_MS });

    await page.getByRole('button', { name: 'Kick bob from #den' }).click();
    await bob.waitFor((m) => m.type === 'kicked' && m.nick === 'bob' && m.by === 'olga');
    await expectLine(page, 'olga removed bob');

    bob.send({ type: 'join', room: 'den' });
    await bob.waitFor((m) => m.type === 'joined' && m.room === 'den' && bob.seen.filter((x) => x.type === 'joined' && x.room === 'den').length === 2);
    await page.getByRole('button', { name: 'Ban bob from #den' }).click();
    await bob.waitFor((m) => m.type === 'banned' && m.set === true);
    bob.send({ type: 'join', room: 'den', ref: 'again' });
    const refused = await bob.waitFor((m) => m.type === 'error' && m.ref === 'again');
    assert.equal(refused.code, 'banned');

    // A guest in the room sees no moderation buttons.
    const guest = await openPage(browser, `${server.url}#den`);
    await fillSignIn(guest, 'gus');
    await guest.getByRole('button', { name: 'Start chatting' }).click();
    await guest.locator('.members').getByText('olga').waitFor({ timeout: WAIT_MS });
    assert.equal(await guest.getByRole('button', { name: /^Kick / }).count(), 0);
    assert.equal(await guest.getByRole('button', { name: 'Edit topic' }).count(), 0);
    await say(guest, 'hello den');
    await expectLine(page, 'hello den');
    await guest.context().close();
  } finally {
    bob.close();
    await page.context().close();
  }
});
