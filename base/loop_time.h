#pragma once
// The loop's notion of "now", read again just before the loop sleeps.
//
// libuv reads the clock once per turn, before running its timers; the idle
// and prepare callbacks that follow (dropq's pump) run on that reading, and
// the loop then sleeps for "timer due - that reading". Whatever those
// callbacks took is therefore added to the wake-up of the next timer: a
// 6 ms pump after the task timer's pass woke the next pass 6 ms late, and
// every task of that second fired late (docs/SCHEDULER.md, "Timing").
// A prepare handle that updates the loop's time, the last thing before the
// sleep is computed, makes the sleep end when the timer is due.
#include <uv.h>

namespace dropq {

// Initialises and starts `handle` on `loop`; the caller owns it and closes it
// with the loop's other handles. It does not keep the loop alive.
void StartLoopTimeRefresh(uv_loop_t* loop, uv_prepare_t* handle);

}  // namespace dropq
