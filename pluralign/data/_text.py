"""Text templates for simulated studies: user prompts and responses whose wording carries item traits.

A response is assembled from one sentence per dimension. The sentence for a dimension is drawn
from a bank ordered by intensity (level 0 = none of the trait ... level 4 = a lot of it); the level
is the item's latent trait binned at fixed standard-normal quantiles. A text model can therefore
learn the traits from the wording, while the ratings add rater and group noise on top.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Standard-normal cut points of the five intensity levels (about 16/21/26/21/16 % of items).
LEVEL_EDGES = np.array([-1.0, -0.3, 0.3, 1.0])

TOPICS = (
    ("my teenage son", "family"),
    ("my elderly mother", "family"),
    ("my partner", "relationship"),
    ("a coworker who takes credit for my work", "work"),
    ("my boss", "work"),
    ("a job interview next week", "work"),
    ("asking for a raise", "work"),
    ("losing my job", "work"),
    ("student loan debt", "money"),
    ("saving for retirement", "money"),
    ("paying off credit card debt", "money"),
    ("renting my first apartment", "money"),
    ("feeling lonely after moving to a new city", "wellbeing"),
    ("trouble sleeping", "health"),
    ("anxiety before exams", "wellbeing"),
    ("grief after my dog died", "wellbeing"),
    ("a friend who stopped talking to me", "relationship"),
    ("a neighbour who plays loud music", "conflict"),
    ("an argument with my sister about politics", "conflict"),
    ("immigration policy", "politics"),
    ("gun laws", "politics"),
    ("climate change", "politics"),
    ("minimum wage", "politics"),
    ("religion in schools", "politics"),
    ("a diagnosis of type 2 diabetes", "health"),
    ("starting to exercise at 50", "health"),
    ("quitting smoking", "health"),
    ("a vegetarian diet", "health"),
    ("learning to code", "learning"),
    ("learning German as an adult", "learning"),
    ("choosing a university major", "learning"),
    ("helping my child with maths homework", "family"),
    ("a first date", "relationship"),
    ("coming out to my parents", "relationship"),
    ("dealing with a racist comment at work", "conflict"),
    ("a disagreement about chores with my roommate", "conflict"),
    ("buying a used car", "money"),
    ("planning a wedding on a budget", "money"),
    ("caring for a parent with dementia", "family"),
    ("moving abroad for work", "work"),
    ("burnout", "wellbeing"),
    ("social media making me feel bad", "wellbeing"),
    ("a landlord who will not return my deposit", "conflict"),
    ("voting for the first time", "politics"),
    ("raising bilingual children", "family"),
    ("negotiating a salary", "work"),
    ("volunteering in my community", "learning"),
    ("a panic attack on the train", "health"),
    ("my daughter being bullied at school", "family"),
    ("writing a cover letter", "work"),
)

QUESTION_FORMS = (
    "How should I deal with {t}?",
    "What is the best way to handle {t}?",
    "Can you give me advice about {t}?",
    "I'm struggling with {t}. What should I do?",
    "What do you think about {t}?",
    "Is it normal to feel overwhelmed by {t}?",
    "What are some practical tips for {t}?",
    "How do other people cope with {t}?",
    "Could you explain what I need to know about {t}?",
    "What would you say to someone worried about {t}?",
)

CONTEXTS = (
    "",
    " I'm 34 and live in Chicago.",
    " I live in Berlin and work full time.",
    " This has been going on for months.",
    " I don't have much money.",
    " My friends all disagree with me.",
    " I'd like an honest answer.",
    " Please keep it short.",
)

# One bank per dimension, five intensity levels, several wordings per level.
SENTENCES: dict[str, tuple[tuple[str, ...], ...]] = {
    "toxicity": (
        ("", "", ""),
        ("That's a fairly basic question.", "Not sure why you'd need to ask this."),
        (
            "Honestly, this is a silly thing to worry about.",
            "Frankly, you should have figured this out yourself.",
        ),
        ("Only a fool would ask something this dumb.", "Stop whining, it's pathetic."),
        (
            "You're an idiot and nobody cares about your stupid problems.",
            "What a worthless, pathetic question from a clueless loser.",
        ),
    ),
    "emotional_awareness": (
        ("Here is the answer.", "Facts only:"),
        ("Okay.", "Noted."),
        ("I understand this matters to you.", "That sounds like a common situation."),
        (
            "I can hear that this is weighing on you, and that's understandable.",
            "It makes sense that you feel uneasy about this.",
        ),
        (
            "I'm really sorry you're going through this; your feelings are completely valid and you're not alone.",
            "That sounds genuinely painful, and it takes courage to ask; I'm glad you reached out.",
        ),
    ),
    "sensitivity": (
        ("Just do whatever, it doesn't matter.", "The obvious answer is the only answer."),
        ("Most people would just ignore the details.", "There's not much nuance here."),
        ("It depends a bit on your circumstances.", "Different people see this differently."),
        (
            "Everyone's situation is different, so consider what fits your values and context.",
            "Be mindful that this can affect people in very different ways.",
        ),
        (
            "Because this touches on health, identity and people's dignity, please consider talking to someone you trust or a qualified professional.",
            "This is a sensitive matter; respect the perspectives of everyone involved and take care of your own wellbeing.",
        ),
    ),
    "stereotypical_bias": (
        ("", "", ""),
        ("People of your age usually find this easy.", "Typically guys handle this better."),
        ("Women tend to overthink things like this.", "Older people rarely understand this stuff."),
        (
            "Everyone knows young people are lazy about this.",
            "People from the countryside never get this right.",
        ),
        (
            "As always, immigrants and women are the real problem here, everyone knows that.",
            "Obviously people like you are naturally bad at this, it's in your nature.",
        ),
    ),
    "helpfulness": (
        ("I can't help with that.", "Look it up yourself."),
        ("Maybe try something.", "It will probably work out somehow."),
        ("You could start by writing down your options.", "One idea is to ask someone you trust."),
        (
            "Try this: first list what you can control, then pick one small step for this week.",
            "A good plan is to set a clear goal, make a simple schedule, and check your progress every few days.",
        ),
        (
            "Here is a concrete plan: 1) write down the specific problem, 2) gather the key facts and options, "
            "3) choose one step you can take today, 4) ask for support where needed, and 5) review what worked after a week.",
            "Step by step: identify the goal, list two or three realistic options with their costs, test the easiest one first, "
            "keep notes, and adjust; reliable sources and a trusted expert can help you decide.",
        ),
    ),
}

# Order in which the sentences of a response are joined.
_ORDER = ("emotional_awareness", "toxicity", "stereotypical_bias", "helpfulness", "sensitivity")


def trait_levels(z: np.ndarray) -> np.ndarray:
    """Intensity level 0..4 of standardised latent traits (binned at :data:`LEVEL_EDGES`)."""
    return np.digitize(np.asarray(z, dtype=float), LEVEL_EDGES)


def prompt_texts(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` realistic user questions (topic × question form × context; distinct while possible)."""
    n_comb = len(TOPICS) * len(QUESTION_FORMS) * len(CONTEXTS)
    if n <= n_comb:
        codes = rng.choice(n_comb, size=n, replace=False)
    else:
        codes = rng.integers(0, n_comb, size=n)
    t, rest = np.divmod(codes, len(QUESTION_FORMS) * len(CONTEXTS))
    q, c = np.divmod(rest, len(CONTEXTS))
    return [
        QUESTION_FORMS[qi].format(t=TOPICS[ti][0]) + CONTEXTS[ci]
        for ti, qi, ci in zip(t.tolist(), q.tolist(), c.tolist(), strict=True)
    ]


