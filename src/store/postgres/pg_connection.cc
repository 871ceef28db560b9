#include "store/postgres/pg_connection.h"

#include <libpq-fe.h>

#include <cstring>
#include <string_view>
#include <unordered_map>
#include "store/store_core.h"

namespace backbone::pg {
namespace {

// `?` -> `$n`, outside quoted strings and identifiers.
std::string number_placeholders(const std::string& sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int n = 0;
  char quote = 0;
  for (char c : sql) {
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '?') {
      out += '$';
      out += std::to_string(++n);
      continue;
    }
    out += c;
  }
  return out;
}

Error map_error(PGconn* conn, const PGresult* res) {
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  const char* primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  const std::string code = state ? state : "";
  std::string text = primary ? primary : PQerrorMessage(conn);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  const std::string message = "[" + (code.empty() ? std::string("connection") : code) + "] " + text;
  if (PQstatus(conn) != CONNECTION_OK || code.rfind("08", 0) == 0 || code == "57P01" ||
      code == "57P02" || code == "57P03" || code == "40001" || code == "40P01" || code == "55P03" ||
      code.rfind("53", 0) == 0 || code.empty()) {  // 53: a full disk, memory, connections
    return make_error(Errc::kUnavailable, "postgresql: " + message);
  }
  if (code == "42501") return make_error(Errc::kPermissionDenied, "postgresql: " + message);
  if (auto m = immutable_message(text)) return make_error(Errc::kImmutable, *m);
  if (code == "23505") return make_error(Errc::kConflict, "postgresql: " + message);
  if (code.rfind("22", 0) == 0 || code.rfind("23", 0) == 0) {
    return make_error(Errc::kInvalidArgument, "postgresql: " + message);
  }
  return make_error(Errc::kInternal, "postgresql: " + message);
}

// Parameters as libpq takes them: text, or a null pointer for NULL.
std::vector<const char*> c_strings(std::span<const sql::SqlParam> params) {
  std::vector<const char*> out(params.size());
  for (size_t i = 0; i < params.size(); ++i) out[i] = params[i] ? params[i]->c_str() : nullptr;
  return out;
}

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

class PgConnection final : public sql::SqlConnection {
 public:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}
  ~PgConnection() override { PQfinish(conn_); }

  Result<sql::SqlRows> run(const std::string& sql, std::span<const sql::SqlParam> params) override {
    auto name = prepared(sql, params.size());
    if (!name.ok()) return name.error();
    const std::vector<const char*> values = c_strings(params);
    PgResult res(PQexecPrepared(conn_, name->c_str(), static_cast<int>(params.size()),
                                values.data(), nullptr, nullptr, 0));
    return rows_of(res.get());
  }

  using sql::SqlConnection::run_batch;
  Result<std::vector<sql::SqlRows>> run_batch(std::span<const sql::SqlStatement> statements,
                                              const std::function<void()>& meanwhile) override {
    std::vector<std::string> names(statements.size());
    for (size_t i = 0; i < statements.size(); ++i) {
      if (statements[i].params.empty()) continue;  // sent as is (BEGIN, COMMIT, ...)
      auto name = prepared(statements[i].sql, statements[i].params.size());
      if (!name.ok()) return name.error();
      names[i] = std::move(*name);
    }
    if (PQenterPipelineMode(conn_) != 1) return map_error(conn_, nullptr);
    for (size_t i = 0; i < statements.size(); ++i) {
      const auto& params = statements[i].params;
      const std::vector<const char*> values = c_strings(params);
      const int sent = names[i].empty() ? PQsendQueryParams(conn_, statements[i].sql.c_str(), 0,
                                                            nullptr, nullptr, nullptr, nullptr, 0)
                                        : PQsendQueryPrepared(conn_, names[i].c_str(),
                                                              static_cast<int>(params.size()),
                                                              values.data(), nullptr, nullptr, 0);
      if (sent != 1) {
        broken_ = true;  // a half-sent pipeline cannot be resumed: the pool drops the connection
        return map_error(conn_, nullptr);
      }
    }
    if (PQpipelineSync(conn_) != 1) return map_error(conn_, nullptr);
    if (meanwhile) meanwhile();
    std::vector<sql::SqlRows> out;
    std::optional<Error> failed;
    for (size_t i = 0; i < statements.size(); ++i) {
      PgResult first(PQgetResult(conn_));
      while (PGresult* more = PQgetResult(conn_)) PQclear(more);  // the NULL ending it
      if (failed) continue;
      if (!first) {
        failed = map_error(conn_, nullptr);
        continue;
      }
      auto rows = rows_of(first.get());
      if (!rows.ok()) {
        failed = rows.error();
        continue;
      }
      out.push_back(std::move(*rows));
    }
    PgResult sync(PQgetResult(conn_));  // PGRES_PIPELINE_SYNC
    if (PQexitPipelineMode(conn_) != 1) {
      // Results left over (the server went away mid-pipeline): the connection cannot be
      // used again; the pool drops it.
      broken_ = true;
      if (!failed)
        failed =
            make_error(Errc::kUnavailable, std::string("postgresql: ") + PQerrorMessage(conn_));
    }
    if (failed && failed->code == Errc::kUnavailable) broken_ = true;
    if (failed) return *failed;
    return out;
  }

