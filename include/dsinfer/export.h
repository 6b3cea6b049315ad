// DSINFER_API marks what libdsinfer exports; everything else in the library is hidden
// (built with -fvisibility=hidden, internal static libraries excluded from the export table).
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define DSINFER_API __attribute__((visibility("default")))
#else
#define DSINFER_API
#endif
