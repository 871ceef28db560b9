#include "broker/nats/nats_client.h"

#include <nats/nats.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "broker/nats/nats_message.h"

namespace backbone::nats {
namespace {

constexpr int64_t kRequestTimeoutMs = 10'000;
constexpr int64_t kMillisToNanos = 1'000'000;
constexpr int64_t kPublishSliceMs = 50;
constexpr int64_t kReaderBufferBytes = 256 << 20;

Error nats_error(natsStatus s, int jerr, const std::string& what) {
  std::string text = natsStatus_GetText(s);
  if (const char* last = nats_GetLastError(nullptr); last && *last) text = last;
  Errc code = Errc::kUnavailable;
  switch (jerr) {
    case JSStreamNotFoundErr:
      code = Errc::kNotFound;
      break;
    case JSStreamWrongLastSequenceErr:
      code = Errc::kConflict;
      break;
    default:
      if (s == NATS_NOT_PERMITTED || text.find("ermission") != std::string::npos) {
        code = Errc::kPermissionDenied;
      } else if (jerr != 0 && s != NATS_TIMEOUT) {
        code = Errc::kInternal;
      }
  }
  return make_error(code, "NATS: " + what + ": " + text);
}

}  // namespace

// One JetStream context with its own publish-ack bookkeeping; a pool of these lets concurrent
// publish calls pipeline their messages without sharing ack state.
struct AsyncPublisher {
  jsCtx* js = nullptr;
  std::mutex mu;
  std::unordered_map<std::string, size_t> index;  // Nats-Msg-Id -> position in the call
  std::vector<uint64_t> seqs;
  size_t acked = 0;
  std::optional<Error> error;

  ~AsyncPublisher() {
    if (js) jsCtx_Destroy(js);
  }

  static void on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
    auto* self = static_cast<AsyncPublisher*>(closure);
    const char* id = nullptr;
    natsMsgHeader_Get(msg, "Nats-Msg-Id", &id);
    std::lock_guard lk(self->mu);
    ++self->acked;
    if (pa) {
      if (auto it = self->index.find(id ? id : ""); it != self->index.end()) {
        self->seqs[it->second] = pa->Sequence;
      }
    } else if (pae && !self->error) {
      self->error = nats_error(pae->Err, pae->ErrCode,
                               std::string("publish to ") + natsMsg_GetSubject(msg) + " failed" +
                                   (pae->ErrText ? std::string(": ") + pae->ErrText : ""));
    }
    natsMsg_Destroy(msg);
  }
};

// Idle publishers, reused by later publish calls.
struct PublisherPool {
  std::mutex mu;
  std::vector<std::unique_ptr<AsyncPublisher>> idle;  // GUARDED_BY(mu)
};

NatsClient::NatsClient(NatsUrl url)
    : url_(std::move(url)), pool_(std::make_unique<PublisherPool>()) {}

Result<std::unique_ptr<NatsClient>> NatsClient::connect(const NatsUrl& url) {
  std::unique_ptr<NatsClient> c(new NatsClient(url));
  natsOptions* opts = nullptr;
  natsStatus s = natsOptions_Create(&opts);
  std::vector<const char*> servers;
  for (const auto& u : url.servers) servers.push_back(u.c_str());
  if (s == NATS_OK)
    s = natsOptions_SetServers(opts, servers.data(), static_cast<int>(servers.size()));
  if (s == NATS_OK && !url.user.empty()) {
    s = natsOptions_SetUserInfo(opts, url.user.c_str(), url.password.c_str());
  }
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, 250);
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, 5000);
  if (s == NATS_OK) s = natsOptions_SetName(opts, "backbone");
  if (s == NATS_OK && url.inbox_prefix != "_INBOX") {
    s = natsOptions_SetCustomInboxPrefix(opts, url.inbox_prefix.c_str());
  }
  if (s == NATS_OK) {
    s = natsOptions_SetErrorHandler(
        opts,
        [](natsConnection* nc, natsSubscription*, natsStatus err, void* closure) {
          const char* text = nullptr;
          natsConnection_GetLastError(nc, &text);
          static_cast<NatsClient*>(closure)->note_async_error(text ? text : natsStatus_GetText(err),
                                                              err == NATS_NOT_PERMITTED);
        },
        c.get());
  }
  // Two connections: pushed topic messages queue on the socket ahead of whatever follows
  // them, so on one connection a journal append's acknowledgement would wait behind a
  // reader's backlog.
  if (s == NATS_OK) s = natsConnection_Connect(&c->conn_, opts);
  if (s == NATS_OK) s = natsConnection_Connect(&c->read_conn_, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK) return nats_error(s, 0, "cannot connect to " + url.servers.front());
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = kRequestTimeoutMs;
  s = natsConnection_JetStream(&c->js_, c->conn_, &jo);
  if (s == NATS_OK) s = natsConnection_JetStream(&c->read_js_, c->read_conn_, &jo);
  if (s != NATS_OK) return nats_error(s, 0, "no JetStream context");
  return c;
}

