#if canImport(Glibc)
import Glibc
#endif

/// The watcher's memory policy for glibc's malloc: keep the memory calls free while calls run,
/// give it back once they stop (``IdleMemoryTrimmer``).
///
/// By default glibc serves blocks of 128 KiB and more with `mmap` and returns heap memory above
/// 128 KiB at every `free`, so each large message (a 64 KiB request is gathered into a 128 KiB
/// buffer) costs fresh pages, their page faults and a `munmap`. With large blocks kept in the
/// heap (``keepFreedMemoryWhileBusy(environment:)``) the 1 MiB echo case ran 17–40 % more
/// calls/s (A/B runs, 3 alternations, medians); the small-message cases did not move.
///
/// `malloc_trim` cannot shrink the top of the heaps of glibc's per-thread arenas (the event
/// loops' allocations live there); only a `free` does, above the trim threshold. With 64 MiB,
/// 35 MB stayed resident after sixteen concurrent 1 MiB calls, idle or not; 16 MiB was as fast
/// and the idle trim came down to 43 MB (37 MB with glibc's defaults).
///
/// The functions are declared in malloc.h, which the Glibc module leaves out: they are looked
/// up once (``lookUpCFunction(_:)``), and with another C library there is nothing to do.
enum GlibcMalloc {
  /// Blocks below this many bytes come from the heap, not from `mmap` (glibc's default: 128 KiB).
  static let mmapThreshold: Int32 = 4 * 1024 * 1024
  /// Free memory at the top of a heap above this many bytes goes back to the system at once
  /// (glibc's default: 128 KiB); below it, it waits for the idle trim (the main arena's) or
  /// for the next burst (a per-thread arena's).
  static let trimThreshold: Int32 = 16 * 1024 * 1024

  /// Sets ``mmapThreshold`` and ``trimThreshold``, unless `GLIBC_TUNABLES` sets either (an
  /// operator's own choice wins). Returns whether they were set.
  @discardableResult
  static func keepFreedMemoryWhileBusy(environment: [String: String]) -> Bool {
    let tunables = environment["GLIBC_TUNABLES"] ?? ""
    // strstr rather than String.contains, whose generic searcher is a cold start's cost.
    guard let mallopt, strstr(tunables, "mmap_threshold") == nil, strstr(tunables, "trim_threshold") == nil else {
      return false
    }
    // malloc.h: M_TRIM_THRESHOLD -1, M_MMAP_THRESHOLD -3; mallopt returns 1 on success.
    return mallopt(-3, mmapThreshold) == 1 && mallopt(-1, trimThreshold) == 1
  }

  /// Returns the allocator's free memory to the system: `malloc_trim(0)`.
  static func trim() {
    _ = mallocTrim?(0)
  }

  /// Whether this C library can trim (glibc can).
  static var canTrim: Bool { mallocTrim != nil }

  private static let mallocTrim: (@convention(c) (Int) -> Int32)? = lookUpCFunction("malloc_trim")
  private static let mallopt: (@convention(c) (Int32, Int32) -> Int32)? = lookUpCFunction("mallopt")
}

/// The C library function `name`, looked up among the process's symbols: for functions whose
/// header the Glibc module leaves out (malloc.h, sys/auxv.h). `nil` where there is none.
func lookUpCFunction<Function>(_ name: String) -> Function? {
  #if canImport(Glibc)
  guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }
  return unsafeBitCast(symbol, to: Function.self)
  #else
  return nil
  #endif
}
