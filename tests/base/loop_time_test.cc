#include "base/loop_time.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <thread>

namespace dropq {
namespace {

struct Turn {
  uv_loop_t loop{};
  uv_idle_t slow{};     // a callback that holds the loop after its clock was read
  uv_prepare_t probe{};  // what the loop's clock says just before it sleeps
  uv_prepare_t refresh{};
  std::uint64_t idle_done_ms = 0;
  std::uint64_t seen_ms = 0;
};

// Runs one loop turn whose idle callback takes 5 ms; returns what the loop
// believed "now" was when it computed its sleep. libuv runs prepare handles
// newest first, so the probe, started before the refresh, runs after it.
void RunSlowTurn(Turn& t, bool with_refresh) {
  uv_loop_init(&t.loop);
  t.loop.data = &t;
  uv_idle_init(&t.loop, &t.slow);
  uv_idle_start(&t.slow, [](uv_idle_t* h) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    static_cast<Turn*>(h->loop->data)->idle_done_ms = uv_hrtime() / 1'000'000;
    uv_idle_stop(h);
  });
  uv_prepare_init(&t.loop, &t.probe);
  uv_prepare_start(&t.probe, [](uv_prepare_t* h) {
    auto* turn = static_cast<Turn*>(h->loop->data);
    if (turn->seen_ms == 0) turn->seen_ms = uv_now(h->loop);
    uv_prepare_stop(h);
  });
  if (with_refresh) StartLoopTimeRefresh(&t.loop, &t.refresh);
  uv_run(&t.loop, UV_RUN_NOWAIT);
  uv_close(reinterpret_cast<uv_handle_t*>(&t.slow), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&t.probe), nullptr);
  if (with_refresh) uv_close(reinterpret_cast<uv_handle_t*>(&t.refresh), nullptr);
  uv_run(&t.loop, UV_RUN_DEFAULT);
  REQUIRE(uv_loop_close(&t.loop) == 0);
}

TEST_CASE("the loop's clock is read again after a slow callback, before the loop computes its sleep", "[loop_time]") {
  Turn t;
  RunSlowTurn(t, true);
  REQUIRE(t.idle_done_ms > 0);
  CHECK(t.seen_ms >= t.idle_done_ms);
}

TEST_CASE("without the refresh the loop sleeps on the clock it read before a slow callback", "[loop_time]") {
  // What the refresh is for: libuv's own reading is older than the callback.
  Turn t;
  RunSlowTurn(t, false);
  REQUIRE(t.idle_done_ms > 0);
  CHECK(t.seen_ms < t.idle_done_ms);
}

TEST_CASE("the refresh alone does not keep a loop running", "[loop_time]") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_prepare_t refresh;
  StartLoopTimeRefresh(&loop, &refresh);
  CHECK(uv_run(&loop, UV_RUN_DEFAULT) == 0);
  uv_close(reinterpret_cast<uv_handle_t*>(&refresh), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace
}  // namespace dropq