NatsClient::~NatsClient() {
  if (kv_) kvStore_Destroy(kv_);
  if (js_) jsCtx_Destroy(js_);
  if (read_js_) jsCtx_Destroy(read_js_);
  if (conn_) {
    natsConnection_FlushTimeout(conn_, 1000);
    natsConnection_Destroy(conn_);
  }
  if (read_conn_) natsConnection_Destroy(read_conn_);
}

void NatsClient::note_async_error(std::string text, bool not_permitted) {
  if (!not_permitted && text.find("Permissions Violation") == std::string::npos) return;
  std::lock_guard lk(violations_mu_);
  violations_.push_back(std::move(text));
  if (violations_.size() > 64) violations_.pop_front();
  ++violation_count_;
}

uint64_t NatsClient::violation_count() {
  std::lock_guard lk(violations_mu_);
  return violation_count_;
}

std::optional<Error> NatsClient::refusal(const std::string& subject, uint64_t since) {
  std::lock_guard lk(violations_mu_);
  const uint64_t fresh = std::min<uint64_t>(violation_count_ - since, violations_.size());
  const std::string quoted = "\"" + subject + "\"";
  for (size_t i = violations_.size() - fresh; i < violations_.size(); ++i) {
    if (violations_[i].find(quoted) != std::string::npos) {
      return make_error(Errc::kPermissionDenied, "NATS: " + violations_[i]);
    }
  }
  return std::nullopt;
}

Result<void> NatsClient::add_stream(const StreamSpec& spec) {
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  const char* subjects[] = {spec.subject.c_str()};
  cfg.Name = spec.name.c_str();
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  cfg.Retention = js_LimitsPolicy;
  cfg.Replicas = spec.replicas;
  cfg.MaxAge = spec.max_age_ms * kMillisToNanos;
  if (spec.dup_window_ms > 0) cfg.Duplicates = spec.dup_window_ms * kMillisToNanos;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  jsStreamInfo* si = nullptr;
  natsStatus s = js_AddStream(&si, js_, &cfg, nullptr, &jerr);
  if (si) jsStreamInfo_Destroy(si);
  if (s != NATS_OK) return nats_error(s, jerr, "cannot create stream " + spec.name);
  return {};
}

Result<void> NatsClient::delete_stream(const std::string& name) {
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_DeleteStream(js_, name.c_str(), nullptr, &jerr);
  if (s != NATS_OK) return nats_error(s, jerr, "cannot delete stream " + name);
  return {};
}

Result<StreamState> NatsClient::stream_state(const std::string& name) {
  jsErrCode jerr = static_cast<jsErrCode>(0);
  jsStreamInfo* si = nullptr;
  natsStatus s = js_GetStreamInfo(&si, js_, name.c_str(), nullptr, &jerr);
  if (s != NATS_OK) return nats_error(s, jerr, "no information on stream " + name);
  StreamState st{si->State.FirstSeq, si->State.LastSeq, si->State.Msgs, ""};
  if (si->Cluster != nullptr && si->Cluster->Leader != nullptr) st.leader = si->Cluster->Leader;
  jsStreamInfo_Destroy(si);
  return st;
}

