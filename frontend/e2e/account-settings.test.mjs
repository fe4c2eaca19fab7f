// The Account panel in headless Chromium against a real banter: changing
// the password, signing out everywhere and deleting the account, each seen
// from a second session of the same account; and the sign-in form's
// invite code and refusals.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  TcpClient, WAIT_MS, expectLine, launchBrowser, openPage, say, startBanter,
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

async function logIn(page, nick, password, { create = false } = {}) {
  await page.getByLabel('Choose a nick').fill(nick);
  await page.locator('#password').fill(password);
  if (create) await page.getByLabel(/Create an account/).check();
  await page.getByRole('button', { name: create ? 'Create account' : 'Log in' }).click();
  try {
    await page.locator('.status.online').waitFor({ timeout: WAIT_MS });
  } catch (e) {
    const help = await page.locator('#nick-help').textContent().catch(() => '(no form)');
    throw new Error(`${nick} did not get online: ${help}`, { cause: e });
  }
  // Attached: on a phone the sidebar is a closed drawer.
  await page.locator('.whoami').getByText('(account)').waitFor({ state: 'attached', timeout: WAIT_MS });
}

/** A nick is one session's: the first session of an account takes
 * another, so that a second one can log in as the account. */
async function rename(page, nick) {
  await say(page, `/nick ${nick}`);
  await expectLine(page, `you are now known as ${nick}`);
}

const token = (page) => page.evaluate(() => localStorage.getItem('banter.token'));

/** The sign-in form is back, saying `why`, and stays: no reconnecting. */
async function expectSignedOut(page, why) {
  await page.locator('#nick-help').getByText(why).waitFor({ timeout: WAIT_MS });
  assert.equal(await token(page), null, 'the revoked token is forgotten');
  await page.waitForTimeout(1500);
  await page.locator('#nick-help').getByText(why).waitFor({ timeout: 100 });
  assert.equal(await page.locator('.status').count(), 0, 'no chat, no reconnecting');
}

async function openAccount(page) {
  await page.getByRole('button', { name: 'Account', exact: true }).click();
  await page.getByRole('heading', { name: 'Your account' }).waitFor({ timeout: WAIT_MS });
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'account-title',
    'the panel takes the focus');
}

