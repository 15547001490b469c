import Logging
import Synchronization

/// What a handler knows about the call it serves, beside the request itself.
///
/// A value with a public initialiser: a test builds one directly, no watcher needed.
public struct Context: Sendable {
  /// Identifies this call in logs: the caller's `x-request-id` when it sent one, else a fresh id.
  public var requestID: String {
    switch id {
    case .given(let text): text
    case .generated(let number): Self.format(requestNumber: number)
    }
  }
  /// The function's name: `Info.FunctionName` when the caller sent it, else the watcher's.
  public let functionName: String
  /// When the caller stops waiting, or `nil` when the call has no deadline.
  public let deadline: ContinuousClock.Instant?
  /// A logger that carries `request-id` in its metadata.
  public var logger: Logger {
    var logger = baseLogger
    logger[metadataKey: "request-id"] = .string(requestID)
    return logger
  }
  /// Calls to other functions, bounded by this call's deadline.
  public let mesh: Mesh

  /// The request id as given, or the number a fresh one is made of when it is asked for (most
  /// calls never need it written out).
  private enum RequestID: Sendable {
    case given(String)
    case generated(UInt64)
  }

  private let id: RequestID
  private let baseLogger: Logger

  /// Creates a context; the logger gets this call's `request-id` as metadata. Without a
  /// `mesh` client, mesh calls fail with `failedPrecondition`.
  public init(
    requestID: String = Context.makeRequestID(),
    functionName: String = "",
    deadline: ContinuousClock.Instant? = nil,
    logger: Logger = Logger(label: "handler"),
    mesh: (any MeshClient)? = nil
  ) {
    self.init(id: .given(requestID), functionName: functionName, deadline: deadline, logger: logger, mesh: mesh)
  }

  /// Creates a context with a fresh request id, made only when ``requestID`` or ``logger`` is
  /// asked for: what the watcher does for a call that brings no `x-request-id`.
  public init(
    functionName: String,
    deadline: ContinuousClock.Instant?,
    logger: Logger,
    mesh: (any MeshClient)?
  ) {
    self.init(
      id: .generated(Self.nextRequestNumber()), functionName: functionName, deadline: deadline, logger: logger,
      mesh: mesh)
  }

  private init(
    id: RequestID, functionName: String, deadline: ContinuousClock.Instant?, logger: Logger,
    mesh: (any MeshClient)?
  ) {
    self.mesh = Mesh(client: mesh, deadline: deadline)
    self.id = id
    self.functionName = functionName
    self.deadline = deadline
    self.baseLogger = logger
  }

  /// Time left before ``deadline``, or `nil` when there is none; negative once it has passed.
  public var remainingTime: Duration? {
    deadline.map { $0 - ContinuousClock.now }
  }

  /// A new request id: 16 lower-case hex digits, different for every call of the process and
  /// unrelated between processes. (A counter scrambled with a key drawn once: no system call
  /// for randomness on every call.)
  public static func makeRequestID() -> String {
    format(requestNumber: nextRequestNumber())
  }

  private static func nextRequestNumber() -> UInt64 {
    requestCounter.wrappingAdd(1, ordering: .relaxed).oldValue
  }

  private static func format(requestNumber: UInt64) -> String {
    // splitmix64's finaliser: a bijection, so distinct counts give distinct ids.
    var value = requestNumber &+ requestIDKey
    value = (value ^ (value >> 30)) &* 0xbf58_476d_1ce4_e5b9
    value = (value ^ (value >> 27)) &* 0x94d0_49bb_1331_11eb
    value ^= value >> 31
    let hex = String(value, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
  }

  private static let requestCounter = Atomic<UInt64>(0)
  private static let requestIDKey = UInt64.random(in: .min ... .max)
}
