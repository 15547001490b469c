import NIOCore
import NIOHPACK
import NIOHTTP2

/// The served side of one HTTP/2 connection (RFC 9113), read and written on the socket's bytes,
/// with one ``GRPCStream`` per open stream.
///
/// It does what NIOHTTP2's handler and a connection handler behind it did, for a server that
/// only answers: the preface and SETTINGS, HPACK (NIOHPACK's coder), streams opened by HEADERS
/// and closed by END_STREAM both ways or RST_STREAM, flow control both ways (DATA waits for
/// window, frame by frame, in each stream's order; windows given back as ``InboundWindow``
/// decides), PING, GOAWAY and a graceful shutdown. ``HTTP2FrameReader`` cuts what arrives into
/// frames, handed to the streams as NIOHTTP2's frame payloads; ``HTTP2FrameWriter`` encodes what
/// the streams write, a loop tick's frames into one buffer that goes to the socket with one
/// flush. NIOHTTP2's state machines, which this replaced, copied their state for every frame: a
/// third of a small call's CPU went to reference counting there.
///
/// A peer's protocol error is answered as RFC 9113 says: a stream's with RST_STREAM (other calls
/// go on), the connection's with GOAWAY naming the last stream taken, after which the connection
/// closes. Frames for a stream already closed are ignored (their DATA still counts against the
/// connection's window, which is given back). Streams over `SETTINGS_MAX_CONCURRENT_STREAMS` are
/// refused (REFUSED_STREAM). Besides, as NIOHTTP2 does, a connection that resets more than 200
/// streams in 30 s, or does not read while making this server queue more than 10,000 control
/// frames (PING and SETTINGS acknowledgements, resets), is closed with ENHANCE_YOUR_CALM; so is
/// one sending a header block over 256 KiB (a CONTINUATION flood).
///
/// Quiescing (`ChannelShouldQuiesceEvent`) sends a GOAWAY naming the largest stream id and a
/// PING; once the PING's ack says the caller has seen it, a GOAWAY naming the last stream opened
/// (later ones are refused); the connection closes when its last stream has. A connection without
/// open streams gets the last GOAWAY at once and closes.
final class HTTP2ServerConnection: ChannelInboundHandler {
  typealias InboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  /// What the connection knows of one open stream.
  private struct OpenStream {
    let call: GRPCStream
    /// What the peer lets this server send on the stream (may go below zero when the peer
    /// lowers its initial window size).
    var sendWindow: Int
    /// What this server lets the peer send on the stream.
    var receiveWindow: Int
    var remoteEnded = false
    var localEnded = false
    /// Frames waiting for flow-control window, in the order they were written.
    var blocked: [(payload: HTTP2Frame.FramePayload, promise: EventLoopPromise<Void>?)] = []

    /// The stream is gone: its call ends, and what waited for window is not sent.
    func end() {
      for (_, promise) in blocked { promise?.fail(ChannelError.ioOnClosedChannel) }
      call.closed()
    }
  }

  /// Where a graceful shutdown is.
  private enum GracefulShutdown {
    case notStarted
    /// The first GOAWAY and a PING are sent; waiting for the PING's ack.
    case awaitingPingAck
    /// The final GOAWAY is sent: the connection closes once no stream is open.
    case closingWhenIdle
  }

  /// The data of the PING that follows the first GOAWAY.
  private static let shutdownPingData: UInt64 = 0x6678_7761_7463_6865  // "fxwatche"
  /// The longest header block (with its CONTINUATIONs) read, encoded.
  private static let largestHeaderBlock = 256 * 1024
  /// How many resets a peer may send in ``resetWindow`` (as NIOHTTP2's default).
  private static let resetLimit = 200
  private static let resetWindow = TimeAmount.seconds(30)
  /// How many control frames may wait for an unwritable socket.
  private static let controlFrameLimit = 10_000