Result<void> NatsClient::purge_below(const std::string& stream, uint64_t seq,
                                     const std::string& subject) {
  jsOptions o;
  jsOptions_Init(&o);
  o.Stream.Purge.Sequence = seq;
  if (!subject.empty()) o.Stream.Purge.Subject = subject.c_str();
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_PurgeStream(js_, stream.c_str(), &o, &jerr);
  if (s != NATS_OK) return nats_error(s, jerr, "cannot purge stream " + stream);
  return {};
}

Result<uint64_t> NatsClient::last_seq_of(const std::string& stream, const std::string& subject) {
  natsMsg* m = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetLastMsg(&m, js_, stream.c_str(), subject.c_str(), nullptr, &jerr);
  if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) {
    if (m) natsMsg_Destroy(m);
    return uint64_t{0};
  }
  if (s != NATS_OK) return nats_error(s, jerr, "cannot read the last message of " + subject);
  const uint64_t seq = natsMsg_GetSequence(m);
  natsMsg_Destroy(m);
  return seq;
}

int64_t NatsClient::max_payload() const { return natsConnection_GetMaxPayload(conn_); }

Result<FetchedMessage> NatsClient::get_message(const std::string& stream, uint64_t seq) {
  natsMsg* m = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetMsg(&m, js_, stream.c_str(), seq, nullptr, &jerr);
  if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) {
    if (m) natsMsg_Destroy(m);
    return make_error(Errc::kNotFound,
                      "stream " + stream + " holds no message at " + std::to_string(seq));
  }
  if (s != NATS_OK) {
    return nats_error(s, jerr, "cannot read message " + std::to_string(seq) + " of " + stream);
  }
  FetchedMessage f;
  f.seq = natsMsg_GetSequence(m);
  f.subject = natsMsg_GetSubject(m);
  f.payload.assign(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m)));
  natsMsg_Destroy(m);
  return f;
}

Result<std::vector<uint64_t>> NatsClient::publish(std::span<const OutgoingNatsMessage> messages) {
  PublisherPool* pool = pool_.get();
  std::unique_ptr<AsyncPublisher> p;
  {
    std::lock_guard lk(pool->mu);
    if (!pool->idle.empty()) {
      p = std::move(pool->idle.back());
      pool->idle.pop_back();
    }
  }
  if (!p) {
    p = std::make_unique<AsyncPublisher>();
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = kRequestTimeoutMs;
    jo.PublishAsync.AckHandler = &AsyncPublisher::on_ack;
    jo.PublishAsync.AckHandlerClosure = p.get();
    jo.PublishAsync.MaxPending = 4096;
    natsStatus s = natsConnection_JetStream(&p->js, conn_, &jo);
    if (s != NATS_OK) return nats_error(s, 0, "no JetStream context");
  }
  {
    std::lock_guard lk(p->mu);
    p->index.clear();
    p->seqs.assign(messages.size(), 0);
    p->acked = 0;
    p->error.reset();
    for (size_t i = 0; i < messages.size(); ++i) p->index[messages[i].msg_id] = i;
  }
  const uint64_t violations_before = violation_count();
  std::optional<Error> failed;
  size_t sent = 0;
  for (const auto& m : messages) {
    natsMsg* msg = nullptr;
    natsStatus s = natsMsg_Create(&msg, m.subject.c_str(), nullptr, m.payload.data(),
                                  static_cast<int>(m.payload.size()));
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, "Nats-Msg-Id", m.msg_id.c_str());
    if (s == NATS_OK) s = js_PublishMsgAsync(p->js, &msg, nullptr);
    if (msg) natsMsg_Destroy(msg);
    if (s != NATS_OK) {
      failed = nats_error(s, 0, "cannot publish to " + m.subject);
      break;
    }
    ++sent;
  }
  // Wait for the acknowledgements a slice at a time: a publish that the server's permissions
  // refuse is never answered, only reported on the connection.
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = kPublishSliceMs;
  natsStatus s = NATS_TIMEOUT;
  for (int64_t waited = 0; !failed && waited < kRequestTimeoutMs; waited += kPublishSliceMs) {
    s = js_PublishAsyncComplete(p->js, &po);
    if (s != NATS_TIMEOUT) break;
    for (const auto& m : messages) {
      if (auto refused = refusal(m.subject, violations_before)) {
        failed = *refused;
        break;
      }
    }
  }
  if (s != NATS_OK && !failed) {
    failed = nats_error(s, 0, "publish acknowledgements did not arrive");
  }
  if (s != NATS_OK) {
    // Drop what is still pending; this context is not reused.
    natsMsgList pending{nullptr, 0};
    if (js_PublishAsyncGetPendingList(&pending, p->js) == NATS_OK) natsMsgList_Destroy(&pending);
    return *failed;
  }
  std::vector<uint64_t> seqs;
  {
    std::lock_guard lk(p->mu);
    if (!failed && p->error) failed = p->error;
    if (!failed && p->acked != sent) {
      failed = make_error(Errc::kUnavailable, "NATS: not every publish was acknowledged");
    }
    seqs = std::move(p->seqs);
  }
  {
    std::lock_guard lk(pool->mu);
    pool->idle.push_back(std::move(p));
  }
  if (failed) return *failed;
  return seqs;
}

