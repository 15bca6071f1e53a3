"""Is the caller's sentence finished? A small text model of completeness, read off the words alone.

A logistic regression over ~40 hashed features of the words (the last one to three words and their word
classes, the first words, the length, a question's opening, a trailing run of digits and what it is a
number of, a list's "and"), trained on a generated grammar of voice-assistant requests against their
prefixes (training/completeness/: the grammar, the trainer, the held-out sets and their numbers). Case and
punctuation are ignored, since the recognizer punctuates whatever it hears; "427" and "four two seven" look
the same. ~20 µs a call, 280 kB of weights: it runs on every final at once, never on the critical path.

`prob_complete("set a timer for")` is near 0; `prob_complete("where is my order four two seven")` near 1.
"""

from __future__ import annotations

import math
import re
import zlib
from importlib import resources

import numpy as np

from alice_voice.compute import InferenceScheduler
from alice_voice.config import Settings

NAME = "completeness-lr"
HASH_BITS = 18
_MASK = (1 << HASH_BITS) - 1
WEIGHTS = "completeness.npz"

def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_DIGIT_WORDS = _words("zero one two three four five six seven eight nine")
_NUMBER_WORDS = _words("ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty "
                       "forty fourty fifty sixty seventy eighty ninety hundred thousand million grand")
_ORDINAL_WORDS = _words("first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
                        "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth thirtieth")
_TOKEN = re.compile(
    r"\$\d[\d,]*(?:\.\d+)?"  # money
    r"|\d{1,2}:\d{2}"  # a time: 6:30
    r"|\d{1,2}/\d{1,2}(?:/\d{2,4})?"  # a date: 3/5, 3/5/2024
    r"|\d+(?:st|nd|rd|th)\b"  # an ordinal: 5th
    r"|\d+\.\d+"  # a decimal
    r"|\d+%"  # a percentage
    r"|\d+"  # digits
    r"|[a-z]+(?:'[a-z]+)*"  # words, with their apostrophes
)
_AM_PM = re.compile(r"\b([ap])\.\s?m\b\.?")


def normalize(text: str) -> list[str]:
    """Lower case, no punctuation, numbers as classes: one `<d>` per digit (spoken or written), `<n>` for
    other number words, `<ord>`, `<time>`, `<date>`, `<money>`, `<dec>`."""
    text = _AM_PM.sub(lambda m: m.group(1) + "m", text.lower().replace("\u2019", "'").replace("\u2018", "'"))
    text = re.sub(r"(\d),(\d{3})", r"\1\2", text)
    out: list[str] = []
    for token in _TOKEN.findall(text):
        out += _classes(token)
    for i, word in enumerate(out):  # "oh" is a digit only inside a run of digits
        if word == "oh" and ((i > 0 and out[i - 1] == "<d>") or (i + 1 < len(out) and out[i + 1] == "<d>")):
            out[i] = "<d>"
    return out


def _classes(token: str) -> list[str]:
    if token[0] == "$":
        return ["<money>"]
    if not token[0].isdigit():
        return ["<d>" if token in _DIGIT_WORDS else "<n>" if token in _NUMBER_WORDS
                else "<ord>" if token in _ORDINAL_WORDS else token]
    if ":" in token:
        return ["<time>"]
    if "/" in token:
        return ["<date>"]
    if token[-1].isalpha():
        return ["<ord>"]
    if "." in token:
        return ["<dec>"]
    if token.endswith("%"):
        return ["<d>"] * (len(token) - 1) + ["percent"]
    return ["<d>"] * len(token)


