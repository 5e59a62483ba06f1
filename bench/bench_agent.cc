// The agent every benchmark runs, dropq and the peers alike: it notes when it
// started (CLOCK_MONOTONIC, in ns — the driver's clock), reads its stdin to
// EOF, optionally floods stdout, and prints one output block carrying that
// time. It uses libc only, so its own start-up is as cheap as a process
// start gets, and what is measured is the runner, not the agent.
//
// A stdin containing `flood N` (e.g. the prompt "flood 10485760") makes it
// print N bytes of 'x' in lines of 100 (newline included) first, and a
// newline if N is not a multiple of 100.
//
// `--sleep-ms N` as its first arguments makes it sleep N ms after reading
// stdin (the "many slots" scenario's work); further arguments are ignored
// (xargs appends one).
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

void WriteAll(const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(1, p, n);
    if (w <= 0) std::exit(1);
    p += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

int main(int argc, char** argv) {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  long long started_ns = static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;

  static char input[64 * 1024];
  size_t have = 0;
  for (;;) {
    char scratch[4096];
    char* into = have < sizeof(input) - 1 ? input + have : scratch;
    size_t room = have < sizeof(input) - 1 ? sizeof(input) - 1 - have : sizeof(scratch);
    ssize_t n = ::read(0, into, room);
    if (n <= 0) break;
    if (into == input + have) have += static_cast<size_t>(n);
  }
  input[have] = '\0';

  if (argc >= 3 && std::strcmp(argv[1], "--sleep-ms") == 0) {
    long long ms = std::atoll(argv[2]);
    timespec d{static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1000000L};
    while (nanosleep(&d, &d) != 0) {
    }
  }

  long long flood = 0;
  if (const char* f = std::strstr(input, "flood ")) flood = std::atoll(f + 6);
  if (flood > 0) {
    bool ends_line = flood % 100 == 0;
    static char chunk[64 * 100];
    for (size_t i = 0; i < sizeof(chunk); ++i) chunk[i] = (i % 100 == 99) ? '\n' : 'x';
    while (flood > 0) {
      size_t n = flood < static_cast<long long>(sizeof(chunk)) ? static_cast<size_t>(flood) : sizeof(chunk);
      WriteAll(chunk, n);
      flood -= static_cast<long long>(n);
    }
    if (!ends_line) WriteAll("\n", 1);  // the block's marker must start a line
  }
  char out[256];
  int n = std::snprintf(out, sizeof(out),
                        "---NANOCLAW_OUTPUT_START---\n{\"status\":\"success\",\"result\":{\"t\":%lld}}\n"
                        "---NANOCLAW_OUTPUT_END---\n",
                        started_ns);
  WriteAll(out, static_cast<size_t>(n));
  return 0;
}
