import Logging
import Synchronization

/// What a handler knows about the call it serves, beside the request itself.
///
/// A value with a public initialiser: a test builds one directly, no watcher needed.
public struct Context: Sendable {
  /// Identifies this call in logs: the caller's `x-request-id` when it sent one, else a fresh id.
  public let requestID: String
  /// The function's name: `Info.FunctionName` when the caller sent it, else the watcher's.
  public let functionName: String
  /// When the caller stops waiting, or `nil` when the call has no deadline.
  public let deadline: ContinuousClock.Instant?
  /// A logger that already carries `request-id` in its metadata.
  public let logger: Logger
  /// Calls to other functions, bounded by this call's deadline.
  public let mesh: Mesh

  /// Creates a context; the logger gets this call's `request-id` as metadata. Without a
  /// `mesh` client, mesh calls fail with `failedPrecondition`.
  public init(
    requestID: String = Context.makeRequestID(),
    functionName: String = "",
    deadline: ContinuousClock.Instant? = nil,
    logger: Logger = Logger(label: "handler"),
    mesh: (any MeshClient)? = nil
  ) {
    self.mesh = Mesh(client: mesh, deadline: deadline)
    self.requestID = requestID
    self.functionName = functionName
    self.deadline = deadline
    var logger = logger
    logger[metadataKey: "request-id"] = .string(requestID)
    self.logger = logger
  }

  /// Time left before ``deadline``, or `nil` when there is none; negative once it has passed.
  public var remainingTime: Duration? {
    deadline.map { $0 - ContinuousClock.now }
  }

  /// A new request id: 16 lower-case hex digits, different for every call of the process and
  /// unrelated between processes. (A counter scrambled with a key drawn once: no system call
  /// for randomness on every call.)
  public static func makeRequestID() -> String {
    let count = requestCounter.wrappingAdd(1, ordering: .relaxed).oldValue
    // splitmix64's finaliser: a bijection, so distinct counts give distinct ids.
    var value = count &+ requestIDKey
    value = (value ^ (value >> 30)) &* 0xbf58_476d_1ce4_e5b9
    value = (value ^ (value >> 27)) &* 0x94d0_49bb_1331_11eb
    value ^= value >> 31
    let hex = String(value, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
  }

  private static let requestCounter = Atomic<UInt64>(0)
  private static let requestIDKey = UInt64.random(in: .min ... .max)
}
