// Rich messages (issue 24) in the web client, in real headless Chromium
// against a real banter: two pages in one room reply, react, edit, delete
// and paste a three-line message, each seen on the other page; the message
// actions are found by their accessible names, and driven by keyboard
// too. Two raw IRC clients in the room see the same conversation: one
// without capabilities (the three lines as three PRIVMSGs, an edit as
// "* alice edited: …"), one with message-tags and message-redaction (a
// reaction as TAGMSG, a deletion as REDACT).

import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import readline from 'node:readline';
import { after, before, describe, test } from 'node:test';

import {
  TcpClient, WAIT_MS, expectLine, launchBrowser, openPage, say, signIn, startBanter,
} from './harness.mjs';

/** An IRC client on a plain socket: what it is sent, line by line. */
class RawIrc {
  static async connect(addr, nick, caps = []) {
    const i = addr.lastIndexOf(':');
    const socket = net.connect(Number(addr.slice(i + 1)), addr.slice(0, i));
    await once(socket, 'connect');
    const irc = new RawIrc(socket);
    if (caps.length) irc.send(`CAP REQ :${caps.join(' ')}`);
    irc.send(`NICK ${nick}`);
    irc.send(`USER ${nick} 0 * :${nick}`);
    if (caps.length) {
      await irc.waitFor((l) => / CAP \S+ ACK /.test(l));
      irc.send('CAP END');
    }
    await irc.waitFor((l) => / 001 /.test(l));
    return irc;
  }

  constructor(socket) {
    this.socket = socket;
    this.seen = [];
    this.waiters = [];
    readline.createInterface({ input: socket }).on('line', (line) => {
      if (line.startsWith('PING')) this.send(`PONG${line.slice(4)}`);
      this.seen.push(line);
      this.waiters = this.waiters.filter((w) => !w(line));
    });
  }

  send(line) {
    this.socket.write(`${line}\r\n`);
  }

  waitFor(match) {
    const found = this.seen.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`IRC client never got ${match}\nseen:\n${this.seen.join('\n')}`)), WAIT_MS);
      this.waiters.push((line) => {
        if (!match(line)) return false;
        clearTimeout(timer);
        resolve(line);
        return true;
      });
    });
  }

  /** The texts of the PRIVMSGs to `target` seen so far. */
  privmsgs(target) {
    return this.seen
      .map((l) => l.match(new RegExp(`^(?:@\\S+ )?:\\S+ PRIVMSG ${target} :(.*)$`)))
      .filter(Boolean)
      .map((m) => m[1]);
  }

  close() {
    this.socket.destroy();
  }
}

/** The message on `page` whose text has `text`. */
function message(page, text) {
  return page.locator('.msg', { hasText: text }).last();
}

/** Clicks a message's action, the way a mouse user does. */
async function clickAction(page, text, name) {
  const msg = message(page, text);
  await msg.hover();
  await msg.getByRole('button', { name, exact: true }).click();
}

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

