// The `backbone` binary, run as a user would: bad input gets a one-line error that names the
// field and the input line, a non-zero exit status, and nothing written.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "store/sqlite_harness.h"

namespace backbone::testing {
namespace {

struct CliRun {
  int status;
  std::string out;
  std::string err;
};

class Cli : public ::testing::Test {
 protected:
  // Runs `backbone args` in the temp folder with `input` on stdin and the store in ./var.
  CliRun run(const std::string& args, const std::string& input = "") {
    std::ofstream(dir_.file("stdin")) << input;
    const std::string cmd = "cd '" + dir_.path() + "' && env -u BACKBONE_STORE -u BACKBONE_ENV " +
                            BACKBONE_CLI_PATH + " " + args + " < stdin > stdout 2> stderr";
    const int status = std::system(cmd.c_str());
    auto slurp = [&](const char* name) {
      std::ifstream in(dir_.file(name));
      std::stringstream s;
      s << in.rdbuf();
      return s.str();
    };
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp("stdout"), slurp("stderr")};
  }
  int64_t rows(const std::string& table, const std::string& env = "sandbox") {
    const std::string db = dir_.file("var/" + env + ".db");
    std::ifstream probe(db);
    if (!probe) return -1;
    const std::string cmd =
        "sqlite3 '" + db + "' 'SELECT COUNT(*) FROM " + table + "' > '" + dir_.file("count") + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
    std::ifstream in(dir_.file("count"));
    int64_t n = -1;
    in >> n;
    return n;
  }
  static std::string event_line(const std::string& record_type = "contact",
                                const std::string& changes = R"({"name":"Ada"})",
                                int base_version = 0) {
    return R"({"record_type":")" + record_type + R"(","record_id":"42","source":"crm",)" +
           R"("base_version":)" + std::to_string(base_version) + R"(,"changes":)" + changes + "}";
  }
  TempDir dir_;
};

TEST_F(Cli, MigrateIsIdempotentAndKeepsEnvironmentsApart) {
  auto first = run("migrate");
  ASSERT_EQ(first.status, 0) << first.err;
  EXPECT_NE(first.out.find("applied 8 migration"), std::string::npos) << first.out;
  auto second = run("migrate --json");
  ASSERT_EQ(second.status, 0) << second.err;
  auto j = nlohmann::json::parse(second.out);
  EXPECT_EQ(j["applied"], 0);
  EXPECT_EQ(j["env"], "sandbox");
  ASSERT_EQ(run("--env production migrate").status, 0);
  std::ifstream sandbox(dir_.file("var/sandbox.db")), production(dir_.file("var/production.db"));
  EXPECT_TRUE(sandbox.good());
  EXPECT_TRUE(production.good());
}

TEST_F(Cli, PublishPrintsIdsAndFingerprintsAndHistoryShowsThem) {
  ASSERT_EQ(run("migrate").status, 0);
  auto pub =
      run("publish", event_line() + "\n\n" + event_line("contact", R"({"email":"a@b"})", 1) + "\n");
  ASSERT_EQ(pub.status, 0) << pub.err;
  std::istringstream lines(pub.out);
  std::string id, fingerprint;
  lines >> id >> fingerprint;
  EXPECT_EQ(id.size(), 36u);
  EXPECT_EQ(fingerprint.size(), 64u);

  auto get = run("--json events get " + id);
  ASSERT_EQ(get.status, 0) << get.err;
  auto ev = nlohmann::json::parse(get.out);
  EXPECT_EQ(ev["fingerprint"], fingerprint);
  EXPECT_EQ(ev["changes"]["name"], "Ada");

  auto history = run("events history contact 42 --json");
  ASSERT_EQ(history.status, 0) << history.err;
  auto h = nlohmann::json::parse(history.out)["events"];
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0]["event"]["id"], id);
  EXPECT_EQ(h[1]["event"]["base_version"], 1);
  EXPECT_EQ(h[0]["decision"], "pending");  // nothing merges without `serve`
  EXPECT_EQ(h[0]["audit"][0]["action"], "ingested");

  auto dup = run("publish --json", event_line());
  ASSERT_EQ(dup.status, 0) << dup.err;
  auto d = nlohmann::json::parse(dup.out);
  EXPECT_EQ(d["events"][0]["duplicate"], true);
  EXPECT_EQ(d["events"][0]["id"], id);
  auto text = run("events history contact 42");
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("v0->       pending +1 dup"), std::string::npos) << text.out;

  auto verify = run("audit verify");
  EXPECT_EQ(verify.status, 0) << verify.err;
  EXPECT_NE(verify.out.find("3 entries verified"), std::string::npos) << verify.out;

  // The record's audit entries: two ingested, one duplicate, in order.
  auto audit = run("--json record contact 42 --audit");
  ASSERT_EQ(audit.status, 0) << audit.err;
  const auto entries = nlohmann::json::parse(audit.out)["audit"];
  ASSERT_EQ(entries.size(), 3u) << audit.out;
  EXPECT_EQ(entries[0]["action"], "ingested");
  EXPECT_EQ(entries[0]["event_id"], id);
  EXPECT_EQ(entries[2]["action"], "duplicate");
  auto trail = run("record contact 42 --audit");
  ASSERT_EQ(trail.status, 0) << trail.err;
  EXPECT_NE(trail.out.find("duplicate"), std::string::npos) << trail.out;
  EXPECT_EQ(run("record contact 43 --audit").status, 3);
}

