#!/usr/bin/env python3
"""Generate tailor's bundled math problem set, data/problems.jsonl.

Every problem comes from a template whose answer is computed (Python ints and
fractions.Fraction), so every answer is right by construction. The output is
byte-for-byte reproducible: fixed seeds, fixed key order, UTF-8, "\\n" line endings.

    python data/generate.py          # rewrite data/problems.jsonl, print the split table
    python data/generate.py --check  # exit 1 if data/problems.jsonl is not up to date

Standard library only (Python 3.11+).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

SEED = "tailor-bundled-problems-v1"
OUT = Path(__file__).resolve().parent / "problems.jsonl"

CATEGORIES = (
    "arithmetic",
    "fractions_percentages",
    "algebra",
    "number_theory",
    "counting_probability",
    "geometry",
)
SECTIONS = ("main", "speed")
PER_CATEGORY = {"main": 80, "speed": 20}
# Splits are assigned in blocks of 10 problems: 6 train, 1 valid, 2 test, 1 placement.
SPLIT_BLOCK = (("train", 6), ("valid", 1), ("test", 2), ("placement", 1))
SPLITS = tuple(name for name, _ in SPLIT_BLOCK)
KEYS = ("question", "answer", "solution", "category", "section", "difficulty", "split")

NAMES = (
    "Ava", "Ben", "Carla", "Dev", "Elena", "Farid", "Grace", "Hiro", "Imani", "Jonas",
    "Kira", "Liam", "Maya", "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sam", "Tariq",
    "Uma", "Victor", "Wen", "Yusuf", "Zoe",
)  # fmt: skip


# --------------------------------------------------------------------------- helpers


@dataclass
class Problem:
    question: str
    answer: str
    solution: str
    difficulty: int


def fmt(x: int | Fraction) -> str:
    """Canonical answer string: "42", "-7", "3/4", "-3/4"."""
    assert isinstance(x, (int, Fraction)) and not isinstance(x, bool), x
    x = Fraction(x)
    if x.denominator == 1:
        return str(x.numerator)
    return f"{x.numerator}/{x.denominator}"


def tex(x: int | Fraction) -> str:
    """The same value as LaTeX for \\boxed{}: "42", "\\frac{3}{4}", "-\\frac{3}{4}"."""
    x = Fraction(x)
    if x.denominator == 1:
        return str(x.numerator)
    sign = "-" if x < 0 else ""
    return f"{sign}\\frac{{{abs(x.numerator)}}}{{{x.denominator}}}"


def money_answer(cents: int) -> str:
    """Dollars as a short exact decimal: 1250 -> "12.5", 1205 -> "12.05", 1200 -> "12"."""
    assert isinstance(cents, int) and cents >= 0, cents
    whole, rest = divmod(cents, 100)
    return str(whole) if rest == 0 else f"{whole}.{rest:02d}".rstrip("0")


def dollars(cents: int | Fraction) -> str:
    """Dollars for display in text: "$12.50", "$12"."""
    cents = Fraction(cents)
    assert cents.denominator == 1 and cents >= 0, cents
    whole, rest = divmod(int(cents), 100)
    return f"${whole}" if rest == 0 else f"${whole}.{rest:02d}"


def done(question: str, steps: list[str], value: int | Fraction | None = None, *, cents: int | None = None) -> Problem:
    if cents is not None:
        assert value is None
        answer = box = money_answer(cents)
    else:
        assert value is not None
        answer, box = fmt(value), tex(value)
    assert 1 <= len(steps) <= 6, (question, steps)
    solution = "\n".join([*steps, f"The answer is \\boxed{{{box}}}."])
    return Problem(question, answer, solution, len(steps))


def coef(a: int, var: str) -> str:
    """Leading term: 1,x -> "x"; -1,x -> "-x"; 3,x -> "3x"."""
    return var if a == 1 else f"-{var}" if a == -1 else f"{a}{var}"


def plus(a: int, var: str = "") -> str:
    """Following term with its sign: (4) -> " + 4"; (-1, "y") -> " - y"; 0 -> ""."""
    if a == 0:
        return ""
    sign = " + " if a > 0 else " - "
    body = var if (abs(a) == 1 and var) else f"{abs(a)}{var}"
    return sign + body


def par(n: int | Fraction) -> str:
    return f"({fmt(n)})" if n < 0 else fmt(n)


def ratio(num: int, den: int) -> str:
    """ "num/den", followed by " = simplified" when the fraction reduces."""
    v = Fraction(num, den)
    text = f"{num}/{par(den)}"
    return text if (v.numerator, v.denominator) == (num, den) else f"{text} = {fmt(v)}"


def article(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" else "a"


def units(n: int, word: str) -> str:
    """3, "hour" -> "3 hours"; 1, "hour" -> "1 hour"."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# --------------------------------------------------------------------------- arithmetic


def ar_give_buy(r: random.Random) -> Problem:
    name = r.choice(NAMES)
    item = r.choice(["marbles", "stickers", "stamps", "trading cards", "seashells", "postcards"])
    a = r.randint(25, 95)
    b = r.randint(5, a - 10)
    c = r.choice([v for v in range(4, 41) if v != b])
    q = (
        f"{name} has {a} {item}. {name} gives {b} of them to a friend and then buys {c} more. "
        f"How many {item} does {name} have now?"
    )
    s1 = a - b
    steps = [
        f"After giving away {b}, {name} has {a} - {b} = {s1} {item}.",
        f"After buying {c} more, {name} has {s1} + {c} = {s1 + c} {item}.",
    ]
    return done(q, steps, s1 + c)


def ar_containers(r: random.Random) -> Problem:
    one, many, thing = r.choice(
        [
            ("box", "boxes", "pencils"),
            ("crate", "crates", "apples"),
            ("pack", "packs", "batteries"),
            ("carton", "cartons", "eggs"),
            ("bag", "bags", "oranges"),
            ("shelf", "shelves", "books"),
            ("tray", "trays", "muffins"),
        ]
    )
    n = r.randint(6, 36)
    k = r.randint(3, 25)
    q = f"Each {one} holds {n} {thing}. How many {thing} are in {k} full {many}?"
    steps = [f"Multiply the number of {many} by the {thing} in each {one}: {k} × {n} = {k * n}."]
    return done(q, steps, k * n)


SHOP = (
    ("notebook", "notebooks", 150, 450),
    ("pen", "pens", 75, 250),
    ("sandwich", "sandwiches", 350, 900),
    ("coffee", "coffees", 200, 500),
    ("paperback", "paperbacks", 600, 1400),
    ("toy car", "toy cars", 300, 1200),
    ("bottle of juice", "bottles of juice", 125, 350),
    ("T-shirt", "T-shirts", 900, 2000),
)


