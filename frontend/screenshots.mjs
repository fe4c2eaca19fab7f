// Screenshots of the web client for a person to look at: a room with a
// conversation, at 1280×800 and 390×844 (with the room drawer open too),
// light and dark. Writes PNGs to the folder given (default
// /tmp/banter-shots). Run after building banter:
//   node frontend/screenshots.mjs [DIR]
// With --rich, a conversation with rich messages instead (issue 24): a
// reply, reactions, a three-line message, an edited and a deleted message,
// someone typing, and one message's actions shown; the four devices are
// one account (alice), named rich-messages-{desktop,phone}-{light,dark}.png
// (emoji need a colour emoji font: Debian's fonts-noto-color-emoji):
//   node frontend/screenshots.mjs --rich docs/images
// With --attention, the Mentions panel (with a room's mention count) and
// search results (issue 25), desktop and phone, light:
// attention-{mentions,search}-{desktop,phone}.png:
//   node frontend/screenshots.mjs --attention docs/images
import fs from 'node:fs';
import path from 'node:path';
import { startBanter, TcpClient, launchBrowser, openPage, signIn, say, expectLine } from './e2e/harness.mjs';

const args = process.argv.slice(2);
const dir = args.find((a) => !a.startsWith('--')) || '/tmp/banter-shots';
fs.mkdirSync(dir, { recursive: true });
if (args.includes('--rich')) {
  await richMessages();
  process.exit(0);
}
if (args.includes('--attention')) {
  await attention();
  process.exit(0);
}
const banter = await startBanter();
const browser = await launchBrowser();
try {
  const bob = await TcpClient.connect(banter.tcp, 'bob');
  bob.send({ type: 'join', room: 'lobby' });
  const pages = [];
  for (const [name, viewport] of [['desktop', { width: 1280, height: 800 }], ['phone', { width: 390, height: 844 }]]) {
    for (const colorScheme of ['light', 'dark']) {
      const page = await openPage(browser, banter.url, { viewport, colorScheme });
      pages.push([`${name}-${colorScheme}`, page]);
    }
  }
  let n = 0;
  for (const [, page] of pages) await signIn(page, `alice${n++}`);
  await say(pages[0][1], 'Good morning! Has anyone tried the new build? https://example.com/notes');
  bob.send({ type: 'say', room: 'lobby', text: 'Yes — it reconnects by itself now.' });
  bob.send({ type: 'say', room: 'lobby', text: 'And long lines wrap nicely, even on a phone screen where there is not much room for words.' });
  bob.send({ type: 'say', room: 'lobby', text: '/me waves' });
  await say(pages[1][1], '<b>not bold</b> and **not markdown** either');
  for (const [name, page] of pages) {
    await expectLine(page, 'not bold');
    await page.screenshot({ path: path.join(dir, `${name}.png`) });
  }
  for (const [name, page] of pages.filter(([n]) => n.startsWith('phone'))) {
    const toggle = page.getByRole('button', { name: /rooms/i }).first();
    if (await toggle.count()) {
      await toggle.click();
      await page.waitForTimeout(300);
      await page.screenshot({ path: path.join(dir, `${name}-rooms.png`) });
    }
  }
  bob.close();
  console.log(`screenshots in ${dir}`);
} finally {
  await browser.close();
  await banter.stop();
}

