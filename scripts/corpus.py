"""A realistic synthetic memory corpus for benchmarks and load scripts.

Memories are what an agent keeps from conversations: facts, preferences, events, plans,
conversation turns and technical notes with identifiers (order numbers, host names, ticket
ids). They are built from templates over vocabularies drawn with Zipf-like frequencies, so
that a few names, places and words are common and most are rare, as in real text: BM25 sees
common and rare terms, and the vector index sees natural clusters and near-duplicates
(unlike uniform random vectors, which make any ANN index look broken, or random words).

Queries are questions of the kind an agent asks its memory. Part of them are about a memory
that is in the corpus (its people, its object, its identifier), part are generic; every
query of a list is distinct, so that a query cache cannot hide the embedding cost.
"""

from __future__ import annotations

import random

NAMES = """Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory Niaj Olivia Peggy
Rupert Sybil Trent Uma Victor Wendy Xavier Yara Zoe Caroline Melanie Jon Gina Nate Joanna
Tim John Maria Audrey Andrew Calvin Dana Evan Fiona Hugo Ines Jakob Kenji Lena Mateo Nadia
Omar Priya Quentin Rosa Samir Tanya Ulrich Valeria Wei Ximena Yusuf Zainab Amara Bruno
Chiara Dmitri Elif Farah Goran Hana Idris Jonas Kavya Luca Mina Noor Oskar Pilar Rafael
Saanvi Tomas Ugo Vera Willem Yuki Zeynep Anders Beatriz Cyrus Delphine Emeka Freya Gideon
Hiroshi Ingrid Jamal Kirra Lorenzo Marisol Nikolai Odette Pavel Rania Stellan Thandiwe
Uriel Vivienne Wanjiru Yosef""".split()
PLACES = """Berlin Paris Lisbon Tokyo Boston Denver Oslo Madrid Prague Vienna Dublin Austin
Seattle Toronto Sydney Kyoto Milan Porto Zurich Krakow Lyon Seville Bergen Tallinn Hanoi
Lagos Nairobi Quito Lima Montreal Valencia Utrecht Ghent Bologna Riga Vilnius
the-office the-gym the-park the-beach the-lake the-library the-studio the-cafe
the-airport the-station the-market the-clinic the-school the-harbour""".split()
ACTIVITIES = """hiking painting running swimming cooking baking reading climbing cycling
gardening pottery yoga chess dancing skiing surfing fishing camping knitting photography
singing guitar piano volunteering birdwatching rowing fencing archery calligraphy
woodworking sailing tennis badminton bouldering journaling meditation origami""".split()
OBJECTS = """laptop passport charger bicycle guitar camera notebook umbrella backpack keys
wallet headphones tent kayak easel telescope blender sofa desk lamp printer phone
tablet watch scarf jacket thermos tripod microphone suitcase drone helmet kettle""".split()
FOODS = """pasta sushi tacos curry ramen salad pizza dumplings paella pho falafel pancakes
risotto burritos lasagna gnocchi bibimbap shakshuka moussaka pierogi ceviche""".split()
FEELINGS = """happy tired excited nervous proud relieved grateful frustrated calm inspired
anxious thrilled bored hopeful overwhelmed content""".split()
WHEN = """yesterday last-week last-month this-morning on-Monday on-Tuesday on-Friday
on-Sunday in-January in-May in-June in-October last-summer last-winter two-days-ago
at-the-weekend in-2022 in-2023 in-2024 recently tonight""".split()
PREFS = """dark-mode tea-over-coffee window-seats early-meetings vegetarian-food quiet-hotels
aisle-seats jazz podcasts morning-runs short-emails video-calls paper-books
spicy-food night-trains standing-desks""".split()
SERVICES = """billing search auth gateway scheduler ingest reports payments inventory
notifications""".split()
ERRORS = """timeout out-of-memory disk-full connection-refused certificate-expired
permission-denied deadlock""".split()
FILLERS = ["", "", "", "By the way, ", "Oh, and ", "Just so you know, ", "Note: ",
           "Reminder: ", "FYI: ", "For the record, "]
ENDINGS = ["", "", "", " Remind me later.", " Worth remembering.", " Ask about it next time.",
           " Not urgent.", " Important!"]

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
    "User: I think {n2} would enjoy {a}. Assistant: Noted, {n2} might like {a}.",
    "User: can you remember that my {o} is at {p}? Assistant: Sure, your {o} is at {p}.",
    "User: {n} wants {food} for dinner {w}. Assistant: I will suggest {food} to {n}.",
    "{n} asked me to book {pr} for the trip to {p}.",
    "Deploy of {svc} to {host} failed with {err} {w}; {n} rolled it back.",
    "Ticket {ticket}: {svc} on {host} reports {err}, assigned to {n}.",
    "{n} gave {n2} a {o} as a birthday present {w}.",
    "{n}'s favourite dish is {food}, especially in {p}.",
]


