import Synchronization

/// Whether the watcher serves: the state behind the gRPC health service, independent of gRPC.
///
/// Not serving until every port accepts; serving until graceful shutdown starts; then not
/// serving for good, and every watcher of the state is told and released.
final class HealthStatus: Sendable {
  private struct State {
    var serving = false
    var final = false
    var observers: [Int: AsyncStream<Bool>.Continuation] = [:]
    var nextObserver = 0
  }

  private let state = Mutex(State())

  /// Whether calls are served now.
  var isServing: Bool { state.withLock { $0.serving } }

  /// Marks the watcher as serving (once ready).
  func markServing() {
    update(serving: true, final: false)
  }

  /// Marks the watcher as not serving for good (draining) and ends every observation.
  func markDraining() {
    update(serving: false, final: true)
  }

  /// The current state, then every change; ends once the watcher drains.
  func observe() -> AsyncStream<Bool> {
    let (stream, continuation) = AsyncStream.makeStream(of: Bool.self, bufferingPolicy: .bufferingNewest(1))
    let (id, current, final) = state.withLock { state in
      let id = state.nextObserver
      state.nextObserver += 1
      if !state.final { state.observers[id] = continuation }
      return (id, state.serving, state.final)
    }
    continuation.yield(current)
    if final {
      continuation.finish()
    } else {
      continuation.onTermination = { [weak self] _ in
        _ = self?.state.withLock { $0.observers.removeValue(forKey: id) }
      }
    }
    return stream
  }

  private func update(serving: Bool, final: Bool) {
    let observers = state.withLock { state -> [AsyncStream<Bool>.Continuation] in
      guard !state.final, state.serving != serving || final else { return [] }
      state.serving = serving
      state.final = final
      let observers = Array(state.observers.values)
      if final { state.observers = [:] }
      return observers
    }
    for observer in observers {
      observer.yield(serving)
      if final { observer.finish() }
    }
  }
}