TEST_F(Cli, BadInputNamesTheLineAndFieldAndWritesNothing) {
  ASSERT_EQ(run("migrate").status, 0);
  ASSERT_EQ(run("publish", event_line()).status, 0);
  const int64_t events_before = rows("events");
  const int64_t audit_before = rows("event_audit_log");
  ASSERT_EQ(events_before, 1);

  const std::string big = "{\"blob\":\"" + std::string(300 * 1024, 'x') + "\"}";
  const struct {
    std::string input;
    std::string expect;  // a fragment of the one-line error
  } cases[] = {
      {event_line("contact", R"({"a":2})") + "\n{\"record_type\": \"contact\", oops}\n",
       "line 2: malformed JSON"},
      {event_line("contact", R"({"a":3})") + "\n" +
           R"({"record_type":"contact","source":"crm","base_version":0,"changes":{}})",
       "line 2: record_id: is required"},
      {event_line("contact", big), "line 1: changes: is"},
      {event_line("Contact"), "line 1: record_type: must match"},
      {R"({"record_type":"contact","record_id":42,"source":"crm","base_version":0,"changes":{}})",
       "line 1: record_id: must be a string, got a number"},
      {event_line("contact", R"({"a":4})") + "\n" +
           event_line("contact", R"({"a":5})").substr(0, 40),
       "line 2: malformed JSON"},
      {"", "no events in input"},
  };
  for (const auto& c : cases) {
    auto r = run("publish", c.input);
    EXPECT_NE(r.status, 0) << c.expect;
    EXPECT_NE(r.err.find(c.expect), std::string::npos)
        << "want \"" << c.expect << "\" in: " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_EQ(rows("events"), events_before) << c.expect;
    EXPECT_EQ(rows("event_audit_log"), audit_before) << c.expect;
  }
}

TEST_F(Cli, ErrorsComeBackAsJsonWithJson) {
  ASSERT_EQ(run("migrate").status, 0);
  auto r = run("--json publish", event_line("Bad"));
  EXPECT_EQ(r.status, 2);
  auto j = nlohmann::json::parse(r.err);
  EXPECT_EQ(j["error"]["code"], "invalid_argument");
  EXPECT_EQ(j["error"]["details"], "line 1: record_type");
}

TEST_F(Cli, UnknownEnvironmentsAndBadIdsAreRefused) {
  ASSERT_EQ(run("migrate").status, 0);
  // An unknown environment is bad input (2), as the README's table of exit statuses says.
  auto env = run("--env staging events history contact 42");
  EXPECT_EQ(env.status, 2);
  EXPECT_NE(env.err.find("--env"), std::string::npos) << env.err;
  EXPECT_NE(env.err.find("unknown environment \"staging\""), std::string::npos) << env.err;
  auto id = run("events get 01a2205c-D11C-7327-b6d6-f43dd781f1e7");
  EXPECT_EQ(id.status, 2);
  EXPECT_NE(id.err.find("id: invalid UUIDv7"), std::string::npos) << id.err;
  auto missing = run("events get 01a2205c-d11c-7327-b6d6-f43dd781f1e7");
  EXPECT_EQ(missing.status, 3);
  auto unmigrated = run("--env production events history contact 42");
  EXPECT_NE(unmigrated.status, 0);
  EXPECT_NE(unmigrated.err.find("backbone migrate"), std::string::npos) << unmigrated.err;
}

