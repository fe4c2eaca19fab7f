// Accessibility (issue 28), in headless Chromium against a real banter:
// an axe-core audit (WCAG 2.0-2.2 A and AA, and axe's best practices) of
// every view (landing, the sign-in error, chat, the message actions and
// reaction picker, the Mentions, Search, Account and Administration panels, and on a phone each
// drawer open) in light and dark, at 1280x800 and 390x844, failing on any
// serious or critical finding; touch targets of at least 44x44 px on the
// phone layout; a keyboard walk from the top (order, every stop on screen
// with a visible focus indicator, the skip link, Enter sends), and the
// phone drawers (focus taken, trapped, Escape and Close give it back to
// the toggle, a closed drawer out of Tab's reach). Screenshots of every
// state go to target/e2e-a11y/ (BANTER_A11Y_OUT to change it), with
// axe-findings.json listing what axe found at every level.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';

import {
  TcpClient, WAIT_MS, expectLine, launchBrowser, openPage, say, startBanter,
} from './harness.mjs';

const require = createRequire(import.meta.url);
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const OUT = process.env.BANTER_A11Y_OUT
  || path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../target/e2e-a11y');
fs.mkdirSync(OUT, { recursive: true });

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const findings = [];

let browser;
let server;
let bot;
before(async () => {
  browser = await launchBrowser();
  // The audit's accounts administer the server: the Administration panel is audited too.
  const admins = ['ldesktop', 'lphone', 'ddesktop', 'dphone'].flatMap((n) => ['--server-admin', n]);
  server = await startBanter({ args: ['--message-rate', '0', ...admins] });
  bot = await TcpClient.connect(server.tcp, 'a-very-long-nick-name-xy');
});
after(async () => {
  fs.writeFileSync(path.join(OUT, 'axe-findings.json'), JSON.stringify(findings, null, 2));
  bot?.close();
  await browser?.close();
  await server?.stop();
});

