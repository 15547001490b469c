"""The `sentiment-analysis` example against TextBlob 0.20.1 itself (CPython 3.11), on sentences
generated here: every reply must be the original's byte for byte, floats included."""

import random
import sys

import grpc
import pytest
from textblob import TextBlob

from conftest import REPO


def original(text):
    blob = TextBlob(text)
    return "Sentiment(polarity={}, {}) \n".format(blob.polarity, blob.subjectivity)


def lexicon_words():
    import re
    xml = (REPO / "Sources" / "Examples" / "Sentiment" / "en-sentiment.xml").read_text()
    return sorted(set(re.findall(r'form="([^"]+)"', xml)))


def generated_sentences():
    rng = random.Random(2026)
    known = lexicon_words()
    modifiers = ["very", "really", "extremely", "quite", "so", "too", "incredibly", "terribly", "pretty", "most",
                 "slightly", "hardly", "simply", "happily", "utterly"]
    negations = ["not", "no", "never", "n't", "don't", "isn't", "wasn't", "DON'T", "Not", "NEVER", "didn't", "won't"]
    unknown = ["the", "a", "movie", "food", "it", "is", "was", "I", "you", "day", "service", "x", "an", "of", "to",
               "and", "but", "Seoul", "phone", "2024", "3.5", "e-mail", "co-op", "날씨", "좋은", "영화", "東京", "ß",
               "İstanbul", "naïve", "café", "ΣΟΦΟΣ", "x'", "'s", "it's", "I'm", "we'll", "they're", "I'd", "we've"]
    punctuation = ["!", "!!", "!!!", "?", "?!", ".", "...", ",", ";", ":", "(!)", "( ! )", "(", ")", "-", "—", "\"",
                   "“", "”", "‘", "’", "'", "..", "....", "#", "@", "&", "*"]
    emoticons = [":)", ":-)", ":(", ":-(", "<3", "♥", ":D", ":-D", "xD", "XD", ";)", ":P", ":p", ":/", ":'(", "=)",
                 ">:(", ":-O", ":o", "8-)", "o_O", ":3", ":S", "=/", ":]", ":{", ":>", ";D"]
    abbreviations = ["Mr.", "e.g.", "i.e.", "U.S.", "etc.", "T.", "Dr.", "St.", "Mrs.", "vs.", "a.m.", "Med."]
    separators = [" ", " ", " ", "  ", "\n", "\t", "\n\n", "\r\n", "\u00a0", "\u3000", " \n \n "]
    fixed = ["Have a nice day\n", "", " ", "\n\n", "!", "not", "very", "good", "not good", "not very good",
             "very not good", "not a good movie", "It is not bad at all", "I don't like it", "I DON'T like it",
             "This is really really good!!!", "(!)", "Great (!)", "Bad :(", "<3 <3 <3", "good... bad... ugly...",
             "Mr. Smith is happy. Mrs. Jones is sad.", "The U.S. economy is strong", "happily ever after",
             "terribly good", "good\n\nbad", "good\r\n\r\nbad", "“Great” movie", "'Great' movie", "It's awful!",
             "NOT GOOD", "Not Good!", "never ever happy", "no", "no way", "This is the best day of my life!",
             "Wow:) ok", "ok :)", "ok : )", "ok :-)", "I love it <3", "bad!!!!!!!!", "x" * 300, "good " * 500]
    sentences = list(fixed)
    for _ in range(400):
        parts = []
        for _ in range(rng.randint(1, 22)):
            roll = rng.random()
            if roll < 0.30:
                word = rng.choice(known)
            elif roll < 0.42:
                word = rng.choice(modifiers)
            elif roll < 0.50:
                word = rng.choice(negations)
            elif roll < 0.70:
                word = rng.choice(unknown)
            elif roll < 0.85:
                word = rng.choice(punctuation)
            elif roll < 0.93:
                word = rng.choice(emoticons)
            else:
                word = rng.choice(abbreviations)
            if rng.random() < 0.1:
                word = word.upper()
            elif rng.random() < 0.1:
                word = word.capitalize()
            parts.append(word)
            parts.append(rng.choice(separators) if rng.random() < 0.8 else "")
        sentences.append("".join(parts))
    return sentences


def test_every_reply_is_textblobs_byte_for_byte(start_watcher, pb):
    assert sys.version_info[:2] == (3, 11), "TextBlob's float sums differ from Python 3.12 on"
    sentences = generated_sentences()
    watcher = start_watcher(env={"HANDLER_NAME": "sentiment-analysis"})
    mismatches = []
    with grpc.insecure_channel(f"127.0.0.1:{watcher.port}") as channel:
        stub = pb.services.FxWatcherStub(channel)
        for text in sentences:
            reply = stub.Call(pb.messages.Request(input=text.encode()), timeout=10).Output
            expected = original(text)
            if reply != expected:
                mismatches.append((text, reply, expected))
    assert not mismatches, f"{len(mismatches)} of {len(sentences)} differ, e.g. {mismatches[:4]}"


def test_input_that_is_not_utf8_is_invalid_argument(start_watcher, call):
    watcher = start_watcher(env={"HANDLER_NAME": "sentiment-analysis"})
    with pytest.raises(grpc.RpcError) as raised:
        call(watcher.port, b"good \xff day")
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert call(watcher.port, b"Have a nice day\n").Output == "Sentiment(polarity=0.6, 1.0) \n"