Result<uint64_t> NatsClient::publish_fenced(const std::string& subject, const std::string& payload,
                                            uint64_t expected_last_seq) {
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = kRequestTimeoutMs;
  po.ExpectLastSubjectSeq = expected_last_seq;
  const uint64_t violations_before = violation_count();
  jsErrCode jerr = static_cast<jsErrCode>(0);
  jsPubAck* pa = nullptr;
  natsStatus s = js_Publish(&pa, js_, subject.c_str(), payload.data(),
                            static_cast<int>(payload.size()), &po, &jerr);
  if (s != NATS_OK) {
    if (auto refused = refusal(subject, violations_before)) return *refused;
    return nats_error(s, jerr, "cannot append to " + subject);
  }
  const uint64_t seq = pa->Sequence;
  jsPubAck_Destroy(pa);
  return seq;
}

Result<std::unique_ptr<StreamReader>> NatsClient::reader(const std::string& stream,
                                                         const std::string& subject,
                                                         uint64_t from) {
  std::unique_ptr<StreamReader> r(new StreamReader());
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  so.Ordered = true;
  so.Config.DeliverPolicy = js_DeliverByStartSequence;
  so.Config.OptStartSeq = std::max<uint64_t>(from, 1);
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_SubscribeSync(&r->sub_, read_js_, subject.c_str(), nullptr, &so, &jerr);
  if (s == NATS_OK) {
    s = natsSubscription_SetPendingLimits(r->sub_, static_cast<int>(url_.reader_buffer),
                                          static_cast<int>(kReaderBufferBytes));
  }
  if (s != NATS_OK) return nats_error(s, jerr, "cannot read stream " + stream);
  return r;
}

StreamReader::~StreamReader() {
  if (sub_) {
    natsSubscription_Unsubscribe(sub_);
    natsSubscription_Destroy(sub_);
  }
}

