#include "store/mysql/mysql_connection.h"

#include <mysql.h>

#include <unordered_map>
#include <utility>
#include "store/store_core.h"

namespace backbone::mysql {
namespace {

Error map_error(unsigned code, const std::string& text) {
  const std::string message = "mariadb: [" + std::to_string(code) + "] " + text;
  switch (code) {
    case 1044:
    case 1045:
    case 1142:
    case 1143:
    case 1227:
    case 1370:
      return make_error(Errc::kPermissionDenied, message);
    case 1021:  // the disk is full
    case 1040:
    case 1053:
    case 1114:  // a table is full
    case 1205:
    case 1213:
    case 1927:
    case 2002:
    case 2003:
    case 2006:
    case 2013:
    case 2055:
    case 4031:
      return make_error(Errc::kUnavailable, message);
    case 1062:
      return make_error(Errc::kConflict, message);
    case 1048:
    case 1264:
    case 1292:
    case 1366:
    case 1406:
    case 3140:
    case 4025:
      return make_error(Errc::kInvalidArgument, message);
    default:
      break;
  }
  if (auto m = immutable_message(text)) return make_error(Errc::kImmutable, *m);
  return make_error(Errc::kInternal, message);
}

class MysqlConnection final : public sql::SqlConnection {
 public:
  explicit MysqlConnection(MYSQL* db) : db_(db) {}
  ~MysqlConnection() override {
    for (auto& [sql, stmt] : statements_) mysql_stmt_close(stmt);
    mysql_close(db_);
  }

  Result<sql::SqlRows> run(const std::string& sql, std::span<const sql::SqlParam> params) override {
    auto prepared = prepare(sql);
    if (!prepared.ok()) return prepared.error();
    MYSQL_STMT* stmt = *prepared;
    if (mysql_stmt_param_count(stmt) != params.size()) {
      return make_error(Errc::kInternal, "mariadb: statement wants " +
                                             std::to_string(mysql_stmt_param_count(stmt)) +
                                             " parameters, got " + std::to_string(params.size()));
    }
    std::vector<MYSQL_BIND> binds(params.size());
    std::vector<unsigned long> lengths(params.size());
    std::vector<my_bool> nulls(params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      MYSQL_BIND& b = binds[i];
      b = MYSQL_BIND{};
      nulls[i] = !params[i].has_value();
      b.buffer_type = nulls[i] ? MYSQL_TYPE_NULL : MYSQL_TYPE_STRING;
      if (params[i]) {
        b.buffer = const_cast<char*>(params[i]->data());
        lengths[i] = params[i]->size();
        b.buffer_length = lengths[i];
        b.length = &lengths[i];
      }
      b.is_null = &nulls[i];
    }
    if (!params.empty() && mysql_stmt_bind_param(stmt, binds.data())) return stmt_error(stmt);
    if (mysql_stmt_execute(stmt)) return stmt_error(stmt);
    sql::SqlRows out;
    MYSQL_RES* meta = mysql_stmt_result_metadata(stmt);
    if (meta == nullptr) {
      if (mysql_stmt_field_count(stmt) != 0) return stmt_error(stmt);
      out.affected = mysql_stmt_affected_rows(stmt);
      return out;
    }
    auto fetched = fetch_all(stmt, mysql_num_fields(meta), out);
    mysql_free_result(meta);
    mysql_stmt_free_result(stmt);
    if (!fetched.ok()) return fetched.error();
    return out;
  }

  Result<sql::SqlRows> script(const std::string& sql) override {
    auto all = query_all(sql);
    if (!all.ok()) return all.error();
    return all->empty() ? sql::SqlRows{} : std::move(all->back());
  }