def _cumulative(items: list[str], s: float = 1.1) -> list[float]:
    total, out = 0.0, []
    for i in range(len(items)):
        total += 1.0 / (i + 1) ** s
        out.append(total)
    return out


_CUM = {id(v): _cumulative(v) for v in (NAMES, PLACES, ACTIVITIES, OBJECTS, FOODS, FEELINGS,
                                        WHEN, PREFS, SERVICES, ERRORS)}


def _zipf(rng: random.Random, items: list[str]) -> str:
    return rng.choices(items, cum_weights=_CUM[id(items)])[0].replace("-", " ")


def _code(rng: random.Random) -> str:
    return f"{rng.choice('ABCDEFGHJK')}-{rng.randint(10000, 99999)}"


def _fields(rng: random.Random) -> dict[str, str]:
    n = _zipf(rng, NAMES)
    n2 = n
    while n2 == n:
        n2 = _zipf(rng, NAMES)
    return dict(
        n=n, n2=n2, p=_zipf(rng, PLACES), a=_zipf(rng, ACTIVITIES), o=_zipf(rng, OBJECTS),
        food=_zipf(rng, FOODS), f=_zipf(rng, FEELINGS), w=_zipf(rng, WHEN),
        pr=_zipf(rng, PREFS), svc=_zipf(rng, SERVICES), err=_zipf(rng, ERRORS),
        code=_code(rng), ticket=f"OPS-{rng.randint(1000, 99999)}",
        host=f"{rng.choice(['db', 'web', 'api', 'cache', 'worker'])}-"
             f"{rng.choice(['prod', 'stage', 'dev'])}-{rng.randint(1, 40):02d}",
    )


def labelled(rng: random.Random) -> tuple[str, int, dict[str, str]]:
    """One memory: its text, the index of its template in TEMPLATES, and the fields it was
    filled with (what a question about it can name, and what it answers)."""
    template = rng.choice(TEMPLATES)
    fields = _fields(rng)
    text = template.format(**fields)
    filler = "" if text.startswith("User:") else rng.choice(FILLERS)
    if filler and text.split()[0] not in NAMES:
        text = text[0].lower() + text[1:]
    return filler + text + rng.choice(ENDINGS), TEMPLATES.index(template), fields


def sentence(rng: random.Random) -> str:
    return labelled(rng)[0]


def corpus(n: int, seed: int = 7) -> list[str]:
    """n memories (deterministic for a seed); near-duplicates occur, as in real use."""
    rng = random.Random(seed)
    return [sentence(rng) for _ in range(n)]


def labelled_corpus(n: int, seed: int = 7) -> list[tuple[str, int, dict[str, str]]]:
    """corpus(n, seed) with each memory's template index and fields (same texts)."""
    rng = random.Random(seed)
    return [labelled(rng) for _ in range(n)]


GENERIC = [
    "What does {n} like to do?", "Where did {n} go {w}?", "Who is allergic to {food}?",
    "What did {n} lose?", "Which trip is {n} planning?", "How does {n} feel about work?",
    "Who recommended {a}?", "What did {n} cook for {n2}?", "{n} {a} {p}",
    "What happened to the {svc} deploy?", "Which preferences did {n} mention?",
    "What gift did {n} get?", "What is {n}'s favourite food?", "Who was {f} {w}?",
]


def queries(n: int, seed: int = 11, texts: list[str] | None = None) -> list[str]:
    """n distinct questions. With the corpus `texts`, about half are about one of its
    memories (the words of a stored sentence, reworded, or its identifier)."""
    rng = random.Random(seed)
    out: dict[str, None] = {}
    attempts = 0
    while len(out) < n and attempts < 50 * n + 1000:
        attempts += 1
        if texts and rng.random() < 0.5:
            q = _about(rng, rng.choice(texts))
        else:
            f = _fields(rng)
            q = rng.choice(GENERIC).format(**f)
        if rng.random() < 0.3:
            q = rng.choice(["Do you remember ", "Tell me ", "Quick question: ", "Hmm, "]) + \
                q[0].lower() + q[1:]
        out.setdefault(q, None)
    return list(out)


