import NIOCore

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
/// CPU, such as the caller itself, goes first. The poll ends `window` after the last reply, so
/// an idle watcher spends no CPU on it.
///
/// Made anywhere, then used on its event loop only (hence unchecked).
final class BusyPoll: @unchecked Sendable {
  private let eventLoop: any EventLoop
  private let window: Int64
  private var pollsUntil = NIODeadline.uptimeNanoseconds(0)
  /// Whether a turn of the poll is queued on the loop.
  private(set) var isPolling = false

  /// Keeps `eventLoop` polling for `window` (more than zero) after each reply.
  init(eventLoop: any EventLoop, window: Duration) {
    self.eventLoop = eventLoop
    self.window = Int64(window.nanoseconds)
  }

  /// The loop wrote to a connection: it polls for another `window`.
  func didWrite() {
    pollsUntil = .now() + .nanoseconds(window)
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
