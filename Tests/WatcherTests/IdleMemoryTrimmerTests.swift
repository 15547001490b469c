import Synchronization
import Testing

@testable import Watcher

@Suite("Idle memory trimmer", .timeLimit(.minutes(1)))
struct IdleMemoryTrimmerTests {
  /// Counts the trims.
  final class Trims: Sendable {
    private let count = Atomic<Int>(0)
    func add() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
  }

  /// Waits (bounded) until `condition` holds.
  func eventually(_ condition: () -> Bool) async throws {
    let end = ContinuousClock.now + .seconds(5)
    while !condition() && ContinuousClock.now < end { try await Task.sleep(for: .milliseconds(5)) }
  }

  @Test func trimsOnceAfterEachBusyPeriodAndNeverDuringOne() async throws {
    let gate = InvocationGate(limit: 0)
    let trims = Trims()
    let trimmer = IdleMemoryTrimmer(gate: gate, interval: .milliseconds(20), trim: { trims.add() })
    let running = Task { await trimmer.run() }
    defer { running.cancel() }

    try await Task.sleep(for: .milliseconds(100))
    #expect(trims.value == 0, "no calls yet: nothing to give back")

    try gate.enter()
    try await Task.sleep(for: .milliseconds(100))
    #expect(trims.value == 0, "a call is in flight")

    gate.leave()
    try await eventually { trims.value == 1 }
    #expect(trims.value == 1)
    try await Task.sleep(for: .milliseconds(100))
    #expect(trims.value == 1, "idle with no new calls: trimmed once")

    try gate.enter()
    gate.leave()
    try await eventually { trims.value == 2 }
    #expect(trims.value == 2)
  }

  #if os(Linux)
  @Test func glibcsTrimIsFoundAndRuns() {
    #expect(GlibcMalloc.canTrim)
    GlibcMalloc.trim()
  }

  @Test func largeBlocksStayInTheHeapUnlessGlibcTunablesSaysOtherwise() {
    #expect(!GlibcMalloc.keepFreedMemoryWhileBusy(environment: ["GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"]))
    #expect(!GlibcMalloc.keepFreedMemoryWhileBusy(environment: ["GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"]))
    #expect(GlibcMalloc.keepFreedMemoryWhileBusy(environment: ["GLIBC_TUNABLES": "glibc.malloc.tcache_count=100"]))
    #expect(GlibcMalloc.keepFreedMemoryWhileBusy(environment: [:]))
  }
  #endif
}
