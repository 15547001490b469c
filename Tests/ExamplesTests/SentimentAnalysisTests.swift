import Examples
import Foundation
import HandlerKit
import Testing

/// Spot checks without TextBlob (which the end-to-end test runs over hundreds of sentences).
@Suite("sentiment-analysis")
struct SentimentAnalysisTests {
  let analysis: SentimentAnalysis

  init() throws { analysis = try SentimentAnalysis() }

  @Test func theSeedsExample() async throws {
    let output = try await analysis.handle(Request("Have a nice day\n"), context: Context())
    #expect(output.text == "Sentiment(polarity=0.6, 1.0) \n")
  }

  @Test func negationModifiersAndExclamations() {
    #expect(analysis.sentiment(of: "not good") == .init(polarity: -0.35, subjectivity: 0.6000000000000001))
    #expect(analysis.sentiment(of: "very good!") == .init(polarity: 1.0, subjectivity: 0.7800000000000001))
    #expect(analysis.sentiment(of: "") == .init(polarity: 0.0, subjectivity: 0.0))
    #expect(analysis.sentiment(of: "I love it <3").polarity > 0.5)
  }

  @Test func binaryInputIsRefused() async {
    let error = await #expect(throws: HandlerError.self) {
      _ = try await analysis.handle(Request(input: Data([0x67, 0xFF])), context: Context())
    }
    #expect(error?.code == .invalidArgument)
  }
}