  private let methods: [String: GRPCMethod]
  private let maxMessageBytes: Int
  private let windowSize: Int
  private let maxConcurrentStreams: Int
  private let executor: EventLoopTaskExecutor
  private let deadlines: DeadlineWatch
  private let liveStreams: LiveCount
  /// The loop's poll and how long it polls after a write, if `BUSY_POLL` is not 0.
  private let busyPoll: (poll: BusyPoll, window: TimeAmount)?
  private var context: ChannelHandlerContext?

  private var streams: [UInt32: OpenStream] = [:]
  /// Streams with frames waiting for window, in the order they began to wait.
  private var blockedStreams: [UInt32] = []
  /// The largest stream id the peer opened.
  private var lastStreamID: UInt32 = 0
  private var shutdown = GracefulShutdown.notStarted
  /// Set once this server's SETTINGS are written.
  private var started = false
  /// Set once a connection error is sent: nothing more is read.
  private var failed = false

  // Reading
  private var reader = HTTP2FrameReader()
  private var settingsRead = false
  /// A header block waiting for its CONTINUATION frames.
  private var headerBlock: (streamID: UInt32, endStream: Bool, fragments: ByteBuffer)?
  private var decoder = HPACKDecoder(allocator: ByteBufferAllocator())
  /// What the peer may still send on the connection.
  private var receiveWindow = HTTP2Wire.defaultWindowSize
  /// When to give the connection's window back.
  private var connectionWindow: InboundWindow
  /// When the peer's resets of the last ``resetWindow`` arrived.
  private var resets: [NIODeadline] = []

  // Writing
  private var writer = HTTP2FrameWriter(allocator: ByteBufferAllocator())
  /// What the peer lets this server send on the connection.
  private var sendWindow = HTTP2Wire.defaultWindowSize
  /// The peer's `SETTINGS_INITIAL_WINDOW_SIZE`: a new stream's send window.
  private var peerInitialWindowSize = HTTP2Wire.defaultWindowSize
  /// Frames written by the streams since the last flush, encoded together when it comes.
  private var pending = CircularBuffer<(id: UInt32, payload: HTTP2Frame.FramePayload, promise: EventLoopPromise<Void>?)>()
  /// Promises of DATA frames the writer encoded, kept until their bytes are written.
  private var writtenPromises: [EventLoopPromise<Void>] = []
  private var flushScheduled = false
  /// Set while the queued frames are encoded, which are flushed then anyway.
  private var writing = false
  /// Control frames written while the socket was not writable.
  private var unwrittenControlFrames = 0

  /// Creates the handler of a connection on `eventLoop`. `windowSize` is the flow-control window
  /// of the connection and of each stream, `maxConcurrentStreams` the most streams open at once,
  /// both as the connection's settings announce them. `liveStreams` counts the stream objects;
  /// with `busyPoll`, the loop polls that long after each write (``BusyPoll``).
  init(
    methods: [String: GRPCMethod], maxMessageBytes: Int, windowSize: Int, maxConcurrentStreams: Int,
    eventLoop: any EventLoop, liveStreams: LiveCount, busyPoll: TimeAmount? = nil
  ) {
    self.methods = methods
    self.maxMessageBytes = maxMessageBytes
    self.windowSize = windowSize
    self.maxConcurrentStreams = maxConcurrentStreams
    self.executor = EventLoopTaskExecutor(eventLoop)
    self.deadlines = DeadlineWatch(eventLoop: eventLoop)
    self.liveStreams = liveStreams
    self.connectionWindow = InboundWindow(target: windowSize)
    self.busyPoll = busyPoll.map { (BusyPoll.of(eventLoop), $0) }
  }

  // MARK: Channel events

  func handlerAdded(context: ChannelHandlerContext) {
    self.context = context
    if context.channel.isActive { start() }
  }

  func channelActive(context: ChannelHandlerContext) {
    start()
    context.fireChannelActive()
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    closeAllStreams()
    self.context = nil
  }

  func channelInactive(context: ChannelHandlerContext) {
    closeAllStreams()
    context.fireChannelInactive()
  }

