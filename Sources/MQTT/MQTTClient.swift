import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A message the broker delivered on a subscribed topic.
public struct MQTTMessage: Sendable, Hashable {
  /// The topic it was published on.
  public var topic: String
  /// Its body.
  public var payload: ByteBuffer
  /// The QoS it arrived with.
  public var qos: MQTTQoS
  /// Whether it is a retained message the broker kept for new subscribers.
  public var retain: Bool
  /// Whether the broker marked it as a redelivery.
  public var duplicate: Bool
}

/// What an ``MQTTClient`` hands to its delivery function.
public enum MQTTDelivery: Sendable, Hashable {
  /// A message.
  case message(MQTTMessage)
  /// A message over ``MQTTClientConfiguration/maximumPacketSize``, whose payload was skipped.
  case oversized(MQTTInbound.OversizedPublish)

  /// The topic it was published on.
  public var topic: String {
    switch self {
    case .message(let message): message.topic
    case .oversized(let head): head.topic
    }
  }

  /// The payload bytes it holds.
  var byteCount: Int {
    switch self {
    case .message(let message): message.payload.readableBytes
    case .oversized: 0
    }
  }
}

/// An MQTT 3.1.1 client on SwiftNIO that stays connected: it subscribes on every connection,
/// reconnects with backoff, keeps the connection alive with PINGREQ, and resends unacknowledged
/// QoS 1 publishes (with DUP) after a reconnect.
///
/// Received messages go to the function given to ``run(deliver:)``, at most
/// ``MQTTClientConfiguration/maxConcurrentDeliveries`` at a time. A QoS 1 message is
/// acknowledged only once its delivery has returned (and acknowledgements go out in the order
/// the messages came, as the standard asks), so a message is never acknowledged before it has
/// been handled; a redelivery of a message still being handled is not handled twice.
public final class MQTTClient: Sendable {
  /// The settings.
  public let configuration: MQTTClientConfiguration
  private let eventLoopGroup: any EventLoopGroup
  private let logger: Logger
  private let state = Mutex(ClientState())

  /// Creates a client; nothing connects until ``run(deliver:)``.
  public init(
    configuration: MQTTClientConfiguration,
    eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    logger: Logger
  ) {
    self.configuration = configuration
    self.eventLoopGroup = eventLoopGroup
    self.logger = logger
  }

