#include "base/loop_time.h"

namespace dropq {

void StartLoopTimeRefresh(uv_loop_t* loop, uv_prepare_t* handle) {
  uv_prepare_init(loop, handle);
  uv_prepare_start(handle, [](uv_prepare_t* h) { uv_update_time(h->loop); });
  uv_unref(reinterpret_cast<uv_handle_t*>(handle));
}

}  // namespace dropq
