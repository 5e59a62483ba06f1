#include "base/service_notify.h"

#ifdef DROPQ_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace dropq {

void ServiceNotify(const char* state) {
#ifdef DROPQ_HAVE_SYSTEMD
  // The result is ignored on purpose: a service manager that is not there
  // (returns 0) or not listening (< 0) must not change what the daemon does.
  (void)sd_notify(0, state);
#else
  (void)state;
#endif
}

}  // namespace dropq