  /// Connects, subscribes and delivers messages until ``shutdown()`` (then it finishes the
  /// deliveries already received, disconnects and returns) or until the task is cancelled.
  ///
  /// - Throws: ``MQTTClientError`` when the broker refuses the connection for a reason retrying
  ///   cannot fix (protocol version, client id, credentials, authorization) or refuses a
  ///   subscription.
  public func run(deliver: @escaping @Sendable (MQTTDelivery) async -> Void) async throws {
    let (deliveries, input) = AsyncStream.makeStream(of: QueuedDelivery.self)
    let alreadyStopping = state.withLock { state in
      state.deliveryInput = input
      return state.stopping
    }
    if alreadyStopping { input.finish() }
    try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { try await self.maintainConnection() }
      await dispatch(deliveries, to: deliver)
      disconnect()
      group.cancelAll()
      try await group.next()
    }
  }

  /// Stops taking new messages; ``run(deliver:)`` finishes the ones received, disconnects and
  /// returns. QoS 1 messages that arrive meanwhile stay unacknowledged, so a persistent
  /// session gets them again.
  public func shutdown() {
    let input = state.withLock { state in
      state.stopping = true
      return state.deliveryInput
    }
    input?.finish()
  }

  /// Publishes a message. With QoS 1 it returns once the broker has acknowledged it, resending
  /// it after reconnects until then; with QoS 0 it returns once written (or held, while
  /// disconnected, to be sent on the next connection).
  ///
  /// - Throws: ``MQTTClientError`` for an invalid topic, a payload over MQTT's 256 MiB or QoS 2;
  ///   `CancellationError` when the task is cancelled first.
  public func publish(to topic: String, payload: ByteBuffer, qos: MQTTQoS = .atMostOnce, retain: Bool = false)
    async throws
  {
    guard MQTTTopic.isValidName(topic) else {
      throw MQTTClientError("cannot publish to \"\(topic.prefix(80))\": a topic name is not empty and has no + or #")
    }
    guard topic.utf8.count <= Int(UInt16.max) else {
      throw MQTTClientError("cannot publish to a topic of \(topic.utf8.count) bytes: the limit is 65,535")
    }
    let packetSize = 2 + topic.utf8.count + 2 + payload.readableBytes
    guard packetSize <= MQTTPacket.maximumRemainingLength else {
      throw MQTTClientError("cannot publish \(payload.readableBytes) bytes: an MQTT packet holds at most 268,435,455")
    }
    var publish = MQTTPacket.Publish(topic: topic, payload: payload, qos: qos, retain: retain)
    switch qos {
    case .exactlyOnce:
      throw MQTTClientError("publishing with QoS 2 is not supported; use QoS 0 or 1")
    case .atMostOnce:
      let channel = state.withLock { state -> (any Channel)? in
        if state.channel == nil {
          if state.heldPublishes.count >= configuration.maxHeldPublishes {
            state.heldPublishes.removeFirst()
            state.droppedPublishes += 1
          }
          state.heldPublishes.append(publish)
        }
        return state.channel
      }
      if let channel { try await send(.publish(publish), on: channel) }
    case .atLeastOnce:
      let packetID = try state.withLock { state throws(MQTTClientError) in
        let packetID = try state.allocatePacketID()
        publish.packetID = packetID
        state.outgoing[packetID] = Outgoing(publish: publish)
        state.outgoingOrder.append(packetID)
        return packetID
      }
      try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
          let action = state.withLock { state -> (any Channel)?? in
            guard state.outgoing[packetID] != nil else { return .none }
            state.outgoing[packetID]!.continuation = continuation
            if state.channel != nil { state.outgoing[packetID]!.sent = true }
            return .some(state.channel)
          }
          switch action {
          case .none: continuation.resume(throwing: CancellationError())
          case .some(let channel): if let channel { sendAndForget(.publish(publish), on: channel) }
          }
        }
      } onCancel: {
        let continuation = state.withLock { state in
          state.outgoingOrder.removeAll { $0 == packetID }
          return state.outgoing.removeValue(forKey: packetID)?.continuation
        }
        continuation?.resume(throwing: CancellationError())
      }
    }
  }

  // MARK: - Connection

  /// Connects and serves connections until stopped, waiting between attempts.
  private func maintainConnection() async throws {
    var delay = configuration.reconnectDelay
    while !Task.isCancelled, !state.withLock({ $0.disconnecting }) {
      var wasEstablished = false
      do {
        try await serveOneConnection(established: &wasEstablished)
      } catch let error as MQTTClientError {
        logger.error("\(error.message)")
        state.withLock { $0.stopping = true }
        finishDeliveries()
        throw error
      } catch is CancellationError {
        return
      } catch {
        if state.withLock({ $0.disconnecting }) { return }
        let reason = Self.describe(error)
        if wasEstablished { delay = configuration.reconnectDelay }
        let wait = Self.jittered(delay)
        let verb = wasEstablished ? "lost" : "failed"
        logger.warning(
          "connection to \(endpoint) \(verb): \(reason); reconnecting in \(Self.seconds(wait)) s")
        try? await Task.sleep(for: wait)
        delay = min(delay * 2, configuration.maxReconnectDelay)
        continue
      }
      // The connection ended cleanly: a shutdown, or the broker closing it.
      if state.withLock({ $0.disconnecting }) { return }
      logger.warning("connection to \(endpoint) closed by the broker; reconnecting")
      delay = configuration.reconnectDelay
      try? await Task.sleep(for: Self.jittered(delay))
    }
  }

  private var endpoint: String { "mqtt://\(configuration.host):\(configuration.port)" }

  private func serveOneConnection(established: inout Bool) async throws {
    let (inbound, continuation) = AsyncThrowingStream.makeStream(of: MQTTInbound.self)
    let maximumPacketSize = configuration.maximumPacketSize
    let channel = try await ClientBootstrap(group: eventLoopGroup)
      .connectTimeout(Self.timeAmount(configuration.connectTimeout))
      .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
      .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.addHandlers(
            ByteToMessageHandler(MQTTPacketDecoder(parser: MQTTPacketParser(maximumPacketSize: maximumPacketSize))),
            MessageToByteHandler(MQTTPacketEncoder()),
            InboundStreamHandler(continuation: continuation)
          )
        }
      }
      .connect(host: configuration.host, port: configuration.port)
      .get()
    defer { channel.close(promise: nil) }

    // CONNECT, then a CONNACK within the connect timeout.
    let connectTimeout = configuration.connectTimeout
    let handshakeTimer = channel.eventLoop.scheduleTask(in: Self.timeAmount(connectTimeout)) {
      continuation.finish(throwing: ConnectionEnded("no CONNACK within \(Self.seconds(connectTimeout)) s"))
    }
    try await channel.writeAndFlush(
      MQTTPacket.connect(
        .init(
          clientID: configuration.clientID, cleanSession: configuration.cleanSession,
          keepAliveSeconds: UInt16(clamping: configuration.keepAlive.components.seconds), will: configuration.will,
          username: configuration.username, password: configuration.password)))
    var packets = inbound.makeAsyncIterator()
    guard let first = try await packets.next() else {
      throw ConnectionEnded("the broker closed the connection before its CONNACK")
    }
    handshakeTimer.cancel()
    guard case .packet(.connAck(let connAck)) = first else {
      throw MQTTProtocolError("the broker's first packet is not a CONNACK: \(Self.name(of: first))")
    }
    guard connAck.returnCode == .accepted else {
      let message = "the broker at \(endpoint) refused the connection: return code \(connAck.returnCode)"
      if connAck.returnCode.isTransient { throw ConnectionEnded(message) }
      throw MQTTClientError(message)
    }
    established = true
    let subscribePacketID = attach(channel, sessionPresent: connAck.sessionPresent)
    logger.info(
      "connected to \(endpoint) as \(configuration.clientID) (session present: \(connAck.sessionPresent))")
    let keepAliveTask = scheduleKeepAlive(on: channel)
    defer { keepAliveTask?.cancel() }
    defer { detach(channel) }

    var awaitingSubAck = subscribePacketID
    if let packetID = subscribePacketID {
      let subscribe = MQTTPacket.subscribe(.init(packetID: packetID, subscriptions: configuration.subscriptions))
      let timer = channel.eventLoop.scheduleTask(in: Self.timeAmount(connectTimeout)) {
        continuation.finish(throwing: ConnectionEnded("no SUBACK within \(Self.seconds(connectTimeout)) s"))
      }
      defer { timer.cancel() }
      try await send(subscribe, on: channel)
      while awaitingSubAck != nil, let packet = try await packets.next() {
        if case .packet(.subAck(let subAck)) = packet, subAck.packetID == packetID {
          try checkSubscriptions(subAck)
          awaitingSubAck = nil
          timer.cancel()
        } else {
          try handle(packet, on: channel)
        }
      }
    }
    while let packet = try await packets.next() {
      try handle(packet, on: channel)
    }
  }

  /// Makes `channel` the current connection; resends what waits for it and returns the packet
  /// id for the SUBSCRIBE (none when stopping or there is nothing to subscribe to).
  private func attach(_ channel: any Channel, sessionPresent: Bool) -> UInt16? {
    let (resend, held, subscribeID, dropped) = state.withLock { state in
      state.channel = channel
      state.inboundAcks = []
      state.lastSent = .now
      state.pingSentAt = nil
      state.generation += 1
      if !sessionPresent {
        // The broker forgot the session: packet ids start afresh, and messages still being
        // delivered from before can no longer be acknowledged.
        state.sessionStart = state.generation
        state.completedBeforeReconnect = []
      }
      let order = state.outgoingOrder.filter { state.outgoing[$0] != nil }
      var resend: [MQTTPacket.Publish] = []
      for packetID in order {
        var publish = state.outgoing[packetID]!.publish
        publish.duplicate = state.outgoing[packetID]!.sent
        state.outgoing[packetID]!.sent = true
        resend.append(publish)
      }
      let held = state.heldPublishes
      state.heldPublishes = []
      let dropped = state.droppedPublishes
      state.droppedPublishes = 0
      // A SUBSCRIBE left unanswered by an earlier connection no longer holds its id.
      state.subscribePacketID = nil
      if !state.stopping && !configuration.subscriptions.isEmpty {
        state.subscribePacketID = try? state.allocatePacketID()
      }
      let subscribeID = state.subscribePacketID
      return (resend, held, subscribeID, dropped)
    }
    if dropped > 0 {
      logger.warning("dropped \(dropped) QoS 0 publishes held while disconnected (over \(configuration.maxHeldPublishes))")
    }
    if !resend.isEmpty {
      logger.notice("resending \(resend.count) unacknowledged QoS 1 publishes")
    }
    for publish in resend + held {
      channel.write(MQTTPacket.publish(publish), promise: nil)
    }
    channel.flush()
    return subscribeID
  }

  private func detach(_ channel: any Channel) {
    state.withLock { state in
      if state.channel === channel { state.channel = nil }
    }
  }

  private func checkSubscriptions(_ subAck: MQTTPacket.SubAck) throws {
    state.withLock { $0.subscribePacketID = nil }
    guard subAck.grantedQoS.count == configuration.subscriptions.count else {
      throw MQTTProtocolError(
        "the SUBACK has \(subAck.grantedQoS.count) return codes for \(configuration.subscriptions.count) topic filters")
    }
    for (subscription, granted) in zip(configuration.subscriptions, subAck.grantedQoS) {
      guard let granted else {
        throw MQTTClientError("the broker at \(endpoint) refused the subscription to \(subscription.topicFilter)")
      }
      if granted < subscription.qos {
        logger.warning(
          "subscribed to \(subscription.topicFilter) with QoS \(granted.rawValue), less than the \(subscription.qos.rawValue) asked for")
      } else {
        logger.info("subscribed to \(subscription.topicFilter) (QoS \(granted.rawValue))")
      }
    }
  }

  /// Sends PINGREQ when nothing was sent for half the keepalive, and closes a connection whose
  /// broker stays silent for a whole keepalive after one.
  private func scheduleKeepAlive(on channel: any Channel) -> RepeatedTask? {
    let keepAlive = configuration.keepAlive
    guard keepAlive > .zero else { return nil }
    let interval = Self.timeAmount(max(keepAlive / 4, .milliseconds(50)))
    let logger = logger
    return channel.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] _ in
      guard let self else { return }
      let now = ContinuousClock.now
      let action = state.withLock { state -> KeepAliveAction in
        if let pingSentAt = state.pingSentAt {
          return now - pingSentAt > keepAlive ? .close : .none
        }
        guard now - state.lastSent >= keepAlive / 2 else { return .none }
        state.pingSentAt = now
        state.lastSent = now
        return .ping
      }
      switch action {
      case .none: break
      case .ping: channel.writeAndFlush(MQTTPacket.pingReq, promise: nil)
      case .close:
        logger.warning("no PINGRESP within \(Self.seconds(keepAlive)) s: the broker is taken for gone")
        channel.close(promise: nil)
      }
    }
  }

  private enum KeepAliveAction { case none, ping, close }

  /// Acts on one packet from the broker.
  private func handle(_ inbound: MQTTInbound, on channel: any Channel) throws {
    switch inbound {
    case .oversizedPublish(let head):
      logger.warning(
        "message on \(head.topic) is \(head.byteCount) bytes, over the \(configuration.maximumPacketSize)-byte limit: payload skipped")
      receive(.oversized(head), packetID: head.packetID, qos: head.qos, duplicate: false, on: channel)
    case .packet(let packet):
      switch packet {
      case .publish(let publish):
        let message = MQTTMessage(
          topic: publish.topic, payload: publish.payload, qos: publish.qos, retain: publish.retain,
          duplicate: publish.duplicate)
        receive(.message(message), packetID: publish.packetID, qos: publish.qos, duplicate: publish.duplicate, on: channel)
      case .pubAck(let packetID):
        let continuation = state.withLock { state in
          state.outgoingOrder.removeAll { $0 == packetID }
          return state.outgoing.removeValue(forKey: packetID)?.continuation
        }
        continuation?.resume()
      case .pubRel(let packetID):
        sendAndForget(.pubComp(packetID: packetID), on: channel)
      case .pingResp:
        state.withLock { $0.pingSentAt = nil }
      case .subAck(let subAck):
        logger.debug("ignoring a SUBACK for packet \(subAck.packetID), which is not awaited")
      case .unsubAck, .pubRec, .pubComp:
        logger.debug("ignoring an unexpected \(packet.typeName) from the broker")
      case .connect, .connAck, .subscribe, .unsubscribe, .pingReq, .disconnect:
        throw MQTTProtocolError("the broker sent a \(packet.typeName), which a broker never sends at this point")
      }
    }
  }

  /// Queues a received message for delivery. A QoS 0 message finding the queue full is
  /// dropped (QoS 1 ones are bounded by the broker, which sends no more than its in-flight
  /// window before they are acknowledged); after ``shutdown()`` nothing is queued.
  private func receive(
    _ delivery: MQTTDelivery, packetID: UInt16?, qos: MQTTQoS, duplicate: Bool, on channel: any Channel
  ) {
    let (decision, acks, input, dropNotice, generation) = state.withLock {
      state -> (ReceiveDecision, [MQTTPacket], AsyncStream<QueuedDelivery>.Continuation?, Bool, Int) in
      let generation = state.generation
      guard !state.stopping else { return (.refused, [], nil, false, generation) }
      var decision = ReceiveDecision.deliver
      var acks: [MQTTPacket] = []
      if let packetID, qos != .atMostOnce {
        if let since = state.inProgress[packetID], since >= state.sessionStart {
          decision = .alreadyHandling
        } else if duplicate && state.completedBeforeReconnect.contains(packetID) {
          decision = .alreadyHandled
        } else {
          state.inProgress[packetID] = generation
        }
        state.inboundAcks.append(InboundAck(packetID: packetID, qos: qos, done: decision == .alreadyHandled))
        state.completedBeforeReconnect.remove(packetID)
        acks = state.takeReadyAcks()
      } else if state.queued >= configuration.maxQueuedDeliveries
        || state.queuedBytes + delivery.byteCount > configuration.maxQueuedBytes
      {
        state.droppedMessages += 1
        return (.refused, [], nil, state.droppedMessages == 1, generation)
      }
      guard decision == .deliver, let input = state.deliveryInput else {
        return (decision, acks, nil, false, generation)
      }
      state.queued += 1
      state.queuedBytes += delivery.byteCount
      return (decision, acks, input, false, generation)
    }
    switch decision {
    case .deliver: break
    case .alreadyHandling, .alreadyHandled:
      logger.debug("redelivery of packet \(packetID ?? 0) on \(delivery.topic) is not handled twice")
    case .refused where dropNotice:
      logger.warning(
        "the delivery queue is full: dropping QoS 0 messages until there is room (use QoS 1 to have the broker hold them)")
    case .refused:
      break
    }
    for ack in acks { channel.write(ack, promise: nil) }
    if !acks.isEmpty { channel.flush() }
    if let input {
      let ticket = packetID.map { DeliveryTicket(packetID: $0, generation: generation) }
      input.yield(QueuedDelivery(delivery: delivery, ticket: qos == .atMostOnce ? nil : ticket))
    }
  }

  // MARK: - Deliveries

  /// Runs deliveries, at most `maxConcurrentDeliveries` at a time, until the input finishes.
  private func dispatch(
    _ deliveries: AsyncStream<QueuedDelivery>, to deliver: @escaping @Sendable (MQTTDelivery) async -> Void
  ) async {
    let limit = max(1, configuration.maxConcurrentDeliveries)
    await withTaskGroup(of: Void.self) { group in
      var running = 0
      for await item in deliveries {
        if running >= limit {
          await group.next()
          running -= 1
        }
        started(item.delivery)
        running += 1
        group.addTask {
          await deliver(item.delivery)
          self.completed(item.ticket)
        }
      }
    }
  }

  /// One queued delivery started.
  private func started(_ delivery: MQTTDelivery) {
    let dropped = state.withLock { state in
      state.queued -= 1
      state.queuedBytes -= delivery.byteCount
      guard state.droppedMessages > 0, state.queued <= configuration.maxQueuedDeliveries / 2 else { return 0 }
      defer { state.droppedMessages = 0 }
      return state.droppedMessages
    }
    if dropped > 0 {
      logger.warning("dropped \(dropped) QoS 0 messages while the delivery queue was full")
    }
  }

  /// A delivery returned: acknowledges its message, and any after it that were waiting for it.
  private func completed(_ ticket: DeliveryTicket?) {
    guard let ticket else { return }
    let (acks, channel) = state.withLock { state -> ([MQTTPacket], (any Channel)?) in
      if state.inProgress[ticket.packetID] == ticket.generation {
        state.inProgress.removeValue(forKey: ticket.packetID)
      }
      // From before the broker forgot the session: there is nothing to acknowledge.
      guard ticket.generation >= state.sessionStart else { return ([], nil) }
      var found = false
      for index in state.inboundAcks.indices where state.inboundAcks[index].packetID == ticket.packetID {
        state.inboundAcks[index].done = true
        found = true
      }
      if !found && ticket.generation < state.generation {
        // Received on an earlier connection: a redelivery on this one is acknowledged at once.
        state.completedBeforeReconnect.insert(ticket.packetID)
      }
      return (state.takeReadyAcks(), state.channel)
    }
    guard let channel, !acks.isEmpty else { return }
    for ack in acks { channel.write(ack, promise: nil) }
    channel.flush()
    state.withLock { $0.lastSent = .now }
  }

  private func finishDeliveries() {
    state.withLock { $0.deliveryInput }?.finish()
  }

  /// Sends DISCONNECT and closes the connection for good.
  private func disconnect() {
    let channel = state.withLock { state in
      state.disconnecting = true
      return state.channel
    }
    guard let channel else { return }
    channel.writeAndFlush(MQTTPacket.disconnect).whenComplete { _ in channel.close(promise: nil) }
    logger.info("disconnected from \(endpoint)")
  }

  // MARK: - Writing

  private func send(_ packet: MQTTPacket, on channel: any Channel) async throws {
    state.withLock { $0.lastSent = .now }
    try await channel.writeAndFlush(packet)
  }

  private func sendAndForget(_ packet: MQTTPacket, on channel: any Channel) {
    state.withLock { $0.lastSent = .now }
    channel.writeAndFlush(packet, promise: nil)
  }

  // MARK: - Helpers

  private static func describe(_ error: any Error) -> String {
    switch error {
    case let error as MQTTProtocolError: "protocol error: \(error.message)"
    case let error as ConnectionEnded: error.reason
    case let error as MQTTClientError: error.message
    case let error as IOError: error.description
    default: "\(error)"
    }
  }

  private static func name(of inbound: MQTTInbound) -> String {
    switch inbound {
    case .packet(let packet): packet.typeName
    case .oversizedPublish: "PUBLISH"
    }
  }

  static func timeAmount(_ duration: Duration) -> TimeAmount {
    let (seconds, attoseconds) = duration.components
    return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
  }

  static func seconds(_ duration: Duration) -> String {
    let (seconds, attoseconds) = duration.components
    let tenths = (seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 50) / 100
    return "\(tenths / 10).\(tenths % 10)"
  }

  private static func jittered(_ delay: Duration) -> Duration {
    delay * Double.random(in: 0.8...1.2)
  }
}

