import ArgumentParser
import Examples
import Foundation
import FxWatcherProto
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import HandlerKit
import Imaging

/// The image example's tool: sends frames through a watcher's `Calls` stream, decodes images as
/// the `imgprocessing` handler does, and times its work in-process.
@main
struct FxImage: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "fximage",
    abstract: "Streams image frames through an OpenFx function, or decodes and times images locally.",
    subcommands: [Stream.self, Decode.self, Bench.self]
  )
}

/// Sends every frame of a folder or a video over one `pb.FxWatcher/Calls` stream and writes
/// each reply as it arrives.
struct Stream: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Send a folder of frames or a video's frames over pb.FxWatcher/Calls; write the replies.",
    discussion: """
      Frames from --frames are the folder's .jpg, .jpeg and .png files in name order. A --video \
      in Motion-JPEG (AVI, MOV, .mjpeg) is read directly; any other video is turned into JPEG \
      frames by ffmpeg, which must then be on PATH. Replies are written to --output as \
      frame-000001.jpg, … in the order sent.
      """
  )

  @Option(help: "The watcher's host:port.")
  var address = "127.0.0.1:50051"

  @Option(help: "A folder of frames.")
  var frames: String?

  @Option(help: "A video whose frames to send.")
  var video: String?

  @Option(help: "Where the processed frames are written (created if missing).")
  var output: String

  @Option(help: "Seconds to wait for the whole stream.")
  var timeout = 600

  func validate() throws {
    guard (frames == nil) != (video == nil) else { throw ValidationError("give --frames or --video, one of them") }
  }

  func run() async throws {
    let inputs = try frames.map(Self.folderFrames) ?? Self.videoFrames(video!)
    guard !inputs.isEmpty else { throw ValidationError("no frames found") }
    guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
      throw ValidationError("--address must be host:port")
    }
    let host = String(address[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
    try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
    let start = ContinuousClock.now
    let outputFolder = output
    let transport = try HTTP2ClientTransport.Posix(
      target: .dns(host: host, port: port), transportSecurity: .plaintext,
      config: .defaults { $0.http2.maxFrameSize = 1 << 20 })
    let written = try await withGRPCClient(transport: transport) { client in
      var options = CallOptions.defaults
      options.timeout = .seconds(timeout)
      options.maxResponseMessageBytes = 64 << 20
      return try await Pb_FxWatcher.Client(wrapping: client).calls(
        options: options,
        requestProducer: { writer in
          for frame in inputs {
            var request = Pb_Request()
            request.input = frame
            try await writer.write(request)
          }
        },
        onResponse: { response in
          var count = 0
          for try await reply in response.messages {
            count += 1
            let path = (outputFolder as NSString).appendingPathComponent(String(format: "frame-%06d.jpg", count))
            try reply.output.write(to: URL(fileURLWithPath: path))
          }
          return count
        })
    }
    let seconds = Double((ContinuousClock.now - start).components.attoseconds) / 1e18
      + Double((ContinuousClock.now - start).components.seconds)
    print("sent \(inputs.count) frames, wrote \(written) to \(output) in \(String(format: "%.2f", seconds)) s")
    guard written == inputs.count else { throw ExitCode(1) }
  }

  static func folderFrames(_ folder: String) throws -> [Data] {
    let names = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
    return try names.filter { ["jpg", "jpeg", "png"].contains(($0 as NSString).pathExtension.lowercased()) }
      .map { try Data(contentsOf: URL(fileURLWithPath: (folder as NSString).appendingPathComponent($0))) }
  }

  static func videoFrames(_ path: String) throws -> [Data] {
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    let frames = JPEGFrames.split(bytes)
    if !frames.isEmpty { return frames.map { Data($0) } }
    return JPEGFrames.split(try transcodeWithFFmpeg(path)).map { Data($0) }
  }

  /// The video's frames as a stream of JPEGs, from `ffmpeg` on PATH.
  static func transcodeWithFFmpeg(_ path: String) throws -> [UInt8] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["ffmpeg", "-loglevel", "error", "-i", path, "-f", "image2pipe", "-c:v", "mjpeg", "-q:v", "2", "-"]
    let pipe = Pipe()
    process.standardOutput = pipe
    do {
      try process.run()
    } catch {
      throw ValidationError("\(path) is not Motion-JPEG and ffmpeg could not be run: \(error)")
    }
    let bytes = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
      throw ValidationError("\(path) is not Motion-JPEG and ffmpeg could not read it (install ffmpeg for other codecs)")
    }
    return [UInt8](bytes)
  }
}

/// Decodes an image as the `imgprocessing` handler does and writes its pixels raw.
struct Decode: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Decode an image as imgprocessing does; write \"<width> <height> <channels>\\n\" and the BGR bytes to stdout.",
    discussion: "With --gray, the gray image instead (one channel); with --blur, blurred as the blur operation does."
  )

  @Argument(help: "A JPEG or PNG file.")
  var file: String

  @Flag(help: "Convert to gray as the gray operation does.")
  var gray = false

  @Flag(help: "Blur as the blur operation does.")
  var blur = false

  func run() throws {
    let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
    var image = try bytes.withUnsafeBytes { gray ? try ImageCodec.decodeGray($0) : try ImageCodec.decode($0) }
    if blur { image = image.boxBlurred() }
    FileHandle.standardOutput.write(Data("\(image.width) \(image.height) \(image.channels)\n".utf8))
    FileHandle.standardOutput.write(Data(image.pixels))
  }
}

/// Times the `imgprocessing` handler on one image in-process: decode, operation, JPEG encode.
struct Bench: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Time the imgprocessing handler (decode + operation + JPEG encode) on one image in-process; prints milliseconds per image."
  )

  @Argument(help: "A JPEG or PNG file.")
  var file: String

  @Option(help: "The operation, as IMG_OP names it: \(ImageProcessing.Operation.allCases.map(\.rawValue).joined(separator: ", ")).")
  var op = ImageProcessing.Operation.reencode.rawValue

  @Option(help: "How many times.")
  var rounds = 200

  func run() async throws {
    let handler = try ImageProcessing(environment: ["IMG_OP": op])
    let request = Request(input: try Data(contentsOf: URL(fileURLWithPath: file)))
    let context = Context()
    let clock = ContinuousClock()
    var times: [Duration] = []
    let cpuBefore = processCPUTime()
    for _ in 0..<rounds {
      let start = clock.now
      _ = try await handler.handle(request, context: context)
      times.append(clock.now - start)
    }
    let cpu = (processCPUTime() - cpuBefore) * 1000 / Double(rounds)
    func ms(_ d: Duration) -> Double { Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15 }
    times.sort()
    let mean = times.map(ms).reduce(0, +) / Double(rounds)
    print(
      String(
        format: "%@ %@: mean %.3f ms, median %.3f ms, best %.3f ms, cpu %.3f ms over %d rounds", file, op, mean,
        ms(times[rounds / 2]), ms(times[0]), cpu, rounds))
  }

  /// CPU seconds used by the whole process so far, every thread included.
  private func processCPUTime() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
  }
}
