// Google's official Node client (@google-cloud/pubsub) against a Pub/Sub endpoint: backbone's
// front, or Google's emulator (target.cjs says which). The same cases run against both; where
// the emulator is known to differ, its case must fail there (EMULATOR_DIFFERS says how), and a
// case that starts to pass on the emulator fails the suite, so the list stays true.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const target = require('./target.cjs');

// Cases that Google's emulator gets wrong, with what it does instead (seen with
// google-cloud-cli-pubsub-emulator 528.0.0).
const EMULATOR_DIFFERS = {
  'a nacked message comes back after the retry policy\'s backoff':
      'it redelivers a nacked message at once (after ~150 ms), ignoring the retry policy',
  'an ordered key dead-letters after 5 attempts (deliveryAttempt 1 to 5) and flows on':
      'it delivers the ordered message 5 times, but nothing reaches the dead-letter topic',
};

const run = `t${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
const name = (what) => `${run}-${what}`;
const ps = target.pubsub(target.token);

function pubsubCase(title, fn, {timeout = 60_000} = {}) {
  const differs = !target.isBackbone && EMULATOR_DIFFERS[title];
  test(title, {timeout}, async () => {
    if (!differs) return fn();
    await assert.rejects(fn, `the emulator now passes "${title}": update EMULATOR_DIFFERS`);
    console.log(`# emulator differs on "${title}": ${differs}`);
  });
}

