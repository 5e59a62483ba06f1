#include "daemon/daemon.h"

#include <signal.h>
#include <sys/resource.h>
#include <time.h>
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

#include "daemon/attempts.h"
#include "daemon/commands.h"
#include "daemon/dependencies.h"
#include "jobs/dependencies.h"
#include "daemon/group_mounts.h"
#include "daemon/notifier.h"
#include "jobs/dispatcher.h"
#include "jobs/layout.h"
#include "jobs/retry.h"
#include "jobs/store.h"
#include "daemon/groups.h"
#include "dashboard/dashboard.h"
#include "daemon/instance_lock.h"
#include "daemon/reload.h"
#include "config/logging.h"
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
#include "base/atomic_file.h"
#include "base/guard.h"
#include "base/loop_time.h"
#include "base/service_notify.h"

namespace dropq::app {

namespace {

// Each running attempt holds four descriptors (its three pipes and a pidfd,
// base/process.h), more while it starts and writes its log. With a cluster
// runtime max_concurrent can be in the hundreds, past the usual soft limit
// of 1024: raise the soft limit towards the hard one as far as the limit
// needs (no further, so agents keep the usual limit otherwise), and say so
// when even the hard limit is short. At start-up and after a reload.
void EnsureDescriptorsFor(std::int64_t max_concurrent) {
  const rlim_t want = 256 + 8 * static_cast<rlim_t>(max_concurrent);
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur >= want) return;
  const rlim_t before = lim.rlim_cur;
  lim.rlim_cur = lim.rlim_max == RLIM_INFINITY ? want : std::min(want, lim.rlim_max);
  if (lim.rlim_cur > before && ::setrlimit(RLIMIT_NOFILE, &lim) == 0) {
    spdlog::info("open file limit raised from {} to {} for max_concurrent {}", before, lim.rlim_cur, max_concurrent);
  } else {
    lim.rlim_cur = before;
  }
  if (lim.rlim_cur < want) {
    spdlog::warn("max_concurrent {} wants about {} open files, but the limit is {} (hard limit {}); raise it "
                 "(systemd: LimitNOFILE=) or attempts may fail to start",
                 max_concurrent, want, lim.rlim_cur, lim.rlim_max);
  }
}

class Daemon final : public watcher::CommandHandler {
 public:
  Daemon(const Config& cfg, const DaemonOptions& opts)
      : cfg_(cfg),
        opts_(opts),
        layout_(cfg.root),
        dispatcher_(clock_, static_cast<int>(cfg.max_concurrent), static_cast<int>(cfg.max_concurrent_per_group)),
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
  using EndedAttempt = Attempts::End;

