"""Final-answer extraction and equivalence for chain-of-thought outputs.

`extract_answer` pulls the final answer out of a model's output, `normalize_answer`
gives a light canonical form for display and cheap equality, and `is_equivalent`
decides whether a predicted answer means the same as a reference. The symbolic part
is math-verify; cheap exact paths run first because most answers are plain numbers,
choice letters or words, and sympy is slow and occasionally pathological.

`reference_steps` lists the results a reference solution computes and `steps_reached`
which of them a CoT writes down (by the same equivalence), for the offline ``steps`` judge.
"""

from __future__ import annotations

import logging
import re
import threading
from fractions import Fraction

__all__ = ["extract_answer", "normalize_answer", "is_equivalent", "numbers_in", "reference_steps", "steps_reached"]

# Beyond this, answers are compared as normalized strings only: real final answers are
# short, and sympy time grows badly with input size.
MAX_SYMBOLIC_CHARS = 1000
# Only bounds math-verify when we are on the main thread (see _math_verify_equal).
_MAIN_THREAD_TIMEOUT_S = 3
# Looking at every \boxed of a pathological input would be quadratic.
_MAX_BOXED_TRIES = 20

# ---------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------

_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_GSM8K_RE = re.compile(r"####[ \t]*([^\n]*)")
_ANSWER_RE = re.compile(
    r"(?i)\b(?:"
    r"(?:final\s+)?answer[ \t]*(?:\*\*)?[ \t]*(?:is\b[ \t]*:?|[:：])"
    # a markdown heading "**Final Answer**" with the answer on the next line
    r"|final\s+answer[ \t]*(?:\*\*)?[ \t]*(?=\n)"
    r")[ \t]*(?:\*\*)?[ \t]*:?\s*(?P<ans>[^\n]+)"
)
# The minus must not follow a word character, so "5-3" yields 5 and 3, not -3.
_NUMBER_TOKEN_RE = re.compile(
    r"(?<![\w.])-?\\[dt]?frac\{-?\d+\}\{-?\d+\}"
    r"|(?<![\w.])-?(?:\d{1,3}(?:,\d{3}(?!\d))+|\d+)(?:\.\d+)?(?:/\d+(?:\.\d+)?)?%?"
    r"|(?<![\w.])-?\.\d+%?"
)
_SENTENCE_END_RE = re.compile(r"\.(?:\s|$)")


def _matching_brace(text: str, open_idx: int) -> int | None:
    """Index of the `}` closing the `{` at open_idx; escaped braces don't count."""
    depth = 0
    i, n = open_idx, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _strip_outer_braces(s: str) -> str:
    while s.startswith("{") and _matching_brace(s, 0) == len(s) - 1:
        s = s[1:-1].strip()
    return s


def _clean(ans: str) -> str:
    prev = None
    while ans != prev:
        prev = ans
        ans = _strip_outer_braces(ans.strip().strip("$").strip())
        if ans.startswith("**") or ans.endswith("**"):
            ans = ans.strip("*").strip()
        if ans.endswith(".") and not ans.endswith(".."):
            ans = ans[:-1]
    return ans


def _last_boxed(text: str) -> str | None:
    starts = [m.end() - 1 for m in _BOXED_RE.finditer(text)]
    # Truncated outputs often end in an unclosed \boxed{; fall back to an earlier one.
    for open_idx in reversed(starts[-_MAX_BOXED_TRIES:]):
        close = _matching_brace(text, open_idx)
        if close is not None:
            content = _clean(text[open_idx + 1 : close])
            if content:
                return content
    return None


def extract_answer(text: str, *, lenient: bool = False) -> str | None:
    """The explicit final answer in a model's output, or None when there is none.

    Priority: the last \\boxed{...}/\\fbox{...}; the last GSM8K `#### x`; the last
    "Answer: x" / "The (final) answer is x". Only with `lenient`, the last number in the
    text — it reads "…3*4 = 12. Then we subtract" as 12 and an echo of the question's
    numbers as an answer, so scoring never uses it; it is for reading reference
    solutions that state their result without an answer line.
    """
    if not isinstance(text, str) or not text.strip():
        return None

    boxed = _last_boxed(text)
    if boxed:
        return boxed

    for m in reversed(list(_GSM8K_RE.finditer(text))):
        ans = _clean(m.group(1))
        if ans:
            return ans

    for m in reversed(list(_ANSWER_RE.finditer(text))):
        # "The answer is 42. That is because ..." -> 42; decimals survive as "4.2" has
        # no whitespace after the dot.
        ans = _clean(_SENTENCE_END_RE.split(m.group("ans"), maxsplit=1)[0])
        if ans:
            return ans

    if not lenient:
        return None
    numbers = _NUMBER_TOKEN_RE.findall(text)
    if numbers:
        return numbers[-1].replace(",", "")
    return None


