import Testing

@testable import MQTT

@Suite("MQTT topics")
struct TopicTests {
  /// The examples of the standard's section 4.7, and a few edges.
  @Test(arguments: [
    ("sport/tennis/player1/#", "sport/tennis/player1", true),
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking", true),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true),
    ("sport/#", "sport", true),
    ("#", "any/thing", true),
    ("sport/tennis/+", "sport/tennis/player1", true),
    ("sport/tennis/+", "sport/tennis/player1/ranking", false),
    ("sport/+", "sport", false),
    ("sport/+", "sport/", true),
    ("+/+", "/finance", true),
    ("/+", "/finance", true),
    ("+", "/finance", false),
    ("#", "$SYS/broker", false),
    ("+/monitor/Clients", "$SYS/monitor/Clients", false),
    ("$SYS/#", "$SYS/broker", true),
    ("a/b", "a/b", true),
    ("a/b", "a/B", false),
  ])
  func filtersMatchAsTheStandardSays(filter: String, topic: String, matches: Bool) {
    #expect(MQTTTopic.matches(filter: filter, topic: topic) == matches)
  }

  @Test(arguments: ["#", "+", "a/+/b", "a/#", "+/+", "/"])
  func validFilters(filter: String) {
    #expect(MQTTTopic.isValidFilter(filter))
  }

  @Test(arguments: ["", "a/#/b", "a+", "a/b#", "#/", "sport/tennis#x"])
  func invalidFilters(filter: String) {
    #expect(!MQTTTopic.isValidFilter(filter))
  }

  @Test func topicNamesHaveNoWildcards() {
    #expect(MQTTTopic.isValidName("a/b"))
    #expect(!MQTTTopic.isValidName("a/+"))
    #expect(!MQTTTopic.isValidName("#"))
    #expect(!MQTTTopic.isValidName(""))
  }
}
