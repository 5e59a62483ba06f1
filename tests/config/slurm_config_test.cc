// runtime: slurm's keys (docs/CONFIG.md, "slurm.*").
#include <catch2/catch.hpp>

#include <string>

#include "config/config.h"

using dropq::app::ConfigError;
using dropq::app::LoadConfigString;

namespace {

const std::string kGroups = "agent: [/opt/dropq/agent]\ngroups:\n  - folder: main\n    main: true\n";

std::string KeyOf(const std::string& yaml) {
  try {
    LoadConfigString(yaml, "/srv/shared/dropq");
  } catch (const ConfigError& e) {
    return e.key();
  }
  return "";
}

}  // namespace

TEST_CASE("slurm settings load with the root inside the shared root") {
  auto c = LoadConfigString(kGroups +
                                "runtime: slurm\n"
                                "slurm:\n  shared_root: ..\n  partition: batch\n  cpus: 2\n  mem: 2G\n"
                                "  queue_timeout: 5m\n  extra_args: [--exclusive]\n",
                            "/srv/shared/dropq");
  CHECK(c.runtime == "slurm");
  CHECK(c.slurm.shared_root == "/srv/shared");
  CHECK(c.slurm.inner == "bwrap");
  CHECK(c.slurm.partition == "batch");
  CHECK(c.slurm.cpus == 2);
  CHECK(c.slurm.queue_timeout_ms == 300'000);
  CHECK(c.slurm.accounting == "auto");
  CHECK(c.slurm.extra_args == std::vector<std::string>{"--exclusive"});
}

TEST_CASE("runtime slurm needs a shared root") { CHECK(KeyOf(kGroups + "runtime: slurm\n") == "slurm.shared_root"); }

TEST_CASE("runtime slurm refuses a shared root that does not hold the root") {
  CHECK(KeyOf(kGroups + "runtime: slurm\nslurm:\n  shared_root: /elsewhere\n") == "slurm.shared_root");
}

TEST_CASE("slurm inner podman needs an image") {
  CHECK(KeyOf(kGroups + "runtime: slurm\nslurm:\n  shared_root: ..\n  inner: podman\n") == "slurm.image");
}

TEST_CASE("an unknown slurm inner sandbox is refused") {
  CHECK(KeyOf(kGroups + "runtime: slurm\nslurm:\n  shared_root: ..\n  inner: docker\n") == "slurm.inner");
}

TEST_CASE("slurm accounting can be turned off") {
  auto c = LoadConfigString(kGroups + "runtime: slurm\nslurm:\n  shared_root: ..\n  accounting: off\n",
                            "/srv/shared/dropq");
  CHECK(c.slurm.accounting == "off");
}

TEST_CASE("a slurm accounting other than auto, on or off is refused") {
  CHECK(KeyOf(kGroups + "runtime: slurm\nslurm:\n  shared_root: ..\n  accounting: yes\n") == "slurm.accounting");
}
