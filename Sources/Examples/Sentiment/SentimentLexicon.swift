/// Pattern's English sentiment lexicon as TextBlob 0.20.1 loads it (`en-sentiment.xml`, by Tom
/// De Smedt and Walter Daelemans, PDDL): per word, the senses averaged per part of speech, those
/// averages averaged (the entry plain text uses), then an adverb derived from every adjective.
struct SentimentLexicon: Sendable {
  /// Polarity, subjectivity and intensity.
  struct Score: Sendable, Equatable {
    var polarity: Double
    var subjectivity: Double
    var intensity: Double
  }

  /// A word's entry: its score for plain text (TextBlob's `None` tag) and whether it has an
  /// adverb (`RB`) sense, which makes it a modifier.
  struct Entry: Sendable, Equatable {
    var score: Score
    var isModifier: Bool
  }

  let entries: [String: Entry]

  /// Parses the lexicon XML exactly as TextBlob does.
  init(xml: String) {
    // words[form] = [(pos, [scores])], both in first-seen order (Python dicts keep it).
    var order: [String] = []
    var senses: [String: [(pos: String?, scores: [Score])]] = [:]
    for attributes in Self.wordElements(in: xml) {
      guard let form = attributes["form"], !form.isEmpty else { continue }
      let score = Score(
        polarity: Double(attributes["polarity"] ?? "0.0") ?? 0,
        subjectivity: Double(attributes["subjectivity"] ?? "0.0") ?? 0,
        intensity: Double(attributes["intensity"] ?? "1.0") ?? 1)
      if senses[form] == nil {
        order.append(form)
        senses[form] = []
      }
      let pos = attributes["pos"]
      if let index = senses[form]!.firstIndex(where: { $0.pos == pos }) {
        senses[form]![index].scores.append(score)
      } else {
        senses[form]!.append((pos, [score]))
      }
    }
    // Average the senses per part of speech, then the parts of speech.
    var tags: [String: [(pos: String?, score: Score)]] = [:]
    for form in order {
      let perTag = senses[form]!.map { (pos: $0.pos, score: Self.average($0.scores)) }
      tags[form] = perTag
    }
    var entries: [String: Entry] = [:]
    for form in order {
      let perTag = tags[form]!
      entries[form] = Entry(
        score: Self.average(perTag.map(\.score)), isModifier: perTag.contains { $0.pos == "RB" })
    }
    // TextBlob's en.Sentiment.load: "terrible" → "terribly" (overwriting the RB and plain entries).
    for form in order {
      guard let adjective = tags[form]!.first(where: { $0.pos == "JJ" })?.score else { continue }
      var stem = form
      if stem.hasSuffix("y") { stem = String(stem.dropLast()) + "i" }
      if stem.hasSuffix("le") { stem = String(stem.dropLast(2)) }
      entries[stem + "ly"] = Entry(score: adjective, isModifier: true)
    }
    self.entries = entries
  }

  /// Python's `sum(xs) / float(len(xs))` per field: left to right from 0.
  static func average(_ scores: [Score]) -> Score {
    let count = Double(scores.count)
    return Score(
      polarity: scores.reduce(0.0) { $0 + $1.polarity } / count,
      subjectivity: scores.reduce(0.0) { $0 + $1.subjectivity } / count,
      intensity: scores.reduce(0.0) { $0 + $1.intensity } / count)
  }

  /// The attributes of every `<word … />` element, in document order.
  static func wordElements(in xml: String) -> [[String: String]] {
    var elements: [[String: String]] = []
    var rest = Substring(xml)
    while let start = rest.range(of: "<word ") {
      guard let end = rest[start.upperBound...].range(of: "/>") else { break }
      elements.append(attributes(of: rest[start.upperBound..<end.lowerBound]))
      rest = rest[end.upperBound...]
    }
    return elements
  }

  private static func attributes(of text: Substring) -> [String: String] {
    var attributes: [String: String] = [:]
    var rest = text
    while let equals = rest.firstIndex(of: "=") {
      let name = rest[..<equals].trimmingCharacters(in: .whitespacesAndNewlines)
      let afterEquals = rest[rest.index(after: equals)...].drop { $0 == " " }
      guard let quote = afterEquals.first, quote == "\"" || quote == "'",
        let close = afterEquals.dropFirst().firstIndex(of: quote)
      else { break }
      attributes[name] = unescape(afterEquals[afterEquals.index(after: afterEquals.startIndex)..<close])
      rest = afterEquals[afterEquals.index(after: close)...]
    }
    return attributes
  }

  /// XML's predefined entities, as ElementTree decodes them.
  private static func unescape(_ value: Substring) -> String {
    guard value.contains("&") else { return String(value) }
    return value.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
      .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
      .replacingOccurrences(of: "&amp;", with: "&")
  }
}

import Foundation
