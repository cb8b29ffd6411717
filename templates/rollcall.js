// rollcall's page: keeps the user list live over a WebSocket.
// Plain JS, no dependencies. Names only ever go through textContent and
// dataset, never innerHTML, so no name can inject markup.
//
// Every event and snapshot row carries the user's transition number (seq):
// a row only ever moves to a newer state, so an event that arrives late (the
// cloud posts from several functions) never undoes a newer one.
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
  const rows = new Map(); // name -> { li, seq }
  for (const li of list.querySelectorAll('li[data-username]')) {
    rows.set(li.dataset.username, { li, seq: Number(li.dataset.seq) || 0 });
  }
  // The server time our list is as of: joins after it are asked for.
  let since = Number(list.dataset.since) || 0;

  function setState(state, text) {
    list.dataset.state = state;
    if (status) status.textContent = text;
  }

  function row(name) {
    let r = rows.get(name);
    if (!r) {
      const li = document.createElement('li');
      li.dataset.username = name;
      li.textContent = name + ': Offline';
      list.appendChild(li);
      r = { li, seq: 0 };
      rows.set(name, r);
    }
    return r;
  }

  function show(r, name, online, seq) {
    r.seq = seq;
    r.li.dataset.seq = String(seq);
    r.li.textContent = name + ': ' + (online ? 'Online' : 'Offline');
  }

  // An event or a snapshot row: applied unless older than what is shown.
  function apply(name, online, seq, exact) {
    if (typeof name !== 'string' || typeof online !== 'boolean') return;
    if (!Number.isSafeInteger(seq) || seq < 0) seq = 0;
    const r = row(name);
    if (!exact && seq < r.seq) return;
    show(r, name, online, seq);
  }

  function isOnline(r) {
    return r.li.textContent.endsWith(': Online');
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
    return true;
  }

  function socketUrl() {
    let url = list.dataset.wsUrl;
    if (!url) url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/users/';
    const params = [];
    const token = list.dataset.wsToken;
    if (token) params.push('token=' + encodeURIComponent(token));
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

  // Opens a socket. With `old`, it replaces that one (a scheduled refresh):
  // the old socket closes only once the new one has its snapshot, so the
  // user is never without a connection.
  function connect(old) {
    if (!old) setState('connecting', attempt ? 'Reconnecting…' : 'Connecting…');
    const ws = new WebSocket(socketUrl());
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
        if (!old || current === me) setState('live', 'Live');
      } else if (msg.type === 'joined' && Array.isArray(msg.users)) {
        if (msg.truncated === true) { location.reload(); return; }
        for (const name of msg.users) if (typeof name === 'string') row(name);
      } else if (msg.type === undefined) {
        touched.add(msg.username);
        apply(msg.username, msg.is_logged_in, msg.seq, false);
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
