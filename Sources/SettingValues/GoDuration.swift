/// Parses durations as OpenFx and Go write them: `"30s"`, `"1m30s"`, `"250ms"`, `"1.5h"`,
/// and a bare number of seconds (`"30"`), which OpenFx's `Info.Timeout` also uses.
public enum GoDuration {
  private static let units: [(suffix: String, nanoseconds: Double)] = [
    ("ns", 1), ("us", 1e3), ("µs", 1e3), ("μs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9),
  ]

  /// The duration `text` denotes, or `nil` when it is not one; negative durations are refused.
  public static func parse(_ text: String) -> Duration? {
    var rest = Substring(text)
    guard !rest.isEmpty else { return nil }
    if rest.first == "+" { rest = rest.dropFirst() }
    if let seconds = Double(rest), rest.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }) {
      return .nanoseconds(Int64(exactly: (seconds * 1e9).rounded()) ?? Int64.max)
    }
    var total = 0.0
    while !rest.isEmpty {
      let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
      guard !number.isEmpty, let value = Double(number) else { return nil }
      rest = rest.dropFirst(number.count)
      guard let unit = units.filter({ rest.hasPrefix($0.suffix) }).max(by: { $0.suffix.count < $1.suffix.count })
      else { return nil }
      rest = rest.dropFirst(unit.suffix.count)
      total += value * unit.nanoseconds
    }
    guard total < Double(Int64.max) else { return nil }
    return .nanoseconds(Int64(total.rounded()))
  }
}
