// Copyright 2026 The ripcord Authors.
//
// group_report.h: the bounds on what a group writes into reports: stop
// reasons (Wait()'s CancelledError, DebugString, traces) and
// Executor::DebugString()'s tree of groups.
#ifndef RIPCORD_EXECUTOR_GROUP_REPORT_H_
#define RIPCORD_EXECUTOR_GROUP_REPORT_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace ripcord::internal {

// A stop reason keeps at most this many bytes (after escaping), plus the
// cut marker.
inline constexpr size_t kMaxStopReasonBytes = 4096;
// DebugString indents a group by two spaces per level up to this depth;
// deeper groups are indented as at this depth and show "[depth N]".
inline constexpr int kMaxDescribeIndent = 32;
// DebugString stops describing groups once its text is this long, and ends
// with "... N more groups".
inline constexpr size_t kMaxDescribeBytes = size_t{1} << 20;

// CapStopReason(reason): `reason` as a group records it. Control characters
// (bytes below 0x20, and 0x7f) are escaped: \n, \r, \t, or \xNN (so NUL is
// \x00). If the result would exceed kMaxStopReasonBytes it is cut there (not
// inside an escape or a UTF-8 sequence) and ends with
// " ...[cut: N bytes in all]". Reads at most about kMaxStopReasonBytes bytes
// of `reason` (any length is fine). Thread-safe (pure).
std::string CapStopReason(std::string_view reason);

}  // namespace ripcord::internal

#endif  // RIPCORD_EXECUTOR_GROUP_REPORT_H_
