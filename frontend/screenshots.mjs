// Screenshots of the web client for a person to look at: a room with a
// conversation, at 1280×800 and 390×844 (with the room drawer open too),
// light and dark. Writes PNGs to the folder given (default
// /tmp/banter-shots). Run after building banter:
//   node frontend/screenshots.mjs [DIR]
import fs from 'node:fs';
import path from 'node:path';
import { startBanter, TcpClient, launchBrowser, openPage, signIn, say, expectLine } from './e2e/harness.mjs';

const dir = process.argv[2] || '/tmp/banter-shots';
fs.mkdirSync(dir, { recursive: true });
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
