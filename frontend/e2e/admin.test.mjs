// The Administration panel in headless Chromium against a real banter
// started with --server-admin root: root, on a phone, bans an account from
// the server and lifts the ban, and disconnects a user; an account that
// is no administrator sees no Administration link.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { TcpClient, WAIT_MS, openPage, launchBrowser, startBanter } from './harness.mjs';

let browser;
let server;
before(async () => {
  browser = await launchBrowser();
  server = await startBanter({ args: ['--server-admin', 'root'] });
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function createAccount(page, nick, password) {
  await page.getByLabel('Choose a nick').fill(nick);
  await page.locator('#password').fill(password);
  await page.getByLabel(/Create an account/).check();
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.locator('.status.online').waitFor({ timeout: WAIT_MS });
  // Attached: on a phone the sidebar is a closed drawer.
  await page.locator('.whoami').getByText('(account)').waitFor({ state: 'attached', timeout: WAIT_MS });
}

/** A TCP session: `hello` (with a password when given) and its answer. */
async function tcpHello(nick, password) {
  const client = await TcpClient.open(server.tcp);
  client.send({ type: 'hello', nick, password });
  const answer = await client.waitFor((m) => m.type === 'welcome' || m.type === 'error');
  return { client, answer };
}

test('an administrator bans an account and lifts the ban, and disconnects a user', async () => {
  const eve = await TcpClient.open(server.tcp);
  eve.send({ type: 'register', nick: 'eve', password: 'eve password' });
  await eve.waitFor((m) => m.type === 'registered');
  eve.close();
  const mallory = await TcpClient.connect(server.tcp, 'mallory');
  mallory.send({ type: 'join', room: 'lobby' });
  await mallory.waitFor((m) => m.type === 'joined');

  const page = await openPage(browser, server.url, { viewport: { width: 390, height: 844 } });
  try {
    await createAccount(page, 'root', 'root password');
    await page.getByRole('button', { name: 'Rooms and conversations' }).click();
    await page.getByRole('button', { name: 'Administration' }).click();
    await page.getByRole('heading', { name: 'Server administration' }).waitFor({ timeout: WAIT_MS });
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'admin-title',
      'the panel takes the focus');
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'nothing sticks out');
    const note = page.locator('#admin-help');

    // Ban the account eve for an hour: listed, and eve can't log in.
    await page.getByLabel('Account, address or range').fill('eve');
    await page.getByLabel('Reason').fill('spamming');
    await page.getByLabel(/^Minutes/).fill('60');
    await page.getByRole('button', { name: 'Ban', exact: true }).click();
    await note.getByText('Banned the account eve from the server.').waitFor({ timeout: WAIT_MS });
    const bans = page.getByRole('region', { name: 'Server bans' });
    await bans.getByText('the account eve: spamming').waitFor({ timeout: WAIT_MS });
    assert.match(await bans.textContent(), /by root · until /);
    const refused = await tcpHello('eve', 'eve password');
    assert.equal(refused.answer.code, 'server_banned', JSON.stringify(refused.answer));
    refused.client.close();

    // A refusal is a sentence.
    await page.getByLabel('Account, address or range').fill('no good');
    await page.getByRole('button', { name: 'Ban', exact: true }).click();
    await note.getByText('“no good” is neither an account name nor an address.').waitFor({ timeout: WAIT_MS });

    // Lift it: gone from the list, and eve logs in again.
    await page.getByRole('button', { name: 'Lift the ban on the account eve' }).click();
    await note.getByText('Lifted the ban on the account eve.').waitFor({ timeout: WAIT_MS });
    await bans.getByText('Nobody is banned from the server.').waitFor({ timeout: WAIT_MS });
    const back = await tcpHello('eve', 'eve password');
    assert.equal(back.answer.type, 'welcome', JSON.stringify(back.answer));
    back.client.close();

    // Disconnect mallory from #lobby's member list, with a reason.
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.getByText(/· 2 members/).waitFor({ timeout: WAIT_MS });
    await page.getByRole('region', { name: 'Rooms', exact: true })
      .getByRole('button', { name: '#lobby', exact: true }).click();
    const people = page.getByRole('region', { name: 'People in #lobby' });
    await people.getByText('mallory').waitFor({ timeout: WAIT_MS });
    page.answerDialog = 'flooding';
    await page.getByRole('button', { name: 'Disconnect mallory' }).click();
    await note.getByText('mallory was disconnected.').waitFor({ timeout: WAIT_MS });
    assert.deepEqual(page.dialogs, ['Disconnect mallory? Reason (optional):']);
    const closing = await mallory.waitFor((m) => m.type === 'closing');
    assert.equal(closing.code, 'killed');
    assert.equal(await people.getByText('mallory').count(), 0, 'gone from the list');
    assert.deepEqual(page.errors, []);
  } finally {
    mallory.close();
    await page.context().close();
  }
});

test('an account that is no administrator sees no Administration link', async () => {
  const page = await openPage(browser, server.url);
  try {
    await createAccount(page, 'bob', 'bob password');
    await page.getByRole('button', { name: 'Account', exact: true }).waitFor({ timeout: WAIT_MS });
    assert.equal(await page.getByRole('button', { name: 'Administration' }).count(), 0);
  } finally {
    await page.context().close();
  }
});
