// Private rooms in headless Chromium against a real banter: an owner
// makes a room invite-only with a key from the Room settings form, invites
// a TCP user, makes the room moderated and gives that user a voice from
// the member list; a guest page is refused, then joins with the key.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  TcpClient, WAIT_MS, expectLine, launchBrowser, openPage, say, signIn, startBanter,
} from './harness.mjs';

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

test('an owner makes a room private and moderated from the web client', async () => {
  const page = await openPage(browser, `${server.url}#vault`);
  const tess = await TcpClient.connect(server.tcp, 'tess');
  let guest;
  try {
    await page.getByLabel('Choose a nick').fill('olga');
    await page.locator('#password').fill('olga-password');
    await page.getByLabel(/Create an account/).check();
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.locator('h1.title').getByText('#vault').waitFor({ timeout: WAIT_MS });
    await page.locator('.members').getByText('owner').waitFor({ timeout: WAIT_MS });
    const settings = page.getByRole('region', { name: 'Room settings' });
    await settings.getByText('Open to everyone').waitFor({ timeout: WAIT_MS });

    // Invite only, with a key.
    await settings.getByText('Change').click();
    await settings.getByLabel(/^Invite only/).check();
    await settings.getByLabel(/^Key/).fill('sesame');
    await settings.getByRole('button', { name: 'Save' }).click();
    await expectLine(page, 'olga changed the room: invite only on, key on');
    await settings.getByText('Invite only · Key needed').waitFor({ timeout: WAIT_MS });

    tess.send({ type: 'join', room: 'vault', ref: 'j1' });
    const refused = await tess.waitFor((m) => m.type === 'error' && m.ref === 'j1');
    assert.equal(refused.code, 'invite_only');

    // The Invite form lets tess in (no key needed when invited).
    await page.getByLabel('Nick to invite').fill('tess');
    await page.getByRole('button', { name: 'Invite', exact: true }).click();
    await tess.waitFor((m) => m.type === 'invite' && m.room === 'vault');
    await expectLine(page, 'olga invited tess');
    tess.send({ type: 'join', room: 'vault' });
    await tess.waitFor((m) => m.type === 'joined' && m.room === 'vault');

    // Moderated: tess is silent until given a voice from the member list.
    await settings.getByLabel(/^Invite only/).uncheck();
    await settings.getByLabel(/^Moderated/).check();
    await settings.getByRole('button', { name: 'Save' }).click();
    await expectLine(page, 'olga changed the room: invite only off, moderated on');
    tess.send({ type: 'say', room: 'vault', text: 'can I talk?', ref: 's1' });
    const silenced = await tess.waitFor((m) => m.type === 'error' && m.ref === 's1');
    assert.equal(silenced.code, 'moderated');
    await page.getByRole('button', { name: 'Let tess speak in #vault' }).click();
    await tess.waitFor((m) => m.type === 'voiced' && m.nick === 'tess' && m.set === true);
    await expectLine(page, 'olga gave tess a voice');
    await page.locator('.members').getByText('· voice').waitFor({ timeout: WAIT_MS });
    tess.send({ type: 'say', room: 'vault', text: 'thank you, olga' });
    await expectLine(page, 'thank you, olga');

    // A guest page without the key is told how to give one, then joins.
    guest = await openPage(browser, server.url);
    await signIn(guest, 'gus');
    await say(guest, '/join vault');
    await expectLine(guest, 'could not join #vault');
    await expectLine(guest, '(type /join vault and the key)');
    await say(guest, '/join vault sesame');
    await guest.locator('h1.title').getByText('#vault').waitFor({ timeout: WAIT_MS });
    await guest.getByRole('region', { name: 'Room settings' })
      .getByText('Key needed · Moderated').waitFor({ timeout: WAIT_MS });
    assert.equal(await guest.getByText('Change', { exact: true }).count(), 0,
      'only operators change the settings');
    assert.deepEqual(page.errors, []);
    assert.deepEqual(guest.errors, []);
  } finally {
    tess.close();
    await guest?.context().close();
    await page.context().close();
  }
});