  func channelWritabilityChanged(context: ChannelHandlerContext) {
    if context.channel.isWritable { unwrittenControlFrames = 0 }
    context.fireChannelWritabilityChanged()
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if exactly(event, as: ChannelShouldQuiesceEvent.self) != nil {
      beginGracefulShutdown()
    } else {
      context.fireUserInboundEventTriggered(event)
    }
  }

  /// Sends this server's SETTINGS and opens the connection's window to its target.
  private func start() {
    guard !started else { return }
    started = true
    writer.settings([
      (HTTP2Wire.Setting.maxConcurrentStreams, maxConcurrentStreams),
      (HTTP2Wire.Setting.maxHeaderListSize, decoder.maxHeaderListSize),
      (HTTP2Wire.Setting.initialWindowSize, windowSize),
    ])
    if let increment = connectionWindow.sizeChanged(to: receiveWindow) {
      writeWindowUpdate(increment, streamID: 0)
    }
    flushSoon()
  }

  // MARK: Reading

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    guard !failed else { return }
    do {
      try reader.read(unwrapInboundIn(data)) { header, payload in
        try read(header, payload)
        return !failed
      }
    } catch let error as HTTP2Wire.ConnectionError {
      fail(error)
    } catch {
      fail(HTTP2Wire.ConnectionError(.internalError, "\(error)"))
    }
  }

  /// An I/O error: the connection is closed (its calls end with it).
  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    context.fireErrorCaught(error)
    context.close(promise: nil)
  }

  private func read(_ header: HTTP2Wire.FrameHeader, _ payload: ByteBuffer) throws {
    if let block = headerBlock, header.type != HTTP2Wire.FrameType.continuation || header.streamID != block.streamID {
      throw HTTP2Wire.ConnectionError(.protocolError, "a header block left without its CONTINUATION")
    }
    if !settingsRead {
      guard header.type == HTTP2Wire.FrameType.settings, !header.has(HTTP2Wire.Flags.ack) else {
        throw HTTP2Wire.ConnectionError(.protocolError, "the connection does not start with SETTINGS")
      }
      settingsRead = true
    }
    switch header.type {
    case HTTP2Wire.FrameType.data: try readData(header, payload)
    case HTTP2Wire.FrameType.headers: try readHeaders(header, payload)
    case HTTP2Wire.FrameType.continuation: try readContinuation(header, payload)
    case HTTP2Wire.FrameType.rstStream: try readReset(header, payload)
    case HTTP2Wire.FrameType.settings: try readSettings(header, payload)
    case HTTP2Wire.FrameType.ping: try readPing(header, payload)
    case HTTP2Wire.FrameType.windowUpdate: try readWindowUpdate(header, payload)
    case HTTP2Wire.FrameType.priority:
      guard header.streamID != 0 else { throw HTTP2Wire.ConnectionError(.protocolError, "PRIORITY on stream 0") }
      if header.length != 5 { resetStream(header.streamID, .frameSizeError) }
    case HTTP2Wire.FrameType.goAway:
      // The peer opens no more streams; those open go on.
      guard header.streamID == 0 else { throw HTTP2Wire.ConnectionError(.protocolError, "GOAWAY on a stream") }
      guard header.length >= 8 else { throw HTTP2Wire.ConnectionError(.frameSizeError, "a GOAWAY of \(header.length) bytes") }
    case HTTP2Wire.FrameType.pushPromise:
      throw HTTP2Wire.ConnectionError(.protocolError, "PUSH_PROMISE from a client")
    default:
      break  // unknown frame types are ignored (RFC 9113 §4.1)
    }
  }

  /// Removes a frame's padding (its `PADDED` flag's length byte and the padding after the rest).
  private func unpadded(_ header: HTTP2Wire.FrameHeader, _ payload: ByteBuffer) throws -> (ByteBuffer, Int?) {
    guard header.has(HTTP2Wire.Flags.padded) else { return (payload, nil) }
    var payload = payload
    guard let padding = payload.readInteger(as: UInt8.self).map(Int.init), padding <= payload.readableBytes else {
      throw HTTP2Wire.ConnectionError(.protocolError, "padding longer than its frame")
    }
    return (payload.readSlice(length: payload.readableBytes - padding)!, padding)
  }

  private func readData(_ header: HTTP2Wire.FrameHeader, _ payload: ByteBuffer) throws {
    let id = header.streamID
    guard id != 0 else { throw HTTP2Wire.ConnectionError(.protocolError, "DATA on stream 0") }
    guard id <= lastStreamID else { throw HTTP2Wire.ConnectionError(.protocolError, "DATA on idle stream \(id)") }
    receiveWindow -= header.length
    guard receiveWindow >= 0 else {
      throw HTTP2Wire.ConnectionError(.flowControlError, "DATA beyond the connection's window")
    }
    let (data, padding) = try unpadded(header, payload)
    let endStream = header.has(HTTP2Wire.Flags.endStream)
    if var stream = streams[id] {
      if stream.remoteEnded {
        resetStream(id, .streamClosed)
      } else if stream.receiveWindow - header.length < 0 {
        resetStream(id, .flowControlError)
      } else {
        stream.receiveWindow -= header.length
        stream.remoteEnded = endStream
        streams[id] = stream
        stream.call.receive(.data(.init(data: .byteBuffer(data), endStream: endStream, paddingBytes: padding)))
        if endStream {
          closeIfEnded(id)
        } else if streams[id] != nil {
          stream.call.inboundWindowChanged(to: stream.receiveWindow)
        }
      }
    }
    if let increment = connectionWindow.sizeChanged(to: receiveWindow) {
      writeWindowUpdate(increment, streamID: 0)
      flushSoon()
    }
  }

  private func readHeaders(_ header: HTTP2Wire.FrameHeader, _ payload: ByteBuffer) throws {
    guard header.streamID != 0 else { throw HTTP2Wire.ConnectionError(.protocolError, "HEADERS on stream 0") }
    var (fragment, _) = try unpadded(header, payload)
    if header.has(HTTP2Wire.Flags.priority) {
      guard fragment.readableBytes >= 5 else {
        throw HTTP2Wire.ConnectionError(.frameSizeError, "HEADERS too short for its priority")
      }
      fragment.moveReaderIndex(forwardBy: 5)
    }
    let endStream = header.has(HTTP2Wire.Flags.endStream)
    if header.has(HTTP2Wire.Flags.endHeaders) {
      try readHeaderBlock(fragment, streamID: header.streamID, endStream: endStream)
    } else {
      headerBlock = (header.streamID, endStream, fragment)
    }
  }

  private func readContinuation(_ header: HTTP2Wire.FrameHeader, _ payload: ByteBuffer) throws {
    guard var block = headerBlock else {
      throw HTTP2Wire.ConnectionError(.protocolError, "CONTINUATION without HEADERS")
    }
    headerBlock = nil
    var payload = payload
    block.fragments.writeBuffer(&payload)
    guard block.fragments.readableBytes <= Self.largestHeaderBlock else {
      throw HTTP2Wire.ConnectionError(.enhanceYourCalm, "a header block over \(Self.largestHeaderBlock) bytes")
    }
    if header.has(HTTP2Wire.Flags.endHeaders) {
      try readHeaderBlock(block.fragments, streamID: block.streamID, endStream: block.endStream)
    } else {
      headerBlock = block
    }
  }

  /// Decodes a whole header block (always: HPACK's table depends on every block) and opens a
  /// stream with it, or hands it to its open stream as trailers.
  private func readHeaderBlock(_ block: ByteBuffer, streamID id: UInt32, endStream: Bool) throws {
    var block = block
    let headers: HPACKHeaders
    do {
      headers = try decoder.decodeHeaders(from: &block)
    } catch {
      throw HTTP2Wire.ConnectionError(.compressionError, "a header block HPACK cannot decode: \(error)")
    }
    let payload = HTTP2Frame.FramePayload.headers(.init(headers: headers, endStream: endStream))
    if var stream = streams[id] {
      guard !stream.remoteEnded else { return resetStream(id, .streamClosed) }
      // Trailers end the request (RFC 9113 §8.1).
      guard endStream else { return resetStream(id, .protocolError) }
      stream.remoteEnded = true
      streams[id] = stream
      stream.call.receive(payload)
      closeIfEnded(id)
      return
    }
    guard id > lastStreamID else { return }  // a stream already closed
    guard id & 1 == 1 else { throw HTTP2Wire.ConnectionError(.protocolError, "a client opened even stream \(id)") }
    lastStreamID = id
    if case .closingWhenIdle = shutdown { return resetStream(id, .refusedStream) }
    guard streams.count < maxConcurrentStreams else { return resetStream(id, .refusedStream) }
    let call = GRPCStream(
      id: HTTP2StreamID(Int(id)), connection: self, methods: methods, executor: executor, deadlines: deadlines,
      maxMessageBytes: maxMessageBytes, windowSize: windowSize, liveStreams: liveStreams)
    streams[id] = OpenStream(
      call: call, sendWindow: peerInitialWindowSize, receiveWindow: windowSize, remoteEnded: endStream)
    call.receive(payload)
    if endStream { closeIfEnded(id) }
  }

  private func readReset(_ header: HTTP2Wire.FrameHeader, _ payload: ByteBuffer) throws {
    guard header.streamID != 0 else { throw HTTP2Wire.ConnectionError(.protocolError, "RST_STREAM on stream 0") }
    guard header.length == 4 else { throw HTTP2Wire.ConnectionError(.frameSizeError, "an RST_STREAM of \(header.length) bytes") }
    guard header.streamID <= lastStreamID else {
      throw HTTP2Wire.ConnectionError(.protocolError, "RST_STREAM on idle stream \(header.streamID)")
    }
    let now = NIODeadline.now()
    resets.removeAll { $0 < now - Self.resetWindow }
    resets.append(now)
    guard resets.count <= Self.resetLimit else {
      throw HTTP2Wire.ConnectionError(.enhanceYourCalm, "more than \(Self.resetLimit) streams reset in 30 s")
    }
    close(header.streamID)
  }

  private func readSettings(_ header: HTTP2Wire.FrameHeader, _ payload: ByteBuffer) throws {
    guard header.streamID == 0 else { throw HTTP2Wire.ConnectionError(.protocolError, "SETTINGS on a stream") }
    if header.has(HTTP2Wire.Flags.ack) {
      guard header.length == 0 else { throw HTTP2Wire.ConnectionError(.frameSizeError, "a SETTINGS ack with a payload") }
      return
    }
    guard header.length % 6 == 0 else { throw HTTP2Wire.ConnectionError(.frameSizeError, "SETTINGS of \(header.length) bytes") }
    var payload = payload
    while let (identifier, value) = payload.readMultipleIntegers(as: (UInt16, UInt32).self) {
      let value = Int(value)
      switch identifier {
      case HTTP2Wire.Setting.headerTableSize:
        writer.setHeaderTableSize(value)
      case HTTP2Wire.Setting.enablePush:
        guard value <= 1 else { throw HTTP2Wire.ConnectionError(.protocolError, "SETTINGS_ENABLE_PUSH \(value)") }
      case HTTP2Wire.Setting.initialWindowSize:
        guard value <= HTTP2Wire.largestWindowSize else {
          throw HTTP2Wire.ConnectionError(.flowControlError, "SETTINGS_INITIAL_WINDOW_SIZE \(value)")
        }
        let delta = value - peerInitialWindowSize
        peerInitialWindowSize = value
        for id in streams.keys {
          streams[id]!.sendWindow += delta
          guard streams[id]!.sendWindow <= HTTP2Wire.largestWindowSize else {
            throw HTTP2Wire.ConnectionError(.flowControlError, "a stream's window over 2^31 - 1")
          }
        }
      case HTTP2Wire.Setting.maxFrameSize:
        guard (HTTP2Wire.defaultMaxFrameSize...HTTP2Wire.largestMaxFrameSize).contains(value) else {
          throw HTTP2Wire.ConnectionError(.protocolError, "SETTINGS_MAX_FRAME_SIZE \(value)")
        }
        writer.maxFrameSize = value
      default:
        break  // MAX_CONCURRENT_STREAMS and MAX_HEADER_LIST_SIZE limit what this server sends, which is little.
      }
    }
    writer.settingsAck()
    countControlFrame()
    sendBlocked()
    flushSoon()
  }

  private func readPing(_ header: HTTP2Wire.FrameHeader, _ payload: ByteBuffer) throws {
    guard header.streamID == 0 else { throw HTTP2Wire.ConnectionError(.protocolError, "PING on a stream") }
    guard header.length == 8, let data = payload.getInteger(at: payload.readerIndex, as: UInt64.self) else {
      throw HTTP2Wire.ConnectionError(.frameSizeError, "a PING of \(header.length) bytes")
    }
    if header.has(HTTP2Wire.Flags.ack) {
      if data == Self.shutdownPingData { finishGracefulShutdown() }
      return
    }
    writer.ping(data, ack: true)
    countControlFrame()
    flushSoon()
  }

  private func readWindowUpdate(_ header: HTTP2Wire.FrameHeader, _ payload: ByteBuffer) throws {
    guard header.length == 4, let value = payload.getInteger(at: payload.readerIndex, as: UInt32.self) else {
      throw HTTP2Wire.ConnectionError(.frameSizeError, "a WINDOW_UPDATE of \(header.length) bytes")
    }
    let increment = Int(value & 0x7FFF_FFFF)
    let id = header.streamID
    if id == 0 {
      guard increment > 0 else { throw HTTP2Wire.ConnectionError(.protocolError, "a WINDOW_UPDATE of 0") }
      sendWindow += increment
      guard sendWindow <= HTTP2Wire.largestWindowSize else {
        throw HTTP2Wire.ConnectionError(.flowControlError, "the connection's window over 2^31 - 1")
      }
    } else {
      guard id <= lastStreamID else {
        throw HTTP2Wire.ConnectionError(.protocolError, "WINDOW_UPDATE on idle stream \(id)")
      }
      guard streams[id] != nil else { return }
      guard increment > 0 else { return resetStream(id, .protocolError) }
      streams[id]!.sendWindow += increment
      guard streams[id]!.sendWindow <= HTTP2Wire.largestWindowSize else { return resetStream(id, .flowControlError) }
    }
    if !blockedStreams.isEmpty {
      sendBlocked()
      flushSoon()
    }
  }

  /// Counts a frame written in answer to the peer while the socket cannot take more: a peer that
  /// sends PINGs, SETTINGS or streams to reset without reading the answers would otherwise grow
  /// them without bound. Past the limit, the connection fails.
  private func countControlFrame() {
    guard let context, !context.channel.isWritable else { return }
    unwrittenControlFrames += 1
    if unwrittenControlFrames > Self.controlFrameLimit {
      fail(HTTP2Wire.ConnectionError(.enhanceYourCalm, "more than \(Self.controlFrameLimit) answers unread"))
    }
  }

  // MARK: Streams' ends

  /// Resets stream `id` (a stream error of the peer's, or a refusal): RST_STREAM with `code`,
  /// and the stream, if open, closes.
  private func resetStream(_ id: UInt32, _ code: HTTP2ErrorCode) {
    writer.reset(code, streamID: id)
    countControlFrame()
    flushSoon()
    close(id)
  }

  /// Closes stream `id` once both sides have ended it.
  private func closeIfEnded(_ id: UInt32) {
    guard let stream = streams[id], stream.remoteEnded, stream.localEnded else { return }
    close(id)
  }

  /// Forgets stream `id` and ends its call; frames it had waiting for window are dropped.
  private func close(_ id: UInt32) {
    guard let stream = streams.removeValue(forKey: id) else { return }
    if !stream.blocked.isEmpty { blockedStreams.removeAll { $0 == id } }
    stream.end()
    closeIfDone()
  }

  private func closeAllStreams() {
    let open = streams.values
    streams.removeAll()
    blockedStreams.removeAll()
    for stream in open { stream.end() }
    let unsent = pending
    pending.removeAll()
    for (_, _, promise) in unsent { promise?.fail(ChannelError.ioOnClosedChannel) }
    let unwritten = writtenPromises
    writtenPromises.removeAll()
    for promise in unwritten { promise.fail(ChannelError.ioOnClosedChannel) }
    deadlines.stop()
  }

  /// Ends the connection for a protocol error of the peer's: GOAWAY with its code, then close.
  private func fail(_ error: HTTP2Wire.ConnectionError) {
    guard !failed, let context else { return }
    failed = true
    writer.goAway(lastStreamID: lastStreamID, code: error.code, reason: error.reason)
    writeOut()
    context.close(promise: nil)
  }

  // MARK: Graceful shutdown

  private func beginGracefulShutdown() {
    guard case .notStarted = shutdown else { return }
    shutdown = .awaitingPingAck
    guard streams.isEmpty else {
      writer.goAway(lastStreamID: UInt32(Int32.max), code: .noError)
      writer.ping(Self.shutdownPingData, ack: false)
      flushSoon()
      return
    }
    finishGracefulShutdown()
  }

  private func finishGracefulShutdown() {
    guard case .awaitingPingAck = shutdown else { return }
    shutdown = .closingWhenIdle
    writer.goAway(lastStreamID: lastStreamID, code: .noError)
    flushSoon()
    closeIfDone()
  }

  /// Once a shutdown has begun and no stream is open: sends the final GOAWAY if it is not sent
  /// yet, then closes the connection a loop tick later (the frames that closed the last stream
  /// are written and flushed first).
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
        handler.value.writeOut()
        handler.value.context?.close(promise: nil)
      }
    }
  }

  // MARK: For the streams

  /// Queues a frame of stream `id`; it is encoded and leaves with the next ``flushSoon()``.
  func write(_ payload: HTTP2Frame.FramePayload, on id: HTTP2StreamID, promise: EventLoopPromise<Void>? = nil) {
    guard context != nil, !failed else {
      promise?.fail(ChannelError.ioOnClosedChannel)
      return
    }
    pending.append((UInt32(Int32(id)), payload, promise))
  }

  /// Encodes the queued frames once the current event-loop tick's work is done, so that the
  /// replies of every call finishing in it go to the socket together.
  func flushSoon() {
    guard !flushScheduled, !writing, let context else { return }
    flushScheduled = true
    let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
    context.eventLoop.execute {
      handler.value.writePending()
    }
  }

  private func writePending() {
    flushScheduled = false
    guard context != nil else { return }
    // Encoding may close streams, whose calls may queue more frames: go on until none is left.
    writing = true
    while let (id, payload, promise) = pending.popFirst() {
      encode(payload, on: id, promise: promise)
    }
    writing = false
    writeOut()
    if let busyPoll { busyPoll.poll.didWrite(pollingFor: busyPoll.window) }
  }

  /// Writes this tick's frames to the socket and flushes.
  private func writeOut() {
    guard let context else { return }
    writer.write { buffer, isLast in
      context.write(wrapOutboundOut(buffer), promise: isLast ? writtenPromise() : nil)
    } flush: {
      context.flush()
    }
  }

  /// One promise for the DATA frames written, if any was given one.
  private func writtenPromise() -> EventLoopPromise<Void>? {
    guard let context, !writtenPromises.isEmpty else { return nil }
    let written = context.eventLoop.makePromise(of: Void.self)
    let promises = writtenPromises
    writtenPromises.removeAll()
    written.futureResult.whenComplete { result in
      for promise in promises { promise.completeWith(result) }
    }
    return written
  }

  private func encode(_ payload: HTTP2Frame.FramePayload, on id: UInt32, promise: EventLoopPromise<Void>?) {
    if id != 0, let stream = streams[id], !stream.blocked.isEmpty, payload.waitsForWindow {
      streams[id]!.blocked.append((payload, promise))
      return
    }
    switch payload {
    case .headers(let headers):
      guard id != 0, let stream = streams[id], !stream.localEnded else {
        promise?.fail(ChannelError.ioOnClosedChannel)
        return
      }
      writer.headers(headers.headers, endStream: headers.endStream, streamID: id)
      promise?.succeed()
      if headers.endStream { endLocally(id) }
    case .data(let data):
      guard id != 0, let stream = streams[id], !stream.localEnded, case .byteBuffer(let bytes) = data.data else {
        promise?.fail(ChannelError.ioOnClosedChannel)
        return
      }
      if !send(bytes, endStream: data.endStream, on: id, promise: promise) {
        blockedStreams.append(id)
      }
    case .rstStream(let code):
      guard streams[id] != nil else {
        promise?.fail(ChannelError.ioOnClosedChannel)
        return
      }
      resetStream(id, code)
      promise?.succeed()
    case .windowUpdate(let increment):
      writeWindowUpdate(increment, streamID: id)
      promise?.succeed()
    default:  // a stream writes no other frames
      promise?.fail(ChannelError.operationUnsupported)
    }
  }

  /// This server ended stream `id`: it closes if the peer has too.
  private func endLocally(_ id: UInt32) {
    streams[id]?.localEnded = true
    closeIfEnded(id)
  }

  /// Sends as much of `bytes` as the windows let; the rest waits in the stream's blocked frames.
  /// Returns whether all of it went.
  private func send(_ bytes: ByteBuffer, endStream: Bool, on id: UInt32, promise: EventLoopPromise<Void>?) -> Bool {
    var bytes = bytes
    while true {
      let window = min(streams[id]!.sendWindow, sendWindow)
      let length = min(bytes.readableBytes, max(window, 0), writer.maxFrameSize)
      let last = length == bytes.readableBytes
      guard length > 0 || last else {
        streams[id]!.blocked.append((.data(.init(data: .byteBuffer(bytes), endStream: endStream)), promise))
        return false
      }
      writer.data(bytes.readSlice(length: length)!, endStream: endStream && last, streamID: id)
      streams[id]!.sendWindow -= length
      sendWindow -= length
      if last {
        if let promise { writtenPromises.append(promise) }
        if endStream { endLocally(id) }
        return true
      }
    }
  }

  /// Sends what waits for window, stream by stream, in the order they began to wait.
  private func sendBlocked() {
    let waiting = blockedStreams
    blockedStreams.removeAll()
    for id in waiting where streams[id] != nil {
      if sendWindow <= 0 || !sendBlocked(of: id) { blockedStreams.append(id) }
    }
  }

  /// Sends stream `id`'s waiting frames while the windows let; returns whether none is left.
  private func sendBlocked(of id: UInt32) -> Bool {
    while let next = streams[id]?.blocked.first {
      streams[id]!.blocked.removeFirst()
      switch next.payload {
      case .data(let data):
        guard case .byteBuffer(let bytes) = data.data else { continue }
        guard send(bytes, endStream: data.endStream, on: id, promise: next.promise) else {
          // send put what is left at the end: move it back to the front.
          let rest = streams[id]!.blocked.removeLast()
          streams[id]!.blocked.insert(rest, at: 0)
          return false
        }
      default:
        encode(next.payload, on: id, promise: next.promise)
      }
    }
    return true
  }

  // MARK: Flow control of what arrives

  /// Gives `increment` bytes of window back to the peer, the connection's (stream 0) or a stream's.
  private func writeWindowUpdate(_ increment: Int, streamID: UInt32) {
    writer.windowUpdate(increment, streamID: streamID)
    if streamID == 0 {
      receiveWindow += increment
      if let next = connectionWindow.updateWritten(increment) { writeWindowUpdate(next, streamID: 0) }
    } else {
      streams[streamID]?.receiveWindow += increment
    }
  }
}

extension HTTP2Frame.FramePayload {
  /// Whether the frame must wait behind its stream's DATA that waits for window: the stream's
  /// own frames, DATA and trailers, in order; a reset or window update does not wait.
  fileprivate var waitsForWindow: Bool {
    switch self {
    case .data, .headers: true
    default: false
    }
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
