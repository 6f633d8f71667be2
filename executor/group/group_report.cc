// Copyright 2026 The ripcord Authors.
//
// group_report.cc: stop reasons' caps and escapes, and the subtree
// statistics (GroupState::TreeStats).
#include "executor/group/group_report.h"

#include <algorithm>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "ripcord/internal/group_state.h"
#include "ripcord/internal/mutex.h"
#include "ripcord/task_group.h"

namespace ripcord::internal {

std::string CapStopReason(std::string_view reason) {
  static constexpr char kHex[] = "0123456789abcdef";
  auto plain = [](unsigned char c) { return c >= 0x20 && c != 0x7f; };
  std::string out;
  out.reserve(std::min(reason.size(), kMaxStopReasonBytes));
  size_t i = 0;
  while (i < reason.size()) {
    // A run of bytes kept as they are, appended at once (a stop of a deep
    // tree caps the reason once per group).
    const size_t room = kMaxStopReasonBytes - out.size();
    size_t j = i;
    while (j < reason.size() && j - i < room &&
           plain(static_cast<unsigned char>(reason[j]))) {
      ++j;
    }
    out.append(reason.data() + i, j - i);
    i = j;
    if (i == reason.size() || plain(static_cast<unsigned char>(reason[i]))) {
      break;  // the end, or out is full
    }
    const auto c = static_cast<unsigned char>(reason[i]);
    char esc[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
    size_t n = 4;
    if (c == '\n' || c == '\r' || c == '\t') {
      esc[1] = c == '\n' ? 'n' : (c == '\r' ? 'r' : 't');
      n = 2;
    }
    if (out.size() + n > kMaxStopReasonBytes) break;
    out.append(esc, n);
    ++i;
  }
  if (i == reason.size()) return out;
  // Cut: drop a UTF-8 sequence that lost its tail (escapes are ASCII).
  size_t lead = out.size();
  while (lead > 0 && out.size() - lead < 4 &&
         (static_cast<unsigned char>(out[lead - 1]) & 0xc0) == 0x80) {
    --lead;
  }
  if (lead > 0) {
    const auto b = static_cast<unsigned char>(out[lead - 1]);
    const size_t len = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    if (len > 1 && out.size() - (lead - 1) < len) out.resize(lead - 1);
  }
  absl::StrAppend(&out, " ...[cut: ", reason.size(), " bytes in all]");
  return out;
}

std::string GroupState::StopReasonLocked() const {
  if (!stopped_by_parent_) return stop_reason_;
  return absl::StrCat("parent ", parent_->Label(), " stopped: ", stop_reason_);
}

namespace {
void Add(GroupStats* sum, const GroupStats& s) {
  sum->spawned += s.spawned;
  sum->completed += s.completed;
  sum->failed += s.failed;
  sum->cancelled += s.cancelled;
  sum->running += s.running;
  sum->queued += s.queued;
}
}  // namespace

GroupStats GroupState::TreeStats() const {
  GroupStats sum;
  AddTreeStats(&sum);
  return sum;
}

void GroupState::AddTreeStats(GroupStats* sum) const {
  Add(sum, Stats());  // its own frame: the recursion's frames stay small
  SpinLockHolder lock(&children_mu_);
  for (GroupState* c = first_child_; c != nullptr; c = c->next_sibling_) {
    c->AddTreeStats(sum);
  }
}

// GroupState is allocated from the task cache, whose blocks are at most
// kMaxCachedTaskSize bytes; one byte more and every group goes to malloc.
static_assert(sizeof(GroupState) <= kMaxCachedTaskSize,
              "GroupState outgrew the task cache");

}  // namespace ripcord::internal
