import NIOCore
import NIOPosix
import Testing

@testable import Watcher

/// An event loop's poll after writes: it starts with a write, goes on while writes keep coming,
/// lets the loop run its other work meanwhile, and ends by itself once the window has passed.
@Suite("Busy poll", .timeLimit(.minutes(1)))
struct BusyPollTests {
  let loop = MultiThreadedEventLoopGroup.singleton.next()

  /// Whether `poll` is polling, asked on its loop.
  func isPolling(_ poll: BusyPoll) async throws -> Bool {
    try await loop.submit { poll.isPolling }.get()
  }

  /// Waits until `poll` stops, failing after 5 s.
  func waitUntilStopped(_ poll: BusyPoll) async throws {
    let start = ContinuousClock.now
    while try await isPolling(poll) {
      try #require(ContinuousClock.now - start < .seconds(5), "the poll did not end")
      try await Task.sleep(for: .milliseconds(1))
    }
  }

  @Test func aWriteStartsAPollThatEndsByItself() async throws {
    let poll = BusyPoll(eventLoop: loop, window: .milliseconds(20))
    #expect(try await isPolling(poll) == false)
    #expect(try await loop.submit { poll.didWrite(); return poll.isPolling }.get())
    try await waitUntilStopped(poll)
    // And starts again with the next write.
    #expect(try await loop.submit { poll.didWrite(); return poll.isPolling }.get())
    try await waitUntilStopped(poll)
  }

  @Test func writesWhilePollingKeepItGoingAndTheLoopRunsItsWork() async throws {
    // A window far longer than the 10 ms between writes, so no pause of a busy test machine
    // ends it early.
    let poll = BusyPoll(eventLoop: loop, window: .seconds(1))
    try await loop.submit { poll.didWrite() }.get()
    var polledThroughout = true
    for _ in 0..<20 {
      // The loop's timers and tasks run while it polls; each finds it polling and writes again.
      polledThroughout = try await loop.scheduleTask(in: .milliseconds(10)) {
        defer { poll.didWrite() }
        return poll.isPolling
      }.futureResult.get() && polledThroughout
    }
    #expect(polledThroughout)
    try await waitUntilStopped(poll)
  }
}
