import NIOCore
import NIOHTTP2

/// Serves the gRPC calls of one HTTP/2 connection: `NIOHTTP2Handler`, set up without a stream
/// multiplexer, hands it every frame, and it keeps one ``GRPCStream`` per open stream.
///
/// A stream is a plain object rather than a child channel with its own pipeline: creating,
/// registering and closing a channel per call cost more than the rest of a small call. What
/// the multiplexer did besides, this does too: it gives back flow-control windows (the
/// connection's as DATA arrives, a stream's as its handler takes the messages, see
/// ``InboundWindow``), ends the stream's work when NIOHTTP2 says the stream closed, and ends
/// every call when the connection goes.
///
/// It also shuts the connection down gracefully when told to quiesce (`ChannelShouldQuiesceEvent`),
/// as NIOHTTP2's connection management handler did, in front of this one, at a cost of two
/// type casts per event and a handler more for every frame: a GOAWAY naming the largest stream id
/// and a PING; once the PING's ack says the caller has seen it, a GOAWAY naming the last stream
/// opened (NIOHTTP2 refuses later ones); the connection closes when its last stream has. A
/// connection without open streams gets the last GOAWAY at once and closes.
///
/// Replies of the calls finishing in one event-loop tick go to NIOHTTP2 with one flush. Errors
/// pass on: NIOHTTP2 has already answered a protocol error, with RST_STREAM for a stream's (the
/// stream then closes, other calls go on) and GOAWAY for the connection's, after which this
/// closes the connection.
final class GRPCConnectionHandler: ChannelDuplexHandler {
  typealias InboundIn = HTTP2Frame
  typealias OutboundIn = HTTP2Frame
  typealias OutboundOut = HTTP2Frame

  private let methods: [String: GRPCMethod]
  private let maxMessageBytes: Int
  private let windowSize: Int
  private let executor: EventLoopTaskExecutor
  private let deadlines: DeadlineWatch
  private var streams: [HTTP2StreamID: GRPCStream] = [:]
  private var connectionWindow: InboundWindow
  private var context: ChannelHandlerContext?
  /// Frames written by the streams since the last flush, passed to NIOHTTP2 together with a flush
  /// (NIOHTTP2's outbound buffers expect every frame written to be flushed at once: a control
  /// frame left unflushed could be passed by a later DATA frame).
  private var pending = CircularBuffer<(frame: HTTP2Frame, promise: EventLoopPromise<Void>?)>()
  private var flushScheduled = false
  private let liveStreams: LiveCount
  /// The largest stream id a caller opened.
  private var lastStreamID = HTTP2StreamID.rootStream
  private var shutdown = GracefulShutdown.notStarted
  /// The loop's poll and how long it polls after a write, if `BUSY_POLL` is not 0.
  private let busyPoll: (poll: BusyPoll, window: TimeAmount)?

  /// Where a graceful shutdown is.
  private enum GracefulShutdown {
    case notStarted
    /// The first GOAWAY and a PING are sent; waiting for the PING's ack.
    case awaitingPingAck
    /// The final GOAWAY is sent: the connection closes once no stream is open.
    case closingWhenIdle
  }

  /// The data of the PING that follows the first GOAWAY.
  private static let shutdownPingData = HTTP2PingData(withInteger: 0x6678_7761_7463_6865)  // "fxwatche"