_CLASSES = [
    ("ART", _words("the a an")),
    ("DET", _words("this these those my your his our their its some any every each another all several few many much")),
    ("THAT", _words("that")),
    ("HER", _words("her")),
    ("PREP", _words("to for of in on at with from by about into onto over under after before between through "
                    "during without until till near than per via around regarding towards toward across behind "
                    "inside like as")),
    ("PART", _words("up down off out back away")),
    ("CONJ", _words("and or but so because if when while although though unless whether plus then cause cuz nor")),
    ("AUX", _words("is are was were am be been being do does did have has had will would can could should shall may "
                   "might must gonna wanna gotta")),
    ("CONTR", _words("i'm you're we're they're he's she's it's that's what's there's here's where's who's how's "
                     "when's i'd you'd we'd they'd he'd she'd i'll you'll we'll they'll it'll i've you've we've "
                     "they've let's")),
    ("NEG", _words("not don't doesn't didn't can't cannot won't isn't aren't wasn't weren't haven't hasn't couldn't "
                   "wouldn't shouldn't never")),
    ("PRS", _words("i you he she we they it")),
    ("PRO", _words("me him us them myself yourself")),
    ("QW", _words("what where when who whom whose which why how")),
    ("FILL", _words("um uh uhm umm er erm hmm hm mm mmm ah eh well actually basically anyway like just")),
    ("ANS", _words("yes yeah yep yup no nope nah okay ok sure alright right correct exactly absolutely definitely "
                   "thanks please fine perfect great cool hello hi hey bye goodbye")),
    ("VT", _words("call text send play set add remind tell show find book order buy get give put turn open close "
                  "check cancel schedule make need want pay change update transfer connect take bring search "
                  "reserve dial email message write remove delete create reset track move return report file "
                  "speak talk look visit use pick drop leave ask let wake start switch enter say")),
    ("TIME", _words("am pm today tomorrow tonight yesterday morning afternoon evening night noon midnight now later "
                    "week weekend month year monday tuesday wednesday thursday friday saturday sunday")),
    ("UNIT", _words("minutes minute hours hour seconds second days day weeks dollars dollar bucks cents percent "
                    "degrees people persons pounds miles kilometers euros")),
    ("D", _words("<d>")),
    ("N", _words("<n>")),
    ("ORD", _words("<ord>")),
    ("NUMX", _words("<time> <money> <date> <dec>")),
]
_CLASS_OF: dict[str, str] = {}
for _name, _members in _CLASSES:
    for _word in _members:
        _CLASS_OF.setdefault(_word, _name)
# What a trailing digit string is a number of (the last such word before it counts).
_NUMBER_OF = {
    "phone": "PHONE", "cell": "PHONE", "mobile": "PHONE", "callback": "PHONE", "telephone": "PHONE",
    "order": "ORDER", "tracking": "ORDER", "reference": "ORDER", "confirmation": "ORDER", "ticket": "ORDER",
    "case": "ORDER", "claim": "ORDER", "invoice": "ORDER", "flight": "ORDER", "room": "ORDER",
    "code": "CODE", "pin": "CODE", "passcode": "CODE", "verification": "CODE", "password": "CODE",
    "zip": "ZIP", "postal": "ZIP", "zipcode": "ZIP",
    "card": "CARD", "credit": "CARD", "debit": "CARD",
    "account": "ACCT", "member": "ACCT", "policy": "ACCT", "social": "ACCT", "id": "ACCT", "membership": "ACCT",
    "digits": "LAST4", "last": "LAST4",
    "extension": "EXT", "ext": "EXT",
    "address": "ADDR", "live": "ADDR", "street": "ADDR",
}
_QUESTION_OPENERS = _words("what where when who whom whose which why how is are was were do does did can could will "
                           "would should shall may might have has what's where's when's who's how's isn't aren't "
                           "don't doesn't didn't can't won't")


def _length_bucket(n: int) -> str:
    return str(n) if n <= 4 else "5-6" if n <= 6 else "7-9" if n <= 9 else "10+"


