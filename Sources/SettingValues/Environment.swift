/// Environment-style settings: a variable that is unset, empty or only whitespace counts as
/// unset, and values are read without surrounding whitespace.
public struct SettingsEnvironment: Sendable {
  /// The variables, as given.
  public let variables: [String: String]

  /// Wraps `variables` (the process environment merged with flags, or a test's dictionary).
  public init(_ variables: [String: String]) {
    self.variables = variables
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
