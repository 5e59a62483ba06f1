// dropq enqueue --group G --prompt P [--run-at T] [--priority N] [--id K]
//               [--timeout D] [--max-attempts N] [--wait [--wait-timeout D]]
//
// Enqueues exactly as any writer does (the contract in docs/FILES.md): a
// `run` job file written atomically (tmp, fsync, rename) into the group's
// tasks/ under a name no one else uses, so the daemon ingests, authorises and
// audits it like any other. With --wait it then waits on the daemon's
// signal (jobs/wait.h: woken by each commit and by results/ and errors/) for
// the result file the daemon writes to the group's results/ under the same
// name, or for the file's rejection in errors/, or (with --id) for the end
// of the earlier job that had the same id.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/cli_commands.h"
#include "base/atomic_file.h"
#include "jobs/layout.h"
#include "jobs/wait.h"
#include "base/units.h"
#include "base/text.h"

namespace dropq::app {
namespace {

namespace fs = std::filesystem;

std::optional<nlohmann::json> ReadJson(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  auto j = nlohmann::json::parse(s.str(), nullptr, false);
  if (j.is_discarded()) return std::nullopt;  // cannot be half-written (atomic), but be safe
  return j;
}

// errors/<group>-<name>.error.json, or <group>-<token>-<name>.error.json when
// that name was taken (watcher/ingest.cc).
std::optional<fs::path> FindRejection(const fs::path& errors, const std::string& group, const std::string& name) {
  std::error_code ec;
  std::string suffix = "-" + name + ".error.json";
  for (const auto& e : fs::directory_iterator(errors, ec)) {
    std::string f = e.path().filename().string();
    if (f.rfind(group + "-", 0) == 0 && f.size() >= suffix.size() &&
        f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return e.path();
    }
  }
  return std::nullopt;
}

// With --id: the group's job that already had this client key, once it has
// finished. The daemon makes no second job for our file (a `duplicate`
// event) and writes no result under our name, so this is what we wait for.
std::optional<Job> FinishedEarlierJob(Store& store, const std::string& group, const std::string& client_id,
                                      const std::string& our_name) {
  auto id = store.FindByClientId(group, client_id);
  if (!id.ok() || !*id) return std::nullopt;
  auto job = store.GetJob(**id);
  if (!job.ok() || !*job) return std::nullopt;
  const Job& j = **job;
  if (j.source_name == our_name) return std::nullopt;  // ours: its result file will come
  if (!IsFinal(j.state)) return std::nullopt;
  return j;
}

}  // namespace

int CmdEnqueue(const Context& ctx, const EnqueueOptions& o) {
  Config cfg = LoadOrExit(ctx);
  if (!cfg.FindGroup(o.group)) {
    std::cerr << "dropq: --group: no group \"" << o.group << "\" in " << cfg.config_path << "\n";
    return kExitUsage;
  }
  if (o.prompt.empty()) {
    std::cerr << "dropq: --prompt: must not be empty\n";
    return kExitUsage;
  }
  nlohmann::json body = {{"type", "run"}, {"prompt", o.prompt}};
  if (!o.run_at.empty()) {
    if (!ParseIsoTime(o.run_at)) {
      std::cerr << "dropq: --run-at: invalid ISO-8601 time \"" << o.run_at << "\" (e.g. 2026-11-27T08:45:57Z)\n";
      return kExitUsage;
    }
    body["run_at"] = o.run_at;
  }
  if (o.priority != 0) body["priority"] = o.priority;
  if (!o.client_id.empty()) body["id"] = o.client_id;
  if (!o.timeout.empty()) {
    if (!ParseDurationMs(o.timeout)) {
      std::cerr << "dropq: --timeout: invalid duration \"" << o.timeout << "\" (e.g. 30s, 5m)\n";
      return kExitUsage;
    }
    body["timeout"] = o.timeout;
  }
  if (o.max_attempts > 0) body["max_attempts"] = o.max_attempts;
  if (!o.after.empty()) {
    nlohmann::json after = nlohmann::json::array();
    for (const auto& a : o.after) {
      const bool job_id = !a.empty() && a.size() <= 18 && a.find_first_not_of("0123456789") == std::string::npos;
      after.push_back(job_id ? nlohmann::json(std::stoll(a)) : nlohmann::json(a));
    }
    body["after"] = after;
  }
  if (!o.after_policy.empty()) body["after_policy"] = o.after_policy;
  if (!o.unique_key.empty()) body["unique_key"] = o.unique_key;
  if (!o.unique_for.empty()) {
    if (!ParseDurationMs(o.unique_for)) {
      std::cerr << "dropq: --unique-for: invalid duration \"" << o.unique_for << "\" (e.g. 30s, 5m)\n";
      return kExitUsage;
    }
    body["unique_for"] = o.unique_for;
  }
  std::int64_t wait_ms = 0;
  if (!o.wait_timeout.empty()) {
    auto d = ParseDurationMs(o.wait_timeout);
    if (!d || *d <= 0) {
      std::cerr << "dropq: --wait-timeout: invalid duration \"" << o.wait_timeout << "\" (e.g. 30s, 5m)\n";
      return kExitUsage;
    }
    wait_ms = *d;
  }
  body["createdBy"] = "dropq cli";

  SystemClock clock;
  Layout layout(cfg.root);
  // A name no other writer uses, so the result file under the same name in
  // results/ is this job's.
  std::string name = "cli-" + std::to_string(clock.NowMs()) + "-" + std::to_string(::getpid()) + ".json";
  fs::path path = layout.TasksDir(o.group) / name;
  if (Status s = WriteFileAtomic(path, text::Dump(body) + "\n"); !s.ok()) {
    std::cerr << "dropq: " << s.message() << " (has the daemon created the root? run `dropq doctor`)\n";
    return kExitFailure;
  }
  if (!o.wait) {
    if (ctx.json) {
      std::cout << text::Dump(nlohmann::json{{"group", o.group}, {"file", path.string()}}) << "\n";
    } else {
      std::cout << "dropped " << path.string() << "\n";
    }
    return kExitOk;
  }
  if (!ctx.json) std::cout << "dropped " << path.string() << "\nwaiting for the result..." << std::endl;

  fs::path result_path = layout.ResultsDir(o.group) / name;
  std::optional<nlohmann::json> result, rejection;
  std::optional<Job> earlier;
  auto look = [&](Store* store) {
    if (auto r = ReadJson(result_path)) {
      // Our file repeated an earlier job (its id or unique key: FILES.md,
      // "Unique jobs"): that job's end is the answer.
      const nlohmann::json& dup = r->value("duplicateOf", nlohmann::json());
      if (r->value("state", std::string()) != "duplicate" || !dup.is_object()) {
        result = std::move(r);
        return true;
      }
      if (store) {
        auto job = store->GetJob(dup.value("jobId", JobId{0}));
        if (job.ok() && *job && IsFinal((*job)->state)) earlier = **job;
      }
      return earlier.has_value();
    }
    if (auto e = FindRejection(layout.ErrorsDir(), o.group, name)) {
      if (auto j = ReadJson(*e)) {
        rejection = std::move(j);
        return true;
      }
    }
    if (store && !o.client_id.empty()) earlier = FinishedEarlierJob(*store, o.group, o.client_id, name);
    return earlier.has_value();
  };
  bool done = WaitForStore(layout.DatabasePath(), look, wait_ms, {layout.ResultsDir(o.group), layout.ErrorsDir()});

  if (!done) {
    if (ctx.json)
      std::cout << text::Dump(nlohmann::json{{"group", o.group}, {"file", path.string()}, {"result", nullptr}}) << "\n";
    std::cerr << "dropq: no result after " << HumanDuration(wait_ms)
              << " (is the daemon running? the job stays queued)\n";
    return kExitTimeout;
  }
  if (rejection) {
    if (ctx.json) {
      std::cout << text::Dump(nlohmann::json{{"group", o.group}, {"file", path.string()}, {"rejected", *rejection}})
                << "\n";
    }
    std::cerr << "dropq: the job file was rejected: " << rejection->value("reason", std::string("?")) << "\n";
    return kExitJobFailed;
  }
  if (earlier) {
    std::string st(ToString(earlier->state));
    if (ctx.json) {
      std::cout << text::Dump(
                       nlohmann::json{{"group", o.group}, {"file", path.string()}, {"duplicate_of", JobJson(*earlier)}})
                << "\n";
    } else {
      std::cout << (o.client_id.empty() ? std::string("it repeats") : "--id " + o.client_id + " is") << " job "
                << earlier->id << ", which " << ctx.style.State(st) << "\n";
      if (earlier->result) std::cout << text::Dump(ParseOrString(*earlier->result), 2) << "\n";
    }
    return earlier->state == JobState::kSucceeded ? kExitOk : kExitJobFailed;
  }
  std::string state = result->value("state", std::string());
  if (ctx.json) {
    std::cout << text::Dump(nlohmann::json{{"group", o.group}, {"file", path.string()}, {"result", *result}}) << "\n";
  } else {
    std::string line = "job " + std::to_string(result->value("jobId", std::int64_t{0})) + " " + ctx.style.State(state);
    if (result->contains("attempts")) line += " after " + text::Dump((*result)["attempts"]) + " attempt(s)";
    if (result->contains("error") && (*result)["error"].is_string())
      line += ": " + ctx.style.Red((*result)["error"].get<std::string>());
    std::cout << line << "\n";
    if (result->contains("result")) std::cout << text::Dump((*result)["result"], 2) << "\n";
  }
  return state == "succeeded" ? kExitOk : kExitJobFailed;
}

}  // namespace dropq::app
