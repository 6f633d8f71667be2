// Copyright 2026 The ripcord Authors.
//
// cpu_count_test: ExecutorOptions::num_workers = 0 starts one worker per CPU
// the process may use: its affinity mask, capped by the cgroup CPU quota
// (rounded up), never less than 1. The quota parsing runs on files this test
// writes; the affinity part runs in forked children that narrow their own
// mask with sched_setaffinity.

#include "executor/sched/cpu_count.h"

#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ripcord/executor.h"

namespace ripcord::internal {
namespace {

// A fresh directory under $TEST_TMPDIR (or /tmp) for one test.
std::string MakeTempDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string pattern =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/cpu_count_test.XXXXXX");
  char* dir = mkdtemp(pattern.data());
  EXPECT_NE(dir, nullptr) << "mkdtemp failed";
  return pattern;
}

void MakeDir(const std::string& path) {
  ASSERT_EQ(mkdir(path.c_str(), 0755), 0) << path;
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path);
  out << contents;
  ASSERT_TRUE(out.good()) << path;
}

TEST(CpuCount, CpusForQuotaRoundsUp) {
  EXPECT_EQ(CpusForQuota(100000, 100000), 1);
  EXPECT_EQ(CpusForQuota(100001, 100000), 2);
  EXPECT_EQ(CpusForQuota(150000, 100000), 2);
  EXPECT_EQ(CpusForQuota(50000, 100000), 1);
  EXPECT_EQ(CpusForQuota(1, 100000), 1);
  EXPECT_EQ(CpusForQuota(400000, 100000), 4);
  EXPECT_EQ(CpusForQuota(0, 100000), 1);  // invalid: never below 1
  EXPECT_EQ(CpusForQuota(100000, 0), 1);
}

TEST(CpuCount, ParseCpuMax) {
  EXPECT_EQ(ParseCpuMax("max 100000\n").value(), std::nullopt);
  EXPECT_EQ(ParseCpuMax("150000 100000\n").value(), 2);
  EXPECT_EQ(ParseCpuMax("50000 100000\n").value(), 1);
  EXPECT_EQ(ParseCpuMax("200000 100000").value(), 2);
  EXPECT_EQ(ParseCpuMax("1000 1000").value(), 1);
}

TEST(CpuCount, ParseCpuMaxMalformedIsInvalidArgument) {
  for (const char* bad : {"", "\n", "max", "150000", "150000 100000 7",
                          "abc 100000", "150000 abc", "0 100000", "-1 100000",
                          "150000 0", "150000 -5", "1.5 100000", "max max"}) {
    absl::StatusOr<std::optional<int>> got = ParseCpuMax(bad);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument)
        << "\"" << bad << "\"";
  }
}

TEST(CpuCount, ParseCfsQuota) {
  EXPECT_EQ(ParseCfsQuota("-1\n", "100000\n").value(), std::nullopt);
  EXPECT_EQ(ParseCfsQuota("150000\n", "100000\n").value(), 2);
  EXPECT_EQ(ParseCfsQuota("50000\n", "100000\n").value(), 1);
  EXPECT_EQ(ParseCfsQuota("300000", "100000").value(), 3);
  for (auto [quota, period] :
       std::vector<std::pair<const char*, const char*>>{{"", "100000"},
                                                        {"max", "100000"},
                                                        {"0", "100000"},
                                                        {"-2", "100000"},
                                                        {"150000", "0"},
                                                        {"150000", ""},
                                                        {"150000", "-1"}}) {
    EXPECT_EQ(ParseCfsQuota(quota, period).status().code(),
              absl::StatusCode::kInvalidArgument)
        << "\"" << quota << "\" \"" << period << "\"";
  }
}

