// backbone's operators' console (doc/console.md): a single page over the HTTP API, written small
// by hand. The token lives in this closure only: never in the URL, a cookie or storage. Every
// value from the server is put in the page as text (never as HTML).
'use strict';
(() => {
  const session = { token: null, env: null, name: null, permissions: [], production: false };
  let poller = null; // the timer of the page that polls
  const $ = (id) => document.getElementById(id);

  // h('tag.class', {attr}, children...): an element; strings become text nodes.
  function h(spec, attrs, ...children) {
    const [tag, ...classes] = spec.split('.');
    const el = document.createElement(tag);
    if (classes.length) el.className = classes.join(' ');
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'text') el.textContent = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const may = (p) => session.permissions.includes(p);
  const envPath = (rest) => `/v1/envs/${encodeURIComponent(session.env)}${rest}`;
  const fmt = (n, digits = 0) => (n === null || n === undefined || Number.isNaN(n))
    ? '—' : Number(n).toLocaleString('en', { maximumFractionDigits: digits });
  const json = (v) => JSON.stringify(v, null, 2);

  class ApiError extends Error {
    constructor(status, body) {
      const e = body && body.error ? body.error : null;
      super(e ? `${e.code}: ${e.message}${e.details ? ` (${e.details})` : ''}` : `HTTP ${status}`);
      this.status = status;
      this.code = e ? e.code : null;
    }
  }

  async function api(method, path, body) {
    const init = { method, headers: { Authorization: `Bearer ${session.token}` } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    const text = await res.text();
    let parsed = null;
    try { parsed = text ? JSON.parse(text) : null; } catch (_) { parsed = null; }
    if (!res.ok) {
      if (res.status === 401 && session.token) signOut('Your token is no longer accepted: sign in again.');
      throw new ApiError(res.status, parsed);
    }
    return parsed;
  }

  // ---- dialog -------------------------------------------------------------------------------
  function confirmDialog(title, body, confirmText, danger) {
    return new Promise((resolve) => {
      $('dialog-title').textContent = title;
      $('dialog-body').replaceChildren(body);
      const ok = $('dialog-confirm');
      ok.textContent = confirmText;
      ok.className = danger ? 'danger' : '';
      $('dialog-backdrop').hidden = false;
      const done = (v) => {
        $('dialog-backdrop').hidden = true;
        ok.onclick = null;
        $('dialog-cancel').onclick = null;
        resolve(v);
      };
      ok.onclick = () => done(true);
      $('dialog-cancel').onclick = () => done(false);
    });
  }

  // ---- sign-in ------------------------------------------------------------------------------
  async function signIn(token) {
    session.token = token;
    try {
      const me = await api('GET', '/v1/whoami');
      Object.assign(session, { env: me.env, name: me.name, permissions: me.permissions,
        production: me.production });
      if (!me.served) throw new Error(`environment ${me.env} is not served by this process`);
    } catch (e) {
      session.token = null;
      $('sign-in-error').textContent = `Sign-in failed: ${e.message}`;
      return;
    }
    $('token-input').value = '';
    $('sign-in-error').textContent = '';
    const banner = $('banner');
    banner.hidden = false;
    banner.classList.toggle('production', session.production);
    $('env-badge').textContent = session.env;
    $('prod-warning').hidden = !session.production;
    $('who').textContent = `${session.name} · ${session.permissions.join(', ')}`;
    $('nav').hidden = false;
    for (const a of document.querySelectorAll('#nav a[data-needs]')) a.hidden = !may(a.dataset.needs);
    if (!location.hash || location.hash === '#/') location.hash = '#/overview';
    else route();
  }

  function signOut(message) {
    Object.assign(session, { token: null, env: null, name: null, permissions: [], production: false });
    stopPolling();
    $('banner').hidden = true;
    $('nav').hidden = true;
    $('view').replaceChildren(signInCard);
    $('sign-in-error').textContent = message || '';
  }

  function stopPolling() {
    if (poller) clearInterval(poller);
    poller = null;
  }
  // Starts the page's poll, unless the page was left meanwhile (its pane is no longer shown): a
  // page left while it awaited the server would otherwise poll on, unseen, for good.
  function startPolling(pane, fn, ms) {
    if (!pane.isConnected) return;
    stopPolling();
    poller = setInterval(fn, ms);
  }

  // ---- routing ------------------------------------------------------------------------------
  const pages = {};
  function params() {
    const q = location.hash.split('?')[1] || '';
    return new URLSearchParams(q);
  }
  function go(page, query) {
    const q = new URLSearchParams(query || {}).toString();
    location.hash = `#/${page}${q ? `?${q}` : ''}`;
  }
  async function route() {
    if (!session.token) return;
    stopPolling();
    const name = (location.hash.slice(2).split('?')[0]) || 'overview';
    const page = pages[name] ? name : 'overview';
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === page);
    // Each visit renders into a pane of its own: a page left while it awaited the server (two
    // hash changes in a row) goes on filling its pane, which is no longer shown, instead of
    // adding a second copy of its elements, and their ids, to the page shown now.
    const view = $('view');
    const pane = h('div.pane');
    view.replaceChildren(pane);
    view.dataset.page = page;
    try {
      await pages[page](pane, params());
    } catch (e) {
      pane.append(h('p.error', { role: 'alert' }, e.message));
    }
  }
  window.addEventListener('hashchange', route);

  // ---- overview -----------------------------------------------------------------------------
  // A line chart on a canvas: series of [t, value] over the last two minutes.
  function chart(title, unit, series) {
    const canvas = h('canvas', { width: 600, height: 160, 'aria-label': title });
    const legend = h('div.legend');
    const box = h('div.card.chart', {}, h('h2', {}, title), canvas, legend);
    const colors = ['#2456c7', '#b3261e', '#1e7b34'];
    box.draw = () => {
      const ctx = canvas.getContext('2d');
      const w = canvas.width; const hh = canvas.height;
      ctx.clearRect(0, 0, w, hh);
      const all = series.flatMap((s) => s.points.map((p) => p[1]));
      const max = Math.max(1, ...all) * 1.1;
      ctx.strokeStyle = '#d9dde5';
      ctx.fillStyle = '#5b6475';
      ctx.font = '11px sans-serif';
      for (let i = 0; i <= 4; i++) {
        const y = hh - 16 - (i / 4) * (hh - 28);
        ctx.beginPath(); ctx.moveTo(40, y); ctx.lineTo(w, y); ctx.stroke();
        ctx.fillText(fmt((max * i) / 4, max < 10 ? 2 : 0), 0, y + 4);
      }
      const now = Date.now(); const span = 120000;
      series.forEach((s, k) => {
        ctx.strokeStyle = colors[k % colors.length];
        ctx.lineWidth = 2;
        ctx.beginPath();
        s.points.forEach(([t, v], i) => {
          const x = 40 + ((t - (now - span)) / span) * (w - 40);
          const y = hh - 16 - (v / max) * (hh - 28);
          if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
        });
        ctx.stroke();
        ctx.fillStyle = colors[k % colors.length];
        for (const [t, v] of s.points) {
          ctx.beginPath();
          ctx.arc(40 + ((t - (now - span)) / span) * (w - 40), hh - 16 - (v / max) * (hh - 28), 2.5, 0, 2 * Math.PI);
          ctx.fill();
        }
      });
      // The highest value each series reached in the window, for readers of the page (tests).
      series.forEach((s, k) => { box.dataset[`peak${k}`] = String(Math.max(0, ...s.points.map((p) => p[1]))); });
      legend.replaceChildren(...series.map((s, k) => h('span', {},
        h('span', { text: '■ ' }), `${s.name}: ${s.points.length ? fmt(s.points[s.points.length - 1][1], 2) : '—'} ${unit}   `)));
      legend.querySelectorAll('span > span').forEach((el, k) => { el.style.color = colors[k % colors.length]; });
    };
    return box;
  }

  // The q-quantile of the observations between two cumulative histograms (upper bucket bound).
  function windowQuantile(prev, cur, q) {
    const n = cur.cumulative.length ? cur.cumulative[cur.cumulative.length - 1] - (prev.cumulative[prev.cumulative.length - 1] || 0) : 0;
    if (n <= 0) return null;
    for (let i = 0; i < cur.bounds.length; i++) {
      if ((cur.cumulative[i] - (prev.cumulative[i] || 0)) >= q * n) return cur.bounds[i];
    }
    return cur.bounds[cur.bounds.length - 1];
  }

  // "0–3, 7, 9–12" for a sorted list of bucket numbers.
  function ranges(nums) {
    const out = [];
    for (let i = 0; i < nums.length; i++) {
      let j = i;
      while (j + 1 < nums.length && nums[j + 1] === nums[j] + 1) j++;
      out.push(i === j ? `${nums[i]}` : `${nums[i]}–${nums[j]}`);
      i = j;
    }
    return out.join(', ');
  }

  // The members with the buckets each owns, and the buckets nobody owns.
  function clusterView(cluster) {
    if (!cluster.leases) return [h('p.muted', {}, cluster.note || 'No buckets.')];
    const owned = new Map();
    for (const l of cluster.leases) {
      const k = l.owner || '';
      if (!owned.has(k)) owned.set(k, { buckets: [], backlog: 0, epochs: new Set() });
      const o = owned.get(k);
      o.buckets.push(l.bucket);
      o.backlog += l.backlog || 0;
    }
    const rows = (cluster.members || []).map((m) => {
      const o = owned.get(m.id) || { buckets: [], backlog: 0 };
      return h('tr', { 'data-member': m.id }, h('td.mono', {}, m.id, m.id === cluster.member ? h('span.muted', {}, ' (this process)') : null),
        h('td.mono', {}, m.address || ''), h('td.num', {}, o.buckets.length), h('td.mono', {}, ranges(o.buckets)),
        h('td.num', {}, fmt(o.backlog)), h('td.num', {}, fmt(m.beat_age_seconds, 1)), h('td', {}, m.leaving ? 'leaving' : 'active'));
    });
    const unowned = owned.get('');
    return [h('p.muted', {}, `${cluster.buckets} buckets, ${fmt(cluster.unowned || 0)} unowned, backlog ${fmt(cluster.backlog)}${cluster.backlog_capped ? '+' : ''}.`),
      h('table', { id: 'members' }, h('thead', {}, h('tr', {}, h('th', {}, 'Member'), h('th', {}, 'Address'), h('th.num', {}, 'Buckets'),
        h('th', {}, 'Which'), h('th.num', {}, 'Backlog'), h('th.num', {}, 'Last beat (s ago)'), h('th', {}, 'State'))), h('tbody', {}, rows)),
      unowned ? h('p.error', {}, `Unowned: ${ranges(unowned.buckets)}`) : null].filter(Boolean);
  }

  pages.overview = async (view) => {
    view.append(h('h1', {}, 'Overview'));
    const subsBody = h('tbody');
    const subs = h('div.card', {}, h('h2', {}, 'Topics and subscriptions'),
      h('table', { id: 'subscriptions' }, h('thead', {}, h('tr', {}, h('th', {}, 'Subscription'), h('th', {}, 'Topic'),
        h('th.num', {}, 'Backlog'), h('th.num', {}, 'In flight'), h('th.num', {}, 'Oldest unacked (s)'),
        h('th.num', {}, 'Dead-lettered'))), subsBody));
    const rates = { ingest: [], merge: [], p50: [], p99: [] };
    const rateChart = chart('Ingest and merge rates', 'ev/s', [{ name: 'ingested', points: rates.ingest }, { name: 'merged', points: rates.merge }]);
    const latChart = chart('Ingest → merged latency', 'ms', [{ name: 'p50', points: rates.p50 }, { name: 'p99', points: rates.p99 }]);
    const totals = h('p.muted', { id: 'totals' });
    const clusterBox = h('div.card', { id: 'cluster' }, h('h2', {}, 'Buckets and owners'));
    view.append(totals, h('div.charts', {}, rateChart, latChart), subs, clusterBox);
    let prev = null;
    const tick = async () => {
      const [topo, stats, cluster] = await Promise.all([
        api('GET', envPath('/topology')), api('GET', envPath('/stats')), api('GET', envPath('/cluster'))]);
      subsBody.replaceChildren(...topo.subscriptions.map((s) => h('tr', { 'data-subscription': s.name },
        h('td.mono', {}, s.name), h('td.mono', {}, s.topic), h('td.num', {}, fmt(s.backlog.undelivered)),
        h('td.num', {}, fmt(s.backlog.in_flight)), h('td.num', {}, fmt(s.backlog.oldest_unacked_age_seconds, 1)),
        h('td.num', {}, fmt(s.backlog.dead_lettered)))));
      const now = Date.now();
      if (prev) {
        const dt = (now - prev.t) / 1000;
        rates.ingest.push([now, Math.max(0, (stats.ingested - prev.s.ingested) / dt)]);
        rates.merge.push([now, Math.max(0, (stats.merged_total - prev.s.merged_total) / dt)]);
        const p50 = windowQuantile(prev.s.ingest_to_merged, stats.ingest_to_merged, 0.5);
        const p99 = windowQuantile(prev.s.ingest_to_merged, stats.ingest_to_merged, 0.99);
        if (p50 !== null) { rates.p50.push([now, p50 * 1000]); rates.p99.push([now, p99 * 1000]); }
        for (const arr of Object.values(rates)) while (arr.length && arr[0][0] < now - 120000) arr.shift();
      }
      prev = { t: now, s: stats };
      rateChart.draw();
      latChart.draw();
      totals.textContent = `Since this process started: ${fmt(stats.ingested)} ingested, ${fmt(stats.duplicates)} duplicates, ` +
        `${fmt(stats.merged_total)} merged, ${fmt(stats.dead_lettered)} dead-lettered, ${fmt(stats.audit_mismatches)} audit mismatches.`;
      clusterBox.replaceChildren(h('h2', {}, 'Buckets and owners'), ...clusterView(cluster));
    };
    await tick();
    startPolling(view, () => tick().catch((e) => { totals.textContent = e.message; }), 2000);
  };

  // ---- records ------------------------------------------------------------------------------
  function diffTable(a, b) {
    const keys = [...new Set([...Object.keys(a || {}), ...Object.keys(b || {})])].sort();
    return h('table', { id: 'diff' }, h('thead', {}, h('tr', {}, h('th', {}, 'Field'), h('th', {}, 'Before'), h('th', {}, 'After'))),
      h('tbody', {}, keys.map((k) => {
        const before = a && k in a ? JSON.stringify(a[k]) : '';
        const after = b && k in b ? JSON.stringify(b[k]) : '';
        const cls = before === after ? '' : (before === '' ? 'diff-add' : after === '' ? 'diff-del' : 'diff-add');
        return h('tr', { class: cls || null }, h('td.mono', {}, k), h('td.mono', {}, before), h('td.mono', {}, after));
      })));
  }

  pages.records = async (view, q) => {
    view.append(h('h1', {}, 'Records'));
    const type = h('input', { id: 'record-type', placeholder: 'record type', value: q.get('type') || '' });
    const id = h('input', { id: 'record-id', placeholder: 'record id', value: q.get('id') || '' });
    view.append(h('form.inline.card', { id: 'record-form', onsubmit: (ev) => { ev.preventDefault(); go('records', { type: type.value, id: id.value }); } },
      h('label', {}, 'Type'), type, h('label', {}, 'Id'), id, h('button', { type: 'submit' }, 'Show')));
    if (!q.get('type') || !q.get('id')) return;
    const base = envPath(`/records/${encodeURIComponent(q.get('type'))}/${encodeURIComponent(q.get('id'))}`);
    const tl = await api('GET', `${base}/timeline`);
    // The record itself only once a version was made (a record with none answers 404).
    const rec = tl.events.some((t) => t.version !== null) ? await api('GET', base) : null;
    if (!rec && !tl.events.length) {
      view.append(h('p.muted', { id: 'record-missing' }, `${q.get('type')}/${q.get('id')} has no events.`));
      return;
    }
    view.append(h('div.card', { id: 'record-state' },
      h('h2', {}, `${q.get('type')}/${q.get('id')} — version ${rec ? rec.version : 0}`),
      rec ? h('pre', {}, json(rec.state)) : h('p.muted', {}, 'No merged version yet.'),
      rec ? h('p.muted', {}, `Updated ${rec.updated_at}`) : null));
    // State as of a version, and the diff between two.
    if (rec && rec.version > 0) {
      const from = h('input', { id: 'diff-from', type: 'number', min: 0, max: rec.version, value: Math.max(0, rec.version - 1) });
      const to = h('input', { id: 'diff-to', type: 'number', min: 1, max: rec.version, value: rec.version });
      const out = h('div', { id: 'diff-out' });
      const stateAt = async (v) => (Number(v) === 0 ? {} : (await api('GET', `${base}?version=${Number(v)}`)).state);
      const show = async () => {
        try {
          const [a, b] = await Promise.all([stateAt(from.value), stateAt(to.value)]);
          out.replaceChildren(h('p.muted', {}, `State as of version ${to.value}:`), h('pre', { id: 'state-as-of' }, json(b)),
            h('p.muted', {}, `Changes from version ${from.value} to ${to.value}:`), diffTable(a, b));
        } catch (e) { out.replaceChildren(h('p.error', {}, e.message)); }
      };
      view.append(h('div.card', {}, h('h2', {}, 'Versions'), h('form.inline', { id: 'diff-form', onsubmit: (ev) => { ev.preventDefault(); show(); } },
        h('label', {}, 'From version'), from, h('label', {}, 'to version'), to, h('button', { type: 'submit' }, 'Compare')), out));
    }
    view.append(h('div.card', {}, h('h2', {}, 'Timeline'), h('table', { id: 'timeline' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Event'), h('th', {}, 'Source'), h('th.num', {}, 'Base'), h('th', {}, 'Changes'),
        h('th', {}, 'Decision'), h('th.num', {}, 'Version'), h('th', {}, 'Audit'))),
      h('tbody', {}, tl.events.map((t) => h('tr', { 'data-event': t.event.id },
        h('td.mono', {}, h('a', { href: `#/events?id=${t.event.id}` }, t.event.id.slice(0, 13) + '…'), h('br'), h('span.muted', {}, t.event.timestamp)),
        h('td', {}, t.event.source), h('td.num', {}, t.event.base_version), h('td', {}, h('pre', {}, JSON.stringify(t.event.changes))),
        h('td', {}, h('span.pill.' + t.decision, {}, t.decision), t.reason ? h('div.muted', {}, t.reason) : null,
          t.duplicates ? h('div.muted', {}, `sent again ${t.duplicates}×`) : null),
        h('td.num', {}, t.version === null ? '' : t.version),
        h('td', {}, h('details', {}, h('summary', {}, `${t.audit.length} entries`),
          h('ul', {}, t.audit.map((a) => h('li', {}, h('a', { href: `#/audit?entry=${a.id}` }, a.action), ` ${a.created_at}`,
            a.detail ? h('pre', {}, JSON.stringify(a.detail)) : null)))))))))));
  };

  // ---- events -------------------------------------------------------------------------------
  pages.events = async (view, q) => {
    view.append(h('h1', {}, 'Event lookup'));
    const input = h('input', { id: 'event-query', size: 70, placeholder: 'event id (UUIDv7) or fingerprint (64 hex digits)', value: q.get('id') || '' });
    view.append(h('form.inline.card', { id: 'event-form', onsubmit: (ev) => { ev.preventDefault(); go('events', { id: input.value.trim() }); } },
      input, h('button', { type: 'submit' }, 'Look up')));
    const v = (q.get('id') || '').trim().toLowerCase();
    if (!v) return;
    const events = /^[0-9a-f]{64}$/.test(v)
      ? (await api('GET', envPath(`/events?fingerprint=${v}`))).events
      : [await api('GET', envPath(`/events/${encodeURIComponent(v)}`))];
    if (!events.length) { view.append(h('p.muted', { id: 'event-none' }, 'No event has that fingerprint.')); return; }
    for (const e of events) {
      view.append(h('div.card.event-found', {}, h('h2', {}, `Event ${e.id}`),
        h('p', {}, 'Record ', h('a', { href: `#/records?type=${encodeURIComponent(e.record_type)}&id=${encodeURIComponent(e.record_id)}` }, `${e.record_type}/${e.record_id}`),
          ` · source ${e.source} · base version ${e.base_version} · ${e.processed ? 'processed' : 'not processed yet'}`),
        h('pre', {}, json(e))));
    }
  };

  // ---- dead letters -------------------------------------------------------------------------
  const kDlqPage = 50;
  pages.dlq = async (view, q) => {
    view.append(h('h1', {}, 'Dead letters'));
    const fields = ['record_type', 'reason', 'stage', 'since', 'until'];
    const inputs = Object.fromEntries(fields.map((f) => [f, h('input', { id: `dlq-${f}`, placeholder: f.replace('_', ' '), value: q.get(f) || '', size: f === 'reason' ? 18 : 14 })]));
    const filter = () => Object.fromEntries(fields.filter((f) => inputs[f].value.trim()).map((f) => [f, inputs[f].value.trim()]));
    view.append(h('form.inline.card', { id: 'dlq-filter', onsubmit: (ev) => { ev.preventDefault(); go('dlq', filter()); } },
      ...fields.map((f) => inputs[f]), h('button', { type: 'submit' }, 'Filter')));
    const offset = Number(q.get('offset') || 0);
    const active = Object.fromEntries(fields.filter((f) => q.get(f)).map((f) => [f, q.get(f)]));
    const query = new URLSearchParams({ ...active, offset, limit: kDlqPage }).toString();
    const list = await api('GET', envPath(`/dlq?${query}`));
    const admin = may('admin');
    const selected = new Map(); // event id -> its record, for the confirmation
    const status = h('p', { id: 'dlq-status', role: 'status' });
    const replaySelected = h('button', { id: 'dlq-replay-selected', disabled: true, hidden: !admin }, 'Replay selected');
    const replayAll = h('button', { id: 'dlq-replay-all', hidden: !admin || !list.total }, `Replay all ${list.total} that match…`);
    view.append(h('div.row', {}, h('span', { id: 'dlq-total' }, `${list.total} dead letter${list.total === 1 ? '' : 's'}`), replaySelected, replayAll), status);
    const rows = list.dead_letters.map((d) => {
      const box = h('input', { type: 'checkbox', 'aria-label': `select ${d.event.id}`, hidden: !admin,
        onchange: (ev) => { if (ev.target.checked) selected.set(d.event.id, `${d.event.record_type}/${d.event.record_id}`); else selected.delete(d.event.id); replaySelected.disabled = !selected.size; } });
      return h('tr', { 'data-event': d.event.id }, h('td', {}, box),
        h('td.mono', {}, h('a', { href: `#/dlq-entry?id=${d.event.id}` }, d.event.id)),
        h('td', {}, h('a', { href: `#/records?type=${encodeURIComponent(d.event.record_type)}&id=${encodeURIComponent(d.event.record_id)}` }, `${d.event.record_type}/${d.event.record_id}`)),
        h('td', {}, d.reason), h('td', {}, d.stage), h('td', {}, d.dead_lettered_at));
    });
    view.append(h('table', { id: 'dlq-table' }, h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', {}, 'Event'), h('th', {}, 'Record'),
      h('th', {}, 'Reason'), h('th', {}, 'Stage'), h('th', {}, 'Dead-lettered at'))), h('tbody', {}, rows)));
    const pager = h('div.pager', {},
      h('button.quiet', { id: 'dlq-prev', disabled: offset === 0, onclick: () => go('dlq', { ...active, offset: Math.max(0, offset - kDlqPage) }) }, '← Previous'),
      h('span', {}, list.total ? `${offset + 1}–${Math.min(list.total, offset + kDlqPage)} of ${list.total}` : ''),
      h('button.quiet', { id: 'dlq-next', disabled: offset + kDlqPage >= list.total, onclick: () => go('dlq', { ...active, offset: offset + kDlqPage }) }, 'Next →'));
    view.append(pager);
    // Poison: messages of the DLQ that name no stored event; only an operator can drop them.
    const poison = (await api('GET', envPath('/poison'))).poison;
    if (poison.length) {
      view.append(h('div.card', { id: 'poison' }, h('h2', {}, `${poison.length} poison message${poison.length === 1 ? '' : 's'}`),
        h('p.muted', {}, 'Messages on the raw topic that are not events. The DLQ inspector holds them until they are discarded.'),
        h('table', {}, h('tbody', {}, poison.map((m) => h('tr', { 'data-message': m.message_id }, h('td.mono', {}, m.message_id),
          h('td', {}, m.reason), h('td', {}, m.published_at), h('td', {}, h('pre', {}, m.data)),
          h('td', {}, admin ? h('button.danger', { onclick: async () => {
            if (!await confirmDialog(`Discard poison message ${m.message_id}?`, h('p', {}, 'It is acknowledged at its next delivery (within 30 s) and never delivered again.'), 'Discard', true)) return;
            await api('POST', envPath(`/poison/${encodeURIComponent(m.message_id)}:discard`));
            status.textContent = `Discarded poison message ${m.message_id}; it leaves within 30 s.`;
          } }, 'Discard') : null)))))));
    }
    replaySelected.onclick = async () => {
      const ids = [...selected.keys()];
      if (!await confirmDialog(`Replay ${ids.length} dead letter${ids.length === 1 ? '' : 's'}?`,
        h('div', {}, h('p', {}, 'These go back to the merge stage, in this order:'),
          h('ol', { id: 'replay-selection' }, ids.map((i) => h('li.mono', {}, `${selected.get(i)} — ${i}`)))), `Replay ${ids.length}`)) return;
      let done = 0;
      for (const i of ids) { await api('POST', envPath(`/dlq/${i}:replay`)); done++; }
      status.textContent = `Replayed ${done}.`;
      route();
    };
    replayAll.onclick = async () => {
      const qs = new URLSearchParams(active).toString();
      const preview = await api('POST', envPath(`/dlq:replay?${qs ? `${qs}&` : ''}dry_run=true`));
      const body = h('div', { id: 'dry-run' }, h('p', {}, `A dry run: these ${preview.total} dead letters would be replayed, in this order:`),
        h('ol', {}, preview.dead_letters.slice(0, 200).map((d) => h('li.mono', {}, `${d.event.record_type}/${d.event.record_id} — ${d.event.id} (${d.reason})`))),
        preview.total > 200 ? h('p.muted', {}, `… and ${preview.total - 200} more.`) : null);
      if (!await confirmDialog(`Replay all ${preview.total} that match?`, body, `Replay ${preview.total}`)) return;
      const done = await api('POST', envPath(`/dlq:replay${qs ? `?${qs}` : ''}`));
      status.textContent = `Replayed ${done.total}.`;
      route();
    };
  };

  pages['dlq-entry'] = async (view, q) => {
    const id = q.get('id');
    const d = await api('GET', envPath(`/dlq/${encodeURIComponent(id)}`));
    view.append(h('p', {}, h('a', { href: '#/dlq' }, '← Dead letters')), h('h1', {}, `Dead letter ${id}`));
    view.append(h('div.card', { id: 'dlq-detail' },
      h('p', {}, 'Record ', h('a', { href: `#/records?type=${encodeURIComponent(d.event.record_type)}&id=${encodeURIComponent(d.event.record_id)}` }, `${d.event.record_type}/${d.event.record_id}`),
        ` · reason ${d.reason} · stage ${d.stage} · dead-lettered at ${d.dead_lettered_at}`),
      h('h2', {}, 'Event'), h('pre', {}, json(d.event)),
      h('h2', {}, 'Failure history'), h('table', { id: 'dlq-history' }, h('tbody', {}, (d.audit || []).map((a) => h('tr', {},
        h('td', {}, a.created_at), h('td', {}, h('span.pill', {}, a.action)), h('td', {}, h('pre', {}, a.detail ? JSON.stringify(a.detail) : ''))))))));
    if (!may('admin')) return;
    const note = h('input', { id: 'resolve-note', size: 50, placeholder: 'note for the audit (optional)' });
    const status = h('p', { id: 'resolve-status', role: 'status' });
    const act = async (what) => {
      const labels = { replay: 'Replay', accept: 'Accept', discard: 'Discard' };
      const text = { replay: 'The event goes back to the merge stage and is decided again.',
        accept: 'The change is applied on the record\'s current version, whatever its base.',
        discard: 'The dead letter is closed; its change is never applied.' };
      if (!await confirmDialog(`${labels[what]} ${id}?`, h('p', {}, text[what]), labels[what], what === 'discard')) return;
      if (what === 'replay') await api('POST', envPath(`/dlq/${id}:replay`));
      else await api('POST', envPath(`/dlq/${id}:resolve`), { resolution: what, note: note.value });
      status.textContent = `${labels[what]}: done.`;
    };
    view.append(h('div.card', {}, h('h2', {}, 'Repair'), h('div.row', {}, note,
      h('button', { id: 'dlq-replay', onclick: () => act('replay').catch((e) => { status.textContent = e.message; }) }, 'Replay'),
      h('button', { id: 'dlq-accept', onclick: () => act('accept').catch((e) => { status.textContent = e.message; }) }, 'Accept'),
      h('button.danger', { id: 'dlq-discard', onclick: () => act('discard').catch((e) => { status.textContent = e.message; }) }, 'Discard')), status));
  };

  // ---- audit --------------------------------------------------------------------------------
  function showVerification(box, s) {
    const bar = h('div');
    bar.style.width = `${Math.round((s.progress || 0) * 100)}%`;
    const verdict = s.running ? h('p', {}, `Verifying… ${fmt(s.entries_checked)} entries checked`)
      : s.error ? h('p.error', {}, `The verification could not finish: ${s.error.message}`)
        : s.ok ? h('p.ok', { id: 'audit-ok' }, `The audit chain is intact: ${fmt(s.entries_checked)} entries verified in ${s.heads.length} chain${s.heads.length === 1 ? '' : 's'}.`)
          : h('p.error', { id: 'audit-broken' }, `The chain breaks at entry `, h('a', { href: `#/audit?entry=${s.first_bad_entry}` }, s.first_bad_entry),
            ` (position ${fmt(s.position)}): ${s.problem}`);
    box.replaceChildren(h('div.progress', { id: 'audit-progress', role: 'progressbar', 'aria-valuenow': Math.round((s.progress || 0) * 100) }, bar), verdict,
      h('p.muted', {}, `Started ${s.started_at} by ${s.started_by || 'unknown'}${s.finished_at ? `, finished ${s.finished_at}` : ''}.`));
  }

  pages.audit = async (view, q) => {
    view.append(h('h1', {}, 'Audit'));
    const box = h('div', { id: 'audit-verify' });
    const poll = async () => {
      const s = await api('GET', envPath('/audit:verify'));
      showVerification(box, s);
      if (!s.running) stopPolling();
    };
    const start = h('button', { id: 'audit-verify-start', onclick: async () => {
      const s = await api('POST', envPath('/audit:verify'));
      showVerification(box, s);
      startPolling(view, () => poll().catch((e) => { box.textContent = e.message; stopPolling(); }), 400);
    } }, 'Verify the chain');
    view.append(h('div.card', {}, h('h2', {}, 'Verification'), h('p.muted', {}, 'Recomputes every fingerprint and every writer slot\'s hash chain, up to the heads the store recorded.'), start, box));
    const last = await api('GET', envPath('/audit:verify'));
    if (last.started) showVerification(box, last);
    if (last.running) startPolling(view, () => poll().catch(() => stopPolling()), 400);
    const entry = h('input', { id: 'audit-entry', size: 40, placeholder: 'audit entry id', value: q.get('entry') || '' });
    view.append(h('form.inline.card', { id: 'audit-entry-form', onsubmit: (ev) => { ev.preventDefault(); go('audit', { entry: entry.value.trim() }); } },
      h('label', {}, 'Entry'), entry, h('button', { type: 'submit' }, 'Show its chain')));
    if (!q.get('entry')) return;
    const around = await api('GET', envPath(`/audit/${encodeURIComponent(q.get('entry'))}`));
    view.append(h('div.card', {}, h('h2', {}, `Writer slot ${around.slot}, around entry ${around.entry.id}`),
      h('table', { id: 'audit-chain' }, h('thead', {}, h('tr', {}, h('th', {}, 'Entry'), h('th', {}, 'Action'), h('th', {}, 'Record'),
        h('th', {}, 'Chain hash'), h('th', {}, 'Link'))),
      h('tbody', {}, around.chain.map((c, i) => h('tr', { class: [i === around.position ? 'selected-row' : '', c.links === false ? 'broken' : ''].join(' ').trim() || null },
        h('td.mono', {}, c.entry.id), h('td', {}, c.entry.action), h('td', {}, `${c.entry.record_type}/${c.entry.record_id}`),
        h('td.mono', {}, c.entry.chain_hash.slice(0, 16) + '…'),
        h('td', {}, c.links === null ? '—' : c.links ? h('span.ok', {}, 'links') : h('span.error', {}, 'broken'))))))));
  };

  // ---- tokens -------------------------------------------------------------------------------
  pages.tokens = async (view) => {
    view.append(h('h1', {}, 'Tokens'));
    if (!may('admin')) { view.append(h('p.error', {}, 'Tokens are for admins.')); return; }
    const made = h('div', { id: 'token-made' });
    const name = h('input', { id: 'token-name', placeholder: 'name', required: true });
    const roles = ['read', 'publish', 'subscribe', 'admin'].map((r) => h('label', {}, h('input', { type: 'checkbox', value: r, checked: r === 'read' }), ` ${r}`));
    const ttl = h('input', { id: 'token-ttl', type: 'number', min: 1, placeholder: 'expires in days (optional)' });
    view.append(h('form.inline.card', { id: 'token-form', onsubmit: async (ev) => {
      ev.preventDefault();
      const body = { name: name.value, roles: roles.map((l) => l.querySelector('input')).filter((i) => i.checked).map((i) => i.value) };
      if (ttl.value) body.ttl_seconds = Number(ttl.value) * 86400;
      try {
        const t = await api('POST', envPath('/tokens'), body);
        made.replaceChildren(h('div.card', {}, h('p', {}, `Token ${t.id} (${t.name}) made. It is shown this once: copy it now.`), h('pre', { id: 'token-secret' }, t.token)));
        await list();
      } catch (e) { made.replaceChildren(h('p.error', {}, e.message)); }
    } }, h('label', {}, 'New token'), name, ...roles, ttl, h('button', { type: 'submit' }, 'Create')), made);
    const body = h('tbody');
    view.append(h('table', { id: 'tokens-table' }, h('thead', {}, h('tr', {}, h('th', {}, 'Id'), h('th', {}, 'Name'), h('th', {}, 'Roles'),
      h('th', {}, 'Created'), h('th', {}, 'Expires'), h('th', {}, 'Last used'), h('th', {}, 'Revoked'), h('th', {}, ''))), body));
    const list = async () => {
      const all = await api('GET', envPath('/tokens'));
      body.replaceChildren(...all.tokens.map((t) => h('tr', { 'data-token': t.id }, h('td.mono', {}, t.id), h('td', {}, t.name), h('td', {}, t.roles.join(', ')),
        h('td', {}, t.created_at), h('td', {}, t.expires_at || 'never'), h('td', {}, t.last_used_at || '—'), h('td', {}, t.revoked_at || ''),
        h('td', {}, t.revoked_at ? '' : h('button.danger', { onclick: async () => {
          if (!await confirmDialog(`Revoke token ${t.id} (${t.name})?`, h('p', {}, 'It stops working on every process within seconds.'), 'Revoke', true)) return;
          await api('POST', envPath(`/tokens/${t.id}:revoke`));
          await list();
        } }, 'Revoke')))));
    };
    await list();
  };

  // ---- start --------------------------------------------------------------------------------
  const signInCard = $('sign-in');
  $('sign-in-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    signIn($('token-input').value.trim());
  });
  $('sign-out').addEventListener('click', () => signOut('Signed out.'));
})();
