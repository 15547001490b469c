import NIOCore
import NIOPosix
import Testing

@testable import Watcher

/// An event loop's poll after writes: it starts with a write, goes on while writes keep coming,
/// lets the loop run its other work meanwhile, and ends by itself once the window has passed.
/// Each test polls a loop of its own, not one the other tests' connections use.
@Suite("Busy poll", .timeLimit(.minutes(1)))
struct BusyPollTests {
  /// Runs `body` with a loop of its own.
  func withLoop(_ body: (any EventLoop) async throws -> Void) async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    do {
      try await body(group.next())
    } catch {
      try await group.shutdownGracefully()
      throw error
    }
    try await group.shutdownGracefully()
  }

  /// Whether `poll` is polling, asked on its loop.
  func isPolling(_ poll: BusyPoll, on loop: any EventLoop) async throws -> Bool {
    try await loop.submit { poll.isPolling }.get()
  }

  /// Waits until `poll` stops, failing after 5 s.
  func waitUntilStopped(_ poll: BusyPoll, on loop: any EventLoop) async throws {
    let start = ContinuousClock.now
    while try await isPolling(poll, on: loop) {
      try #require(ContinuousClock.now - start < .seconds(5), "the poll did not end")
      try await Task.sleep(for: .milliseconds(1))
    }
  }

  @Test func aWriteStartsAPollThatEndsByItself() async throws {
    try await withLoop { loop in
      let poll = BusyPoll(eventLoop: loop)
      #expect(try await isPolling(poll, on: loop) == false)
      #expect(try await loop.submit { poll.didWrite(pollingFor: .milliseconds(20)); return poll.isPolling }.get())
      try await waitUntilStopped(poll, on: loop)
      // And starts again with the next write.
      #expect(try await loop.submit { poll.didWrite(pollingFor: .milliseconds(20)); return poll.isPolling }.get())
      try await waitUntilStopped(poll, on: loop)
    }
  }

  @Test func writesWhilePollingKeepItGoingAndTheLoopRunsItsWork() async throws {
    try await withLoop { loop in
      let poll = BusyPoll(eventLoop: loop)
      let allPolling = loop.makePromise(of: Bool.self)
      loop.execute {
        poll.didWrite(pollingFor: Self.window)
        Self.writeLater(to: poll, on: loop, times: 10, allPolling: true, then: allPolling)
      }
      #expect(try await allPolling.futureResult.get())
      try await waitUntilStopped(poll, on: loop)
    }
  }

  /// A window far longer than the 10 ms between the writes below, so that no pause of a busy
  /// test machine ends it early.
  static let window = TimeAmount.milliseconds(500)

  /// In 10 ms, on the loop (its timers run while it polls), notes whether `poll` is polling and
  /// writes again; `times` over, settles `promise` with whether it always was.
  static func writeLater(
    to poll: BusyPoll, on loop: any EventLoop, times: Int, allPolling: Bool, then promise: EventLoopPromise<Bool>
  ) {
    loop.scheduleTask(in: .milliseconds(10)) {
      let polling = allPolling && poll.isPolling
      poll.didWrite(pollingFor: window)
      if times > 1 {
        writeLater(to: poll, on: loop, times: times - 1, allPolling: polling, then: promise)
      } else {
        promise.succeed(polling)
      }
    }
  }

  @Test func eachLoopHasOnePollThatEveryEndpointShares() {
    let loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
    for loop in loops { #expect(BusyPoll.of(loop) === BusyPoll.of(loop)) }
    if loops.count > 1 { #expect(BusyPoll.of(loops[0]) !== BusyPoll.of(loops[1])) }
  }
}