def ar_change(r: random.Random) -> Problem:
    name = r.choice(NAMES)
    (_, pl1, lo1, hi1), (_, pl2, lo2, hi2) = r.sample(SHOP, 2)
    p1 = 25 * r.randint(lo1 // 25, hi1 // 25)
    p2 = 25 * r.randint(lo2 // 25, hi2 // 25)
    a, b = r.randint(2, 5), r.randint(2, 5)
    c1, c2 = a * p1, b * p2
    total = c1 + c2
    bill = next(x for x in (1000, 2000, 5000, 10000, 20000) if x > total)
    q = (
        f"{name} buys {a} {pl1} at {dollars(p1)} each and {b} {pl2} at {dollars(p2)} each, "
        f"and pays with a {dollars(bill)} bill. How much change, in dollars, does {name} get?"
    )
    steps = [
        f"The {pl1} cost {a} × {dollars(p1)} = {dollars(c1)}.",
        f"The {pl2} cost {b} × {dollars(p2)} = {dollars(c2)}.",
        f"The total is {dollars(c1)} + {dollars(c2)} = {dollars(total)}.",
        f"The change is {dollars(bill)} - {dollars(total)} = {dollars(bill - total)}.",
    ]
    return done(q, steps, cents=bill - total)


def ar_trip(r: random.Random) -> Problem:
    v1, v2 = 5 * r.randint(8, 20), 5 * r.randint(8, 20)
    t1, t2 = r.randint(2, 5), r.randint(1, 4)
    vehicle = r.choice(["car", "bus", "truck", "van"])
    q = (
        f"A {vehicle} drives at {v1} km/h for {units(t1, 'hour')} and then at {v2} km/h for {units(t2, 'hour')}. "
        f"How many kilometers does it travel in total?"
    )
    d1, d2 = v1 * t1, v2 * t2
    steps = [
        f"First part: {v1} × {t1} = {d1} km.",
        f"Second part: {v2} × {t2} = {d2} km.",
        f"Total: {d1} + {d2} = {d1 + d2} km.",
    ]
    return done(q, steps, d1 + d2)


def ar_average_speed(r: random.Random) -> Problem:
    while True:
        v1, v2 = r.randint(8, 30), r.randint(8, 30)
        t1, t2 = r.randint(1, 4), r.randint(1, 4)
        d1, d2 = v1 * t1, v2 * t2
        if v1 != v2 and (d1 + d2) % (t1 + t2) == 0:
            break
    name = r.choice(NAMES)
    q = (
        f"{name} cycles at {v1} km/h for {units(t1, 'hour')} and then at {v2} km/h for {units(t2, 'hour')}. "
        f"What is {name}'s average speed for the whole ride, in km/h?"
    )
    steps = [
        f"Distance in the first part: {v1} × {t1} = {d1} km.",
        f"Distance in the second part: {v2} × {t2} = {d2} km.",
        f"Total distance: {d1} + {d2} = {d1 + d2} km.",
        f"Total time: {t1} + {t2} = {t1 + t2} hours.",
        f"Average speed = total distance ÷ total time = {d1 + d2} ÷ {t1 + t2} = {(d1 + d2) // (t1 + t2)} km/h.",
    ]
    return done(q, steps, (d1 + d2) // (t1 + t2))


def ar_reading(r: random.Random) -> Problem:
    name = r.choice(NAMES)
    p, d = r.randint(8, 30), r.randint(3, 7)
    q2, e = r.randint(8, 30), r.randint(2, 6)
    read = p * d + q2 * e
    n = read + r.randint(15, 200)
    q = (
        f"A book has {n} pages. {name} reads {p} pages a day for {d} days and then {q2} pages a day "
        f"for {e} days. How many pages are left to read?"
    )
    steps = [
        f"In the first {d} days {name} reads {p} × {d} = {p * d} pages.",
        f"In the next {e} days {name} reads {q2} × {e} = {q2 * e} pages.",
        f"Pages read so far: {p * d} + {q2 * e} = {read}.",
        f"Pages left: {n} - {read} = {n - read}.",
    ]
    return done(q, steps, n - read)


def ar_tickets(r: random.Random) -> Problem:
    adult = r.randint(8, 20)
    child = r.randint(4, adult - 2)
    x, y = r.randint(1, 4), r.randint(1, 5)
    snack, z = r.randint(3, 7), r.randint(1, 5)
    place = r.choice(["museum", "zoo", "cinema", "aquarium", "science center"])
    q = (
        f"At {article(place)} {place}, adult tickets cost ${adult} and child tickets cost ${child}. A family buys "
        f"{x} adult and {y} child tickets, plus {z} snacks at ${snack} each. How many dollars do they spend in total?"
    )
    a, c, s = adult * x, child * y, snack * z
    steps = [
        f"Adult tickets: {x} × ${adult} = ${a}.",
        f"Child tickets: {y} × ${child} = ${c}.",
        f"Snacks: {z} × ${snack} = ${s}.",
        f"Total: ${a} + ${c} + ${s} = ${a + c + s}.",
    ]
    return done(q, steps, a + c + s)


def ar_savings(r: random.Random) -> Problem:
    name = r.choice(NAMES)
    have, per_week = r.randint(10, 100), r.randint(5, 25)
    cost = have + r.randint(30, 300)
    thing = r.choice(["bike", "guitar", "tablet", "pair of skates", "telescope", "camera"])
    need = cost - have
    weeks = ceil_div(need, per_week)
    q = (
        f"{name} has ${have} and saves ${per_week} every week. A {thing} costs ${cost}. "
        f"After how many weeks will {name} first have enough money to buy it?"
    )
    last = (
        f"{need} is exactly {weeks} × {per_week}, so {name} needs {weeks} weeks."
        if need % per_week == 0
        else f"{name} cannot buy it after {weeks - 1} weeks, so round up to {weeks} weeks."
    )
    steps = [
        f"{name} still needs ${cost} - ${have} = ${need}.",
        f"{need} ÷ {per_week} = {fmt(Fraction(need, per_week))} weeks of saving.",
        last,
    ]
    return done(q, steps, weeks)


def ar_bakery(r: random.Random) -> Problem:
    while True:
        trays, per_tray = r.randint(3, 8), r.randint(12, 30)
        m = r.randint(4, 12)
        baked = trays * per_tray
        packs = r.randint(3, baked // m)
        gift = r.randint(2, 15)
        left = baked - packs * m - gift
        if left > 0:
            break
    name = r.choice(NAMES)
    q = (
        f"{name} bakes {trays} trays of cookies with {per_tray} cookies on each tray, sells {packs} "
        f"packs of {m} cookies, and gives {gift} cookies to neighbors. How many cookies are left?"
    )
    steps = [
        f"Cookies baked: {trays} × {per_tray} = {baked}.",
        f"Cookies sold: {packs} × {m} = {packs * m}.",
        f"Cookies left: {baked} - {packs * m} - {gift} = {left}.",
    ]
    return done(q, steps, left)


def ar_average(r: random.Random) -> Problem:
    while True:
        n = r.randint(3, 5)
        target = r.randint(70, 90)
        scores = [r.randint(60, 100) for _ in range(n - 1)]
        needed = n * target - sum(scores)
        if 50 <= needed <= 100:
            break
    name = r.choice(NAMES)
    shown = ", ".join(map(str, scores[:-1])) + f" and {scores[-1]}"
    q = (
        f"{name} scored {shown} on the first {n - 1} tests. What score does {name} need on test {n} "
        f"to have an average of exactly {target} over all {n} tests?"
    )
    steps = [
        f"An average of {target} over {n} tests means a total of {n} × {target} = {n * target} points.",
        f"The first {n - 1} scores add up to {' + '.join(map(str, scores))} = {sum(scores)}.",
        f"The last test needs {n * target} - {sum(scores)} = {needed} points.",
    ]
    return done(q, steps, needed)


def _clock(minutes_after_noon: int) -> str:
    h, m = divmod(minutes_after_noon, 60)
    return f"{h if h else 12}:{m:02d} p.m."


def ar_minutes(r: random.Random) -> Problem:
    start = 60 * r.randint(1, 6) + 5 * r.randint(0, 11)
    length = 5 * r.randint(15, 39)
    end = start + length
    what = r.choice(["A movie", "A concert", "A soccer match", "A school play", "A boat tour"])
    q = f"{what} starts at {_clock(start)} and ends at {_clock(end)} the same day. How many minutes long is it?"
    sh, sm = divmod(start, 60)
    eh, em = divmod(end, 60)
    steps = [
        f"{_clock(start)} is {sh} × 60 + {sm} = {start} minutes after noon.",
        f"{_clock(end)} is {eh} × 60 + {em} = {end} minutes after noon.",
        f"The length is {end} - {start} = {length} minutes.",
    ]
    return done(q, steps, length)


def ar_sales(r: random.Random) -> Problem:
    while True:
        x = r.randint(20, 80)
        fewer = r.randint(5, 30)
        wed = 2 * x - fewer
        if wed % 2 == 0:
            break
    price = r.randint(2, 9)
    item = r.choice(["lemonades", "pies", "plants", "candles", "scarves", "mugs"])
    thu = wed // 2
    total = x + 2 * x + wed + thu
    q = (
        f"A shop sold {x} {item} on Monday. On Tuesday it sold twice as many as on Monday, on Wednesday "
        f"{fewer} fewer than on Tuesday, and on Thursday half as many as on Wednesday. Each costs ${price}. "
        f"How many dollars did the shop take in over the four days?"
    )
    steps = [
        f"Tuesday: 2 × {x} = {2 * x}.",
        f"Wednesday: {2 * x} - {fewer} = {wed}.",
        f"Thursday: {wed} ÷ 2 = {thu}.",
        f"Items sold: {x} + {2 * x} + {wed} + {thu} = {total}.",
        f"Money taken: {total} × ${price} = ${total * price}.",
    ]
    return done(q, steps, total * price)


def ar_teams(r: random.Random) -> Problem:
    while True:
        classes, size = r.randint(3, 8), r.randint(20, 32)
        students = classes * size
        team = r.choice([4, 5, 6, 8, 10, 12])
        if students % team == 0:
            break
    teams = students // team
    balls, pack = r.randint(1, 3), r.randint(3, 6)
    need = teams * balls
    packs = ceil_div(need, pack)
    q = (
        f"A school has {classes} classes of {size} students. All students are split into teams of {team}, "
        f"and each team gets {balls} ball{'s' if balls > 1 else ''}. Balls come in packs of {pack}. "
        f"How many packs must the school buy?"
    )
    last = (
        f"{need} ÷ {pack} = {packs} packs exactly."
        if need % pack == 0
        else f"{need} ÷ {pack} = {fmt(Fraction(need, pack))}, so round up to {packs} packs."
    )
    steps = [
        f"Students: {classes} × {size} = {students}.",
        f"Teams: {students} ÷ {team} = {teams}.",
        f"Balls needed: {teams} × {balls} = {need}.",
        last,
    ]
    return done(q, steps, packs)


def ar_factory(r: random.Random) -> Problem:
    u, m = r.randint(10, 60), r.randint(2, 9)
    h, d = r.randint(6, 10), r.randint(2, 6)
    thing = r.choice(["bottles", "bolts", "toys", "boxes", "chairs", "shirts"])
    q = (
        f"Each machine in a factory makes {u} {thing} per hour. {m} machines run for {h} hours a day "
        f"for {d} days. How many {thing} do they make?"
    )
    steps = [
        f"Per hour, all machines make {m} × {u} = {m * u} {thing}.",
        f"Per day: {m * u} × {h} = {m * u * h} {thing}.",
        f"In {d} days: {m * u * h} × {d} = {m * u * h * d} {thing}.",
    ]
    return done(q, steps, m * u * h * d)


def ar_unit_price(r: random.Random) -> Problem:
    per = 5 * r.randint(5, 60)  # cents per item
    n1, n2 = r.randint(2, 9), r.randint(10, 30)
    item = r.choice(["apples", "stamps", "erasers", "lemons", "buttons", "stickers"])
    q = f"{n1} {item} cost {dollars(n1 * per)}. At the same price, how many dollars do {n2} {item} cost?"
    steps = [
        f"One costs {dollars(n1 * per)} ÷ {n1} = {dollars(per)}.",
        f"{n2} cost {n2} × {dollars(per)} = {dollars(n2 * per)}.",
    ]
    return done(q, steps, cents=n2 * per)


# --------------------------------------------------------------------------- fractions & percentages


def fp_add(r: random.Random) -> Problem:
    b, d = r.sample(range(2, 13), 2)
    a, c = r.randint(1, b - 1), r.randint(1, d - 1)
    op = r.choice("+-")
    L = math.lcm(b, d)
    A, C = a * (L // b), c * (L // d)
    num = A + C if op == "+" else A - C
    val = Fraction(num, L)
    q = f"Compute {a}/{b} {op} {c}/{d}. Write the answer in lowest terms."
    steps = [
        f"The least common denominator of {b} and {d} is {L}.",
        "Rewrite over the common denominator: "
        + " and ".join(f"{n}/{m} = {N}/{L}" for n, m, N in ((a, b, A), (c, d, C)) if m != L)
        + ".",
        f"{'Add' if op == '+' else 'Subtract'} the numerators: {A}/{L} {op} {C}/{L} = {num}/{L}.",
    ]
    if val.denominator != L:
        steps.append(f"Simplify: {num}/{L} = {fmt(val)}.")
    return done(q, steps, val)


def fp_mul_div(r: random.Random) -> Problem:
    while True:
        x = Fraction(r.randint(1, 11), r.randint(2, 12))
        y = Fraction(r.randint(1, 11), r.randint(2, 12))
        if x.denominator > 1 and y.denominator > 1 and x != y:
            break
    a, b, c, d = x.numerator, x.denominator, y.numerator, y.denominator
    if r.random() < 0.5:
        q = f"Compute ({a}/{b}) × ({c}/{d}). Write the answer in lowest terms."
        num, den = a * c, b * d
        steps = [f"Multiply numerators and denominators: ({a} × {c})/({b} × {d}) = {num}/{den}."]
        val = x * y
    else:
        q = f"Compute ({a}/{b}) ÷ ({c}/{d}). Write the answer in lowest terms."
        num, den = a * d, b * c
        steps = [
            f"Dividing by {c}/{d} is multiplying by its reciprocal {d}/{c}.",
            f"({a}/{b}) × ({d}/{c}) = ({a} × {d})/({b} × {c}) = {num}/{den}.",
        ]
        val = x / y
    if val.denominator != den or val.numerator != num:
        steps.append(f"Simplify: {num}/{den} = {fmt(val)}.")
    return done(q, steps, val)


def fp_part_of_group(r: random.Random) -> Problem:
    while True:
        frac = Fraction(r.randint(1, 7), r.randint(2, 9))
        if 0 < frac < 1:
            break
    total = frac.denominator * r.randint(3, 12)
    group, part, rest = r.choice(
        [
            ("class", "girls", "boys"),
            ("club", "adults", "children"),
            ("orchard", "apple trees", "pear trees"),
            ("library shelf", "novels", "other books"),
            ("parking lot", "cars", "other vehicles"),
        ]
    )
    unit = {
        "class": "students",
        "club": "members",
        "orchard": "trees",
        "library shelf": "books",
        "parking lot": "vehicles",
    }[group]
    n_part = total * frac
    q = f"A {group} has {total} {unit}, and {fmt(frac)} of them are {part}. How many are {rest}?"
    steps = [
        f"{part.capitalize()}: {fmt(frac)} × {total} = {fmt(n_part)}.",
        f"{rest.capitalize()}: {total} - {fmt(n_part)} = {fmt(total - n_part)}.",
    ]
    return done(q, steps, total - n_part)


def fp_discount_tax(r: random.Random) -> Problem:
    while True:
        price = r.randint(12, 240)  # dollars
        disc = r.choice([10, 15, 20, 25, 30, 40, 50])
        tax = r.choice([5, 8, 10, 6])
        # work in cents: everything must come out to whole cents
        cents = price * 100
        d_amt = Fraction(cents * disc, 100)
        sale = cents - d_amt
        t_amt = sale * tax / 100
        final = sale + t_amt
        if d_amt.denominator == 1 and t_amt.denominator == 1:
            break
    thing = r.choice(["jacket", "lamp", "backpack", "printer", "pair of boots", "chair", "watch"])
    q = (
        f"A {thing} costs ${price}. It is on sale for {disc}% off, and then {tax}% sales tax is added "
        f"to the sale price. What is the final price in dollars?"
    )
    steps = [
        f"Discount: {disc}% of ${price} = {dollars(d_amt)}.",
        f"Sale price: ${price} - {dollars(d_amt)} = {dollars(sale)}.",
        f"Tax: {tax}% of {dollars(sale)} = {dollars(t_amt)}.",
        f"Final price: {dollars(sale)} + {dollars(t_amt)} = {dollars(final)}.",
    ]
    return done(q, steps, cents=int(final))


def fp_percent_change(r: random.Random) -> Problem:
    while True:
        old = r.choice([20, 25, 40, 50, 60, 75, 80, 120, 150, 160, 200, 240, 250, 300, 400])
        pct = r.choice([5, 10, 12, 15, 20, 25, 30, 35, 40, 45, 60, 75])
        up = r.random() < 0.5
        new = Fraction(old * (100 + pct if up else 100 - pct), 100)
        if new.denominator == 1:
            break
    new = int(new)
    what, unit = r.choice(
        [
            ("The price of a ticket", "$"),
            ("The population of a village", ""),
            ("A monthly rent", "$"),
            ("The number of club members", ""),
            ("A share price", "$"),
        ]
    )
    verb = "rose" if up else "fell"
    q = f"{what} {verb} from {unit}{old} to {unit}{new}. By what percent did it {'increase' if up else 'decrease'}?"
    change = abs(new - old)
    steps = [
        f"The change is {max(old, new)} - {min(old, new)} = {change}.",
        f"As a percent of the original: {change} ÷ {old} × 100 = {pct}%.",
    ]
    return done(q, steps, pct)


def fp_successive(r: random.Random) -> Problem:
    while True:
        price = r.randint(20, 400)
        up = r.choice([10, 20, 25, 30, 40, 50])
        down = r.choice([10, 20, 25, 30, 40, 50])
        cents = price * 100
        inc = Fraction(cents * up, 100)
        mid = cents + inc
        dec = mid * down / 100
        if inc.denominator == 1 and dec.denominator == 1:
            break
    q = (
        f"A store raises the price of a ${price} item by {up}% and later lowers the new price by {down}%. "
        f"What is the final price in dollars?"
    )
    steps = [
        f"The increase is {up}% of ${price} = {dollars(inc)}.",
        f"The raised price is ${price} + {dollars(inc)} = {dollars(mid)}.",
        f"The decrease is {down}% of {dollars(mid)} = {dollars(dec)}.",
        f"The final price is {dollars(mid)} - {dollars(dec)} = {dollars(mid - dec)}.",
    ]
    return done(q, steps, cents=int(mid - dec))


def fp_remaining(r: random.Random) -> Problem:
    fracs = [
        Fraction(1, 2),
        Fraction(1, 3),
        Fraction(1, 4),
        Fraction(1, 5),
        Fraction(2, 3),
        Fraction(2, 5),
        Fraction(3, 4),
        Fraction(3, 5),
        Fraction(1, 6),
    ]
    while True:
        f1, f2 = r.choice(fracs), r.choice(fracs)
        money = r.randint(4, 60) * 10
        s1 = money * f1
        rest = money - s1
        s2 = rest * f2
        if s1.denominator == 1 and s2.denominator == 1:
            break
    name = r.choice(NAMES)
    a, b = r.sample(
        ["a book", "a concert ticket", "groceries", "a gift", "a video game", "clothes", "a train ticket"], 2
    )
    q = (
        f"{name} had ${money}. {name} spent {fmt(f1)} of it on {a} and then {fmt(f2)} of what was left on {b}. "
        f"How many dollars does {name} have now?"
    )
    steps = [
        f"Spent on {a}: {fmt(f1)} × ${money} = ${fmt(s1)}.",
        f"Left: ${money} - ${fmt(s1)} = ${fmt(rest)}.",
        f"Spent on {b}: {fmt(f2)} × ${fmt(rest)} = ${fmt(s2)}.",
        f"Left now: ${fmt(rest)} - ${fmt(s2)} = ${fmt(rest - s2)}.",
    ]
    return done(q, steps, rest - s2)


def fp_percent_of_total(r: random.Random) -> Problem:
    while True:
        total = r.choice([20, 25, 40, 50, 60, 75, 80, 120, 125, 150, 200, 250, 400])
        part = r.randint(1, total - 1)
        pct = Fraction(part * 100, total)
        if pct.denominator == 1:
            break
    a, b, unit = r.choice(
        [
            ("red", "blue", "marbles"),
            ("fiction", "non-fiction", "books"),
            ("cats", "dogs", "pets at a shelter"),
            ("walkers", "cyclists", "commuters"),
            ("correct", "wrong", "answers on a quiz"),
        ]
    )
    q = f"There are {part} {a} and {total - part} {b} {unit}. What percent of them are {a}?"
    if unit == "pets at a shelter":
        q = f"A shelter has {part} cats and {total - part} dogs. What percent of these pets are cats?"
    elif unit == "answers on a quiz":
        q = f"On a quiz, {part} answers were correct and {total - part} were wrong. What percent were correct?"
    elif unit == "commuters":
        q = f"In a survey of commuters, {part} walk and {total - part} cycle. What percent walk?"
    steps = [
        f"Total: {part} + {total - part} = {total}.",
        f"Fraction: {ratio(part, total)}.",
        f"Percent: {fmt(Fraction(part, total))} × 100 = {fmt(pct)}%.",
    ]
    return done(q, steps, pct)


def fp_interest(r: random.Random) -> Problem:
    principal = 100 * r.randint(5, 80)
    rate = r.choice([2, 3, 4, 5, 6, 8, 10])
    years = r.randint(2, 6)
    yearly = Fraction(principal * rate, 100)
    q = (
        f"${principal} is deposited at {rate}% simple interest per year. "
        f"How many dollars are in the account after {years} years?"
    )
    steps = [
        f"Interest per year: {rate}% of ${principal} = ${fmt(yearly)}.",
        f"Interest over {years} years: {years} × ${fmt(yearly)} = ${fmt(yearly * years)}.",
        f"Total: ${principal} + ${fmt(yearly * years)} = ${fmt(principal + yearly * years)}.",
    ]
    return done(q, steps, cents=int((principal + yearly * years) * 100))


def fp_tank(r: random.Random) -> Problem:
    while True:
        x = Fraction(r.randint(1, 8), r.randint(2, 10))
        y = Fraction(r.randint(1, 9), r.randint(2, 10))
        if 0 < x < y < 1:
            break
    cap = math.lcm(x.denominator, y.denominator) * r.randint(1, 6) * r.choice([2, 3, 5, 10])
    added = cap * (y - x)
    assert added.denominator == 1
    q = f"A tank is {fmt(x)} full. After {fmt(added)} liters are added, it is {fmt(y)} full. How many liters does the full tank hold?"
    steps = [
        f"The added water fills {fmt(y)} - {fmt(x)} = {fmt(y - x)} of the tank.",
        f"So {fmt(y - x)} of the capacity is {fmt(added)} liters.",
        f"Capacity = {fmt(added)} ÷ {fmt(y - x)} = {fmt(cap)} liters.",
    ]
    return done(q, steps, cap)


def fp_reverse_percent(r: random.Random) -> Problem:
    while True:
        original = r.randint(8, 300)
        pct = r.choice([10, 15, 20, 25, 30, 40, 50, 60])
        sale = Fraction(original * (100 - pct), 100)
        if sale.denominator == 1:
            break
    thing = r.choice(["coat", "bicycle", "board game", "kettle", "rug", "helmet"])
    q = f"After a {pct}% discount, a {thing} costs ${fmt(sale)}. What was the original price in dollars?"
    steps = [
        f"After a {pct}% discount the price is {100 - pct}% of the original.",
        f"Original = ${fmt(sale)} ÷ {fmt(Fraction(100 - pct, 100))} = ${original}.",
    ]
    return done(q, steps, original)


def fp_ratio(r: random.Random) -> Problem:
    a, b = r.sample(range(1, 10), 2)
    g = math.gcd(a, b)
    a, b = a // g, b // g
    total = (a + b) * r.randint(2, 15)
    x, y, unit = r.choice(
        [
            ("flour", "sugar", "cups"),
            ("sand", "cement", "kilograms"),
            ("red paint", "white paint", "liters"),
            ("juice", "water", "liters"),
            ("peanuts", "raisins", "grams"),
        ]
    )
    part = Fraction(total, a + b)
    want_second = r.random() < 0.5
    name, k = (y, b) if want_second else (x, a)
    q = f"A mix uses {x} and {y} in the ratio {a}:{b}. If there are {total} {unit} of mix, how many {unit} of {name} are in it?"
    steps = [
        f"The ratio has {a} + {b} = {a + b} parts.",
        f"One part is {total} ÷ {a + b} = {fmt(part)} {unit}.",
        f"{name.capitalize()}: {k} × {fmt(part)} = {fmt(k * part)} {unit}.",
    ]
    return done(q, steps, k * part)


def fp_bill_split(r: random.Random) -> Problem:
    while True:
        n = r.randint(2, 6)
        apps, app_price = r.randint(1, 3), 50 * r.randint(10, 24)
        main_price = 50 * r.randint(20, 50)
        tax = r.choice([5, 8, 10])
        tip = r.choice([15, 18, 20])
        sub = apps * app_price + n * main_price
        tax_amt = Fraction(sub * tax, 100)
        tip_amt = Fraction(sub * tip, 100)
        total = sub + tax_amt + tip_amt
        if tax_amt.denominator == 1 and tip_amt.denominator == 1 and total % n == 0:
            break
    q = (
        f"{n} friends order {apps} appetizer{'s' if apps > 1 else ''} at {dollars(app_price)} each and one main "
        f"course each at {dollars(main_price)}. They add {tax}% tax and a {tip}% tip, both on the food cost, and split "
        f"the total equally. How many dollars does each friend pay?"
    )
    steps = [
        f"Appetizers: {apps} × {dollars(app_price)} = {dollars(apps * app_price)}.",
        f"Main courses: {n} × {dollars(main_price)} = {dollars(n * main_price)}.",
        f"Food cost: {dollars(apps * app_price)} + {dollars(n * main_price)} = {dollars(sub)}.",
        f"Tax: {tax}% of {dollars(sub)} = {dollars(tax_amt)}; tip: {tip}% of {dollars(sub)} = {dollars(tip_amt)}.",
        f"Total: {dollars(sub)} + {dollars(tax_amt)} + {dollars(tip_amt)} = {dollars(total)}.",
        f"Each pays {dollars(total)} ÷ {n} = {dollars(total / n)}.",
    ]
    return done(q, steps, cents=int(total / n))


# --------------------------------------------------------------------------- algebra


def al_linear(r: random.Random) -> Problem:
    a = r.choice([x for x in range(-9, 13) if x not in (-1, 0, 1)])
    x = r.randint(-15, 20)
    b = r.choice([v for v in range(-40, 41) if v != 0])
    c = a * x + b
    q = f"Solve for x: {coef(a, 'x')}{plus(b)} = {c}."
    steps = [
        f"Subtract {b} from both sides: {coef(a, 'x')} = {c} - {par(b)} = {c - b}."
        if b > 0
        else f"Add {-b} to both sides: {coef(a, 'x')} = {c} + {-b} = {c - b}.",
        f"Divide both sides by {a}: x = {c - b} ÷ {par(a)} = {x}.",
    ]
    return done(q, steps, x)


def al_both_sides(r: random.Random) -> Problem:
    while True:
        a, c = r.randint(2, 12), r.randint(-6, 11)
        b, d = r.randint(-30, 30), r.randint(-30, 30)
        if a != c and c != 0 and b != d and abs(a - c) > 1:
            break
    x = Fraction(d - b, a - c)
    q = f"Solve for x: {coef(a, 'x')}{plus(b)} = {coef(c, 'x')}{plus(d)}."
    steps = [
        f"Subtract {coef(c, 'x')} from both sides: {coef(a - c, 'x')}{plus(b)} = {d}.",
        f"Move the constant to the right: {coef(a - c, 'x')} = {d} - {par(b)} = {d - b}.",
        f"Divide by {a - c}: x = {ratio(d - b, a - c)}.",
    ]
    return done(q, steps, x)


def al_system(r: random.Random) -> Problem:
    while True:
        x, y = r.randint(-8, 12), r.randint(-8, 12)
        a1, a2 = r.sample(range(1, 7), 2)
        b1, b2 = r.choice([v for v in range(-6, 7) if v]), r.choice([v for v in range(-6, 7) if v])
        det = b1 * a2 - a1 * b2
        if det != 0:
            break
    c1, c2 = a1 * x + b1 * y, a2 * x + b2 * y
    ask = r.choice(["y", "x", "x + y"])
    q = (
        f"Solve the system {coef(a1, 'x')}{plus(b1, 'y')} = {c1} and {coef(a2, 'x')}{plus(b2, 'y')} = {c2}. "
        f"What is {ask}?"
    )
    rhs = c1 * a2 - c2 * a1
    scale = (
        f"Multiply the first equation by {a2} and the second by {a1}"
        if a1 > 1 and a2 > 1
        else f"Multiply the first equation by {a2}"
        if a2 > 1
        else f"Multiply the second equation by {a1}"
    )
    steps = [
        f"{scale} so the x terms match: "
        f"{coef(a1 * a2, 'x')}{plus(b1 * a2, 'y')} = {c1 * a2} and {coef(a1 * a2, 'x')}{plus(a1 * b2, 'y')} = {c2 * a1}.",
        f"Subtract the second from the first: {coef(det, 'y')} = {rhs}.",
    ]
    if det != 1:
        steps.append(f"So y = {rhs} ÷ {par(det)} = {y}.")
    if ask != "y":
        steps.append(
            f"Substitute into the first equation: {coef(a1, 'x')}{plus(b1)}({y}) = {c1}, so {coef(a1, 'x')} = {c1 - b1 * y}."
        )
        if a1 != 1:
            steps.append(f"So x = {c1 - b1 * y} ÷ {a1} = {x}.")
    if ask == "x + y":
        steps.append(f"x + y = {x} + {par(y)} = {x + y}.")
    return done(q, steps, {"x": x, "y": y, "x + y": x + y}[ask])


def al_sum_diff(r: random.Random) -> Problem:
    big, small = sorted(r.sample(range(3, 150), 2), reverse=True)
    s, d = big + small, big - small
    ask_big = r.random() < 0.5
    q = f"Two numbers add up to {s} and their difference is {d}. What is the {'larger' if ask_big else 'smaller'} number?"
    steps = [
        f"Adding the two equations (L + S = {s} and L - S = {d}) gives 2L = {s + d}.",
        f"So L = {s + d} ÷ 2 = {big}.",
    ]
    if not ask_big:
        steps.append(f"Then S = {s} - {big} = {small}.")
    return done(q, steps, big if ask_big else small)


def al_consecutive(r: random.Random) -> Problem:
    k = r.randint(3, 5)
    even = r.random() < 0.4
    step = 2 if even else 1
    n = r.randint(-10, 60)
    if even:
        n -= n % 2
    nums = [n + step * i for i in range(k)]
    s = sum(nums)
    off = sum(step * i for i in range(k))
    kind = "consecutive even integers" if even else "consecutive integers"
    ask_largest = r.random() < 0.5
    q = f"The sum of {k} {kind} is {s}. What is the {'largest' if ask_largest else 'smallest'} of them?"
    terms = " + ".join(["n"] + [f"(n + {step * i})" for i in range(1, k)])
    steps = [
        f"Call the smallest n. The sum is {terms} = {k}n + {off}.",
        f"So {k}n + {off} = {s}, and {k}n = {s - off}.",
        f"n = {s - off} ÷ {k} = {n}.",
    ]
    if ask_largest:
        steps.append(f"The largest is n + {step * (k - 1)} = {nums[-1]}.")
    return done(q, steps, nums[-1] if ask_largest else n)


def al_age(r: random.Random) -> Problem:
    while True:
        k, s = r.randint(3, 6), r.randint(3, 15)
        m = r.randint(2, k - 1)
        num = (k - m) * s
        if num % (m - 1) == 0 and k * s <= 75:
            n = num // (m - 1)
            if 1 <= n <= 30:
                break
    parent = r.choice(["father", "mother", "grandmother", "uncle", "aunt"])
    child = r.choice(["nephew", "niece"]) if parent in ("uncle", "aunt") else r.choice(["son", "daughter"])
    if parent == "grandmother":
        child = r.choice(["grandson", "granddaughter"])
    times = {2: "twice", 3: "three times", 4: "four times", 5: "five times", 6: "six times"}
    q = (
        f"{article(parent).capitalize()} {parent} is {times[k]} as old as "
        f"{'her' if parent in ('mother', 'grandmother', 'aunt') else 'his'} {child}."
    )
    q += f" In {n} years, the {parent} will be {times[m]} as old as the {child}. How old is the {child} now?"
    steps = [
        f"Let the {child}'s age be s; the {parent} is {k}s.",
        f"In {n} years: {k}s + {n} = {m}(s + {n}).",
        f"Expand: {k}s + {n} = {m}s + {m * n}.",
        f"Collect terms: {coef(k - m, 's')} = {m * n - n}.",
    ]
    if k - m > 1:
        steps.append(f"s = {m * n - n} ÷ {k - m} = {s}.")
    return done(q, steps, s)


def al_evaluate(r: random.Random) -> Problem:
    a = r.choice([v for v in range(-4, 6) if v])
    b = r.randint(-9, 9)
    c = r.randint(-15, 15)
    x = r.choice([v for v in range(-5, 6) if v not in (0, 1)])
    fx = a * x * x + b * x + c
    q = f"If f(x) = {coef(a, 'x^2')}{plus(b, 'x')}{plus(c)}, what is f({x})?"
    steps = [
        f"{coef(a, '')}{'' if abs(a) == 1 else ' × '}{par(x)}^2 = {a} × {x * x} = {a * x * x}."
        if abs(a) != 1
        else f"{'-' if a < 0 else ''}{par(x)}^2 = {a * x * x}.",
        f"{b} × {par(x)} = {b * x}.",
        f"f({x}) = {a * x * x} + {par(b * x)} + {par(c)} = {fx}.",
    ]
    return done(q, steps, fx)


def al_quadratic(r: random.Random) -> Problem:
    r1, r2 = r.sample([v for v in range(-9, 10) if v], 2)
    p, qq = -(r1 + r2), r1 * r2
    poly = f"x^2{plus(p, 'x')}{plus(qq)}"
    ask = r.choice(["larger", "smaller", "squares"])
    if ask == "squares":
        question = f"The roots of {poly} = 0 are r and s. What is r^2 + s^2?"
        steps = [
            f"By Vieta's formulas, r + s = {r1 + r2} and rs = {qq}.",
            "r^2 + s^2 = (r + s)^2 - 2rs.",
            f"= {par(r1 + r2)}^2 - 2 × {par(qq)} = {(r1 + r2) ** 2} - {par(2 * qq)} = {r1 * r1 + r2 * r2}.",
        ]
        return done(question, steps, r1 * r1 + r2 * r2)
    question = f"What is the {ask} root of {poly} = 0?"
    lo, hi = sorted((r1, r2))
    steps = [
        f"The roots have sum {-p} and product {qq} (Vieta): they are {lo} and {hi}.",
        f"So {poly} = (x{plus(-lo)})(x{plus(-hi)}), and the roots are {lo} and {hi}.",
    ]
    return done(question, steps, hi if ask == "larger" else lo)


def al_slope(r: random.Random) -> Problem:
    while True:
        x1, x2 = r.randint(-9, 9), r.randint(-9, 9)
        y1, y2 = r.randint(-9, 9), r.randint(-9, 9)
        if x1 != x2 and y1 != y2:
            break
    m = Fraction(y2 - y1, x2 - x1)
    ask = r.choice(["slope", "intercept"])
    if ask == "slope":
        q = f"What is the slope of the line through ({x1}, {y1}) and ({x2}, {y2})?"
        steps = [
            f"Rise: {y2} - {par(y1)} = {y2 - y1}.",
            f"Run: {x2} - {par(x1)} = {x2 - x1}.",
            f"Slope = rise/run = {ratio(y2 - y1, x2 - x1)}.",
        ]
        return done(q, steps, m)
    b = y1 - m * x1
    q = f"The line through ({x1}, {y1}) and ({x2}, {y2}) crosses the y-axis at (0, b). What is b?"
    steps = [
        f"Slope m = ({y2} - {par(y1)})/({x2} - {par(x1)}) = {ratio(y2 - y1, x2 - x1)}.",
        f"The line is y = mx + b, and it passes through ({x1}, {y1}).",
        f"So {y1} = {fmt(m)} × {par(x1)} + b = {fmt(m * x1)} + b.",
        f"b = {y1} - {par(m * x1)} = {fmt(b)}.",
    ]
    return done(q, steps, b)


COINS = (("nickels", 5), ("dimes", 10), ("quarters", 25))


def al_coins(r: random.Random) -> Problem:
    (lo_name, lo), (hi_name, hi) = sorted(r.sample(COINS, 2), key=lambda c: c[1])
    n_hi, n_lo = r.randint(2, 30), r.randint(2, 30)
    n = n_hi + n_lo
    value = n_hi * hi + n_lo * lo
    name = r.choice(NAMES)
    q = (
        f"{name} has {n} coins, all {lo_name} and {hi_name}, worth {value} cents in total. "
        f"How many {hi_name} does {name} have?"
    )
    steps = [
        f"Let h be the number of {hi_name}; then there are {n} - h {lo_name}.",
        f"Value: {hi}h + {lo}({n} - h) = {value}.",
        f"Simplify: {hi - lo}h + {lo * n} = {value}, so {hi - lo}h = {value - lo * n}.",
        f"h = {value - lo * n} ÷ {hi - lo} = {n_hi}.",
    ]
    return done(q, steps, n_hi)


def al_sequence(r: random.Random) -> Problem:
    a1, d = r.randint(-20, 30), r.choice([v for v in range(-9, 13) if v])
    if r.random() < 0.5:
        n = r.randint(10, 60)
        q = f"An arithmetic sequence starts {a1}, {a1 + d}, {a1 + 2 * d}, ... What is its {ordinal(n)} term?"
        steps = [
            f"The common difference is {a1 + d} - {par(a1)} = {d}.",
            f"The {ordinal(n)} term is {a1} + ({n} - 1) × {par(d)} = {a1} + {par((n - 1) * d)} = {a1 + (n - 1) * d}.",
        ]
        return done(q, steps, a1 + (n - 1) * d)
    i, j = sorted(r.sample(range(2, 9), 2))
    n = r.randint(12, 40)
    ai, aj = a1 + (i - 1) * d, a1 + (j - 1) * d
    q = f"In an arithmetic sequence, term {i} is {ai} and term {j} is {aj}. What is term {n}?"
    steps = [
        f"From term {i} to term {j} there are {j - i} steps, adding {aj} - {par(ai)} = {aj - ai}.",
        f"Common difference: {aj - ai} ÷ {j - i} = {d}.",
        f"First term: {ai} - ({i} - 1) × {par(d)} = {a1}.",
        f"Term {n}: {a1} + ({n} - 1) × {par(d)} = {a1 + (n - 1) * d}.",
    ]
    return done(q, steps, a1 + (n - 1) * d)


def al_inequality(r: random.Random) -> Problem:
    while True:
        a, b, c = r.randint(2, 9), r.randint(-30, 30), r.randint(-40, 60)
        if b != 0 and (c - b) % a != 0:
            break
    bound = Fraction(c - b, a)
    ans = math.floor(bound) + 1
    q = f"What is the smallest integer x such that {a}x{plus(b)} > {c}?"
    steps = [
        f"Move the constant: {a}x > {c} - {par(b)} = {c - b}.",
        f"Divide by {a}: x > {fmt(bound)}.",
        f"The smallest integer greater than {fmt(bound)} is {ans}.",
    ]
    return done(q, steps, ans)


def al_compose(r: random.Random) -> Problem:
    a, b = r.choice([v for v in range(-5, 7) if v not in (0, 1)]), r.randint(-9, 9)
    c, d = r.choice([v for v in range(-5, 7) if v not in (0, 1)]), r.randint(-9, 9)
    k = r.randint(-6, 8)
    gk = c * k + d
    fg = a * gk + b
    q = f"Let f(x) = {coef(a, 'x')}{plus(b)} and g(x) = {coef(c, 'x')}{plus(d)}. What is f(g({k}))?"
    steps = [
        f"g({k}) = {c} × {par(k)}{plus(d)} = {gk}.",
        f"f({gk}) = {a} × {par(gk)}{plus(b)} = {fg}.",
    ]
    return done(q, steps, fg)


def al_work(r: random.Random) -> Problem:
    while True:
        a, b = r.sample(range(2, 16), 2)
        t = Fraction(a * b, a + b)
        if t.denominator <= 6:
            break
    x, y = r.sample(NAMES, 2)
    job = r.choice(["paint a fence", "fill a pool", "mow a field", "clean a house", "pack an order"])
    q = f"{x} can {job} in {a} hours and {y} can do it in {b} hours. Working together, how many hours do they take?"
    steps = [
        f"{x} does 1/{a} of the job per hour and {y} does 1/{b}.",
        f"Together: 1/{a} + 1/{b} = {fmt(Fraction(1, a) + Fraction(1, b))} of the job per hour.",
        f"Time = 1 ÷ {fmt(Fraction(1, a) + Fraction(1, b))} = {fmt(t)} hours.",
    ]
    return done(q, steps, t)


# --------------------------------------------------------------------------- number theory


def factorize(n: int) -> dict[int, int]:
    out: dict[int, int] = {}
    p = 2
    while p * p <= n:
        while n % p == 0:
            out[p] = out.get(p, 0) + 1
            n //= p
        p += 1
    if n > 1:
        out[n] = out.get(n, 0) + 1
    return out


def fact_text(f: dict[int, int]) -> str:
    return " × ".join(str(p) if e == 1 else f"{p}^{e}" for p, e in sorted(f.items()))


def fact_eq(n: int) -> str:
    """ "84 = 2^2 × 3 × 7", or "17 is prime"."""
    f = factorize(n)
    return f"{n} is prime" if f == {n: 1} else f"{n} = {fact_text(f)}"


def nt_gcd(r: random.Random) -> Problem:
    while True:
        g = r.randint(2, 30)
        a, b = sorted((g * r.randint(2, 40), g * r.randint(2, 40)), reverse=True)
        if a == b:
            continue
        lines, x, y = [], a, b
        while y:
            q_, rem = divmod(x, y)
            lines.append(f"{x} = {q_} × {y} + {rem}.")
            x, y = y, rem
        if len(lines) <= 5:
            break
    q = f"What is the greatest common divisor of {a} and {b}?"
    steps = [f"Use the Euclidean algorithm: {lines[0]}", *lines[1:], f"The last nonzero remainder is {x}."]
    return done(q, steps, x)


def nt_lcm(r: random.Random) -> Problem:
    while True:
        a, b = r.sample(range(6, 90), 2)
        if math.gcd(a, b) > 1:
            break
    g = math.gcd(a, b)
    q = f"What is the least common multiple of {a} and {b}?"
    steps = [
        f"{fact_eq(a)} and {fact_eq(b)}, so gcd({a}, {b}) = {g}.",
        f"lcm = {a} × {b} ÷ {g} = {a * b} ÷ {g} = {a * b // g}.",
    ]
    return done(q, steps, a * b // g)


def nt_divisors(r: random.Random) -> Problem:
    while True:
        n = r.randint(24, 600)
        f = factorize(n)
        if len(f) >= 2 and max(f.values()) >= 2:
            break
    count = math.prod(e + 1 for e in f.values())
    if r.random() < 0.5:
        q = f"How many positive divisors does {n} have?"
        steps = [
            f"Prime factorization: {n} = {fact_text(f)}.",
            "The number of divisors is the product of (exponent + 1) over the primes.",
            f"{' × '.join(str(e + 1) for _, e in sorted(f.items()))} = {count}.",
        ]
        return done(q, steps, count)
    sums = {p: sum(p**i for i in range(e + 1)) for p, e in f.items()}
    total = math.prod(sums.values())
    q = f"What is the sum of all positive divisors of {n}?"
    steps = [
        f"Prime factorization: {n} = {fact_text(f)}.",
        "The divisor sum is the product of (1 + p + ... + p^e) over the primes.",
        "; ".join(
            f"For {p}: " + " + ".join(str(p**i) for i in range(e + 1)) + f" = {sums[p]}" for p, e in sorted(f.items())
        ).replace("; For", "; for")
        + ".",
        f"{' × '.join(str(sums[p]) for p in sorted(f))} = {total}.",
    ]
    return done(q, steps, total)


def nt_units_digit(r: random.Random) -> Problem:
    while True:
        base = r.randint(2, 99)
        if base % 10 not in (0, 1, 5, 6):
            break
    exp = r.randint(20, 500)
    cycle = []
    x = base % 10
    while x not in cycle:
        cycle.append(x)
        x = x * base % 10
    L = len(cycle)
    pos = exp % L
    ans = cycle[pos - 1] if pos else cycle[-1]
    q = f"What is the units digit of {base}^{exp}?"
    steps = [
        f"Only the units digit {base % 10} matters. Its powers end in {', '.join(map(str, cycle))}, repeating every {L}.",
        f"{exp} ÷ {L} leaves remainder {pos}"
        + (f", so use position {pos} of the cycle." if pos else f", so use the last position ({L}) of the cycle."),
        f"The units digit is {ans}.",
    ]
    return done(q, steps, ans)


def nt_powmod(r: random.Random) -> Problem:
    while True:
        m = r.choice([7, 9, 11, 13])
        base = r.randint(2, 12)
        if math.gcd(base, m) != 1 or base % m in (0, 1):
            continue
        cycle, x = [], base % m
        while x not in cycle:
            cycle.append(x)
            x = x * base % m
        if len(cycle) <= 6:
            break
    exp = r.randint(15, 200)
    L = len(cycle)
    pos = exp % L
    ans = cycle[pos - 1] if pos else cycle[-1]
    assert ans == pow(base, exp, m)
    q = f"What is the remainder when {base}^{exp} is divided by {m}?"
    powers = ", ".join(f"{base}^{i + 1} ≡ {v}" for i, v in enumerate(cycle))
    steps = [
        f"Powers of {base} modulo {m}: {powers}, and then the pattern repeats (period {L}).",
        f"{exp} = {L} × {exp // L} + {pos}.",
        f"So {base}^{exp} ≡ {base}^{pos if pos else L} ≡ {ans} (mod {m}).",
    ]
    return done(q, steps, ans)


def nt_common_remainder(r: random.Random) -> Problem:
    while True:
        divs = sorted(r.sample(range(3, 13), r.choice([2, 3])))
        rem = r.randint(1, min(divs) - 1)
        L = math.lcm(*divs)
        if L <= 1000 and L not in divs:
            break
    ds = ", ".join(map(str, divs[:-1])) + f" and {divs[-1]}" if len(divs) > 2 else f"{divs[0]} and {divs[1]}"
    q = f"What is the smallest number greater than {rem} that leaves remainder {rem} when divided by each of {ds}?"
    steps = [
        f"The number minus {rem} must be a positive multiple of each of {ds}.",
        f"The least common multiple of {ds} is {L}.",
        f"So the number is {L} + {rem} = {L + rem}.",
    ]
    return done(q, steps, L + rem)


def nt_count_multiples(r: random.Random) -> Problem:
    k = r.randint(3, 19)
    lo = r.randint(1, 200)
    hi = lo + r.randint(50, 800)
    count = hi // k - (lo - 1) // k
    q = f"How many integers from {lo} to {hi}, inclusive, are divisible by {k}?"
    steps = [
        f"Multiples of {k} up to {hi}: {hi} ÷ {k} rounds down to {hi // k}.",
        f"Multiples of {k} up to {lo - 1}: {lo - 1} ÷ {k} rounds down to {(lo - 1) // k}.",
        f"In the range: {hi // k} - {(lo - 1) // k} = {count}.",
    ]
    return done(q, steps, count)


PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97)


def nt_prime_factor(r: random.Random) -> Problem:
    while True:
        ps = sorted(r.choices(PRIMES, k=r.randint(2, 4)))
        n = math.prod(ps)
        if 30 <= n <= 20000 and len(set(ps)) >= 2:
            break
    f = factorize(n)
    ask = r.choice(["largest", "sum"])
    q = (
        f"What is the largest prime factor of {n}?"
        if ask == "largest"
        else f"What is the sum of the distinct prime factors of {n}?"
    )
    steps = [f"Factor: {n} = {fact_text(f)}."]
    if ask == "largest":
        steps.append(f"The largest prime factor is {max(f)}.")
        return done(q, steps, max(f))
    steps.append(
        f"Distinct primes: {', '.join(map(str, sorted(f)))}; sum = {' + '.join(map(str, sorted(f)))} = {sum(f)}."
    )
    return done(q, steps, sum(f))


def nt_crt(r: random.Random) -> Problem:
    while True:
        m, n = r.sample([3, 4, 5, 7, 8, 9, 11], 2)
        if math.gcd(m, n) == 1:
            break
    a, b = r.randint(1, m - 1), r.randint(0, n - 1)
    cands = []
    x = a
    while x % n != b:
        cands.append(x)
        x += m
    cands.append(x)
    q = (
        f"What is the smallest positive integer that leaves remainder {a} when divided by {m} "
        f"and remainder {b} when divided by {n}?"
    )
    steps = [
        f"Numbers with remainder {a} on division by {m}: {', '.join(map(str, cands))}, ...",
        f"Their remainders on division by {n}: {', '.join(str(c % n) for c in cands)}.",
        f"The first with remainder {b} is {x}.",
    ]
    return done(q, steps, x)


def nt_trailing_zeros(r: random.Random) -> Problem:
    n = r.randint(26, 700)
    terms, p = [], 5
    while p <= n:
        terms.append((p, n // p))
        p *= 5
    total = sum(t for _, t in terms)
    q = f"How many zeros are at the end of {n}! (that is, {n} factorial)?"
    steps = [
        "Each trailing zero needs a factor 10 = 2 × 5, and there are more 2s than 5s, so count the factors of 5.",
        *[f"Multiples of {p} up to {n}: {n} ÷ {p} rounds down to {t}." for p, t in terms],
        f"Total: {' + '.join(str(t) for _, t in terms)} = {total}.",
    ]
    return done(q, steps, total)


def nt_missing_digit(r: random.Random) -> Problem:
    while True:
        digits = [r.randint(1, 9)] + [r.randint(0, 9) for _ in range(r.randint(3, 5))]
        pos = r.randint(1, len(digits) - 1)
        known = sum(digits) - digits[pos]
        d = (-known) % 9
        if d not in (0, 9):  # one answer only
            break
    digits[pos] = d
    shown = "".join("d" if i == pos else str(v) for i, v in enumerate(digits))
    q = f"The number {shown}, where d is a single digit, is divisible by 9. What is d?"
    steps = [
        "A number is divisible by 9 exactly when its digit sum is.",
        f"The known digits add up to {known}, so {known} + d must be a multiple of 9.",
        f"The next multiple of 9 is {known + d}, so d = {d} (d = {d + 9} is not a digit).",
    ]
    return done(q, steps, d)


def nt_base(r: random.Random) -> Problem:
    b = r.choice([2, 3, 4, 5, 6, 7, 8])
    digits = [r.randint(1, b - 1)] + [r.randint(0, b - 1) for _ in range(r.randint(2, 5 if b == 2 else 3))]
    n = len(digits)
    value = sum(d * b ** (n - 1 - i) for i, d in enumerate(digits))
    shown = "".join(map(str, digits))
    q = f"What is the base-{b} number {shown} written in base 10?"
    terms = [f"{d} × {b}^{n - 1 - i}" for i, d in enumerate(digits)]
    values = [d * b ** (n - 1 - i) for i, d in enumerate(digits)]
    steps = [
        f"{shown} in base {b} = {' + '.join(terms)}.",
        f"= {' + '.join(map(str, values))} = {value}.",
    ]
    return done(q, steps, value)


def nt_mod_expr(r: random.Random) -> Problem:
    m = r.randint(5, 13)
    a, b, c = r.randint(100, 999), r.randint(100, 999), r.randint(10, 999)
    ra, rb, rc = a % m, b % m, c % m
    ans = (a * b + c) % m
    q = f"What is the remainder when {a} × {b} + {c} is divided by {m}?"
    steps = [
        f"Reduce each number mod {m}: {a} ≡ {ra}, {b} ≡ {rb}, {c} ≡ {rc}.",
        f"So the expression ≡ {ra} × {rb} + {rc} = {ra * rb + rc} (mod {m}).",
        f"{ra * rb + rc} = {m} × {(ra * rb + rc) // m} + {ans}, so the remainder is {ans}."
        if ra * rb + rc >= m
        else f"{ra * rb + rc} is already less than {m}, so the remainder is {ans}.",
    ]
    return done(q, steps, ans)


# --------------------------------------------------------------------------- counting & probability


def cp_arrange(r: random.Random) -> Problem:
    things = r.choice(
        ["books on a shelf", "runners in a line", "photos in a row", "cars in a parade", "songs in a playlist"]
    )
    n = r.randint(4, 9)
    if r.random() < 0.5:
        q = f"In how many ways can {n} different {things} be ordered?"
        steps = [
            f"There are {n} choices for the first place, {n - 1} for the second, and so on.",
            f"{n}! = {' × '.join(str(i) for i in range(n, 0, -1))} = {math.factorial(n)}.",
        ]
        return done(q, steps, math.factorial(n))
    n = r.randint(6, 12)
    k = r.randint(2, 4)
    q = f"From {n} different {things.split(' ')[0]}, how many ordered lists of {k} can be made (order matters, no repeats)?"
    steps = [
        f"There are {n} choices for the first, {n - 1} for the second, and so on for {k} places.",
        f"{' × '.join(str(n - i) for i in range(k))} = {math.perm(n, k)}.",
    ]
    return done(q, steps, math.perm(n, k))


def cp_committee(r: random.Random) -> Problem:
    n, k = r.randint(6, 15), r.randint(2, 5)
    group = r.choice(["students", "players", "volunteers", "employees", "club members"])
    q = f"In how many ways can a committee of {k} be chosen from {n} {group}?"
    steps = [
        f"Order does not matter, so count combinations: C({n}, {k}) = {n}! / ({k}! × {n - k}!).",
        f"= ({' × '.join(str(n - i) for i in range(k))}) / ({' × '.join(str(i) for i in range(k, 0, -1))}) "
        f"= {math.perm(n, k)} / {math.factorial(k)} = {math.comb(n, k)}.",
    ]
    return done(q, steps, math.comb(n, k))


def cp_two_draws(r: random.Random) -> Problem:
    red, blue = r.randint(2, 9), r.randint(2, 9)
    n = red + blue
    kind = r.choice(["both red", "both blue", "one of each"])
    q = (
        f"A bag has {red} red and {blue} blue marbles. Two are drawn without replacement. "
        f"What is the probability that they are {kind.replace('one of each', 'one of each color')}?"
    )
    if kind == "one of each":
        p1 = Fraction(red, n) * Fraction(blue, n - 1)
        p2 = Fraction(blue, n) * Fraction(red, n - 1)
        steps = [
            f"Red then blue: {red}/{n} × {blue}/{n - 1} = {ratio(red * blue, n * (n - 1))}.",
            f"Blue then red: {blue}/{n} × {red}/{n - 1} = {ratio(red * blue, n * (n - 1))}.",
            f"Add: {fmt(p1)} + {fmt(p2)} = {fmt(p1 + p2)}.",
        ]
        return done(q, steps, p1 + p2)
    c = red if kind == "both red" else blue
    color = "red" if kind == "both red" else "blue"
    p = Fraction(c, n) * Fraction(c - 1, n - 1)
    steps = [
        f"First {color}: {c}/{n}.",
        f"Second {color}, given the first was: {c - 1}/{n - 1}.",
        f"Multiply: {c}/{n} × {c - 1}/{n - 1} = {ratio(c * (c - 1), n * (n - 1))}.",
    ]
    return done(q, steps, p)


def cp_dice_sum(r: random.Random) -> Problem:
    mode = r.choice(["eq", "ge", "le"])
    s = r.randint(3, 11)
    pairs = [(a, b) for a in range(1, 7) for b in range(1, 7)]
    test = {"eq": lambda t: t == s, "ge": lambda t: t >= s, "le": lambda t: t <= s}[mode]
    good = [p for p in pairs if test(sum(p))]
    phrase = {"eq": f"exactly {s}", "ge": f"at least {s}", "le": f"at most {s}"}[mode]
    q = f"Two fair six-sided dice are rolled. What is the probability that the sum is {phrase}?"
    per = Counter(sum(p) for p in good)
    steps = [
        "There are 6 × 6 = 36 equally likely outcomes.",
        "Favorable outcomes by sum: "
        + ", ".join(f"{t}: {c}" for t, c in sorted(per.items()))
        + f"; {len(good)} in all.",
        f"Probability: {ratio(len(good), 36)}.",
    ]
    return done(q, steps, Fraction(len(good), 36))


WORDS = (
    "LEVEL", "BANANA", "APPLE", "BALLOON", "COFFEE", "LETTER", "PEPPER", "TOMATO", "ALABAMA",
    "ASSESS", "SUCCESS", "COOKBOOK", "PUZZLE", "RECORD", "CANADA", "BOOKKEEPER", "STATISTICS",
    "PARALLEL", "REFERENCE", "ADDRESS", "MAMMAL", "BUBBLE", "TATTOO", "GOOGOL", "ERROR",
)  # fmt: skip


def cp_word(r: random.Random) -> Problem:
    word = r.choice(WORDS)
    cnt = Counter(word)
    reps = {ch: c for ch, c in sorted(cnt.items()) if c > 1}
    n = len(word)
    denom = math.prod(math.factorial(c) for c in reps.values())
    ans = math.factorial(n) // denom
    q = f"How many distinct arrangements of the letters in {word} are there?"
    steps = [
        f"{word} has {n} letters; repeated: " + ", ".join(f"{ch} × {c}" for ch, c in reps.items()) + ".",
        f"Divide {n}! by the factorials of the repeat counts: {n}! / ("
        + " × ".join(f"{c}!" for c in reps.values())
        + f") = {math.factorial(n)} / {denom} = {ans}.",
    ]
    return done(q, steps, ans)


def cp_outfits(r: random.Random) -> Problem:
    name = r.choice(NAMES)
    kinds = r.sample(
        [("shirts", 3, 9), ("pairs of pants", 2, 6), ("hats", 2, 5), ("jackets", 2, 4), ("pairs of shoes", 2, 5)], 3
    )
    counts = [r.randint(lo, hi) for _, lo, hi in kinds]
    listed = (
        ", ".join(f"{c} {k}" for c, (k, _, _) in zip(counts[:-1], kinds[:-1])) + f" and {counts[-1]} {kinds[-1][0]}"
    )
    q = f"{name} has {listed}. How many outfits of one of each can {name} make?"
    steps = [f"Multiply the choices: {' × '.join(map(str, counts))} = {math.prod(counts)}."]
    return done(q, steps, math.prod(counts))


def cp_heads(r: random.Random) -> Problem:
    n = r.randint(3, 10)
    k = r.randint(0, n)
    mode = r.choice(["exactly", "at least"]) if 0 < k < n else "exactly"
    q = f"A fair coin is flipped {n} times. What is the probability of getting {mode} {units(k, 'head')}?"
    if mode == "exactly":
        steps = [
            f"There are 2^{n} = {2**n} equally likely sequences.",
            f"Sequences with exactly {units(k, 'head')}: C({n}, {k}) = {math.comb(n, k)}.",
            f"Probability: {ratio(math.comb(n, k), 2**n)}.",
        ]
        return done(q, steps, Fraction(math.comb(n, k), 2**n))
    good = sum(math.comb(n, i) for i in range(k, n + 1))
    steps = [
        f"There are 2^{n} = {2**n} equally likely sequences.",
        f"Sequences with at least {units(k, 'head')}: "
        + " + ".join(f"C({n}, {i})" for i in range(k, n + 1))
        + " = "
        + " + ".join(str(math.comb(n, i)) for i in range(k, n + 1))
        + f" = {good}.",
        f"Probability: {ratio(good, 2**n)}.",
    ]
    return done(q, steps, Fraction(good, 2**n))


def cp_mixed_committee(r: random.Random) -> Problem:
    men, women = r.randint(4, 10), r.randint(4, 10)
    k = r.randint(3, 6)
    j = r.randint(1, min(k - 1, women))
    if k - j > men:
        j = k - men
    team = r.choice(["committee", "team", "panel"])
    q = f"A {team} of {k} is chosen from {men} men and {women} women. In how many ways can it have exactly {j} women?"
    cw, cm = math.comb(women, j), math.comb(men, k - j)
    steps = [
        f"Choose the women: C({women}, {j}) = {cw}.",
        f"Choose the remaining {k - j} from the men: C({men}, {k - j}) = {cm}.",
        f"Multiply: {cw} × {cm} = {cw * cm}.",
    ]
    return done(q, steps, cw * cm)


def cp_at_least_one(r: random.Random) -> Problem:
    if r.random() < 0.5:
        n = r.randint(2, 5)
        face = r.randint(1, 6)
        q = f"A fair die is rolled {n} times. What is the probability that at least one roll is a {face}?"
        none = Fraction(5, 6) ** n
        steps = [
            f"Use the complement: the probability that no roll is a {face}.",
            f"No {face} on one roll: 5/6; on all {n} rolls: (5/6)^{n} = {fmt(none)}.",
            f"At least one {face}: 1 - {fmt(none)} = {fmt(1 - none)}.",
        ]
        return done(q, steps, 1 - none)
    n = r.randint(2, 8)
    side = r.choice(["heads", "tails"])
    none = Fraction(1, 2**n)
    q = f"A fair coin is tossed {n} times. What is the probability of at least one {side[:-1]}?"
    steps = [
        f"Use the complement: no {side[:-1]} means every toss is {'tails' if side == 'heads' else 'heads'}.",
        f"That has probability (1/2)^{n} = {fmt(none)}.",
        f"At least one {side[:-1]}: 1 - {fmt(none)} = {fmt(1 - none)}.",
    ]
    return done(q, steps, 1 - none)


def cp_expected(r: random.Random) -> Problem:
    win_big, win_small, lose = r.randint(5, 20), r.randint(1, 4), r.randint(1, 5)
    big_faces = 1
    small_faces = r.randint(1, 3)
    lose_faces = 6 - big_faces - small_faces
    small_list = list(range(6 - small_faces, 6))
    low = lose_faces
    q = (
        f"In a game you roll a fair die. A 6 wins ${win_big}, a roll of "
        + (f"{small_list[0]}" if small_faces == 1 else f"{small_list[0]} to {small_list[-1]}")
        + f" wins ${win_small}, and a roll of 1 to {low} loses ${lose}. What is the expected winning per game, in dollars?"
    )
    ev = Fraction(win_big * big_faces + win_small * small_faces - lose * lose_faces, 6)
    steps = [
        f"Probabilities: 6 has 1/6, the middle outcome has {fmt(Fraction(small_faces, 6))}, losing has {fmt(Fraction(lose_faces, 6))}.",
        f"E = {win_big} × 1/6 + {win_small} × {fmt(Fraction(small_faces, 6))} - {lose} × {fmt(Fraction(lose_faces, 6))}.",
        f"= ({win_big} + {win_small * small_faces} - {lose * lose_faces})/6 = {fmt(ev)}.",
    ]
    return done(q, steps, ev)


def cp_handshakes(r: random.Random) -> Problem:
    n = r.randint(5, 40)
    setting = r.choice(["At a party", "At a meeting", "In a chess tournament"])
    if setting == "In a chess tournament":
        q = f"In a chess tournament with {n} players, each player plays every other player once. How many games are played?"
    else:
        q = f"{setting}, each of {n} people shakes hands with every other person once. How many handshakes are there?"
    steps = [
        f"Each pair counts once, so count pairs: C({n}, 2) = {n} × {n - 1} / 2.",
        f"= {n * (n - 1)} / 2 = {math.comb(n, 2)}.",
    ]
    return done(q, steps, math.comb(n, 2))


def cp_codes(r: random.Random) -> Problem:
    letters, L = r.randint(4, 10), r.randint(1, 3)
    D = r.randint(1, 3)
    alpha = "ABCDEFGHIJ"[:letters]
    rep = r.random() < 0.5
    q = (
        f"A code is {L} letter{'s' if L > 1 else ''} chosen from {alpha[0]}-{alpha[-1]} "
        f"{'(letters may repeat)' if rep else '(no letter repeated)'} followed by {D} digit{'s' if D > 1 else ''} "
        f"(digits may repeat). How many codes are possible?"
    )
    lpart = letters**L if rep else math.perm(letters, L)
    steps = [
        f"Letter part: {letters} choices."
        if L == 1
        else f"Letter part: {letters}^{L} = {lpart}."
        if rep
        else f"Letter part: {' × '.join(str(letters - i) for i in range(L))} = {lpart}.",
        f"Digit part: 10^{D} = {10**D}.",
        f"Total: {lpart} × {10**D} = {lpart * 10**D}.",
    ]
    return done(q, steps, lpart * 10**D)


def cp_circular(r: random.Random) -> Problem:
    n = r.randint(4, 9)
    q = f"In how many ways can {n} people sit around a round table, if rotations of the same seating count as one?"
    steps = [
        "Fix one person's seat to remove rotations; arrange the rest in a line.",
        f"({n} - 1)! = {n - 1}! = {math.factorial(n - 1)}.",
    ]
    return done(q, steps, math.factorial(n - 1))


def cp_either_multiple(r: random.Random) -> Problem:
    a, b = r.sample(range(2, 13), 2)
    N = r.randint(50, 500)
    L = math.lcm(a, b)
    na, nb, nl = N // a, N // b, N // L
    q = f"How many integers from 1 to {N} are divisible by {a} or {b} (or both)?"
    steps = [
        f"Divisible by {a}: {N} ÷ {a} rounds down to {na}.",
        f"Divisible by {b}: {N} ÷ {b} rounds down to {nb}.",
        f"Divisible by both means divisible by lcm({a}, {b}) = {L}: {N} ÷ {L} rounds down to {nl}.",
        f"Inclusion-exclusion: {na} + {nb} - {nl} = {na + nb - nl}.",
    ]
    return done(q, steps, na + nb - nl)


def cp_grid(r: random.Random) -> Problem:
    m, n = r.randint(2, 8), r.randint(2, 8)
    q = (
        f"A robot walks on a grid from (0, 0) to ({m}, {n}), moving one unit right or one unit up at each step. "
        f"How many different paths can it take?"
    )
    steps = [
        f"Every path has {m} right moves and {n} up moves, {m + n} moves in all.",
        f"A path is fixed by choosing which {m} of the {m + n} moves go right: C({m + n}, {m}).",
        f"C({m + n}, {m}) = {math.comb(m + n, m)}.",
    ]
    return done(q, steps, math.comb(m + n, m))


# --------------------------------------------------------------------------- geometry


def ge_rectangle(r: random.Random) -> Problem:
    L, W = r.randint(5, 40), r.randint(2, 30)
    if L == W:
        L += 1
    P = 2 * (L + W)
    q = f"A rectangle has perimeter {P} cm and length {L} cm. What is its area in square centimeters?"
    steps = [
        f"Length + width = {P} ÷ 2 = {L + W}.",
        f"Width = {L + W} - {L} = {W}.",
        f"Area = {L} × {W} = {L * W}.",
    ]
    return done(q, steps, L * W)


TRIPLES = ((3, 4, 5), (5, 12, 13), (8, 15, 17), (7, 24, 25), (20, 21, 29), (9, 40, 41))


def ge_pythagoras(r: random.Random) -> Problem:
    a, b, c = r.choice(TRIPLES)
    k = r.randint(1, 6 if c < 20 else 2)
    a, b, c = k * a, k * b, k * c
    if r.random() < 0.5:
        q = f"A right triangle has legs {a} and {b}. How long is the hypotenuse?"
        steps = [
            f"c^2 = {a}^2 + {b}^2 = {a * a} + {b * b} = {c * c}.",
            f"c = √{c * c} = {c}.",
        ]
        return done(q, steps, c)
    a, b = r.sample((a, b), 2)
    q = f"A right triangle has hypotenuse {c} and one leg {a}. How long is the other leg?"
    steps = [
        f"b^2 = {c}^2 - {a}^2 = {c * c} - {a * a} = {b * b}.",
        f"b = √{b * b} = {b}.",
    ]
    return done(q, steps, b)


def ge_angles(r: random.Random) -> Problem:
    if r.random() < 0.6:
        a, b = r.randint(20, 100), r.randint(20, 100)
        if a + b >= 170:
            a, b = a // 2, b // 2
        q = f"Two angles of a triangle measure {a}° and {b}°. What is the third angle, in degrees?"
        steps = [
            "The angles of a triangle add up to 180°.",
            f"Third angle: 180 - {a} - {b} = {180 - a - b}.",
        ]
        return done(q, steps, 180 - a - b)
    apex = 2 * r.randint(10, 80)
    q = f"The angle between the two equal sides of an isosceles triangle is {apex}°. What is each base angle, in degrees?"
    steps = [
        f"The two base angles together are 180 - {apex} = {180 - apex}.",
        f"Each base angle is {180 - apex} ÷ 2 = {(180 - apex) // 2}.",
    ]
    return done(q, steps, (180 - apex) // 2)


def ge_circle(r: random.Random) -> Problem:
    mode = r.choice(["area_d", "area_c", "circ"])
    if mode == "area_d":
        d = r.randint(3, 30)
        q = f"A circle has diameter {d}. Its area is kπ. What is k?"
        rad = Fraction(d, 2)
        steps = [
            f"Radius = {d} ÷ 2 = {fmt(rad)}.",
            f"Area = π r^2 = π × ({fmt(rad)})^2 = {fmt(rad * rad)}π.",
        ]
        return done(q, steps, rad * rad)
    if mode == "area_c":
        rad = r.randint(2, 25)
        q = f"A circle has circumference {2 * rad}π. Its area is kπ. What is k?"
        steps = [
            f"Circumference = 2πr = {2 * rad}π, so r = {rad}.",
            f"Area = π r^2 = {rad}^2 π = {rad * rad}π.",
        ]
        return done(q, steps, rad * rad)
    area = r.randint(2, 20) ** 2
    rad = math.isqrt(area)
    q = f"A circle has area {area}π. Its circumference is kπ. What is k?"
    steps = [
        f"π r^2 = {area}π, so r^2 = {area} and r = {rad}.",
        f"Circumference = 2πr = {2 * rad}π.",
    ]
    return done(q, steps, 2 * rad)


def ge_polygon(r: random.Random) -> Problem:
    mode = r.choice(["interior", "sides", "sum"])
    if mode == "interior":
        n = r.randint(5, 20)
        total = (n - 2) * 180
        q = f"What is the measure, in degrees, of each interior angle of a regular polygon with {n} sides?"
        steps = [
            f"The interior angles add up to ({n} - 2) × 180 = {total}.",
            f"Each angle: {total} ÷ {n} = {fmt(Fraction(total, n))}.",
        ]
        return done(q, steps, Fraction(total, n))
    if mode == "sides":
        n = r.choice([d for d in range(5, 73) if 360 % d == 0])
        ext = 360 // n
        q = f"Each interior angle of a regular polygon measures {180 - ext}°. How many sides does it have?"
        steps = [
            f"Each exterior angle is 180 - {180 - ext} = {ext}°.",
            f"The exterior angles add up to 360°, so there are 360 ÷ {ext} = {n} sides.",
        ]
        return done(q, steps, n)
    n = r.randint(5, 25)
    q = f"What is the sum of the interior angles of a polygon with {n} sides, in degrees?"
    steps = [f"Sum = ({n} - 2) × 180 = {n - 2} × 180 = {(n - 2) * 180}."]
    return done(q, steps, (n - 2) * 180)


def ge_box(r: random.Random) -> Problem:
    length, w, h = r.randint(2, 20), r.randint(2, 15), r.randint(2, 12)
    if r.random() < 0.5:
        q = f"A rectangular box is {length} cm long, {w} cm wide and {h} cm high. What is its volume in cubic centimeters?"
        steps = [f"Volume = {length} × {w} × {h} = {length * w * h}."]
        return done(q, steps, length * w * h)
    q = f"A closed rectangular box is {length} cm long, {w} cm wide and {h} cm high. What is its surface area in square centimeters?"
    steps = [
        f"Top and bottom: 2 × {length} × {w} = {2 * length * w}.",
        f"Front and back: 2 × {length} × {h} = {2 * length * h}.",
        f"Two sides: 2 × {w} × {h} = {2 * w * h}.",
        f"Total: {2 * length * w} + {2 * length * h} + {2 * w * h} = {2 * (length * w + length * h + w * h)}.",
    ]
    return done(q, steps, 2 * (length * w + length * h + w * h))


def ge_triangle_coords(r: random.Random) -> Problem:
    while True:
        pts = [(r.randint(-6, 8), r.randint(-6, 8)) for _ in range(3)]
        (x1, y1), (x2, y2), (x3, y3) = pts
        s = x1 * (y2 - y3) + x2 * (y3 - y1) + x3 * (y1 - y2)
        if s != 0:
            break
    area = Fraction(abs(s), 2)
    q = f"What is the area of the triangle with vertices ({x1}, {y1}), ({x2}, {y2}) and ({x3}, {y3})?"
    t1, t2, t3 = x1 * (y2 - y3), x2 * (y3 - y1), x3 * (y1 - y2)
    steps = [
        "Shoelace formula: Area = |x1(y2 - y3) + x2(y3 - y1) + x3(y1 - y2)| / 2.",
        f"Terms: {x1} × ({y2} - {par(y3)}) = {t1}; {x2} × ({y3} - {par(y1)}) = {t2}; {x3} × ({y1} - {par(y2)}) = {t3}.",
        f"Sum: {t1} + {par(t2)} + {par(t3)} = {s}.",
        f"Area = |{s}| / 2 = {fmt(area)}.",
    ]
    return done(q, steps, area)


def ge_distance(r: random.Random) -> Problem:
    a, b, c = r.choice(TRIPLES[:4])
    k = r.randint(1, 3)
    dx, dy = k * a * r.choice([-1, 1]), k * b * r.choice([-1, 1])
    if r.random() < 0.5:
        dx, dy = dy, dx
    x1, y1 = r.randint(-10, 10), r.randint(-10, 10)
    x2, y2 = x1 + dx, y1 + dy
    q = f"What is the distance between the points ({x1}, {y1}) and ({x2}, {y2})?"
    steps = [
        f"Horizontal difference: {x2} - {par(x1)} = {dx}; vertical difference: {y2} - {par(y1)} = {dy}.",
        f"Distance^2 = {par(dx)}^2 + {par(dy)}^2 = {dx * dx} + {dy * dy} = {dx * dx + dy * dy}.",
        f"Distance = √{dx * dx + dy * dy} = {k * c}.",
    ]
    return done(q, steps, k * c)


def ge_l_shape(r: random.Random) -> Problem:
    A, B = r.randint(8, 30), r.randint(8, 30)
    a, b = r.randint(2, A - 3), r.randint(2, B - 3)
    q = (
        f"An L-shaped garden is made by cutting a {a} m by {b} m rectangle from the corner of a {A} m by {B} m "
        f"rectangle. What is the area of the garden in square meters?"
    )
    steps = [
        f"Area of the big rectangle: {A} × {B} = {A * B}.",
        f"Area of the cut-out: {a} × {b} = {a * b}.",
        f"Garden: {A * B} - {a * b} = {A * B - a * b}.",
    ]
    return done(q, steps, A * B - a * b)


def ge_trapezoid(r: random.Random) -> Problem:
    a, b, h = r.randint(3, 30), r.randint(3, 30), r.randint(2, 20)
    if a == b:
        b += 1
    area = Fraction((a + b) * h, 2)
    q = f"A trapezoid has parallel sides {a} and {b} and height {h}. What is its area?"
    steps = [
        f"Sum of the parallel sides: {a} + {b} = {a + b}.",
        f"Area = ({a + b} × {h}) / 2 = {(a + b) * h} / 2 = {fmt(area)}.",
    ]
    return done(q, steps, area)


def ge_similar(r: random.Random) -> Problem:
    a, b = r.randint(3, 15), r.randint(3, 15)
    k = Fraction(r.randint(2, 9), r.choice([1, 2, 3, 4]))
    if k == 1:
        k = Fraction(3)
    a2 = a * k
    while a2.denominator != 1:
        a *= 2
        a2 = a * k
    q = (
        f"Two triangles are similar. A side of length {a} in the first corresponds to a side of length {fmt(a2)} in "
        f"the second. Another side of the first has length {b}. How long is the corresponding side of the second?"
    )
    steps = [
        f"Scale factor: {fmt(a2)} / {a} = {fmt(k)}.",
        f"Corresponding side: {b} × {fmt(k)} = {fmt(b * k)}.",
    ]
    return done(q, steps, b * k)


def ge_diagonals(r: random.Random) -> Problem:
    n = r.randint(5, 30)
    q = f"How many diagonals does a convex polygon with {n} sides have?"
    steps = [
        f"Each vertex connects by a diagonal to {n} - 3 = {n - 3} others.",
        f"Each diagonal is counted twice: {n} × {n - 3} / 2 = {n * (n - 3) // 2}.",
    ]
    return done(q, steps, n * (n - 3) // 2)


def ge_paint(r: random.Random) -> Problem:
    L, W, H = r.randint(10, 24), r.randint(8, 20), r.randint(8, 10)
    door, window = 21, r.choice([12, 15, 16, 20])
    cover = r.choice([100, 150, 200, 250])
    walls = 2 * L * H + 2 * W * H
    paint = walls - door - window
    cans = ceil_div(paint, cover)
    q = (
        f"A room is {L} ft long, {W} ft wide and {H} ft high. Its four walls are painted, except for a door of "
        f"{door} sq ft and a window of {window} sq ft. One can of paint covers {cover} sq ft. How many cans are needed?"
    )
    steps = [
        f"Two long walls: 2 × {L} × {H} = {2 * L * H} sq ft.",
        f"Two short walls: 2 × {W} × {H} = {2 * W * H} sq ft.",
        f"All walls: {2 * L * H} + {2 * W * H} = {walls} sq ft.",
        f"Minus door and window: {walls} - {door} - {window} = {paint} sq ft.",
        f"{paint} ÷ {cover} = {paint // cover} exactly."
        if paint % cover == 0
        else f"{paint} ÷ {cover} = {paint // cover} remainder {paint % cover}, so {paint // cover} cans are not enough.",
    ]
    if paint % cover:
        steps.append(f"Round up to {cans} cans.")
    return done(q, steps, cans)


def ge_cylinder(r: random.Random) -> Problem:
    rad, h = r.randint(2, 12), r.randint(2, 20)
    if r.random() < 0.5:
        q = f"A cylinder has radius {rad} and height {h}. Its volume is kπ. What is k?"
        steps = [
            f"Volume = π r^2 h = π × {rad}^2 × {h}.",
            f"= π × {rad * rad} × {h} = {rad * rad * h}π.",
        ]
        return done(q, steps, rad * rad * h)
    q = f"A cone has base radius {rad} and height {h}. Its volume is kπ. What is k?"
    v = Fraction(rad * rad * h, 3)
    steps = [
        f"Volume = (1/3) π r^2 h = (1/3) π × {rad}^2 × {h}.",
        f"= (1/3) × {rad * rad * h}π = ({fmt(v)})π."
        if v.denominator > 1
        else f"= (1/3) × {rad * rad * h}π = {fmt(v)}π.",
    ]
    return done(q, steps, v)


def ge_square_diagonal(r: random.Random) -> Problem:
    s = r.randint(2, 40)
    if r.random() < 0.5:
        q = f"A square is inscribed in a circle of radius {s}. What is the area of the square?"
        steps = [
            f"The diagonal of the square is the diameter: 2 × {s} = {2 * s}.",
            "A square with diagonal d has area d^2 / 2.",
            f"Area = {2 * s}^2 / 2 = {4 * s * s} / 2 = {2 * s * s}.",
        ]
        return done(q, steps, 2 * s * s)
    P = 4 * s
    q = f"A square has perimeter {P}. What is its area?"
    steps = [f"Side = {P} ÷ 4 = {s}.", f"Area = {s}^2 = {s * s}."]
    return done(q, steps, s * s)


# --------------------------------------------------------------------------- speed section


def sp_mul(r: random.Random) -> Problem:
    a, b = r.randint(12, 99), r.randint(3, 19)
    return done(f"What is {a} × {b}?", [f"{a} × {b} = {a * b}."], a * b)


def sp_add_sub(r: random.Random) -> Problem:
    a, b, c = r.randint(20, 500), r.randint(10, 300), r.randint(10, 400)
    return done(
        f"What is {a} + {b} - {c}?",
        [f"{a} + {b} = {a + b}.", f"{a + b} - {c} = {a + b - c}."],
        a + b - c,
    )


def sp_div(r: random.Random) -> Problem:
    b, qv = r.randint(3, 25), r.randint(4, 40)
    return done(f"What is {b * qv} ÷ {b}?", [f"{b * qv} ÷ {b} = {qv}, since {b} × {qv} = {b * qv}."], qv)


def sp_unit_cost(r: random.Random) -> Problem:
    price, n = r.randint(2, 15), r.randint(3, 12)
    thing = r.choice(["Pens", "Cupcakes", "Tickets", "Notebooks", "Plants"])
    return done(
        f"{thing} cost ${price} each. How many dollars do {n} cost?",
        [f"{n} × ${price} = ${n * price}."],
        n * price,
    )


def sp_percent_of(r: random.Random) -> Problem:
    p, n = 5 * r.randint(1, 19), 20 * r.randint(1, 15)
    v = Fraction(p * n, 100)
    return done(f"What is {p}% of {n}?", [f"{p}% of {n} = {p}/100 × {n} = {fmt(v)}."], v)


def sp_frac_of(r: random.Random) -> Problem:
    while True:
        f = Fraction(r.randint(1, 8), r.randint(2, 9))
        if 0 < f < 1:
            break
    n = f.denominator * r.randint(2, 12)
    steps = [f"{n} ÷ {f.denominator} = {n // f.denominator}."]
    if f.numerator > 1:
        steps.append(f"{n // f.denominator} × {f.numerator} = {fmt(f * n)}.")
    return done(f"What is {fmt(f)} of {n}?", steps, f * n)


def sp_decimal(r: random.Random) -> Problem:
    while True:
        k = r.randint(1, 99)
        if k % 10:
            break
    f = Fraction(k, 100)
    steps = [f"0.{k:02d} = {k}/100."]
    if f.denominator != 100:
        steps.append(f"Simplify: {ratio(k, 100)}.")
    return done(f"Write 0.{k:02d} as a fraction in lowest terms.", steps, f)


def sp_frac_add(r: random.Random) -> Problem:
    b, d = r.sample([2, 3, 4, 5, 6, 8, 10], 2)
    val = Fraction(1, b) + Fraction(1, d)
    L = math.lcm(b, d)
    steps = [f"1/{b} + 1/{d} = {L // b}/{L} + {L // d}/{L} = {L // b + L // d}/{L}."]
    if val.denominator != L:
        steps.append(f"Simplify: {L // b + L // d}/{L} = {fmt(val)}.")
    return done(f"What is 1/{b} + 1/{d}?", steps, val)


def sp_solve_mul(r: random.Random) -> Problem:
    a, x = r.randint(2, 15), r.randint(-12, 20)
    return done(f"Solve for x: {a}x = {a * x}.", [f"x = {a * x} ÷ {a} = {x}."], x)


def sp_solve_add(r: random.Random) -> Problem:
    b, x = r.choice([v for v in range(-30, 40) if v]), r.randint(-20, 50)
    return done(
        f"Solve for x: x{plus(b)} = {x + b}.",
        [f"x = {x + b} - {par(b)} = {x}."],
        x,
    )


def sp_solve_two(r: random.Random) -> Problem:
    a, b, x = r.randint(2, 9), r.choice([v for v in range(-20, 21) if v]), r.randint(-10, 15)
    c = a * x + b
    return done(
        f"Solve for x: {a}x{plus(b)} = {c}.",
        [f"{a}x = {c} - {par(b)} = {c - b}.", f"x = {c - b} ÷ {a} = {x}."],
        x,
    )


def sp_substitute(r: random.Random) -> Problem:
    a, b, y = r.randint(2, 9), r.choice([v for v in range(-15, 16) if v]), r.randint(-6, 10)
    return done(
        f"If y = {y}, what is {a}y{plus(b)}?",
        [f"{a} × {par(y)}{plus(b)} = {a * y}{plus(b)} = {a * y + b}."],
        a * y + b,
    )


def sp_gcd(r: random.Random) -> Problem:
    g = r.randint(2, 15)
    a, b = r.sample(range(2, 12), 2)
    a, b = g * a, g * b
    ans = math.gcd(a, b)
    return done(
        f"What is the greatest common divisor of {a} and {b}?",
        [f"{fact_eq(a)} and {fact_eq(b)}; the common part is {ans}."],
        ans,
    )


def sp_lcm(r: random.Random) -> Problem:
    a, b = r.sample(range(3, 21), 2)
    ans = math.lcm(a, b)
    return done(
        f"What is the least common multiple of {a} and {b}?",
        [f"gcd({a}, {b}) = {math.gcd(a, b)}, so lcm = {a} × {b} ÷ {math.gcd(a, b)} = {ans}."],
        ans,
    )


def sp_remainder(r: random.Random) -> Problem:
    n, m = r.randint(50, 999), r.randint(3, 19)
    qv, rem = divmod(n, m)
    return done(
        f"What is the remainder when {n} is divided by {m}?",
        [f"{n} = {m} × {qv} + {rem}, so the remainder is {rem}."],
        rem,
    )


def sp_next_prime(r: random.Random) -> Problem:
    n = r.randint(10, 190)
    p = n + 1
    while any(p % d == 0 for d in range(2, math.isqrt(p) + 1)):
        p += 1
    skipped = list(range(n + 1, p))
    why = (
        f"{', '.join(map(str, skipped))} {'is' if len(skipped) == 1 else 'are'} composite, and {p} is prime."
        if skipped
        else f"{p} is prime."
    )
    return done(f"What is the smallest prime greater than {n}?", [why], p)


def sp_line_up(r: random.Random) -> Problem:
    n = r.randint(3, 9)
    who = r.choice(["people", "children", "dogs", "cars"])
    return done(
        f"In how many ways can {n} {who} line up?",
        [f"{n}! = {' × '.join(str(i) for i in range(n, 0, -1))} = {math.factorial(n)}."],
        math.factorial(n),
    )


def sp_choose(r: random.Random) -> Problem:
    n, k = r.randint(5, 14), r.randint(2, 3)
    thing = r.choice(["books", "students", "songs", "toppings"])
    return done(
        f"How many ways can {k} {thing} be chosen from {n}?",
        [
            f"C({n}, {k}) = ({' × '.join(str(n - i) for i in range(k))}) / {k}! = {math.perm(n, k)} / {math.factorial(k)} = {math.comb(n, k)}."
        ],
        math.comb(n, k),
    )


def sp_marble(r: random.Random) -> Problem:
    red, blue = r.randint(1, 12), r.randint(1, 12)
    p = Fraction(red, red + blue)
    steps = [f"P(red) = {red}/({red} + {blue}) = {red}/{red + blue}."]
    if p.denominator != red + blue:
        steps.append(f"Simplify: {red}/{red + blue} = {fmt(p)}.")
    return done(f"A bag has {red} red and {blue} blue marbles. What is the probability of drawing red?", steps, p)


def sp_die(r: random.Random) -> Problem:
    mode, k = r.choice(["greater", "less"]), r.randint(1, 5)
    good = 6 - k if mode == "greater" else k - 1
    if good == 0:
        mode, good = "greater", 6 - k
    p = Fraction(good, 6)
    return done(
        f"A fair die is rolled. What is the probability of a number {mode} than {k}?",
        [f"{good} of the 6 faces {'qualifies' if good == 1 else 'qualify'}, so the probability is {ratio(good, 6)}."],
        p,
    )


def sp_rect_area(r: random.Random) -> Problem:
    a, b = r.randint(3, 25), r.randint(3, 25)
    return done(f"What is the area of a {a} by {b} rectangle?", [f"Area = {a} × {b} = {a * b}."], a * b)


def sp_square_perimeter(r: random.Random) -> Problem:
    s = r.randint(3, 60)
    return done(f"What is the perimeter of a square with side {s}?", [f"Perimeter = 4 × {s} = {4 * s}."], 4 * s)


def sp_third_angle(r: random.Random) -> Problem:
    a, b = 5 * r.randint(4, 18), 5 * r.randint(4, 14)  # a + b <= 160
    return done(
        f"A triangle has angles {a}° and {b}°. What is the third angle in degrees?",
        [f"180 - {a} - {b} = {180 - a - b}."],
        180 - a - b,
    )


def sp_triangle_area(r: random.Random) -> Problem:
    base, h = 2 * r.randint(2, 15), r.randint(3, 20)
    return done(
        f"A triangle has base {base} and height {h}. What is its area?",
        [f"Area = {base} × {h} / 2 = {base * h // 2}."],
        base * h // 2,
    )


Template = Callable[[random.Random], Problem]

TEMPLATES: dict[tuple[str, str], list[Template]] = {
    ("arithmetic", "main"): [
        ar_containers,
        ar_give_buy,
        ar_unit_price,
        ar_trip,
        ar_bakery,
        ar_factory,
        ar_savings,
        ar_average,
        ar_minutes,
        ar_change,
        ar_reading,
        ar_tickets,
        ar_teams,
        ar_average_speed,
        ar_sales,
    ],
    ("fractions_percentages", "main"): [
        fp_part_of_group,
        fp_percent_change,
        fp_reverse_percent,
        fp_mul_div,
        fp_add,
        fp_percent_of_total,
        fp_interest,
        fp_tank,
        fp_ratio,
        fp_discount_tax,
        fp_successive,
        fp_remaining,
        fp_bill_split,
    ],
    ("algebra", "main"): [
        al_linear,
        al_compose,
        al_sum_diff,
        al_sequence,
        al_quadratic,
        al_evaluate,
        al_both_sides,
        al_inequality,
        al_slope,
        al_work,
        al_consecutive,
        al_coins,
        al_age,
        al_system,
    ],
    ("number_theory", "main"): [
        nt_prime_factor,
        nt_lcm,
        nt_base,
        nt_units_digit,
        nt_powmod,
        nt_count_multiples,
        nt_crt,
        nt_common_remainder,
        nt_missing_digit,
        nt_mod_expr,
        nt_divisors,
        nt_trailing_zeros,
        nt_gcd,
    ],
    ("counting_probability", "main"): [
        cp_outfits,
        cp_arrange,
        cp_committee,
        cp_circular,
        cp_handshakes,
        cp_codes,
        cp_word,
        cp_two_draws,
        cp_dice_sum,
        cp_heads,
        cp_mixed_committee,
        cp_at_least_one,
        cp_expected,
        cp_grid,
        cp_either_multiple,
    ],
    ("geometry", "main"): [
        ge_box,
        ge_angles,
        ge_circle,
        ge_polygon,
        ge_diagonals,
        ge_similar,
        ge_trapezoid,
        ge_square_diagonal,
        ge_cylinder,
        ge_rectangle,
        ge_pythagoras,
        ge_distance,
        ge_l_shape,
        ge_triangle_coords,
        ge_paint,
    ],
    ("arithmetic", "speed"): [sp_mul, sp_add_sub, sp_div, sp_unit_cost],
    ("fractions_percentages", "speed"): [sp_percent_of, sp_frac_of, sp_decimal, sp_frac_add],
    ("algebra", "speed"): [sp_solve_mul, sp_solve_add, sp_solve_two, sp_substitute],
    ("number_theory", "speed"): [sp_gcd, sp_lcm, sp_remainder, sp_next_prime],
    ("counting_probability", "speed"): [sp_line_up, sp_choose, sp_marble, sp_die],
    ("geometry", "speed"): [sp_rect_area, sp_square_perimeter, sp_third_angle, sp_triangle_area],
}


# --------------------------------------------------------------------------- assembly


def generate() -> list[dict]:
    rows: list[dict] = []
    seen: set[str] = set()
    for category in CATEGORIES:
        for section in SECTIONS:
            templates = TEMPLATES[(category, section)]
            rng = random.Random(f"{SEED}/{category}/{section}")
            group: list[Problem] = []
            for i in range(PER_CATEGORY[section]):
                template = templates[i % len(templates)]
                for _ in range(500):
                    p = template(rng)
                    if p.question not in seen:
                        break
                else:
                    raise RuntimeError(f"{template.__name__}: could not find a new question")
                seen.add(p.question)
                group.append(p)
            splits = assign_splits(group, random.Random(f"{SEED}/split/{category}/{section}"))
            for p, split in zip(group, splits):
                rows.append(
                    dict(
                        question=p.question,
                        answer=p.answer,
                        solution=p.solution,
                        category=category,
                        section=section,
                        difficulty=p.difficulty,
                        split=split,
                    )
                )
    check_rows(rows)
    return rows


def assign_splits(group: list[Problem], rng: random.Random) -> list[str]:
    """Stratified by difficulty: sort, then deal blocks of 10 as 6/1/2/1 in a shuffled order."""
    block = [name for name, k in SPLIT_BLOCK for _ in range(k)]
    assert len(group) % len(block) == 0, f"group size {len(group)} must be a multiple of {len(block)}"
    order = sorted(range(len(group)), key=lambda i: (group[i].difficulty, i))
    out = [""] * len(group)
    for start in range(0, len(order), len(block)):
        deal = block[:]
        rng.shuffle(deal)
        for i, split in zip(order[start : start + len(block)], deal):
            out[i] = split
    return out


def check_rows(rows: list[dict]) -> None:
    questions = [row["question"] for row in rows]
    assert len(set(questions)) == len(questions), "duplicate questions"
    for row in rows:
        assert tuple(row) == KEYS
        assert 1 <= row["difficulty"] <= 6
        value = Fraction(row["answer"])  # every answer is a plain number
        box = row["answer"] if "." in row["answer"] else tex(value)
        assert row["solution"].endswith(f"The answer is \\boxed{{{box}}}."), row["solution"]
        for field in ("question", "answer", "solution"):
            assert row[field] == row[field].strip() and "  " not in row[field], (field, row[field])
            assert all(line == line.rstrip() for line in row[field].split("\n")), (field, row[field])
        assert "\n" not in row["question"] and "\n" not in row["answer"]


def render(rows: list[dict]) -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")


def split_table(rows: list[dict]) -> str:
    """Markdown table of counts per category × section (rows) and split (columns)."""
    c = Counter((row["category"], row["section"], row["split"]) for row in rows)
    head = "| category | section | " + " | ".join(SPLITS) + " | total |"
    lines = [head, "|" + "---|" * (len(SPLITS) + 3)]
    for category in CATEGORIES:
        for section in SECTIONS:
            counts = [c[(category, section, s)] for s in SPLITS]
            lines.append(f"| {category} | {section} | " + " | ".join(map(str, counts)) + f" | {sum(counts)} |")
    for section in SECTIONS:
        counts = [sum(c[(cat, section, s)] for cat in CATEGORIES) for s in SPLITS]
        lines.append(f"| **all** | {section} | " + " | ".join(map(str, counts)) + f" | {sum(counts)} |")
    counts = [sum(v for (_, _, s), v in c.items() if s == split) for split in SPLITS]
    lines.append("| **all** | **all** | " + " | ".join(f"**{n}**" for n in counts) + f" | **{sum(counts)}** |")
    return "\n".join(lines) + "\n"


def difficulty_table(rows: list[dict]) -> str:
    c = Counter((row["section"], row["difficulty"]) for row in rows)
    lines = ["| section | " + " | ".join(f"{d} step{'s' if d > 1 else ''}" for d in range(1, 7)) + " |"]
    lines.append("|" + "---|" * 7)
    for section in SECTIONS:
        lines.append(f"| {section} | " + " | ".join(str(c[(section, d)]) for d in range(1, 7)) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file on disk is not up to date")
    parser.add_argument("--output", type=Path, default=OUT, help=f"output path (default: {OUT})")
    args = parser.parse_args(argv)
    rows = generate()
    data = render(rows)
    if args.check:
        try:
            current = args.output.read_bytes()
        except OSError:
            current = None
        if current != data:
            state = "does not exist" if current is None else "is not up to date"
            print(f"{args.output} {state}; run: python data/generate.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date ({len(rows)} problems).")
        return 0
    args.output.write_bytes(data)
    print(f"wrote {len(rows)} problems to {args.output}\n")
    print(split_table(rows))
    print(difficulty_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
