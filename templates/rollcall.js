// rollcall's page: keeps the user list live over a WebSocket.
// Plain JS, no dependencies. Names only ever go through textContent and
// dataset, never innerHTML, so no name can inject markup.
//
// The rows are in two lists, online users first, each by name; a row moves
// between them as its user's status changes. The count above them, the
// search box and the live announcements (batched, at most one every 2 s)
// are kept here too.
//
// Every event and snapshot row carries the user's transition number (seq):
// a row only ever moves to a newer state, so an event that arrives late (the
// cloud posts from several functions) never undoes a newer one.
//
// At any size: the page holds every online user (the snapshot keeps that
// group complete) and the offline users by name up to a cursor
// (data-after of #more: '' once everyone is loaded); the next page comes
// from GET /api/users?after= when the "Show more users" button scrolls into
// view or is pressed. The search box filters the rows held as one types and
// asks the server (debounced, ?q=PREFIX) for matching names not loaded yet.
// The count's M is the server's (data-total, and each local snapshot's
// `total`), plus the sign-ups announced since.
//
// An offline user seen before shows "last seen 5 min ago" (data-ago, drawn
// by the stylesheet after the row's text, so the text stays exactly
// "NAME: Offline"), refreshed every 30 s, with the exact time in the row's
// title; the time (data-last-seen, ms) comes with the page's rows and with
// every offline event.
(() => {
  'use strict';
  const list = document.getElementById('users');
  if (!list) return;
  const status = document.getElementById('status');
  const pingMs = Number(list.dataset.pingMs) || 30000;
  // API Gateway cuts connections at 2 h: replace the socket a little before.
  const maxLifeMs = Number(list.dataset.refreshMs) || 110 * 60 * 1000;
  // A socket that neither opens nor fails within this long is given up
  // (Chromium fires no close for a socket its CSP blocks).
  const openTimeoutMs = 15000;
  const groups = {
    online: document.getElementById('online'),
    offline: document.getElementById('offline'),
  };
  if (!groups.online || !groups.offline) return;
  const countEl = document.getElementById('count');
  const searchBox = document.getElementById('search-box');
  const search = document.getElementById('search');
  const announcer = document.getElementById('announce');
  const moreBtn = document.getElementById('more');
  const meEl = document.getElementById('me');
  const myName = meEl ? meEl.textContent : null;
  const rows = new Map(); // name -> { li, seq, online, match, seen }
  // The search, lower-cased ('' shows everyone), and how many rows match
  // it: in all and among the online ones.
  let query = '';
  let matches = 0;
  let onlineMatches = 0;
  for (const li of list.querySelectorAll('li[data-username]')) {
    const online = li.parentNode === groups.online;
    const seen = Number(li.dataset.lastSeen);
    const r = { li, seq: Number(li.dataset.seq) || 0, online, match: true, seen: Number.isSafeInteger(seen) && seen > 0 ? seen : null };
    rows.set(li.dataset.username, r);
    if (r.seen !== null) showSeen(r);
    matches += 1;
    if (online) onlineMatches += 1;
  }
  // Where the next page of users starts ('' : everyone is loaded).
  let after = moreBtn ? moreBtn.dataset.after || '' : '';
  const pageSize = (moreBtn && Number(moreBtn.dataset.pageSize)) || 100;
  // Registered users: the server's count, plus sign-ups since.
  let total = countEl && Number.isSafeInteger(Number(countEl.dataset.total))
    ? Number(countEl.dataset.total) : rows.size;
  let counted = new Set(); // names counted in `total` since the server's count
  let totalFromSnapshot = false; // the last snapshot carried the count
  // The server time our list is as of: joins after it are asked for.
  let since = Number(list.dataset.since) || 0;

  // "last seen 5 min ago", as the server words it (Timestamp::last_seen_ago).
  function ago(ms) {
    const secs = Math.max(0, Math.floor((Date.now() - ms) / 1000));
    const mins = Math.floor(secs / 60);
    const hours = Math.floor(secs / 3600);
    const days = Math.floor(secs / 86400);
    if (mins < 1) return 'last seen just now';
    if (hours < 1) return 'last seen ' + mins + ' min ago';
    if (days < 1) return 'last seen ' + hours + ' h ago';
    return days === 1 ? 'last seen 1 day ago' : 'last seen ' + days + ' days ago';
  }

  // A row's last seen: shown while offline and known, else nothing.
  function showSeen(r) {
    const li = r.li;
    if (!r.online && r.seen !== null) {
      const text = ago(r.seen);
      if (li.dataset.ago !== text) li.dataset.ago = text;
      const ms = String(r.seen);
      if (li.dataset.lastSeen !== ms || !li.dataset.localTitle) {
        li.dataset.lastSeen = ms;
        li.dataset.localTitle = '1';
        li.title = 'Last seen ' + new Date(r.seen).toLocaleString();
      }
    } else if (li.dataset.lastSeen !== undefined || li.dataset.ago !== undefined) {
      delete li.dataset.lastSeen;
      delete li.dataset.ago;
      delete li.dataset.localTitle;
      li.removeAttribute('title');
    }
  }

  function setState(state, text) {
    list.dataset.state = state;
    if (status) status.textContent = text;
  }

  // Code point order, as the server sorts names (a plain `<` compares
  // UTF-16 units: astral characters would sort before U+E000–U+FFFF).
  function cmp(a, b) {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
      const x = a.charCodeAt(i);
      const y = b.charCodeAt(i);
      if (x === y) continue;
      const xs = x >= 0xd800 && x <= 0xdfff;
      const ys = y >= 0xd800 && y <= 0xdfff;
      if (xs !== ys) return xs ? 1 : -1;
      return x - y;
    }
    return a.length - b.length;
  }

  // Moves a new row, or one whose status changed, into its group's list at
  // its place by name (binary search: the lists are always sorted). The
  // element stays the same one: only its position changes.
  function place(r, name) {
    const ul = r.online ? groups.online : groups.offline;
    const kids = ul.children;
    let lo = 0;
    let hi = kids.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cmp(kids[mid].dataset.username || '', name) < 0) lo = mid + 1;
      else hi = mid;
    }
    ul.insertBefore(r.li, kids[lo] || null);
  }

  function matchesQuery(name) {
    return query === '' || name.toLowerCase().includes(query);
  }

  // The count and the groups' visibility, once per task however many rows
  // changed in it (a snapshot changes thousands).
  let countPending = false;
  function updateCount() {
    if (countPending) return;
    countPending = true;
    Promise.resolve().then(() => {
      countPending = false;
      const on = groups.online.children.length;
      let text;
      if (query === '') {
        text = on + ' online · ' + total + (total === 1 ? ' user' : ' users');
      } else {
        text = matches + ' of ' + total + (total === 1 ? ' user' : ' users')
          + (matches === 1 ? ' matches' : ' match');
      }
      if (countEl && countEl.textContent !== text) countEl.textContent = text;
      const onGroup = groups.online.parentNode;
      const offGroup = groups.offline.parentNode;
      onGroup.hidden = onlineMatches === 0;
      offGroup.hidden = matches - onlineMatches === 0;
    });
  }

  // Live announcements, batched: at most one every ANNOUNCE_GAP_MS,
  // summarising what changed since the last (net: a user who came and went
  // within it is not mentioned).
  const ANNOUNCE_DELAY_MS = 1000;
  const ANNOUNCE_GAP_MS = 2000;
  const pending = new Map(); // name -> { from, to } (online before / now)
  let joinedCount = 0;
  let joinedName = null;
  let lastAnnounce = -Infinity;
  let announceTimer = null;

  function scheduleAnnounce() {
    if (!announcer || announceTimer !== null) return;
    const wait = Math.max(ANNOUNCE_DELAY_MS, lastAnnounce + ANNOUNCE_GAP_MS - Date.now());
    announceTimer = setTimeout(flushAnnounce, wait);
  }

  function noteChange(name, from, to) {
    if (name === myName) return;
    const p = pending.get(name);
    if (p) p.to = to;
    else pending.set(name, { from, to });
    scheduleAnnounce();
  }

  function noteJoin(name) {
    joinedCount += 1;
    joinedName = name;
    scheduleAnnounce();
  }

  function phrase(names, n, verb) {
    return n === 1 ? names + ' ' + verb : n + ' people ' + verb;
  }

  function flushAnnounce() {
    announceTimer = null;
    const on = [];
    const off = [];
    for (const [name, p] of pending) {
      if (p.from !== p.to) (p.to ? on : off).push(name);
    }
    pending.clear();
    const parts = [];
    if (on.length) parts.push(phrase(on[0], on.length, 'came online'));
    if (off.length) parts.push(phrase(off[0], off.length, 'went offline'));
    if (joinedCount) parts.push(joinedCount === 1 ? joinedName + ' joined' : joinedCount + ' new users joined');
    joinedCount = 0;
    if (!parts.length) return;
    const text = parts.join(', ');
    // The same words again still have to change the region to be read.
    announcer.textContent = text === announcer.textContent ? text + '\u00a0' : text;
    lastAnnounce = Date.now();
  }

  // Whether `name` is within the names loaded so far.
  function inLoaded(name) {
    return after === '' || cmp(name, after) <= 0;
  }

  // A new row in its state (nothing announced).
  function addRow(name, online, seq, seen) {
    const li = document.createElement('li');
    li.dataset.username = name;
    li.dataset.seq = String(seq);
    li.textContent = name + ': ' + (online ? 'Online' : 'Offline');
    const r = { li, seq, online, match: matchesQuery(name), seen: null };
    if (!online && Number.isSafeInteger(seen) && seen > 0) r.seen = seen;
    li.hidden = !r.match;
    if (r.match) {
      matches += 1;
      if (online) onlineMatches += 1;
    }
    rows.set(name, r);
    place(r, name);
    showSeen(r);
    updateCount();
    return r;
  }

  // A sign-up: counted once, announced; a row if within the loaded names.
  function joined(name) {
    if (rows.has(name)) return;
    if (!counted.has(name)) {
      counted.add(name);
      total += 1;
      noteJoin(name);
    }
    if (inLoaded(name)) addRow(name, false, 0, null);
    updateCount();
  }

  // A user from a page of GET /api/users: added, or moved forward.
  function listed(u) {
    if (!u || typeof u.username !== 'string' || typeof u.is_logged_in !== 'boolean') return;
    if (rows.has(u.username)) {
      apply(u.username, u.is_logged_in, u.seq, false, u.last_seen);
    } else {
      const seq = Number.isSafeInteger(u.seq) && u.seq >= 0 ? u.seq : 0;
      addRow(u.username, u.is_logged_in, seq, u.last_seen);
    }
  }

  // `seen`: when they went offline (an offline event's last_seen), if said.
  function show(r, name, online, seq, seen) {
    r.seq = seq;
    r.li.dataset.seq = String(seq);
    r.li.textContent = name + ': ' + (online ? 'Online' : 'Offline');
    if (online) r.seen = null;
    else if (Number.isSafeInteger(seen) && seen > 0) r.seen = seen;
    else if (r.online) r.seen = null; // went offline unseen (a reset snapshot)
    const was = r.online;
    r.online = online;
    showSeen(r);
    if (was === online) return;
    noteChange(name, was, online);
    if (r.match) onlineMatches += online ? 1 : -1;
    place(r, name);
    updateCount();
  }

  function filter() {
    const q = search.value.trim().toLowerCase();
    if (q === query) return;
    query = q;
    matches = 0;
    onlineMatches = 0;
    for (const [name, r] of rows) {
      r.match = matchesQuery(name);
      if (r.li.hidden === r.match) r.li.hidden = !r.match;
      if (r.match) {
        matches += 1;
        if (r.online) onlineMatches += 1;
      }
    }
    updateCount();
  }

  if (search && searchBox) {
    // 'input' as one types; 'change' too (a script or WebDriver clearing it).
    for (const type of ['input', 'search', 'change']) {
      search.addEventListener(type, () => { filter(); updateMore(); scheduleSearch(); });
    }
    searchBox.hidden = false;
    filter(); // a value the browser restored
  }

  // GET /api/users with `params`: the users, and the next page's `after`
  // ('' if none: the Link header says). null on failure.
  async function fetchUsers(params) {
    let r;
    try {
      r = await fetch('/api/users?' + params, { credentials: 'same-origin', cache: 'no-store' });
    } catch (_) {
      return null;
    }
    if (r.status === 401) { location.assign('/log_in/?next=/'); return null; }
    if (!r.ok) return null;
    let users;
    try { users = await r.json(); } catch (_) { return null; }
    if (!Array.isArray(users)) return null;
    const m = /[?&]after=([^&>]*)/.exec(r.headers.get('link') || '');
    let next = '';
    if (m) {
      try { next = decodeURIComponent(m[1].replace(/\+/g, ' ')); } catch (_) { next = ''; }
    }
    return { users, next };
  }

  // The next page of users, when the button is in view or pressed.
  let loading = false;
  function moreNearView() {
    if (!moreBtn || moreBtn.hidden) return false;
    const box = moreBtn.getBoundingClientRect();
    return box.top < window.innerHeight + 200 && box.bottom > -200;
  }
  // Hidden once everyone is loaded, and while searching (the server
  // search finds what is not loaded; pages of other names would only add
  // hidden rows).
  function updateMore() {
    if (moreBtn) moreBtn.hidden = after === '' || query !== '';
  }
  async function loadMore() {
    if (loading || after === '' || query !== '') return;
    loading = true;
    if (moreBtn) moreBtn.setAttribute('aria-busy', 'true');
    const got = await fetchUsers('after=' + encodeURIComponent(after) + '&limit=' + pageSize);
    loading = false;
    if (moreBtn) moreBtn.removeAttribute('aria-busy');
    if (!got) return;
    // Advance first: the new rows are within the loaded names.
    const from = after;
    after = got.next;
    for (const u of got.users) listed(u);
    if (after !== '' && cmp(after, from) <= 0) after = ''; // no progress: stop
    updateMore();
    // Still in view (a tall window): the page after.
    if (after !== '' && moreNearView()) setTimeout(loadMore, 0);
  }
  if (moreBtn) {
    moreBtn.addEventListener('click', loadMore);
    if ('IntersectionObserver' in window) {
      new IntersectionObserver((entries) => {
        if (entries.some((e) => e.isIntersecting)) loadMore();
      }, { rootMargin: '200px' }).observe(moreBtn);
    }
    updateMore();
  }

  // What the search box asks the server for: names starting with what was
  // typed (as typed, and lower-cased), debounced; the matches are added to
  // the rows (the filter shows them).
  const SEARCH_DELAY_MS = 250;
  let searchTimer = null;
  let searchRound = 0;
  function scheduleSearch() {
    clearTimeout(searchTimer);
    const typed = search.value.trim();
    if (typed === '' || after === '') return; // nothing typed, or all loaded
    searchTimer = setTimeout(() => serverSearch(typed), SEARCH_DELAY_MS);
  }
  async function serverSearch(typed) {
    const round = ++searchRound;
    const asked = [typed];
    if (typed.toLowerCase() !== typed) asked.push(typed.toLowerCase());
    for (const q of asked) {
      const got = await fetchUsers('q=' + encodeURIComponent(q) + '&limit=' + pageSize);
      if (round !== searchRound) return; // typed on meanwhile
      if (got) for (const u of got.users) listed(u);
    }
    list.dataset.searched = typed;
  }

  // An event or a snapshot row: applied unless older than what is shown.
  function apply(name, online, seq, exact, seen) {
    if (typeof name !== 'string' || typeof online !== 'boolean') return;
    if (!Number.isSafeInteger(seq) || seq < 0) seq = 0;
    let r = rows.get(name);
    if (!r) {
      // A sign-up's announcement (seq 0); an online user gets a row
      // wherever they sort; an offline one only within the loaded names.
      if (!online && seq === 0) { joined(name); return; }
      if (!online && !inLoaded(name)) return;
      r = addRow(name, false, 0, null);
    }
    if (!exact && seq < r.seq) return;
    show(r, name, online, seq, seen);
  }

  // "… min ago" moves with time: every 30 s, and when the tab is shown
  // again (a background tab's timers are throttled).
  function refreshSeen() {
    for (const r of rows.values()) if (!r.online && r.seen !== null) showSeen(r);
  }
  setInterval(refreshSeen, 30000);
  document.addEventListener('visibilitychange', () => { if (!document.hidden) refreshSeen(); });

  function isOnline(r) {
    return r.online;
  }

  // A snapshot lists who is online; everyone else is offline. With `reset`
  // (delivered in order with the events: the local server) it is the truth.
  // Without (the cloud), a user an event moved since we asked keeps that.
  // A large one comes in parts (`more`): "everyone else is offline" is
  // applied with the last part, over every part's users.
  function snapshot(msg, touched, listed) {
    for (const u of msg.users) {
      if (!u || typeof u.username !== 'string') continue;
      listed.add(u.username);
      apply(u.username, u.is_logged_in, u.seq, msg.reset === true);
    }
    if (msg.more === true) return false;
    for (const [name, r] of rows) {
      if (listed.has(name)) continue;
      // A reset forgets every transition number it does not list, offline
      // rows' too: after a store rewind, their next event may carry a
      // lower one.
      if (msg.reset === true) show(r, name, false, 0);
      else if (isOnline(r) && !touched.has(name)) show(r, name, false, r.seq);
    }
    if (Number.isSafeInteger(msg.at)) since = msg.at;
    totalFromSnapshot = Number.isSafeInteger(msg.total) && msg.total >= 0;
    if (totalFromSnapshot) {
      total = msg.total;
      counted = new Set();
      updateCount();
    }
    return true;
  }

  function socketUrl(ticket) {
    let url = list.dataset.wsUrl;
    if (!url) url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/users/';
    const params = [];
    if (ticket) params.push('ticket=' + encodeURIComponent(ticket));
    if (since && list.dataset.requestSnapshot !== 'true') params.push('since=' + since);
    if (params.length) url += (url.includes('?') ? '&' : '?') + params.join('&');
    return url;
  }

  let attempt = 0;
  let failures = 0;
  let current = null; // the socket whose close means reconnecting

  async function stillLoggedIn() {
    try {
      const r = await fetch('/api/users?limit=1', { credentials: 'same-origin', cache: 'no-store' });
      return r.status !== 401;
    } catch (_) {
      return true; // offline or server down: keep retrying
    }
  }

  function scheduleReconnect() {
    const delay = Math.min(30000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2);
    attempt += 1;
    setState('offline', 'Disconnected; retrying…');
    setTimeout(() => connect(null), delay);
  }

  // A scheduled refresh failed: try again in a while, while `old` lasts.
  function retryRefresh(old) {
    setTimeout(() => { if (current === old && !old.retired) connect(old); }, 30000);
  }

  // A socket on another origin (the cloud's WebSocket API) does not get the
  // session cookie: each one opens with a single-use ticket, valid for
  // seconds, from this page's own origin. Resolves to the ticket, or null
  // if none could be had now (offline, server trouble); a 401 (logged out)
  // goes to the log-in page.
  async function fetchTicket() {
    let r;
    try {
      r = await fetch('/api/ws_ticket', {
        method: 'POST',
        credentials: 'include',
        cache: 'no-store',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
    } catch (_) {
      return null;
    }
    if (r.status === 401) {
      location.assign('/log_in/');
      return undefined;
    }
    if (!r.ok) return null;
    try {
      const body = await r.json();
      return body && typeof body.ticket === 'string' ? body.ticket : null;
    } catch (_) {
      return null;
    }
  }

  // Opens a socket. With `old`, it replaces that one (a scheduled refresh):
  // the old socket closes only once the new one has its snapshot, so the
  // user is never without a connection. On the cloud, a ticket first.
  function connect(old) {
    if (!old) setState('connecting', attempt ? 'Reconnecting…' : 'Connecting…');
    if (!list.dataset.wsUrl) {
      open(old, null);
      return;
    }
    fetchTicket().then((ticket) => {
      if (ticket === undefined) return; // logged out: leaving the page
      if (ticket !== null) {
        open(old, ticket);
      } else if (old) {
        if (current === old && !old.retired) retryRefresh(old);
      } else {
        failures += 1;
        scheduleReconnect();
      }
    });
  }

  function open(old, ticket) {
    const ws = new WebSocket(socketUrl(ticket));
    const me = { ws, retired: false, opened: false };
    if (!old) current = me;
    let pinger = null;
    let lifetime = null;
    let touched = new Set();
    let listed = new Set(); // users of the snapshot's parts so far
    let ready = false;
    const giveUp = setTimeout(() => {
      if (me.opened) return;
      me.retired = true;
      ws.close();
      ended();
      if (current === me) {
        failures += 1;
        scheduleReconnect();
      } else {
        retryRefresh(old);
      }
    }, openTimeoutMs);

    function ended() {
      clearTimeout(giveUp);
      clearInterval(pinger);
      clearTimeout(lifetime);
    }

    function onReady() {
      if (ready) return;
      ready = true;
      if (old) {
        current = me;
        old.retired = true;
        old.ws.close(1000, 'replaced');
      }
      lifetime = setTimeout(() => connect(me), maxLifeMs);
    }

    ws.onopen = () => {
      me.opened = true;
      clearTimeout(giveUp);
      attempt = 0;
      failures = 0;
      if (!old) setState('live', 'Live');
      if (list.dataset.requestSnapshot === 'true') {
        touched = new Set();
        ws.send(JSON.stringify(since ? { type: 'snapshot', since } : { type: 'snapshot' }));
      }
      pinger = setInterval(() => {
        if (ws.readyState === WebSocket.OPEN) ws.send('{"type":"ping"}');
      }, pingMs);
    };

    ws.onmessage = (e) => {
      let msg;
      try { msg = JSON.parse(e.data); } catch (_) { return; }
      if (!msg || typeof msg !== 'object') return;
      if (msg.type === 'logged_out') { // the cloud says so before closing
        location.assign('/log_in/');
      } else if (msg.type === 'snapshot' && Array.isArray(msg.users)) {
        if (!snapshot(msg, touched, listed)) return;
        listed = new Set();
        onReady();
        // The first snapshot applied: the page is interactive and true
        // (tests and the page benchmark wait for it).
        if (list.dataset.ready !== 'true') {
          list.dataset.ready = 'true';
          if (window.performance && performance.mark) performance.mark('rollcall-ready');
        }
        if (!old || current === me) setState('live', 'Live');
      } else if (msg.type === 'joined' && Array.isArray(msg.users)) {
        if (msg.truncated === true) { location.reload(); return; }
        // Already in the count of the snapshot just before, if it had one.
        for (const name of msg.users) {
          if (typeof name !== 'string' || rows.has(name)) continue;
          if (totalFromSnapshot) {
            if (inLoaded(name)) addRow(name, false, 0, null);
          } else {
            joined(name);
          }
        }
      } else if (msg.type === undefined) {
        touched.add(msg.username);
        apply(msg.username, msg.is_logged_in, msg.seq, false, msg.last_seen);
      }
    };

    ws.onclose = async (e) => {
      ended();
      if (me.retired) return; // replaced by a newer socket
      if (e.code === 4001) { // logged out elsewhere
        location.assign('/log_in/');
        return;
      }
      if (old && current !== me) { // a replacement that failed: the old one stays
        retryRefresh(old);
        return;
      }
      if (!me.opened) failures += 1;
      if (failures >= 2 && !(await stillLoggedIn())) {
        location.assign('/log_in/?next=/');
        return;
      }
      scheduleReconnect();
    };
  }

  connect(null);
})();