# ---------------------------------------------------------------------------
# Normalization
# ---------------------------------------------------------------------------

_NUM = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+"
_TEXT_CMD_RE = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_DEGREE_RE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree")
_SPACING_RE = re.compile(r"\\[,;:!]|\\quad|\\qquad|~")
# Single letters are excluded from generic units because they are usually variables
# ("2 x"); a few case-sensitive unit abbreviations may follow a number directly.
_ATTACHED_UNITS = (
    r"(?-i:cm|mm|km|m|kg|mg|g|lbs?|ft|in|mi|mph|kph|km/h|m/s|ml|mL|L|s|sec|min|hrs?|h"
    r"|cm\^?\{?[23]\}?|m\^?\{?[23]\}?)"
)
_MATH_WORDS = r"(?:pi|sqrt|ln|log|sin|cos|tan|sec|csc|cot|exp|mod|i)"
_NUMBER_WITH_UNIT_RE = re.compile(
    rf"^(?P<cur>[€£¥₹])?\s*(?P<num>{_NUM})\s*(?P<pct>%|percent\b)?"
    rf"(?:\s*{_ATTACHED_UNITS}"
    rf"|\s+(?!{_MATH_WORDS}\b)[A-Za-z]{{2,}}(?:[ \t/.]+[A-Za-z]+|\^\{{?[23]\}}?)*)?\.?$",
    re.IGNORECASE,
)


def _strip_wrapper(s: str, command: str) -> str:
    """Unwrap `\\command{...}` when it spans the whole string."""
    m = re.match(rf"\\{command}\s*\{{", s)
    if m and _matching_brace(s, m.end() - 1) == len(s) - 1:
        return s[m.end() : -1]
    return s


def normalize_answer(s: str) -> str:
    """A light canonical form of an answer, for display and cheap equality."""
    if s is None:
        return ""
    s = str(s).strip()
    for cmd in ("boxed", "fbox"):
        s = _strip_wrapper(s, cmd)
    s = _strip_outer_braces(s)
    s = s.replace("\\$", "").replace("$", "")
    s = s.replace("\\left", "").replace("\\right", "").replace("\\displaystyle", "")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = s.replace("\\%", "%")
    s = _DEGREE_RE.sub("", s)
    s = _SPACING_RE.sub(" ", s)
    # \text{...} wraps either units ("12\text{ cm}") or a textual answer ("\text{(B)}");
    # unwrapping keeps the words, and the unit rule below drops them after a number.
    for _ in range(3):
        s2 = _TEXT_CMD_RE.sub(r"\1", s)
        if s2 == s:
            break
        s = s2
    s = re.sub(r"\s+", " ", s).strip()
    if s.startswith("**") and s.endswith("**") and len(s) > 4:
        s = s[2:-2].strip()
    s = s.rstrip(".").strip() if not s.endswith("..") else s

    m = _NUMBER_WITH_UNIT_RE.match(s)
    if m:
        s = m.group("num").replace(",", "") + ("%" if m.group("pct") else "")
    return s


# ---------------------------------------------------------------------------
# Equivalence
# ---------------------------------------------------------------------------

