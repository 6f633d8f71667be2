// Copyright 2026 The ripcord Authors.
//
// checkpointed_batch: a resumable CPU-bound batch job that loses nothing on
// Ctrl-C.
//
//   bazel run //examples:checkpointed_batch -- --output=/tmp/batch.tsv
//   # Ctrl-C whenever you like, then run the same command again: it goes on
//   # where it stopped. After a run that is not interrupted, /tmp/batch.tsv
//   # holds every item exactly once.
//
// The job: for every item i in 0..--items-1, result(i) is mix() applied
// --rounds times to i (mix is SplitMix64's finalizer, on uint64_t with
// wrap-around), written as a line "i<TAB>result" with the result as 16
// lowercase hex digits. Lines are in no particular order.
//
// Design:
//   * Checkpoint = the output itself. On start the output is read back: a torn
//     last line (only a process killed mid-write leaves one, e.g. by SIGKILL
//     or a third Ctrl-C) is cut off by truncating the file after its last
//     '\n', and the items present go into a bitmap. Only missing items are
//     computed. So whatever moment a run ends, a re-run neither repeats nor
//     skips an item. The first and last lines are recomputed as a spot check
//     that the file was written with the same --rounds.
//   * Compute: plain tasks in the unshielded root group "compute", one per
//     chunk of --chunk item numbers. Each task checks its stop token before
//     every item; when stopped it hands over what it has computed so far and
//     returns CancelledError.
//   * Write: each chunk's lines go, as one buffer, to SpawnBlocking in the
//     shielded root group "writer", which appends them with write(2) under a
//     mutex on the blocking pool. The first Ctrl-C stops "compute" but not
//     "writer", so every result already computed reaches the file. A second
//     Ctrl-C stops "writer" too: writes already running complete (a write is
//     never cut), queued ones are dropped, and their items are simply
//     computed again by the next run. After a failed write nothing more is
//     written (a torn line must stay the last one) and the job fails.
//   * The output is flock()ed, so two runs cannot interleave on one file.
//   * At the end the file is fsync()ed. Without a signal: exit 0. After
//     SIGINT/SIGTERM: one summary line, then the process ends as killed by
//     the first signal (a shell reports 128 + signo). Errors: exit 1.
//   * While it runs, a progress line (items done, rate, ETA) on stderr, at
//     most 4 times a second, only when stderr is a terminal.

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ripcord/ripcord.h"

ABSL_FLAG(int64_t, items, 1000000, "process the items 0..items-1");
ABSL_FLAG(int, rounds, 2000, "result(i) is mix() applied this many times to i");
ABSL_FLAG(std::string, output, "",
          "the output file (required); lines 'item<TAB>result' are appended "
          "to it, and a re-run continues from what it holds");
ABSL_FLAG(int64_t, chunk, 4096, "item numbers per compute task");
ABSL_FLAG(int, workers, 0,
          "work-stealing worker threads; 0 = one per hardware thread");

namespace {

constexpr char kUsage[] =
    "A resumable batch job: computes result(i) = mix^rounds(i) for i in "
    "0..items-1 and appends 'i<TAB>result' lines (result: 16 lowercase hex "
    "digits) to --output. Ctrl-C (SIGINT) or SIGTERM stops the computation, "
    "writes every result already computed, and ends the program as killed by "
    "the signal; running it again continues where it stopped. A second "
    "Ctrl-C also abandons results not yet written (the next run recomputes "
    "them); a third ends the program at once.\n\n"
    "Usage: checkpointed_batch --output=FILE [--items=1000000] "
    "[--rounds=2000] [--chunk=4096] [--workers=0]";

// mix(z): SplitMix64's finalizer, on uint64_t with wrap-around.
uint64_t Mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t Result(uint64_t item, int rounds) {
  uint64_t z = item;
  for (int r = 0; r < rounds; ++r) z = Mix(z);
  return z;
}

// Appends "item\tresult\n".
void AppendLine(std::string* out, uint64_t item, uint64_t result) {
  absl::StrAppend(out, item, "\t", absl::Hex(result, absl::kZeroPad16), "\n");
}

// Parses a line without its '\n'. False if it is not "item<TAB>16 hex".
bool ParseLine(std::string_view line, uint64_t* item, uint64_t* result) {
  const size_t tab = line.find('\t');
  if (tab == std::string_view::npos || tab == 0) return false;
  std::string_view num = line.substr(0, tab);
  std::string_view hex = line.substr(tab + 1);
  if (hex.size() != 16) return false;
  for (char c : num) {
    if (c < '0' || c > '9') return false;
  }
  uint64_t r = 0;
  for (char c : hex) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return false;
    }
    r = (r << 4) | static_cast<uint64_t>(d);
  }
  if (!absl::SimpleAtoi(absl::string_view(num.data(), num.size()), item)) {
    return false;
  }
  *result = r;
  return true;
}