test('changing the password signs the other session out; the new password works', async () => {
  const here = await openPage(browser, server.url);
  const there = await openPage(browser, server.url);
  try {
    await logIn(here, 'dora', 'first password', { create: true });
    await rename(here, 'dora_here');
    await logIn(there, 'dora', 'first password');
    const before = await token(here);
    await openAccount(here);

    const change = async (old, next, again = next) => {
      await here.getByLabel('Current password').fill(old);
      await here.getByLabel(/^New password \(/).fill(next);
      await here.getByLabel('New password again').fill(again);
      await here.getByRole('button', { name: 'Change password' }).click();
    };
    await change('first password', 'second password', 'second passwort');
    await here.locator('#password-help').getByText('The two new passwords differ').waitFor({ timeout: WAIT_MS });
    await change('not my password', 'second password');
    await here.locator('#password-help').getByText('The current password is wrong.').waitFor({ timeout: WAIT_MS });
    await change('first password', 'second password');
    await here.locator('#password-help').getByText(/^Password changed/).waitFor({ timeout: WAIT_MS });
    assert.equal(await here.getByLabel('Current password').inputValue(), '', 'passwords do not linger');

    // This page keeps going with a fresh token; the other is told why.
    const after = await token(here);
    assert.match(after, /^[0-9a-f]{16,}$/);
    assert.notEqual(after, before);
    await expectSignedOut(there, /signed out: the account's password was changed/);

    // The old token is dead, the fresh one logs in.
    for (const [tok, answer] of [[before, 'error'], [after, 'welcome']]) {
      const probe = await TcpClient.open(server.tcp);
      probe.send({ type: 'hello', nick: 'dora', token: tok, ref: 1 });
      const m = await probe.waitFor((m) => m.ref === 1);
      assert.equal(m.type, answer, JSON.stringify(m));
      probe.close();
    }

    // The other page logs in again with the new password only.
    await there.getByLabel('Choose a nick').fill('dora');
    await there.locator('#password').fill('first password');
    await there.getByRole('button', { name: 'Log in' }).click();
    await there.locator('#nick-help').getByText(/password/i).waitFor({ timeout: WAIT_MS });
    await logIn(there, 'dora', 'second password');
    assert.deepEqual([...here.errors, ...there.errors], []);
  } finally {
    await here.context().close();
    await there.context().close();
  }
});

test('deleting the account: this page goes on as a guest, the other is signed out', async () => {
  const here = await openPage(browser, server.url);
  const there = await openPage(browser, server.url);
  try {
    await logIn(here, 'edna', 'edna password', { create: true });
    await rename(here, 'edna_here');
    await logIn(there, 'edna', 'edna password');
    await openAccount(here);

    const del = here.getByRole('form', { name: 'Delete account' });
    await del.getByLabel('Password', { exact: true }).fill('edna password');
    await del.getByRole('button', { name: 'Delete account' }).click();
    // Not without the explicit confirmation (the browser holds the form).
    await here.waitForTimeout(300);
    assert.equal(await here.locator('.whoami').getByText('(account)').count(), 1);
    await del.getByLabel(/Yes, delete my account/).check();
    await del.getByLabel('Password', { exact: true }).fill('wrong password');
    await del.getByRole('button', { name: 'Delete account' }).click();
    await here.locator('#delete-help').getByText('Wrong password: the account was not deleted.').waitFor({ timeout: WAIT_MS });
    await del.getByLabel('Password', { exact: true }).fill('edna password');
    await del.getByRole('button', { name: 'Delete account' }).click();
    await here.locator('#delete-help').getByText(/account edna is deleted.*guest/).waitFor({ timeout: WAIT_MS });

    await here.locator('.whoami').getByText('(guest)').waitFor({ timeout: WAIT_MS });
    assert.equal(await token(here), null);
    await expectSignedOut(there, /signed out: the account was deleted/);

    // Back to the conversation, still online, as a guest.
    await here.getByRole('button', { name: 'Back to the conversation' }).click();
    await expectLine(here, 'account edna is deleted');
    await say(here, 'still here as a guest');
    await expectLine(here, 'still here as a guest');
    assert.equal(await here.getByRole('button', { name: 'Account', exact: true }).count(), 0);
    assert.deepEqual([...here.errors, ...there.errors], []);
  } finally {
    await here.context().close();
    await there.context().close();
  }
});

test('signing out everywhere, from a phone', async () => {
  const other = await openPage(browser, server.url);
  const phone = await openPage(browser, server.url, { viewport: { width: 390, height: 844 } });
  try {
    await logIn(other, 'fay', 'fay password', { create: true });
    await rename(other, 'fay_desk');
    await logIn(phone, 'fay', 'fay password');
    await phone.getByRole('button', { name: 'Rooms and conversations' }).click();
    await openAccount(phone);
    assert.ok(await phone.evaluate(() => document.documentElement.scrollWidth <= 390), 'nothing sticks out');
    const button = phone.getByRole('button', { name: 'Sign out everywhere' });
    await button.scrollIntoViewIfNeeded();
    await button.click();
    await phone.getByLabel('Choose a nick').waitFor({ timeout: WAIT_MS });
    assert.equal(await token(phone), null);
    await expectSignedOut(other, /signed out: you were logged out everywhere/);
  } finally {
    await other.context().close();
    await phone.context().close();
  }
});

test('creating an account where registration is closed says so', async () => {
  const closed = await startBanter({ args: ['--registration', 'closed'] });
  const page = await openPage(browser, closed.url);
  try {
    await page.getByLabel('Choose a nick').fill('gil');
    await page.locator('#password').fill('gil password');
    await page.getByLabel(/Create an account/).check();
    await page.getByLabel(/Invite code/).fill('  c0de  ');
    await page.getByText('Some servers need one').waitFor({ timeout: WAIT_MS });
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.locator('#nick-help').getByText('This server is not taking new accounts.', { exact: false })
      .waitFor({ timeout: WAIT_MS });
    assert.equal(await page.getByLabel(/Invite code/).inputValue(), '  c0de  ', 'the form keeps what was typed');
  } finally {
    await page.context().close();
    await closed.stop();
  }
});
