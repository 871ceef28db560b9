// Google's official Node client against backbone's Pub/Sub front over TLS, with a token:
// publish, then pull and ack through the generated v1 client. Run by serve_tls_test.cc.
//
// Environment: PUBSUB_HOST (host:port), PUBSUB_PROJECT_ID, BACKBONE_PUBSUB_TOKEN, TLS_CA (the CA
// file to trust), EXPECT ("ok": the calls must succeed; "refused": the TLS handshake must fail),
// RETRY_MS (keep trying that long before giving up: the front picks up new files within a
// second). Prints one JSON line: {"ok": true} or {"ok": false, "error": "..."}; with "refused"
// it only tries to connect.
'use strict';

process.env.METADATA_SERVER_DETECTION = 'none';

const fs = require('node:fs');
const {PubSub, v1} = require('@google-cloud/pubsub');
const {grpc} = require('google-gax');

const host = process.env.PUBSUB_HOST;
const projectId = process.env.PUBSUB_PROJECT_ID || 'backbone-local';
const token = process.env.BACKBONE_PUBSUB_TOKEN;
const expect = process.env.EXPECT || 'ok';
const retryMs = Number(process.env.RETRY_MS || 0);
const [servicePath, portText] = host.split(/:(?=[0-9]+$)/);

// TLS to the front, trusting only TLS_CA, and the token on every call.
function credentials() {
  const ssl = grpc.credentials.createSsl(fs.readFileSync(process.env.TLS_CA));
  const bearer = grpc.credentials.createFromMetadataGenerator((_params, callback) => {
    const metadata = new grpc.Metadata();
    metadata.add('authorization', `Bearer ${token}`);
    callback(null, metadata);
  });
  return grpc.credentials.combineChannelCredentials(ssl, bearer);
}

async function roundTrip() {
  const run = `tls${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const ps = new PubSub({projectId, apiEndpoint: host, emulatorMode: false,
                         sslCreds: credentials()});
  const sub = new v1.SubscriberClient({servicePath, port: Number(portText), projectId,
                                       sslCreds: credentials()});
  try {
    const [topic] = await ps.createTopic(`${run}-topic`);
    const [subscription] = await topic.createSubscription(`${run}-sub`);
    await topic.publishMessage({data: Buffer.from('over tls')});
    let got;
    for (let i = 0; i < 50 && !got; ++i) {
      const [pulled] = await sub.pull({subscription: subscription.name, maxMessages: 1});
      got = pulled.receivedMessages[0];
    }
    if (!got) throw new Error('nothing pulled');
    if (got.message.data.toString() !== 'over tls') throw new Error('wrong message');
    await sub.acknowledge({subscription: subscription.name, ackIds: [got.ackId]});
    await subscription.delete();
    await topic.delete();
  } finally {
    await sub.close();
    await ps.close();
  }
}

// Whether a TLS connection with the credentials is made within 3 s (the client's calls would
// retry a failed handshake for a minute).
function connects() {
  const client = new grpc.Client(host, credentials());
  return new Promise((resolve) => {
    client.waitForReady(Date.now() + 3000, (e) => {
      client.close();
      resolve(!e);
    });
  });
}

(async () => {
  if (expect === 'refused') {
    const made = await connects();
    console.log(JSON.stringify(made ? {ok: true} : {ok: false, error: 'no TLS connection'}));
    process.exit(0);
  }
  // The front may take up to a second to serve new files: wait for a connection first.
  const until = Date.now() + retryMs;
  while (!(await connects()) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 200));
  }
  try {
    await roundTrip();
    console.log(JSON.stringify({ok: true}));
  } catch (e) {
    console.log(JSON.stringify({ok: false, error: String(e.message || e)}));
  }
  process.exit(0);
})();
