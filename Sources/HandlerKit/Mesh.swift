#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What calls other functions on their mesh port; the watcher provides one, a test may pass
/// its own through ``Context/init(requestID:functionName:deadline:logger:mesh:)``.
public protocol MeshClient: Sendable {
  /// Calls `function` with `input` within `timeout` and returns its reply's bytes.
  ///
  /// Throws a ``HandlerError``: `unavailable` when the function cannot be reached,
  /// `deadlineExceeded` when it does not answer in time, or the callee's own status.
  func call(_ function: String, input: Data, timeout: Duration) async throws -> Data
}

/// Calls to other functions of the same deployment (OpenFx's `MeshCall`), bounded by the
/// calling request's own deadline.
///
/// ```swift
/// let mood = try await context.mesh.call("sentiment-analysis", text: review)
/// ```
public struct Mesh: Sendable {
  /// The longest a mesh call may take when the calling request has no deadline: 30 seconds.
  public static let defaultTimeout: Duration = .seconds(30)

  private let client: (any MeshClient)?
  private let deadline: ContinuousClock.Instant?

  init(client: (any MeshClient)?, deadline: ContinuousClock.Instant?) {
    self.client = client
    self.deadline = deadline
  }

  /// Calls `function` with `input`; the timeout is the shortest of `timeout`, the calling
  /// request's remaining time and ``defaultTimeout``.
  public func call(_ function: String, input: Data, timeout: Duration? = nil) async throws -> Data {
    guard let client else {
      throw HandlerError(.failedPrecondition, "no mesh client: this context was made without one")
    }
    var limit = timeout.map { min($0, Self.defaultTimeout) } ?? Self.defaultTimeout
    if let deadline {
      let remaining = deadline - .now
      guard remaining > .zero else {
        throw HandlerError(.deadlineExceeded, "no time left to call \(function): the request's deadline has passed")
      }
      limit = min(limit, remaining)
    }
    return try await client.call(function, input: input, timeout: limit)
  }

  /// Calls `function` with text and returns its reply as text (which must be valid UTF-8).
  public func call(_ function: String, text: String, timeout: Duration? = nil) async throws -> String {
    let reply = try await call(function, input: Data(text.utf8), timeout: timeout)
    guard let text = String(validating: reply, as: UTF8.self) else {
      throw HandlerError(.internalError, "\(function) replied with \(reply.count) bytes that are not valid UTF-8")
    }
    return text
  }
}
