// The `kubernetes:` block (docs/CONFIG.md, runtime: kubernetes): what it
// loads, and the errors that point at a wrong one.
#include <catch2/catch.hpp>

#include <string>

#include "config/config.h"

namespace dropq::app {
namespace {

const std::string kGroups = "groups:\n  - folder: main\n    main: true\n";
const std::string kKube =
    "runtime: kubernetes\nroot: /srv/dropq/var\n" + kGroups +
    "kubernetes:\n  image: registry.example/agent:1\n  volumes:\n    - {claim: dropq-root, host_path: /srv/dropq}\n";

Config Load(const std::string& yaml) { return LoadConfigString(yaml, "/srv/dropq"); }

std::string ErrorOf(const std::string& yaml) {
  try {
    Load(yaml);
  } catch (const ConfigError& e) {
    return e.what();
  }
  FAIL("expected a ConfigError for:\n" << yaml);
  return "";
}

TEST_CASE("runtime kubernetes loads its image, connection, volumes and resources", "[config]") {
  Config c = Load(kKube +
                  "  kubeconfig: secrets/kubeconfig\n  context: prod\n  namespace: dropq\n  binary: /usr/bin/kubectl\n"
                  "  resources:\n    requests: {cpu: 500m, memory: 1Gi}\n    limits: {nvidia.com/gpu: 1}\n");
  const KubernetesConfig& k = c.kubernetes;
  CHECK(c.runtime == "kubernetes");
  CHECK(c.agent.empty());
  CHECK(k.image == "registry.example/agent:1");
  CHECK(k.kubeconfig == "/srv/dropq/secrets/kubeconfig");
  CHECK(k.context == "prod");
  CHECK(k.k8s_namespace == "dropq");
  CHECK(k.binary == "/usr/bin/kubectl");
  REQUIRE(k.volumes.size() == 1);
  CHECK(k.volumes[0].claim == "dropq-root");
  CHECK(k.volumes[0].host_path == "/srv/dropq");
  CHECK(k.volumes[0].sub_path.empty());
  CHECK(k.requests == std::map<std::string, std::string>{{"cpu", "500m"}, {"memory", "1Gi"}});
  CHECK(k.limits == std::map<std::string, std::string>{{"nvidia.com/gpu", "1"}});
}

TEST_CASE("a kubernetes volume's sub_path is kept relative and normal", "[config]") {
  Config c = Load(kKube + "    - {claim: dropq-ipc, host_path: /srv/dropq/var/data/ipc, sub_path: ./tenants//a/}\n");
  REQUIRE(c.kubernetes.volumes.size() == 2);
  CHECK(c.kubernetes.volumes[1].sub_path == "tenants/a");
}

TEST_CASE("runtime kubernetes needs an image", "[config]") {
  CHECK_THAT(ErrorOf("runtime: kubernetes\n" + kGroups +
                     "kubernetes:\n  volumes:\n    - {claim: dropq-root, host_path: /srv/dropq}\n"),
             Catch::Contains("kubernetes.image") && Catch::Contains("required"));
}

TEST_CASE("runtime kubernetes needs a claim that holds the root", "[config]") {
  CHECK_THAT(ErrorOf("runtime: kubernetes\n" + kGroups + "kubernetes:\n  image: img\n"),
             Catch::Contains("kubernetes.volumes") && Catch::Contains("required"));
  CHECK_THAT(ErrorOf("runtime: kubernetes\nroot: /srv/dropq/var\n" + kGroups +
                     "kubernetes:\n  image: img\n  volumes:\n    - {claim: c, host_path: /srv/dropq-other}\n"),
             Catch::Contains("no volume holds the root /srv/dropq/var"));
}

TEST_CASE("kubernetes names that Kubernetes would refuse are refused at load", "[config]") {
  CHECK_THAT(ErrorOf(kKube + "  namespace: Team_A\n"), Catch::Contains("kubernetes.namespace"));
  CHECK_THAT(ErrorOf(kKube + "    - {claim: Big_Claim, host_path: /srv}\n"),
             Catch::Contains("kubernetes.volumes[1].claim"));
  CHECK_THAT(ErrorOf(kKube + "    - {claim: c, host_path: /srv, sub_path: ../up}\n"),
             Catch::Contains("kubernetes.volumes[1].sub_path"));
  CHECK_THAT(ErrorOf(kKube + "  resources:\n    limits: {memory: lots}\n"),
             Catch::Contains("kubernetes.resources.limits.memory") && Catch::Contains("quantity"));
}

TEST_CASE("a misspelt key in the kubernetes block fails with a hint", "[config]") {
  CHECK_THAT(ErrorOf(kKube + "  namspace: dropq\n"), Catch::Contains("did you mean `namespace`"));
}

TEST_CASE("the kubernetes block is ignored by the other runtimes but still checked", "[config]") {
  Config c = Load("agent: [/a]\n" + kGroups + "kubernetes:\n  image: img\n");
  CHECK(c.runtime == "bwrap");
  CHECK(c.kubernetes.image == "img");
  CHECK_THAT(ErrorOf("agent: [/a]\n" + kGroups + "kubernetes:\n  namespace: BAD\n"),
             Catch::Contains("kubernetes.namespace"));
}

}  // namespace
}  // namespace dropq::app
