"""Deterministic synthetic product catalogues that look like retail product titles.

    python benchmarks/synthetic.py --categories 133 --features 100000 --out cat.csv --measure
    python benchmarks/synthetic.py --categories 20 --rows 20000 --vocab 12000 --out cat.csv

`generate(n_categories, n_rows, seed, vocab=...)` returns distinct
`(product_name, category)` rows such as ``TRUSUHI CEREAL KAIROSAI BUNPLILTRES 1.5 KG``,
``Nukamaka Grekofa Pants Trusing 100mL`` or ``nexpan soria manlai 2.5l Ready Stock``:
product lines (a brand, one to three product-type words, core modifiers) sold in
variants (a flavour or generic modifier, a size such as 250ml, 1.5 kg or 6x200ml),
written in title, lower or upper case, now and then with a shop's noise. Real
words ("susu", "shampoo", "original", "pedas") take the top frequency ranks and
pronounceable pseudo-words the long tail, which is what lets the vocabulary grow
to any size. Same arguments, same rows, on any machine and under any
PYTHONHASHSEED (one seeded numpy Generator; no set or hash ordering is used).

What makes it non-trivial to classify: categories are grouped into departments
whose categories share product-type words, brands and a unit family; a few
"conglomerate" brands appear everywhere; generic modifiers ("original", "pedas")
are global; every word list is drawn Zipf-like (p ~ 1/rank^1.05), so a category's
head words dominate and its tail words are seen once or twice. Category sizes are
mildly Zipf too (largest/smallest ~ K^0.6).

How rows and vocabulary map to TF-IDF features (`app.ml.pipeline.build_features()`:
word 1-2-grams with min_df=1 plus char_wb 2-5-grams with min_df=2, counted as
`len(vocabulary_)` summed over both), measured with `--measure` (seed 0, fitted
on all rows; 2-core machine, generation 0.1-1.8 s, vectoriser fit 1.5-12 s):

    categories     rows    vocab     word     char    total  per row
            20   13,000    9,750   24,693   26,668   51,361     3.95
            20   16,000    4,000   25,287   22,483   47,770     2.99
            20   16,000   12,000   29,578   29,542   59,120     3.69
            20   16,000   48,000   33,350   36,730   70,080     4.38
            20   40,000   30,000   66,572   52,463  119,035     2.98
           133   15,000   11,250   31,183   34,993   66,176     4.41
           133   30,000   22,500   58,423   52,849  111,272     3.71
           133   60,000   45,000  109,244   79,018  188,262     3.14
           500   70,000   52,500  136,941   96,031  232,972     3.33
          1000   20,000   15,000   44,100   48,700   92,800     4.64
          1000  100,000   75,000  195,833  122,461  318,294     3.18

so features ~ 29.5 * rows^0.614 * vocab^0.151 * categories^0.077 (least squares,
within 4 % of every row above). Rows drive it (word bigrams of new product lines,
char n-grams of new words); the vocabulary knob moves it by about +-20 % at fixed
rows (4k -> 48k words: 48k -> 70k features) and sets features per row, which real
catalogues put at 2.5-4.6 (instacart 48k rows: 86k word + 38k char). `plan()`
solves that formula for the rows (vocab = `vocab_per_row` * rows); `calibrated()`
then measures and corrects, landing within 3 % in one or two rounds. A model
trained by train.py fits on 80 % of the rows: pass `fit_fraction=0.8`.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_SEED = 0
# Zipf exponent of every word list: ~1 is what word frequencies in product titles follow.
ZIPF_S = 1.05
# A class needs 5 rows to survive train.py's stratified split; 10 leaves margin
# after de-duplication and keeps every class in the 20 % hold-out.
MIN_ROWS_PER_CATEGORY = 10

# Real words put at the top ranks of each category and department, so the most
# frequent tokens look like a real (Indonesian/English) shop's; the long tail is
# pseudo-words, which is what lets the vocabulary grow to any size.
REAL_HEADS = (
    "susu teh kopi biskuit coklat sabun shampoo minyak beras gula garam kecap saus sambal mie "
    "roti keju mentega yogurt jus sirup air keripik kacang permen wafer sereal oat madu selai "
    "tepung bumbu kaldu sarden kornet sosis nugget bakso tisu popok pembalut deterjen pelembut "
    "pewangi pembersih piring sikat pasta lotion krim serum masker parfum deodoran bedak lipstik "
    "vitamin suplemen plester baterai lampu kabel spidol pensil buku kertas lem kuas gelas botol "
    "panci wajan sendok pisau handuk sprei bantal kaos kemeja celana sepatu sandal tas dompet "
    "mainan boneka puzzle pakan pasir milk tea coffee cookies chocolate soap oil rice sugar "
    "sauce noodles bread cheese butter juice water chips nuts candy cereal honey flour tuna "
    "sausage tissue diaper detergent softener cleaner toothpaste toothbrush cream powder "
    "battery cable pen notebook glue paint brush glass bottle pan spoon knife towel pillow "
    "shirt pants shoes bag wallet watch toy doll food litter conditioner wipes sponge"
).split()
REAL_MODIFIERS = (
    "original premium classic extra mini jumbo besar kecil family refill pouch kaleng sachet box "
    "isi rasa vanilla strawberry pedas manis asin hot spicy light zero organic natural fresh "
    "segar instant murni whitening sensitive kids anak baby dewasa men women hitam putih merah "
    "hijau biru pink gold new baru hemat value super ultra max plus pro soft lembut wangi "
    "lavender lemon jeruk mint melon mangga apel keju cokelat matcha caramel double triple"
).split()
NOISE = ("Free Ongkir", "PROMO", "BPOM", "Halal", "Ready Stock", "Termurah", "COD", "Bundling")

# Unit families, one per department: (unit spellings, typical amounts).
UNITS: tuple[tuple[tuple[str, ...], tuple[float, ...]], ...] = (
    (("ml", "ML", " ml", "mL"), (60, 100, 125, 180, 200, 250, 330, 380, 450, 500, 600, 750, 900)),
    (("l", "L", " liter", " ltr"), (1, 1.5, 2, 2.5, 3, 5)),
    (("g", "gr", " gram", " g", "GR"), (10, 25, 35, 50, 75, 100, 120, 150, 200, 250, 400, 500)),
    (("kg", " kg", " KG"), (0.5, 1, 1.5, 2, 2.5, 5, 10, 25)),
    ((" pcs", " pcs", " sheets", " btg", " tablet", " pack"), (2, 3, 4, 6, 10, 12, 16, 20, 30)),
    ((" cm", "cm", " inch"), (10, 15, 20, 25, 30, 40, 60, 100)),
)

# Syllables of the pseudo-words: onset + vowel + coda, weighted so that simple
# shapes (CV, CVn) dominate and clusters are rare, as in real brand names.
_ONSETS = (
    ("b", 3),
    ("d", 3),
    ("g", 2),
    ("h", 1),
    ("j", 1),
    ("k", 4),
    ("l", 3),
    ("m", 4),
    ("n", 3),
    ("p", 3),
    ("r", 3),
    ("s", 4),
    ("t", 4),
    ("v", 1),
    ("w", 1),
    ("y", 1),
    ("z", 1),
    ("c", 1),
    ("f", 1),
    ("", 2),
    ("br", 1),
    ("kr", 1),
    ("st", 1),
    ("tr", 1),
    ("pl", 1),
    ("gr", 1),
    ("ch", 1),
    ("sh", 1),
)
_VOWELS = (("a", 6), ("e", 4), ("i", 5), ("o", 4), ("u", 4), ("ai", 1), ("au", 1), ("ia", 1))
_CODAS = (("", 14), ("n", 3), ("r", 2), ("s", 1), ("l", 1), ("k", 1), ("m", 1), ("ng", 1), ("x", 1))


def _syllables() -> tuple[list[str], np.ndarray]:
    texts = [o + v + c for o, _ in _ONSETS for v, _ in _VOWELS for c, _ in _CODAS]
    weights = np.asarray(
        [wo * wv * wc for _, wo in _ONSETS for _, wv in _VOWELS for _, wc in _CODAS],
        dtype=np.float64,
    )
    return texts, weights / weights.sum()


# Rows per product line on average (sizes and flavours of one product).
VARIANTS_PER_LINE = 3.0

# Shares of the vocabulary knob: brands, department-shared words (the overlap
# between sibling categories), category head words, category modifiers.
_BRAND_SHARE, _DEPT_SHARE, _HEAD_SHARE = 0.15, 0.08, 0.55


@dataclass(frozen=True)
class Plan:
    """Generator arguments expected to give about `target_features` features."""

    n_categories: int
    n_rows: int
    vocab: int
    target_features: int


# features ~ FIT_C * fitted_rows**FIT_A * vocab**FIT_B * categories**FIT_D, fitted by
# least squares on the `--measure` runs in the module docstring.
FIT_C, FIT_A, FIT_B, FIT_D = 29.5, 0.614, 0.151, 0.0773
DEFAULT_VOCAB_PER_ROW = 0.75


def plan(
    n_categories: int,
    target_features: int,
    *,
    vocab_per_row: float = DEFAULT_VOCAB_PER_ROW,
    fit_fraction: float = 1.0,
) -> Plan:
    """Rows and vocabulary expected to give `target_features` when fitted on `fit_fraction`.

    `fit_fraction` is the share of the rows the vectorisers will see (0.8 for
    train.py's default 20 % hold-out). Closed form, so only about right; use
    `calibrated` when the count matters.
    """
    if not 0 < fit_fraction <= 1:
        raise ValueError("fit_fraction must be in (0, 1]")
    # Solve target = C * (f*n)**A * (v*n)**B * K**D for n.
    scale = FIT_C * fit_fraction**FIT_A * vocab_per_row**FIT_B * n_categories**FIT_D
    n_rows = math.ceil((target_features / scale) ** (1 / (FIT_A + FIT_B)))
    n_rows = max(n_rows, n_categories * MIN_ROWS_PER_CATEGORY)
    return Plan(n_categories, n_rows, max(1, round(vocab_per_row * n_rows)), target_features)


@dataclass(frozen=True)
class Calibrated:
    """Rows generated to a measured feature count, and the measurements that led there."""

    plan: Plan
    rows: list[tuple[str, str]]
    features: dict[str, int]
    attempts: list[dict[str, int]]


def calibrated(
    n_categories: int,
    target_features: int,
    seed: int = DEFAULT_SEED,
    *,
    vocab_per_row: float = DEFAULT_VOCAB_PER_ROW,
    fit_fraction: float = 1.0,
    rounds: int = 1,
    tolerance: float = 0.03,
) -> Calibrated:
    """`plan`, then up to `rounds` corrections of the row count from measured features.

    Features are measured on the first `fit_fraction` of the (shuffled) rows, which
    stands in for train.py's stratified training split. Each round costs one
    generation and one vectoriser fit (about 15 s at 300k features).
    """
    current = plan(
        n_categories, target_features, vocab_per_row=vocab_per_row, fit_fraction=fit_fraction
    )
    attempts: list[dict[str, int]] = []
    while True:
        rows = generate(n_categories, current.n_rows, seed, vocab=current.vocab)
        fitted = [name for name, _ in rows[: max(1, int(len(rows) * fit_fraction))]]
        features = measure_features(fitted)
        attempts.append({"rows": current.n_rows, "vocab": current.vocab, **features})
        error = features["total"] / target_features
        if len(attempts) > rounds or abs(error - 1) <= tolerance:
            return Calibrated(current, rows, features, attempts)
        # Both rows and vocabulary scale with n, so n moves by the whole exponent.
        n_rows = math.ceil(current.n_rows * error ** (-1 / (FIT_A + FIT_B)))
        n_rows = max(n_rows, n_categories * MIN_ROWS_PER_CATEGORY)
        if n_rows == current.n_rows:
            return Calibrated(current, rows, features, attempts)
        current = Plan(n_categories, n_rows, max(1, round(vocab_per_row * n_rows)), target_features)


def default_vocab(n_rows: int) -> int:
    """The vocabulary `generate` uses when none is given."""
    return max(200, round(DEFAULT_VOCAB_PER_ROW * n_rows))


def _zipf(n: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** ZIPF_S
    return weights / weights.sum()


def _pseudo_words(rng: np.random.Generator, count: int, taken: set[str]) -> list[str]:
    """`count` distinct pronounceable words not in `taken` (which they are added to)."""
    syllables, weights = _syllables()
    words: list[str] = []
    while len(words) < count:
        need = count - len(words)
        # Drawn in bulk: a per-word Python loop of rng calls would dominate generation.
        batch = need + need // 10 + 16
        lengths = rng.choice((2, 3, 4), size=batch, p=(0.62, 0.33, 0.05))
        picks = rng.choice(len(syllables), size=(batch, 4), p=weights)
        for length, row in zip(lengths.tolist(), picks.tolist(), strict=True):
            word = "".join(syllables[i] for i in row[:length])
            if word not in taken and 3 <= len(word) <= 11:
                taken.add(word)
                words.append(word)
                if len(words) == count:
                    break
    return words


def _split(total: int, weights: np.ndarray, floor: int) -> list[int]:
    """`total` split in proportion to `weights`, each part at least `floor`."""
    parts = np.maximum(floor, np.floor(total * weights / weights.sum())).astype(int)
    # Hand the rounding remainder to the largest parts so the sum is exact
    # (it can only be short, as long as total >= floor * len(weights)).
    short = total - int(parts.sum())
    order = np.argsort(-weights, kind="stable")
    for i in range(max(0, short)):
        parts[order[i % len(order)]] += 1
    return [int(p) for p in parts]


def _amount(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass
class _Category:
    name: str
    dept: int
    heads: list[str]
    head_p: np.ndarray
    mods: list[str]
    mod_p: np.ndarray
    brands: list[str]
    brand_p: np.ndarray


def _build_categories(
    rng: np.random.Generator, n_categories: int, vocab: int, rows: list[int]
) -> tuple[list[_Category], list[list[str]], list[str]]:
    """Categories with their word lists, department-shared words and global brands."""
    n_depts = max(2, round(math.sqrt(n_categories)))
    depts = rng.integers(0, n_depts, size=n_categories)
    depts[:n_depts] = np.arange(min(n_depts, n_categories))  # no empty department

    taken: set[str] = set(REAL_HEADS) | set(REAL_MODIFIERS)
    n_brands = max(n_categories * 2, int(_BRAND_SHARE * vocab))
    n_dept_words = max(n_depts * 3, int(_DEPT_SHARE * vocab))
    n_heads = max(n_categories * 3, int(_HEAD_SHARE * vocab))
    n_mods = max(n_categories * 2, vocab - n_brands - n_dept_words - n_heads)
    brands = _pseudo_words(rng, n_brands, taken)
    dept_pool = _pseudo_words(rng, n_dept_words, taken)
    head_pool = _pseudo_words(rng, n_heads, taken)
    mod_pool = _pseudo_words(rng, n_mods, taken)

    # Department words: two real ones on top, then its share of pseudo-words.
    dept_sizes = _split(n_dept_words, np.ones(n_depts), 1)
    dept_words: list[list[str]] = []
    start = 0
    for size in dept_sizes:
        real = [REAL_HEADS[int(i)] for i in rng.choice(len(REAL_HEADS), size=2, replace=False)]
        dept_words.append(real + dept_pool[start : start + size])
        start += size

    share = np.asarray(rows, dtype=np.float64)
    head_sizes = _split(n_heads, share, 3)
    mod_sizes = _split(n_mods, share, 2)
    brand_sizes = _split(n_brands, share, 2)
    # Conglomerates: the first few brands also sell in every department.
    global_brands = brands[: max(3, n_brands // 200)]

    categories: list[_Category] = []
    used_names: set[str] = set()
    h = m = b = 0
    for c in range(n_categories):
        heads = head_pool[h : h + head_sizes[c]]
        mods = mod_pool[m : m + mod_sizes[c]]
        own_brands = brands[b : b + brand_sizes[c]]
        h, m, b = h + head_sizes[c], m + mod_sizes[c], b + brand_sizes[c]
        # One real head word on top (shared with a few other categories when there
        # are more categories than real words), the category's own words after it.
        real_head = REAL_HEADS[int(rng.integers(len(REAL_HEADS)))]
        heads = [real_head, *heads]
        categories.append(
            _Category(
                name=_category_name(real_head, heads[1], used_names),
                dept=int(depts[c]),
                heads=heads,
                head_p=_zipf(len(heads)),
                mods=mods,
                mod_p=_zipf(len(mods)),
                brands=own_brands,
                brand_p=np.empty(0),
            )
        )
    # Siblings share brands: a third of each category's brand list comes from
    # other categories of its department, at random ranks.
    by_dept: dict[int, list[int]] = {}
    for c, cat in enumerate(categories):
        by_dept.setdefault(cat.dept, []).append(c)
    for cat in categories:
        siblings = [s for s in by_dept[cat.dept] if categories[s] is not cat]
        borrowed: list[str] = []
        for s in rng.permutation(siblings)[:4].tolist() if siblings else []:
            pool = categories[s].brands[: max(1, len(categories[s].brands) // 3)]
            borrowed.extend(pool[:3])
        merged = list(dict.fromkeys(cat.brands + borrowed))
        order = rng.permutation(len(merged))
        cat.brands = [merged[i] for i in order.tolist()]
        cat.brand_p = _zipf(len(cat.brands))
    return categories, dept_words, global_brands


def _category_name(real: str, own: str, used: set[str]) -> str:
    name = f"{real.title()} {own.title()}"
    n = 2
    while name in used:
        name = f"{real.title()} {own.title()} {n}"
        n += 1
    used.add(name)
    return name


def _category_rows(
    rng: np.random.Generator,
    cat: _Category,
    dept_words: list[str],
    global_brands: list[str],
    count: int,
    variants_per_line: float,
) -> list[str]:
    """`count` raw titles of one category (maybe with duplicates; the caller dedups).

    Titles are variants of product lines, as in a real shop: a line is a brand,
    product-type words and core modifiers ("Brovela Susu Kremi"); its rows add a
    flavour or variant word and a size ("... Coklat 6x200ml"). The repetition
    within a line is what keeps features per row near real catalogues' 2.5-5.
    """
    # Everything random is drawn up front in arrays: one rng call per field
    # instead of per row keeps 100k+ rows well under a second.
    n_lines = max(1, math.ceil(count / variants_per_line))
    brand_idx = rng.choice(len(cat.brands), size=n_lines, p=cat.brand_p)
    use_global = rng.random(n_lines) < 0.06
    global_idx = rng.choice(len(global_brands), size=n_lines, p=_zipf(len(global_brands)))
    has_brand = rng.random(n_lines) < 0.88
    n_heads = rng.choice((1, 2, 3), size=n_lines, p=(0.55, 0.38, 0.07))
    head_idx = rng.choice(len(cat.heads), size=(n_lines, 3), p=cat.head_p)
    dept_idx = rng.choice(len(dept_words), size=(n_lines, 3), p=_zipf(len(dept_words)))
    from_dept = rng.random((n_lines, 3)) < 0.22
    n_core = rng.choice((0, 1, 2), size=n_lines, p=(0.35, 0.45, 0.2))
    core_idx = rng.choice(len(cat.mods), size=(n_lines, 2), p=cat.mod_p)
    template = rng.choice(3, size=n_lines, p=(0.72, 0.14, 0.14))

    lines: list[tuple[list[str], list[str], list[str], int]] = []
    for i in range(n_lines):
        if not has_brand[i]:
            brand: list[str] = []
        elif use_global[i]:
            brand = [global_brands[global_idx[i]]]
        else:
            brand = [cat.brands[brand_idx[i]]]
        heads = [
            dept_words[dept_idx[i, j]] if from_dept[i, j] else cat.heads[head_idx[i, j]]
            for j in range(n_heads[i])
        ]
        core = [cat.mods[core_idx[i, j]] for j in range(n_core[i])]
        lines.append((brand, heads, core, int(template[i])))

    # Some lines have many variants, most a few (Zipf over a shuffled line order).
    line_of = rng.choice(n_lines, size=count, p=_zipf(n_lines)[rng.permutation(n_lines)])
    n_var = rng.choice((0, 1, 2), size=count, p=(0.35, 0.5, 0.15))
    var_idx = rng.choice(len(cat.mods), size=(count, 2), p=cat.mod_p)
    real_idx = rng.choice(len(REAL_MODIFIERS), size=(count, 2), p=_zipf(len(REAL_MODIFIERS)))
    generic = rng.random((count, 2)) < 0.6
    family = UNITS[cat.dept % len(UNITS)]
    # A department sometimes sells in a neighbouring unit (1.5 l next to 750 ml).
    alt_family = UNITS[(cat.dept + 1) % len(UNITS)]
    size_kind = rng.choice(4, size=count, p=(0.17, 0.63, 0.12, 0.08))  # none, plain, multi, alt
    unit_idx = rng.integers(0, 1 << 30, size=count)
    amount_idx = rng.integers(0, 1 << 30, size=count)
    pack = rng.choice((2, 3, 4, 5, 6, 10, 12, 24), size=count)
    casing = rng.choice(3, size=count, p=(0.55, 0.27, 0.18))
    noise = rng.random(count) < 0.05
    noise_idx = rng.integers(0, len(NOISE), size=count)

    titles: list[str] = []
    for i in range(count):
        brand, heads, core, shape = lines[line_of[i]]
        mods = core + [
            REAL_MODIFIERS[real_idx[i, j]] if generic[i, j] else cat.mods[var_idx[i, j]]
            for j in range(n_var[i])
        ]
        kind = size_kind[i]
        size: list[str] = []
        if kind:
            units, amounts = alt_family if kind == 3 else family
            unit = units[unit_idx[i] % len(units)]
            if kind == 2:
                # Multipacks are of the small sizes: 6x200ml, not 6x5l.
                amount = _amount(amounts[amount_idx[i] % max(1, len(amounts) // 2)])
                size = [f"{pack[i]}x{amount}{unit.strip()}"]
            else:
                size = [f"{_amount(amounts[amount_idx[i] % len(amounts)])}{unit}"]
        if shape == 0:
            tokens = brand + heads + mods + size
        elif shape == 1:
            tokens = heads + brand + mods + size
        else:
            tokens = brand + heads + size + mods
        title = " ".join(dict.fromkeys(tokens))  # "susu susu" is not a real title
        if noise[i]:
            title = f"{title} {NOISE[noise_idx[i]]}"
        if casing[i] == 0:
            # Not str.title(): that would write "250Ml"; sizes keep their spelling.
            title = " ".join(w[:1].upper() + w[1:] for w in title.split(" "))
        elif casing[i] == 2:
            title = title.upper()
        titles.append(title)
    return titles


def generate(
    n_categories: int,
    n_rows: int,
    seed: int = DEFAULT_SEED,
    *,
    vocab: int | None = None,
    variants_per_line: float = VARIANTS_PER_LINE,
) -> list[tuple[str, str]]:
    """`n_rows` distinct (product_name, category) rows over `n_categories` categories.

    `vocab` is the number of distinct pseudo-words (brands, department words,
    category head words and modifiers) to draw from; the default grows with
    `n_rows`. Rows come shuffled; the same arguments always give the same rows.
    """
    if n_categories < 2:
        raise ValueError("need at least 2 categories")
    if n_rows < n_categories * MIN_ROWS_PER_CATEGORY:
        raise ValueError(
            f"{n_rows} rows is too few for {n_categories} categories "
            f"(at least {MIN_ROWS_PER_CATEGORY} each)"
        )
    vocab = default_vocab(n_rows) if vocab is None else vocab
    if vocab < 1:
        raise ValueError("vocab must be positive")
    rng = np.random.default_rng(seed)
    # Mildly unbalanced classes, in random order so category 0 is not always largest.
    weights = 1.0 / np.arange(1, n_categories + 1, dtype=np.float64) ** 0.6
    weights = weights[rng.permutation(n_categories)]
    rows = _split(n_rows, weights, MIN_ROWS_PER_CATEGORY)
    categories, dept_words, global_brands = _build_categories(rng, n_categories, vocab, rows)

    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for cat, want in zip(categories, rows, strict=True):
        kept = 0
        # A small vocabulary repeats titles; redraw the shortfall a few times, then
        # accept fewer rows rather than loop for ever.
        for _ in range(6):
            titles = _category_rows(
                rng, cat, dept_words[cat.dept], global_brands, want - kept, variants_per_line
            )
            for title in titles:
                key = title.casefold()
                if key not in seen:
                    seen.add(key)
                    out.append((title, cat.name))
                    kept += 1
            if kept >= want:
                break
    order = rng.permutation(len(out))
    return [out[i] for i in order.tolist()]


def measure_features(names: Sequence[str]) -> dict[str, int]:
    """TF-IDF feature counts of the service's vectorisers fitted on `names`."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from app.ml.pipeline import build_features

    union = build_features().fit(list(names))
    counts = {name: len(vec.vocabulary_) for name, vec in union.transformer_list}
    return {**counts, "total": sum(counts.values())}


def write_csv(rows: Sequence[tuple[str, str]], path: Path) -> None:
    """Write `rows` as a product_name,category CSV."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("product_name", "category"))
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    """Generate a catalogue, write it as CSV, optionally measure its feature count."""
    parser = argparse.ArgumentParser(
        description="Write a deterministic synthetic product catalogue (product_name,category)."
    )
    parser.add_argument("--categories", type=int, required=True, help="number of categories")
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument(
        "--features",
        type=int,
        help="target TF-IDF feature count: rows and vocabulary from plan() (with --calibrate, "
        "corrected by measurement)",
    )
    size.add_argument("--rows", type=int, help="number of rows, when not giving --features")
    parser.add_argument(
        "--vocab",
        type=int,
        help="with --rows: distinct pseudo-words to draw from (default "
        f"{DEFAULT_VOCAB_PER_ROW} per row)",
    )
    parser.add_argument(
        "--vocab-per-row",
        type=float,
        default=DEFAULT_VOCAB_PER_ROW,
        help="with --features: vocabulary per generated row; more gives more features per "
        "row (default %(default)s)",
    )
    parser.add_argument(
        "--fit-fraction",
        type=float,
        default=1.0,
        help="with --features: share of rows the vectorisers will see, e.g. 0.8 for "
        "train.py's default hold-out (default %(default)s)",
    )
    parser.add_argument(
        "--calibrate",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="with --features: correct the row count from up to ROUNDS measurements "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="random seed (default %(default)s)"
    )
    parser.add_argument("--out", type=Path, help="CSV to write (default: write nothing)")
    parser.add_argument(
        "--measure",
        action="store_true",
        help="fit build_features() on the rows (the --fit-fraction share) and print "
        "word, char and total feature counts",
    )
    args = parser.parse_args(argv)
    if args.vocab is not None and args.features is not None:
        parser.error("--vocab goes with --rows; with --features use --vocab-per-row")

    started = time.perf_counter()
    features: dict[str, int] | None = None
    if args.features is not None and args.calibrate > 0:
        result = calibrated(
            args.categories,
            args.features,
            args.seed,
            vocab_per_row=args.vocab_per_row,
            fit_fraction=args.fit_fraction,
            rounds=args.calibrate,
        )
        data, n_rows, vocab, features = (
            result.rows,
            result.plan.n_rows,
            result.plan.vocab,
            result.features,
        )
    else:
        if args.features is not None:
            chosen = plan(
                args.categories,
                args.features,
                vocab_per_row=args.vocab_per_row,
                fit_fraction=args.fit_fraction,
            )
            n_rows, vocab = chosen.n_rows, chosen.vocab
        else:
            n_rows, vocab = args.rows, args.vocab or default_vocab(args.rows)
        data = generate(args.categories, n_rows, args.seed, vocab=vocab)
    elapsed = time.perf_counter() - started
    labels = len({label for _, label in data})
    how = "generated and calibrated" if features is not None else "generated"
    print(
        f"{how} {len(data):,} rows ({n_rows:,} asked), {labels} categories, "
        f"vocab {vocab:,}, in {elapsed:.2f} s",
        file=sys.stderr,
    )
    if args.out is not None:
        write_csv(data, args.out)
        print(f"wrote {args.out}", file=sys.stderr)
    if args.measure or features is not None:
        started = time.perf_counter()
        fitted = [name for name, _ in data[: max(1, int(len(data) * args.fit_fraction))]]
        # Calibration has just measured these very rows; no need to fit again.
        note = "measured by calibration"
        if features is None:
            features = measure_features(fitted)
            note = f"measured in {time.perf_counter() - started:.1f} s"
        print(
            f"features on {len(fitted):,} rows: word {features['word']:,} + char "
            f"{features['char']:,} = {features['total']:,} ({features['total'] / len(fitted):.2f} "
            f"per row; {note})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
