import NIOCore

/// A call whose end a ``DeadlineWatch`` keeps: told once its deadline passes.
protocol DeadlineWatched: AnyObject {
  /// The call's deadline has passed: end it.
  func deadlinePassed()
}

/// The deadlines of one connection's calls, kept with one timer on the connection's event loop
/// instead of one timer per call.
///
/// The timer is armed for the earliest deadline it knows of; a call that ends is only forgotten,
/// leaving the timer as it is. When the timer fires it ends the calls whose deadline has passed,
/// earliest first, and re-arms for the next one. With EXEC_TIMEOUT's minute and calls of
/// microseconds, a busy connection touches its timer about once a minute instead of twice a
/// call. Used on the connection's event loop only.
final class DeadlineWatch {
  private let eventLoop: any EventLoop
  private var calls: [ObjectIdentifier: (deadline: NIODeadline, call: any DeadlineWatched)] = [:]
  private var timer: (deadline: NIODeadline, task: Scheduled<Void>)?
  private var stopped = false

  init(eventLoop: any EventLoop) {
    self.eventLoop = eventLoop
  }

  /// Tells `call` when `deadline` passes, unless it is forgotten first.
  func watch(_ call: any DeadlineWatched, until deadline: ContinuousClock.Instant) {
    guard !stopped else { return }
    let deadline = NIODeadline.now() + .nanoseconds(max(deadline - .now, .zero).nanoseconds)
    calls[ObjectIdentifier(call)] = (deadline, call)
    if timer.map({ deadline < $0.deadline }) ?? true { arm(deadline) }
  }

  /// Stops watching `call`, which has ended.
  func forget(_ call: any DeadlineWatched) {
    calls[ObjectIdentifier(call)] = nil
  }

  /// The connection is closed: no more timer.
  func stop() {
    stopped = true
    timer?.task.cancel()
    timer = nil
    calls.removeAll()
  }

  private func arm(_ deadline: NIODeadline) {
    timer?.task.cancel()
    let watch = NIOLoopBound(self, eventLoop: eventLoop)
    let task = eventLoop.scheduleTask(deadline: deadline) { watch.value.fire() }
    timer = (deadline, task)
  }

  private func fire() {
    timer = nil
    let now = NIODeadline.now()
    let passed = calls.filter { $0.value.deadline <= now }
    for id in passed.keys { calls[id] = nil }
    if let next = calls.values.map(\.deadline).min() { arm(next) }
    // Earliest first, also when the timer fires late and finds several passed.
    for entry in passed.values.sorted(by: { $0.deadline < $1.deadline }) { entry.call.deadlinePassed() }
  }
}
