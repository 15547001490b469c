#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import MQTT
import NIOCore

/// Connects IoT devices to a function: every message on the subscribed topic is passed to the
/// function over gRPC, and its reply published on the message's reply topic (a failure, as
/// `STATUS: message`, on its error topic). One gRPC connection serves every call; at most
/// ``BridgeConfiguration/maxInFlight`` calls run at once, and a QoS 1 message is acknowledged
/// to the broker only after its reply (or error) has been published and acknowledged, so a
/// slow or failing function loses nothing.
public final class Bridge: Sendable {
  /// The settings.
  public let configuration: BridgeConfiguration
  private let client: MQTTClient
  private let caller: FunctionCaller
  private let logger: Logger

  /// Creates a bridge; nothing connects until ``run()``.
  public init(configuration: BridgeConfiguration, logger: Logger) throws {
    self.configuration = configuration
    self.logger = logger
    client = MQTTClient(configuration: configuration.clientConfiguration, logger: logger)
    caller = try FunctionCaller(
      host: configuration.targetHost, port: configuration.targetPort, method: configuration.method,
      function: configuration.function, timeout: configuration.callTimeout)
  }

  /// Bridges messages until ``shutdown()`` (messages already received are still answered) or
  /// until the task is cancelled.
  ///
  /// - Throws: ``MQTTClientError`` when the broker refuses the connection or subscription for
  ///   a reason retrying cannot fix.
  public func run() async throws {
    let c = configuration
    logger.info(
      "bridging \(c.topicFilter) on mqtt://\(c.brokerHost):\(c.brokerPort) to \(c.function) (\(c.method.rawValue)) at \(c.targetHost):\(c.targetPort); replies on \(c.replyTopic.template), errors on \(c.errorTopic.template)"
    )
    try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { try await self.caller.runConnections() }
      defer { caller.close() }
      try await client.run { delivery in await self.handle(delivery) }
    }
  }

  /// Stops taking messages; ``run()`` returns once those received are answered.
  public func shutdown() {
    client.shutdown()
  }

  /// Calls the function for one message and publishes what it says.
  func handle(_ delivery: MQTTDelivery) async {
    let topic = delivery.topic
    if configuration.replyTopic.produces(topic) || configuration.errorTopic.produces(topic) {
      logger.debug("not answering a message on \(topic): it is a reply or error topic of this bridge")
      return
    }
    let result: Result<Data, FunctionCallError>
    switch delivery {
    case .message(let message) where message.retain:
      logger.notice("not calling \(configuration.function) for the retained message on \(topic): it is not a new message")
      return
    case .message(let message) where message.payload.readableBytes <= configuration.maxPayloadBytes:
      let started = ContinuousClock.now
      let input = Data(message.payload.readableBytesView)
      do throws(FunctionCallError) {
        result = .success(try await caller.call(input, topic: topic))
      } catch {
        result = .failure(error)
      }
      logger.debug("called \(configuration.function) for a message on \(topic) in \(ContinuousClock.now - started)")
    case .message(let message):
      result = .failure(oversized(message.payload.readableBytes))
    case .oversized(let head):
      result = .failure(oversized(head.byteCount))
    }

    let replyTopic: String
    let payload: ByteBuffer
    switch result {
    case .success(let output):
      replyTopic = configuration.replyTopic.topic(for: topic)
      payload = ByteBuffer(bytes: output)
    case .failure(let error):
      logger.warning("\(configuration.function) failed for a message on \(topic): \(error)")
      replyTopic = configuration.errorTopic.topic(for: topic)
      payload = ByteBuffer(string: error.description)
    }
    do {
      try await client.publish(to: replyTopic, payload: payload, qos: configuration.qos)
    } catch {
      logger.error("could not publish the reply to \(replyTopic): \(error)")
    }
  }

  private func oversized(_ byteCount: Int) -> FunctionCallError {
    FunctionCallError(
      status: "RESOURCE_EXHAUSTED",
      message: "the message of \(byteCount) bytes is over the bridge's \(configuration.maxPayloadBytes)-byte limit (MQTT_MAX_PAYLOAD)")
  }
}