// cgroup v2: the tightest cpu.max from the process's directory up to the
// mount point; "max" and malformed files set no limit.
TEST(CpuCount, CgroupV2LimitFromFiles) {
  const std::string root = MakeTempDir();
  MakeDir(root + "/a");
  MakeDir(root + "/a/b");
  const CpuCgroupDir d{root + "/a/b", root};

  EXPECT_EQ(CgroupCpuLimitInDir(d), std::nullopt);  // no files at all

  WriteFile(root + "/a/b/cpu.max", "max 100000\n");
  EXPECT_EQ(CgroupCpuLimitInDir(d), std::nullopt);

  WriteFile(root + "/a/b/cpu.max", "150000 100000\n");
  EXPECT_EQ(CgroupCpuLimitInDir(d), 2);

  WriteFile(root + "/a/b/cpu.max", "50000 100000\n");
  EXPECT_EQ(CgroupCpuLimitInDir(d), 1);

  WriteFile(root + "/a/b/cpu.max", "fifty thousand\n");
  EXPECT_EQ(CgroupCpuLimitInDir(d), std::nullopt);

  // An ancestor's limit binds; the tightest level wins.
  WriteFile(root + "/a/cpu.max", "300000 100000\n");
  EXPECT_EQ(CgroupCpuLimitInDir(d), 3);
  WriteFile(root + "/a/b/cpu.max", "150000 100000\n");
  EXPECT_EQ(CgroupCpuLimitInDir(d), 2);
  WriteFile(root + "/cpu.max", "100000 100000\n");
  EXPECT_EQ(CgroupCpuLimitInDir(d), 1);

  // Nothing above the mount point is read.
  EXPECT_EQ(CgroupCpuLimitInDir({root + "/a/b", root + "/a/b"}), 2);
}

