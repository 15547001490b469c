import Foundation
import HandlerKit
import SparkML

/// The seed's `pyspark` (PySpark + MLeap): loads the libsvm data, splits it as Spark's
/// `randomSplit([0.6, 0.4], 1234)`, runs the MLeap bundle's pipeline (a multilayer perceptron)
/// on the test split and replies `Test set accuracy = <accuracy>`, the number as Python's
/// `str(float)` writes it. The input is not used, as in the original.
///
/// Settings: `SPARK_DATA` and `SPARK_BUNDLE` (default: the seed's data file and bundle, bundled),
/// `SPARK_SPLIT` (`2`, the seed's Spark 2.4 split, default; `3` for Spark 3.0 and later).
/// Everything is checked at start; a file changed afterwards that is no longer usable is
/// `failedPrecondition`.
public struct SparkNeuralNet: Handler {
  /// Where the data and the bundle are, and which Spark's split to reproduce.
  public struct Settings: Sendable, Equatable {
    /// The libsvm data file.
    public var dataPath: String
    /// The MLeap bundle (a zip).
    public var bundlePath: String
    /// Whose `randomSplit` to reproduce.
    public var version: SparkVersion

    /// Reads `SPARK_DATA`, `SPARK_BUNDLE` and `SPARK_SPLIT`; a bad `SPARK_SPLIT` is an error.
    public init(environment: [String: String]) throws {
      dataPath = environment["SPARK_DATA"] ?? Self.bundled("sample_multiclass_classification_data", "txt")
      bundlePath = environment["SPARK_BUNDLE"] ?? Self.bundled("neural_net", "zip")
      let split = environment["SPARK_SPLIT", default: "2"]
      guard let number = Int(split), let version = SparkVersion(rawValue: number) else {
        throw HandlerError(
          .invalidArgument, "SPARK_SPLIT \"\(split.prefix(16))\" is not 2 (Spark 2.4, the seed's) or 3 (Spark 3.0 and later)")
      }
      self.version = version
    }

    private static func bundled(_ name: String, _ type: String) -> String {
      Bundle.module.path(forResource: name, ofType: type, inDirectory: "Spark") ?? "\(name).\(type)"
    }
  }

  /// Where the data and the bundle are.
  public let settings: Settings

  /// Creates the handler and computes its reply once, so that bad settings stop the start.
  public init(settings: Settings) throws {
    self.settings = settings
    _ = try reply()
  }

  /// Creates the handler from `SPARK_DATA`, `SPARK_BUNDLE` and `SPARK_SPLIT`.
  public init(environment: [String: String]) throws {
    try self.init(settings: Settings(environment: environment))
  }

  /// `Test set accuracy = <accuracy>`.
  public func handle(_ request: Request, context: Context) async throws -> Output {
    .text(try reply())
  }

  /// Loads the data and the bundle and evaluates, as the original does on every call.
  public func reply() throws(HandlerError) -> String {
    let text: String
    let zip: Data
    do {
      text = try String(contentsOfFile: settings.dataPath, encoding: .utf8)
    } catch {
      throw HandlerError(.failedPrecondition, "SPARK_DATA \(settings.dataPath) cannot be read: \(error.localizedDescription)")
    }
    do {
      zip = try Data(contentsOf: URL(fileURLWithPath: settings.bundlePath))
    } catch {
      throw HandlerError(.failedPrecondition, "SPARK_BUNDLE \(settings.bundlePath) cannot be read: \(error.localizedDescription)")
    }
    do {
      let data = try LibSVM.parse(text)
      let bundle = try MLeapBundle(zip: zip)
      let accuracy = try SparkAccuracy.testSetAccuracy(data: data, bundle: bundle, version: settings.version)
      return "Test set accuracy = \(PythonFloat.string(accuracy))"
    } catch let error as SparkDataError {
      throw HandlerError(.failedPrecondition, "SPARK_DATA \(settings.dataPath): \(error.message)")
    } catch let error as BundleError {
      throw HandlerError(.failedPrecondition, "SPARK_BUNDLE \(settings.bundlePath): \(error.message)")
    } catch {
      throw HandlerError(converting: error)
    }
  }
}
