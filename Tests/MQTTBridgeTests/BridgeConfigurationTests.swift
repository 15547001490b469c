import GRPCCore
import MQTT
import Testing

@testable import MQTTBridge

@Suite("Bridge configuration")
struct BridgeConfigurationTests {
  static func configuration(_ environment: [String: String], files: [String: String] = [:])
    throws(BridgeConfigurationError) -> BridgeConfiguration
  {
    try BridgeConfiguration(environment: environment, hostName: "pod-7") { path in
      guard let text = files[path] else { throw BridgeConfigurationError("no such file") }
      return text
    }
  }

  @Test func defaultsFollowTheOriginal() throws {
    let configuration = try Self.configuration([:])
    #expect(configuration.topicFilter == "gRPC")
    #expect(configuration.brokerHost == "127.0.0.1" && configuration.brokerPort == 1883)
    #expect(configuration.clientID == "fxmqtt-bridge-pod-7")
    #expect(configuration.qos == .atLeastOnce && configuration.cleanSession)
    #expect(configuration.targetHost == "127.0.0.1" && configuration.targetPort == 50051)
    #expect(configuration.method == .call && configuration.function == "echo")
    #expect(configuration.callTimeout == .seconds(30) && configuration.maxInFlight == 16)
    #expect(configuration.replyTopic.topic(for: "a/b") == "a/b/reply")
    #expect(configuration.errorTopic.topic(for: "a/b") == "a/b/error")
    #expect(configuration.maxPayloadBytes == 4 << 20)
  }

  @Test func readsEverySetting() throws {
    let configuration = try Self.configuration(
      [
        "MQTT_HOST": "broker.local", "MQTT_PORT": "8883", "MQTT_CLIENT_ID": "bridge-1", "topic": "old",
        "MQTT_TOPIC": "devices/+", "MQTT_QOS": "0", "MQTT_CLEAN_SESSION": "false", "MQTT_KEEPALIVE": "15s",
        "MQTT_USERNAME": "fx", "MQTT_PASSWORD_FILE": "/run/secret", "MQTT_MAX_PAYLOAD": "64KiB",
        "FX_TARGET": "[::1]:31113", "FX_METHOD": "invoke", "FX_FUNCTION": "sentiment-analysis", "FX_TIMEOUT": "2s",
        "BRIDGE_MAX_INFLIGHT": "4", "REPLY_TOPIC": "replies/{topic}", "ERROR_TOPIC": "errors", "DRAIN_TIMEOUT": "3s",
        "LOG_LEVEL": "debug",
      ], files: ["/run/secret": "s3cret\nignored"])
    #expect(configuration.brokerHost == "broker.local" && configuration.brokerPort == 8883)
    #expect(configuration.clientID == "bridge-1" && configuration.topicFilter == "devices/+")
    #expect(configuration.qos == .atMostOnce && !configuration.cleanSession && configuration.keepAlive == .seconds(15))
    #expect(configuration.username == "fx" && configuration.password == "s3cret")
    #expect(configuration.maxPayloadBytes == 65536)
    #expect(configuration.targetHost == "::1" && configuration.targetPort == 31113)
    #expect(configuration.method == .invoke && configuration.function == "sentiment-analysis")
    #expect(configuration.callTimeout == .seconds(2) && configuration.maxInFlight == 4)
    #expect(configuration.replyTopic.topic(for: "devices/d1") == "replies/devices/d1")
    #expect(configuration.errorTopic.topic(for: "devices/d1") == "errors")
    #expect(configuration.drainTimeout == .seconds(3) && configuration.logLevel == .debug)
    let client = configuration.clientConfiguration
    #expect(client.subscriptions == [MQTTSubscription(topicFilter: "devices/+", qos: .atMostOnce)])
    #expect(client.password == Array("s3cret".utf8) && client.maxConcurrentDeliveries == 4)
  }

  @Test func theOriginalsTopicVariableIsRead() throws {
    #expect(try Self.configuration(["topic": "test"]).topicFilter == "test")
  }