def features(tokens: list[str]) -> list[str]:
    """The named features of a normalized utterance."""
    n = len(tokens)
    if n == 0:
        return ["EMPTY"]
    cls = [_CLASS_OF.get(w, "W") for w in tokens]
    w1, c1 = tokens[-1], cls[-1]
    w2, c2 = (tokens[-2], cls[-2]) if n > 1 else ("^", "^")
    w3, c3 = (tokens[-3], cls[-3]) if n > 2 else ("^", "^")
    f1, f2 = tokens[0], tokens[1] if n > 1 else "$"
    length = _length_bucket(n)
    q = "Q" if f1 in _QUESTION_OPENERS else "QF" if n > 1 and f2 in _QUESTION_OPENERS and cls[0] in (
        "FILL", "ANS", "CONJ") else "S"
    out = ["b", f"w1={w1}", f"c1={c1}", f"w21={w2}_{w1}", f"c21={c2}_{c1}", f"c2w1={c2}_{w1}", f"w2c1={w2}_{c1}",
           f"w321={w3}_{w2}_{w1}", f"c321={c3}_{c2}_{c1}", f"c3w21={c3}_{w2}_{w1}", f"f1={f1}", f"f12={f1}_{f2}",
           f"f1c1={f1}_{c1}", f"f1w1={f1}_{w1}", f"len={length}", f"lenc1={length}_{c1}", f"q={q}", f"qc1={q}_{c1}",
           f"qw1={q}_{w1}", f"qc21={q}_{c2}_{c1}"]
    if n == 1:
        out.append(f"only={w1}")
    elif n == 2:
        out.append(f"only2={f1}_{w1}")
    out += _digit_run(tokens, q, f1)
    if "<d>" in tokens[:-1] or "<n>" in tokens:
        out.append(f"hasnum_c1={c1}")
    if "and" in tokens[:-1]:
        last_and = n - 1 - tokens[::-1].index("and", 1)
        out += [f"and_c1={c1}", f"and_dist={min(n - 1 - last_and, 4)}"]
    if c1 == "VT":
        out.append(f"vt_end_prev={c2}")
    if n > 2:
        out.append(f"f12c1={f1}_{f2}_{c1}")
    return out


def _digit_run(tokens: list[str], q: str, f1: str) -> list[str]:
    """A trailing digit string: how long, after what, and what it is a number of."""
    i = len(tokens) - 1
    while i >= 0 and tokens[i] == "<d>":
        i -= 1
    run = len(tokens) - 1 - i
    if not run:
        return ["dr=0"]
    before, before2 = (tokens[i] if i >= 0 else "^"), (tokens[i - 1] if i >= 1 else "^")
    of = "NONE"
    for word in tokens[:i + 1]:
        of = _NUMBER_OF.get(word, of)
    r = str(min(run, 12))
    out = [f"dr={r}", f"drctx={of}_{r}", f"drq={q}_{r}", f"drb={before}_{r}", f"drbb={before2}_{before}_{r}",
           f"drbctx={of}_{before}", f"drf1={f1}_{r}"]
    return [*out, f"drctxge2={of}"] if run >= 2 else out


def feature_ids(text: str) -> list[int]:
    """The hashed feature indices of `text` (what the weights are looked up by)."""
    return [zlib.crc32(f.encode()) & _MASK for f in features(normalize(text))]


class CompletenessModel:
    """P(the utterance is finished) from its words."""

    name = NAME

    def __init__(self, weights: np.ndarray, bias: float) -> None:
        if len(weights) != 1 << HASH_BITS:
            raise ValueError(f"need {1 << HASH_BITS} weights, got {len(weights)}")
        self._weights: list[float] = weights.astype(np.float32).tolist()  # ~40 look-ups a call: faster than numpy
        self._bias = bias

    def logit(self, text: str) -> float:
        weights = self._weights
        return self._bias + sum(weights[i] for i in feature_ids(text))

    def prob_complete(self, text: str) -> float:
        z = self.logit(text)
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def load_weights(path: str | None = None) -> CompletenessModel:
    """The weights shipped with the package (speech/data/completeness.npz), or those at `path`."""
    source = path or str(resources.files("alice_voice.speech") / "data" / WEIGHTS)
    with np.load(source) as data:
        if int(data["hash_bits"]) != HASH_BITS:
            raise ValueError(f"{source}: weights of {int(data['hash_bits'])}-bit features, not {HASH_BITS}")
        return CompletenessModel(data["weights"], float(data["bias"]))


def load(settings: Settings, compute: InferenceScheduler | None = None) -> CompletenessModel:
    return load_weights()