  Result<sql::SqlRows> script(const std::string& sql) override {
    PgResult res(PQexec(conn_, sql.c_str()));
    return rows_of(res.get());
  }

 private:
  Result<sql::SqlRows> rows_of(PGresult* res) {
    const ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) return map_error(conn_, res);
    sql::SqlRows out;
    const int rows = PQntuples(res), cols = PQnfields(res);
    out.rows.reserve(rows);
    for (int r = 0; r < rows; ++r) {
      sql::SqlRow row(cols);
      for (int c = 0; c < cols; ++c) {
        if (!PQgetisnull(res, r, c)) row[c].emplace(PQgetvalue(res, r, c), PQgetlength(res, r, c));
      }
      out.rows.push_back(std::move(row));
    }
    const char* affected = PQcmdTuples(res);
    if (affected && *affected) out.affected = std::strtoull(affected, nullptr, 10);
    return out;
  }

 public:
  bool healthy() const override { return !broken_ && PQstatus(conn_) == CONNECTION_OK; }

 private:
  Result<std::string> prepared(const std::string& sql, size_t nparams) {
    if (auto it = statements_.find(sql); it != statements_.end()) return it->second;
    if (statements_.size() >= kMaxPrepared) {  // bounded: start over
      PgResult res(PQexec(conn_, "DEALLOCATE ALL"));
      if (!res || PQresultStatus(res.get()) != PGRES_COMMAND_OK) return map_error(conn_, res.get());
      statements_.clear();
    }
    std::string name = "bb" + std::to_string(++prepared_count_);
    PgResult res(PQprepare(conn_, name.c_str(), number_placeholders(sql).c_str(),
                           static_cast<int>(nparams), nullptr));
    if (!res || PQresultStatus(res.get()) != PGRES_COMMAND_OK) return map_error(conn_, res.get());
    statements_.emplace(sql, name);
    return name;
  }

  static constexpr size_t kMaxPrepared = 256;
  PGconn* conn_;
  bool broken_ = false;
  uint64_t prepared_count_ = 0;
  std::unordered_map<std::string, std::string> statements_;  // SQL text -> prepared name
};

void ignore_notice(void*, const char*) {}

}  // namespace

Result<std::unique_ptr<sql::SqlConnection>> connect(const sql::SqlLogin& login) {
  const std::string port = std::to_string(login.port ? login.port : 5432);
  const std::string timeout = std::to_string(login.connect_timeout_s);
  // Custom plans: a generic plan made while a table was small would scan it whole once it is
  // large. A session left idle inside a transaction (its process stopped) is ended.
  const std::string options =
      "-c TimeZone=UTC -c plan_cache_mode=force_custom_plan"
      " -c idle_in_transaction_session_timeout=" +
      std::to_string(login.stall_timeout_ms);
  const char* keys[] = {"host",
                        "port",
                        "dbname",
                        "user",
                        "password",
                        "options",
                        "connect_timeout",
                        "application_name",
                        "client_encoding",
                        nullptr};
  const char* values[] = {login.host.c_str(),
                          port.c_str(),
                          login.database.c_str(),
                          login.user.c_str(),
                          login.password.empty() ? nullptr : login.password.c_str(),
                          options.c_str(),
                          timeout.c_str(),
                          "backbone",
                          "UTF8",
                          nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, 0);
  if (conn == nullptr) return make_error(Errc::kUnavailable, "postgresql: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string why = PQerrorMessage(conn);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    PQfinish(conn);
    const bool refused = why.find("password authentication failed") != std::string::npos ||
                         why.find("permission denied") != std::string::npos ||
                         why.find("no pg_hba.conf entry") != std::string::npos;
    return make_error(refused ? Errc::kPermissionDenied : Errc::kUnavailable,
                      "postgresql: cannot connect to " + login.host + ":" + port + "/" +
                          login.database + " as " + login.user + ": " + why);
  }
  PQsetNoticeProcessor(conn, ignore_notice, nullptr);
  return std::unique_ptr<sql::SqlConnection>(new PgConnection(conn));
}

}  // namespace backbone::pg
