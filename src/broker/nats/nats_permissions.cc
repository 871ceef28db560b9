#include "broker/nats/nats_permissions.h"

#include <nlohmann/json.hpp>

#include "broker/nats/nats_names.h"

namespace backbone::nats {
namespace {

// The JetStream API subjects that act on stream `s` and that the backend uses.
void stream_api(const std::string& s, std::vector<std::string>& out) {
  for (const char* op : {"CREATE", "UPDATE", "DELETE", "INFO", "PURGE", "MSG.GET"}) {
    out.push_back(std::string("$JS.API.STREAM.") + op + "." + s);
  }
  out.push_back("$JS.API.CONSUMER.CREATE." + s);
  out.push_back("$JS.API.CONSUMER.CREATE." + s + ".>");
  out.push_back("$JS.API.CONSUMER.DELETE." + s + ".>");
  out.push_back("$JS.API.CONSUMER.INFO." + s + ".>");
  out.push_back("$JS.FC." + s + ".>");  // flow-control answers of ordered consumers
}

}  // namespace

std::string environment_inbox_prefix(const std::string& env) { return "_INBOX_" + env; }

NatsPermissions environment_permissions(const std::string& ns, const std::string& inbox_prefix,
                                        std::span<const std::string> topics,
                                        std::span<const std::string> subscriptions) {
  NatsPermissions p;
  const std::string bucket = catalog_bucket(ns);
  const std::string kv_stream = "KV_" + bucket;
  p.publish.push_back("$JS.API.INFO");
  // libnats looks a stream up by subject before it lists a bucket's keys (names only).
  p.publish.push_back("$JS.API.STREAM.NAMES");
  // The catalog: the environment's own keys; reading the bucket (get, list).
  for (const std::string& t : topics) p.publish.push_back("$KV." + bucket + "." + topic_key(t));
  for (const std::string& s : subscriptions) {
    p.publish.push_back("$KV." + bucket + "." + subscription_key(s));
  }
  p.publish.push_back("$JS.API.STREAM.INFO." + kv_stream);
  p.publish.push_back("$JS.API.STREAM.MSG.GET." + kv_stream);
  p.publish.push_back("$JS.API.DIRECT.GET." + kv_stream);
  p.publish.push_back("$JS.API.DIRECT.GET." + kv_stream + ".>");
  p.publish.push_back("$JS.API.CONSUMER.CREATE." + kv_stream);
  p.publish.push_back("$JS.API.CONSUMER.CREATE." + kv_stream + ".>");
  p.publish.push_back("$JS.API.CONSUMER.DELETE." + kv_stream + ".>");
  p.publish.push_back("$JS.FC." + kv_stream + ".>");
  for (const std::string& t : topics) {
    p.publish.push_back(topic_subject(ns, t));
    p.publish.push_back(any_bucket(topic_subject(ns, t)));  // a split topic's buckets
    stream_api(topic_stream(ns, t), p.publish);
  }
  for (const std::string& s : subscriptions) {
    p.publish.push_back(journal_subject(ns, s));
    p.publish.push_back(any_bucket(journal_subject(ns, s)));
    stream_api(journal_stream(ns, s), p.publish);
  }
  p.subscribe.push_back(inbox_prefix + ".>");
  return p;
}

std::string format_permissions(const NatsPermissions& permissions) {
  const nlohmann::json j = {{"publish", {{"allow", permissions.publish}}},
                            {"subscribe", {{"allow", permissions.subscribe}}}};
  return j.dump(2);
}

}  // namespace backbone::nats