  Status Setup() {
    if (Status s = layout_.CreateCommon(); !s.ok()) return s;
    EnsureDescriptorsFor(cfg_.max_concurrent);
    if (Status s = lock_.Acquire(layout_.LockPath().string()); !s.ok()) return s;
    auto store = Store::Open(layout_.DatabasePath().string(), clock_);
    if (!store.ok()) return store.status();
    store_ = std::move(*store);
    // Made at the first start and kept: it marks this root's containers.
    auto instance = store_->InstanceId();
    if (!instance.ok()) return instance.status();
    instance_id_ = std::move(*instance);
    // One transaction for every configured group: one commit, not one per
    // group (a first start of 2,000 groups committed 2,000 times).
    if (Status s = store_->Begin(); !s.ok()) return s;
    for (const auto& g : cfg_.groups) {
      if (Status s = store_->UpsertGroup(g.folder, g.name, g.jid, g.is_main); !s.ok()) {
        store_->Rollback();
        return s;
      }
    }
    if (Status s = store_->Commit(); !s.ok()) return s;
    auto registered = store_->ListRegisteredGroups();
    if (!registered.ok()) return registered.status();
    for (const auto& why : groups_.AddRegistered(*registered)) spdlog::error("{}", why);
    // Every group's new directories made durable together, after the last
    // (one journal commit, not one per group).
    NewDirs made;
    for (const auto& g : groups_.all()) {
      // A group whose folders are broken (a symlink it planted) is logged
      // and left alone; the other groups are still served.
      if (Status s = PrepareGroupDirs(layout_, g.folder, &made); !s.ok())
        spdlog::error("group {}: {}", g.folder, s.message());
    }
    // The directories exist; only their surviving a crash is in doubt, and
    // the next start makes any that are missing.
    if (Status s = made.Flush(); !s.ok()) spdlog::error("group directories: {}", s.message());

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
    for (const auto& g : groups_.all()) mounts_.Load(g);
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
      if (Status n = QueueFinishNotice(*store_, cfg_, groups_.Find(job.group), job, o); !n.ok()) return n;
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
      spdlog::warn(
          "recovered {} job(s) interrupted by an earlier stop: {} requeued, {} failed (interrupted more "
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
    deps_ = std::make_unique<Dependencies>(*store_, layout_, dispatcher_, [this](const Job& job, const RunOutcome& o) {
      notices_queued_ = true;  // looked at after the commit (the pump's end)
      return QueueFinishNotice(*store_, cfg_, groups_.Find(job.group), job, o);
    });
    // Waiting jobs whose dependencies ended while no dropq ran them to a
    // decision (a crash between an end and its commit, a job recovery
    // failed just now): decided before anything runs.
    if (Status s = SettleWaiting(queued_count); !s.ok()) return s;
    if (opts_.observer) opts_.observer->JobsQueued(queued_count);
    ApplyGroupConcurrency();
    if (Status s = ApplyRateLimits(); !s.ok()) return s;

    uv_loop_init(&loop_);
    loop_.data = this;
    StartLoopTimeRefresh(&loop_, &loop_time_);
    uv_idle_init(&loop_, &pump_idle_);
    pump_idle_.data = this;
    uv_timer_init(&loop_, &trim_timer_);
    trim_timer_.data = this;
    uv_timer_init(&loop_, &spawn_later_);
    spawn_later_.data = this;
    StartNotifier();
    snapshots_ = std::make_unique<SnapshotWriter>(&loop_, layout_, *store_, layout_.DatabasePath().string(), clock_);
    runner::RunnerOptions ro{cfg_.agent, cfg_.max_output, cfg_.kill_grace_ms, cfg_.session_dir};
    runner_ = std::make_unique<runner::Runner>(
        &loop_, layout_, *runtime_, ro, clock_,
        [this](const Job& j, RunOutcome o) { attempts_->Exited(j, std::move(o)); },
        [this](const Job& j, std::int64_t attempt, const runner::AgentOutput& out) { OnOutput(j, attempt, out); },
        [this](const Job& j, std::int64_t attempt, std::int64_t waited_ms) { OnAllocated(j, attempt, waited_ms); });
    attempts_ = std::make_unique<Attempts>(*runner_, clock_, AttemptHooks(),
                                           [this] { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); });
    MessageOptions mo;
    mo.groups = groups_.identities();
    mo.on_message = cfg_.on_message;
    mo.after_delivery = [this] { SchedulePump(); };  // `--once` looks again
    inbox_ = std::make_unique<MessageInbox>(&loop_, *store_, layout_, std::move(mo), clock_);
    if (Status s = inbox_->Reconcile(); !s.ok()) return s;
    std::vector<std::string> folders;
    for (const auto& g : groups_.all()) folders.push_back(g.folder);
    // The ingest pass is the turn's (Pump), not the watcher's own.
    watcher_ =
        std::make_unique<watcher::Watcher>(&loop_, layout_, *ingestor_, folders, watcher::Watcher::JobsCallback(),
                                           60'000, inbox_.get(), [this] { SchedulePump(); });
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
        if (auto done = commands_->CancelJob(**job, nlohmann::json{{"by", "overlap: replace"}}); !done.ok()) {
          spdlog::error("job {}: cannot cancel it for its task's overlap policy: {}", id, done.status().message());
        }
      }
    };
    task_timer_ = std::make_unique<TaskTimer>(&loop_, *store_, cfg_, std::move(hooks));
    ControlCommands::Hooks ch;
    ch.snapshots_changed = [this] { RequestSnapshots(); };
    ch.queue_changed = [this] { SchedulePump(); };
    ch.prepare_group = [this](const std::string& folder) { return PrepareGroupDirs(layout_, folder); };
    ch.finished = [this](const Job& job, const RunOutcome& o) {
      notices_queued_ = true;  // looked at after the commit (the pump's end)
      SchedulePump();
      return QueueFinishNotice(*store_, cfg_, groups_.Find(job.group), job, o);
    };
    ch.group_registered = [this](const GroupConfig& g) {
      mounts_.Load(g);
      registered_.push_back(g.folder);
    };
    commands_ = std::make_unique<ControlCommands>(
        ControlCommands::Parts{*store_, layout_, clock_, groups_, dispatcher_, *task_timer_, *attempts_, *snapshots_,
                               *deps_},
        std::move(ch));
    if (Status s = task_timer_->Start(); !s.ok()) return s;

    uv_timer_init(&loop_, &wake_);
    wake_.data = this;
    uv_timer_init(&loop_, &result_retry_);
    result_retry_.data = this;
    for (auto [sig, h] :
         {std::pair<int, uv_signal_t*>{SIGINT, &sigint_}, std::pair<int, uv_signal_t*>{SIGTERM, &sigterm_}}) {
      uv_signal_init(&loop_, h);
      h->data = this;
      uv_signal_start(
          h,
          [](uv_signal_t* h, int signum) {
            Guard("signal handler", [&] {
              spdlog::info("signal {} received: stopping", signum);
              static_cast<Daemon*>(h->data)->Shutdown();
            });
          },
          sig);
    }
    uv_signal_init(&loop_, &sighup_);
    sighup_.data = this;
    uv_signal_start(
        &sighup_,
        [](uv_signal_t* h, int) {
          auto* self = static_cast<Daemon*>(h->data);
          Guard(
              "reload", [&] { self->Reload(); },
              [&](const std::string& why) {
                if (self->store_->InTransaction()) self->store_->Rollback();
                self->RefuseReload(why);
              });
        },
        SIGHUP);
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
    ServiceNotify("READY=1");  // systemd's Type=notify (docs/SERVICE.md)
    // On this thread: the first runs must see them. Not flushed: derived
    // files, rewritten by every start that finds them different
    // (runner/snapshots.h).
    if (Status s = snapshots_->WriteNow(*store_, groups_.identities()); s.ok()) {
      snapshots_dirty_ = false;
    }
    SchedulePump();
#ifdef __GLIBC__
    // Start-up (the YAML document, upserting every schedule) leaves freed
    // heap that glibc keeps; give it back: the daemon's resident memory is
    // what an operator sees, and the portable backend's uv_spawn forks it.
    malloc_trim(0);
#endif
    return Status::Ok();
  }