def _about(rng: random.Random, text: str) -> str:
    """A question about one stored memory: an identifier it holds, or a few of its words."""
    words = [w.strip(".,;:!?'") for w in text.split()]
    words = [w[:-2] if w.endswith("'s") else w for w in words]
    idents = [w for w in words if any(c.isdigit() for c in w) and len(w) > 4]
    if idents and rng.random() < 0.5:
        return rng.choice(["order {}", "what about {}?", "status of {}", "{}"]).format(
            rng.choice(idents))
    content = list(dict.fromkeys(w for w in words if len(w) > 3 and w.lower() not in _STOP))
    picked = rng.sample(content, min(len(content), rng.randint(2, 4)))
    return rng.choice(["What do you know about {}?", "{}", "Anything about {}?",
                       "When was {}?"]).format(" ".join(picked))


_STOP = {"that", "with", "about", "somewhere", "turned", "remember", "user", "assistant",
         "your", "this", "they", "will", "would", "might", "sure", "noted", "later", "reminder",
         "worth", "next", "time", "just", "know", "note", "important", "urgent", "record",
         "remembering", "especially", "think", "great", "suggest", "book", "bring", "what",
         "when", "where", "which", "there"}


# Known-item questions: for each template (by index), questions about one memory made from
# it, as a person asks about the past: reworded ("lost" -> "lose", "met ... to talk about"
# -> "meet to discuss"), naming some of its fields and asking for another. The fields a
# question names decide which memories answer it: those of the same template with the same
# values there (near-duplicates included).
KNOWN_ITEM: dict[int, list[tuple[str, tuple[str, ...]]]] = {
    0: [("How did {n} feel after {a} in {p}?", ("n", "a", "p")),
        ("Where did {n} go {a} {w}?", ("n", "a", "w"))],
    1: [("What did {n} say they prefer {w}?", ("n", "w"))],
    2: [("Where did {n} lose the {o}?", ("n", "o")),
        ("What did {n} misplace in {p}?", ("n", "p"))],
    3: [("What food did {n} make for {n2}?", ("n", "n2"))],
    4: [("Who is {n} travelling to {p} with?", ("n", "p")),
        ("Where is {n} going to try {a} with {n2}?", ("n", "a", "n2"))],
    5: [("What did {n} tell me about how {n2} feels at work?", ("n", "n2"))],
    6: [("What did {n} buy for {a}?", ("n", "a"))],
    7: [("Which food is {n} allergic to?", ("n",)),
        ("What does {n} dislike, apart from {food}?", ("n", "food"))],
    8: [("Where did {n} and {n2} meet to discuss {a}?", ("n", "n2", "a"))],
    9: [("Where was order {code} delivered?", ("code",)),
        ("Which order number was the {o} sent to {n} in {p}?", ("o", "n", "p"))],
    10: [("Who got {n} into {a}?", ("n", "a"))],
    11: [("What should I take to the meeting with {n} in {p}?", ("n", "p"))],
    12: [("Did I say {n2} might like {a}?", ("n2", "a"))],
    13: [("Is my {o} still at {p}?", ("o", "p"))],
    14: [("What does {n} want to eat {w}?", ("n", "w"))],
    15: [("What did {n} want me to reserve for {p}?", ("n", "p"))],
    16: [("Why did the {svc} deployment to {host} fail?", ("svc", "host")),
         ("Who rolled back {svc} after the {err} error?", ("svc", "err"))],
    17: [("Who is handling ticket {ticket}?", ("ticket",)),
         ("What error does {svc} on {host} report?", ("svc", "host"))],
    18: [("What birthday present did {n2} get from {n}?", ("n", "n2"))],
    19: [("What does {n} like to eat in {p}?", ("n", "p"))],
}


def known_item_queries(items: list[tuple[str, int, dict[str, str]]], n: int, seed: int = 13,
                       max_answers: int = 3) -> list[tuple[str, list[int]]]:
    """n distinct questions about memories of `items` (labelled_corpus), each with the
    indices of the memories that answer it; a question that more than max_answers memories
    answer is not asked (it is not about one memory)."""
    rng = random.Random(seed)
    by_key: dict[tuple[int, tuple[tuple[str, str], ...]], list[int]] = {}
    for i, (_, template, fields) in enumerate(items):
        for _, names in KNOWN_ITEM[template]:
            by_key.setdefault((template, tuple((k, fields[k]) for k in names)), []).append(i)
    out: dict[str, list[int]] = {}
    attempts = 0
    while len(out) < n and attempts < 50 * n:
        attempts += 1
        _, template, fields = items[rng.randrange(len(items))]
        question, names = rng.choice(KNOWN_ITEM[template])
        answers = by_key[(template, tuple((k, fields[k]) for k in names))]
        if len(answers) > max_answers:
            continue
        q = question.format(**fields)
        if rng.random() < 0.2:
            q = rng.choice(["Do you remember: ", "Quick question: ", "Hmm, "]) + \
                q[0].lower() + q[1:]
        out.setdefault(q, answers)
    return list(out.items())