// Bitmap: which items the output already holds. Thread-compatible; after
// recovery it is only read (by the compute tasks).
class Bitmap {
 public:
  explicit Bitmap(uint64_t n) : words_((n + 63) / 64, 0) {}
  bool Get(uint64_t i) const { return (words_[i / 64] >> (i % 64)) & 1; }
  void Set(uint64_t i) { words_[i / 64] |= uint64_t{1} << (i % 64); }

 private:
  std::vector<uint64_t> words_;
};

// Recovery: reads `fd` (the output, opened read-write), cuts a torn last line
// off, records the items present in `present` and returns how many there
// are. Errors: a malformed or wrong line in the middle, an item out of range
// or present twice, a result that does not match --rounds (spot check).
absl::StatusOr<uint64_t> Recover(int fd, const std::string& path,
                                 uint64_t items, int rounds, Bitmap* present) {
  std::string data;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, absl::StrCat("read ", path));
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  const size_t last_newline = data.rfind('\n');
  const size_t keep = last_newline == std::string::npos ? 0 : last_newline + 1;
  if (keep != data.size()) {
    std::fprintf(stderr,
                 "checkpointed_batch: %s: dropping a torn last line (%zu "
                 "bytes) left by an interrupted write\n",
                 path.c_str(), data.size() - keep);
    if (::ftruncate(fd, static_cast<off_t>(keep)) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("ftruncate ", path));
    }
    if (::fsync(fd) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("fsync ", path));
    }
    data.resize(keep);
  }

  uint64_t count = 0;
  uint64_t line_no = 0;
  std::string_view rest(data);
  std::string_view first_line, last_line;
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');  // present: data ends with '\n'
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl + 1);
    ++line_no;
    uint64_t item, result;
    if (!ParseLine(line, &item, &result)) {
      return absl::DataLossError(
          absl::StrFormat("%s:%d: not an 'item<TAB>16 hex digits' line: '%s'",
                          path, line_no, std::string(line.substr(0, 80))));
    }
    if (item >= items) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s:%d: item %d is not below --items=%d; was the file written with "
          "other flags?",
          path, line_no, item, items));
    }
    if (present->Get(item)) {
      return absl::DataLossError(absl::StrFormat(
          "%s:%d: item %d appears a second time", path, line_no, item));
    }
    present->Set(item);
    ++count;
    if (first_line.empty()) first_line = line;
    last_line = line;
  }
  // Spot check: recomputing every line costs as much as the job; the first
  // and the last line catch a file written with another --rounds.
  for (std::string_view line : {first_line, last_line}) {
    if (line.empty()) continue;
    uint64_t item, result;
    ParseLine(line, &item, &result);
    if (Result(item, rounds) != result) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: the line for item %d does not match --rounds=%d; was the file "
          "written with other flags?",
          path, item, rounds));
    }
  }
  return count;
}

// Appender: appends whole buffers of lines to the output. Thread-safe.
// After one failed write nothing more is written, so a torn line is always
// the last one in the file (the next run cuts it off).
class Appender {
 public:
  Appender(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}