async function waitFor(check, ms, what) {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const seconds = (d) => Number(d?.seconds ?? 0) + (d?.nanos ?? 0) / 1e9;

// Receives from `sub` until `done()` says so, calling `onMessage(m)` for each message.
async function consume(sub, onMessage, done, ms, what) {
  let failure;
  sub.on('message', (m) => {
    try {
      onMessage(m);
    } catch (e) {
      failure = failure || e;
    }
  });
  sub.on('error', (e) => {
    failure = failure || e;
  });
  try {
    await waitFor(() => failure || done(), ms, what);
    if (failure) throw failure;
  } finally {
    await sub.close();
  }
}

// Publishes `perKey` messages on each of `keys` ordering keys, as "k:i", interleaved.
async function publishOrdered(topic, keys, perKey) {
  const sent = [];
  for (let i = 0; i < perKey; i++) {
    for (let k = 0; k < keys; k++) {
      sent.push(topic.publishMessage({data: Buffer.from(`${k}:${i}`), orderingKey: `key-${k}`}));
    }
  }
  return Promise.all(sent);
}

pubsubCase('policies are kept as created, and updates change only what they name', async () => {
  const [topic] = await ps.createTopic(name('policy-topic'));
  const [dlq] = await ps.createTopic(name('policy-dlq'));
  const [sub] = await topic.createSubscription(name('policy-sub'), {
    ackDeadlineSeconds: 20,
    enableMessageOrdering: true,
    retryPolicy: {minimumBackoff: {seconds: 2}, maximumBackoff: {seconds: 300}},
    deadLetterPolicy: {deadLetterTopic: dlq.name, maxDeliveryAttempts: 7},
    messageRetentionDuration: {seconds: 3600},
    labels: {team: 'sync'},
  });
  const check = (m, ackDeadline) => {
    assert.equal(m.ackDeadlineSeconds, ackDeadline);
    assert.equal(m.enableMessageOrdering, true);
    assert.equal(seconds(m.retryPolicy.minimumBackoff), 2);
    assert.equal(seconds(m.retryPolicy.maximumBackoff), 300);
    assert.equal(m.deadLetterPolicy.deadLetterTopic, dlq.name);
    assert.equal(m.deadLetterPolicy.maxDeliveryAttempts, 7);
    assert.equal(seconds(m.messageRetentionDuration), 3600);
    assert.equal(m.labels.team, 'sync');
    assert.equal(m.topic, topic.name);
  };
  const [created] = await sub.getMetadata();
  check(created, 20);
  await sub.setMetadata({ackDeadlineSeconds: 45});
  const [updated] = await sub.getMetadata();
  check(updated, 45);
  const [subs] = await topic.getSubscriptions();
  assert.deepEqual(subs.map((s) => s.name), [sub.name]);
  await sub.delete();
  await topic.delete();
  await dlq.delete();
});

pubsubCase('ordered publish: StreamingPull delivers each key in order, keys interleaved',
           async () => {
  const [topic] = await ps.createTopic(name('order-topic'));
  topic.setPublishOptions({messageOrdering: true});
  const [sub] = await topic.createSubscription(name('order-sub'), {enableMessageOrdering: true});
  const keys = 10, perKey = 20;
  await publishOrdered(topic, keys, perKey);
  const next = new Array(keys).fill(0);
  let received = 0;
  await consume(sub, (m) => {
    const [k, i] = m.data.toString().split(':').map(Number);
    assert.equal(m.orderingKey, `key-${k}`);
    if (i < next[k]) return m.ack();  // a redelivery of one already seen
    assert.equal(i, next[k], `key-${k}: got ${i} before ${next[k]}`);
    next[k]++;
    received++;
    m.ack();
  }, () => received === keys * perKey, 30_000, `${keys * perKey} messages`);
  await sub.delete();
  await topic.delete();
});

pubsubCase('a nacked message comes back after the retry policy\'s backoff', async () => {
  const [topic] = await ps.createTopic(name('nack-topic'));
  const [sub] = await topic.createSubscription(name('nack-sub'), {
    retryPolicy: {minimumBackoff: {seconds: 2}, maximumBackoff: {seconds: 2}},
  });
  await topic.publishMessage({data: Buffer.from('again')});
  const times = [];
  await consume(sub, (m) => {
    times.push(Date.now());
    if (times.length === 1) return m.nack();
    m.ack();
  }, () => times.length >= 2, 20_000, 'the redelivery');
  const gap = times[1] - times[0];
  assert.ok(gap >= 1500, `redelivered after ${gap} ms, before the 2 s backoff`);
  assert.ok(gap < 10_000, `redelivered only after ${gap} ms`);
  await sub.delete();
  await topic.delete();
});

pubsubCase('an ordered key dead-letters after 5 attempts (deliveryAttempt 1 to 5) and flows on',
           async () => {
  const [topic] = await ps.createTopic(name('dl-topic'));
  topic.setPublishOptions({messageOrdering: true});
  const [dlq] = await ps.createTopic(name('dl-dlq'));
  const [dlqSub] = await dlq.createSubscription(name('dl-dlq-sub'));
  const [sub] = await topic.createSubscription(name('dl-sub'), {
    enableMessageOrdering: true,
    deadLetterPolicy: {deadLetterTopic: dlq.name, maxDeliveryAttempts: 5},
    retryPolicy: {minimumBackoff: {nanos: 100e6}, maximumBackoff: {nanos: 200e6}},
  });
  const keys = 10, perKey = 20, poison = '3:5';
  await publishOrdered(topic, keys, perKey);
  const attempts = [];
  const next = new Array(keys).fill(0);
  let received = 0;
  await consume(sub, (m) => {
    const text = m.data.toString();
    const [k, i] = text.split(':').map(Number);
    if (text === poison) {
      attempts.push(m.deliveryAttempt);
      if (attempts.length === 1) next[k] = i + 1;
      return m.nack();
    }
    if (i < next[k]) return m.ack();  // a redelivery of one already seen
    // Pub/Sub's promise: each message's first delivery follows its predecessor's.
    assert.equal(i, next[k], `key-${k}: got ${i} before ${next[k]}`);
    // backbone's, beyond it: a key's next message waits until the one before is acked or
    // dead-lettered (Pub/Sub may hand out the rest of the key meanwhile, and redeliver it).
    if (target.isBackbone && k === 3 && i > 5) {
      assert.equal(attempts.length, 5, 'key-3 moved on before its dead letter');
    }
    next[k] = i + 1;
    received++;
    m.ack();
  }, () => received === keys * perKey - 1 && attempts.length >= 5, 45_000,
     'every message but the dead letter, and its 5 attempts');
  assert.deepEqual(attempts, [1, 2, 3, 4, 5]);
  let dead;
  await consume(dlqSub, (m) => {
    dead = m;
    m.ack();
  }, () => dead !== undefined, 15_000, 'the dead letter');
  assert.equal(dead.data.toString(), poison);
  assert.equal(dead.orderingKey, 'key-3');
  for (const s of [sub, dlqSub]) await s.delete();
  for (const t of [topic, dlq]) await t.delete();
}, {timeout: 90_000});

pubsubCase('an unacked message comes back when its ack deadline passes; ModifyAckDeadline moves it',
           async () => {
  const [topic] = await ps.createTopic(name('deadline-topic'));
  const [sub] = await topic.createSubscription(name('deadline-sub'), {ackDeadlineSeconds: 10});
  const client = target.subscriberClient(target.token);
  const pullOne = async (ms) => {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      const [resp] = await client.pull({subscription: sub.name, maxMessages: 1,
                                        returnImmediately: true});
      if (resp.receivedMessages.length > 0) return resp.receivedMessages[0];
      await new Promise((r) => setTimeout(r, 100));
    }
    return undefined;
  };
  await topic.publishMessage({data: Buffer.from('lease')});
  // Held past its 10 s deadline, it comes back.
  const first = await pullOne(10_000);
  assert.ok(first, 'the message was not delivered');
  const t0 = Date.now();
  const again = await pullOne(20_000);
  assert.ok(again, 'not redelivered after the ack deadline');
  assert.equal(again.message.messageId, first.message.messageId);
  assert.ok(Date.now() - t0 >= 8_000, `redelivered after ${Date.now() - t0} ms, before 10 s`);
  // Extended to 60 s, it stays away; shortened to 1 s, it comes back soon.
  await client.modifyAckDeadline({subscription: sub.name, ackIds: [again.ackId],
                                  ackDeadlineSeconds: 60});
  assert.equal(await pullOne(3_000), undefined, 'delivered again within an extended deadline');
  await client.modifyAckDeadline({subscription: sub.name, ackIds: [again.ackId],
                                  ackDeadlineSeconds: 1});
  const third = await pullOne(8_000);
  assert.ok(third, 'not redelivered after the shortened deadline');
  await client.acknowledge({subscription: sub.name, ackIds: [third.ackId]});
  assert.equal(await pullOne(2_000), undefined, 'delivered again after its ack');
  await client.close();
  await sub.delete();
  await topic.delete();
}, {timeout: 90_000});