_CHOICE_RE = re.compile(
    r"^(?:(?:option|choice|answer)\s*:?\s*)?\(?\s*([A-J])\s*\)?\s*[.:]?$"
    # "(B) 12" / "B) 12": a letter followed by the option's text
    r"|^\(?([A-J])\)\s+\S.*$",
    re.IGNORECASE | re.DOTALL,
)
_PLAIN_NUMBER_RE = re.compile(rf"^(?:{_NUM}|[-+]?\d+(?:\.\d+)?[eE][-+]?\d{{1,3}})%?$")
_SLASH_FRACTION_RE = re.compile(r"^([-+]?\d+)\s*/\s*([-+]?\d+)$")
_LATEX_FRACTION_RE = re.compile(r"^([-+]?)\\frac\s*\{\s*([-+]?\d+)\s*\}\s*\{\s*([-+]?\d+)\s*\}$")
_WORDS_RE = re.compile(r"^[A-Za-z][A-Za-z '\-]*$")
# Inputs sympy would evaluate into astronomically large numbers, or slowly evaluate
# (sums, integrals): with no timeout on worker threads these could hang the caller.
_RISKY_RE = re.compile(
    r"(?:\^|\*\*)\s*[{(]?\s*[-+]?\d{4,}"  # x^{1000000}
    r"|(?:\^|\*\*)\s*[{(]?[^{}()]{0,30}?(?:\^|\*\*)"  # power towers 2^{2^{100}}
    r"|[)}]\s*(?:\^|\*\*)\s*[{(]?\s*\d{3,}"  # (10^{99})^{999}
    r"|\d{4,}\s*!"  # 100000!
    r"|\\(?:sum|prod|int|lim|iint|oint)"
)


def _choice(s: str) -> str | None:
    m = _CHOICE_RE.match(s)
    if not m:
        return None
    return (m.group(1) or m.group(2)).upper()


def _number(s: str) -> tuple[Fraction, bool, str] | None:
    """(value, is_percent, kind) for a plain number; kind is int, dec or frac."""
    pct = s.endswith("%")
    body = s[:-1].strip() if pct else s
    if _PLAIN_NUMBER_RE.match(body):
        kind = "dec" if ("." in body or "e" in body.lower()) else "int"
        return Fraction(body.replace(",", "")), pct, kind
    m = _SLASH_FRACTION_RE.match(body)
    if m:
        num, den = int(m.group(1)), int(m.group(2))
        return (Fraction(num, den), pct, "frac") if den else None
    m = _LATEX_FRACTION_RE.match(body)
    if m:
        num, den = int(m.group(2)), int(m.group(3))
        if not den:
            return None
        value = Fraction(num, den)
        return (-value if m.group(1) == "-" else value), pct, "frac"
    return None


def _close(a: Fraction, b: Fraction, kind_a: str, kind_b: str) -> bool:
    if a == b:
        return True
    # A decimal may stand for a fraction without a finite expansion (0.333333 for 1/3),
    # at math-verify's default 6-digit precision; two decimals must agree exactly.
    if {kind_a, kind_b} == {"dec", "frac"}:
        return abs(a - b) <= Fraction(1, 10**6) * max(1, abs(b))
    return False


def _numbers_equal(p: tuple[Fraction, bool, str], r: tuple[Fraction, bool, str]) -> bool:
    (pv, pp, pk), (rv, rp, rk) = p, r
    # Percent decision: "25%" equals both "25" (the number the question asked for,
    # with its sign) and "0.25" (its value), as math-verify also does. The /100 reading
    # applies only against a non-percent answer, so "25%" != "0.25%".
    if pp == rp:
        return _close(pv, rv, pk, rk)
    if pp:
        return _close(pv, rv, pk, rk) or _close(pv / 100, rv, "dec", rk)
    return _close(pv, rv, pk, rk) or _close(pv, rv / 100, pk, "dec")


class _NoDisabledTimeoutWarning(logging.Filter):
    # Disabling the timeout is deliberate (see below); math-verify warns about it.
    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


_QUIET = _NoDisabledTimeoutWarning()


def _math_verify_equal(pred: str, ref: str) -> bool:
    # Deferred: math-verify (sympy, antlr) is slow to import and only needed here.
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify
    from math_verify.errors import TimeoutException

    # math-verify's timeouts are signal.alarm based: they raise when used off the main
    # thread, so there we disable them and rely on the length cap and _RISKY_RE.
    for name in ("math_verify.parser", "math_verify.grader"):
        logging.getLogger(name).addFilter(_QUIET)

    on_main = threading.current_thread() is threading.main_thread()
    timeout = _MAIN_THREAD_TIMEOUT_S if on_main else None
    config = [LatexExtractionConfig(), ExprExtractionConfig()]

    def as_latex(s: str) -> str:
        # Bare "%" starts a LaTeX comment; math-verify's regexes expect "\%" inside $...$.
        return "$" + re.sub(r"(?<!\\)%", r"\\%", s) + "$"

    try:
        gold = parse(as_latex(ref), extraction_config=config, parsing_timeout=timeout)
        if not gold:
            return False
        target = parse(as_latex(pred), extraction_config=config, parsing_timeout=timeout)
        if not target:
            return False
        # verify is asymmetric (assignments, equations): the reference goes first.
        return bool(verify(gold, target, timeout_seconds=timeout))
    except (Exception, TimeoutException):
        return False