  // on_finish deliveries (daemon/notifier.h): one timer at the next due
  // try; the rows an earlier run left are tried at the first pump.
  void StartNotifier() {
    uv_timer_init(&loop_, &notify_timer_);
    notify_timer_.data = this;
    // In --once mode a later try must not keep the loop alive: it waits
    // for the next start.
    if (opts_.once) uv_unref(reinterpret_cast<uv_handle_t*>(&notify_timer_));
    notice_sender_ = std::make_unique<PoolNoticeSender>(&loop_);
    Notifier::Hooks h;
    h.arm = [this](std::int64_t delay_ms) {
      uv_timer_start(
          &notify_timer_,
          [](uv_timer_t* t) { Guard("on_finish timer", [&] { static_cast<Daemon*>(t->data)->notifier_->Kick(); }); },
          static_cast<std::uint64_t>(std::max<std::int64_t>(0, delay_ms)), 0);
    };
    h.disarm = [this] { uv_timer_stop(&notify_timer_); };
    h.settled = [this] { SchedulePump(); };  // `--once` looks again
    notifier_ = std::make_unique<Notifier>(*store_, clock_, *notice_sender_, std::move(h));
    notices_queued_ = true;
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
      f.rate_limits = rate_limits_;
      return f;
    });
    publisher_->Start(&loop_);
    DashboardOptions o{
        cfg_.dashboard.host,     cfg_.dashboard.port,     !cfg_.dashboard.allow_remote, layout_.DatabasePath().string(),
        layout_.root().string(), cfg_.dashboard.tls_cert, cfg_.dashboard.tls_key,       cfg_.dashboard.token_file};
    dashboard_ = std::make_unique<Dashboard>(std::move(o), clock_, metrics_);
    if (Status s = dashboard_->Start(); !s.ok()) return s;
    const std::string& h = cfg_.dashboard.host;
    spdlog::info("dashboard on {}://{}:{}/ (metrics at /metrics{})", dashboard_->scheme(),
                 h.find(':') != std::string::npos ? "[" + h + "]" : h, dashboard_->port(),
                 cfg_.dashboard.token_file.empty() ? "" : "; API and metrics need the bearer token");
    return Status::Ok();
  }

  // The `ready` event's detail: who is ready, and where its dashboard is.
  std::string ReadyDetail() const {
    nlohmann::json d = {{"pid", ::getpid()}, {"version", DROPQ_VERSION}, {"instance", instance_id_}};
    for (const auto& g : groups_.all()) d["groups"].push_back(g.folder);
    if (dashboard_) {
      const std::string& h = cfg_.dashboard.host;
      d["dashboard"] = std::string(dashboard_->scheme()) + "://" +
                       (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" +
                       std::to_string(dashboard_->port()) + "/";
    }
    return text::Dump(d);
  }

  std::unique_ptr<runner::Runtime> MakeRuntime() const { return app::MakeRuntime(cfg_, instance_id_); }

  // current_tasks.json and available_groups.json for every group, written
  // on the thread pool (files are rewritten only when their content
  // changed). A write that failed is tried again before the next run.
  void RequestSnapshots() {
    snapshots_->Request(groups_.identities());
    snapshots_dirty_ = false;
  }

  // Start-up: every waiting job is decided once, in one transaction.
  Status SettleWaiting(std::size_t& queued_count) {
    auto waiting = deps::ListWaiting(*store_);
    if (!waiting.ok()) return waiting.status();
    if (waiting->empty()) return Status::Ok();
    std::vector<QueuedJob> released;
    Status s = store_->Begin();
    if (s.ok()) s = deps_->Settle(*waiting, released);
    if (s.ok()) s = store_->Commit();
    if (!s.ok()) {
      store_->Rollback();
      for (const auto& j : released) dispatcher_.Remove(j.id);
      return Status::IOError("cannot decide the jobs waiting for others: " + s.message());
    }
    queued_count += released.size();
    spdlog::info("{} job(s) wait for others; {} released at start", waiting->size(), released.size());
    return Status::Ok();
  }

  // A line per queued job, or for a group that queued more than
  // kQueuedLines in one pass one line with their count and ids (a burst of
  // 10,000 files wrote 10,000 lines, a tenth of the ingest's CPU); each
  // job's own line is still there at debug level, and its `received` event
  // in job_events.
  static constexpr std::size_t kQueuedLines = 10;
  static void LogQueued(const std::vector<QueuedJob>& jobs) {
    std::map<std::string, std::vector<JobId>> by_group;
    for (const auto& j : jobs) by_group[j.group].push_back(j.id);
    for (const auto& [group, ids] : by_group) {
      if (ids.size() <= kQueuedLines) {
        for (JobId id : ids) spdlog::info("job {} queued for group {}", id, group);
        continue;
      }
      auto [lo, hi] = std::minmax_element(ids.begin(), ids.end());
      spdlog::info("{} jobs queued for group {}, ids {} to {}", ids.size(), group, *lo, *hi);
      if (spdlog::should_log(spdlog::level::debug))
        for (JobId id : ids) spdlog::debug("job {} queued for group {}", id, group);
    }
  }

  // After the turn that ingested `jobs` committed (they are in the
  // dispatcher already, and those that could start have).
  void OnIngested(const std::vector<QueuedJob>& jobs) {
    if (!jobs.empty()) snapshots_dirty_ = true;  // lastActivity
    LogQueued(jobs);
    if (opts_.observer) opts_.observer->JobsQueued(jobs.size());
    ServeRegisteredGroups();
  }

  // What the attempt lifecycle asks of the daemon: the snapshots, the
  // result file on the thread pool, and the pump that records an end.
  Attempts::Hooks AttemptHooks() {
    Attempts::Hooks h;
    // Attempts start once the snapshots they may read are current: rewritten
    // only when something they show may have changed (with every active
    // task in current_tasks.json a write is O(tasks), docs/PERFORMANCE.md).
    h.after_snapshots = [this](std::function<void()> then) {
      if (snapshots_dirty_ || snapshots_->failed()) RequestSnapshots();
      snapshots_->WhenWritten(std::move(then));
    };
    h.spawned = [this](const runner::Attempt& a) {
      spdlog::info("job {} started (group {}, attempt {}, {})", a.job.id, a.job.group, a.run.attempt,
                   a.run.container_name.value_or(""));
      if (opts_.observer) opts_.observer->JobStarted(a.job.id);
    };
    h.launched = [this] {
      if (stopping_) MaybeFinishShutdown();
    };
    h.write_result = [this](const Job& job, RunOutcome o, Attempts::Hooks::Written written) {
      WriteResultOffLoop(job, std::move(o), std::move(written));
    };
    // The group may run its next job; the end is recorded by the next pump
    // (at once while stopping).
    h.ended = [this](const EndedAttempt& e) {
      dispatcher_.Finished(e.job.id);
      if (stopping_) {
        Pump();
      } else {
        SchedulePump();
      }
    };
    h.retry_later = [this](std::uint64_t delay_ms) {
      if (stopping_) {
        MaybeFinishShutdown();
        return;
      }
      uv_timer_start(
          &result_retry_,
          [](uv_timer_t* t) {
            Guard("result file retry", [&] { static_cast<Daemon*>(t->data)->attempts_->RetryBlocked(); });
          },
          delay_ms, 0);
    };
    return h;
  }

  // The result file on libuv's thread pool, so the loop goes on starting and
  // finishing other attempts meanwhile.
  void WriteResultOffLoop(const Job& job, RunOutcome o, Attempts::Hooks::Written written) {
    struct ResultWrite {
      uv_work_t req;
      Daemon* self;
      Job job;
      RunOutcome outcome;
      Attempts::Hooks::Written written;
      Result<std::string> path = std::string();  // set by the pool thread
    };
    auto* w = new ResultWrite{{}, this, job, std::move(o), std::move(written)};
    w->req.data = w;
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
          Guard("result file written", [&] { w->written(std::move(w->outcome), std::move(w->path)); });
        });
  }

  void Spawn(std::vector<runner::Attempt> attempts) { attempts_->Launch(std::move(attempts)); }

  // Spawning holds the loop: posix_spawn returns once the child has exec'd,
  // 0.2–7 ms on a loaded 2-core VM. In the moments before a task slot the
  // loop is the timer's (its pass starts a few ms ahead and makes the
  // jobs at the slot, docs/SCHEDULER.md "Timing"): attempts whose start
  // falls in that window are spawned just after the slot instead.
  void SpawnAround(std::vector<runner::Attempt> attempts) {
    if (attempts.empty()) return;
    const TimeMs now = clock_.NowMs();
    auto slot = task_timer_ ? task_timer_->next_wakeup() : std::nullopt;
    if (stopping_ || !slot || *slot < now || *slot - now > kSlotQuietMs) {
      Spawn(std::move(attempts));
      return;
    }
    for (auto& a : attempts) held_spawns_.push_back(std::move(a));
    uv_timer_start(
        &spawn_later_,
        [](uv_timer_t* t) {
          auto* self = static_cast<Daemon*>(t->data);
          Guard("held spawns", [&] { self->SpawnHeld(); });
        },
        static_cast<std::uint64_t>(*slot - now + 1), 0);
  }
  void SpawnHeld() {
    if (held_spawns_.empty()) return;
    std::vector<runner::Attempt> held = std::move(held_spawns_);
    held_spawns_.clear();
    Spawn(std::move(held));
  }

  // Pumping is deferred to an idle callback so that everything one loop turn
  // produced (a batch of files, several exits) is started together.
  void SchedulePump() {
    if (!stopping_)
      uv_idle_start(&pump_idle_, [](uv_idle_t* h) {
        uv_idle_stop(h);
        static_cast<Daemon*>(h->data)->GuardedPump();
      });
  }

  // Pump from a libuv callback: an exception is logged, an open transaction
  // rolled back (the ends it held are recovered at the next start), and the
  // loop goes on.
  void GuardedPump() {
    Guard(
        "pump", [&] { Pump(); },
        [&](const std::string&) {
          if (store_->InTransaction()) store_->Rollback();
        });
  }

  // One transaction per loop turn for everything the loop has to record
  // (redis' beforeSleep shape): the files dropped since the last turn, the
  // output events, the attempts that ended, and the starts of the jobs that
  // are now ready — the new ones and, often, the next job of a group whose
  // attempt just ended. One flush instead of one per step
  // (docs/PERFORMANCE.md), and a dropped file reaches its agent with one.
  // The ingest and the starts each sit in a savepoint, so a file or a start
  // that cannot be recorded does not take the rest with it.
  void Pump() {
    const bool ingest = !stopping_ && watcher_->TakePass();
    // Messages have a pass (and transaction) of their own, before the turn's.
    const Status messages = ingest ? watcher_->FlushMessages() : Status::Ok();
    std::vector<EndedAttempt> ended = attempts_->TakeEnded();
    std::vector<QueuedJob> start;
    std::vector<runner::Attempt> attempts;
    bool open = ingest || !ended.empty() || !pending_outputs_.empty();
    if (!open && !stopping_) {
      start = dispatcher_.TakeStartable();
      open = !start.empty();
    }
    Status s, staged;
    std::vector<QueuedJob> ingested;  // in the dispatcher while the turn is open
    std::vector<QueuedJob> released;  // waiting jobs queued by this turn: the same
    if (open) {
      s = store_->Begin();
      if (s.ok() && ingest) {
        staged = ingestor_->Stage();
        ingested = ingestor_->staged();
        for (const auto& j : ingested) dispatcher_.Add(j);
        // New jobs whose dependencies have all ended already.
        if (staged.ok()) s = deps_->Settle(ingestor_->staged_waiting(), released);
      }
      if (s.ok()) s = AppendOutputs();
      for (const auto& e : ended) {
        if (!s.ok()) break;
        s = store_->FinishAttempt(e.job, e.outcome);
        if (s.ok() && e.final) {
          const RunOutcome& o = e.outcome;
          s = task_timer_->JobFinished(e.job.id, o.job_state, o.result, o.error, o.run.duration_ms);
          // The on_finish delivery commits with the final state it reports.
          if (s.ok()) s = QueueFinishNotice(*store_, cfg_, groups_.Find(e.job.group), e.job, o);
          if (s.ok()) notices_queued_ = true;
          // The jobs waiting on it: released, cancelled, or still waiting.
          if (s.ok()) s = deps_->Ended(e.job.id, released);
        }
      }
      if (s.ok() && !stopping_) {
        auto ready = dispatcher_.TakeStartable();
        start.insert(start.end(), ready.begin(), ready.end());
      }
      if (s.ok() && !start.empty()) StartAttempts(start, attempts);
      if (s.ok()) s = store_->Commit();
      if (!s.ok()) {
        store_->Rollback();
        spdlog::error("cannot record {} dropped job(s), {} output event(s), {} ended attempt(s) and {} start(s): {}",
                      ingested.size(), pending_outputs_.size(), ended.size(), attempts.size(), s.message());
        for (const auto& e : ended) {
          spdlog::error("job {}: the end of attempt {} is not recorded; it is recovered at the next start", e.job.id,
                        e.outcome.run.attempt);
        }
        // The turn's new jobs do not exist; the others go back in the queue.
        std::set<JobId> gone;
        for (const auto& j : ingested) gone.insert(j.id);
        for (const auto& a : attempts) {
          dispatcher_.Unstarted(a.job.id);
          if (!gone.count(a.job.id)) dispatcher_.Add({a.job.id, a.job.group, a.job.priority, clock_.NowMs()});
        }
        for (const auto& j : ingested) dispatcher_.Remove(j.id);
        for (const auto& j : released) dispatcher_.Remove(j.id);
        if (ingest) ingestor_->Abandon();
        attempts.clear();
      }
      pending_outputs_.clear();
      for (auto& e : ended) Announce(e);
    }
    if (ingest) {
      // After the commit: the files go (or back, for the next pass).
      std::vector<QueuedJob> jobs;
      if (s.ok() && staged.ok()) jobs = ingestor_->Settle();
      watcher_->PassDone(!s.ok() ? s : !staged.ok() ? staged : messages, jobs.size());
      OnIngested(jobs);
      // `--once` decides on one more turn, after the loop's timers: control
      // files applied just now may have armed one (a resumed or new task
      // due at once). A running daemon needs no extra turn on the ingest path.
      if (opts_.once) SchedulePump();
    }
    SpawnAround(std::move(attempts));
    if (notices_queued_) {
      // Committed (or rolled back: then Kick finds nothing new).
      notices_queued_ = false;
      notifier_->Kick();
    }
    if (stopping_) {
      MaybeFinishShutdown();
      return;
    }
    ArmWake();
    ArmTrim();
    // Not while another turn is due: a control file applied after this
    // turn's commit (retry, a resumed task) may have queued work for it.
    const bool turn_due = uv_is_active(reinterpret_cast<uv_handle_t*>(&pump_idle_));
    if (opts_.once && !turn_due && attempts_->Settled() && !ingestor_->pending() && !inbox_->pending() &&
        !notifier_->busy()) {
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
      dispatcher_.Unstarted(q.id);
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
      auto run =
          store_->StartAttempt(q.id, std::string(runtime_->name()), container_names_.Next(q.group, clock_.NowMs()),
                               dispatcher_.TakenAt(q.id));
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
      a.extra_mounts = mounts_.For(q.group);
      a.timeout_ms = a.job.timeout_ms.value_or(g && g->timeout_ms ? *g->timeout_ms : cfg_.timeout_ms);
      if (a.job.context_mode == ContextMode::kGroup) {
        auto sess = store_->GetSession(q.group);
        if (sess.ok()) a.session_id = *sess;
      }
      attempts.push_back(std::move(a));
    }
    return s;
  }

  // Rate limits (docs/CONFIG.md, "Rate limits"): each group's limit from
  // the config into the dispatcher. A group whose limit is new or changed
  // gets its window back from the attempts the database holds, so neither a
  // restart nor a reload resets it: one indexed read of the starts in the
  // longest changed period. Called at start-up, after a reload and when a
  // registered group is first served.
  Status ApplyRateLimits() {
    std::set<std::string> changed;
    TimeMs longest = 0;
    std::set<std::string> served;
    for (const auto& g : groups_.all()) {
      served.insert(g.folder);
      auto limit = cfg_.RateFor(g.folder);
      if (dispatcher_.SetRateLimit(g.folder, limit) && limit) {
        changed.insert(g.folder);
        longest = std::max(longest, limit->period_ms);
      }
    }
    for (const auto& [folder, limit] : dispatcher_.RateLimits()) {
      if (!served.count(folder)) dispatcher_.SetRateLimit(folder, std::nullopt);  // a group removed
    }
    if (!changed.empty()) {
      auto starts = store_->StartsSince(clock_.NowMs() - longest);
      if (!starts.ok()) return starts.status();
      for (const auto& st : *starts) {
        if (changed.count(st.group)) dispatcher_.RecordStart(st.group, st.started_at);
      }
    }
    rate_limits_ = std::make_shared<const std::vector<std::pair<std::string, RateLimit>>>(dispatcher_.RateLimits());
    return Status::Ok();
  }

  // max_concurrent_per_group (docs/CONFIG.md): the default, which groups
  // registered at run time get too, and each configured group's own.
  // Called at start-up and after a reload; a lowered limit lets the running
  // jobs finish and holds the next starts until fewer run.
  void ApplyGroupConcurrency() {
    std::map<std::string, int> own;
    for (const auto& g : cfg_.groups) {
      if (g.max_concurrent_per_group) own[g.folder] = static_cast<int>(*g.max_concurrent_per_group);
    }
    dispatcher_.SetMaxPerGroup(static_cast<int>(cfg_.max_concurrent_per_group), own);
  }

  void ArmWake() {
    auto next = dispatcher_.NextWakeup();
    if (!next) {
      uv_timer_stop(&wake_);
      return;
    }
    TimeMs delay = std::max<TimeMs>(0, *next - clock_.NowMs());
    uv_timer_start(
        &wake_, [](uv_timer_t* t) { static_cast<Daemon*>(t->data)->GuardedPump(); }, static_cast<std::uint64_t>(delay),
        0);
    // In --once mode a future job must not keep the loop alive.
    if (opts_.once) uv_unref(reinterpret_cast<uv_handle_t*>(&wake_));
  }

  // Control commands dropped into tasks/ (watcher::CommandHandler).
  Result<std::string> Apply(const watcher::IngestGroup& from, const watcher::ClaimedFile& file,
                            const watcher::JobCommand& cmd) override {
    return commands_->Apply(from, file, cmd);
  }

  // A group registered by a control file is served once the ingest pass
  // that applied it is over (the pass must not find its own scans changed
  // under it): its directories watched, its files already there ingested.
  void ServeRegisteredGroups() {
    if (registered_.empty() || stopping_) return;
    auto groups = std::move(registered_);
    registered_.clear();
    ingestor_->SetGroups(groups_.identities());
    inbox_->SetGroups(groups_.identities());
    for (const auto& folder : groups) watcher_->AddGroup(folder);
    if (Status r = ApplyRateLimits(); !r.ok()) spdlog::error("cannot read the rate windows' history: {}", r.message());
    ingestor_->ScanAll();
    inbox_->ScanAll();
    watcher_->Kick();
  }

  // Each block as it streams in: an `output` audit event (status and size,
  // not the result itself, which the result file and jobs.result hold).
  // The event is not committed on its own (an fsync per block bounded
  // end-to-end throughput, docs/PERFORMANCE.md): it joins the next pump's
  // transaction, with the attempt's end when that is ready too. While
  // stopping, the attempt's end runs the pump itself (Ended).
  void OnOutput(const Job& job, std::int64_t attempt, const runner::AgentOutput& out) {
    nlohmann::json d = {
        {"attempt", attempt}, {"status", out.status}, {"result_bytes", out.result_json ? out.result_json->size() : 0}};
    if (out.error) d["error"] = *out.error;
    pending_outputs_.push_back({job.id, job.group, text::Dump(d)});
    SchedulePump();
  }

  // A runtime that waits for resources (slurm) started the sandbox: an
  // `allocated` event with the queue wait, joining the next pump's
  // transaction as output events do.
  void OnAllocated(const Job& job, std::int64_t attempt, std::int64_t waited_ms) {
    nlohmann::json d = {{"attempt", attempt}, {"waited_ms", waited_ms}};
    pending_outputs_.push_back({job.id, job.group, text::Dump(d), "allocated"});
    SchedulePump();
  }

  // Appends the pending output events; call inside a transaction.
  Status AppendOutputs() {
    for (const auto& o : pending_outputs_) {
      if (Status s = store_->AppendEvent(o.job, o.group, o.event, o.detail); !s.ok()) return s;
    }
    return Status::Ok();
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

  // SIGHUP (docs/CONFIG.md, "Reload"): the config file read again and
  // applied without dropping a queued or running job — groups added or
  // removed, schedules, limits — or, when it does not load, refused with
  // the reason while the running config stays. The durable part (group
  // rows, config tasks, the `reloaded` event) is one transaction.
  // Under systemd, `systemctl reload` waits for the READY=1 that ends the
  // reload, applied or refused.
  void Reload() {
    if (stopping_) return;
    ServiceNotify(("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(MonotonicUsec())).c_str());
    ApplyReload();
    ServiceNotify("READY=1");
  }

  static std::uint64_t MonotonicUsec() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000u;
  }

  void ApplyReload() {
    spdlog::info("SIGHUP: reloading {}", cfg_.config_path);
    Config loaded;
    try {
      loaded = LoadConfigFile(cfg_.config_path);
    } catch (const std::exception& e) {
      RefuseReload(std::string(e.what()));
      return;
    }
    ReloadPlan plan = PlanReload(cfg_, std::move(loaded));
    auto secrets = ReadSecrets(plan.next.secrets, plan.next.env_file);
    if (!secrets.ok()) {
      RefuseReload(secrets.status().message());
      return;
    }
    if (!EffectiveLogLevel(plan.next.log_level)) {
      RefuseReload("log_level \"" + plan.next.log_level + "\" is not a level");
      return;
    }
    Status s = store_->Begin();
    for (const auto& g : plan.next.groups) {
      if (s.ok()) s = store_->UpsertGroup(g.folder, g.name, g.jid, g.is_main);
    }
    Result<std::vector<std::string>> removed_tasks = std::vector<std::string>();
    if (s.ok()) {
      removed_tasks = task_timer_->SyncConfig(plan.next);
      if (!removed_tasks.ok()) s = removed_tasks.status();
    }
    nlohmann::json detail = {{"config", cfg_.config_path}, {"changed", plan.changed}};
    if (!plan.restart_needed.empty()) detail["restart_needed"] = plan.restart_needed;
    Groups::Changed gc;
    if (s.ok()) {
      // What the groups will be, for the event; applied after the commit.
      Groups preview = groups_;
      gc = preview.SetConfigured(plan.next.groups);
      detail["groups_added"] = gc.added;
      detail["groups_removed"] = gc.removed;
      detail["tasks_removed"] = *removed_tasks;
      s = store_->AppendEvent(std::nullopt, std::nullopt, "reloaded", text::Dump(detail));
    }
    if (s.ok()) s = store_->Commit();
    if (!s.ok()) {
      if (store_->InTransaction()) store_->Rollback();
      RefuseReload(s.message());
      return;
    }

    // Committed: the running daemon takes the new config.
    cfg_ = std::move(plan.next);
    secrets_ = std::move(*secrets);
    if (std::string error; !SetUpLogging(cfg_.log_level, &error)) spdlog::error("reload: {}", error);
    groups_.SetConfigured(cfg_.groups);
    mounts_ = GroupMounts(cfg_.mount_allowlist, layout_.root().string());
    for (const auto& g : groups_.all()) {
      if (std::find(gc.added.begin(), gc.added.end(), g.folder) != gc.added.end()) {
        if (Status d = PrepareGroupDirs(layout_, g.folder); !d.ok())
          spdlog::error("group {}: {}", g.folder, d.message());
      }
      mounts_.Load(g);
    }
    ingestor_->SetGroups(groups_.identities());
    inbox_->SetGroups(groups_.identities());
    for (const auto& folder : gc.removed) watcher_->RemoveGroup(folder);
    for (const auto& folder : gc.added) watcher_->AddGroup(folder);
    EnsureDescriptorsFor(cfg_.max_concurrent);
    dispatcher_.SetMaxConcurrent(static_cast<int>(cfg_.max_concurrent));
    ApplyGroupConcurrency();
    if (Status r = ApplyRateLimits(); !r.ok()) {
      spdlog::error("reload: cannot read the rate windows' history: {}", r.message());
    }
    watcher::IngestOptions io;
    io.max_file_bytes = cfg_.max_job_file;
    io.default_max_attempts = cfg_.max_attempts;
    io.default_max_interruptions = cfg_.max_interruptions;
    io.max_queued_per_group = cfg_.max_queued_per_group;
    ingestor_->SetLimits(io);
    runner_->SetOptions({cfg_.agent, cfg_.max_output, cfg_.kill_grace_ms, cfg_.session_dir});
    if (Status t = task_timer_->Reloaded(); !t.ok()) spdlog::error("reload: cannot re-read the tasks: {}", t.message());
    for (const auto& id : *removed_tasks) spdlog::info("task {} removed: no longer in the config", id);
    for (const auto& key : plan.restart_needed) {
      spdlog::warn("reload: {} changed in the config; it takes effect at the next start", key);
    }
    spdlog::info("config reloaded: {} group(s) ({} added, {} removed), {} key(s) changed", groups_.all().size(),
                 gc.added.size(), gc.removed.size(), plan.changed.size());
    RequestSnapshots();
    ingestor_->ScanAll();
    inbox_->ScanAll();
    watcher_->Kick();
    SchedulePump();
  }

  // A config that does not load (or cannot be recorded) changes nothing:
  // the reason is logged and audited (`reload_refused`).
  void RefuseReload(const std::string& why) {
    spdlog::error("reload refused, still running the config loaded before: {}", why);
    nlohmann::json d = {{"config", cfg_.config_path}, {"reason", why}};
    if (Status s = store_->AppendEvent(std::nullopt, std::nullopt, "reload_refused", text::Dump(d)); !s.ok()) {
      spdlog::error("cannot record the refused reload: {}", s.message());
    }
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
    ServiceNotify("STOPPING=1");
    // Held starts are recorded as running: they start now and are stopped
    // with the others.
    uv_timer_stop(&spawn_later_);
    SpawnHeld();
    watcher_->Close();
    inbox_->StopDelivering();  // the one in flight is recorded as it ends
    notifier_->Stop();         // likewise; the rows left wait for the next start
    if (task_timer_) task_timer_->Close();
    uv_timer_stop(&wake_);
    uv_timer_stop(&trim_timer_);
    uv_idle_stop(&pump_idle_);
    // An attempt whose start is recorded counts as running, even while it
    // waits for its snapshots: it starts and gets the grace like the others.
    if (attempts_->InFlight() > 0 && cfg_.shutdown_grace_ms > 0 && !opts_.once) {
      spdlog::info("waiting up to {} ms for {} running job(s) to finish (signal again to stop them now)",
                   cfg_.shutdown_grace_ms, attempts_->InFlight());
      uv_timer_start(
          &wake_, [](uv_timer_t* t) { Guard("shutdown grace", [&] { static_cast<Daemon*>(t->data)->StopRunning(); }); },
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

  void StopRunning() { attempts_->StopAll(); }

  // The heap that a burst freed is given back once the daemon has been quiet
  // for a second (RunDaemon keeps it meanwhile: giving back at every free
  // cost a TLB shootdown per job, docs/PERFORMANCE.md). Each busy turn
  // pushes the moment back; a single one-shot timer, no polling.
  void ArmTrim() {
#ifdef __GLIBC__
    if (!attempts_->Settled()) return;
    uv_timer_start(
        &trim_timer_, [](uv_timer_t*) { malloc_trim(0); }, kTrimAfterQuietMs, 0);
    // A pending trim alone does not keep a `run --once` loop alive.
    uv_unref(reinterpret_cast<uv_handle_t*>(&trim_timer_));
#endif
  }

  void MaybeFinishShutdown() {
    if (!attempts_->Settled() || closed_) return;
    closed_ = true;
    uv_timer_stop(&wake_);
    if (std::size_t blocked = attempts_->Count(Attempts::Phase::kResultBlocked); blocked > 0) {
      spdlog::warn("{} job(s) ended without their result file written; they are run again at the next start", blocked);
    }
    if (publisher_) publisher_->Close();
    for (uv_handle_t* h : {reinterpret_cast<uv_handle_t*>(&wake_), reinterpret_cast<uv_handle_t*>(&pump_idle_),
                           reinterpret_cast<uv_handle_t*>(&result_retry_), reinterpret_cast<uv_handle_t*>(&sigint_),
                           reinterpret_cast<uv_handle_t*>(&sigterm_), reinterpret_cast<uv_handle_t*>(&sighup_),
                           reinterpret_cast<uv_handle_t*>(&notify_timer_),
                           reinterpret_cast<uv_handle_t*>(&trim_timer_),
                           reinterpret_cast<uv_handle_t*>(&spawn_later_),
                           reinterpret_cast<uv_handle_t*>(&loop_time_)}) {
      uv_close(h, nullptr);
    }
  }

  Config cfg_;  // its own copy: a reload replaces it (TaskTimer and the lambdas read it live)
  DaemonOptions opts_;
  SystemClock clock_;
  Layout layout_;
  Dispatcher dispatcher_;
  // The dispatcher's rate limits as published to the dashboard: replaced
  // only when they change, so publishing each turn copies a pointer.
  std::shared_ptr<const std::vector<std::pair<std::string, RateLimit>>> rate_limits_;
  Groups groups_;  // the config's and the registered groups
  std::unique_ptr<Store> store_;
  std::string instance_id_;  // this root's (Store::InstanceId); labels its containers
  std::unique_ptr<runner::Runtime> runtime_;
  runner::ContainerNames container_names_;  // unique per attempt, even several of a group in one ms
  std::unique_ptr<watcher::Ingestor> ingestor_;
  uv_loop_t loop_{};
  std::unique_ptr<runner::Runner> runner_;
  std::unique_ptr<watcher::Watcher> watcher_;
  std::unique_ptr<TaskTimer> task_timer_;
  std::unique_ptr<MessageInbox> inbox_;
  uv_timer_t wake_{};
  uv_idle_t pump_idle_{};
  uv_prepare_t loop_time_{};  // the loop's clock read again before it sleeps (base/loop_time.h)
  uv_timer_t trim_timer_{};
  uv_timer_t spawn_later_{};                    // SpawnAround: the held starts, just after a slot
  std::vector<runner::Attempt> held_spawns_;
  static constexpr std::uint64_t kTrimAfterQuietMs = 1000;
  // SpawnAround: how long before a task slot the loop spawns no agent.
  static constexpr TimeMs kSlotQuietMs = 10;
  uv_timer_t result_retry_{};
  uv_timer_t notify_timer_{};
  std::unique_ptr<PoolNoticeSender> notice_sender_;
  std::unique_ptr<Notifier> notifier_;
  bool notices_queued_ = false;  // on_finish rows written: the pump's end looks at them
  std::unique_ptr<Attempts> attempts_;
  std::unique_ptr<Dependencies> deps_;
  std::unique_ptr<ControlCommands> commands_;
  std::vector<std::string> registered_;  // groups registered during an ingest pass, served after it
  uv_signal_t sigint_{}, sigterm_{}, sighup_{};
  bool stopping_ = false, closed_ = false;
  std::mt19937_64 rng_{std::random_device{}()};
  std::map<std::string, std::string> secrets_;
  InstanceLock lock_;
  struct PendingOutput {
    JobId job;
    std::string group;
    std::string detail;
    std::string event = "output";  // or `allocated`
  };
  std::vector<PendingOutput> pending_outputs_;  // output events not yet in a transaction
  bool snapshots_dirty_ = true;                 // tasks or job activity changed since the last request
  std::unique_ptr<SnapshotWriter> snapshots_;
  GroupMounts mounts_{cfg_.mount_allowlist, layout_.root().string()};
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
  // Freed heap stays with the process while it is busy, and is given back
  // when it goes quiet (ArmTrim). glibc's defaults give back the top of the
  // heap whenever 128 KiB of it is free and serve blocks over 128 KiB (a
  // pipe buffer, a big result) with mmap: the brk or munmap that follows is
  // a TLB flush of every CPU the daemon's threads ran on, which on a VM
  // took 27 % of the daemon's CPU with 200 tasks firing every second
  // (docs/PERFORMANCE.md, "Scheduler"). Fixed values also turn off glibc's
  // sliding mmap threshold, so the behaviour does not depend on history.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  mallopt(M_TOP_PAD, 4 << 20);
#endif
  Daemon d(config, options);
  return d.Run();
}

}  // namespace dropq::app
