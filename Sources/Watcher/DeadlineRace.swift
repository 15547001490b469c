import NIOCore
import NIOPosix
import Synchronization

/// Runs `work` in its own task and returns its result, or throws ``DeadlineExceeded`` at
/// `deadline` without waiting for work that ignores cancellation. The work is cancelled
/// when the race is decided, and `onWorkEnded` runs once it has really ended (so a slot it
/// holds stays taken until then).
///
/// This is how ``DeadlineKeeper/race`` keeps a deadline, for callers without a transport; the
/// HTTP/2 transport keeps its calls' deadlines itself. The timer is a task scheduled on a SwiftNIO
/// event loop, which is freed as soon as it is cancelled; a cancelled `Task.sleep` keeps its
/// memory until its deadline would have passed, which at thousands of calls a second with a
/// 60-second timeout is gigabytes.
func raceDeadline<Value: Sendable>(
  _ deadline: ContinuousClock.Instant,
  onWorkEnded: @escaping @Sendable () -> Void,
  work: @escaping @Sendable () async throws -> Value
) async throws -> Value {
  let race = Race<Value>()
  let expired = DeadlineExceeded()
  let workTask = Task {
    defer { onWorkEnded() }
    do {
      race.settle(.success(try await work()))
    } catch {
      race.settle(.failure(error))
    }
  }
  let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(
    in: .nanoseconds(max(deadline - .now, .zero).nanoseconds)
  ) {
    race.settle(.failure(expired))
  }
  defer {
    timer.cancel()
    workTask.cancel()
  }
  return try await withTaskCancellationHandler {
    try await withCheckedThrowingContinuation { race.wait(with: $0) }
  } onCancel: {
    // The caller went away, or its own deadline passed (the transport cancels then).
    race.settle(.failure(ContinuousClock.now >= deadline ? expired : CancellationError()))
  }
}

/// The call ran past its deadline.
struct DeadlineExceeded: Error {}

/// The first of several results wins; it is delivered whether it comes before or after the
/// waiter.
private final class Race<Value: Sendable>: Sendable {
  private struct State {
    var result: Result<Value, any Error>?
    var waiter: CheckedContinuation<Value, any Error>?
    var delivered = false
  }

  private let state = Mutex(State())

  func settle(_ result: Result<Value, any Error>) {
    let waiter = state.withLock { state -> CheckedContinuation<Value, any Error>? in
      guard state.result == nil else { return nil }
      state.result = result
      guard let waiter = state.waiter, !state.delivered else { return nil }
      state.delivered = true
      return waiter
    }
    waiter?.resume(with: result)
  }

  func wait(with continuation: CheckedContinuation<Value, any Error>) {
    let result = state.withLock { state -> Result<Value, any Error>? in
      guard let result = state.result else {
        state.waiter = continuation
        return nil
      }
      state.delivered = true
      return result
    }
    if let result { continuation.resume(with: result) }
  }
}