/** Runs axe in the page; records every finding; fails on serious or critical ones. */
async function audit(page, name) {
  await page.waitForTimeout(250); // drawers slide for 0.2 s
  await page.screenshot({ path: path.join(OUT, `${name}.png`) });
  // Evaluated through the devtools protocol: the page's CSP allows no inline script.
  if (!(await page.evaluate(() => !!window.axe))) await page.evaluate(`${AXE};0`);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
      // Experimental in axe, so off unless named: a control's name holds its visible text (2.5.3).
      rules: { 'label-content-name-mismatch': { enabled: true } },
      resultTypes: ['violations'],
    });
    return result.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary.replace(/\s+/g, ' ')}`),
    }));
  });
  findings.push({ view: name, violations });
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `${name}: serious or critical axe findings`);
}

/** Controls under 44x44 px on screen (inline links in text are exempt). */
async function smallTargets(page, within) {
  return page.evaluate((within) => {
    const small = [];
    for (const el of document.querySelectorAll(`${within} :is(a[href], button, input, select, textarea, summary)`)) {
      if (!el.checkVisibility() || el.closest('.messages .body, .topic, .hit')) continue;
      if (el.type === 'checkbox' && el.closest('label')) continue;
      const r = el.getBoundingClientRect();
      if (r.width < 44 || r.height < 44) {
        small.push(`${el.tagName.toLowerCase()}.${el.className} "${(el.textContent || el.getAttribute('aria-label') || '').trim()}" ${Math.round(r.width)}x${Math.round(r.height)}`);
      }
    }
    return small;
  }, within);
}

async function signInWithAccount(page, nick) {
  await page.getByLabel('Choose a nick').fill(nick);
  await page.getByLabel(/^Password/).fill('correct horse battery');
  await page.getByLabel('Create an account with this nick and password').check();
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.locator('.status.online').waitFor({ timeout: WAIT_MS });
}

async function openDrawer(page, toggle) {
  await page.locator(toggle).click();
  await page.waitForTimeout(250);
}

for (const scheme of ['light', 'dark']) {
  for (const [size, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    const phone = size === 'phone';
    test(`axe audit of every view: ${scheme}, ${size} (${viewport.width}x${viewport.height})`, async () => {
      const page = await openPage(browser, server.url, { viewport, colorScheme: scheme });
      const tag = `${scheme}-${size}`;
      const nick = `${scheme[0]}${size}`;
      const room = `room-${tag}`;
      try {
        await page.getByLabel('Choose a nick').waitFor({ timeout: WAIT_MS });
        await audit(page, `${tag}-01-landing`);

        // The error sits under the nick field and names every bad character.
        await page.getByLabel('Choose a nick').fill('bad nick!?');
        await page.getByRole('button', { name: 'Start chatting' }).click();
        const help = page.locator('#nick-help.error');
        await help.getByText(`' ' '!' '?'`, { exact: false }).waitFor({ timeout: WAIT_MS });
        const [input, error] = await Promise.all([page.locator('#nick'), help].map((l) => l.boundingBox()));
        assert.ok(error.y - (input.y + input.height) < 30, 'the error is right under the nick field');
        await audit(page, `${tag}-02-signin-error`);

        await signInWithAccount(page, nick);
        // Our own room (we own it: Edit topic shows), with a topic, a bot
        // with a long nick, messages and a mention.
        await page.locator('#composer-text').fill(`/join ${room}`);
        await page.locator('#composer-text').press('Enter');
        await page.locator('h1.title').getByText(`#${room}`).waitFor({ timeout: WAIT_MS });
        page.answerDialog = 'House rules and the FAQ: https://example.org/rules. Be kind, stay on topic, and ask the operators when in doubt.';
        if (phone) assert.deepEqual(await smallTargets(page, '.topbar'), [], 'touch targets in the top bar');
        await page.getByRole('button', { name: 'Edit topic' }).click();
        await page.locator('.topic a[href="https://example.org/rules"]').waitFor({ timeout: WAIT_MS });
        bot.send({ type: 'join', room });
        await bot.waitFor((m) => m.type === 'joined' && m.room === room);
        bot.send({ type: 'say', room, text: `hello ${nick}, welcome to the room` });
        bot.send({ type: 'say', room, text: 'a second line with a link: https://example.org/' });
        await say(page, 'thanks, and here is mine');
        await expectLine(page, 'thanks, and here is mine');
        await page.locator('.member .nick', { hasText: 'a-very-long-nick-name-xy' }).waitFor({ state: 'attached', timeout: WAIT_MS });
        // The topic wraps (more than one line), never cut.
        const topic = await page.locator('.topic').evaluate((el) => [el.scrollWidth <= el.clientWidth, el.getBoundingClientRect().height]);
        assert.ok(topic[0], 'the topic is not cut');
        // The composer's placeholder is one line.
        const box = await page.locator('#composer-text').evaluate((el) => el.getBoundingClientRect().height);
        assert.ok(box <= 48, `the empty composer is one line (${box}px)`);
        await audit(page, `${tag}-03-chat`);
        if (phone) {
          assert.deepEqual(await smallTargets(page, ':is(.topbar, .composer)'), [], 'touch targets: top bar and composer');
        }

        // Message actions and the reaction picker.
        const msg = page.locator('.msg', { hasText: 'welcome to the room' });
        await msg.click();
        await msg.getByRole('button', { name: 'React', exact: true }).click();
        await msg.locator('.picker').waitFor({ timeout: WAIT_MS });
        await audit(page, `${tag}-04-message-actions`);
        if (phone) assert.deepEqual(await smallTargets(page, '.msg'), [], 'touch targets: message actions');
        await page.keyboard.press('Escape');

        if (phone) {
          await openDrawer(page, '#rooms-toggle');
          await audit(page, `${tag}-05-rooms-drawer`);
          assert.deepEqual(await smallTargets(page, '.sidebar'), [], 'touch targets: rooms drawer');
          await page.keyboard.press('Escape');
          await openDrawer(page, '#members-toggle');
          await audit(page, `${tag}-06-members-drawer`);
          assert.deepEqual(await smallTargets(page, '.members'), [], 'touch targets: members drawer');
          await page.keyboard.press('Escape');
          await openDrawer(page, '#rooms-toggle');
        }
        await page.getByRole('button', { name: 'Mentions' }).click();
        await page.locator('.attention').first().waitFor({ timeout: WAIT_MS });
        await audit(page, `${tag}-07-mentions`);
        if (phone) await openDrawer(page, '#rooms-toggle');
        await page.getByRole('button', { name: 'Search' }).click();
        const query = page.getByLabel('Search your rooms and conversations');
        await query.fill('welcome');
        await query.press('Enter');
        await page.locator('.hits .hit').first().waitFor({ timeout: WAIT_MS });
        await audit(page, `${tag}-08-search`);

        // The Account panel, and the Administration panel (the account administers the server).
        if (phone) await openDrawer(page, '#rooms-toggle');
        await page.getByRole('button', { name: 'Account', exact: true }).click();
        await page.getByRole('heading', { name: 'Your account' }).waitFor({ timeout: WAIT_MS });
        await audit(page, `${tag}-09-account`);
        if (phone) assert.deepEqual(await smallTargets(page, '.account'), [], 'touch targets: Account panel');
        if (phone) await openDrawer(page, '#rooms-toggle');
        await page.getByRole('button', { name: 'Administration' }).click();
        await page.getByRole('heading', { name: 'Server administration' }).waitFor({ timeout: WAIT_MS });
        await page.getByRole('region', { name: 'Rooms', exact: true })
          .getByRole('button', { name: `#${room}`, exact: true }).click();
        await page.getByRole('region', { name: `People in #${room}` }).getByText('a-very-long-nick-name-xy').waitFor({ timeout: WAIT_MS });
        await audit(page, `${tag}-10-administration`);
        if (phone) assert.deepEqual(await smallTargets(page, '.admin'), [], 'touch targets: Administration panel');
        assert.deepEqual(page.errors, []);
      } finally {
        await page.context().close();
      }
    });
  }
}