TEST(CpuCount, CgroupV1LimitFromFiles) {
  const std::string root = MakeTempDir();
  MakeDir(root + "/docker");
  const CpuCgroupDir d{root + "/docker", root};

  WriteFile(root + "/docker/cpu.cfs_quota_us", "-1\n");
  WriteFile(root + "/docker/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(CgroupCpuLimitInDir(d), std::nullopt);

  WriteFile(root + "/docker/cpu.cfs_quota_us", "150000\n");
  EXPECT_EQ(CgroupCpuLimitInDir(d), 2);

  WriteFile(root + "/docker/cpu.cfs_quota_us", "50000\n");
  EXPECT_EQ(CgroupCpuLimitInDir(d), 1);

  WriteFile(root + "/docker/cpu.cfs_quota_us", "junk\n");
  EXPECT_EQ(CgroupCpuLimitInDir(d), std::nullopt);

  // A quota without its period sets nothing.
  WriteFile(root + "/docker/cpu.cfs_quota_us", "150000\n");
  ASSERT_EQ(unlink((root + "/docker/cpu.cfs_period_us").c_str()), 0);
  EXPECT_EQ(CgroupCpuLimitInDir(d), std::nullopt);
}

TEST(CpuCount, FindCpuCgroupDirsV2) {
  std::vector<CpuCgroupDir> dirs = FindCpuCgroupDirs(
      "0::/system.slice/app.service\n",
      "24 29 0:22 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw\n"
      "25 29 0:23 / /proc rw - proc proc rw\n");
  ASSERT_EQ(dirs.size(), 1u);
  EXPECT_EQ(dirs[0].dir, "/sys/fs/cgroup/system.slice/app.service");
  EXPECT_EQ(dirs[0].mount_point, "/sys/fs/cgroup");

  // In a cgroup namespace (a container), the process's cgroup is "/".
  dirs = FindCpuCgroupDirs(
      "0::/\n", "1 0 0:1 / /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n");
  ASSERT_EQ(dirs.size(), 1u);
  EXPECT_EQ(dirs[0].dir, "/sys/fs/cgroup");
}

TEST(CpuCount, FindCpuCgroupDirsV1AndHybrid) {
  // A hybrid host: v1 controllers plus an empty cgroup2 hierarchy. Both
  // directories are looked at; only the one with the cpu controller matters.
  std::vector<CpuCgroupDir> dirs = FindCpuCgroupDirs(
      "4:memory:/job\n2:cpuacct:/\n1:cpu,cpuacct:/job/7\n0::/\n",
      "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
      "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup "
      "rw,cpu,cpuacct\n"
      "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n");
  ASSERT_EQ(dirs.size(), 2u);
  EXPECT_EQ(dirs[0].dir, "/sys/fs/cgroup/cpu,cpuacct/job/7");
  EXPECT_EQ(dirs[0].mount_point, "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(dirs[1].dir, "/sys/fs/cgroup/unified");

  // A v1 container without a cgroup namespace: the mount shows only the
  // container's own cgroup (root /docker/abc).
  dirs = FindCpuCgroupDirs(
      "3:cpu,cpuacct:/docker/abc\n",
      "50 40 0:29 /docker/abc /sys/fs/cgroup/cpu ro master:5 - cgroup cgroup "
      "rw,cpu,cpuacct\n");
  ASSERT_EQ(dirs.size(), 1u);
  EXPECT_EQ(dirs[0].dir, "/sys/fs/cgroup/cpu");

  EXPECT_TRUE(FindCpuCgroupDirs("garbage", "more garbage\n- -").empty());
  EXPECT_TRUE(FindCpuCgroupDirs("", "").empty());
}

// The whole path from /proc-style files to the limit, with the mounts
// pointing into this test's directory.
TEST(CpuCount, CgroupCpuLimitFromProcFiles) {
  const std::string root = MakeTempDir();
  MakeDir(root + "/v2");
  MakeDir(root + "/v2/job");
  MakeDir(root + "/v1");
  MakeDir(root + "/v1/job");
  WriteFile(root + "/cgroup", "1:cpu,cpuacct:/job\n0::/job\n");
  WriteFile(root + "/mountinfo",
            absl::StrCat("1 0 0:1 / ", root, "/v2 rw - cgroup2 cgroup2 rw\n",
                         "2 0 0:2 / ", root,
                         "/v1 rw - cgroup cgroup rw,cpu,cpuacct\n"));
  EXPECT_EQ(CgroupCpuLimit(root + "/cgroup", root + "/mountinfo"),
            std::nullopt);

  WriteFile(root + "/v2/job/cpu.max", "250000 100000\n");
  EXPECT_EQ(CgroupCpuLimit(root + "/cgroup", root + "/mountinfo"), 3);

  WriteFile(root + "/v1/job/cpu.cfs_quota_us", "150000\n");
  WriteFile(root + "/v1/job/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(CgroupCpuLimit(root + "/cgroup", root + "/mountinfo"), 2);

  EXPECT_EQ(CgroupCpuLimit(root + "/missing", root + "/mountinfo"),
            std::nullopt);
}

// Runs `child` in a forked process and returns its exit status (the child
// exits 0 on success; a message on stderr says what went wrong otherwise).
int RunInChild(int (*child)(const cpu_set_t& mask), const cpu_set_t& mask) {
  fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) _exit(child(mask));
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  return status;
}

std::vector<int> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  EXPECT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  std::vector<int> cpus;
  for (int i = 0; i < CPU_SETSIZE; ++i) {
    if (CPU_ISSET(i, &set)) cpus.push_back(i);
  }
  return cpus;
}

// In the child: narrow the mask, then check AffinityCpuCount(),
// DefaultWorkerCount() and an Executor with num_workers = 0 against it.
int NarrowedChild(const cpu_set_t& mask) {
  if (sched_setaffinity(0, sizeof(mask), &mask) != 0) {
    perror("sched_setaffinity");
    return 2;
  }
  const int want = CPU_COUNT(&mask);
  const std::optional<int> limit = CgroupCpuLimit();
  const int want_workers = limit ? std::min(want, *limit) : want;
  if (AffinityCpuCount() != want) {
    fprintf(stderr, "AffinityCpuCount() = %d, want %d\n", AffinityCpuCount(),
            want);
    return 3;
  }
  if (DefaultWorkerCount() != want_workers) {
    fprintf(stderr, "DefaultWorkerCount() = %d, want %d\n",
            DefaultWorkerCount(), want_workers);
    return 4;
  }
  Executor executor;  // num_workers = 0
  if (executor.num_workers() != want_workers) {
    fprintf(stderr, "Executor().num_workers() = %d, want %d\n",
            executor.num_workers(), want_workers);
    return 5;
  }
  return 0;
}

TEST(CpuCount, AffinityMaskOfOneCpuGivesOneWorker) {
  std::vector<int> cpus = AllowedCpus();
  ASSERT_FALSE(cpus.empty());
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpus.back(), &one);
  int status = RunInChild(NarrowedChild, one);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "child status " << status;
}

TEST(CpuCount, AffinityMaskOfTwoCpusGivesTwoWorkersUnlessCapped) {
  std::vector<int> cpus = AllowedCpus();
  if (cpus.size() < 2) GTEST_SKIP() << "this process may use one CPU only";
  cpu_set_t two;
  CPU_ZERO(&two);
  CPU_SET(cpus[0], &two);
  CPU_SET(cpus[1], &two);
  int status = RunInChild(NarrowedChild, two);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "child status " << status;
}

// In the parent, unchanged: never less than 1, never more than the mask.
TEST(CpuCount, DefaultWorkerCountIsWithinTheMask) {
  const int cpus = AffinityCpuCount();
  EXPECT_GE(cpus, 1);
  EXPECT_EQ(cpus, static_cast<int>(AllowedCpus().size()));
  EXPECT_GE(DefaultWorkerCount(), 1);
  EXPECT_LE(DefaultWorkerCount(), cpus);
}

}  // namespace
}  // namespace ripcord::internal
