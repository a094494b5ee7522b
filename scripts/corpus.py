"""A realistic synthetic memory corpus for benchmarks: conversation-like facts and events
built from templates over vocabularies with Zipf-like frequencies (so that BM25 and the
vector index see natural overlap, unlike uniform random vectors or random words)."""

from __future__ import annotations

import random

NAMES = """Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory Niaj Olivia Peggy
Rupert Sybil Trent Uma Victor Wendy Xavier Yara Zoe Caroline Melanie Jon Gina Nate Joanna
Tim John Maria Audrey Andrew Calvin Dana Evan Fiona""".split()
PLACES = """Berlin Paris Lisbon Tokyo Boston Denver Oslo Madrid Prague Vienna Dublin Austin
Seattle Toronto Sydney Kyoto Milan Porto Zurich Krakow the-office the-gym the-park the-beach
the-lake the-library the-studio the-cafe""".split()
ACTIVITIES = """hiking painting running swimming cooking baking reading climbing cycling
gardening pottery yoga chess dancing skiing surfing fishing camping knitting photography
singing guitar piano volunteering birdwatching""".split()
OBJECTS = """laptop passport charger bicycle guitar camera notebook umbrella backpack keys
wallet headphones tent kayak easel telescope blender sofa desk lamp printer phone""".split()
FOODS = """pasta sushi tacos curry ramen salad pizza dumplings paella pho falafel pancakes
risotto burritos lasagna""".split()
FEELINGS = """happy tired excited nervous proud relieved grateful frustrated calm inspired
anxious thrilled""".split()
WHEN = """yesterday last-week last-month this-morning on-Monday on-Friday in-May in-June
last-summer two-days-ago at-the-weekend in-2022 in-2023 recently""".split()
PREFS = """dark-mode tea-over-coffee window-seats early-meetings vegetarian-food quiet-hotels
aisle-seats jazz podcasts morning-runs""".split()

TEMPLATES = [
    "{n} went {a} in {p} {w} and felt {f}.",
    "{n} prefers {pr} and mentioned it {w}.",
    "{n} lost the {o} somewhere in {p} {w}.",
    "{n} cooked {food} for {n2} {w}; it turned out great.",
    "{n} is planning a trip to {p} to try {a} with {n2}.",
    "{n} said {w} that {n2} has been {f} about the new job.",
    "{n} bought a new {o} for {a} {w}.",
    "Remember that {n} is allergic to {food} and dislikes {pr}.",
    "{n} and {n2} met at {p} {w} to talk about {a}.",
    "Order {code} for a {o} was shipped to {n} in {p}.",
    "{n} started learning {a} {w} because {n2} recommended it.",
    "The meeting with {n} moved to {p}; bring the {o}.",
]


def _zipf_choice(rng: random.Random, items: list[str], s: float = 1.1) -> str:
    weights = [1.0 / (i + 1) ** s for i in range(len(items))]
    return rng.choices(items, weights)[0]


def sentence(rng: random.Random) -> str:
    template = rng.choice(TEMPLATES)
    n = _zipf_choice(rng, NAMES)
    n2 = _zipf_choice(rng, [x for x in NAMES if x != n])
    return template.format(
        n=n, n2=n2, p=_zipf_choice(rng, PLACES).replace("-", " "),
        a=_zipf_choice(rng, ACTIVITIES), o=_zipf_choice(rng, OBJECTS),
        food=_zipf_choice(rng, FOODS), f=_zipf_choice(rng, FEELINGS),
        w=_zipf_choice(rng, WHEN).replace("-", " "), pr=_zipf_choice(rng, PREFS).replace("-", " "),
        code=f"{rng.choice('ABCDEFGHJK')}-{rng.randint(10000, 99999)}",
    )


def corpus(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [sentence(rng) for _ in range(n)]


def queries(n: int, seed: int = 11) -> list[str]:
    """Questions of the kind an agent asks its memory."""
    rng = random.Random(seed)
    forms = [
        "What does {n} like to do?", "Where did {n} go {w}?", "Who is allergic to {food}?",
        "What did {n} lose?", "Which trip is {n} planning?", "How does {n} feel about work?",
        "Who recommended {a}?", "What did {n} cook for {n2}?", "order {code}",
        "{n} {a} {p}",
    ]
    out = []
    for _ in range(n):
        out.append(rng.choice(forms).format(
            n=_zipf_choice(rng, NAMES), n2=_zipf_choice(rng, NAMES),
            w=_zipf_choice(rng, WHEN).replace("-", " "), food=_zipf_choice(rng, FOODS),
            a=_zipf_choice(rng, ACTIVITIES), p=_zipf_choice(rng, PLACES).replace("-", " "),
            code=f"{rng.choice('ABCDEFGHJK')}-{rng.randint(10000, 99999)}"))
    return out