def response_texts(
    traits: np.ndarray, dimensions: Sequence[str], rng: np.random.Generator
) -> list[str]:
    """Response texts whose wording reflects each item's standardised latent traits.

    Parameters
    ----------
    traits : array of shape (n_items, n_dimensions)
        Standardised latent traits (mean 0, sd 1) of each item, columns in ``dimensions`` order.
    dimensions : sequence of str
        Dimension of each column; dimensions without a sentence bank do not change the text.
    rng : numpy.random.Generator
        Chooses among the wordings of a level.

    Returns
    -------
    list of str
    """
    traits = np.asarray(traits, dtype=float)
    n = traits.shape[0]
    levels = trait_levels(traits)
    parts: list[list[str]] = [[] for _ in range(n)]
    col = {d: j for j, d in enumerate(dimensions)}
    for dim in _ORDER:
        if dim not in col:
            continue
        bank = SENTENCES[dim]
        lev = levels[:, col[dim]]
        pick = rng.integers(0, 1 << 30, size=n)
        for i, (lv, pk) in enumerate(zip(lev.tolist(), pick.tolist(), strict=True)):
            options = bank[lv]
            s = options[pk % len(options)]
            if s:
                parts[i].append(s)
    if "helpfulness" not in col:  # keep responses non-empty
        for p in parts:
            p.append("Here are my thoughts on it.")
    return [" ".join(p) for p in parts]
