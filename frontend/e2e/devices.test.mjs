// One account on two devices, in headless Chromium: two browser contexts
// (two phones, or a laptop and a phone) logged into one account are one
// user, show the same rooms, and reading on one clears the unread badge on
// the other (the account's read position, kept by the server).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { TcpClient, WAIT_MS, expectLine, launchBrowser, openPage, say, startBanter } from './harness.mjs';

let browser;
let server;
before(async () => {
  browser = await launchBrowser();
  server = await startBanter();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function logIn(page, nick, password, create = false) {
  await page.getByLabel('Choose a nick').fill(nick);
  await page.locator('#password').fill(password);
  if (create) {
    await page.getByLabel(/Create an account/).check();
    await page.getByRole('button', { name: 'Create account' }).click();
  } else {
    await page.getByRole('button', { name: 'Log in' }).click();
  }
  await page.locator('.status.online').waitFor({ timeout: WAIT_MS });
}

/** The sidebar link of a room. */
const roomLink = (page, room) => page.locator('.list a', { hasText: room }).first();

test('two devices of one account share rooms and read positions', async () => {
  const laptop = await openPage(browser, server.url);
  let phone;
  const bob = await TcpClient.connect(server.tcp, 'bob');
  try {
    await logIn(laptop, 'mia', 'correct horse', true);
    bob.send({ type: 'join', room: 'lobby' });
    await bob.waitFor((m) => m.type === 'joined' && m.room === 'lobby');

    // The second device: the same nick (never mia_), in the same rooms.
    phone = await openPage(browser, server.url, { viewport: { width: 390, height: 844 } });
    await logIn(phone, 'mia', 'correct horse');
    await phone.locator('.whoami').getByText('mia', { exact: true }).waitFor({ state: 'attached', timeout: WAIT_MS });
    assert.equal(await phone.getByText('mia_').count(), 0);

    // A room joined on the laptop appears on the phone.
    await say(laptop, '/join side');
    await laptop.locator('h1.title').getByText('#side').waitFor({ timeout: WAIT_MS });
    await phone.locator('.list').getByText('side').first().waitFor({ state: 'attached', timeout: WAIT_MS });
    await phone.goto(`${server.url}#side`);
    await phone.locator('.status.online').waitFor({ timeout: WAIT_MS });
    await phone.locator('h1.title').getByText('#side').waitFor({ timeout: WAIT_MS });

    // What the laptop says shows on the phone once.
    await say(laptop, 'from the laptop');
    await expectLine(phone, 'from the laptop');
    assert.equal(await phone.locator('.messages').getByText('from the laptop').count(), 1);

    // bob speaks in lobby, which neither device has on screen: both show
    // it unread.
    bob.send({ type: 'say', room: 'lobby', text: 'anyone there?' });
    for (const page of [laptop, phone]) {
      await roomLink(page, 'lobby').locator('.badge[aria-label="1 unread"]')
        .waitFor({ state: 'attached', timeout: WAIT_MS });
    }
    // Reading it on the laptop clears the phone's badge.
    await roomLink(laptop, 'lobby').click();
    await expectLine(laptop, 'anyone there?');
    await roomLink(phone, 'lobby').locator('.badge')
      .waitFor({ state: 'detached', timeout: WAIT_MS });
    assert.equal(await phone.title(), '#side · Banter');

    // A reload of the phone (a fresh connection) shows the same state.
    bob.send({ type: 'say', room: 'lobby', text: 'second question' });
    await roomLink(phone, 'lobby').locator('.badge[aria-label="1 unread"]')
      .waitFor({ state: 'attached', timeout: WAIT_MS });
    await expectLine(laptop, 'second question');
    await roomLink(phone, 'lobby').locator('.badge').waitFor({ state: 'detached', timeout: WAIT_MS });
    await phone.reload();
    await phone.locator('.status.online').waitFor({ timeout: WAIT_MS });
    await roomLink(phone, 'lobby').waitFor({ state: 'attached', timeout: WAIT_MS });
    assert.equal(await roomLink(phone, 'lobby').locator('.badge').count(), 0);
    assert.deepEqual(laptop.errors, []);
    assert.deepEqual(phone.errors, []);
  } finally {
    bob.close();
    await phone?.context().close();
    await laptop.context().close();
  }
});
