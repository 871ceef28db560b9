// Google's official Node client (@google-cloud/pubsub) against a Pub/Sub endpoint: backbone's
// front, or Google's emulator (target.cjs says which). The same cases run against both; where
// the emulator is known to differ, its case must fail there (EMULATOR_DIFFERS says how), and a
// case that starts to pass on the emulator fails the suite, so the list stays true.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const target = require('./target.cjs');
const {SchemaTypes, SchemaViews, Encodings} = require('@google-cloud/pubsub');

// Cases that Google's emulator gets wrong, with what it does instead (seen with
// google-cloud-cli-pubsub-emulator 528.0.0).
const STREAMED_KEYS = 'ordered keys stream: a key is out whole, in order, on one of the ' +
    'client\'s streams; a nack brings the key\'s later messages back after it';
const DETACH = 'a detached subscription says so, and a pull of it is FAILED_PRECONDITION';
const SNAPSHOTS = 'snapshots are made, listed and removed; a seek to one, to a time, or ahead ' +
    '(a purge) moves what is acked';
const IAM = 'an IAM policy binds a Pub/Sub role to a token: "may I publish here?" says no, ' +
    'then yes, and the publish follows; a bad role, a condition and a stale etag are refused';
const EMULATOR_DIFFERS = {
  [DETACH]: 'it does not implement DetachSubscription (UNIMPLEMENTED)',
  [SNAPSHOTS]: 'a seek to a time brings back no message acked before it (Pub/Sub promises that ' +
      'only with retain_acked_messages or a topic retention; backbone brings back what it holds)',
  'a nacked message comes back after the retry policy\'s backoff':
      'it redelivers a nacked message at once (after ~150 ms), ignoring the retry policy',
  'an ordered key dead-letters after 5 attempts (deliveryAttempt 1 to 5) and flows on':
      'it delivers the ordered message 5 times, but nothing reaches the dead-letter topic',
  [IAM]: 'it does not serve google.iam.v1.IAMPolicy (UNIMPLEMENTED)',
  [STREAMED_KEYS]:
      'it hands out 100 messages of an ordered subscription (33, 33 and 34 of the 3 keys) and ' +
      'no more until some are acked, below the client\'s flow control of 1,000',
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

// `got`, if given, says what there was instead when the wait times out.
async function waitFor(check, ms, what, got) {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}` + (got ? `: ${got()}` : ''));
    }
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

pubsubCase('the shape of Google\'s ordered-messages fixture (10,000 messages over 2,005 keys) ' +
           'arrives in order per key while the client acks as it goes', async () => {
  const [topic] = await ps.createTopic(name('fixture-topic'));
  topic.setPublishOptions({messageOrdering: true});
  const [sub] = await topic.createSubscription(name('fixture-sub'),
                                               {enableMessageOrdering: true,
                                                ackDeadlineSeconds: 60});
  // system-test/fixtures/ordered-messages.json of nodejs-pubsub, by its shape: round-robin over
  // four hot keys and unkeyed messages, then 2,000 keys of one message.
  const input = [];
  for (let i = 0; i < 1600; i++) {
    for (const key of ['', 'AAA', 'BBB', 'CCC', 'DDD']) input.push({key, data: `${key}-${i}`});
  }
  for (let k = 0; k < 2000; k++) input.push({key: `K${k}`, data: `K${k}-0`});
  const next = new Map();  // key -> index of the next first delivery
  const firsts = new Set();
  const done = consume(sub, (m) => {
    const key = m.orderingKey;
    const text = m.data.toString();
    m.ack();
    if (!key) return firsts.add(text);
    const i = Number(text.slice(text.lastIndexOf('-') + 1));
    const want = next.get(key) || 0;
    if (i < want) return;  // a redelivery of one already seen
    assert.equal(text, `${key}-${want}`, `key ${key} skipped ahead`);
    next.set(key, want + 1);
    firsts.add(text);
  }, () => firsts.size === input.length, 60_000, `${input.length} messages`);
  await Promise.all(input.map(({key, data}) =>
    topic.publishMessage(key ? {data: Buffer.from(data), orderingKey: key}
                             : {data: Buffer.from(data)})));
  await done;
  await sub.delete();
  await topic.delete();
}, {timeout: 90_000});

pubsubCase(STREAMED_KEYS, async () => {
  const [topic] = await ps.createTopic(name('stream-topic'));
  topic.setPublishOptions({messageOrdering: true});
  const [sub] = await topic.createSubscription(name('stream-sub'),
                                               {enableMessageOrdering: true,
                                                ackDeadlineSeconds: 60});
  const keys = 3, perKey = 300;
  // Nothing is acked until every message is in hand: a key's messages go out without waiting
  // for acks. The client pulls on several streams at once, and the messages are published
  // while they pull: each stream gets some, but each key must stay on one.
  const held = [...Array(keys)].map(() => []);
  let seen = 0;
  const redelivered = [];
  let phase = 'hold';
  sub.on('message', (m) => {
    const [k, i] = m.data.toString().split(':').map(Number);
    if (phase === 'hold') {
      assert.equal(i, held[k].length, `key-${k}: got ${i} after ${held[k].length} of the key`);
      held[k].push(m);
      seen++;
    } else {
      redelivered.push(`${k}:${i}`);
      m.ack();
    }
  });
  let failure;
  sub.on('error', (e) => { failure = e; });
  try {
    await new Promise((r) => setTimeout(r, 1000));  // the client's streams are open
    await publishOrdered(topic, keys, perKey);
    await waitFor(() => failure || seen === keys * perKey, 30_000,
                  `all ${keys * perKey} messages out before any ack`,
                  () => `${held.map((h) => h.length).join(', ')} of each key were out`);
    if (failure) throw failure;
    // Keys 1 and 2 and key 0's first 100 are acked; 0:100 is nacked, 0:101.. are left alone.
    phase = 'after';
    held[0].slice(0, 100).forEach((m) => m.ack());
    held[1].concat(held[2]).forEach((m) => m.ack());
    await new Promise((r) => setTimeout(r, 500));  // the acks are sent before the nack
    held[0][100].nack();
    const want = [...Array(perKey - 100)].map((_, j) => `0:${100 + j}`);
    await waitFor(() => failure || redelivered.length >= want.length, 30_000,
                  'key 0 from 100 on, again');
    if (failure) throw failure;
    assert.deepEqual(redelivered.slice(0, want.length), want);
  } finally {
    await sub.close();
  }
  await sub.delete();
  await topic.delete();
}, {timeout: 90_000});

pubsubCase('a topic\'s retention is updated (UpdateTopic), and a bad one is INVALID_ARGUMENT',
           async () => {
  const [topic] = await ps.createTopic(name('update-topic'));
  const threeDays = 3 * 24 * 3600;
  await topic.setMetadata({messageRetentionDuration: {seconds: threeDays}});
  const [meta] = await topic.getMetadata();
  assert.equal(seconds(meta.messageRetentionDuration), threeDays);
  await assert.rejects(topic.setMetadata({messageRetentionDuration: {seconds: 60}}), {code: 3});
  if (target.isBackbone) {  // the emulator refuses "labels" in UpdateTopic's mask
    await topic.setMetadata({labels: {team: 'sync'}});
    const [labelled] = await topic.getMetadata();
    assert.equal(labelled.labels.team, 'sync');
    assert.equal(seconds(labelled.messageRetentionDuration), threeDays);
    // The topology's topics are backbone's: FAILED_PRECONDITION.
    await assert.rejects(ps.topic(`events.raw.${target.env}`).setMetadata({labels: {x: 'y'}}),
                         {code: 9});
  }
  await topic.delete();
});

pubsubCase(DETACH, async () => {
  const [topic] = await ps.createTopic(name('detach-topic'));
  const [sub] = await topic.createSubscription(name('detach-sub'));
  await topic.publishMessage({data: Buffer.from('before')});
  assert.equal((await sub.detached())[0], false);
  await ps.detachSubscription(sub.name);
  assert.equal((await sub.detached())[0], true);
  const client = target.subscriberClient(target.token);
  try {
    await assert.rejects(client.pull({subscription: sub.name, maxMessages: 1,
                                      returnImmediately: true}), {code: 9});
  } finally {
    await client.close();
  }
  await sub.delete();
  await topic.delete();
});

const SCHEMAS = 'schemas are made, read, listed, validated and deleted; a topic with one ' +
    'refuses a message that breaks it (INVALID_ARGUMENT) and takes one that keeps it';
const PROVINCE = JSON.stringify({
  type: 'record', name: 'Province', namespace: 'utilities',
  fields: [{name: 'name', type: 'string'}, {name: 'post_abbr', type: 'string'}],
});
pubsubCase(SCHEMAS, async () => {
  const id = name('province');
  const schema = await ps.createSchema(id, SchemaTypes.Avro, PROVINCE);
  const mine = async (view) => {
    const out = [];
    for await (const s of ps.listSchemas(view)) if (s.name.endsWith(`/${id}`)) out.push(s);
    return out;
  };
  assert.equal((await mine(SchemaViews.Basic))[0].definition, '');
  assert.equal((await mine(SchemaViews.Full))[0].definition, PROVINCE);
  assert.equal((await schema.get(SchemaViews.Full)).definition, PROVINCE);
  assert.equal((await schema.get(SchemaViews.Basic)).definition, '');
  await assert.rejects(ps.createSchema(id, SchemaTypes.Avro, PROVINCE), {code: 6});
  // Malformed definitions.
  await ps.validateSchema({type: SchemaTypes.Avro, definition: PROVINCE});
  for (const bad of ['{"not_actually":"avro"}', 'woohoo i am a schema, no really']) {
    await assert.rejects(ps.validateSchema({type: SchemaTypes.Avro, definition: bad}), {code: 3});
    await assert.rejects(ps.createSchema(name('bad'), SchemaTypes.Avro, bad), {code: 3});
  }
  // Messages (as Buffers: the client puts a string into the bytes field as base64).
  const good = JSON.stringify({name: 'Alberta', post_abbr: 'AB'});
  await schema.validateMessage(Buffer.from(good), Encodings.Json);
  for (const bad of ['{"foo":"bar"}', 'woohoo i am a message, no really']) {
    await assert.rejects(schema.validateMessage(Buffer.from(bad), Encodings.Json), {code: 3});
  }
  if (target.isBackbone) {
    // Protocol buffers, in the binary encoding (the emulator answers UNIMPLEMENTED to them).
    await assert.rejects(ps.createSchema(name('bad-proto'), SchemaTypes.ProtocolBuffer,
                                         'syntax = "proto3"; message A { string a = 1 }'),
                         {code: 3});
    const proto = await ps.createSchema(name('proto'), SchemaTypes.ProtocolBuffer,
                                        'syntax = "proto3"; message P { string name = 1; }');
    const [ptopic] = await ps.createTopic({
      name: name('proto-topic'),
      schemaSettings: {schema: await proto.getName(), encoding: Encodings.Binary},
    });
    await ptopic.publishMessage({data: Buffer.from([0x0a, 0x02, 0x41, 0x42])});  // name: "AB"
    await assert.rejects(ptopic.publishMessage({data: Buffer.from([0x0a, 0x20, 0x41])}),
                         {code: 3});
    await ptopic.delete();
    await proto.delete();
  }
  // A topic with the schema.
  const [topic] = await ps.createTopic({
    name: name('schema-topic'),
    schemaSettings: {schema: await schema.getName(), encoding: Encodings.Json},
  });
  const [meta] = await topic.getMetadata();
  assert.ok(meta.schemaSettings.schema.endsWith(`/schemas/${id}`), meta.schemaSettings.schema);
  const [sub] = await topic.createSubscription(name('schema-sub'));
  await assert.rejects(topic.publishMessage({data: Buffer.from('{"name":"Alberta"}')}), {code: 3});
  await topic.publishMessage({data: Buffer.from(good)});
  let got;
  await consume(sub, (m) => {
    got = got || m;
    m.ack();
  }, () => got, 20_000, 'the message that keeps the schema');
  assert.equal(got.data.toString(), good);
  assert.equal(got.attributes.googclient_schemaencoding, 'JSON');
  assert.ok(got.attributes.googclient_schemarevisionid, 'no revision attribute');
  await assert.rejects(ps.createTopic({
    name: name('schema-none'),
    schemaSettings: {schema: `projects/${target.projectId}/schemas/${name('nowhere')}`,
                     encoding: Encodings.Json},
  }), {code: 5});
  await assert.rejects(ps.createTopic({
    name: name('schema-no-encoding'), schemaSettings: {schema: await schema.getName()},
  }), {code: 3});
  await topic.delete();
  await schema.delete();
  assert.equal((await mine(SchemaViews.Basic)).length, 0);
  await assert.rejects(schema.get(), {code: 5});
});

pubsubCase(IAM, async () => {
  const [topic] = await ps.createTopic(name('iam-topic'));
  const [fresh] = await topic.iam.getPolicy();
  assert.deepEqual(fresh.bindings, []);
  assert.equal(fresh.version, 0);
  // A token of the same environment with the read role only.
  const reader = target.pubsub(target.readToken).topic(topic.name);
  const publish = ['pubsub.topics.publish', 'pubsub.topics.get'];
  assert.deepEqual((await reader.iam.testPermissions(publish))[0],
                   {'pubsub.topics.publish': false, 'pubsub.topics.get': true});
  await assert.rejects(reader.publishMessage({data: Buffer.from('no')}), {code: 7});
  const binding = {role: 'roles/pubsub.publisher', members: ['token:node-reader']};
  const [set] = await topic.iam.setPolicy({bindings: [binding]});
  assert.deepEqual(set.bindings, [{condition: null, ...binding}]);
  assert.deepEqual((await reader.iam.testPermissions(publish))[0],
                   {'pubsub.topics.publish': true, 'pubsub.topics.get': true});
  await reader.publishMessage({data: Buffer.from('yes')});
  // The reader may publish now, but not change the policy.
  await assert.rejects(reader.iam.setPolicy({bindings: []}), {code: 7});
  await assert.rejects(topic.iam.setPolicy({bindings: [{role: 'roles/owner', members: ['x']}]}),
                       {code: 3});
  await assert.rejects(topic.iam.setPolicy({bindings: [{...binding,
      condition: {expression: 'true', title: 't'}}]}), {code: 3});
  await assert.rejects(topic.iam.setPolicy({bindings: [], etag: Buffer.from('0')}), {code: 10});
  const [now] = await topic.iam.getPolicy();
  assert.deepEqual(now.bindings.map((b) => [b.role, b.members]),
                   [['roles/pubsub.publisher', ['token:node-reader']]]);
  // Taken away again: the reader cannot publish.
  await topic.iam.setPolicy({bindings: [], etag: now.etag});
  await assert.rejects(reader.publishMessage({data: Buffer.from('no again')}), {code: 7});
  await assert.rejects(ps.topic(name('iam-nowhere')).iam.getPolicy(), {code: 5});
  // A policy goes with its topic: one made again under the name grants nothing.
  await topic.iam.setPolicy({bindings: [binding]});
  await topic.delete();
  const [again] = await ps.createTopic(name('iam-topic'));
  assert.deepEqual((await again.iam.getPolicy())[0].bindings, []);
  await assert.rejects(reader.publishMessage({data: Buffer.from('not again')}), {code: 7});
});

pubsubCase(SNAPSHOTS, async () => {
  const [topic] = await ps.createTopic(name('snap-topic'));
  const [sub] = await topic.createSubscription(name('snap-sub'), {ackDeadlineSeconds: 60});
  const snapshot = sub.snapshot(name('snap'));
  await snapshot.create();
  const [listed] = await ps.getSnapshots();
  assert.ok(listed.some((s) => s.name.endsWith(`/${name('snap')}`)), 'not listed');
  // Pulls one message at a time, unary, acking it.
  const client = target.subscriberClient(target.token);
  let firstPublished;  // the publish time of the first message pulled
  const pullAll = async (ms) => {
    const got = [];
    const until = Date.now() + ms;
    while (Date.now() < until) {
      const [resp] = await client.pull({subscription: sub.name, maxMessages: 10,
                                        returnImmediately: true});
      for (const r of resp.receivedMessages) {
        const t = r.message.publishTime;  // a protobuf Timestamp; to the millisecond below it
        firstPublished = firstPublished ||
            new Date(Number(t.seconds) * 1000 + Math.floor((t.nanos || 0) / 1e6));
        got.push(r.message.data.toString());
        await client.acknowledge({subscription: sub.name, ackIds: [r.ackId]});
      }
      if (resp.receivedMessages.length === 0 && got.length > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return got.sort();
  };
  try {
    await topic.publishMessage({data: Buffer.from('a')});
    assert.deepEqual(await pullAll(5000), ['a']);
    await snapshot.seek();  // made before 'a': it comes again
    assert.deepEqual(await pullAll(5000), ['a']);
    const [[b]] = await Promise.all([topic.publishMessage({data: Buffer.from('b')})]);
    assert.ok(b);
    const got = await pullAll(5000);
    assert.deepEqual(got, ['b']);
    await sub.seek(firstPublished);  // everything since 'a' was published
    assert.deepEqual(await pullAll(5000), ['a', 'b']);
    await topic.publishMessage({data: Buffer.from('c')});
    await sub.seek(new Date('3000-01-01'));  // ahead: a purge
    await topic.publishMessage({data: Buffer.from('d')});
    assert.deepEqual(await pullAll(5000), ['d']);
    // Bad input.
    await assert.rejects(sub.seek(ps.snapshot('no-such-snapshot').name), {code: 5});
    await assert.rejects(ps.subscription(sub.name).createSnapshot('bad name!'), {code: 3});
  } finally {
    await client.close();
  }
  await snapshot.delete();
  await assert.rejects(snapshot.delete(), {code: 5});
  if (target.isBackbone) {
    // A seek on the topology's subscription would replay the pipeline's work: not here.
    await assert.rejects(ps.subscription(`events.merged.${target.env}.sync`)
                             .seek(new Date(0)), {code: 9});
  }
  await sub.delete();
  await topic.delete();
}, {timeout: 90_000});

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
    // Pub/Sub's promise: each message's first delivery follows its predecessor's. (Pub/Sub
    // hands out the rest of the key meanwhile, and brings it back after each nack.)
    assert.equal(i, next[k], `key-${k}: got ${i} before ${next[k]}`);
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
