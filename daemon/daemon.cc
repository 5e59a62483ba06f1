#include "daemon/daemon.h"

#include <signal.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <uv.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <set>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "jobs/dispatcher.h"
#include "jobs/layout.h"
#include "jobs/store.h"
#include "daemon/groups.h"
#include "dashboard/dashboard.h"
#include "daemon/instance_lock.h"
#include "dashboard/live_metrics.h"
#include "watcher/messages.h"
#include "runner/snapshot_writer.h"
#include "runner/snapshots.h"
#include "daemon/secrets.h"
#include "daemon/task_timer.h"
#include "runner/allowlist.h"
#include "runner/container_runtime.h"
#include "runner/runner.h"
#include "runner/runtime.h"
#include "watcher/ingest.h"
#include "watcher/watcher.h"
#include "base/text.h"
#include "base/guard.h"

namespace dropq::app {

std::unique_ptr<runner::Runtime> MakeRuntime(const Config& cfg, const std::string& instance_id) {
  std::vector<runner::Mount> binds;
  for (const auto& b : cfg.bwrap.ro_binds) binds.push_back({b.host, b.container, true});
  // docker/podman/Apple stop waits this long before killing: the grace.
  int grace_s = static_cast<int>((cfg.kill_grace_ms + 999) / 1000);
  if (cfg.runtime == "bwrap") {
    return runner::MakeBwrapRuntime({cfg.bwrap.rootfs.value_or(""), cfg.bwrap.network, cfg.bwrap.extra_args,
                                     binds});
  }
  if (cfg.runtime == "docker" || cfg.runtime == "podman") {
    const auto& c = cfg.runtime == "docker" ? cfg.docker : cfg.podman;
    return runner::MakeDockerRuntime({c.binary, c.image, c.extra_args, grace_s, instance_id});
  }
  if (cfg.runtime == "container") {
    const auto& c = cfg.container;
    return runner::MakeAppleContainerRuntime({c.image, c.extra_args, grace_s, c.binary, instance_id});
  }
  spdlog::warn("runtime 'process' does NOT isolate jobs: agents run as this user with full access. "
               "Use it for development and tests only.");
  return runner::MakeProcessRuntime(binds);
}

namespace {

// Retry backoff: exponential with full jitter, 5 s base, 10 min cap.
constexpr TimeMs kRetryBaseMs = 5'000;
constexpr TimeMs kRetryCapMs = 600'000;

class Daemon final : public watcher::CommandHandler {
 public:
  Daemon(const Config& cfg, const DaemonOptions& opts)
      : cfg_(cfg),
        opts_(opts),
        layout_(cfg.root),
        dispatcher_(clock_, static_cast<int>(cfg.max_concurrent)),
        groups_(cfg.groups) {}

  int Run() {
    if (Status s = Setup(); !s.ok()) {
      spdlog::critical("{}", s.message());
      return 1;
    }
    uv_run(&loop_, UV_RUN_DEFAULT);
    // Every handle is closed by now; let their close callbacks finish.
    uv_run(&loop_, UV_RUN_DEFAULT);
    if (dashboard_) dashboard_->Stop();
    uv_loop_close(&loop_);
    spdlog::info("dropq stopped");
    return 0;
  }

 private:
  // An attempt that is over, its end not yet committed (Pump records it).
  struct EndedAttempt {
    Job job;
    RunOutcome outcome;
    bool final;
  };

