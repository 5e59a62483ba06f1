#include "config/yaml_tree.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <istream>
#include <limits>
#include <streambuf>

namespace dropq::app::yaml {

namespace {

// An istream over the caller's text without copying it.
class ViewBuf : public std::streambuf {
 public:
  explicit ViewBuf(std::string_view s) {
    char* p = const_cast<char*>(s.data());  // read-only: no put area is set
    setg(p, p, p + s.size());
  }
};

// Records where the first node of a document is, for "found 2 documents".
class FirstMark : public YAML::EventHandler {
 public:
  yaml::Mark mark;
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& m, YAML::anchor_t) override { Seen(m); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { Seen(m); }
  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t, const std::string&) override { Seen(m); }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    Seen(m);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    Seen(m);
  }
  void OnMapEnd() override {}

 private:
  void Seen(const YAML::Mark& m) {
    if (mark.is_null() && !m.is_null()) mark = {m.line, m.column};
  }
};

}  // namespace

// Builds a Document from the parser's events. A collection's children are
// gathered on one stack while it is open and copied to kids_ when it
// closes, so each collection's children end up contiguous.
class TreeBuilder : public YAML::EventHandler {
 public:
  explicit TreeBuilder(Document& d) : d_(d) {}

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& m, YAML::anchor_t anchor) override { Add(Document::Type::kNull, m, anchor, 0, 0); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t anchor) override {
    // The parser refuses an unknown anchor before it gets here.
    if (anchor == 0 || anchor > anchors_.size()) throw YAML::ParserException(m, "unknown anchor");
    Attach(anchors_[anchor - 1]);
  }
  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t anchor, const std::string& value) override {
    if (value.size() > std::numeric_limits<std::uint32_t>::max() - d_.text_.size()) {
      throw YAML::ParserException(m, "document too large");
    }
    const auto at = static_cast<std::uint32_t>(d_.text_.size());
    d_.text_ += value;
    Add(Document::Type::kScalar, m, anchor, at, static_cast<std::uint32_t>(value.size()));
  }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Open(Document::Type::kSequence, m, anchor);
  }
  void OnSequenceEnd() override { Close(); }
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t anchor, YAML::EmitterStyle::value) override {
    Open(Document::Type::kMap, m, anchor);
  }
  void OnMapEnd() override { Close(); }

 private:
  struct Open_ {
    std::uint32_t id;
    std::size_t first_pending;
  };

  std::uint32_t Add(Document::Type type, const YAML::Mark& m, YAML::anchor_t anchor, std::uint32_t a,
                    std::uint32_t b) {
    if (d_.items_.size() >= std::numeric_limits<std::uint32_t>::max()) {
      throw YAML::ParserException(m, "document too large");
    }
    const auto id = static_cast<std::uint32_t>(d_.items_.size());
    d_.items_.push_back({type, m.line, m.column, a, b});
    if (anchor != 0) {
      if (anchors_.size() < anchor) anchors_.resize(anchor);
      anchors_[anchor - 1] = id;
    }
    Attach(id);
    return id;
  }
  void Attach(std::uint32_t id) {
    if (!open_.empty()) pending_.push_back(id);
  }
  void Open(Document::Type type, const YAML::Mark& m, YAML::anchor_t anchor) {
    const std::uint32_t id = Add(type, m, anchor, 0, 0);
    open_.push_back({id, pending_.size()});
  }
  void Close() {
    const Open_ o = open_.back();
    open_.pop_back();
    Document::Item& item = d_.items_[o.id];
    item.a = static_cast<std::uint32_t>(d_.kids_.size());
    item.b = static_cast<std::uint32_t>(pending_.size() - o.first_pending);
    d_.kids_.insert(d_.kids_.end(), pending_.begin() + static_cast<std::ptrdiff_t>(o.first_pending), pending_.end());
    pending_.resize(o.first_pending);
  }

  Document& d_;
  std::vector<Open_> open_;
  std::vector<std::uint32_t> pending_;
  std::vector<std::uint32_t> anchors_;
};

Document Document::Parse(std::string_view text, std::size_t* count, yaml::Mark* second) {
  Document d;
  ViewBuf buf(text);
  std::istream in(&buf);
  YAML::Parser parser(in);
  std::size_t n = 0;
  {
    TreeBuilder builder(d);
    if (parser.HandleNextDocument(builder)) ++n;
  }
  // No document at all (an empty file, only comments) reads as null.
  if (d.items_.empty()) d.items_.push_back({Type::kNull, -1, -1, 0, 0});
  FirstMark rest;
  while (parser.HandleNextDocument(rest)) ++n;
  if (count) *count = n;
  if (second) *second = rest.mark;
  d.items_.shrink_to_fit();
  d.kids_.shrink_to_fit();
  return d;
}

bool Node::IsNull() const { return doc_ && doc_->items_[id_].type == Document::Type::kNull; }
bool Node::IsScalar() const { return doc_ && doc_->items_[id_].type == Document::Type::kScalar; }
bool Node::IsSequence() const { return doc_ && doc_->items_[id_].type == Document::Type::kSequence; }
bool Node::IsMap() const { return doc_ && doc_->items_[id_].type == Document::Type::kMap; }

std::string_view Node::Scalar() const {
  if (!IsScalar()) return {};
  const Document::Item& it = doc_->items_[id_];
  return std::string_view(doc_->text_).substr(it.a, it.b);
}

std::size_t Node::size() const {
  if (IsSequence()) return doc_->items_[id_].b;
  if (IsMap()) return doc_->items_[id_].b / 2;
  return 0;
}

Node Node::At(std::size_t i) const {
  if (!IsSequence() || i >= size()) return Node();
  return Node(doc_, doc_->kids_[doc_->items_[id_].a + i]);
}

Node Node::operator[](std::string_view key) const {
  if (!IsMap()) return Node();
  const Document::Item& it = doc_->items_[id_];
  for (std::uint32_t k = it.a; k < it.a + it.b; k += 2) {
    const Node candidate(doc_, doc_->kids_[k]);
    if (candidate.IsScalar() && candidate.Scalar() == key) return Node(doc_, doc_->kids_[k + 1]);
  }
  return Node();
}

yaml::Mark Node::Mark() const {
  if (!doc_) return {};
  const Document::Item& it = doc_->items_[id_];
  return {it.line, it.column};
}

NodeEntry Node::EntryAt(std::size_t i) const {
  const std::uint32_t at = doc_->items_[id_].a + static_cast<std::uint32_t>(2 * i);
  return {Node(doc_, doc_->kids_[at]), Node(doc_, doc_->kids_[at + 1])};
}

}  // namespace dropq::app::yaml
