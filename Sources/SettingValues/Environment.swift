#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Environment-style settings: a variable that is unset, empty or only whitespace counts as
/// unset, and values are read without surrounding whitespace.
public struct SettingsEnvironment: Sendable {
  /// The variables, as given.
  public let variables: [String: String]

  /// Wraps `variables` (the process environment merged with flags, or a test's dictionary).
  public init(_ variables: [String: String]) {
    self.variables = variables
  }

  /// The process's environment variables, read from `environ` (the first of a name that
  /// appears twice, as `getenv` reads it; an entry without `=` is left out). What
  /// `ProcessInfo.processInfo.environment` gives, without setting up Foundation's `ProcessInfo`,
  /// a fifth of a millisecond of a cold start.
  public static func processVariables() -> [String: String] {
    var variables: [String: String] = [:]
    nonisolated(unsafe) var entry = environ
    while let pointer = entry.pointee {
      let text = String(cString: pointer)
      if let equals = text.utf8.firstIndex(of: UInt8(ascii: "=")) {
        let name = String(text[..<equals])
        if variables[name] == nil {
          variables[name] = String(text[text.utf8.index(after: equals)...])
        }
      }
      entry += 1
    }
    return variables
  }

  /// The trimmed value of `name`, or `nil` when it is unset or blank.
  public func value(_ name: String) -> String? {
    guard let value = variables[name]?.trimmingWhitespace(), !value.isEmpty else { return nil }
    return value
  }

  /// A port number from 0 to 65535 in `text`, or `nil`.
  public static func port(_ text: String) -> Int? {
    guard let port = Int(text), (0...65535).contains(port) else { return nil }
    return port
  }
}

extension String {
  /// The string without leading and trailing whitespace.
  public func trimmingWhitespace() -> String {
    // Indices, not `drop(while:).reversed()`: each of those generic wrappers costs the runtime a
    // search of every protocol conformance in the binary the first time, at every cold start.
    guard let first = firstIndex(where: { !$0.isWhitespace }),
      let last = lastIndex(where: { !$0.isWhitespace })
    else { return "" }
    return String(self[first...last])
  }
}