/** The four screenshots of rich messages (`--rich`). */
async function richMessages() {
  const banter = await startBanter({ args: ['--message-rate', '0'] });
  const browser = await launchBrowser();
  try {
    const bots = {};
    for (const nick of ['bob', 'carol']) {
      bots[nick] = await TcpClient.connect(banter.tcp, nick);
      bots[nick].send({ type: 'join', room: 'lobby' });
      await bots[nick].waitFor((m) => m.type === 'joined');
    }
    const { bob, carol } = bots;
    // What a bot says, and the id it got.
    const speak = async (bot, text, extra = {}) => {
      bot.send({ type: 'say', room: 'lobby', text, ...extra });
      return (await bot.waitFor((m) => m.type === 'message' && m.text === text)).id;
    };
    const pages = [];
    for (const [name, viewport] of [['desktop', { width: 1280, height: 800 }], ['phone', { width: 390, height: 844 }]]) {
      for (const colorScheme of ['light', 'dark']) {
        const page = await openPage(browser, banter.url, { viewport, colorScheme });
        await page.getByLabel('Choose a nick').fill('alice');
        await page.locator('#password').fill('correct horse battery');
        if (!pages.length) await page.getByLabel(/Create an account/).check();
        await page.getByRole('button', { name: pages.length ? 'Log in' : 'Create account' }).click();
        await page.locator('.status.online').waitFor({ timeout: 15_000 });
        pages.push([`${name}-${colorScheme}`, page]);
      }
    }
    const alice = pages[0][1];
    const release = await speak(bob, 'Morning! Release candidate 2 is up: https://example.com/rc2');
    await speak(carol, 'Downloading it now');
    // Alice answers bob from the page: Reply, then React.
    const rc = alice.locator('.msg', { hasText: 'Release candidate 2' }).first();
    await rc.hover();
    await rc.getByRole('button', { name: 'Reply', exact: true }).click();
    await say(alice, 'Does it fix the reconnect bug?');
    const question = (await bob.waitFor((m) => m.type === 'message' && m.text.startsWith('Does it fix'))).id;
    await rc.hover();
    await rc.getByRole('button', { name: 'React', exact: true }).click();
    await rc.getByRole('button', { name: '🎉' }).click();
    carol.send({ type: 'react', room: 'lobby', id: release, reaction: '🎉' });
    carol.send({ type: 'react', room: 'lobby', id: release, reaction: '👀' });
    await speak(bob, 'Yes, and the phone layout too.', { reply_to: question });
    bob.send({ type: 'react', room: 'lobby', id: question, reaction: '👍' });
    await speak(carol, 'What I tried:\n- desktop, light and dark\n- a phone\n- IRC with draft/multiline');
    const oops = await speak(carol, 'oops, that was for #ops');
    carol.send({ type: 'delete', room: 'lobby', id: oops });
    // Alice says something, then edits it from the composer.
    await say(alice, 'Demo at 3pm?');
    const demo = alice.locator('.msg', { hasText: 'Demo at 3pm?' });
    await demo.hover();
    await demo.getByRole('button', { name: 'Edit', exact: true }).click();
    await alice.locator('#composer-text').fill('Demo at 4pm?');
    await alice.locator('#composer-text').press('Enter');
    for (const [, page] of pages) {
      await expectLine(page, 'Demo at 4pm?');
      await page.locator('.msg .gone').waitFor({ timeout: 15_000 });
      await page.locator('.msg .edited').waitFor({ timeout: 15_000 });
    }
    // Bob starts typing: shown under the list for a few seconds.
    bob.send({ type: 'typing', room: 'lobby', state: 'active' });
    for (const [name, page] of pages) {
      await page.locator('.typing').getByText('bob is typing…').waitFor({ timeout: 15_000 });
      // One message shows its actions (as on hover or focus); the mouse
      // rests out of the way.
      await page.mouse.move(0, 0);
      await page.locator('.msg', { hasText: 'Does it fix' }).first().focus();
      await page.screenshot({ path: path.join(dir, `rich-messages-${name}.png`) });
    }
    for (const bot of Object.values(bots)) bot.close();
    console.log(`screenshots in ${dir}`);
  } finally {
    await browser.close();
    await banter.stop();
  }
}

/** The Mentions panel and search results (`--attention`). */
async function attention() {
  const banter = await startBanter({ args: ['--message-rate', '0'] });
  const browser = await launchBrowser();
  try {
    const bob = await TcpClient.connect(banter.tcp, 'bob');
    for (const room of ['lobby', 'ops']) {
      bob.send({ type: 'join', room });
      await bob.waitFor((m) => m.type === 'joined' && m.room === room);
    }
    const pages = [];
    for (const [name, viewport] of [['desktop', { width: 1280, height: 800 }], ['phone', { width: 390, height: 844 }]]) {
      const page = await openPage(browser, banter.url, { viewport, colorScheme: 'light' });
      await page.getByLabel('Choose a nick').fill('alice');
      await page.locator('#password').fill('correct horse battery');
      if (!pages.length) await page.getByLabel(/Create an account/).check();
      await page.getByRole('button', { name: pages.length ? 'Log in' : 'Create account' }).click();
      await page.locator('.status.online').waitFor({ timeout: 15_000 });
      if (!pages.length) {
        await page.getByLabel('Join or create a room').fill('ops');
        await page.getByRole('button', { name: 'Join', exact: true }).click();
        await page.getByRole('heading', { name: '#ops' }).waitFor({ timeout: 15_000 });
        await page.locator('.sidebar').getByRole('link', { name: /lobby/ }).click();
      }
      pages.push([name, page]);
    }
    for (const text of ['The deploy plan for Friday is in the wiki', 'alice: can you review the plan?', 'Rollback steps are in the plan too']) {
      bob.send({ type: 'say', room: 'ops', text });
    }
    bob.send({ type: 'say', room: 'lobby', text: 'Lunch at noon, alice?' });
    await bob.waitFor((m) => m.type === 'message' && m.text.startsWith('Lunch'));
    for (const [name, page] of pages) {
      if (name === 'phone') await page.getByRole('button', { name: 'Rooms and conversations' }).click();
      await page.getByRole('button', { name: 'Mentions' }).click();
      await page.locator('.hits .hit').nth(1).waitFor({ timeout: 15_000 });
      await page.mouse.move(0, 0);
      await page.screenshot({ path: path.join(dir, `attention-mentions-${name}.png`) });
      if (name === 'phone') await page.getByRole('button', { name: 'Rooms and conversations' }).click();
      await page.getByRole('button', { name: 'Search' }).click();
      await page.getByLabel('Search your rooms and conversations').fill('plan from:bob');
      await page.getByLabel('Search your rooms and conversations').press('Enter');
      await page.locator('.hits .hit').nth(2).waitFor({ timeout: 15_000 });
      await page.mouse.move(0, 0);
      await page.screenshot({ path: path.join(dir, `attention-search-${name}.png`) });
    }
    bob.close();
    console.log(`screenshots in ${dir}`);
  } finally {
    await browser.close();
    await banter.stop();
  }
}