/// A connection that ended for a reason a reconnect can cure.
struct ConnectionEnded: Error {
  var reason: String
  init(_ reason: String) { self.reason = reason }
}

/// What becomes of a received message.
enum ReceiveDecision {
  /// It is new: deliver it.
  case deliver
  /// The client is stopping, or the queue is full for a QoS 0 message: drop it.
  case refused
  /// A redelivery of one being delivered: acknowledge it when that one is done.
  case alreadyHandling
  /// A redelivery of one delivered before a reconnect: acknowledge it at once.
  case alreadyHandled
}

/// A message's place in the acknowledgement order: its packet id on the connection (counted
/// from 1) it came on.
struct DeliveryTicket: Sendable {
  var packetID: UInt16
  var generation: Int
}

struct QueuedDelivery: Sendable {
  var delivery: MQTTDelivery
  var ticket: DeliveryTicket?
}

struct InboundAck {
  var packetID: UInt16
  var qos: MQTTQoS
  var done: Bool
}

struct Outgoing {
  var publish: MQTTPacket.Publish
  var continuation: CheckedContinuation<Void, any Error>?
  var sent = false
}

/// Everything the client remembers, across connections.
struct ClientState {
  var channel: (any Channel)?
  var deliveryInput: AsyncStream<QueuedDelivery>.Continuation?
  var stopping = false
  var disconnecting = false
  var nextPacketID: UInt16 = 1
  /// The id of the SUBSCRIBE awaiting its SUBACK on this connection.
  var subscribePacketID: UInt16?
  var outgoing: [UInt16: Outgoing] = [:]
  var outgoingOrder: [UInt16] = []
  var heldPublishes: [MQTTPacket.Publish] = []
  var droppedPublishes = 0
  var inboundAcks: [InboundAck] = []
  /// The connections so far, and the first of the broker's current session.
  var generation = 0
  var sessionStart = 0
  /// QoS 1/2 messages being delivered, by packet id, with the connection each came on.
  var inProgress: [UInt16: Int] = [:]
  var completedBeforeReconnect: Set<UInt16> = []
  var queued = 0
  var queuedBytes = 0
  var droppedMessages = 0
  var lastSent = ContinuousClock.now
  var pingSentAt: ContinuousClock.Instant?

  /// A packet identifier no unacknowledged packet of ours uses.
  mutating func allocatePacketID() throws(MQTTClientError) -> UInt16 {
    for _ in 0..<Int(UInt16.max) {
      let candidate = nextPacketID
      nextPacketID = nextPacketID == .max ? 1 : nextPacketID + 1
      if outgoing[candidate] == nil && candidate != subscribePacketID {
        return candidate
      }
    }
    throw MQTTClientError("65,535 publishes await acknowledgement: no packet identifier is free")
  }

  /// Acknowledgements whose messages, and every message before them, are handled.
  mutating func takeReadyAcks() -> [MQTTPacket] {
    let ready = inboundAcks.prefix { $0.done }
    inboundAcks.removeFirst(ready.count)
    return ready.map { $0.qos == .exactlyOnce ? .pubRec(packetID: $0.packetID) : .pubAck(packetID: $0.packetID) }
  }
}
