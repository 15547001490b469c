#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What a handler returns: text or raw bytes, kept as given.
///
/// OpenFx's `Call` replies with a proto3 `string`, so output sent through it must be valid
/// UTF-8; the watcher refuses anything else with an error status instead of repairing it.
public struct Output: Sendable, Hashable, ExpressibleByStringLiteral {
  enum Storage: Sendable, Hashable {
    case text(String)
    case bytes(Data)
  }

  let storage: Storage

  /// Output made of text.
  public init(_ text: String) {
    storage = .text(text)
  }

  /// Output made of raw bytes.
  public init(bytes: Data) {
    storage = .bytes(bytes)
  }

  /// Output made of raw bytes.
  public init(bytes: some Sequence<UInt8>) {
    storage = .bytes(Data(bytes))
  }

  /// Output made of a string literal.
  public init(stringLiteral value: String) {
    storage = .text(value)
  }

  /// Output made of text.
  public static func text(_ text: String) -> Output { Output(text) }

  /// Output made of raw bytes.
  public static func bytes(_ bytes: Data) -> Output { Output(bytes: bytes) }

  /// The output as text, or `nil` when it is bytes that are not valid UTF-8.
  public var text: String? {
    switch storage {
    case .text(let text): text
    case .bytes(let bytes): bytes.withUnsafeBytes { String(validating: $0, as: UTF8.self) }
    }
  }

  /// Whether the output is text, or bytes that are valid UTF-8: what `Call` can reply with.
  /// (Checks the bytes in place, without making the string ``text`` makes.)
  public var isValidUTF8: Bool {
    switch storage {
    case .text: true
    case .bytes(let bytes):
      bytes.withUnsafeBytes { raw in
        raw.withMemoryRebound(to: UInt8.self) { (try? UTF8Span(validating: $0.span)) != nil }
      }
    }
  }

  /// Calls `body` with the output's bytes (the UTF-8 encoding, for text) in place, without the
  /// copy ``bytes`` makes of text.
  public func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
    switch storage {
    case .text(var text): try text.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
    case .bytes(let bytes): try bytes.withUnsafeBytes(body)
    }
  }

  /// The size of the output in bytes (of its UTF-8 encoding, for text).
  public var byteCount: Int {
    switch storage {
    case .text(let text): text.utf8.count
    case .bytes(let bytes): bytes.count
    }
  }

  /// The output as bytes (text is UTF-8 encoded).
  public var bytes: Data {
    switch storage {
    case .text(let text): Data(text.utf8)
    case .bytes(let bytes): bytes
    }
  }
}
