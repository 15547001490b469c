import Synchronization

/// Admission to the handler: counts the calls in flight, refuses calls over the limit at
/// once (no queue), and refuses every call once the watcher drains.
final class InvocationGate: Sendable {
  /// Why a call was not admitted.
  enum Refusal: Error, Equatable {
    case draining
    case overLimit(Int)
  }

  private let limit: Int
  private let inFlight = Atomic<Int>(0)
  private let admitted = Atomic<Int>(0)
  private let draining = Atomic<Bool>(false)

  /// Creates a gate admitting up to `limit` calls at once; `0` admits any number.
  init(limit: Int) {
    self.limit = limit
  }

  /// The calls admitted and not yet left.
  var callsInFlight: Int { inFlight.load(ordering: .relaxed) }

  /// The calls admitted since the start (wrapping), to tell a busy period from an idle one.
  var callsAdmitted: Int { admitted.load(ordering: .relaxed) }

  /// Whether the watcher is draining.
  var isDraining: Bool { draining.load(ordering: .relaxed) }

  /// Admits a call, or says why not; an admitted call must ``leave()`` exactly once.
  func enter() throws(Refusal) {
    if draining.load(ordering: .relaxed) { throw .draining }
    let now = inFlight.wrappingAdd(1, ordering: .relaxed).newValue
    if limit > 0 && now > limit {
      inFlight.wrappingSubtract(1, ordering: .relaxed)
      throw .overLimit(limit)
    }
    admitted.wrappingAdd(1, ordering: .relaxed)
  }

  /// Marks an admitted call as finished (its handler has returned).
  func leave() {
    inFlight.wrappingSubtract(1, ordering: .relaxed)
  }

  /// From now on every call is refused.
  func beginDraining() {
    draining.store(true, ordering: .relaxed)
  }
}
