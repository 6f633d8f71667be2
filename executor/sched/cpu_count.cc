// Copyright 2026 The ripcord Authors.
//
// cpu_count.cc: see cpu_count.h. Reading the limit:
//  1. /proc/self/cgroup names the process's cgroup in each hierarchy
//     ("0::/path" for cgroup2, "N:cpu,cpuacct:/path" for v1).
//  2. /proc/self/mountinfo says where each hierarchy is mounted and which of
//     its paths the mount shows (its root); the directory is the mount point
//     plus the cgroup path below that root.
//  3. From that directory up to the mount point, each level's quota file
//     may set a limit; the tightest one wins (a parent's limit binds its
//     children).
// Anything unexpected means "no limit" at that step, never an abort: the
// executor then starts one worker per CPU of the affinity mask, as before.

#include "executor/sched/cpu_count.h"

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace ripcord::internal {
namespace {

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return std::move(out).str();
}

std::optional<int> Min(std::optional<int> a, std::optional<int> b) {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}

// "/a/b" -> "/a"; "/a" -> "/"; "/" -> "".
std::string Parent(absl::string_view dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.remove_suffix(1);
  if (dir == "/") return "";
  size_t slash = dir.rfind('/');
  if (slash == absl::string_view::npos) return "";
  return std::string(dir.substr(0, slash == 0 ? 1 : slash));
}

// The limit set in one directory, if any.
std::optional<int> LimitAtLevel(const std::string& dir) {
  if (std::optional<std::string> max = ReadFile(dir + "/cpu.max")) {
    absl::StatusOr<std::optional<int>> v2 = ParseCpuMax(*max);
    return v2.ok() ? *v2 : std::nullopt;
  }
  std::optional<std::string> quota = ReadFile(dir + "/cpu.cfs_quota_us");
  std::optional<std::string> period = ReadFile(dir + "/cpu.cfs_period_us");
  if (!quota || !period) return std::nullopt;
  absl::StatusOr<std::optional<int>> v1 = ParseCfsQuota(*quota, *period);
  return v1.ok() ? *v1 : std::nullopt;
}

// mount point + (cgroup_path relative to the mount's root).
std::string JoinMount(absl::string_view mount_point, absl::string_view root,
                      absl::string_view cgroup_path) {
  absl::string_view rel = cgroup_path;
  if (root != "/") {
    // Outside the mount's root (a cgroup namespace hides the rest): the
    // mount point is the closest directory we can see.
    if (!absl::ConsumePrefix(&rel, root)) rel = "";
    if (!rel.empty() && rel.front() != '/') rel = "";
  }
  while (!rel.empty() && rel.front() == '/') rel.remove_prefix(1);
  if (rel.empty()) return std::string(mount_point);
  return absl::StrCat(mount_point, mount_point == "/" ? "" : "/", rel);
}

}  // namespace

int CpusForQuota(int64_t quota, int64_t period) {
  if (quota <= 0 || period <= 0) return 1;
  const int64_t cpus = quota / period + (quota % period != 0 ? 1 : 0);
  return static_cast<int>(std::clamp<int64_t>(cpus, 1, 1 << 20));
}

absl::StatusOr<std::optional<int>> ParseCpuMax(absl::string_view contents) {
  std::vector<absl::string_view> fields =
      absl::StrSplit(contents, absl::ByAnyChar(" \t\n"), absl::SkipEmpty());
  int64_t quota = 0;
  int64_t period = 0;
  if (fields.size() != 2 || !absl::SimpleAtoi(fields[1], &period) ||
      period <= 0 ||
      (fields[0] != "max" &&
       (!absl::SimpleAtoi(fields[0], &quota) || quota <= 0))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cpu.max: expected \"QUOTA PERIOD\" or \"max PERIOD\", got \"",
        absl::StripAsciiWhitespace(contents), "\""));
  }
  if (fields[0] == "max") return std::nullopt;
  return CpusForQuota(quota, period);
}