  // Statements go in as few round trips as the server allows: a statement whose parameters
  // are small joins its neighbours in one multi-statement query, with the parameters as escaped
  // literals; one with large parameters (a multi-row INSERT) runs prepared, on its own, because
  // the server parses many text literals more slowly than it executes the prepared statement
  // (measured: BENCHMARKS.md).
  using sql::SqlConnection::run_batch;
  Result<std::vector<sql::SqlRows>> run_batch(std::span<const sql::SqlStatement> statements,
                                              const std::function<void()>& meanwhile) override {
    constexpr size_t kInlineBytes = 16 * 1024;
    auto small = [](const sql::SqlStatement& s) {
      size_t bytes = 0;
      for (const auto& p : s.params) bytes += p ? p->size() : 0;
      return bytes <= kInlineBytes;
    };
    bool pending = static_cast<bool>(meanwhile);  // runs once, while the first query is out
    std::vector<sql::SqlRows> all;
    for (size_t i = 0; i < statements.size();) {
      if (!small(statements[i])) {
        if (std::exchange(pending, false)) meanwhile();
        auto r = run(statements[i].sql, statements[i].params);
        if (!r.ok()) return r.error();
        all.push_back(std::move(*r));
        ++i;
        continue;
      }
      std::string text;
      for (; i < statements.size() && small(statements[i]); ++i) {
        auto inlined = inline_params(statements[i]);
        if (!inlined.ok()) return inlined.error();
        if (!text.empty()) text += ";\n";
        text += *inlined;
      }
      auto r = query_all(text, std::exchange(pending, false) ? &meanwhile : nullptr);
      if (!r.ok()) return r.error();
      for (auto& rows : *r) all.push_back(std::move(rows));
    }
    if (pending) meanwhile();
    return all;
  }

  bool healthy() const override { return !lost_; }

 private:
  // Runs one or more statements as one query; every statement's rows, in order. The server
  // stops at the first statement that fails. `meanwhile`, if any, runs once the query is sent.
  Result<std::vector<sql::SqlRows>> query_all(const std::string& sql,
                                              const std::function<void()>* meanwhile = nullptr) {
    if (mysql_send_query(db_, sql.data(), sql.size())) {
      return failed(mysql_errno(db_), mysql_error(db_));
    }
    if (meanwhile) (*meanwhile)();
    if (mysql_read_query_result(db_)) return failed(mysql_errno(db_), mysql_error(db_));
    std::vector<sql::SqlRows> all;
    for (;;) {
      sql::SqlRows rows;
      if (MYSQL_RES* r = mysql_store_result(db_)) {
        const unsigned cols = mysql_num_fields(r);
        while (MYSQL_ROW row = mysql_fetch_row(r)) {
          const unsigned long* lengths = mysql_fetch_lengths(r);
          sql::SqlRow out(cols);
          for (unsigned c = 0; c < cols; ++c) {
            if (row[c]) out[c].emplace(row[c], lengths[c]);
          }
          rows.rows.push_back(std::move(out));
        }
        mysql_free_result(r);
      } else if (mysql_field_count(db_) == 0) {
        rows.affected = mysql_affected_rows(db_);
      } else {
        return failed(mysql_errno(db_), mysql_error(db_));
      }
      all.push_back(std::move(rows));
      const int next = mysql_next_result(db_);
      if (next < 0) return all;
      if (next > 0) return failed(mysql_errno(db_), mysql_error(db_));
    }
  }

  // The statement with each `?` (outside quotes) replaced by its parameter as an escaped
  // string literal (or NULL). The server converts quoted numbers to the column's type.
  Result<std::string> inline_params(const sql::SqlStatement& s) {
    std::string out;
    out.reserve(s.sql.size() + 64 * s.params.size());
    size_t next = 0;
    char quote = 0;
    for (char c : s.sql) {
      if (quote) {
        if (c == quote) quote = 0;
      } else if (c == '\'' || c == '"' || c == '`') {
        quote = c;
      } else if (c == '?') {
        if (next >= s.params.size()) break;
        const sql::SqlParam& p = s.params[next++];
        if (!p) {
          out += "NULL";
          continue;
        }
        const size_t at = out.size();
        out.resize(at + 2 * p->size() + 3);
        out[at] = '\'';
        const unsigned long n = mysql_real_escape_string(db_, &out[at + 1], p->data(), p->size());
        out.resize(at + 1 + n);
        out += '\'';
        continue;
      }
      out += c;
    }
    if (next != s.params.size()) {
      return make_error(Errc::kInternal, "mariadb: statement and parameters do not match");
    }
    return out;
  }

  Result<MYSQL_STMT*> prepare(const std::string& sql) {
    if (auto it = statements_.find(sql); it != statements_.end()) return it->second;
    if (statements_.size() >= 256) {  // bounded: start over
      for (auto& [text, old] : statements_) mysql_stmt_close(old);
      statements_.clear();
    }
    MYSQL_STMT* stmt = mysql_stmt_init(db_);
    if (stmt == nullptr) return make_error(Errc::kUnavailable, "mariadb: out of memory");
    if (mysql_stmt_prepare(stmt, sql.data(), sql.size())) {
      Error e = stmt_error(stmt);
      mysql_stmt_close(stmt);
      return e;
    }
    statements_.emplace(sql, stmt);
    return stmt;
  }

