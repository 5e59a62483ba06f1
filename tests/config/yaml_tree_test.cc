// The config's YAML tree: what the loader reads of a document, as yaml-cpp's
// Node would give it.
#include <catch2/catch.hpp>

#include <yaml-cpp/exceptions.h>

#include <string>
#include <vector>

#include "config/yaml_tree.h"

using dropq::app::yaml::Document;
using dropq::app::yaml::Node;

TEST_CASE("A map's values are found by key and iterated in document order") {
  const Document d = Document::Parse("b: 1\na: two\nc: [x, y]\n");
  const Node root = d.root();
  REQUIRE(root.IsMap());
  CHECK(root.size() == 3);
  CHECK(root["a"].Scalar() == "two");
  CHECK(root["c"].IsSequence());
  CHECK(root["c"][1].Scalar() == "y");
  std::vector<std::string> keys;
  for (const auto& kv : root) keys.emplace_back(kv.first.Scalar());
  CHECK(keys == std::vector<std::string>{"b", "a", "c"});
}

TEST_CASE("A missing key or an index past the end is an undefined node") {
  const Document d = Document::Parse("a: [1]\n");
  const Node missing = d.root()["nope"];
  CHECK_FALSE(missing);
  CHECK_FALSE(missing.IsNull());
  CHECK_FALSE(missing.IsScalar());
  CHECK(missing.size() == 0);
  CHECK_FALSE(d.root()["a"][1]);
  CHECK_FALSE(d.root()["a"]["key"]);  // a lookup in a sequence finds nothing
  CHECK(missing.Mark().is_null());
}

TEST_CASE("Duplicate keys are all iterated and a lookup finds the first") {
  const Document d = Document::Parse("k: first\nk: second\n");
  CHECK(d.root()["k"].Scalar() == "first");
  CHECK(d.root().size() == 2);
}

TEST_CASE("Plain null spellings and empty values are null while quoted ones are strings") {
  const Document d = Document::Parse("a: ~\nb: null\nc:\nd: \"null\"\ne: ''\n");
  for (const char* k : {"a", "b", "c"}) {
    INFO(k);
    CHECK(d.root()[k].IsNull());
    CHECK(d.root()[k]);
  }
  CHECK(d.root()["d"].Scalar() == "null");
  CHECK(d.root()["e"].IsScalar());
  CHECK(d.root()["e"].Scalar().empty());
}

TEST_CASE("An alias reads as the node its anchor names") {
  const Document d = Document::Parse("base: &b {x: 1, y: [2, 3]}\nother: *b\n");
  CHECK(d.root()["other"]["x"].Scalar() == "1");
  CHECK(d.root()["other"]["y"][1].Scalar() == "3");
}

TEST_CASE("Each node's mark is its 0-based line and column") {
  const Document d = Document::Parse("top:\n  - {id: a}\n  - id: b\n");
  const Node list = d.root()["top"];
  CHECK(list[0].Mark().line == 1);
  CHECK(list[0].Mark().column == 4);
  CHECK(list[1]["id"].Mark().line == 2);
  CHECK(list[1]["id"].Mark().column == 8);
  std::vector<int> key_lines;
  for (const auto& kv : list[1]) key_lines.push_back(kv.first.Mark().line);
  CHECK(key_lines == std::vector<int>{2});
}

TEST_CASE("An empty text is one null document with no position") {
  std::size_t count = 7;
  const Document d = Document::Parse("# only a comment\n", &count);
  CHECK(count == 0);
  CHECK(d.root().IsNull());
  CHECK(d.root().Mark().is_null());
}

TEST_CASE("Further documents are counted and the second one's position is given") {
  std::size_t count = 0;
  dropq::app::yaml::Mark second;
  const Document d = Document::Parse("a: 1\n---\nb: 2\n---\nc: 3\n", &count, &second);
  CHECK(count == 3);
  CHECK(second.line == 2);
  CHECK(d.root()["a"].Scalar() == "1");
  CHECK_FALSE(d.root()["b"]);
}

TEST_CASE("Malformed YAML throws yaml-cpp's exception with its position") {
  try {
    Document::Parse("a: [1, 2\nb: 3\n");
    FAIL("no exception");
  } catch (const YAML::Exception& e) {
    CHECK_FALSE(e.mark.is_null());
  }
}

TEST_CASE("A malformed second document is refused too") {
  CHECK_THROWS_AS(Document::Parse("a: 1\n---\n[unclosed\n"), YAML::Exception);
}

TEST_CASE("Non-scalar keys never match a lookup") {
  const Document d = Document::Parse("? [a]\n: 1\na: 2\n");
  CHECK(d.root()["a"].Scalar() == "2");
  CHECK(d.root().size() == 2);
}