  /// Creates the handler of a connection on `eventLoop`. `windowSize` is the flow-control window
  /// of the connection and of each stream, as the connection's settings announce it.
  /// `liveStreams` counts the stream objects; with `busyPoll`, the loop polls that long after
  /// each write (``BusyPoll``).
  init(
    methods: [String: GRPCMethod], maxMessageBytes: Int, windowSize: Int, eventLoop: any EventLoop,
    liveStreams: LiveCount, busyPoll: TimeAmount? = nil
  ) {
    self.liveStreams = liveStreams
    self.methods = methods
    self.maxMessageBytes = maxMessageBytes
    self.windowSize = windowSize
    self.executor = EventLoopTaskExecutor(eventLoop)
    self.deadlines = DeadlineWatch(eventLoop: eventLoop)
    self.connectionWindow = InboundWindow(target: windowSize)
    self.busyPoll = busyPoll.map { (BusyPoll.of(eventLoop), $0) }
  }

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    closeAllStreams()
    self.context = nil
  }

  /// Passes the error on; one that is not a stream's closes the connection. NIOHTTP2 has told the
  /// caller (GOAWAY) of a protocol error of the connection's, and then leaves it open but unusable.
  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    context.fireErrorCaught(error)
    if !(error is NIOHTTP2Errors.StreamError) { context.close(promise: nil) }
  }

  func channelInactive(context: ChannelHandlerContext) {
    closeAllStreams()
    context.fireChannelInactive()
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let frame = unwrapInboundIn(data)
    switch frame.payload {
    case .headers:
      let stream: GRPCStream
      if let open = streams[frame.streamID] {
        stream = open
      } else {
        lastStreamID = max(lastStreamID, frame.streamID)
        stream = GRPCStream(
          id: frame.streamID, connection: self, methods: methods, executor: executor, deadlines: deadlines,
          maxMessageBytes: maxMessageBytes, windowSize: windowSize, liveStreams: liveStreams)
        streams[frame.streamID] = stream
      }
      stream.receive(frame.payload)
    case .data:
      streams[frame.streamID]?.receive(frame.payload)
    case .ping(let data, ack: true) where data == Self.shutdownPingData:
      finishGracefulShutdown()
    default:
      // Everything else is the connection's (SETTINGS, PING, GOAWAY, WINDOW_UPDATE: NIOHTTP2 does
      // them) or ends a stream (RST_STREAM: NIOHTTP2 says so with StreamClosedEvent).
      break
    }
  }

  /// NIOHTTP2's stream events are this handler's alone; others pass on. About seven come with
  /// each call, so they are told apart by their type, compared as an identifier, and read
  /// through ``exactly(_:as:)``: `as` casts cost ~300 instructions each (~5,000 a call).
  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    switch ObjectIdentifier(type(of: event)) {
    case ObjectIdentifier(NIOHTTP2WindowUpdatedEvent.self):
      guard let update = exactly(event, as: NIOHTTP2WindowUpdatedEvent.self), let size = update.inboundWindowSize
      else { return }
      if update.streamID == .rootStream {
        sendConnectionWindowUpdate(connectionWindow.sizeChanged(to: size))
      } else {
        streams[update.streamID]?.inboundWindowChanged(to: size)
      }
    case ObjectIdentifier(NIOHTTP2StreamCreatedEvent.self):
      break  // the stream's HEADERS come next, and make its GRPCStream
    case ObjectIdentifier(StreamClosedEvent.self):
      guard let closed = exactly(event, as: StreamClosedEvent.self) else { return }
      streams.removeValue(forKey: closed.streamID)?.closed()
      closeIfDone()
    case ObjectIdentifier(NIOHTTP2BulkStreamWindowChangeEvent.self):
      guard let change = exactly(event, as: NIOHTTP2BulkStreamWindowChangeEvent.self) else { return }
      for stream in streams.values { stream.initialWindowChanged(by: change.delta) }
    case ObjectIdentifier(ChannelShouldQuiesceEvent.self):
      beginGracefulShutdown()
    default:
      context.fireUserInboundEventTriggered(event)
    }
  }

  private func sendConnectionWindowUpdate(_ increment: Int?) {
    guard let increment, let context else { return }
    let written = context.eventLoop.makePromise(of: Void.self)
    write(.windowUpdate(windowSizeIncrement: increment), on: .rootStream, promise: written)
    flushSoon()
    let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
    written.futureResult.whenSuccess {
      handler.value.sendConnectionWindowUpdate(handler.value.connectionWindow.updateWritten(increment))
    }
  }

  // MARK: Graceful shutdown

  private func beginGracefulShutdown() {
    guard case .notStarted = shutdown else { return }
    shutdown = .awaitingPingAck
    guard streams.isEmpty else {
      write(.goAway(lastStreamID: .maxID, errorCode: .noError, opaqueData: nil), on: .rootStream)
      write(.ping(Self.shutdownPingData, ack: false), on: .rootStream)
      flushSoon()
      return
    }
    finishGracefulShutdown()
  }

  private func finishGracefulShutdown() {
    guard case .awaitingPingAck = shutdown else { return }
    shutdown = .closingWhenIdle
    write(.goAway(lastStreamID: lastStreamID, errorCode: .noError, opaqueData: nil), on: .rootStream)
    flushSoon()
    closeIfDone()
  }

  /// Once a shutdown has begun and no stream is open: sends the final GOAWAY if it is not sent
  /// yet, then closes the connection a loop tick later (the frames that closed the last stream
  /// are written and flushed first).
  ///
  /// The PING's ack is not waited for then: NIOHTTP2 takes a GOAWAY sent with no stream open as
  /// the connection's end, and any frame but a PING after it (a late SETTINGS ack, a
  /// WINDOW_UPDATE) as a protocol error, a new stream too. A request sent meanwhile was not
  /// taken, and the last GOAWAY tells its caller so.
  private func closeIfDone() {
    guard streams.isEmpty, let context else { return }
    switch shutdown {
    case .notStarted:
      return
    case .awaitingPingAck:
      finishGracefulShutdown()
    case .closingWhenIdle:
      let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
      context.eventLoop.execute {
        handler.value.context?.close(promise: nil)
      }
    }
  }

  // MARK: For the streams

  /// Queues a frame of stream `id`; it leaves with the next ``flushSoon()``.
  func write(_ payload: HTTP2Frame.FramePayload, on id: HTTP2StreamID, promise: EventLoopPromise<Void>? = nil) {
    guard context != nil else {
      promise?.fail(ChannelError.ioOnClosedChannel)
      return
    }
    pending.append((HTTP2Frame(streamID: id, payload: payload), promise))
  }

  /// Passes the queued frames on once the current event-loop tick's work is done, so that the
  /// replies of every call finishing in it are encoded and sent together.
  func flushSoon() {
    guard !flushScheduled, let context else { return }
    flushScheduled = true
    let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
    context.eventLoop.execute {
      handler.value.writePending()
    }
  }

  private func writePending() {
    flushScheduled = false
    guard let context else { return }
    // Writing may close streams, whose events may queue more frames: go on until none is left.
    // Popped one by one rather than copied out: a copy of the queue would make its next append
    // allocate new storage, once per tick.
    while !pending.isEmpty {
      while let next = pending.popFirst() {
        context.write(wrapOutboundOut(next.frame), promise: next.promise)
      }
      context.flush()
    }
    if let busyPoll { busyPoll.poll.didWrite(pollingFor: busyPoll.window) }
  }

  private func closeAllStreams() {
    let open = streams.values
    streams.removeAll()
    for stream in open { stream.closed() }
    let unsent = pending
    pending.removeAll()
    for (_, promise) in unsent { promise?.fail(ChannelError.ioOnClosedChannel) }
    deadlines.stop()
  }
}

/// `event` as a `Wanted`, if that is exactly its type (not a subclass); `nil` otherwise. Passed
/// an `Any`, `Event` is the value's own type (an opened existential), so this compares two
/// metadata pointers and copies the value, where an `as?` cast goes through the runtime's
/// general casting.
@inline(__always)
func exactly<Event, Wanted>(_ event: Event, as wanted: Wanted.Type) -> Wanted? {
  Event.self == Wanted.self ? unsafeBitCast(event, to: Wanted.self) : nil
}
