// Copyright 2026 The ripcord Authors.
//
// executor.cc: Executor's out-of-line members, over ExecutorImpl
// (scheduler.h): process-life registration, the exit() and fork() cases of
// the destructor, stops, DebugString and WriteTrace.
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "executor/base/process_life.h"
#include "executor/sched/scheduler.h"
#include "executor/trace/trace.h"
#include "ripcord/executor.h"

namespace ripcord {

// ---- Executor ---------------------------------------------------------------

Executor::Executor(ExecutorOptions options)
    : impl_(std::make_unique<internal::ExecutorImpl>(options)) {
  internal::NoteProcessLifeObject();
  internal::RegisterExecutor(impl_.get());
}

Executor::~Executor() {
  // Process life (executor/base/process_life.h): an inherited executor has no
  // threads to join; during exit() live groups stop and the executor leaks.
  if (internal::InheritedByFork(impl_.get())) {
    internal::LeakOnPurpose(impl_.release());
    return;
  }
  internal::UnregisterExecutor(impl_.get());
  if ((impl_->LiveRootGroups() != 0 || impl_->OnWorkerThread()) &&
      internal::ExitingFor(this)) {
    impl_->RequestStop(StopTarget::kAll,
                       "the process is exiting (exit() called)");
    internal::LeakOnPurpose(impl_.release());
  }
}

int Executor::num_workers() const { return impl_->num_workers(); }

void Executor::RequestStop(StopTarget target, std::string_view reason) {
  impl_->RequestStop(target, reason);
}

std::string Executor::DebugString() const { return impl_->DebugString(); }

absl::Status Executor::WriteTrace(std::string_view path) const {
  return internal::WriteTrace(impl_->tracer(), path);
}

}  // namespace ripcord
