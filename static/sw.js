// Banter's service worker: shows a Web Push message as a notification
// (the browser has decrypted the server's payload: {room, with, from, id,
// text}) and, on a click, brings a Banter page to that conversation. It
// caches nothing and handles no fetch: the page needs its server anyway.
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));

self.addEventListener('push', (e) => {
  let d = {};
  try { d = e.data.json(); } catch (_) { /* not ours: a bare notice */ }
  const title = d.from ? (d.room ? `${d.from} in #${d.room}` : d.from) : 'Banter';
  e.waitUntil(self.registration.showNotification(title, {
    body: d.text || 'New message',
    tag: d.room ? `#${d.room}` : `@${d.with || ''}`,
    icon: 'icon-192.png',
    data: d,
  }));
});

self.addEventListener('notificationclick', (e) => {
  e.notification.close();
  const d = e.notification.data || {};
  const place = d.room || (d.with ? `@${d.with}` : '');
  e.waitUntil(self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((pages) => {
    const page = pages[0];
    if (page) {
      page.postMessage(d);
      return page.focus();
    }
    return self.clients.openWindow(`./#${encodeURIComponent(place)}`);
  }));
});