/** Reloads the page (the session stays): the next Tab starts at the top. */
async function fromTheTop(page) {
  await page.reload();
  await page.locator('.status.online').waitFor({ timeout: WAIT_MS });
}

/** What has the focus: its tag, id, class, name; whether it is on screen and shows focus. */
function focused(page) {
  return page.evaluate(() => {
    const textOf = (el) => {
      const copy = el.cloneNode(true);
      copy.querySelectorAll('[aria-hidden="true"]').forEach((h) => h.remove());
      return copy.textContent || '';
    };
    const el = document.activeElement;
    if (!el || el === document.body) return { tag: 'body' };
    const r = el.getBoundingClientRect();
    const s = getComputedStyle(el);
    const ring = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2) || s.boxShadow !== 'none';
    return {
      tag: el.tagName.toLowerCase(),
      id: el.id,
      cls: String(el.className),
      text: (el.getAttribute('aria-label') || textOf(el)).trim().replace(/\s+/g, ' '),
      inDrawer: el.closest('.sidebar') ? 'rooms' : el.closest('.members') ? 'members' : '',
      onScreen: r.width > 0 && r.height > 0 && r.left >= 0 && r.top >= 0 && r.right <= innerWidth && r.bottom <= innerHeight,
      ring,
    };
  });
}

test('keyboard, desktop: Tab from the top in a sensible order, every stop visible; Enter sends', async () => {
  const page = await openPage(browser, server.url);
  try {
    await signInWithAccount(page, 'keys');
    await page.locator('h1.title').getByText('#lobby').waitFor({ timeout: WAIT_MS });
    await page.locator('#join-room').fill('second');
    await page.locator('#join-room').press('Enter');
    await page.locator('h1.title').getByText('#second').waitFor({ timeout: WAIT_MS });
    await fromTheTop(page);
    const stops = [];
    for (let i = 0; i < 30; i++) {
      await page.keyboard.press('Tab');
      const f = await focused(page);
      if (f.tag === 'body') break;
      assert.ok(f.onScreen, `stop ${i + 1} is on screen: ${JSON.stringify(f)}`);
      assert.ok(f.ring, `stop ${i + 1} shows the focus: ${JSON.stringify(f)}`);
      stops.push(f.id || `${f.tag}:${f.text}`);
      if (f.id === 'composer-text') break;
    }
    fs.writeFileSync(path.join(OUT, 'keyboard-desktop-order.json'), JSON.stringify(stops, null, 2));
    assert.equal(stops[0], 'a:Skip to the message box', stops.join(' | '));
    assert.equal(stops[1], 'join-room', stops.join(' | '));
    const at = (s) => stops.indexOf(s);
    // Every room's Leave is a stop of its own, before the header and the messages.
    assert.ok(at('button:Leave #lobby') > 0 && at('button:Leave #second') > at('button:Leave #lobby'), stops.join(' | '));
    assert.ok(at('button:Sign out') > at('button:Leave #second'), stops.join(' | '));
    assert.ok(at('button:Edit topic') > at('button:Sign out'), 'the header comes after the room list');
    assert.ok(at('composer-text') > at('button:Edit topic'), stops.join(' | '));

    // The skip link goes straight to the composer; Enter sends.
    await fromTheTop(page);
    await page.keyboard.press('Tab');
    await page.screenshot({ path: path.join(OUT, 'keyboard-desktop-skip-link.png') });
    await page.keyboard.press('Enter');
    assert.equal((await focused(page)).id, 'composer-text');
    await page.keyboard.type('sent with the keyboard');
    await page.keyboard.press('Enter');
    await expectLine(page, 'sent with the keyboard');
    assert.equal(await page.locator('#composer-text').inputValue(), '');
    assert.deepEqual(page.errors, []);
  } finally {
    await page.context().close();
  }
});

