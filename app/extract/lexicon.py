"""The word lists the name rules read: three gazetteers from data/ and a few closed lists.

The gazetteers are plain text files in this package (one entry a line, # comments), loaded
once on import; they are listed in pyproject.toml's package data and build/dakera.spec.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"


def _entries(name: str) -> list[str]:
    with (DATA / name).open(encoding="utf-8") as f:
        stripped = (line.strip() for line in f)
        return [line for line in stripped if line and not line.startswith("#")]


FIRST_NAMES: frozenset[str] = frozenset(_entries("first_names.txt"))

# name -> True when it is also a common word and needs a cue ("Apple *")
ORGS: dict[str, bool] = {
    e.removesuffix(" *"): e.endswith(" *") for e in _entries("orgs.txt")
}
# name -> True when it is a place only after a lower-case "the" ("the Amazon")
LOCATIONS: dict[str, bool] = {}
for _entry in _entries("locations.txt"):
    if _entry.startswith("the "):
        LOCATIONS.setdefault(_entry[4:], True)
    else:
        LOCATIONS[_entry] = False

# Given names that are also everyday words: a capitalised "Will", "Mark" or "Summer" opening
# a sentence is a name only with more evidence. The month names need it anywhere.
WORD_NAMES = frozenset(
    "Will May April June August Rose Grace Hope Faith Joy Summer Autumn Max Mark Bill Frank "
    "Ray Sue Ivy Iris Holly Ruby Amber Dawn Violet Daisy Miles Hunter Rob Pat Jack Jay Dean "
    "Chase Carter Mason Lily Robin Art Gene Sky Luna Jan Ken Kai Lee Skye Bob "
    "Sunny Stella Star Drew Penny Don Chance Sage River".split()
)
MONTH_NAMES = frozenset("April May June August".split())
# Places that are also everyday words: "Turkey and stuffing", "Nice work".
WORD_PLACES = frozenset(
    "Turkey Chad Nice Reading Bath Split Mobile Jersey Guinea China Java Cork".split()
)
# Given names that are also places (Georgia, Jordan, Paris...): settled by context.
NAME_PLACES = FIRST_NAMES & frozenset(LOCATIONS)

# Sentence-opening words that are never names: "Meet Julia" -> Julia, "Thanks Sam" -> Sam.
COMMON = frozenset(
    """
    A An The This That These Those It Its I We You He She They Me My Our Your His Her Their
    Us Them Mine Yours Ours Theirs There Here Who What When Where Why How Which Whose Whom
    And But Or So Yet Nor For If Then Than Because Although Though While Since Until Unless
    As At By In On Of To From With Without About After Before During Into Over Under Up Down
    Out Off Through Between Among Against Around Across Behind Beyond Near Along Per Via
    Yes No Not Ok Okay OK Hi Hello Hey Dear Thanks Thank Please Sorry Welcome Bye Goodbye Oh
    Ah Wow Great Good Nice Cool Sure Fine Well Alright Right Awesome Perfect Lovely Happy
    Congrats Congratulations Cheers Hmm Haha Lol Yeah Yep Nope Just Also Only Even Still
    Again Always Never Sometimes Often Usually Maybe Perhaps Probably Actually Really
    Honestly Basically Finally Anyway Besides However Otherwise Meanwhile Therefore Instead
    Now Today Tonight Tomorrow Yesterday Soon Later Earlier Last Next First Second Third
    Every Each All Any Some Many Much More Most Few Several Both Either Neither Other
    Another Such Same New Old Big Small Quick Important Urgent Note Noted Reminder Remember
    Remind Update Updated Todo Summary Warning Error Info Question Answer Task Goal Status
    Result Context Decision Action Subject Re Fwd Edit Source Example Input Output Response
    Request Fact Tip Idea Plan Problem Solution Fix Cause Issue Bug Feature Step Steps
    User Assistant System Agent Bot Human Customer Support Admin Client Server Host Guest
    Let Lets Let's Can Could Would Should Will Shall May Might Must Do Does Did Done Is Are
    Was Were Be Been Being Have Has Had Get Got Go Going Went Come Came Make Made Take Took
    Give Gave See Saw Look Looking Check Set Send Sent Buy Bought Pay Paid Call Called Meet
    Met Visit Visited Run Ran Fix Fixed Restart Deploy Deployed Upload Download Store Stored
    Turn Upgrade Upgraded Sign Email Reset Forward Mark Keep Kept Add Added Remove Removed
    Use Used Try Tried Find Found Book Booked Order Ordered Ask Asked Tell Told Move Moved
    Start Started Stop Stopped Open Close Closed Read Write Wrote Watch Watched Need Needs
    Want Wants Like Likes Love Loves Hate Think Thought Know Knew Feel Felt Hope Wish Guess
    Bring Brought Drive Drove Fly Flew Leave Left Stay Stayed Wait Waited Hold Ship Shipped
    Release Build Patch Invoice Ticket Flight Order Shipping Delivery Package Parcel Train
    Dinner Lunch Breakfast Brunch Meeting Call Today Morning Evening Night Weekend Week
    Month Year Day Time Mom Mum Dad Mother Father Sister Brother Grandma Grandpa Granny
    Honey Babe Buddy Guys Everyone Everybody Someone Somebody Anyone Nobody Nothing
    Something Anything Everything Family Friends Team Boss Doctor Dr Mr Mrs Ms Sir Madam
    Monday Tuesday Wednesday Thursday Friday Saturday Sunday Mondays Tuesdays Wednesdays
    Thursdays Fridays Saturdays Sundays January February March July September October
    November December Spring Summer Autumn Fall Winter Christmas Easter Thanksgiving
    Halloween Ramadan Diwali Hanukkah
    """.split()
)

TITLES = frozenset(
    "Dr Mr Mrs Ms Mx Prof Professor Sir Dame Rev Aunt Auntie Uncle Grandma Grandpa Granny "
    "Cousin Coach Captain Capt Officer Detective Judge Senator President".split()
)

ORG_SUFFIXES = frozenset(
    """
    Inc Ltd LLC LLP Corp Corporation Co Company Companies GmbH AG SA PLC plc NV BV Pty
    Limited Group Holdings Bank Foundation University College Institute Hospital Clinic
    Technologies Technology Labs Laboratories Systems Software Solutions Airlines Airways
    Motors Pharmaceuticals Pharma Partners Capital Ventures Association Society Council
    Committee Agency Authority Department Ministry School Academy Museum Library Press
    Media Studios Records Entertainment Networks Communications Insurance Energy Industries
    Enterprises Consulting Services Club Federation League Commission Bureau Trust Fund
    Centre Center Church Cooperative Union Organization Organisation Institution Hotel Hotels
    Restaurant Cafe Bakery Brewery Gallery Theatre Theater Orchestra
    """.split()
)
# "University of Edinburgh", "Bank of America", "Ministry of Health"
ORG_HEADS = frozenset(
    """
    University Bank Ministry Department Institute College Museum Church Bureau Office Board
    Academy School Society Association Federation Council Court Commission Chamber League
    Federal Royal
    """.split()
)
LOC_SUFFIXES = frozenset(
    """
    Street Road Avenue Boulevard Lane Square Plaza Park River Lake Bay Island Islands
    Mountains Mountain Valley Beach Canyon Falls Sea Ocean Gulf Coast Peninsula Desert
    Forest Hills County Province Region District Strait Harbour Harbor Airport Station
    St Rd Ave Blvd
    """.split()
)
LOC_HEADS = frozenset("Lake Mount Mt Rue Via Calle Avenida Piazza Cape Isle Gulf Bay".split())

# Lower-case words that may sit inside a name: "Bank of America", "Ludwig van Beethoven"
CONNECTORS = frozenset("of de del della da du van von der den la le y bin al".split())

# The word after a name that shows a person (or an organisation) doing something.
AGENT_VERBS = frozenset(
    """
    said says told tells asked asks wrote writes thinks thought wants went goes came comes
    got gets made makes took takes gave gives sent sends left leaves met meets ran runs
    bought buys brought brings found finds knew knows likes loves hates needs feels felt
    sang sings spoke speaks won paid pays drove drives flew flies kept began became
    mentioned says recommends suggests suggested replied
    """.split()
)
# Words before a place: "in Georgia", "flew to Jordan"
PLACE_PREPS = frozenset(
    """
    in to from near around across through into visit visiting visited toward towards outside
    via leaving reach reached of
    """.split()
)
# Words before a given name that is also a place: "with Georgia", "told Jordan"
PERSON_PREPS = frozenset(
    "with and told tell asked ask met meet call called thank thanks dear hi hey love text "
    "texted email emailed".split()
)
# Words before an organisation: "at Apple", "joined Stripe", "ordered from Amazon"
ORG_PREPS = frozenset("at for joined join with by from to via quit acquired".split())
# Words after an organisation: "Apple stock", "the Amazon warehouse"
ORG_NOUNS = frozenset(
    """
    stock stocks shares store stores account accounts support customer customers employee
    employees engineer engineers office offices headquarters HQ event keynote bill
    subscription order orders delivery deliveries warehouse driver drivers CEO founder
    """.split()
)