// Isolation needs credentials, which the emulator does not have.
const isolation = target.isBackbone ? test : test.skip;

isolation('environment isolation: another environment\'s resources are PERMISSION_DENIED',
          async () => {
  const mine = await ps.createTopic(name('iso-topic')).then(([t]) => t);
  const other = target.pubsub(target.otherToken);
  const denied = {code: 7};  // PERMISSION_DENIED
  // The topology's resources of the other environment, through the sandbox token.
  await assert.rejects(ps.topic(`events.raw.${target.otherEnv}`).getMetadata(), denied);
  await assert.rejects(ps.topic(`events.dlq.${target.otherEnv}`).publishMessage(
      {data: Buffer.from('x')}), denied);
  await assert.rejects(ps.subscription(`events.merged.${target.otherEnv}.sync`).getMetadata(),
                       denied);
  await assert.rejects(ps.topic(`events.merged.${target.otherEnv}`)
                           .createSubscription(name('iso-steal')), denied);
  // This run's topic, through the other environment's token.
  await assert.rejects(other.topic(mine.name).getMetadata(), denied);
  await assert.rejects(other.topic(mine.name).publishMessage({data: Buffer.from('x')}), denied);
  await assert.rejects(other.topic(mine.name).delete(), denied);
  // Lists hold only the caller's own.
  const [topics] = await ps.getTopics();
  assert.ok(topics.some((t) => t.name === mine.name));
  assert.ok(!topics.some((t) => t.name.endsWith(`.${target.otherEnv}`)));
  const [theirs] = await other.getTopics();
  assert.ok(!theirs.some((t) => t.name === mine.name));
  // No token, or an unknown one: UNAUTHENTICATED.
  const unknown = target.pubsub('bb_not-a-token');
  await assert.rejects(unknown.topic(mine.name).getMetadata(), {code: 16});
  await mine.delete();
});

isolation('anonymous loopback calls act in the --pubsub-anonymous environment only', async () => {
  const anonymous = target.pubsub(undefined);
  const [topic] = await anonymous.createTopic(name('anon-topic'));
  const [meta] = await topic.getMetadata();
  assert.equal(meta.labels.env, target.env);
  await assert.rejects(anonymous.topic(`events.raw.${target.otherEnv}`).getMetadata(), {code: 7});
  await topic.delete();
});