// Tokens made and revoked, and provisioning, through the CLI: in the admin audit, as the user.
TEST_F(Cli, AdminActsAreAuditedWithWhoRanThem) {
  ASSERT_EQ(run("migrate").status, 0);
  auto made = run("--json token create --roles read --name reporting");
  ASSERT_EQ(made.status, 0) << made.err;
  const std::string id = nlohmann::json::parse(made.out)["id"];
  ASSERT_EQ(run("token revoke " + id).status, 0);
  ASSERT_EQ(run("provision --env sandbox").status, 0);
  ASSERT_EQ(run("provision --env sandbox").status, 0);  // no change: no act
  auto listed = run("--json audit admin");
  ASSERT_EQ(listed.status, 0) << listed.err;
  const auto acts = nlohmann::json::parse(listed.out)["actions"];
  ASSERT_EQ(acts.size(), 3u) << listed.out;
  EXPECT_EQ(acts[0]["action"], "token.create");
  EXPECT_EQ(acts[0]["target"], id);
  EXPECT_EQ(acts[0]["detail"]["name"], "reporting");
  EXPECT_EQ(acts[1]["action"], "token.revoke");
  EXPECT_EQ(acts[2]["action"], "provision");
  EXPECT_EQ(acts[2]["detail"]["created"], 9);
  for (const auto& a : acts) {
    EXPECT_EQ(std::string(a["actor"]).rfind("cli ", 0), 0u) << a;
    EXPECT_NE(std::string(a["actor"]).find('@'), std::string::npos) << a;
  }
  auto text = run("audit admin --limit 1");
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("token.create"), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("token.revoke"), std::string::npos) << text.out;
  EXPECT_EQ(run("audit admin --after nope").status, 2);
}

TEST_F(Cli, ProvisionMakesTheTopologyOnceAndTopologyShowListsIt) {
  auto first = run("provision --env sandbox --json");
  ASSERT_EQ(first.status, 0) << first.err;
  EXPECT_EQ(nlohmann::json::parse(first.out)["created"], 9);
  ASSERT_EQ(run("provision --env production").status, 0);
  auto again = run("provision --env sandbox --json");
  ASSERT_EQ(again.status, 0) << again.err;
  auto j = nlohmann::json::parse(again.out);
  EXPECT_EQ(j["changes"], 0);
  EXPECT_EQ(j["unchanged"], 9);
  auto show = run("topology show --json");
  ASSERT_EQ(show.status, 0) << show.err;
  auto t = nlohmann::json::parse(show.out);
  size_t topics = 0, subs = 0;
  for (const auto& env : t["environments"]) {
    topics += env["topics"].size();
    subs += env["subscriptions"].size();
    for (const auto& s : env["subscriptions"]) {
      EXPECT_EQ(s["state"], "ok");
      EXPECT_TRUE(s.contains("backlog"));
    }
  }
  EXPECT_EQ(topics, 8u);
  EXPECT_EQ(subs, 10u);
  auto one = nlohmann::json::parse(run("--env production topology show --json").out);
  ASSERT_EQ(one["environments"].size(), 1u);
  EXPECT_EQ(one["environments"][0]["env"], "production");
  auto text = run("topology show");
  EXPECT_NE(text.out.find("events.merged.sandbox.sync"), std::string::npos);
  EXPECT_NE(text.out.find("dead-letter events.dlq.sandbox after 5"), std::string::npos) << text.out;
}

TEST_F(Cli, RecordPrintsTheMergedStateAndRebuildPutsADamagedTableRight) {
  auto stress = run("stress --events 400 --records 20 --dir var/s");
  ASSERT_EQ(stress.status, 0) << stress.out << stress.err;
  const std::string store = "--store 'sqlite://var/s/{env}.db' ";
  auto shown = run(store + "--json record stress r3");
  ASSERT_EQ(shown.status, 0) << shown.err;
  auto j = nlohmann::json::parse(shown.out);
  EXPECT_EQ(j["record_id"], "r3");
  EXPECT_GE(j["version"].get<int>(), 1);
  EXPECT_TRUE(j["state"].is_object());
  EXPECT_EQ(run(store + "record stress nobody").status, 3);  // not found
  auto bad = run(store + "record Stress r3");
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("record_type"), std::string::npos) << bad.err;

  auto check = run(store + "--json rebuild --check");
  ASSERT_EQ(check.status, 0) << check.out << check.err;
  EXPECT_EQ(nlohmann::json::parse(check.out)["matched"], true) << check.out;
  const std::string db = dir_.file("var/s/sandbox.db");
  ASSERT_EQ(std::system(("sqlite3 '" + db +
                         "' \"UPDATE records SET state = '{}' WHERE "
                         "record_id = 'r3'\"")
                            .c_str()),
            0);
  check = run(store + "--json rebuild --check");
  EXPECT_EQ(check.status, 1);
  EXPECT_EQ(nlohmann::json::parse(check.out)["differing"], 1) << check.out;
  auto fixed = run(store + "rebuild");
  ASSERT_EQ(fixed.status, 0) << fixed.err;
  EXPECT_NE(fixed.out.find("replaced"), std::string::npos) << fixed.out;
  EXPECT_EQ(run(store + "rebuild --check").status, 0);
  EXPECT_EQ(run(store + "--json record stress r3").out, shown.out);
}