  @Test(arguments: [
    ("MQTT_PORT", "0", "invalid MQTT_PORT \"0\""),
    ("MQTT_PORT", "70000", "invalid MQTT_PORT"),
    ("MQTT_TOPIC", "a/#/b", "expected a topic filter"),
    ("topic", "a+", "invalid topic \"a+\""),
    ("MQTT_QOS", "2", "expected 0 or 1"),
    ("MQTT_CLEAN_SESSION", "maybe", "expected true or false"),
    ("MQTT_KEEPALIVE", "20h", "up to 18h12m15s"),
    ("MQTT_PASSWORD", "p", "set MQTT_USERNAME too"),
    ("MQTT_PASSWORD_FILE", "/missing", "cannot be read"),
    ("MQTT_MAX_PAYLOAD", "1GiB", "to 256MiB"),
    ("FX_TARGET", "no-port", "expected host:port"),
    ("FX_METHOD", "post", "expected call, call-bytes or invoke"),
    ("FX_TIMEOUT", "0s", "above zero"),
    ("BRIDGE_MAX_INFLIGHT", "0", "from 1 to 10000"),
    ("REPLY_TOPIC", "{topic}", "stands for the message's topic"),
    ("REPLY_TOPIC", "{topic}/{topic}", "at most once"),
    ("ERROR_TOPIC", "errors/#", "stands for the message's topic"),
    ("LOG_LEVEL", "loud", "expected one of"),
  ])
  func refusesBadValuesNamingThem(name: String, value: String, message: String) {
    do {
      _ = try Self.configuration([name: value])
      Issue.record("\(name)=\(value) was accepted")
    } catch {
      #expect(error.message.contains(message), "\(error.message)")
      if name != "MQTT_PASSWORD" { #expect(error.message.contains(name)) }
    }
  }

  @Test func aFixedReplyTopicInsideTheSubscriptionIsRefused() {
    #expect(throws: BridgeConfigurationError.self) {
      try Self.configuration(["MQTT_TOPIC": "devices/#", "REPLY_TOPIC": "devices/replies"])
    }
  }

  @Test func theDefaultClientIDFitsEveryBroker() {
    #expect(BridgeConfiguration.defaultClientID(hostName: "a-very-long-pod-name-1234567890") == "fxmqtt-bridge-a-very-lo")
    #expect(BridgeConfiguration.defaultClientID(hostName: "host.example_1") == "fxmqtt-bridge-hostexamp")
  }
}

@Suite("Reply topics")
struct ReplyTopicTests {
  @Test func aTemplateKnowsTheTopicsItProduces() throws {
    let reply = try #require(ReplyTopic("{topic}/reply"))
    #expect(reply.topic(for: "sensors/kitchen") == "sensors/kitchen/reply")
    #expect(reply.produces("sensors/kitchen/reply"))
    #expect(!reply.produces("sensors/kitchen"))
    #expect(!reply.produces("/reply"))
    let prefixed = try #require(ReplyTopic("out/{topic}"))
    #expect(prefixed.topic(for: "a") == "out/a" && prefixed.produces("out/a") && !prefixed.produces("a/out"))
    let fixed = try #require(ReplyTopic("replies"))
    #expect(fixed.topic(for: "anything") == "replies" && fixed.produces("replies") && !fixed.produces("replies/x"))
  }

  @Test func invalidTemplatesAreRefused() {
    #expect(ReplyTopic("{topic}/{topic}") == nil)
    #expect(ReplyTopic("{topic}/+") == nil)
    #expect(ReplyTopic("") == nil)
  }

  @Test func statusCodesHaveTheirCanonicalNames() {
    #expect(RPCError.Code.deadlineExceeded.canonicalName == "DEADLINE_EXCEEDED")
    #expect(RPCError.Code.internalError.canonicalName == "INTERNAL")
    #expect(RPCError.Code.unavailable.canonicalName == "UNAVAILABLE")
    #expect(RPCError.Code.resourceExhausted.canonicalName == "RESOURCE_EXHAUSTED")
  }
}
