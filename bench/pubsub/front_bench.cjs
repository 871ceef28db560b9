// One round of the Pub/Sub front benchmark with Google's official Node client: publish N
// messages of SIZE bytes to a fresh topic (the client's default batching), then receive and ack
// them all through StreamingPull (the client's default flow control). Prints one JSON line.
//
// Environment: PUBSUB_EMULATOR_HOST, PUBSUB_PROJECT_ID, BENCH_MESSAGES, BENCH_SIZE, and for
// backbone BACKBONE_PUBSUB_TOKEN (tests/pubsub/node/target.cjs builds the client).
'use strict';

const target = require('../../tests/pubsub/node/target.cjs');

const messages = Number(process.env.BENCH_MESSAGES || 20000);
const size = Number(process.env.BENCH_SIZE || 256);

async function main() {
  const ps = target.pubsub(target.token);
  const run = `bench${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const [topic] = await ps.createTopic(`${run}-topic`);
  const [sub] = await topic.createSubscription(`${run}-sub`, {ackDeadlineSeconds: 60});
  const data = Buffer.alloc(size, 'x');

  const t0 = process.hrtime.bigint();
  const sent = [];
  for (let i = 0; i < messages; i++) sent.push(topic.publishMessage({data}));
  await Promise.all(sent);
  const t1 = process.hrtime.bigint();

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
  const t2 = process.hrtime.bigint();
  await done;
  await sub.close();  // flushes the last acks
  const t3 = process.hrtime.bigint();
  if (failure) throw failure;

  const seconds = (a, b) => Number(b - a) / 1e9;
  console.log(JSON.stringify({
    target: target.kind,
    messages,
    size,
    publish_per_s: Math.round(messages / seconds(t0, t1)),
    pull_ack_per_s: Math.round(messages / seconds(t2, t3)),
  }));
  await sub.delete();
  await topic.delete();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