Result<std::vector<FetchedMessage>> StreamReader::fetch(int max, int64_t wait_ms) {
  std::vector<FetchedMessage> out;
  while (static_cast<int>(out.size()) < max) {
    natsMsg* m = nullptr;
    const natsStatus s =
        natsSubscription_NextMsg(&m, sub_, out.empty() ? std::max<int64_t>(wait_ms, 0) : 0);
    if (s == NATS_TIMEOUT) break;
    // libnats dropped messages (a full buffer) and says so once; the reader's owner sees the
    // gap in the sequences and reads them again.
    if (s == NATS_SLOW_CONSUMER) continue;
    if (s != NATS_OK) return nats_error(s, 0, "cannot read the stream");
    const char* reply = natsMsg_GetReply(m);
    AckReply where;
    if (reply != nullptr && parse_ack_reply(reply, where)) {
      FetchedMessage f;
      f.seq = where.stream_seq;
      f.subject = natsMsg_GetSubject(m);
      known_last_ = std::max(known_last_, f.seq + where.pending);
      f.payload.assign(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m)));
      out.push_back(std::move(f));
    }
    natsMsg_Destroy(m);
  }
  int64_t dropped = 0;
  if (natsSubscription_GetDropped(sub_, &dropped) == NATS_OK && dropped > dropped_seen_) {
    dropped_seen_ = dropped;
    lost_ = true;
  }
  return out;
}

bool StreamReader::lost_messages() {
  const bool lost = lost_;
  lost_ = false;
  return lost;
}

Result<void> NatsClient::open_bucket(const std::string& bucket, int replicas) {
  natsStatus s = js_KeyValue(&kv_, js_, bucket.c_str());
  if (s == NATS_OK) return {};
  kvConfig cfg;
  kvConfig_Init(&cfg);
  cfg.Bucket = bucket.c_str();
  cfg.History = 1;
  cfg.StorageType = js_FileStorage;
  cfg.Replicas = replicas;
  s = js_CreateKeyValue(&kv_, js_, &cfg);
  if (s != NATS_OK) return nats_error(s, 0, "cannot open bucket " + bucket);
  return {};
}

Result<void> NatsClient::kv_create(const std::string& key, const std::string& value) {
  natsStatus s =
      kvStore_Create(nullptr, kv_, key.c_str(), value.data(), static_cast<int>(value.size()));
  if (s == NATS_OK) return {};
  Error e = nats_error(s, 0, "cannot create " + key);
  if (kv_get(key).ok()) return make_error(Errc::kAlreadyExists, key + " exists");
  return e;
}

Result<std::pair<std::string, uint64_t>> NatsClient::kv_get(const std::string& key) {
  kvEntry* e = nullptr;
  natsStatus s = kvStore_Get(&e, kv_, key.c_str());
  if (s == NATS_NOT_FOUND) return make_error(Errc::kNotFound, key + " does not exist");
  if (s != NATS_OK) return nats_error(s, 0, "cannot read " + key);
  std::pair<std::string, uint64_t> out{std::string(static_cast<const char*>(kvEntry_Value(e)),
                                                   static_cast<size_t>(kvEntry_ValueLen(e))),
                                       kvEntry_Revision(e)};
  kvEntry_Destroy(e);
  return out;
}

Result<void> NatsClient::kv_update(const std::string& key, const std::string& value,
                                   uint64_t revision) {
  natsStatus s = kvStore_Update(nullptr, kv_, key.c_str(), value.data(),
                                static_cast<int>(value.size()), revision);
  if (s == NATS_OK) return {};
  Error e = nats_error(s, 0, "cannot update " + key);
  auto now = kv_get(key);
  if (now.ok() && now->second != revision) {
    return make_error(Errc::kConflict, key + " changed meanwhile");
  }
  return e;
}

Result<void> NatsClient::kv_delete(const std::string& key) {
  natsStatus s = kvStore_Purge(kv_, key.c_str(), nullptr);
  if (s != NATS_OK) return nats_error(s, 0, "cannot delete " + key);
  return {};
}

Result<std::vector<std::string>> NatsClient::kv_keys() {
  kvKeysList list{nullptr, 0};
  natsStatus s = kvStore_Keys(&list, kv_, nullptr);
  std::vector<std::string> out;
  if (s == NATS_NOT_FOUND) return out;
  if (s != NATS_OK) return nats_error(s, 0, "cannot list keys");
  for (int i = 0; i < list.Count; ++i) out.emplace_back(list.Keys[i]);
  kvKeysList_Destroy(&list);
  return out;
}

}  // namespace backbone::nats
