// One round of the Pub/Sub front benchmark with Google's official Node client: publish N
// messages of SIZE bytes to a fresh topic (the client's default batching), then receive and ack
// them all through StreamingPull (the client's default flow control). Prints one JSON line.
//
// Phase `ordered` instead runs the shape of Google's ordered-messages acceptance test
// (system-test/fixtures/ordered-messages.json of nodejs-pubsub: 10,000 messages, 4 keys of 1,600
// messages each, 1,600 without a key, and 2,000 keys of one message): published with ordering,
// received on an ordered subscription, each key's messages checked in order, until all are acked.
//
// Environment: PUBSUB_EMULATOR_HOST, PUBSUB_PROJECT_ID, BENCH_MESSAGES, BENCH_SIZE, and for
// backbone BACKBONE_PUBSUB_TOKEN (tests/pubsub/node/target.cjs builds the client).
'use strict';

const target = require('../../tests/pubsub/node/target.cjs');

const messages = Number(process.env.BENCH_MESSAGES || 20000);
const size = Number(process.env.BENCH_SIZE || 256);
const pull = (process.env.BENCH_PHASES || 'publish,pull').includes('pull');
const ordered = (process.env.BENCH_PHASES || '').includes('ordered');

// The acceptance fixture's shape, in its order: round-robin over the four hot keys and the
// unkeyed stream, then the single-message keys.
function orderedInput() {
  const input = [];
  for (let i = 0; i < 1600; i++) {
    for (const key of ['', 'AAA', 'BBB', 'CCC', 'DDD']) input.push({key, message: `${key}-${i}`});
  }
  for (let k = 0; k < 2000; k++) input.push({key: `K${k}`, message: `K${k}-0`});
  return input;
}

async function orderedRound(ps, run) {
  const [topic] = await ps.createTopic(`${run}-ordered`);
  topic.setPublishOptions({messageOrdering: true});
  const [sub] = await topic.createSubscription(`${run}-ordered-sub`, {enableMessageOrdering: true});
  const input = orderedInput();
  const next = new Map();  // key -> index of the next message expected
  let received = 0;
  let failure;
  const t0 = process.hrtime.bigint();
  const done = new Promise((resolve) => {
    sub.on('message', (m) => {
      const key = m.orderingKey || '';
      const i = next.get(key) || 0;
      const expected = key ? `${key}-${i}` : null;
      if (expected !== null && m.data.toString() !== expected && !failure) {
        failure = new Error(`key ${key}: expected ${expected}, got ${m.data.toString()}`);
        resolve();
      }
      next.set(key, i + 1);
      m.ack();
      if (++received === input.length) resolve();
    });
    sub.on('error', (e) => {
      failure = e;
      resolve();
    });
  });
  await Promise.all(input.map(({key, message}) =>
    topic.publishMessage(key ? {data: Buffer.from(message), orderingKey: key}
                             : {data: Buffer.from(message)})));
  await done;
  await sub.close();
  const t1 = process.hrtime.bigint();
  if (failure) throw failure;
  console.log(JSON.stringify({target: target.kind, messages: input.length, size: 0,
                              ordered_seconds: Number(t1 - t0) / 1e9}));
  await sub.delete();
  await topic.delete();
}

async function main() {
  const ps = target.pubsub(target.token);
  const run = `bench${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  if (ordered) return orderedRound(ps, run);
  const [topic] = await ps.createTopic(`${run}-topic`);
  const [sub] = pull ? await topic.createSubscription(`${run}-sub`, {ackDeadlineSeconds: 60})
                     : [undefined];
  const data = Buffer.alloc(size, 'x');

  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const sent = [];
  for (let i = 0; i < messages; i++) sent.push(topic.publishMessage({data}));
  await Promise.all(sent);
  const t1 = process.hrtime.bigint();
  const c1 = process.cpuUsage();

  const seconds = (a, b) => Number(b - a) / 1e9;
  // The client's CPU time over the phase's wall time: near 1.0, the (single-threaded) client is
  // what limits the figure.
  const busy = (ca, cb, ta, tb) =>
    Number(((cb.user + cb.system - ca.user - ca.system) / 1e6 / seconds(ta, tb)).toFixed(2));
  const out = {target: target.kind, messages, size,
               publish_per_s: Math.round(messages / seconds(t0, t1)),
               publish_client_cpu: busy(c0, c1, t0, t1)};
  if (!pull) {
    console.log(JSON.stringify(out));
    await topic.delete();
    return;
  }

  let received = 0;
  let failure;
  const done = new Promise((resolve) => {
    sub.on('message', (m) => {
      m.ack();
      if (++received === messages) resolve();
    });
    sub.on('error', (e) => {
      failure = e;
      resolve();
    });
  });
  const c2 = process.cpuUsage();
  const t2 = process.hrtime.bigint();
  await done;
  await sub.close();  // flushes the last acks
  const t3 = process.hrtime.bigint();
  const c3 = process.cpuUsage();
  if (failure) throw failure;

  out.pull_ack_per_s = Math.round(messages / seconds(t2, t3));
  out.pull_ack_client_cpu = busy(c2, c3, t2, t3);
  console.log(JSON.stringify(out));
  await sub.delete();
  await topic.delete();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
