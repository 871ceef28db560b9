// The Pub/Sub endpoint under test, and Google's official Node clients for it.
//
// Environment:
//   PUBSUB_EMULATOR_HOST   host:port of backbone's Pub/Sub front or of Google's emulator
//   PUBSUB_PROJECT_ID      the project (backbone: the topology's, "backbone-local")
//   PUBSUB_TARGET          "backbone" or "emulator"
//   BACKBONE_PUBSUB_TOKEN        (backbone) a token of the environment under test, admin role
//   BACKBONE_PUBSUB_OTHER_TOKEN  (backbone) an admin token of the other environment
//   BACKBONE_PUBSUB_ENV, BACKBONE_PUBSUB_OTHER_ENV  their environments
'use strict';

// Traffic stays on loopback: google-auth-library would otherwise probe the GCE metadata server
// (169.254.169.254) for credentials and a project.
process.env.METADATA_SERVER_DETECTION = 'none';

const {PubSub, v1} = require('@google-cloud/pubsub');
const {grpc} = require('google-gax');

// Channel credentials that send "authorization: Bearer <token>" on every call over a plaintext
// channel, as backbone's front on loopback expects. grpc-js refuses to compose call credentials
// with createInsecure(), so this delegates the connection to the insecure credentials and hands
// them the token's call credentials. doc/pubsub_front.md shows it to users.
class BearerPlaintextCredentials extends grpc.ChannelCredentials {
  constructor(token) {
    super();
    this.insecure = grpc.credentials.createInsecure();
    this.bearer = grpc.credentials.createFromMetadataGenerator((_params, callback) => {
      const metadata = new grpc.Metadata();
      metadata.add('authorization', `Bearer ${token}`);
      callback(null, metadata);
    });
  }
  compose() {
    throw new Error('BearerPlaintextCredentials already carries its call credentials');
  }
  _isSecure() {
    return false;
  }
  _equals(other) {
    return other === this;
  }
  _createSecureConnector(target, options, callCredentials) {
    const creds = callCredentials ? callCredentials.compose(this.bearer) : this.bearer;
    return this.insecure._createSecureConnector(target, options, creds);
  }
}

const host = process.env.PUBSUB_EMULATOR_HOST;
if (!host) throw new Error('PUBSUB_EMULATOR_HOST is not set');
const kind = process.env.PUBSUB_TARGET || 'backbone';
const projectId = process.env.PUBSUB_PROJECT_ID || 'backbone-local';
const [servicePath, portText] = host.split(/:(?=[0-9]+$)/);
const port = Number(portText);

// token: a bearer token; undefined: no credentials (the emulator workflow).
function options(token) {
  if (token === undefined) return {projectId, apiEndpoint: host};
  return {
    projectId,
    apiEndpoint: host,
    emulatorMode: false,  // keep our credentials; emulator mode would replace them
    sslCreds: new BearerPlaintextCredentials(token),
  };
}

function pubsub(token) {
  return new PubSub(options(token));
}

// The generated v1 client, for the unary Pull, Acknowledge and ModifyAckDeadline.
function subscriberClient(token) {
  return new v1.SubscriberClient({
    servicePath: servicePath.replace(/^\[|\]$/g, ''),
    port,
    projectId,
    sslCreds: token === undefined ? grpc.credentials.createInsecure()
                                  : new BearerPlaintextCredentials(token),
  });
}

module.exports = {
  kind,
  projectId,
  isBackbone: kind === 'backbone',
  token: process.env.BACKBONE_PUBSUB_TOKEN,
  otherToken: process.env.BACKBONE_PUBSUB_OTHER_TOKEN,
  readToken: process.env.BACKBONE_PUBSUB_READ_TOKEN,  // "node-reader", role read, same env
  env: process.env.BACKBONE_PUBSUB_ENV || 'sandbox',
  otherEnv: process.env.BACKBONE_PUBSUB_OTHER_ENV || 'production',
  pubsub,
  subscriberClient,
  BearerPlaintextCredentials,
};