TEST_F(Cli, EveryCommandHasHelp) {
  for (const char* cmd :
       {"", "migrate", "publish", "events", "events get", "events history", "audit", "audit verify",
        "version", "provision", "topology", "topology show", "serve", "token", "dlq", "stress",
        "record", "rebuild"}) {
    auto r = run(std::string(cmd) + " --help");
    EXPECT_EQ(r.status, 0) << cmd << ": " << r.err;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << cmd;
  }
  auto v = run("version --json");
  ASSERT_EQ(v.status, 0);
  EXPECT_TRUE(nlohmann::json::parse(v.out).contains("version"));
  EXPECT_NE(run("frobnicate").status, 0);
}

// Errors of the arguments themselves: they name the command at fault and what it takes, exit 2,
// and come as JSON with --json wherever it stands.
TEST_F(Cli, ArgumentErrorsNameTheCommandAndHonourJson) {
  auto unknown = run("frobnicate");
  EXPECT_EQ(unknown.status, 2);
  EXPECT_NE(unknown.err.find("unknown command \"frobnicate\" for backbone; the commands are "
                             "migrate, publish"),
            std::string::npos)
      << unknown.err;
  auto nested = run("dlq frob");
  EXPECT_EQ(nested.status, 2);
  EXPECT_NE(nested.err.find("unknown command \"frob\" for backbone dlq; the commands are list, "
                            "show, replay, resolve"),
            std::string::npos)
      << nested.err;
  auto bare = run("dlq");
  EXPECT_EQ(bare.status, 2);
  EXPECT_NE(bare.err.find("backbone dlq needs a command: one of list, show, replay, resolve"),
            std::string::npos)
      << bare.err;
  auto format = run("--log-format yaml version");
  EXPECT_EQ(format.status, 2);
  EXPECT_NE(format.err.find("--log-format: must be text, logfmt or json"), std::string::npos)
      << format.err;
  for (const char* args : {"--json dlq replay a b", "dlq list --bogus --json", "--json frobnicate",
                           "events get --json"}) {
    auto r = run(args);
    EXPECT_EQ(r.status, 2) << args;
    auto j = nlohmann::json::parse(r.err, nullptr, false);
    ASSERT_TRUE(j.is_object()) << args << ": " << r.err;
    EXPECT_EQ(j["error"]["code"], "invalid_argument") << args;
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty()) << args;
  }
}

TEST_F(Cli, DlqReplaySaysWhatItNeedsAndAnswersJson) {
  ASSERT_EQ(run("migrate").status, 0);
  auto neither = run("dlq replay");
  EXPECT_EQ(neither.status, 2);
  EXPECT_NE(neither.err.find("give the id of the event to replay, or --all"), std::string::npos)
      << neither.err;
  auto both = run("dlq replay 01a2205c-d11c-7327-b6d6-f43dd781f1e7 --all");
  EXPECT_EQ(both.status, 2);
  EXPECT_NE(both.err.find("not both"), std::string::npos) << both.err;
  ASSERT_EQ(run("provision").status, 0);
  auto all = run("--json dlq replay --all");
  ASSERT_EQ(all.status, 0) << all.err;
  auto j = nlohmann::json::parse(all.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << all.out;
  EXPECT_EQ(j["env"], "sandbox");
  EXPECT_EQ(j["replayed"], 0);
}

TEST_F(Cli, AnEventThatChangesNothingIsRefused) {
  ASSERT_EQ(run("migrate").status, 0);
  auto r = run("publish", event_line("contact", "{}"));
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("line 1: changes: must name at least one field"), std::string::npos)
      << r.err;
  EXPECT_EQ(rows("events"), 0);
}

}  // namespace
}  // namespace backbone::testing
