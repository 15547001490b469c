import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Keeps one event loop polling its sockets for a short while after it has written replies,
/// instead of going to sleep at once (``WatcherConfiguration/busyPoll``, `BUSY_POLL`).
///
/// A caller that sends its next request soon after a reply (one call at a time, as the gateway
/// does on a quiet connection) then finds the loop awake: it reads the request without being
/// woken. Waking a sleeping thread on another CPU cost ~100 µs on the benchmark's 2-core VM,
/// more than a small call; Go's runtime and gRPC's C core poll in the same way before they
/// sleep. Each turn of the poll is a loop task that asks the loop to look at its sockets
/// without blocking and then yields the CPU (`sched_yield`), so a runnable thread on the same
/// CPU, such as the caller itself, goes first. The poll ends `BUSY_POLL` after the last write,
/// so an idle watcher spends no CPU on it.
///
/// Made anywhere, then used on its event loop only (hence unchecked).
final class BusyPoll: @unchecked Sendable {
  private let eventLoop: any EventLoop
  private var pollsUntil = NIODeadline.uptimeNanoseconds(0)
  /// Whether a turn of the poll is queued on the loop.
  private(set) var isPolling = false

  /// The poll of `eventLoop`, which every endpoint's connections on that loop share (so that a
  /// loop polls once, however many endpoints it serves).
  static func of(_ eventLoop: any EventLoop) -> BusyPoll {
    polls.withLock { polls in
      if let poll = polls[ObjectIdentifier(eventLoop)] { return poll }
      let poll = BusyPoll(eventLoop: eventLoop)
      polls[ObjectIdentifier(eventLoop)] = poll
      return poll
    }
  }

  /// Every loop's poll. A poll keeps its loop alive, so no other loop gets its identifier.
  private static let polls = Mutex<[ObjectIdentifier: BusyPoll]>([:])

  /// A poll of `eventLoop`; the watcher's come from ``of(_:)``.
  init(eventLoop: any EventLoop) {
    self.eventLoop = eventLoop
  }

  /// The loop wrote to a connection: it polls for at least `window` (more than zero) from now.
  func didWrite(pollingFor window: TimeAmount) {
    pollsUntil = max(pollsUntil, .now() + window)
    guard !isPolling else { return }
    isPolling = true
    queueTurn()
  }

  private func queueTurn() {
    let poll = NIOLoopBound(self, eventLoop: eventLoop)
    // A queued task makes the loop's next look at its sockets a non-blocking one.
    eventLoop.execute { poll.value.turn() }
  }

  private func turn() {
    guard NIODeadline.now() < pollsUntil else {
      isPolling = false
      return
    }
    sched_yield()
    queueTurn()
  }
}