  Status Setup() {
    if (Status s = layout_.CreateCommon(); !s.ok()) return s;
    if (Status s = lock_.Acquire((layout_.StoreDir() / "dropq.lock").string()); !s.ok()) return s;
    auto store = Store::Open(layout_.DatabasePath().string(), clock_);
    if (!store.ok()) return store.status();
    store_ = std::move(*store);
    // Made at the first start and kept: it marks this root's containers.
    auto instance = store_->InstanceId();
    if (!instance.ok()) return instance.status();
    instance_id_ = std::move(*instance);
    for (const auto& g : cfg_.groups) {
      if (Status s = store_->UpsertGroup(g.folder, g.name, g.jid, g.is_main); !s.ok()) return s;
    }
    auto registered = store_->ListRegisteredGroups();
    if (!registered.ok()) return registered.status();
    for (const auto& why : groups_.AddRegistered(*registered)) spdlog::error("{}", why);
    for (const auto& g : groups_.all()) {
      // A group whose folders are broken (a symlink it planted) is logged
      // and left alone; the other groups are still served.
      if (Status s = PrepareGroupDirs(g.folder); !s.ok()) spdlog::error("group {}: {}", g.folder, s.message());
    }

    if (Status s = runner::CheckMountablePath(layout_.root().string()); !s.ok()) {
      return Status::InvalidArgument("root " + layout_.root().string() + ": " + s.message());
    }
    runtime_ = MakeRuntime();
    if (Status s = runtime_->CheckAvailable(); !s.ok()) return s;
    auto orphans = runtime_->CleanupOrphans();
    if (!orphans.ok()) {
      spdlog::warn("cannot clean up sandboxes left by an earlier run: {}", orphans.status().message());
    } else if (*orphans > 0) {
      spdlog::warn("stopped {} sandbox(es) of this root ({}={}) left by an earlier run", *orphans,
                   runner::kInstanceLabel, instance_id_);
    }
    for (const auto& g : groups_.all()) LoadAdditionalMounts(g);
    auto secrets = ReadSecrets(cfg_.secrets, cfg_.env_file);
    if (!secrets.ok()) return secrets.status();
    secrets_ = std::move(*secrets);

    // Attempts a dead dropq left `running`: each is an interruption, not
    // one of its job's attempts, so the job runs again, unless it keeps
    // being interrupted (max_interruptions). A job recovery fails gets its
    // result file before the transaction that fails it commits, as in
    // Finish: a crash in between just recovers it again.
    std::size_t failed = 0;
    auto recovered = store_->RecoverInterrupted([this, &failed](const Job& job, const RunOutcome& o) -> Status {
      if (auto path = runner::WriteResultFile(layout_, job, o); !path.ok()) {
        if (path.status().code() == Status::Code::kNoSpace) {
          return Status::NoSpace("job " + std::to_string(job.id) +
                                 ": cannot write the result file of its failure: " + path.status().message());
        }
        // Not a passing fault (a planted symlink, say): as in ResultWritten.
        spdlog::error("job {}: cannot write result: {}", job.id, path.status().message());
      }
      TaskStore tasks(*store_);
      if (auto r = tasks.FinishRunForJob(job.id, TaskRunStatus::kFailed, std::nullopt, o.error, o.run.duration_ms);
          !r.ok()) {
        return r.status();
      }
      ++failed;
      return Status::Ok();
    });
    if (!recovered.ok()) return recovered.status();
    if (!recovered->empty()) {
      spdlog::warn("recovered {} job(s) interrupted by an earlier stop: {} requeued, {} failed (interrupted more "
                   "often than their max_interruptions)",
                   recovered->size(), recovered->size() - failed, failed);
    }

    watcher::IngestOptions io;
    io.groups = groups_.identities();
    io.max_file_bytes = cfg_.max_job_file;
    io.default_max_attempts = cfg_.max_attempts;
    io.default_max_interruptions = cfg_.max_interruptions;
    io.max_queued_per_group = cfg_.max_queued_per_group;
    ingestor_ = std::make_unique<watcher::Ingestor>(*store_, layout_, std::move(io), clock_, this);
    if (Status s = ingestor_->Reconcile(); !s.ok()) return s;

    auto queued = store_->ListQueuedRefs();
    if (!queued.ok()) return queued.status();
    std::size_t queued_count = queued->size();
    for (auto& q : *queued) dispatcher_.Add(std::move(q));
    if (opts_.observer) opts_.observer->JobsQueued(queued_count);

    uv_loop_init(&loop_);
    loop_.data = this;
    snapshots_ = std::make_unique<SnapshotWriter>(&loop_, layout_, *store_, layout_.DatabasePath().string(), clock_);
    runner::RunnerOptions ro{cfg_.agent, cfg_.max_output, cfg_.kill_grace_ms, cfg_.session_dir};
    runner_ = std::make_unique<runner::Runner>(&loop_, layout_, *runtime_, ro, clock_,
                                               [this](const Job& j, RunOutcome o) { OnDone(j, std::move(o)); },
                                               [this](const Job& j, std::int64_t attempt, const runner::AgentOutput& out) {
                                                 OnOutput(j, attempt, out);
                                               });
    MessageOptions mo;
    mo.groups = groups_.identities();
    mo.on_message = cfg_.on_message;
    inbox_ = std::make_unique<MessageInbox>(*store_, layout_, std::move(mo), clock_);
    if (Status s = inbox_->Reconcile(); !s.ok()) return s;
    std::vector<std::string> folders;
    for (const auto& g : groups_.all()) folders.push_back(g.folder);
    watcher::Watcher::MessageHooks mh;
    mh.add = [this](const std::string& g, const std::string& name) { inbox_->Add(g, name); };
    mh.scan = [this] { inbox_->ScanAll(); };
    mh.flush = [this] {
      if (!inbox_->pending()) return;
      if (Status s = inbox_->Flush(); !s.ok()) spdlog::error("messages: {}; will retry", s.message());
    };
    watcher_ = std::make_unique<watcher::Watcher>(&loop_, layout_, *ingestor_, folders,
                                                  [this](std::vector<QueuedJob> jobs) { OnIngested(std::move(jobs)); },
                                                  60'000, std::move(mh));
    if (Status s = watcher_->Start(); !s.ok()) return s;
    TaskTimer::Hooks hooks;
    hooks.changed = [this] { snapshots_dirty_ = true; };
    hooks.enqueued = [this](const QueuedJob& q) {
      dispatcher_.Add(q);
      SchedulePump();
    };
    hooks.cancel = [this](const std::vector<JobId>& ids) {
      for (JobId id : ids) {
        auto job = store_->GetJob(id);
        if (!job.ok() || !*job) continue;
        if (auto done = CancelJob(**job, nlohmann::json{{"by", "overlap: replace"}}); !done.ok()) {
          spdlog::error("job {}: cannot cancel it for its task's overlap policy: {}", id, done.status().message());
        }
      }
    };
    task_timer_ = std::make_unique<TaskTimer>(&loop_, *store_, cfg_, std::move(hooks));
    if (Status s = task_timer_->Start(); !s.ok()) return s;

    uv_timer_init(&loop_, &wake_);
    wake_.data = this;
    uv_idle_init(&loop_, &pump_idle_);
    pump_idle_.data = this;
    uv_timer_init(&loop_, &result_retry_);
    result_retry_.data = this;
    for (auto [sig, h] : {std::pair<int, uv_signal_t*>{SIGINT, &sigint_}, std::pair<int, uv_signal_t*>{SIGTERM, &sigterm_}}) {
      uv_signal_init(&loop_, h);
      h->data = this;
      uv_signal_start(h, [](uv_signal_t* h, int signum) {
        Guard("signal handler", [&] {
          spdlog::info("signal {} received: stopping", signum);
          static_cast<Daemon*>(h->data)->Shutdown();
        });
      }, sig);
    }
    // An agent that exits without reading its stdin must not kill us.
    ::signal(SIGPIPE, SIG_IGN);

    if (Status s = StartDashboard(); !s.ok()) return s;

    spdlog::info("dropq {} started: root {}, instance {}, runtime {}, {} group(s), max_concurrent {}", DROPQ_VERSION,
                 layout_.root().string(), instance_id_, runtime_->name(), groups_.all().size(), cfg_.max_concurrent);
    for (const auto& g : groups_.all()) {
      spdlog::info("group {}{}: drop job files into {}", g.folder, g.is_main ? " (main)" : "",
                   layout_.TasksDir(g.folder).string());
    }
    ingestor_->ScanAll();
    inbox_->ScanAll();
    watcher_->Kick();
    // The durable "ready and watching" (docs/DESIGN.md, "One signal to wait on").
    if (Status s = store_->AppendEvent(std::nullopt, std::nullopt, "ready", ReadyDetail()); !s.ok()) return s;
    // On this thread: the first runs must see them.
    if (Status s = snapshots_->WriteNow(*store_, groups_.identities()); s.ok()) snapshots_dirty_ = false;
    SchedulePump();
#ifdef __GLIBC__
    // Start-up (the YAML document, upserting every schedule) leaves freed
    // heap that glibc keeps; give it back, since every spawn forks this
    // process and fork's cost grows with its resident memory.
    malloc_trim(0);
#endif
    return Status::Ok();
  }

  // The dashboard (docs/DASHBOARD.md), when dashboard.listen is set: its own
  // threads and read-only connections; the loop only publishes its figures.
  Status StartDashboard() {
    if (cfg_.dashboard.listen.empty()) return Status::Ok();
    const TimeMs started = clock_.NowMs();
    publisher_ = std::make_unique<MetricsPublisher>(metrics_, [this, started] {
      LiveFigures f;
      f.containers_running = static_cast<std::int64_t>(runner_->active());
      const auto& in = ingestor_->stats();
      f.ingest_accepted = static_cast<std::int64_t>(in.accepted);
      f.ingest_duplicates = static_cast<std::int64_t>(in.duplicates);
      f.ingest_rejected = static_cast<std::int64_t>(in.rejected);
      f.scheduler_fires = static_cast<std::int64_t>(task_timer_->fires());
      f.scheduler_lag_ms = task_timer_->last_lag_ms();
      f.started_at = started;
      f.published_at = clock_.NowMs();
      return f;
    });
    publisher_->Start(&loop_);
    DashboardOptions o{cfg_.dashboard.host, cfg_.dashboard.port, !cfg_.dashboard.allow_remote,
                       layout_.DatabasePath().string(), layout_.root().string()};
    dashboard_ = std::make_unique<Dashboard>(std::move(o), clock_, metrics_);
    if (Status s = dashboard_->Start(); !s.ok()) return s;
    const std::string& h = cfg_.dashboard.host;
    spdlog::info("dashboard on http://{}:{}/ (metrics at /metrics)", h.find(':') != std::string::npos ? "[" + h + "]" : h,
                 dashboard_->port());
    return Status::Ok();
  }

  // The `ready` event's detail: who is ready, and where its dashboard is.
  std::string ReadyDetail() const {
    nlohmann::json d = {{"pid", ::getpid()}, {"version", DROPQ_VERSION}, {"instance", instance_id_}};
    for (const auto& g : groups_.all()) d["groups"].push_back(g.folder);
    if (dashboard_) {
      const std::string& h = cfg_.dashboard.host;
      d["dashboard"] = "http://" + (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" +
                       std::to_string(dashboard_->port()) + "/";
    }
    return text::Dump(d);
  }

  std::unique_ptr<runner::Runtime> MakeRuntime() const { return app::MakeRuntime(cfg_, instance_id_); }

  // A group's directories, and no temporary files of atomic writes a crash
  // cut short.
  Status PrepareGroupDirs(const std::string& folder) {
    if (Status s = layout_.CreateGroup(folder); !s.ok()) return s;
    for (const auto& dir : {layout_.ResultsDir(folder), layout_.GroupLogsDir(folder)}) {
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
        std::string name = e.path().filename().string();
        if (name.size() > 1 && name[0] == '.' && name.find(".tmp-") != std::string::npos) {
          std::filesystem::remove(e.path(), ec);
        }
      }
    }
    return Status::Ok();
  }

  // containerConfig.additionalMounts, checked against the allowlist (kept
  // outside root, never mounted; read once, when a group first needs it). A
  // refused mount is logged and left out; the group still runs.
  void LoadAdditionalMounts(const GroupConfig& g) {
    extra_mounts_.erase(g.folder);
    if (g.additional_mounts.empty()) return;
    if (!allowlist_loaded_) {
      allowlist_loaded_ = true;
      auto loaded = runner::MountAllowlist::Load(cfg_.mount_allowlist);
      if (loaded.ok()) {
        allowlist_ = std::move(*loaded);
        allowlist_->Protect(layout_.root().string());
      } else {
        spdlog::error("mount allowlist: {}; every additional mount is refused", loaded.status().message());
      }
    }
    std::vector<runner::AdditionalMount> req;
    for (const auto& m : g.additional_mounts) req.push_back({m.host_path, m.container_path, m.readonly});
    auto v = runner::ValidateAdditionalMounts(allowlist_ ? &*allowlist_ : nullptr, cfg_.mount_allowlist, req,
                                              g.is_main);
    for (const auto& why : v.refusals) spdlog::warn("group {}: additional mount refused: {}", g.folder, why);
    for (const auto& m : v.mounts) {
      spdlog::info("group {}: additional mount {} -> {}{}", g.folder, m.host, m.container, m.readonly ? " (ro)" : "");
    }
    extra_mounts_[g.folder] = std::move(v.mounts);
  }

  // current_tasks.json and available_groups.json for every group, written
  // on the thread pool (files are rewritten only when their content
  // changed). A write that failed is tried again before the next run.
  void RequestSnapshots() {
    snapshots_->Request(groups_.identities());
    snapshots_dirty_ = false;
  }

  // watcher::CommandHandler: a batch is queuing `jobs`, its transaction
  // still open. What can start now is started in it, so a dropped file
  // costs one flush to reach its agent, not two (docs/PERFORMANCE.md).
  void Queuing(const std::vector<QueuedJob>& jobs) override {
    for (const auto& j : jobs) dispatcher_.Add(j);
    if (stopping_) return;
    early_ = dispatcher_.TakeStartable();
    if (!early_.empty() && !StartAttempts(early_, early_attempts_)) early_.clear();
  }

  // The batch did not commit: its jobs do not exist, and the starts
  // recorded with them are undone; jobs queued before go back in the queue.
  void Unqueued(const std::vector<QueuedJob>& jobs) override {
    std::set<JobId> batch;
    for (const auto& j : jobs) batch.insert(j.id);
    for (const auto& q : early_) {
      dispatcher_.Finished(q.group);
      if (!batch.count(q.id)) dispatcher_.Add(q);
    }
    for (const auto& j : jobs) dispatcher_.Remove(j.id);
    early_.clear();
    early_attempts_.clear();
  }

  // After the batch committed (Queuing put its jobs in the dispatcher).
  void OnIngested(std::vector<QueuedJob> jobs) {
    if (!jobs.empty()) snapshots_dirty_ = true;  // lastActivity
    for (const auto& j : jobs) spdlog::info("job {} queued for group {}", j.id, j.group);
    if (opts_.observer) opts_.observer->JobsQueued(jobs.size());
    early_.clear();
    Spawn(std::move(early_attempts_));
    early_attempts_.clear();
    SchedulePump();
  }

  // Starts attempts whose start is committed, once the snapshots they may
  // read are current: before a run, so the agent sees the current state;
  // rewritten only when something they show may have changed (with every
  // active task in current_tasks.json a write is O(tasks), docs/PERFORMANCE.md).
  void Spawn(std::vector<runner::Attempt> attempts) {
    if (attempts.empty()) return;
    if (snapshots_dirty_ || snapshots_->failed()) RequestSnapshots();
    waiting_spawn_ += attempts.size();
    snapshots_->WhenWritten([this, attempts = std::move(attempts)]() mutable {
      waiting_spawn_ -= attempts.size();
      for (auto& a : attempts) {
        if (stopped_by_us_) {
          // The shutdown stopped the running jobs while this one waited:
          // it ends like them, requeued (OnDone turns it into `lost`).
          RunOutcome o;
          o.run = a.run;
          o.run.finished_at = clock_.NowMs();
          o.run.duration_ms = 0;
          o.job_state = JobState::kFailed;
          OnDone(a.job, std::move(o));
          continue;
        }
        spdlog::info("job {} started (group {}, attempt {}, {})", a.job.id, a.job.group, a.run.attempt,
                     a.run.container_name.value_or(""));
        if (opts_.observer) opts_.observer->JobStarted(a.job.id);
        runner_->Start(std::move(a));
      }
      if (stopping_) MaybeFinishShutdown();
    });
  }

  // Pumping is deferred to an idle callback so that everything one loop turn
  // produced (a batch of files, several exits) is started together.
  void SchedulePump() {
    if (!stopping_) uv_idle_start(&pump_idle_, [](uv_idle_t* h) {
      uv_idle_stop(h);
      static_cast<Daemon*>(h->data)->GuardedPump();
    });
  }

  // Pump from a libuv callback: an exception is logged, an open transaction
  // rolled back (the ends it held are recovered at the next start), and the
  // loop goes on.
  void GuardedPump() {
    Guard("pump", [&] { Pump(); }, [&](const std::string&) {
      if (store_->InTransaction()) store_->Rollback();
    });
  }

  // One transaction per turn for everything the loop has to record: the
  // output events, the attempts that ended since the last pump, and the
  // starts of the jobs that are now ready (often the next job of a group
  // whose attempt just ended). One flush instead of one per step
  // (docs/PERFORMANCE.md). The starts sit in a savepoint, so a start that
  // cannot be recorded does not take the ended attempts with it.
  void Pump() {
    std::vector<EndedAttempt> ended = std::move(ended_);
    ended_.clear();
    std::vector<QueuedJob> start;
    if (!stopping_) start = dispatcher_.TakeStartable();
    std::vector<runner::Attempt> attempts;
    if (!ended.empty() || !start.empty() || !pending_outputs_.empty()) {
      Status s = store_->Begin();
      if (s.ok()) s = AppendOutputs();
      for (const auto& e : ended) {
        if (!s.ok()) break;
        s = store_->FinishAttempt(e.job, e.outcome);
        if (s.ok() && e.final) {
          const RunOutcome& o = e.outcome;
          s = task_timer_->JobFinished(e.job.id, o.job_state, o.result, o.error, o.run.duration_ms);
        }
      }
      if (s.ok() && !start.empty()) StartAttempts(start, attempts);
      if (s.ok()) s = store_->Commit();
      if (!s.ok()) {
        store_->Rollback();
        spdlog::error("cannot record {} output event(s), {} ended attempt(s) and {} start(s): {}",
                      pending_outputs_.size(), ended.size(), attempts.size(), s.message());
        for (const auto& e : ended) {
          spdlog::error("job {}: the end of attempt {} is not recorded; it is recovered at the next start", e.job.id,
                        e.outcome.run.attempt);
        }
        for (const auto& a : attempts) {
          dispatcher_.Finished(a.job.group);
          dispatcher_.Add({a.job.id, a.job.group, a.job.priority, clock_.NowMs()});
        }
        attempts.clear();
      }
      pending_outputs_.clear();
      for (auto& e : ended) Announce(e);
    }
    Spawn(std::move(attempts));
    if (stopping_) {
      MaybeFinishShutdown();
      return;
    }
    ArmWake();
    if (opts_.once && runner_->active() == 0 && waiting_spawn_ == 0 && writing_results_ == 0 && ended_.empty() &&
        !ingestor_->pending() && !inbox_->pending()) {
      spdlog::info("--once: nothing left that is ready to run");
      Shutdown();
    }
  }

  // Records the starts of `start` (taken from the dispatcher) inside the
  // open transaction, in a savepoint of its own, and fills `attempts`. On
  // failure the savepoint is undone, the jobs go back in the queue, and
  // `attempts` is left empty.
  bool StartAttempts(const std::vector<QueuedJob>& start, std::vector<runner::Attempt>& attempts) {
    Status s = store_->Savepoint("start_jobs");
    if (s.ok()) s = RecordStarts(start, attempts);
    if (s.ok()) s = store_->Release("start_jobs");
    if (s.ok()) return true;
    if (Status u = store_->RollbackTo("start_jobs"); !u.ok()) {
      spdlog::error("cannot undo the starts' savepoint: {}", u.message());
    }
    spdlog::error("cannot start jobs: {}; they stay queued", s.message());
    for (const auto& q : start) {
      dispatcher_.Finished(q.group);
      dispatcher_.Add(q);
    }
    attempts.clear();
    return false;
  }

  Status RecordStarts(const std::vector<QueuedJob>& start, std::vector<runner::Attempt>& attempts) {
    Status s;
    for (const auto& q : start) {
      auto job = store_->GetJob(q.id);
      if (!job.ok() || !*job) {
        s = job.ok() ? Status::NotFound("job " + std::to_string(q.id) + " vanished") : job.status();
        break;
      }
      auto run = store_->StartAttempt(q.id, std::string(runtime_->name()),
                                      runner::ContainerName(q.group, clock_.NowMs()));
      if (!run.ok()) {
        s = run.status();
        break;
      }
      bool scheduled = task_timer_->IsTaskJob(q.id);
      if (scheduled) {
        if (s = task_timer_->JobStarted(q.id, run->started_at); !s.ok()) break;
      }
      runner::Attempt a;
      a.job = **job;
      a.job.attempts = run->attempt;
      a.job.state = JobState::kRunning;
      a.run = *run;
      a.is_scheduled_task = scheduled;
      const GroupConfig* g = groups_.Find(q.group);
      a.is_main = g && g->is_main;
      // NanoClaw agents address their own group by chatJid: the jid, or the
      // folder for a group that has none.
      a.chat_jid = g && g->jid ? *g->jid : q.group;
      a.secrets = secrets_;
      if (auto m = extra_mounts_.find(q.group); m != extra_mounts_.end()) a.extra_mounts = m->second;
      a.timeout_ms = a.job.timeout_ms.value_or(g && g->timeout_ms ? *g->timeout_ms : cfg_.timeout_ms);
      if (a.job.context_mode == ContextMode::kGroup) {
        auto sess = store_->GetSession(q.group);
        if (sess.ok()) a.session_id = *sess;
      }
      attempts.push_back(std::move(a));
    }
    return s;
  }

  void ArmWake() {
    auto next = dispatcher_.NextWakeup();
    if (!next) {
      uv_timer_stop(&wake_);
      return;
    }
    TimeMs delay = std::max<TimeMs>(0, *next - clock_.NowMs());
    uv_timer_start(&wake_, [](uv_timer_t* t) { static_cast<Daemon*>(t->data)->GuardedPump(); },
                   static_cast<std::uint64_t>(delay), 0);
    // In --once mode a future job must not keep the loop alive.
    if (opts_.once) uv_unref(reinterpret_cast<uv_handle_t*>(&wake_));
  }

  // Control commands dropped into tasks/ (watcher::CommandHandler).
  Result<std::string> Apply(const watcher::IngestGroup& from, const watcher::ClaimedFile& file,
                            const watcher::JobCommand& cmd) override {
    if (auto r = ApplyTaskCommand(from, file, cmd)) {
      if (r->ok()) RequestSnapshots();
      return std::move(*r);
    }
    if (const auto* r = std::get_if<watcher::RegisterGroup>(&cmd)) return RegisterGroup(from, cmd, *r);
    if (std::holds_alternative<watcher::RefreshGroups>(cmd)) return RefreshGroups(from, cmd);
    const auto* cancel = std::get_if<watcher::CancelJob>(&cmd);
    const auto* retry = std::get_if<watcher::RetryJob>(&cmd);
    JobId id = cancel ? cancel->job_id : retry->job_id;
    auto job = store_->GetJob(id);
    if (!job.ok()) return job.status();
    std::optional<std::string> owner;
    if (*job) owner = (*job)->group;
    auto allowed = watcher::Authorize(from, groups_.identities(), cmd, owner);
    if (!allowed.ok()) return allowed.status();
    nlohmann::json by = {{"by_group", from.folder}, {"file", file.name}};
    return cancel ? CancelJob(**job, by) : RetryJob(**job, by);
  }

  // register_group: main adds a group (or updates one it registered),
  // which is served at once: its directories made, its tasks/ and
  // messages/ watched, its files already there ingested.
  Result<std::string> RegisterGroup(const watcher::IngestGroup& from, const watcher::JobCommand& command,
                                    const watcher::RegisterGroup& cmd) {
    auto allowed = watcher::Authorize(from, groups_.identities(), command);
    if (!allowed.ok()) return allowed.status();
    if (Status s = groups_.CheckRegistrable(cmd.folder); !s.ok()) return s;
    RegisteredGroup row = ToRegisteredGroup(cmd);
    auto group = ToGroupConfig(row);
    if (!group.ok()) return group.status();
    if (Status s = PrepareGroupDirs(cmd.folder); !s.ok()) return s;
    // A savepoint: the Ingestor's transaction around Apply commits it with
    // the file's `applied` event.
    Status s = store_->Savepoint("register_group");
    Result<bool> added = s.ok() ? store_->UpsertRegisteredGroup(row) : Result<bool>(s);
    nlohmann::json detail = {{"folder", cmd.folder}, {"jid", cmd.jid}, {"name", cmd.name}, {"by_group", from.folder}};
    if (added.ok()) {
      detail["action"] = *added ? "registered" : "updated";
      s = store_->AppendEvent(std::nullopt, cmd.folder, "group_registered", text::Dump(detail));
    } else {
      s = added.status();
    }
    if (s.ok()) s = store_->Release("register_group");
    if (!s.ok()) {
      (void)store_->RollbackTo("register_group");
      return s;
    }
    LoadAdditionalMounts(*group);
    groups_.Put(std::move(*group));
    ingestor_->SetGroups(groups_.identities());
    inbox_->SetGroups(groups_.identities());
    watcher_->AddGroup(cmd.folder);
    ingestor_->ScanAll();
    inbox_->ScanAll();
    watcher_->Kick();
    spdlog::info("group {} {} by {}: drop job files into {}", cmd.folder, detail["action"].get<std::string>(),
                 from.folder, layout_.TasksDir(cmd.folder).string());
    RequestSnapshots();
    return text::Dump(detail);
  }

  // refresh_groups: main's available_groups.json is rewritten at once.
  Result<std::string> RefreshGroups(const watcher::IngestGroup& from, const watcher::JobCommand& cmd) {
    auto allowed = watcher::Authorize(from, groups_.identities(), cmd);
    if (!allowed.ok()) return allowed.status();
    if (Status s = snapshots_->WriteNow(*store_, groups_.identities(), from.folder, /*refresh=*/true); !s.ok()) {
      return s;
    }
    return text::Dump(nlohmann::json{{"action", "refreshed"}, {"groups", groups_.all().size()}});
  }

  // schedule_task, pause_task, resume_task, cancel_task; nullopt for any
  // other command.
  std::optional<Result<std::string>> ApplyTaskCommand(const watcher::IngestGroup& from,
                                                      const watcher::ClaimedFile& file,
                                                      const watcher::JobCommand& cmd) {
    if (const auto* s = std::get_if<watcher::ScheduleTask>(&cmd)) {
      auto allowed = watcher::Authorize(from, groups_.identities(), cmd);
      if (!allowed.ok()) return Result<std::string>(allowed.status());
      return task_timer_->Schedule(*s, allowed->folder, allowed->chat_jid, file.token);
    }
    const std::string* id = nullptr;
    if (const auto* c = std::get_if<watcher::PauseTask>(&cmd)) id = &c->task_id;
    if (const auto* c = std::get_if<watcher::ResumeTask>(&cmd)) id = &c->task_id;
    if (const auto* c = std::get_if<watcher::CancelTask>(&cmd)) id = &c->task_id;
    if (id == nullptr) return std::nullopt;
    auto allowed = watcher::Authorize(from, groups_.identities(), cmd, task_timer_->OwnerOf(*id));
    if (!allowed.ok()) return Result<std::string>(allowed.status());
    if (std::holds_alternative<watcher::PauseTask>(cmd)) return task_timer_->Pause(*id);
    if (std::holds_alternative<watcher::ResumeTask>(cmd)) return task_timer_->Resume(*id);
    return task_timer_->Cancel(*id);
  }

  // Cancelling is idempotent: a queued job is cancelled at once, a running
  // one is stopped (graceful, then kill) and recorded cancelled when it
  // ends, a finished one is left as it is.
  Result<std::string> CancelJob(const Job& job, nlohmann::json detail) {
    if (job.state == JobState::kQueued) {
      // As in OnDone: the result file before the commit that makes it final.
      RunOutcome o;
      o.job_state = JobState::kCancelled;
      o.error = "cancelled";
      o.run.attempt = job.attempts;
      if (auto path = runner::WriteResultFile(layout_, job, o); !path.ok()) {
        spdlog::error("job {}: cannot write result: {}", job.id, path.status().message());
      }
      auto done = store_->CancelQueued(job.id, text::Dump(detail));
      if (!done.ok()) return done.status();
      if (Status s = task_timer_->JobFinished(job.id, JobState::kCancelled, std::nullopt, "cancelled", std::nullopt);
          !s.ok()) {
        spdlog::error("job {}: cannot record its task run: {}", job.id, s.message());
      }
      dispatcher_.Remove(job.id);
      spdlog::info("job {} cancelled", job.id);
      return text::Dump(nlohmann::json{{"job", job.id}, {"action", "cancelled"}});
    }
    if (job.state == JobState::kRunning && runner_->Stop(job.id)) {
      cancel_requested_[job.id] = text::Dump(detail);
      spdlog::info("job {} cancelled while running: stopping it", job.id);
      return text::Dump(nlohmann::json{{"job", job.id}, {"action", "stopping"}});
    }
    return text::Dump(nlohmann::json{{"job", job.id}, {"action", "none"}, {"state", ToString(job.state)}});
  }

  Result<std::string> RetryJob(const Job& job, nlohmann::json detail) {
    auto done = store_->Requeue(job.id, text::Dump(detail));
    if (!done.ok()) return done.status();
    if (!*done) {
      return Status::InvalidArgument("job " + std::to_string(job.id) + " is " + std::string(ToString(job.state)) +
                                     "; only failed or cancelled jobs can be retried");
    }
    dispatcher_.Add({job.id, job.group, job.priority, clock_.NowMs()});
    SchedulePump();
    spdlog::info("job {} requeued with fresh attempts", job.id);
    return text::Dump(nlohmann::json{{"job", job.id}, {"action", "requeued"}});
  }

  // Each block as it streams in: an `output` audit event (status and size,
  // not the result itself, which the result file and jobs.result hold).
  // The event is not committed on its own (an fsync per block bounded
  // end-to-end throughput, docs/PERFORMANCE.md): it joins the next pump's
  // transaction, with the attempt's end when that is ready too. While
  // stopping, the attempt's end runs the pump itself (Ended).
  void OnOutput(const Job& job, std::int64_t attempt, const runner::AgentOutput& out) {
    nlohmann::json d = {{"attempt", attempt}, {"status", out.status},
                        {"result_bytes", out.result_json ? out.result_json->size() : 0}};
    if (out.error) d["error"] = *out.error;
    pending_outputs_.push_back({job.id, job.group, text::Dump(d)});
    SchedulePump();
  }

  // Appends the pending output events; call inside a transaction.
  Status AppendOutputs() {
    for (const auto& o : pending_outputs_) {
      if (Status s = store_->AppendEvent(o.job, o.group, "output", o.detail); !s.ok()) return s;
    }
    return Status::Ok();
  }

  void OnDone(const Job& job, RunOutcome o) {
    bool final = true;
    if (auto c = cancel_requested_.find(job.id); c != cancel_requested_.end()) {
      // Stopped because someone cancelled it: cancelled, never retried.
      cancel_requested_.erase(c);
      o.job_state = JobState::kCancelled;
      o.run.status = "cancelled";
      o.error = o.run.error = "cancelled";
    } else if (stopped_by_us_ && o.job_state == JobState::kFailed) {
      // Stopped by our own shutdown: not the job's fault. Requeue it now.
      o.run.status = "lost";
      o.error = o.run.error = "stopped by dropq shutdown";
      o.retry_at = clock_.NowMs();
      // An interruption, not one of the job's attempts; and never a reason
      // to fail it (only recovery after a kill checks max_interruptions).
      o.interrupted = true;
      final = false;
    } else if (o.job_state == JobState::kFailed && job.CountedAttempts() < job.max_attempts) {
      // Attempts dropq's stops cut short count neither here nor in the
      // backoff.
      std::int64_t counted = std::max<std::int64_t>(1, job.CountedAttempts());
      TimeMs ceiling = std::min(kRetryCapMs, kRetryBaseMs << std::min<std::int64_t>(counted - 1, 20));
      std::uniform_int_distribution<TimeMs> jitter(0, ceiling);
      o.retry_at = clock_.NowMs() + jitter(rng_);
      final = false;
    }
    Finish(job, std::move(o), final);
  }

  // Records the end of an attempt. A final outcome writes the result file
  // first, then commits: a crash between the two leaves the attempt
  // `running` in the database, so it is recovered as lost and run again, and
  // the file is rewritten. The other order lost result files for good (found
  // by the chaos suite). The file is written on the libuv thread pool, so
  // the loop goes on starting and finishing other attempts meanwhile; the
  // commit is the next pump's. When the file cannot be written for lack of
  // space (ENOSPC, EDQUOT) the job is not recorded as ended either: it is
  // tried again with backoff, and its group waits, so no job ends without
  // its result file.
  void Finish(const Job& job, RunOutcome o, bool final) {
    if (!final) {
      Ended(job, std::move(o), false);
      return;
    }
    struct ResultWrite {
      uv_work_t req;
      Daemon* self;
      Job job;
      RunOutcome outcome;
      Result<std::string> path = std::string();  // set by the pool thread
    };
    auto* w = new ResultWrite{{}, this, job, std::move(o)};
    w->req.data = w;
    ++writing_results_;
    uv_queue_work(
        &loop_, &w->req,
        [](uv_work_t* req) {
          auto* w = static_cast<ResultWrite*>(req->data);
          Guard(
              "result file writer", [&] { w->path = runner::WriteResultFile(w->self->layout_, w->job, w->outcome); },
              [&](const std::string& why) { w->path = Status::IOError(why); });
        },
        [](uv_work_t* req, int) {
          std::unique_ptr<ResultWrite> w(static_cast<ResultWrite*>(req->data));
          --w->self->writing_results_;
          Guard("result file written", [&] { w->self->ResultWritten(w->job, std::move(w->outcome), w->path); });
        });
  }

  void ResultWritten(const Job& job, RunOutcome o, const Result<std::string>& path) {
    if (!path.ok() && path.status().code() == Status::Code::kNoSpace) {
      result_retry_ms_ = std::min<std::uint64_t>(30'000, result_retry_ms_ ? result_retry_ms_ * 2 : 1'000);
      spdlog::error("job {}: cannot write its result file: {}; the job ends when it is written (next try in {} ms)",
                    job.id, path.status().message(), result_retry_ms_);
      unwritten_.push_back({job, std::move(o)});
      if (stopping_) {
        MaybeFinishShutdown();
      } else {
        uv_timer_start(&result_retry_, [](uv_timer_t* t) {
          Guard("result file retry", [&] { static_cast<Daemon*>(t->data)->RetryResults(); });
        },
                       result_retry_ms_, 0);
      }
      return;
    }
    if (!path.ok()) {
      // Not a passing fault (the group planted a symlink, say): logged,
      // and the job ends without it.
      spdlog::error("job {}: cannot write result: {}", job.id, path.status().message());
    } else if (!unwritten_.empty() || result_retry_ms_ != 0) {
      result_retry_ms_ = 0;  // the disk has room again
    }
    Ended(job, std::move(o), true);
  }

  // The attempt is over: its group may run its next job, and the end is
  // recorded by the next pump (at once while stopping).
  void Ended(const Job& job, RunOutcome o, bool final) {
    dispatcher_.Finished(job.group);
    ended_.push_back({job, std::move(o), final});
    if (stopping_) {
      Pump();
    } else {
      SchedulePump();
    }
  }

  // After the end is committed (or could not be): the observer, the log
  // line, and a retry put back in the queue.
  void Announce(const EndedAttempt& e) {
    const Job& job = e.job;
    const RunOutcome& o = e.outcome;
    if (opts_.observer) opts_.observer->AttemptEnded(job.id, o.job_state, e.final);
    if (e.final) {
      if (o.job_state == JobState::kSucceeded) {
        spdlog::info("job {} succeeded in {} ms", job.id, o.run.duration_ms.value_or(0));
      } else if (o.job_state == JobState::kCancelled) {
        spdlog::info("job {} cancelled", job.id);
      } else {
        spdlog::warn("job {} failed: {}", job.id, o.error.value_or("unknown error"));
      }
    } else if (o.retry_at) {
      spdlog::warn("job {} attempt {} failed ({}); retry at {}", job.id, o.run.attempt, o.error.value_or(""),
                   FormatIsoUtc(*o.retry_at));
      dispatcher_.Add({job.id, job.group, job.priority, *o.retry_at});
    }
  }

  void RetryResults() {
    auto pending = std::move(unwritten_);
    unwritten_.clear();
    for (auto& [job, outcome] : pending) Finish(job, std::move(outcome), true);
  }

  // First signal: stop ingesting and starting, let running jobs finish for
  // up to shutdown_grace, then stop them (they are requeued for the next
  // start). A second signal stops them at once.
  void Shutdown() {
    if (stopping_) {
      StopRunning();
      return;
    }
    stopping_ = true;
    watcher_->Close();
    if (task_timer_) task_timer_->Close();
    uv_timer_stop(&wake_);
    uv_idle_stop(&pump_idle_);
    if (runner_->active() > 0 && cfg_.shutdown_grace_ms > 0 && !opts_.once) {
      spdlog::info("waiting up to {} ms for {} running job(s) to finish (signal again to stop them now)",
                   cfg_.shutdown_grace_ms, runner_->active());
      uv_timer_start(&wake_, [](uv_timer_t* t) {
        Guard("shutdown grace", [&] { static_cast<Daemon*>(t->data)->StopRunning(); });
      },
                     static_cast<std::uint64_t>(cfg_.shutdown_grace_ms), 0);
    } else {
      StopRunning();
    }
    // The pump just stopped may have had attempt ends or output events to
    // record: record them now (Pump starts nothing while stopping, then
    // finishes the shutdown if nothing else is pending). Without this, a
    // signal in the loop turn between an attempt's end and its pump left
    // the daemon waiting forever (found by make bench).
    Pump();
  }

  void StopRunning() {
    if (runner_->active() == 0 || stopped_by_us_) return;
    spdlog::info("stopping {} running job(s); they will be requeued", runner_->active());
    stopped_by_us_ = true;
    runner_->StopAll();
  }

  void MaybeFinishShutdown() {
    if (runner_->active() > 0 || waiting_spawn_ > 0 || writing_results_ > 0 || !ended_.empty() || closed_) return;
    closed_ = true;
    uv_timer_stop(&wake_);
    if (!unwritten_.empty()) {
      spdlog::warn("{} job(s) ended without their result file written; they are run again at the next start",
                   unwritten_.size());
    }
    if (publisher_) publisher_->Close();
    for (uv_handle_t* h : {reinterpret_cast<uv_handle_t*>(&wake_), reinterpret_cast<uv_handle_t*>(&pump_idle_),
                           reinterpret_cast<uv_handle_t*>(&result_retry_),
                           reinterpret_cast<uv_handle_t*>(&sigint_), reinterpret_cast<uv_handle_t*>(&sigterm_)}) {
      uv_close(h, nullptr);
    }
  }

  const Config& cfg_;
  DaemonOptions opts_;
  SystemClock clock_;
  Layout layout_;
  Dispatcher dispatcher_;
  Groups groups_;  // the config's and the registered groups
  std::unique_ptr<Store> store_;
  std::string instance_id_;  // this root's (Store::InstanceId); labels its containers
  std::unique_ptr<runner::Runtime> runtime_;
  std::unique_ptr<watcher::Ingestor> ingestor_;
  uv_loop_t loop_{};
  std::unique_ptr<runner::Runner> runner_;
  std::unique_ptr<watcher::Watcher> watcher_;
  std::unique_ptr<TaskTimer> task_timer_;
  std::unique_ptr<MessageInbox> inbox_;
  uv_timer_t wake_{};
  uv_idle_t pump_idle_{};
  uv_timer_t result_retry_{};
  std::uint64_t result_retry_ms_ = 0;
  std::vector<std::pair<Job, RunOutcome>> unwritten_;  // ended, result file not written yet
  int writing_results_ = 0;  // result files being written on the thread pool
  std::vector<EndedAttempt> ended_;  // attempts over, their end not yet committed
  // Started inside an ingest batch's transaction (Queuing), spawned once it
  // commits (OnIngested).
  std::vector<QueuedJob> early_;
  std::vector<runner::Attempt> early_attempts_;
  uv_signal_t sigint_{}, sigterm_{};
  bool stopping_ = false, stopped_by_us_ = false, closed_ = false;
  std::mt19937_64 rng_{std::random_device{}()};
  std::map<std::string, std::string> secrets_;
  InstanceLock lock_;
  std::map<JobId, std::string> cancel_requested_;  // job → audit detail of the cancel
  struct PendingOutput {
    JobId job;
    std::string group;
    std::string detail;
  };
  std::vector<PendingOutput> pending_outputs_;  // output events not yet in a transaction
  bool snapshots_dirty_ = true;  // tasks or job activity changed since the last request
  std::unique_ptr<SnapshotWriter> snapshots_;
  std::size_t waiting_spawn_ = 0;  // attempts started in the store, waiting for the snapshots
  std::map<std::string, std::vector<runner::Mount>> extra_mounts_;
  std::optional<runner::MountAllowlist> allowlist_;
  bool allowlist_loaded_ = false;
  LiveMetrics metrics_;
  std::unique_ptr<MetricsPublisher> publisher_;
  std::unique_ptr<Dashboard> dashboard_;
};

}  // namespace

int RunDaemon(const Config& config, const DaemonOptions& options) {
#ifdef __GLIBC__
  // One malloc arena for every thread. With one per thread, each of libuv's
  // pool threads that once built a big snapshot kept ~50 MB that
  // malloc_trim did not give back: 100,000 tasks held 260 MB instead of
  // 70-140 MB (docs/PERFORMANCE.md). The threads allocate little and
  // seldom at the same time, so the shared lock costs nothing measurable.
  mallopt(M_ARENA_MAX, 1);
#endif
  Daemon d(config, options);
  return d.Run();
}

}  // namespace dropq::app
