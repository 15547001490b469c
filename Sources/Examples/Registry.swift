import Foundation
import HandlerKit

/// The example handlers, by the names `HANDLER_NAME` uses (the seed's function names).
public enum ExampleHandlers {
  /// The handler served when `HANDLER_NAME` is unset.
  public static let defaultName = "echo"

  /// Every example, by name; each factory runs once, for the chosen handler only.
  public static let factories: [String: @Sendable () throws -> any Handler] = [
    "echo": { Echo() },
    "sleep": { Sleep() },
    "fail": { Fail() },
    "relay": { Relay() },
    "unmarshalling": { Unmarshalling() },
    "sentiment-analysis": { try SentimentAnalysis() },
    "crawler": { Crawler(settings: try Crawler.Settings(environment: ProcessInfo.processInfo.environment)) },
    "imgprocessing": { try ImageProcessing(environment: ProcessInfo.processInfo.environment) },
    "pyspark": { try SparkNeuralNet(environment: ProcessInfo.processInfo.environment) },
  ]
}
