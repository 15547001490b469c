// Runs one compiled-in handler in-process (no sockets) over a corpus and prints its calls/s:
// the handler's own cost, apart from any transport.
//
//   handler-bench <handler> <corpus> [rounds]
//
// The corpus file holds inputs as 4-byte big-endian lengths followed by the bytes.
import Examples
import Foundation
import HandlerKit

let arguments = CommandLine.arguments
guard arguments.count >= 3, let factory = ExampleHandlers.factories[arguments[1]],
  let corpus = FileManager.default.contents(atPath: arguments[2])
else {
  FileHandle.standardError.write(Data("usage: handler-bench <handler> <corpus> [rounds]\n".utf8))
  exit(64)
}
let rounds = arguments.count > 3 ? Int(arguments[3]) ?? 10 : 10
var inputs: [Request] = []
var offset = 0
let bytes = [UInt8](corpus)
while offset + 4 <= bytes.count {
  let length = bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) }
  inputs.append(Request(input: Data(bytes[(offset + 4)..<(offset + 4 + length)])))
  offset += 4 + length
}
let handler = try factory()
let context = Context()
_ = try await handler.handle(inputs[0], context: context)
// Off the main actor, as the watcher runs handlers: no executor hop per call.
let elapsed = try await Task.detached { [inputs] in
  let start = ContinuousClock.now
  for _ in 0..<rounds {
    for input in inputs { _ = try await handler.handle(input, context: context) }
  }
  return ContinuousClock.now - start
}.value
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
print("\(arguments[1]): \(rounds * inputs.count) calls in \(String(format: "%.3f", seconds)) s = \(Int(Double(rounds * inputs.count) / seconds)) calls/s")
