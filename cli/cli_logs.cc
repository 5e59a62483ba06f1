// dropq logs ID [--attempt N] [--follow [--timeout D]]: the run log of each
// attempt (groups/<g>/logs/, written whole when the attempt ends). --follow
// prints the job's audit events as the daemon records them (started, each
// output block, retry, ...) and each attempt's log as it appears, until the
// job has finished; it wakes on changes to store/ (every commit writes the
// WAL) and to the group's logs/ — see jobs/wait.h.
#include <fstream>
#include <set>
#include <sstream>

#include "cli/cli_commands.h"
#include "jobs/layout.h"
#include "jobs/wait.h"
#include "base/text.h"

namespace dropq::app {
namespace {

std::string ReadWhole(const std::string& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  *ok = static_cast<bool>(in);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool Finished(JobState s) { return IsFinal(s); }

class LogPrinter {
 public:
  LogPrinter(const Context& ctx, JobId id, std::int64_t attempt) : ctx_(ctx), id_(id), attempt_(attempt) {}

  // Prints one attempt's log, or why there is none; into `collect` (an
  // array) with --json when given.
  void PrintRun(const JobRun& r, nlohmann::json* collect) {
    std::string text;
    bool ok = false;
    if (r.log_file) text = ReadWhole(*r.log_file, &ok);
    if (ctx_.json) {
      nlohmann::json j = {{"attempt", r.attempt},
                          {"status", r.status},
                          {"log_file", r.log_file ? nlohmann::json(*r.log_file) : nlohmann::json()},
                          {"log", ok ? nlohmann::json(text) : nlohmann::json()}};
      if (collect) {
        collect->push_back(j);
      } else {
        std::cout << text::Dump(j) << "\n";
      }
      return;
    }
    std::string head = "=== job " + std::to_string(id_) + " attempt " + std::to_string(r.attempt) + " (" +
                       ctx_.style.State(r.status) + ")";
    if (r.log_file) head += " " + *r.log_file;
    std::cout << ctx_.style.Bold(head + " ===") << "\n";
    if (ok) {
      // The run log holds the agent's own bytes: escaped, lines kept.
      std::cout << text::ForTerminal(text);
      if (!text.empty() && text.back() != '\n') std::cout << "\n";
    } else if (r.log_file) {
      std::cout << ctx_.style.Red("(the log file cannot be read: it was removed or moved)") << "\n";
    } else if (r.status == "running") {
      std::cout << ctx_.style.Dim("(running: the log is written when the attempt ends; use --follow)") << "\n";
    } else {
      std::cout << ctx_.style.Dim("(no log was written for this attempt)") << "\n";
    }
  }

  void PrintEvent(const JobEvent& e) {
    if (ctx_.json) {
      nlohmann::json j = EventJson(e);
      j["type"] = "event";
      std::cout << text::Dump(j) << "\n";
    } else {
      std::cout << ctx_.style.Dim("-- " + FormatIsoUtc(e.at)) << " " << e.event << " "
                << ctx_.style.Dim(e.detail.value_or("")) << "\n";
    }
  }

  bool Wanted(const JobRun& r) const { return attempt_ == 0 || r.attempt == attempt_; }

  // One step of --follow: prints what is new; true once the job has finished
  // and every wanted attempt's log was printed.
  bool FollowStep(Store& store) {
    // The job and its runs first, the events after: each read sees at least
    // what the one before saw, so every event up to a run's end is printed
    // before that run's log, even when the daemon commits in between.
    auto job = store.GetJob(id_);
    auto runs = store.ListRuns(id_);
    auto events = store.ListEvents(id_);
    if (!job.ok() || !*job || !runs.ok() || !events.ok()) return false;  // busy: the next change retries
    for (const auto& e : *events) {
      if (e.id <= last_event_) continue;
      PrintEvent(e);
      last_event_ = e.id;
    }
    bool all_printed = true;
    for (const auto& r : *runs) {
      if (!Wanted(r) || printed_.count(r.attempt)) continue;
      if (r.status == "running") {
        all_printed = false;
        continue;
      }
      if (ctx_.json) {
        nlohmann::json j = nlohmann::json::array();
        PrintRun(r, &j);
        nlohmann::json line = j[0];
        line["type"] = "log";
        std::cout << text::Dump(line) << "\n";
      } else {
        PrintRun(r, nullptr);
      }
      printed_.insert(r.attempt);
    }
    std::cout.flush();
    return Finished((*job)->state) && all_printed;
  }

 private:
  const Context& ctx_;
  JobId id_;
  std::int64_t attempt_;
  std::int64_t last_event_ = 0;
  std::set<std::int64_t> printed_;
};

}  // namespace

int CmdLogs(const Context& ctx, const LogsOptions& opts) {
  Config cfg = LoadOrExit(ctx);
  SystemClock clock;
  auto store = OpenReaderOrExit(cfg, clock);
  auto job = FindJob(*store, opts.id);
  if (!job) return kExitNotFound;
  LogPrinter printer(ctx, opts.id, opts.attempt);
  if (opts.follow) {
    Layout layout(cfg.root);
    store.reset();
    bool done = WaitForStore(layout.DatabasePath(), [&](Store* fresh) { return fresh && printer.FollowStep(*fresh); },
                             opts.timeout_ms, {layout.GroupLogsDir(job->group)});
    if (!done) {
      std::cerr << "dropq: job " << opts.id << " has not finished after " << HumanDuration(opts.timeout_ms) << "\n";
      return kExitTimeout;
    }
    return kExitOk;
  }
  auto runs = OrExit(store->ListRuns(opts.id));
  std::vector<JobRun> wanted;
  for (const auto& r : runs)
    if (printer.Wanted(r)) wanted.push_back(r);
  if (wanted.empty()) {
    std::cerr << "dropq: job " << opts.id
              << (opts.attempt ? " has no attempt " + std::to_string(opts.attempt) : std::string(" has not run yet"))
              << "\n";
    return kExitNotFound;
  }
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& r : wanted) printer.PrintRun(r, ctx.json ? &arr : nullptr);
  if (ctx.json) std::cout << text::Dump(arr) << "\n";
  return kExitOk;
}

}  // namespace dropq::app
