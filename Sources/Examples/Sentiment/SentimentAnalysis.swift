import Foundation
import HandlerKit

/// The seed's `sentiment-analysis`: TextBlob 0.20.1's default sentiment (Pattern's analyzer),
/// replying `Sentiment(polarity=<p>, <s>) \n` byte for byte as the Python original.
public struct SentimentAnalysis: Handler {
  /// A polarity and a subjectivity, as TextBlob computes them.
  public struct Sentiment: Sendable, Equatable {
    /// From -1 (negative) to 1 (positive).
    public var polarity: Double
    /// From 0 (objective) to 1 (subjective).
    public var subjectivity: Double

    /// Creates a score.
    public init(polarity: Double, subjectivity: Double) {
      self.polarity = polarity
      self.subjectivity = subjectivity
    }
  }

  private let lexicon: SentimentLexicon

  /// Loads the lexicon shipped with the examples (`en-sentiment.xml`, PDDL).
  public init() throws {
    guard let url = Bundle.module.url(forResource: "en-sentiment", withExtension: "xml"),
      let data = FileManager.default.contents(atPath: url.path)
    else {
      throw HandlerError(.internalError, "the sentiment lexicon en-sentiment.xml is missing from the resources")
    }
    lexicon = SentimentLexicon(xml: String(decoding: data, as: UTF8.self))
  }

  /// Scores the input text; input that is not UTF-8 is refused, as `input.decode('utf-8')` did.
  public func handle(_ request: Request, context: Context) async throws -> Output {
    let score = sentiment(of: try request.requireText())
    return .text("Sentiment(polarity=\(score.polarity), \(score.subjectivity)) \n")
  }

  /// TextBlob's `(polarity, subjectivity)` for `text`.
  public func sentiment(of text: String) -> Sentiment {
    let assessments = assess(PatternTokenizer.words(text))
    let count = Double(assessments.isEmpty ? 1 : assessments.count)
    return Sentiment(
      polarity: assessments.reduce(0.0) { $0 + $1.polarity } / count,
      subjectivity: assessments.reduce(0.0) { $0 + $1.subjectivity } / count)
  }

  private struct Assessment {
    var polarity: Double
    var subjectivity: Double
    var intensity: Double
    var negated: Bool
  }

  private static func isNegation(_ word: String) -> Bool {
    switch word {
    case "no", "not", "n't", "never": true
    default: false
    }
  }

  /// Pattern's `Sentiment.assessments` for plain text (no part-of-speech tags).
  private func assess(_ words: [String]) -> [(polarity: Double, subjectivity: Double)] {
    var assessments: [Assessment] = []
    var modifier: String?
    var negation: String?
    func clamp(_ value: Double) -> Double { max(-1.0, min(value, 1.0)) }
    for word in words {
      if let entry = lexicon.entries[word] {
        let score = entry.score
        if modifier == nil {
          assessments.append(
            Assessment(polarity: score.polarity, subjectivity: score.subjectivity, intensity: score.intensity, negated: false))
        } else {
          let last = assessments.count - 1
          assessments[last].polarity = clamp(score.polarity * assessments[last].intensity)
          assessments[last].subjectivity = clamp(score.subjectivity * assessments[last].intensity)
          assessments[last].intensity = score.intensity
        }
        if negation != nil {
          let last = assessments.count - 1
          assessments[last].intensity = 1.0 / assessments[last].intensity
          assessments[last].negated = true
        }
        modifier = nil
        negation = nil
        if entry.isModifier { modifier = word }
        if Self.isNegation(word) { negation = word }
      } else {
        if Self.isNegation(word) {
          negation = word
        } else if negation != nil && !(negation!.isEmpty) && word.trimmingApostrophes().unicodeScalars.count > 1 {
          negation = nil
        }
        if negation != nil, let current = modifier, current.hasSuffix("ly") {
          assessments[assessments.count - 1].negated = true
          negation = nil
        } else if let current = modifier, !current.isEmpty, word.unicodeScalars.count > 2 {
          modifier = nil
        }
        if word == "!", !assessments.isEmpty {
          assessments[assessments.count - 1].polarity = clamp(assessments[assessments.count - 1].polarity * 1.25)
        }
        if word == "(!)" {
          assessments.append(Assessment(polarity: 0.0, subjectivity: 1.0, intensity: 1.0, negated: false))
        }
        if !word.isPythonAlpha, word.unicodeScalars.count <= 5, !PatternTokenizer.punctuationSubstrings.contains(word),
          let polarity = Emoticons.polarity(of: word)
        {
          assessments.append(Assessment(polarity: polarity, subjectivity: 1.0, intensity: 1.0, negated: false))
        }
      }
    }
    return assessments.map { ($0.negated ? $0.polarity * -0.5 : $0.polarity, $0.subjectivity) }
  }
}

extension String {
  /// Python's `str.strip("'")`.
  fileprivate func trimmingApostrophes() -> Substring {
    let scalars = unicodeScalars
    let start = scalars.firstIndex { $0 != "'" } ?? scalars.endIndex
    let end = scalars.lastIndex { $0 != "'" }.map { scalars.index(after: $0) } ?? start
    return Substring(scalars[start..<max(start, end)])
  }

  /// Python's `str.isalpha()`: not empty, every character a letter (Lu, Ll, Lt, Lm, Lo).
  fileprivate var isPythonAlpha: Bool {
    !isEmpty
      && unicodeScalars.allSatisfy { scalar in
        if scalar.isASCII {
          return ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar)
        }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
      }
  }
}
