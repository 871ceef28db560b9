// `backbone record TYPE ID [--audit]` (a record's merged state, or its audit entries, as the
// reader role) and `backbone rebuild`
// (the records projection computed again from the events and the audit log, as the migrator).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "backbone/event_json.h"
#include "cli/cli_context.h"
#include "pipeline/rebuild.h"

namespace backbone::cli {

void register_records(CLI::App& app, CliContext& ctx) {
  auto* record = app.add_subcommand("record", "Print a record's version and merged state");
  auto type = std::make_shared<std::string>();
  auto rid = std::make_shared<std::string>();
  record->add_option("record_type", *type, "The record's type")->required();
  record->add_option("record_id", *rid, "The record's id")->required();
  auto audit = std::make_shared<bool>(false);
  record->add_flag("--audit", *audit, "Print the record's audit entries instead, oldest first");
  record->callback([&ctx, type, rid, audit] {
    auto key = record_key_arg(*type, *rid);
    if (!key.ok()) return ctx.fail(key.error());
    auto store = ctx.open_store(Role::kReader);
    if (!store.ok()) return ctx.fail(store.error());
    if (*audit) {
      auto entries = (*store)->audit_for_record(*key);
      if (!entries.ok()) return ctx.fail(entries.error());
      if (entries->empty()) {
        return ctx.fail(
            make_error(Errc::kNotFound, "no event of " + *type + "/" + *rid + " in " + ctx.env()));
      }
      if (ctx.json) {
        std::string out = "{\"record_type\":" + nlohmann::json(key->record_type).dump() +
                          ",\"record_id\":" + nlohmann::json(key->record_id).dump() +
                          ",\"audit\":[";
        for (size_t i = 0; i < entries->size(); ++i) {
          out += (i ? "," : "") + audit_entry_to_json((*entries)[i]);
        }
        std::printf("%s]}\n", out.c_str());
        return;
      }
      for (const AuditEntry& a : *entries) {
        std::printf("%s  %-15s %s  %s\n", a.created_at.to_rfc3339().c_str(),
                    audit_action_name(a.action), a.event_id.str().c_str(),
                    a.detail.value_or("").c_str());
      }
      return;
    }
    auto row = (*store)->get_record(*key);
    if (!row.ok()) return ctx.fail(row.error());
    if (!*row) {
      return ctx.fail(make_error(
          Errc::kNotFound, "no event of " + *type + "/" + *rid + " has merged in " + ctx.env()));
    }
    const StoredRecord& r = **row;
    if (ctx.json) {
      nlohmann::json out = {{"record_type", r.key.record_type},
                            {"record_id", r.key.record_id},
                            {"version", r.version},
                            {"state", nlohmann::json::parse(r.state)},
                            {"field_versions", nlohmann::json::parse(r.field_versions)},
                            {"updated_at", r.updated_at.to_rfc3339()}};
      std::printf("%s\n", out.dump().c_str());
    } else {
      std::printf("%s/%s  version %llu  updated %s\nstate           %s\nfield_versions  %s\n",
                  r.key.record_type.c_str(), r.key.record_id.c_str(),
                  static_cast<unsigned long long>(r.version), r.updated_at.to_rfc3339().c_str(),
                  r.state.c_str(), r.field_versions.c_str());
    }
  });

  auto* rebuild = app.add_subcommand(
      "rebuild", "Compute the records table again from the events and the audit log");
  auto check = std::make_shared<bool>(false);
  rebuild->add_flag("--check", *check,
                    "Compare only: exit 1 when the table differs from the rebuilt one");
  rebuild->callback([&ctx, check] {
    auto store = ctx.open_store(Role::kMigrator);
    if (!store.ok()) return ctx.fail(store.error());
    auto report = pipeline::rebuild_records(**store, !*check);
    if (!report.ok()) return ctx.fail(report.error());
    const auto& r = *report;
    if (ctx.json) {
      nlohmann::json out = {{"env", ctx.env()},       {"merges", r.merges},
                            {"records", r.records},   {"differing", r.differing},
                            {"missing", r.missing},   {"extra", r.extra},
                            {"matched", r.matches()}, {"replaced", r.replaced}};
      std::printf("%s\n", out.dump().c_str());
    } else {
      std::printf(
          "%s: %llu merges replayed, %llu records; the table had %llu differing, %llu missing, "
          "%llu extra rows%s\n",
          ctx.env().c_str(), static_cast<unsigned long long>(r.merges),
          static_cast<unsigned long long>(r.records), static_cast<unsigned long long>(r.differing),
          static_cast<unsigned long long>(r.missing), static_cast<unsigned long long>(r.extra),
          r.replaced ? "; replaced" : (r.matches() ? "; it matches" : ""));
    }
    if (*check && !r.matches()) ctx.exit_status = 1;
  });
}

}  // namespace backbone::cli
