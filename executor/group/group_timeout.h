// Copyright 2026 The ripcord Authors.
//
// group_timeout.h: the timer entry of GroupOptions::timeout. Every file
// that may free a GroupState (whose unique_ptr owns one) includes it.
#ifndef RIPCORD_EXECUTOR_GROUP_GROUP_TIMEOUT_H_
#define RIPCORD_EXECUTOR_GROUP_GROUP_TIMEOUT_H_

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "executor/time/timer.h"
#include "ripcord/internal/group_state.h"

namespace ripcord::internal {

// GroupTimeout: the timer entry that stops a group when its timeout elapses.
class GroupTimeout : private TimerEntry {
 public:
  GroupTimeout(GroupState* group, absl::Duration timeout)
      : TimerEntry(&Fire), group_(group), timeout_(timeout) {}
  TimerEntry* entry() { return this; }
  std::string Reason() const {
    return absl::StrCat("timeout of ", absl::FormatDuration(timeout_),
                        " elapsed in ", group_->Label());
  }

 private:
  static void Fire(TimerEntry* e) {
    auto* self = static_cast<GroupTimeout*>(e);
    self->group_->Stop(self->Reason(), StopOrigin::kSelf);
  }
  GroupState* group_;
  absl::Duration timeout_;
};

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_GROUP_GROUP_TIMEOUT_H_
