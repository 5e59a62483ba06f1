#pragma once
// Telling a service manager how the daemon is doing (docs/SERVICE.md): with
// libsystemd, sd_notify(3) on $NOTIFY_SOCKET (READY=1, RELOADING=1,
// STOPPING=1); built without it (DROPQ_SYSTEMD=OFF, or not found), nothing.

namespace dropq {

// Sends `state` (e.g. "READY=1") to the service manager, if there is one.
// Never fails: without $NOTIFY_SOCKET, or on an error, it does nothing.
void ServiceNotify(const char* state);

}  // namespace dropq
