import MQTT

/// Where the bridge publishes a message's reply (or error): a template in which `{topic}` is
/// the topic the message came on, so `{topic}/reply` answers `sensors/kitchen` on
/// `sensors/kitchen/reply`. A device gets a reply topic of its own by publishing on a topic of
/// its own under a wildcard subscription.
public struct ReplyTopic: Sendable, Hashable {
  /// The template as written.
  public let template: String
  private let prefix: String
  private let suffix: String
  private let hasPlaceholder: Bool

  /// The placeholder for the message's topic.
  public static let placeholder = "{topic}"

  /// Parses a template; `nil` when it has more than one `{topic}`, or gives no valid topic name.
  public init?(_ template: String) {
    let parts = template.split(separator: Self.placeholder, omittingEmptySubsequences: false)
    guard parts.count <= 2 else { return nil }
    self.template = template
    prefix = String(parts[0])
    suffix = parts.count == 2 ? String(parts[1]) : ""
    hasPlaceholder = parts.count == 2
    guard MQTTTopic.isValidName(topic(for: "t")) else { return nil }
  }

  /// The reply topic of a message that came on `topic`.
  public func topic(for topic: String) -> String {
    hasPlaceholder ? prefix + topic + suffix : prefix
  }

  /// Whether `topic` is a topic this template produces, so a message on it is one of the
  /// bridge's own replies coming back through a wide subscription (and must not be answered,
  /// or replies would loop).
  public func produces(_ topic: String) -> Bool {
    guard hasPlaceholder else { return topic == prefix }
    return topic.utf8.count > prefix.utf8.count + suffix.utf8.count && topic.hasPrefix(prefix)
      && topic.hasSuffix(suffix)
  }
}
