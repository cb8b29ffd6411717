// rollcall's page: keeps the user list live over a WebSocket.
// Plain JS, no dependencies. Names only ever go through textContent and
// dataset, never innerHTML, so no name can inject markup.
(() => {
  'use strict';
  const list = document.getElementById('users');
  if (!list) return;
  const status = document.getElementById('status');
  const pingMs = Number(list.dataset.pingMs) || 30000;
  // API Gateway cuts connections at 2 h: reconnect a little before.
  const maxLifeMs = 110 * 60 * 1000;
  const rows = new Map();
  for (const li of list.querySelectorAll('li[data-username]')) rows.set(li.dataset.username, li);

  function setState(state, text) {
    list.dataset.state = state;
    if (status) status.textContent = text;
  }

  function show(name, online) {
    if (typeof name !== 'string' || typeof online !== 'boolean') return;
    let li = rows.get(name);
    if (!li) {
      li = document.createElement('li');
      li.dataset.username = name;
      list.appendChild(li);
      rows.set(name, li);
    }
    li.textContent = name + ': ' + (online ? 'Online' : 'Offline');
  }

  function socketUrl() {
    let url = list.dataset.wsUrl;
    if (!url) url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/users/';
    const token = list.dataset.wsToken;
    if (token) url += (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token);
    return url;
  }

  let attempt = 0;
  let failures = 0;

  async function stillLoggedIn() {
    try {
      const r = await fetch('/api/users', { credentials: 'same-origin', cache: 'no-store' });
      return r.status !== 401;
    } catch (_) {
      return true; // offline or server down: keep retrying
    }
  }

  function connect() {
    setState('connecting', attempt ? 'Reconnecting…' : 'Connecting…');
    const ws = new WebSocket(socketUrl());
    let opened = false;
    let pinger = null;
    let lifetime = null;

    ws.onopen = () => {
      opened = true;
      attempt = 0;
      failures = 0;
      setState('live', 'Live');
      if (list.dataset.requestSnapshot === 'true') ws.send('{"type":"snapshot"}');
      pinger = setInterval(() => {
        if (ws.readyState === WebSocket.OPEN) ws.send('{"type":"ping"}');
      }, pingMs);
      lifetime = setTimeout(() => ws.close(1000, 'refresh'), maxLifeMs);
    };

    ws.onmessage = (e) => {
      let msg;
      try { msg = JSON.parse(e.data); } catch (_) { return; }
      if (!msg || typeof msg !== 'object') return;
      if (msg.type === 'logged_out') { // the cloud says so before closing
        location.assign('/log_in/');
      } else if (msg.type === 'snapshot' && Array.isArray(msg.users)) {
        for (const u of msg.users) show(u && u.username, u && u.is_logged_in);
      } else if (msg.type === undefined) {
        show(msg.username, msg.is_logged_in);
      }
    };

    ws.onclose = async (e) => {
      clearInterval(pinger);
      clearTimeout(lifetime);
      if (e.code === 4001) { // logged out elsewhere
        location.assign('/log_in/');
        return;
      }
      if (!opened) failures += 1;
      if (failures >= 2 && !(await stillLoggedIn())) {
        location.assign('/log_in/?next=/');
        return;
      }
      const delay = Math.min(30000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2);
      attempt += 1;
      setState('offline', 'Disconnected; retrying…');
      setTimeout(connect, delay);
    };
  }

  connect();
})();
