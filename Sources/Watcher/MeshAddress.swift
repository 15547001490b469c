/// Where a function's mesh port is: a template with `{function}` and `{namespace}` (by default
/// OpenFx's `{function}.{namespace}:50052` in `openfx-fn`; see ``WatcherConfiguration``).
struct MeshAddress: Sendable, Hashable {
  let template: String
  let namespace: String

  /// The host and port of `function`, or `nil` when the name or the result is not usable.
  func resolve(_ function: String) -> (host: String, port: Int)? {
    guard Self.isFunctionName(function) else { return nil }
    let address = template
      .replacing("{function}", with: function)
      .replacing("{namespace}", with: namespace)
    return Self.split(address)
  }

  /// A function name: 1–253 characters of letters, digits, `-` and `.` (a DNS name), so it
  /// cannot steer the call to another port or scheme.
  static func isFunctionName(_ name: String) -> Bool {
    !name.isEmpty && name.utf8.count <= 253
      && name.utf8.allSatisfy { $0.isASCIILetterOrDigit || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
  }

  /// `host:port`, with an IPv6 host in brackets: `[::1]:50052`.
  static func text(host: String, port: Int) -> String {
    host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]:\(port)" : "\(host):\(port)"
  }

  /// `host:port` or `[ipv6]:port`.
  static func split(_ address: String) -> (host: String, port: Int)? {
    guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
      (1...65535).contains(port)
    else { return nil }
    var host = Substring(address[..<colon])
    if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
    guard !host.isEmpty else { return nil }
    return (String(host), port)
  }
}

extension UInt8 {
  fileprivate var isASCIILetterOrDigit: Bool {
    (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
      || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self)
  }
}