describe('rich messages: two pages and two IRC clients in #lobby', () => {
  let server;
  let alice;
  let bob;
  let plain;
  let tagged;
  before(async () => {
    server = await startBanter();
    plain = await RawIrc.connect(server.irc, 'ivan');
    plain.send('JOIN #lobby');
    await plain.waitFor((l) => / 366 /.test(l));
    tagged = await RawIrc.connect(server.irc, 'tina', ['message-tags', 'draft/message-redaction']);
    tagged.send('JOIN #lobby');
    await tagged.waitFor((l) => / 366 /.test(l));
    alice = await openPage(browser, server.url);
    await signIn(alice, 'alice');
    bob = await openPage(browser, server.url);
    await signIn(bob, 'bob');
    await expectLine(alice, 'bob joined');
  });
  after(async () => {
    plain?.close();
    tagged?.close();
    await server?.stop();
  });

  test('reply by keyboard: the quote shows on the other page and leads to the original', async () => {
    await say(bob, 'Who is bringing the cake?');
    await expectLine(alice, 'Who is bringing the cake?');
    // Into the message list, up to the newest message, Tab to its first action.
    await alice.locator('.messages').focus();
    await alice.keyboard.press('ArrowUp');
    assert.equal(await alice.evaluate(() => document.activeElement.textContent.includes('Who is bringing')), true);
    await alice.keyboard.press('Tab');
    assert.equal(await alice.evaluate(() => document.activeElement.textContent), 'Reply');
    await alice.keyboard.press('Enter');
    await alice.locator('.composer').getByText('Replying to bob: Who is bringing the cake?').waitFor({ timeout: WAIT_MS });
    // The composer has the focus: type and send.
    await alice.keyboard.type('I am!');
    await alice.keyboard.press('Enter');
    const answer = message(bob, 'I am!');
    const quote = answer.locator('.quote');
    await quote.waitFor({ timeout: WAIT_MS });
    assert.match(await quote.textContent(), /bob Who is bringing the cake\?/);
    assert.equal(await alice.locator('.composer .draft').count(), 0, 'the reply mode ended');
    // A click on the quote brings the original into view and highlights it.
    await quote.click();
    await bob.locator('.msg.highlight', { hasText: 'Who is bringing' }).waitFor({ timeout: WAIT_MS });
    await plain.waitFor((l) => l.endsWith('PRIVMSG #lobby :I am!'));
    assert.deepEqual(alice.errors, []);
    assert.deepEqual(bob.errors, []);
  });

  test('react: a picker adds one, a click on the bar toggles ours, everyone sees who', async () => {
    await say(bob, 'The cake is chocolate');
    await expectLine(alice, 'The cake is chocolate');
    await clickAction(alice, 'The cake is chocolate', 'React');
    await message(alice, 'The cake is chocolate').getByRole('group', { name: 'Add a reaction' })
      .getByRole('button', { name: '🎉' }).click();
    const bobs = message(bob, 'The cake is chocolate').getByRole('button', { name: '🎉 by alice' });
    await bobs.waitFor({ timeout: WAIT_MS });
    assert.equal(await bobs.getAttribute('aria-pressed'), 'false');
    assert.equal(await bobs.textContent(), '🎉1');
    // Bob joins in with one click; both see two, by alice and bob.
    await bobs.click();
    const both = (page) => message(page, 'The cake is chocolate').getByRole('button', { name: '🎉 by alice, bob' });
    await both(alice).waitFor({ timeout: WAIT_MS });
    assert.equal(await both(bob).getAttribute('aria-pressed'), 'true');
    assert.equal(await both(alice).textContent(), '🎉2');
    assert.equal(await both(alice).getAttribute('title'), '🎉 by alice, bob');
    // An IRC client with message-tags hears it as a TAGMSG.
    await tagged.waitFor((l) => /\+draft\/react=🎉/.test(l) && / TAGMSG #lobby/.test(l) && l.includes(':alice!'));
    // Alice's second click takes hers back.
    await both(alice).click();
    await message(bob, 'The cake is chocolate').getByRole('button', { name: '🎉 by bob' }).waitFor({ timeout: WAIT_MS });
    // Keyboard: the picker opens with Enter, and closes with Escape.
    await message(bob, 'The cake is chocolate').focus();
    await bob.keyboard.press('Tab'); // the reaction
    await bob.keyboard.press('Tab'); // Reply
    await bob.keyboard.press('Tab'); // React
    assert.equal(await bob.evaluate(() => document.activeElement.textContent), 'React');
    await bob.keyboard.press('Enter');
    const picker = message(bob, 'The cake is chocolate').locator('.picker');
    await picker.waitFor({ timeout: WAIT_MS });
    await picker.getByRole('button', { name: '👍' }).focus();
    await bob.keyboard.press('Escape');
    await picker.waitFor({ state: 'detached', timeout: WAIT_MS });
    assert.deepEqual(bob.errors, []);
  });

  test('edit: the composer edits our message, both pages show the new text, edited', async () => {
    await say(alice, 'See you at 5');
    await expectLine(bob, 'See you at 5');
    // Only the author is offered Edit; guests may delete only their own.
    const bobsView = message(bob, 'See you at 5');
    await bobsView.hover();
    assert.equal(await bobsView.getByRole('button', { name: 'Edit', exact: true }).count(), 0);
    assert.equal(await bobsView.getByRole('button', { name: 'Delete', exact: true }).count(), 0);
    await clickAction(alice, 'See you at 5', 'Edit');
    const box = alice.locator('#composer-text');
    assert.equal(await box.inputValue(), 'See you at 5');
    await alice.locator('.composer').getByText('Editing your message').waitFor({ timeout: WAIT_MS });
    await box.fill('See you at 6');
    await box.press('Enter');
    const edited = message(bob, 'See you at 6');
    await edited.locator('.edited').waitFor({ timeout: WAIT_MS });
    assert.match(await edited.textContent(), /\(edited\)/);
    await message(alice, 'See you at 6').locator('.edited').waitFor({ timeout: WAIT_MS });
    assert.equal(await box.inputValue(), '');
    // An IRC client without capabilities is told in a line.
    await plain.waitFor((l) => l.endsWith('PRIVMSG #lobby :* alice edited: See you at 6'));
    // Up-arrow in the empty composer edits the last one; Escape cancels.
    await box.focus();
    await alice.keyboard.press('ArrowUp');
    assert.equal(await box.inputValue(), 'See you at 6');
    await alice.keyboard.press('Escape');
    assert.equal(await box.inputValue(), '');
    assert.equal(await alice.locator('.composer .draft').count(), 0);
  });

  test('delete: asked first, then a tombstone in its place on both pages', async () => {
    await say(alice, 'Oops, wrong room');
    await say(alice, 'after the oops');
    await expectLine(bob, 'after the oops');
    // Cancelling the question deletes nothing.
    await clickAction(alice, 'Oops, wrong room', 'Delete');
    assert.match(alice.dialogs.at(-1), /Delete this message\?/);
    await alice.waitForTimeout(300);
    await expectLine(bob, 'Oops, wrong room');
    alice.answerDialog = '';
    await clickAction(alice, 'Oops, wrong room', 'Delete');
    const gone = bob.locator('.msg .gone');
    await gone.waitFor({ timeout: WAIT_MS });
    assert.equal(await gone.textContent(), 'message deleted');
    assert.equal(await gone.evaluate((el) => getComputedStyle(el).fontStyle), 'italic');
    assert.equal(await bob.locator('.messages').getByText('Oops, wrong room').count(), 0);
    // It keeps its place: just before the message that followed it.
    const order = await bob.locator('.msg').evaluateAll((els) => els.map((e) => e.textContent));
    const at = order.findIndex((t) => t.includes('message deleted'));
    assert.match(order[at + 1], /after the oops/);
    await alice.locator('.msg .gone').waitFor({ timeout: WAIT_MS });
    await tagged.waitFor((l) => / REDACT #lobby /.test(l));
    delete alice.answerDialog;
  });

  test('a pasted three-line message is one message on the page and three lines on IRC', async () => {
    const box = alice.locator('#composer-text');
    await box.focus();
    await alice.keyboard.insertText('first line\nsecond line\nthird line');
    assert.equal(await box.inputValue(), 'first line\nsecond line\nthird line');
    await box.press('Enter');
    const msg = message(bob, 'first line');
    await msg.waitFor({ timeout: WAIT_MS });
    const body = await msg.locator('.body').evaluate((el) => el.innerText);
    assert.equal(body, 'first line\nsecond line\nthird line');
    assert.equal(await bob.locator('.msg', { hasText: 'second line' }).count(), 1);
    // Shift+Enter adds a line rather than sending.
    await box.type('one');
    await box.press('Shift+Enter');
    await box.type('two');
    assert.equal(await box.inputValue(), 'one\ntwo');
    await box.fill('');
    // The IRC client without capabilities: three PRIVMSGs, the same text.
    await plain.waitFor((l) => l.endsWith('PRIVMSG #lobby :third line'));
    const texts = plain.privmsgs('#lobby');
    const i = texts.indexOf('first line');
    assert.deepEqual(texts.slice(i, i + 3), ['first line', 'second line', 'third line']);
  });

  test('typing: "bob is typing…" while he types, gone when he clears the box', async () => {
    const box = bob.locator('#composer-text');
    await box.focus();
    await bob.keyboard.type('hel');
    const typing = alice.locator('.typing');
    await typing.getByText('bob is typing…').waitFor({ timeout: WAIT_MS });
    assert.equal(await typing.getAttribute('aria-live'), 'polite');
    // An IRC client with message-tags hears it too.
    await tagged.waitFor((l) => /\+typing=active/.test(l) && l.includes(':bob!') && / TAGMSG #lobby/.test(l));
    await box.fill('');
    await alice.waitForFunction(() => document.querySelector('.typing').textContent === '', null, { timeout: WAIT_MS });
    // Bob never sees himself typing.
    assert.equal(await bob.locator('.typing').textContent(), '');
  });

  test('on a phone a tap shows the actions and nothing overflows', async () => {
    const phone = await openPage(browser, server.url, { viewport: { width: 390, height: 844 } });
    try {
      await signIn(phone, 'carol');
      await say(alice, 'A long message for the phone screen, with words enough to wrap over several lines there.');
      const msg = message(phone, 'A long message for the phone');
      await msg.waitFor({ timeout: WAIT_MS });
      await msg.click();
      await msg.getByRole('button', { name: 'React', exact: true }).click();
      await msg.getByRole('button', { name: '👍' }).click();
      await message(alice, 'A long message for the phone').getByRole('button', { name: '👍 by carol' }).waitFor({ timeout: WAIT_MS });
      await msg.click();
      await msg.getByRole('button', { name: 'Reply', exact: true }).click();
      await phone.locator('.composer .draft').waitFor({ timeout: WAIT_MS });
      const width = await phone.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 390, `page is ${width}px wide`);
      assert.deepEqual(phone.errors, []);
    } finally {
      await phone.context().close();
    }
  });
});

test("a room's owner deletes anyone's message there", async () => {
  const server = await startBanter();
  const page = await openPage(browser, `${server.url}#den`);
  const bot = await TcpClient.connect(server.tcp, 'spammer');
  try {
    await page.getByLabel('Choose a nick').fill('olga');
    await page.locator('#password').fill('olga-password');
    await page.getByLabel(/Create an account/).check();
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.locator('.members').getByText('owner').waitFor({ timeout: WAIT_MS });
    bot.send({ type: 'join', room: 'den' });
    await bot.waitFor((m) => m.type === 'joined' && m.room === 'den');
    bot.send({ type: 'say', room: 'den', text: 'buy cheap watches' });
    await expectLine(page, 'buy cheap watches');
    page.answerDialog = '';
    const msg = message(page, 'buy cheap watches');
    // Neither Edit (not hers) nor a hover: the keyboard reaches Delete.
    await msg.focus();
    assert.equal(await msg.getByRole('button', { name: 'Edit', exact: true }).count(), 0);
    await msg.getByRole('button', { name: 'Delete', exact: true }).focus();
    await page.keyboard.press('Enter');
    const deleted = await bot.waitFor((m) => m.type === 'deleted');
    assert.equal(deleted.nick, 'olga');
    await page.locator('.msg .gone').waitFor({ timeout: WAIT_MS });
    assert.deepEqual(page.errors, []);
  } finally {
    bot.close();
    await page.context().close();
    await server.stop();
  }
});

test('a quote of a message not loaded yet loads older pages until it is there', async () => {
  // joined brings the last 20 messages; the original is 60 before them.
  const server = await startBanter({ args: ['--history-len', '20', '--message-rate', '0'] });
  const bot = await TcpClient.connect(server.tcp, 'scribe');
  try {
    bot.send({ type: 'join', room: 'lobby' });
    await bot.waitFor((m) => m.type === 'joined');
    bot.send({ type: 'say', room: 'lobby', text: 'the very first plan' });
    const first = await bot.waitFor((m) => m.type === 'message' && m.text === 'the very first plan');
    for (let i = 1; i <= 60; i++) bot.send({ type: 'say', room: 'lobby', text: `filler ${i}` });
    bot.send({ type: 'say', room: 'lobby', text: 'back to the plan', reply_to: first.id });
    await bot.waitFor((m) => m.type === 'message' && m.text === 'back to the plan');
    const page = await openPage(browser, server.url);
    await signIn(page, 'reader');
    const quote = message(page, 'back to the plan').locator('.quote');
    await quote.waitFor({ timeout: WAIT_MS });
    assert.match(await quote.textContent(), /an earlier message/);
    await quote.click();
    const original = page.locator('.msg.highlight', { hasText: 'the very first plan' });
    await original.waitFor({ timeout: WAIT_MS });
    // It has the focus (so it is in view), and the quote now names it.
    assert.equal(await original.evaluate((el) => el === document.activeElement), true);
    assert.match(await quote.textContent(), /scribe the very first plan/);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  } finally {
    bot.close();
    await server.stop();
  }
});