  absl::Status Append(const std::string& lines) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (!error_.ok()) return error_;
    size_t off = 0;
    while (off < lines.size()) {
      const ssize_t n = ::write(fd_, lines.data() + off, lines.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        error_ = absl::ErrnoToStatus(errno, absl::StrCat("write ", path_));
        return error_;
      }
      off += static_cast<size_t>(n);
    }
    return absl::OkStatus();
  }

 private:
  const int fd_;
  const std::string path_;
  absl::Mutex mu_;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
};

// Progress of this run. Thread-safe. relaxed is enough: it feeds the
// progress line, and the final count is read after writer.Wait(), which
// orders every write before it.
struct Progress {
  std::atomic<uint64_t> written{0};  // lines appended by this run
};

// First error of the job (a failed write). Thread-safe.
class FirstError {
 public:
  void Record(absl::Status s) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (status_.ok()) status_ = std::move(s);
  }
  absl::Status Get() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return status_;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

std::string FormatProgress(uint64_t have, uint64_t items, uint64_t done_now,
                           absl::Duration elapsed) {
  const double secs = absl::ToDoubleSeconds(elapsed);
  const double rate = secs > 0 ? static_cast<double>(done_now) / secs : 0;
  std::string eta = "?";
  if (rate > 0) {
    eta = absl::FormatDuration(
        absl::Trunc(absl::Seconds(static_cast<double>(items - have) / rate),
                    absl::Seconds(1)));
  }
  return absl::StrFormat("%d/%d items (%.1f%%), %.0f items/s, ETA %s", have,
                         items, items ? 100.0 * have / items : 100.0, rate,
                         eta);
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "checkpointed_batch: %s\n", status.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  absl::ParseCommandLine(argc, argv);

  const std::string path = absl::GetFlag(FLAGS_output);
  const int64_t items_flag = absl::GetFlag(FLAGS_items);
  const int rounds = absl::GetFlag(FLAGS_rounds);
  const int64_t chunk_flag = absl::GetFlag(FLAGS_chunk);
  const int workers = absl::GetFlag(FLAGS_workers);
  if (path.empty()) {
    return Fail(absl::InvalidArgumentError("--output=FILE is required"));
  }
  if (items_flag < 0 || rounds < 0 || chunk_flag < 1 || workers < 0) {
    return Fail(absl::InvalidArgumentError(
        "--items, --rounds and --workers must not be negative; --chunk must "
        "be at least 1"));
  }
  const uint64_t items = static_cast<uint64_t>(items_flag);
  const uint64_t chunk = static_cast<uint64_t>(chunk_flag);

  // Recovery first. It is safe to be killed at any point (it only reads and
  // cuts a torn tail off), so a signal during it may take its default action.
  const int fd =
      ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Fail(absl::ErrnoToStatus(errno, absl::StrCat("open ", path)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    return Fail(absl::ErrnoToStatus(
        errno, absl::StrCat("flock ", path,
                            " (is another checkpointed_batch using it?)")));
  }
  Bitmap present(items);
  const absl::StatusOr<uint64_t> had =
      Recover(fd, path, items, rounds, &present);
  if (!had.ok()) {
    ::close(fd);
    return Fail(had.status());
  }

  Appender appender(fd, path);
  Progress progress;
  FirstError first_error;
  int first_signal = 0;  // read from the watcher before it goes
  int exit_code = 0;
  {
    // Writes are serialized by Appender's mutex: two blocking threads are
    // plenty (more calls wait in the pool's queue).
    ripcord::Executor executor(
        {.num_workers = workers, .max_blocking_threads = 2});
    // The groups exist before the watcher, so a stop signal always finds
    // them: a root group created after a signal starts unstopped (by design,
    // so that a program can open one for its clean-up) and would not see a
    // Ctrl-C that came before it. `writer` is declared first, so it is
    // destroyed last: compute tasks spawn into it.
    ripcord::TaskGroup writer(executor, {.name = "writer", .shielded = true});
    ripcord::TaskGroup compute(executor, {.name = "compute"});
    ripcord::SignalWatcher watcher(executor);

    const absl::Time start = absl::Now();
    absl::Status compute_status;
    for (uint64_t begin = 0; begin < items; begin += chunk) {
      const uint64_t end = std::min(items, begin + chunk);
      bool any_missing = false;
      for (uint64_t i = begin; i < end && !any_missing; ++i) {
        any_missing = !present.Get(i);
      }
      if (!any_missing) continue;
      compute.Spawn([begin, end, rounds, &present, &writer, &compute, &appender,
                     &progress,
                     &first_error](ripcord::StopToken token) -> absl::Status {
        std::string lines;
        uint64_t n = 0;
        bool stopped = false;
        for (uint64_t i = begin; i < end; ++i) {
          if (present.Get(i)) continue;
          if (token.stop_requested()) {
            stopped = true;
            break;
          }
          AppendLine(&lines, i, Result(i, rounds));
          ++n;
        }
        if (n > 0) {
          // Hand everything computed to the shielded writer, stopped or not.
          writer.SpawnBlocking(
              [&appender, &progress, n, lines = std::move(lines)] {
                absl::Status status = appender.Append(lines);
                // Counted here, not in done: done runs on a worker, behind
                // the compute tasks already queued, so it would lag.
                if (status.ok()) {
                  progress.written.fetch_add(n, std::memory_order_relaxed);
                }
                return status;
              },
              [&first_error, &compute, &writer](absl::Status status) {
                if (!status.ok() && !absl::IsCancelled(status)) {
                  // A failed write ends the job: nothing more can be
                  // appended safely.
                  first_error.Record(status);
                  compute.RequestStop("write failed");
                  writer.RequestStop("write failed");
                }
                // CancelledError: the writer was stopped (a second signal)
                // before this write started; the next run recomputes these.
              });
        }
        if (stopped) {
          return absl::CancelledError("compute: stopped");
        }
        return absl::OkStatus();
      });
    }

    const bool show = ::isatty(STDERR_FILENO) == 1;
    const uint64_t had_items = *had;
    for (;;) {
      absl::Status s = compute.WaitFor(absl::Milliseconds(250));
      if (!absl::IsDeadlineExceeded(s)) {
        compute_status = s;
        break;
      }
      if (show) {
        const uint64_t now_done =
            progress.written.load(std::memory_order_relaxed);
        std::fprintf(stderr, "\r\033[K%s",
                     FormatProgress(had_items + now_done, items, now_done,
                                    absl::Now() - start)
                         .c_str());
        std::fflush(stderr);
      }
    }
    // Every result computed has been handed to the writer; wait until it is
    // in the file (or, after a second signal, dropped).
    writer.Wait().IgnoreError();
    if (show) std::fputs("\r\033[K", stderr);

    if (::fsync(fd) != 0) {
      first_error.Record(
          absl::ErrnoToStatus(errno, absl::StrCat("fsync ", path)));
    }
    ::close(fd);

    const uint64_t written = progress.written.load(std::memory_order_relaxed);
    const uint64_t have = *had + written;
    const absl::Duration elapsed = absl::Now() - start;
    absl::Status error = first_error.Get();
    if (!error.ok()) {
      exit_code = Fail(error);
    } else if (compute_status.ok() && have == items) {
      absl::FPrintF(stderr,
                    "checkpointed_batch: done: %d items in %s (%d computed "
                    "now, %d already there) in %s\n",
                    items, path, written, *had, absl::FormatDuration(elapsed));
    } else if (absl::IsCancelled(compute_status)) {
      absl::FPrintF(stderr,
                    "checkpointed_batch: stopped: %d of %d items in %s (%d "
                    "written now); run again to continue\n",
                    have, items, path, written);
    } else {
      exit_code =
          Fail(compute_status.ok() ? absl::InternalError(absl::StrFormat(
                                         "%d of %d items in the output after a "
                                         "complete run",
                                         have, items))
                                   : compute_status);
    }
    first_signal = watcher.first_signal();
  }
  if (first_signal != 0) ripcord::ExitBySignal(first_signal);
  return exit_code;
}