test('keyboard, phone: drawers take the focus, trap it, close with Escape or Close back on the toggle', async () => {
  const page = await openPage(browser, server.url, { viewport: PHONE });
  try {
    await signInWithAccount(page, 'thumbs');
    await page.locator('h1.title').getByText('#lobby').waitFor({ timeout: WAIT_MS });
    await page.locator('#composer-text').fill('/join other');
    await page.locator('#composer-text').press('Enter');
    await page.locator('h1.title').getByText('#other').waitFor({ timeout: WAIT_MS });
    // An unread message elsewhere shows on the rooms button.
    bot.send({ type: 'join', room: 'lobby' });
    await bot.waitFor((m) => m.type === 'joined' && m.room === 'lobby');
    bot.send({ type: 'say', room: 'lobby', text: 'something new in the lobby' });
    await page.locator('#rooms-toggle .badge').getByText('1').waitFor({ timeout: WAIT_MS });
    assert.match(await page.locator('#rooms-toggle').getAttribute('aria-label'), /1 unread/);

    // Drawers closed: Tab never lands in them (no hidden Leave buttons).
    await fromTheTop(page);
    const stops = [];
    for (let i = 0; i < 20; i++) {
      await page.keyboard.press('Tab');
      const f = await focused(page);
      if (f.tag === 'body' || f.id === 'composer-text') break;
      assert.equal(f.inDrawer, '', `a closed drawer holds no stop: ${JSON.stringify(f)}`);
      assert.ok(f.onScreen && f.ring, `stop ${i + 1} visible: ${JSON.stringify(f)}`);
      stops.push(f.id || `${f.tag}:${f.text}`);
    }
    assert.equal(stops[0], 'a:Skip to the message box', stops.join(' | '));
    assert.equal(stops[1], 'rooms-toggle', stops.join(' | '));
    // The header in the order the eye reads it: the first row (both
    // toggles), then the title's row (Edit topic, the level picker).
    fs.writeFileSync(path.join(OUT, 'keyboard-phone-order.json'), JSON.stringify(stops, null, 2));
    assert.equal(stops[2], 'members-toggle', stops.join(' | '));
    const edit = stops.indexOf('button:Edit topic');
    const level = stops.findIndex((s) => s.startsWith('select'));
    assert.ok(edit > 2 && level > edit, stops.join(' | '));

    for (const [toggle, drawer] of [['rooms-toggle', 'rooms'], ['members-toggle', 'members']]) {
      await page.locator(`#${toggle}`).focus();
      await page.keyboard.press('Enter');
      await page.waitForTimeout(250);
      assert.equal((await focused(page)).id, `${drawer}-close`, 'the open drawer has the focus');
      await page.screenshot({ path: path.join(OUT, `keyboard-phone-${drawer}-drawer.png`) });
      for (let i = 0; i < 25; i++) {
        await page.keyboard.press('Tab');
        const f = await focused(page);
        assert.equal(f.inDrawer, drawer, `Tab stays in the drawer: ${JSON.stringify(f)}`);
        assert.ok(f.onScreen && f.ring, `drawer stop visible: ${JSON.stringify(f)}`);
      }
      await page.locator(`#${drawer}-close`).focus();
      await page.keyboard.press('Shift+Tab');
      assert.equal((await focused(page)).inDrawer, drawer, 'Shift+Tab from the first stop wraps to the last');
      await page.keyboard.press('Escape');
      await page.waitForTimeout(250);
      assert.equal((await focused(page)).id, toggle, 'Escape gives the focus back to the toggle');
      assert.equal(await page.locator(`#${toggle}`).getAttribute('aria-expanded'), 'false');
      // The Close button does the same.
      await page.keyboard.press('Enter');
      await page.waitForTimeout(250);
      await page.keyboard.press('Enter');
      await page.waitForTimeout(250);
      assert.equal((await focused(page)).id, toggle, 'Close gives the focus back to the toggle');
    }

    // Choosing a room closes the drawer and keeps the focus on its toggle.
    await page.locator('#rooms-toggle').focus();
    await page.keyboard.press('Enter');
    await page.waitForTimeout(250);
    await page.locator('.sidebar').getByRole('link', { name: /lobby/ }).focus();
    await page.keyboard.press('Enter');
    await page.locator('h1.title').getByText('#lobby').waitFor({ timeout: WAIT_MS });
    await page.waitForTimeout(250);
    assert.equal((await focused(page)).id, 'rooms-toggle');
    await page.locator('#rooms-toggle .badge').waitFor({ state: 'detached', timeout: WAIT_MS });
    assert.deepEqual(page.errors, []);
  } finally {
    await page.context().close();
  }
});