  Error stmt_error(MYSQL_STMT* stmt) {
    return failed(mysql_stmt_errno(stmt), mysql_stmt_error(stmt));
  }

  // The error, noting when it means the connection is gone (client errors 2xxx, a shutdown, a
  // killed or timed-out connection).
  Error failed(unsigned code, const char* text) {
    if ((code >= 2000 && code < 3000) || code == 1053 || code == 1927 || code == 4031) lost_ = true;
    return map_error(code, text);
  }

  Result<void> fetch_all(MYSQL_STMT* stmt, unsigned cols, sql::SqlRows& out) {
    constexpr unsigned long kInitial = 256;
    std::vector<MYSQL_BIND> binds(cols);
    std::vector<std::string> buffers(cols, std::string(kInitial, '\0'));
    std::vector<unsigned long> lengths(cols);
    std::vector<my_bool> nulls(cols), errors(cols);
    for (unsigned c = 0; c < cols; ++c) {
      binds[c] = MYSQL_BIND{};
      binds[c].buffer_type = MYSQL_TYPE_STRING;
      binds[c].buffer = buffers[c].data();
      binds[c].buffer_length = kInitial;
      binds[c].length = &lengths[c];
      binds[c].is_null = &nulls[c];
      binds[c].error = &errors[c];
    }
    if (mysql_stmt_bind_result(stmt, binds.data())) return stmt_error(stmt);
    for (;;) {
      const int rc = mysql_stmt_fetch(stmt);
      if (rc == MYSQL_NO_DATA) return {};
      if (rc == 1) return stmt_error(stmt);
      sql::SqlRow row(cols);
      for (unsigned c = 0; c < cols; ++c) {
        if (nulls[c]) continue;
        if (lengths[c] <= kInitial) {
          row[c].emplace(buffers[c].data(), lengths[c]);
          continue;
        }
        std::string whole(lengths[c], '\0');  // truncated: fetch the column again, whole
        MYSQL_BIND b{};
        b.buffer_type = MYSQL_TYPE_STRING;
        b.buffer = whole.data();
        b.buffer_length = lengths[c];
        if (mysql_stmt_fetch_column(stmt, &b, c, 0)) return stmt_error(stmt);
        row[c] = std::move(whole);
      }
      out.rows.push_back(std::move(row));
    }
  }

  MYSQL* db_;
  bool lost_ = false;
  std::unordered_map<std::string, MYSQL_STMT*> statements_;
};

}  // namespace

Result<std::unique_ptr<sql::SqlConnection>> connect(const sql::SqlLogin& login) {
  MYSQL* db = mysql_init(nullptr);
  if (db == nullptr) return make_error(Errc::kUnavailable, "mariadb: out of memory");
  const unsigned timeout = static_cast<unsigned>(login.connect_timeout_s);
  mysql_options(db, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
  mysql_options(db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  mysql_options(db, MYSQL_INIT_COMMAND,
                "SET time_zone = '+00:00', "
                "sql_mode = 'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'");
  mysql_options(db, MYSQL_INIT_COMMAND, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
  // A session left idle inside a transaction (its process stopped) is ended, and the writer
  // lock with it.
  const std::string stall = "SET SESSION idle_transaction_timeout = " +
                            std::to_string((login.stall_timeout_ms + 999) / 1000);
  mysql_options(db, MYSQL_INIT_COMMAND, stall.c_str());
  const char* password = login.password.empty() ? nullptr : login.password.c_str();
  const char* database = login.database.empty() ? nullptr : login.database.c_str();
  if (mysql_real_connect(db, login.host.c_str(), login.user.c_str(), password, database,
                         login.port ? login.port : 3306, nullptr,
                         CLIENT_MULTI_STATEMENTS) == nullptr) {
    const unsigned code = mysql_errno(db);
    Error e = map_error(code, mysql_error(db));
    mysql_close(db);
    e.message = "cannot connect to " + login.host + ":" +
                std::to_string(login.port ? login.port : 3306) + "/" + login.database + " as " +
                login.user + ": " + e.message;
    if (e.code != Errc::kPermissionDenied) e.code = Errc::kUnavailable;
    return e;
  }
  return std::unique_ptr<sql::SqlConnection>(new MysqlConnection(db));
}

}  // namespace backbone::mysql
