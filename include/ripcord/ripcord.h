// Copyright 2026 The ripcord Authors.
//
// ripcord.h: the umbrella header. Pulls in the whole public API:
//   Executor, ExecutorOptions, StopTarget            (executor.h)
//   StopToken, StopCallback, SleepFor                (stop_token.h)
//   TaskGroup, GroupOptions, GroupStats,
//     FailurePolicy, TaskOptions                     (task_group.h)
//   Task, Sleep, Yield, Blocking, TaskGroup::Join    (task.h)
//   TaskGroup::Start, TaskHandle, WaitAll            (task_handle.h)
//   SignalWatcher, SignalOptions                     (signal_watcher.h)
//   ParallelFor, ParallelForOptions                  (parallel_for.h)
#ifndef RIPCORD_RIPCORD_H_
#define RIPCORD_RIPCORD_H_

#include "ripcord/executor.h"
#include "ripcord/parallel_for.h"
#include "ripcord/signal_watcher.h"
#include "ripcord/stop_token.h"
#include "ripcord/task.h"
#include "ripcord/task_group.h"
#include "ripcord/task_handle.h"

#endif  // RIPCORD_RIPCORD_H_
