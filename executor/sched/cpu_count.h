// Copyright 2026 The ripcord Authors.
//
// cpu_count.h: how many workers `ExecutorOptions::num_workers = 0` starts.
// The CPUs this process may run on (its affinity mask), capped by the CPU
// bandwidth limit of its cgroup (what a container's `--cpus=1.5` sets),
// rounded up, never less than 1. std::thread::hardware_concurrency() counts
// the host's cores instead: in a container limited to one CPU, that many
// busy-spinning workers share one CPU's worth of time slices.
//
//   cgroup v2: cpu.max holds "$QUOTA $PERIOD" or "max $PERIOD".
//   cgroup v1: cpu.cfs_quota_us ("-1" = no limit) and cpu.cfs_period_us.
// The limit is the tightest one found in the process's cgroup directory and
// each of its ancestors up to the mount point, for every cgroup hierarchy
// that has the cpu controller (a hybrid v1/v2 host has both).
#ifndef RIPCORD_EXECUTOR_CPU_COUNT_H_
#define RIPCORD_EXECUTOR_CPU_COUNT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ripcord::internal {

// CpusForQuota(quota, period): ceil(quota / period), at least 1. Both must
// be > 0 (the parsers check); otherwise returns 1. Thread-safe.
int CpusForQuota(int64_t quota, int64_t period);

// ParseCpuMax(contents): the CPU limit in a cgroup v2 `cpu.max` file.
// Returns: the limit in CPUs, rounded up, >= 1 ("150000 100000" -> 2,
// "50000 100000" -> 1); std::nullopt for "max PERIOD" (no limit);
// InvalidArgument for anything else (not two fields, a quota or period that
// is not a positive integer). Thread-safe; no I/O.
absl::StatusOr<std::optional<int>> ParseCpuMax(absl::string_view contents);

// ParseCfsQuota(quota, period): the CPU limit in cgroup v1's
// `cpu.cfs_quota_us` and `cpu.cfs_period_us` files.
// Returns: the limit in CPUs, rounded up, >= 1; std::nullopt for a quota of
// -1 (no limit); InvalidArgument if either is not an integer, the period is
// not positive, or the quota is neither -1 nor positive. Thread-safe; no I/O.
absl::StatusOr<std::optional<int>> ParseCfsQuota(absl::string_view quota,
                                                 absl::string_view period);

// A cgroup directory of this process that has the cpu controller, and the
// mount point of its hierarchy (the last ancestor to look at).
struct CpuCgroupDir {
  std::string dir;
  std::string mount_point;
};

// FindCpuCgroupDirs(proc_self_cgroup, mountinfo): from the contents of
// /proc/self/cgroup and /proc/self/mountinfo, the directories where this
// process's CPU limits live: the cgroup2 one (if cgroup2 is mounted) and the
// v1 one of the `cpu` controller (if mounted). A cgroup path outside the
// mount's root (a cgroup namespace) maps to the mount point.
// Returns: the directories; empty when nothing matches or the input is
// malformed. Thread-safe; no I/O.
std::vector<CpuCgroupDir> FindCpuCgroupDirs(absl::string_view proc_self_cgroup,
                                            absl::string_view mountinfo);

// CgroupCpuLimitInDir(d): the tightest limit in d.dir and its ancestors up
// to and including d.mount_point, reading `cpu.max`, or else
// `cpu.cfs_quota_us` and `cpu.cfs_period_us`, in each.
// Returns: the limit in CPUs (>= 1); std::nullopt if no level sets one. A
// missing, unreadable or malformed file counts as no limit at its level.
// Thread-safe.
std::optional<int> CgroupCpuLimitInDir(const CpuCgroupDir& d);

// CgroupCpuLimit(proc_self_cgroup_path, mountinfo_path): the tightest limit
// of every directory FindCpuCgroupDirs finds from those two files (their
// defaults are this process's).
// Returns: the limit in CPUs (>= 1); std::nullopt if none is set or the
// files cannot be read. Thread-safe.
std::optional<int> CgroupCpuLimit(
    const std::string& proc_self_cgroup_path = "/proc/self/cgroup",
    const std::string& mountinfo_path = "/proc/self/mountinfo");

// AffinityCpuCount(): the number of CPUs in the calling thread's affinity
// mask (sched_getaffinity; the process's mask unless the thread changed its
// own). Returns std::thread::hardware_concurrency() if the call fails, and
// never less than 1. Thread-safe.
int AffinityCpuCount();

// DefaultWorkerCount(): min(AffinityCpuCount(), CgroupCpuLimit()), >= 1: the
// worker count of ExecutorOptions::num_workers = 0. Reads /proc on every
// call (tens of microseconds). Thread-safe.
int DefaultWorkerCount();

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_CPU_COUNT_H_