def _is_equivalent(predicted: str, reference: str) -> bool:
    if not isinstance(predicted, str) or not isinstance(reference, str):
        return False
    if not predicted.strip() or not reference.strip():
        return False

    p, r = normalize_answer(predicted), normalize_answer(reference)
    if not p or not r:
        return False
    if p == r or p.replace(" ", "") == r.replace(" ", ""):
        return True
    if len(p) > MAX_SYMBOLIC_CHARS or len(r) > MAX_SYMBOLIC_CHARS:
        return False

    ref_choice = _choice(r)
    if ref_choice is not None:
        return _choice(p) == ref_choice

    pn, rn = _number(p), _number(r)
    if pn is not None and rn is not None:
        return _numbers_equal(pn, rn)

    # Word answers ("Yes", "New York"): math-verify would read them as products of
    # single-letter symbols, which commute, so compare them as text.
    if _WORDS_RE.match(r) and re.search(r"[A-Za-z]{3}", r):
        return p.casefold() == r.casefold()

    if _RISKY_RE.search(p) or _RISKY_RE.search(r):
        return False
    return _math_verify_equal(p, r)


def is_equivalent(predicted: str | None, reference: str) -> bool:
    """True when `predicted` means the same answer as `reference`; never raises."""
    try:
        return _is_equivalent(predicted, reference)
    except Exception:
        return False


# ---------------------------------------------------------------------------
# Reference steps (for the offline ``steps`` judge)
# ---------------------------------------------------------------------------

# A computed result is the number right after "=" (or "≡", a residue); it may be followed
# by units or words ("= 49 trading cards", "= 7/90 of the tank", "= 10°") but not by more
# arithmetic ("= 3 × 16", "= 8!", "= 2x"), which is a rewriting, not a result.
_RESULT_SIGN_RE = re.compile(r"[=≡]")
_RESULT_LEAD_RE = re.compile(r"\s*(?:\\?\$\s*)?")
_NOT_A_RESULT_RE = re.compile(
    r"[ \t]*(?:[-+−×*·÷/^!]|\\(?:times|cdot|div|pm|frac|dfrac|sqrt)\b)"
    r"|[(\w]"  # attached: "2(3)", "2x"
)


def numbers_in(text: str | None) -> list[str]:
    """Every number written in `text` (integers, decimals, fractions, percents, \\frac)."""
    return _NUMBER_TOKEN_RE.findall(text or "")


def reference_steps(solution: str | None, answer: str, question: str = "") -> list[str]:
    """The results a reference solution computes, in order and distinct by value, ending
    with the final answer.

    A step is the number right after an "=" or "≡" (see `_NOT_A_RESULT_RE` for what is
    left out). Values the question already gives are not steps (restating the question
    would reach them), and a value equal to the final answer is the last step once, however
    often it is written (the "= 79" before "\\boxed{79}"). A solution with no computed
    results, or none at all, has the final answer as its only step.
    """
    given = numbers_in(question)
    steps: list[str] = []
    text = solution or ""
    for m in _RESULT_SIGN_RE.finditer(text):
        start = _RESULT_LEAD_RE.match(text, m.end()).end()
        num = _NUMBER_TOKEN_RE.match(text, start)
        if not num or _NOT_A_RESULT_RE.match(text, num.end()):
            continue
        value = num.group().replace(",", "")
        if not any(is_equivalent(value, s) for s in [answer, *steps, *given]):
            steps.append(value)
    return steps + [answer]


def steps_reached(steps: list[str], text: str | None) -> list[bool]:
    """For each step, whether some number in `text` is equivalent to it (29.4 for "29.40",
    0.75 for "3/4")."""
    found = set(numbers_in(text))
    return [any(is_equivalent(n, s) for n in found) for s in steps]
