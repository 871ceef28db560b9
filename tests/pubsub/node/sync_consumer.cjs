// An external consumer of the sync subscription, with Google's official Node client: it
// streams from the front at PUBSUB_EMULATOR_HOST (target.cjs), acks every message, and stops once
// it has seen SYNC_EXPECTED distinct merged versions (or after SYNC_TIMEOUT_MS). It prints one
// JSON line: how many messages came, how many were distinct, and how many came out of order
// (a record's version not above the last one seen of that record), redelivered or unreadable.
//
// Environment, beside target.cjs's: SYNC_SUBSCRIPTION, SYNC_EXPECTED, SYNC_TIMEOUT_MS.
'use strict';

const target = require('./target.cjs');

const expected = Number(process.env.SYNC_EXPECTED);
const timeoutMs = Number(process.env.SYNC_TIMEOUT_MS || 120000);
const name = process.env.SYNC_SUBSCRIPTION;
if (!name || !(expected > 0)) throw new Error('SYNC_SUBSCRIPTION and SYNC_EXPECTED are needed');

const client = target.pubsub(target.token);
const subscription = client.subscription(name, {flowControl: {maxMessages: 200}});
const seen = new Set();
const last = new Map();
const report = {received: 0, distinct: 0, disorder: 0, redelivered: 0, unreadable: 0};

let done = false;
function finish(reason) {
  if (done) return;
  done = true;
  report.reason = reason;
  // close() flushes the acks and waits for their answers. (Removing the last 'message' listener
  // would close the subscription too, and a second close() would not wait for that flush.)
  subscription.close().then(() => client.close()).finally(() => {
    process.stdout.write(JSON.stringify(report) + '\n');
    process.exit(0);
  });
}

const timer = setTimeout(() => finish('timeout'), timeoutMs);
subscription.on('error', (e) => {
  report.error = String(e && e.message);
  clearTimeout(timer);
  finish('error');
});
subscription.on('message', (m) => {
  if (done) return;  // not acked: redelivered to whoever pulls next
  report.received++;
  let data;
  try {
    data = JSON.parse(m.data.toString('utf8'));
  } catch (_) {
    report.unreadable++;
    m.ack();
    return;
  }
  const id = `${data.event_id}/${data.version}`;
  if (seen.has(id)) {
    report.redelivered++;
  } else {
    seen.add(id);
    report.distinct++;
    const key = m.orderingKey;
    if (last.has(key) && data.version <= last.get(key)) report.disorder++;
    last.set(key, data.version);
  }
  m.ack();
  if (report.distinct >= expected) {
    clearTimeout(timer);
    // Let the acks go out before closing (close() flushes them too).
    finish('complete');
  }
});
