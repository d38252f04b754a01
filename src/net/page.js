// dshare's live page: new messages through the /log long-poll, peer states from
// /peers, and sends from the form without a reload. The page works without it.
// Message data only ever reaches the page through textContent, never as markup.
'use strict';

(function () {
  const list = document.getElementById('messages');
  const form = document.querySelector('form[action="/send"]');
  if (!list || !form) return;
  const scroller = document.getElementById('scroll');
  const peerList = document.getElementById('peers');
  const errorLine = document.getElementById('error');
  const text = form.elements.namedItem('msg');
  const button = form.querySelector('button');
  const me = document.body.dataset.me;
  const tokenField = form.elements.namedItem('token');
  const token = tokenField ? tokenField.value : null;
  const formKey = form.elements.namedItem('form_key').value;

  // The most messages kept on the page, so one left open for days stays small.
  const KEPT = 500;
  // How long the node may hold one long-poll, in seconds (it caps this at 30).
  const WAIT = 25;
  const PEERS_EVERY_MS = 5000;

  let next = Number(list.dataset.next) || 0;
  const shown = new Set(Array.from(list.querySelectorAll('li[data-id]'), (li) => li.dataset.id));

  // With the token in the page's address (the first visit), the script sends it as
  // a header, which works even where cookies are refused; otherwise the cookie does.
  function headers(extra) {
    const h = Object.assign({}, extra);
    if (token) h.Authorization = 'Bearer ' + token;
    return h;
  }

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  function when(ms) {
    const d = new Date(ms);
    const now = new Date();
    const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    if (d.toDateString() === now.toDateString()) return time;
    const day = d.toLocaleDateString([], {
      day: 'numeric',
      month: 'short',
      year: d.getFullYear() === now.getFullYear() ? undefined : 'numeric',
    });
    return day + ', ' + time;
  }

  function row(m) {
    const li = document.createElement('li');
    li.dataset.id = m.id;
    const mine = m.author === me;
    if (mine) li.className = 'mine';
    const meta = document.createElement('div');
    meta.className = 'meta';
    const who = document.createElement('span');
    who.className = 'author';
    who.title = m.author;
    who.textContent = mine ? 'you' : String(m.author).slice(0, 8);
    const time = document.createElement('time');
    time.dateTime = new Date(m.ts).toISOString();
    time.title = time.dateTime;
    time.textContent = when(m.ts);
    meta.append(who, ' · ', time, ' · #' + m.seq);
    const body = document.createElement('pre');
    body.textContent = m.body;
    li.append(meta, body);
    return li;
  }

  function atBottom() {
    // In a column-reverse scroller the end is at scrollTop 0 (negative above it).
    return Math.abs(scroller.scrollTop) < 40;
  }

  function add(m) {
    if (shown.has(m.id)) return;
    const follow = atBottom() || m.author === me;
    shown.add(m.id);
    const empty = list.querySelector('li.empty');
    if (empty) empty.remove();
    list.append(row(m));
    while (list.children.length > KEPT) {
      shown.delete(list.firstElementChild.dataset.id);
      list.firstElementChild.remove();
    }
    if (follow) scroller.scrollTop = 0;
  }

  function showError(message) {
    errorLine.textContent = message;
    errorLine.hidden = !message;
  }

  async function follow() {
    let pause = 0;
    for (;;) {
      if (pause) await sleep(pause);
      const asked = Date.now();
      try {
        const r = await fetch('/log?since=' + next + '&wait=' + WAIT, {
          headers: headers(),
          cache: 'no-store',
        });
        if (!r.ok) throw new Error('HTTP ' + r.status);
        const answer = await r.text();
        for (const line of answer.split('\n')) if (line) add(JSON.parse(line));
        const after = Number(r.headers.get('X-Dshare-Next'));
        if (Number.isSafeInteger(after) && after >= next) next = after;
        // Nothing, at once: the node had no long-poll slot free. Ask again later.
        pause = !answer && Date.now() - asked < 1000 ? 2000 : 0;
        document.body.classList.remove('offline');
      } catch (e) {
        pause = Math.min(Math.max(pause * 2, 1000), 15000);
        document.body.classList.add('offline');
      }
    }
  }

  function peerItem(p) {
    const li = document.createElement('li');
    li.className = p.state;
    li.title = p.url + ' · ' + p.state;
    li.textContent = p.id ? String(p.id).slice(0, 8) : p.url;
    return li;
  }

  async function watchPeers() {
    for (;;) {
      try {
        const r = await fetch('/peers', { headers: headers(), cache: 'no-store' });
        if (r.ok) {
          const peers = (await r.json()).peers || [];
          const items = peers.map(peerItem);
          if (!items.length) {
            const none = document.createElement('li');
            none.className = 'none';
            none.textContent = 'no peers';
            items.push(none);
          }
          peerList.replaceChildren(...items);
        }
      } catch (e) {
        // The long-poll shows the node is unreachable; the list stays as it was.
      }
      await sleep(PEERS_EVERY_MS);
    }
  }

  // A POST carries any length of text; the cookie counts for it only with the form
  // key in a header, which no other site's form or script can add.
  async function send(event) {
    event.preventDefault();
    const body = text.value;
    if (!body) return;
    button.disabled = true;
    showError('');
    try {
      const r = await fetch('/send?format=json', {
        method: 'POST',
        headers: headers({ 'Content-Type': 'text/plain; charset=utf-8', 'X-Dshare-Form-Key': formKey }),
        body: body,
        cache: 'no-store',
      });
      const answer = await r.text();
      if (!r.ok) throw new Error(answer.trim() || 'HTTP ' + r.status);
      add(JSON.parse(answer));
      if (text.value === body) text.value = '';
    } catch (e) {
      // The text stays in the box, to send again.
      showError('Not sent: ' + (e instanceof TypeError ? 'the node does not answer' : e.message));
    } finally {
      button.disabled = false;
      text.focus();
    }
  }

  // The token has done its work once the cookie holds it: take it out of the
  // address bar and this history entry.
  async function forgetTokenInAddress() {
    if (!new URLSearchParams(location.search).has('token')) return;
    try {
      const r = await fetch('/status', { cache: 'no-store' });
      if (r.ok) history.replaceState(null, '', '/' + location.hash);
    } catch (e) {
      // Cookies refused or the node gone: keep the address that works.
    }
  }

  for (const t of list.querySelectorAll('time[data-ts]')) {
    t.title = t.dateTime;
    t.textContent = when(Number(t.dataset.ts));
  }
  form.addEventListener('submit', send);
  text.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) form.requestSubmit();
  });
  text.placeholder = 'Message (Ctrl+Enter sends)';
  scroller.scrollTop = 0;
  forgetTokenInAddress();
  follow();
  watchPeers();
})();