absl::StatusOr<std::optional<int>> ParseCfsQuota(absl::string_view quota,
                                                 absl::string_view period) {
  int64_t q = 0;
  int64_t p = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(quota), &q) ||
      !absl::SimpleAtoi(absl::StripAsciiWhitespace(period), &p) || p <= 0 ||
      (q != -1 && q <= 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cpu.cfs_quota_us/cpu.cfs_period_us: expected a quota of -1 or > 0 "
        "and a period > 0, got \"",
        absl::StripAsciiWhitespace(quota), "\" and \"",
        absl::StripAsciiWhitespace(period), "\""));
  }
  if (q == -1) return std::nullopt;
  return CpusForQuota(q, p);
}

std::vector<CpuCgroupDir> FindCpuCgroupDirs(absl::string_view proc_self_cgroup,
                                            absl::string_view mountinfo) {
  // Step 1: the cgroup2 path and the v1 cpu controller's path.
  std::optional<std::string> v2_path;
  std::optional<std::string> v1_path;
  for (absl::string_view line :
       absl::StrSplit(proc_self_cgroup, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (f.size() != 3) continue;
    if (f[0] == "0" && f[1].empty()) {
      v2_path = std::string(f[2]);
    } else {
      for (absl::string_view c : absl::StrSplit(f[1], ',')) {
        if (c == "cpu") v1_path = std::string(f[2]);
      }
    }
  }
  // Step 2: "ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - TYPE
  // SOURCE SUPER_OPTIONS".
  std::vector<CpuCgroupDir> dirs;
  bool have_v2 = false;
  bool have_v1 = false;
  for (absl::string_view line :
       absl::StrSplit(mountinfo, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    auto dash = std::find(f.begin(), f.end(), "-");
    if (f.size() < 6 || dash == f.end() || f.end() - dash < 4 ||
        dash - f.begin() < 6) {
      continue;
    }
    absl::string_view root = f[3];
    absl::string_view mount_point = f[4];
    absl::string_view type = dash[1];
    if (type == "cgroup2" && v2_path && !have_v2) {
      have_v2 = true;
      dirs.push_back(
          {JoinMount(mount_point, root, *v2_path), std::string(mount_point)});
    } else if (type == "cgroup" && v1_path && !have_v1) {
      for (absl::string_view opt : absl::StrSplit(dash[3], ',')) {
        if (opt != "cpu") continue;
        have_v1 = true;
        dirs.push_back(
            {JoinMount(mount_point, root, *v1_path), std::string(mount_point)});
        break;
      }
    }
  }
  return dirs;
}

std::optional<int> CgroupCpuLimitInDir(const CpuCgroupDir& d) {
  // Step 3: walk up to the mount point, keeping the tightest limit.
  std::optional<int> limit;
  std::string dir = d.dir;
  if (!absl::StartsWith(dir, d.mount_point)) return std::nullopt;
  while (!dir.empty()) {
    limit = Min(limit, LimitAtLevel(dir));
    if (dir.size() <= d.mount_point.size()) break;
    dir = Parent(dir);
  }
  return limit;
}

std::optional<int> CgroupCpuLimit(const std::string& proc_self_cgroup_path,
                                  const std::string& mountinfo_path) {
  std::optional<std::string> cgroup = ReadFile(proc_self_cgroup_path);
  std::optional<std::string> mountinfo = ReadFile(mountinfo_path);
  if (!cgroup || !mountinfo) return std::nullopt;
  std::optional<int> limit;
  for (const CpuCgroupDir& d : FindCpuCgroupDirs(*cgroup, *mountinfo)) {
    limit = Min(limit, CgroupCpuLimitInDir(d));
  }
  return limit;
}

int AffinityCpuCount() {
  // Start at 1024 CPUs and grow: the kernel's mask may be larger.
  for (int cpus = 1024; cpus <= (1 << 20); cpus *= 2) {
    cpu_set_t* set = CPU_ALLOC(cpus);
    if (set == nullptr) break;
    const size_t size = CPU_ALLOC_SIZE(cpus);
    CPU_ZERO_S(size, set);
    const int rc = sched_getaffinity(0, size, set);
    const int err = errno;
    const int count = rc == 0 ? CPU_COUNT_S(size, set) : 0;
    CPU_FREE(set);
    if (rc == 0) return std::max(count, 1);
    if (err != EINVAL) break;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

int DefaultWorkerCount() {
  const int cpus = AffinityCpuCount();
  const std::optional<int> limit = CgroupCpuLimit();
  return std::max(1, limit ? std::min(cpus, *limit) : cpus);
}

}  // namespace ripcord::internal
