/// MQTT 3.1.1 topic names and filters (section 4.7).
public enum MQTTTopic {
  /// Whether `name` can be a PUBLISH's topic: not empty and free of the wildcards `+` and `#`.
  public static func isValidName(_ name: String) -> Bool {
    !name.isEmpty && !name.utf8.contains(where: { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "#") })
  }

  /// Whether `filter` is a valid topic filter: not empty, `+` alone in its level, `#` alone in
  /// the last level.
  public static func isValidFilter(_ filter: String) -> Bool {
    guard !filter.isEmpty else { return false }
    let levels = filter.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
    for (index, level) in levels.enumerated() {
      let hasPlus = level.contains(UInt8(ascii: "+"))
      let hasHash = level.contains(UInt8(ascii: "#"))
      if (hasPlus || hasHash) && level.count != 1 { return false }
      if hasHash && index != levels.count - 1 { return false }
    }
    return true
  }

  /// Whether a message on `topic` reaches a subscription to `filter`. Topics starting with `$`
  /// are not matched by a filter starting with a wildcard, as the standard says.
  public static func matches(filter: String, topic: String) -> Bool {
    if topic.hasPrefix("$") && (filter.hasPrefix("+") || filter.hasPrefix("#")) { return false }
    let filterLevels = filter.split(separator: "/", omittingEmptySubsequences: false)
    let topicLevels = topic.split(separator: "/", omittingEmptySubsequences: false)
    for (index, level) in filterLevels.enumerated() {
      if level == "#" { return true }
      guard index < topicLevels.count else { return false }
      if level != "+" && level != topicLevels[index] { return false }
    }
    return filterLevels.count == topicLevels.count
  }
}
