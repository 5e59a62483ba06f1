// A read-only YAML document for the config loader: yaml-cpp parses, this
// keeps the result in three flat arrays instead of yaml-cpp's node graph.
//
// Why not YAML::Node: a config with 100,000 schedules is ~900,000 nodes, and
// yaml-cpp gives each its own shared_ptr'd node, node_ref, node_data and
// string, then memoises every map lookup as more nodes. That graph cost
// ~1.5 s and ~390 MB at start-up (docs/PERFORMANCE.md, "Start-up"); the
// parser's own events cost ~0.6 s. Here a node is 20 bytes and every scalar
// lives in one buffer. The handle mimics the part of YAML::Node's interface
// the loader uses, so the loader reads the same.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace dropq::app::yaml {

// 0-based, as yaml-cpp's; line < 0 when unknown.
struct Mark {
  int line = -1;
  int column = -1;
  bool is_null() const { return line < 0; }
};

class Document;
class NodeIterator;
struct NodeEntry;

// A node of a Document, or undefined (a missing map key, an index out of
// range): false in a boolean context, every Is*() false, size() 0. A handle
// is valid as long as its Document.
class Node {
 public:
  Node() = default;

  explicit operator bool() const { return doc_ != nullptr; }
  bool IsNull() const;
  bool IsScalar() const;
  bool IsSequence() const;
  bool IsMap() const;
  // A scalar's text; empty for anything else.
  std::string_view Scalar() const;
  // Items of a sequence, entries of a map; 0 for anything else.
  std::size_t size() const;
  // The i-th item of a sequence (any integer type, so that `node[0]` is not
  // taken for a null key).
  template <typename I, typename = std::enable_if_t<std::is_integral_v<I>>>
  Node operator[](I i) const {
    if constexpr (std::is_signed_v<I>) {
      if (i < 0) return Node();
    }
    return At(static_cast<std::size_t>(i));
  }
  // The value of a map's first entry whose key is the scalar `key` (yaml-cpp
  // keeps duplicate keys and finds the first too).
  Node operator[](std::string_view key) const;
  Node operator[](const char* key) const { return (*this)[std::string_view(key)]; }
  Node operator[](const std::string& key) const { return (*this)[std::string_view(key)]; }
  yaml::Mark Mark() const;

  // A map's entries, in document order: for (const auto& kv : map) uses
  // kv.first and kv.second.
  NodeIterator begin() const;
  NodeIterator end() const;

 private:
  friend class Document;
  friend class NodeIterator;
  Node(const Document* doc, std::uint32_t id) : doc_(doc), id_(id) {}
  NodeEntry EntryAt(std::size_t i) const;
  Node At(std::size_t i) const;
  const Document* doc_ = nullptr;
  std::uint32_t id_ = 0;
};

struct NodeEntry {
  Node first, second;
};

class NodeIterator {
 public:
  NodeIterator(Node map, std::size_t i) : map_(map), i_(i) {}
  NodeEntry operator*() const { return map_.EntryAt(i_); }
  NodeIterator& operator++() {
    ++i_;
    return *this;
  }
  bool operator!=(const NodeIterator& o) const { return i_ != o.i_; }

 private:
  Node map_;
  std::size_t i_;
};

inline NodeIterator Node::begin() const { return NodeIterator(*this, 0); }
inline NodeIterator Node::end() const { return NodeIterator(*this, IsMap() ? size() : 0); }

class Document {
 public:
  enum class Type : std::uint8_t { kNull, kScalar, kSequence, kMap };

  // Parses the first document of `text` (an empty text is one null
  // document). Throws YAML::Exception (with its mark) on malformed YAML.
  // `count` is set to the number of documents in the text and `second` to
  // the position of the second one's first node, so a caller can refuse
  // more than one.
  static Document Parse(std::string_view text, std::size_t* count = nullptr, yaml::Mark* second = nullptr);

  Node root() const { return Node(this, 0); }

  Document(Document&&) = default;
  Document& operator=(Document&&) = default;
  Document(const Document&) = delete;
  Document& operator=(const Document&) = delete;

 private:
  friend class Node;
  friend class TreeBuilder;
  Document() = default;

  // A scalar's text is text_[a, a + b); a collection's children are
  // kids_[a, a + b) (a map's as key, value, key, value, ...: b = 2 × entries).
  struct Item {
    Type type;
    std::int32_t line, column;
    std::uint32_t a, b;
  };
  std::vector<Item> items_;
  std::vector<std::uint32_t> kids_;
  std::string text_;
};

}  // namespace dropq::app::yaml
