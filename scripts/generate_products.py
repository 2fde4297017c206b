"""Deterministic generator of Garoupa's shipped training data (``data/products.csv``).

The rows are synthetic Indonesian grocery / FMCG product names written the way
they appear on supermarket receipts (Alfamart / Indomaret style, ALL CAPS,
abbreviated, truncated) and on marketplace listings (Tokopedia / Shopee style,
title case, pack sizes, promo noise), each labelled with one of 30 Indonesian
category names. Brand names are used descriptively to make the names look
real; nothing here is real sales data.

The data is deliberately not trivially separable:

* the class distribution is mildly imbalanced (see ``CATEGORIES`` weights);
* brands span several categories (Ultra: susu, teh, minuman; ABC: kecap,
  sarden, kopi, sirup, mie; Lifebuoy: sabun, shampoo; Wings: mie, deterjen,
  sabun cuci piring, pasta gigi ...), and store brands appear everywhere;
* flavour and pack words are shared across classes (coklat, stroberi, susu,
  vanila, 250ml, sachet, refill ...);
* about 1.5% of rows are genuinely ambiguous products (Milo, Yakult, Beng-Beng,
  Dettol antiseptik, madu, tepung bumbu ...) whose label is drawn from the
  categories a real shop might file them under;
* sizes, units and abbreviations are written many ways, with typos.

Reproducibility: every category draws from its own ``random.Random`` seeded
with ``f"{seed}:{category}"`` and rows are de-duplicated within the category on a
punctuation- and case-insensitive key, so the output depends only on
``--seed`` and ``--rows``; running the script twice gives byte-identical files.
Because each category's stream is independent of ``--rows``, the tiny test
fixture (the first 13 unambiguous rows of six categories, see ``TINY_CATEGORIES``)
is the same for any ``--rows`` and is always a subset of the full file.

Regenerate everything that is shipped::

    python scripts/generate_products.py

which writes ``data/products.csv`` (7,200 rows, seed 42) and
``tests/data/tiny.csv``.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ROWS = 7200
DEFAULT_SEED = 42
DEFAULT_OUTPUT = ROOT / "data" / "products.csv"
DEFAULT_TINY_OUTPUT = ROOT / "tests" / "data" / "tiny.csv"
HEADER = ("product_name", "category")

TINY_CATEGORIES = (
    "Susu",
    "Mie Instan",
    "Kopi",
    "Makanan Ringan",
    "Deterjen & Pelembut",
    "Perawatan Gigi & Mulut",
)
TINY_ROWS_PER_CATEGORY = 13

# Share of a category's rows drawn from the ambiguous products that list it.
AMBIGUOUS_RATE = 0.02
# A row of one category may be attempted at most this many times per target row
# before the generator gives up (the combinatorial space is too small).
MAX_ATTEMPTS_PER_ROW = 200


@dataclass(frozen=True)
class Line:
    """One product line: the ways its brand, type, variant, size and pack are written."""

    brands: tuple[str, ...]
    kinds: tuple[str, ...]
    variants: tuple[str, ...]
    sizes: tuple[str, ...]
    packs: tuple[str, ...]
    weight: float


@dataclass(frozen=True)
class Category:
    """A label with its relative frequency and the product lines filed under it."""

    name: str
    weight: float
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class Ambiguous:
    """A product a real shop could file under any of ``labels``."""

    labels: tuple[str, ...]
    line: Line


def _split(spec: str) -> tuple[str, ...]:
    """``"a|b|"`` -> ``("a", "b", "")``; an empty string allows the part to be left out."""
    return tuple(part.strip() for part in spec.split("|"))


def L(
    brands: str, kinds: str, variants: str, sizes: str, packs: str = "", weight: float = 1.0
) -> Line:
    """Build a ``Line`` from ``|``-separated alternatives."""
    return Line(
        _split(brands), _split(kinds), _split(variants), _split(sizes), _split(packs), weight
    )


# Pack phrases by product family. "*N" renders as a multipack ("6x200ml", "200ml x 6").
P_DRINK = "|isi 6|x 24|1 dus|dus isi 24|ctn|pack 6|*6|*12|*24|1 karton|btl|isi 12"
P_CAN = "|klg|kaleng|x 24|1 dus|*6|pack 3|ctn|isi 3"
P_SACHET = "|sachet|sct|rtg|renteng|isi 10|1 renteng isi 10|bks|*10|box isi 5"
P_NOODLE = "|isi 5|pack 5|x 40|1 dus|dus isi 40|ctn|5 pcs|bks|*5|1 karton isi 40"
P_SNACK = "|bks|pack|isi 10|x 10|1 dus|pcs|*3|family pack|rtg"
P_BAG = "|pouch|refill|bag|1 dus|*2|pack 2|isi 2"
P_OIL = "|pouch|refill|btl|jrgn|jerigen|x 12|1 dus|*2|isi 2"
P_BOTTLE = "|btl|pouch|refill|*2|pack 2|twin pack|pump|isi 2"
P_SMALL = "|sachet|rtg|isi 12|box|strip|*12|bks|dus"
P_PIECE = "|pcs|1 pcs|pack|*2|isi 3|bks|box"
P_NONE = ""

CATEGORIES: tuple[Category, ...] = (
    Category(
        "Susu",
        3.6,
        (
            L(
                "Ultra Milk|Ultra|ULTRAMILK|Ultra Jaya|Ultra Milk UHT",
                "Susu UHT|Susu|Susu Cair|UHT|Fresh Milk|Susu UHT|Susu Kotak|",
                "Coklat|Coklat|Cokelat|Chocolate|Full Cream|Full Cream|Stroberi|Strawberry|"
                "Moka|Taro|Low Fat|Rendah Lemak|Plain|Karamel|Low Fat Coklat|Full Cream Plain",
                "250ml|250ml|250ml|200ml|125ml|1L|1000ml",
                P_DRINK,
                weight=5.0,
            ),
            L(
                "Ultra Mimi|Mimi|Ultra Mimi Kids",
                "Susu UHT Anak|Susu Anak|Susu UHT|Susu|",
                "Coklat|Stroberi|Vanila|Full Cream|Banana|Vanilla|Cokelat",
                "125ml|200ml|125ml",
                P_DRINK,
                weight=1.5,
            ),
            L(
                "Indomilk|INDOMILK|Indo Milk|Indomilk Kids",
                "Susu UHT|Susu Cair|Susu Steril|Susu|UHT|",
                "Coklat|Full Cream|Stroberi|Vanila|Plain|Cokelat|Tiramisu|Banana|Melon",
                "190ml|250ml|115ml|1L|200ml",
                P_DRINK,
                weight=1.5,
            ),
            L(
                "Indomilk|Frisian Flag|Bendera|Cap Enaak|Carnation|Indomaret|Tiga Sapi",
                "Susu Kental Manis|Kental Manis|SKM|Susu Kental|Krimer Kental Manis|Susu Kaleng",
                "Putih|Coklat|Cokelat|Gold|Full Cream|Original|Plain|",
                "370g|545g|560g|40g|490g|280g|370g",
                "|kaleng|klg|sachet|pouch|tube|rtg|*6",
                weight=1.8,
            ),
            L(
                "Frisian Flag|Bendera|FF|Frisian Flag Bendera|Susu Bendera",
                "Susu UHT|Purefarm|Susu Cair|Susu|UHT|Susu Kotak|",
                "Coklat|Full Cream|Stroberi|Low Fat|Zero Fat|Cokelat|Swiss Chocolate|Plain",
                "225ml|115ml|900ml|1L|946ml|225ml",
                P_DRINK,
                weight=1.8,
            ),
            L(
                "Frisian Flag|Bendera|FF|Frisian Flag 123|Frisian Flag 456|Frisian Flag Primagro",
                "Susu Bubuk|Susu Pertumbuhan|Susu Bubuk Instant|Susu Bubuk Full Cream|",
                "Coklat|Vanila|Madu|Full Cream|Gold|Instant|Plain|Cokelat",
                "400g|800g|38g|1kg|350g|27g",
                "|box|pouch|sachet|rtg|isi 10",
                weight=1.2,
            ),
            L(
                "Bear Brand|BEARBRAND|Susu Beruang|Nestle Bear Brand|Bearbrand",
                "Susu Steril|Susu|Susu Kaleng|Susu Murni|",
                "Original|Gold White Malt|Gold White Tea|Putih|Plain|",
                "189ml|140ml",
                P_CAN,
                weight=1.6,
            ),
            L(
                "Dancow|Nestle Dancow|DANCOW",
                "Susu Bubuk|Fortigro|1+|3+|5+|Instant|Susu Pertumbuhan|Susu Bubuk Full Cream|",
                "Coklat|Full Cream|Madu|Vanila|Instant Cokelat|Plain|Fortigro Coklat|Stroberi",
                "800g|400g|200g|27g|1kg|780g",
                "|box|pouch|sachet|rtg|kaleng|isi 10",
                weight=2.0,
            ),
            L(
                "SGM|SGM Eksplor|SGM Ananda|Sarihusada SGM",
                "Susu Formula|Susu Pertumbuhan|Susu Bubuk|1+|3+|Presinutri|",
                "Vanila|Madu|Coklat|Original|Soya|Plain",
                "400g|900g|150g|1kg|700g",
                "|box|pouch|bag",
            ),
            L(
                "Lactogen|Nestle Lactogen|Bebelac|Nutrilon Royal|Morinaga Chil Kid|Chil School",
                "Susu Formula|Susu Pertumbuhan|Susu Bubuk|1|2|3|4|Gold|",
                "Vanila|Madu|Original|Plain|Coklat",
                "350g|750g|400g|800g|700g",
                "|box|tin|kaleng",
            ),
            L(
                "Anlene|Hilo|Prenagen|Entrasol|Diabetasol|Boneeto|Zee|Hilo Teen",
                "Susu Bubuk|Susu Tinggi Kalsium|Susu Ibu Hamil|Susu Dewasa|Susu Diabetes|Susu|",
                "Coklat|Vanila|Original|Mocha|Plain|Stroberi|Low Fat|Active",
                "250g|600g|500g|180g|400g|1kg|35g",
                "|box|sachet|rtg|pouch",
                weight=1.5,
            ),
            L(
                "Greenfields|Diamond|Cimory|Real Good|Indomaret|Alfamart|Nestle",
                "Susu UHT|Fresh Milk|Susu Segar|Susu Cair|UHT|Susu Pasteurisasi",
                "Full Cream|Coklat|Low Fat|Stroberi|Chocomalt|Choco Malt|Plain|Skimmed|Banana",
                "250ml|1L|200ml|180ml|950ml|125ml|1890ml",
                P_DRINK,
                weight=2.0,
            ),
            L(
                "Vsoy|Soyfresh|Kedelai|Etawaku|Susu Kambing|Oatside",
                "Susu Kedelai|Soya Milk|Susu Kambing Etawa|Oat Milk|Susu Oat|Susu",
                "Original|Coklat|Vanila|Barista|Melon|Plain",
                "300ml|1L|200ml|250ml|200g",
                P_DRINK,
                weight=0.8,
            ),
        ),
    ),
    Category(
        "Mie Instan",
        2.6,
        (
            L(
                "Indomie|INDOMIE|Indomie|Indomi|Indomie Instant",
                "Mie Goreng|Goreng|Goreng|Mi Goreng|Mie Instan|Mi Instan|Kuah|Mie Kuah|"
                "Instant Noodle|Fried Noodle|",
                "Original|Spesial|Special|Ayam Bawang|Soto|Soto Mie|Rendang|Kari Ayam|Ayam Spesial|"
                "Aceh|Iga Penyet|Ayam Geprek|Cabe Ijo|Rica Rica|Jumbo|Pedas|Seblak|Salero Padang|"
                "Kaldu Ayam|Hype Abis|",
                "85g|80g|75g|70g|90g|129g|127g|",
                P_NOODLE,
                weight=4.0,
            ),
            L(
                "Mie Sedaap|Sedaap|SEDAAP|Mi Sedaap|Mie Sedap",
                "Mie Goreng|Goreng|Mie Kuah|Mie Instan|Cup|Instant Noodle|",
                "Original|Soto|Ayam Bawang|Kari Spesial|Korean Spicy|Korean Spicy Chicken|"
                "White Curry|Baso Spesial|Ayam Spesial|Selection|Singapore Laksa|Kari Ayam",
                "90g|91g|75g|77g|87g|128g|",
                P_NOODLE,
                weight=3.0,
            ),
            L(
                "Sarimi|Supermi|Pop Mie|Mie Sukses|Sakura|Intermie|Gaga 100|Gaga|Lemonilo",
                "Mie Goreng|Mie Instan|Mie Kuah|Mi Gelas|Cup|Isi 2|Mie Cup|Instant Noodle|",
                "Ayam Bawang|Soto|Kari|Goreng Ayam|Baso|Ayam Spesial|Pedas Dower|Kaldu|Original|"
                "Rendang|Mie Telur|Jalur Pedas",
                "70g|75g|126g|60g|115g|80g|",
                P_NOODLE,
                weight=2.5,
            ),
            L(
                "ABC|Mie ABC|Selera Pedas ABC|Samyang|Nissin|Nongshim|Ramen Indomie|"
                "Mie Burung Dara",
                "Mie Instan|Mie Goreng|Ramen|Hot Chicken Ramen|Mie Kuah|Mie Telor|Instant Noodle",
                "Ayam Geprek|Goreng Pedas|Original|Carbonara|Cheese|Keju|2x Spicy|Shin Ramyun|"
                "Kari|Rasa Ayam|Tomyum",
                "140g|120g|80g|70g|200g|",
                P_NOODLE,
                weight=1.5,
            ),
            L(
                "Bihunku|Bihun Jagung|Kwetiau Instan|Mie Telor Cap 3 Ayam|Pop Bihun",
                "Bihun Instan|Bihun Goreng|Bihun Kuah|Kwetiau|Mie Instan|",
                "Soto|Ayam Bawang|Goreng Spesial|Original|Bakso",
                "55g|60g|200g|",
                P_NOODLE,
                weight=0.8,
            ),
        ),
    ),
    Category(
        "Air Mineral",
        1.3,
        (
            L(
                "Aqua|AQUA|Aqua|Danone Aqua|Aqua Danone",
                "Air Mineral|Air Minum|AMDK|Mineral Water|Botol|Galon|Air Mineral Botol|",
                "|||Reflections|Life|Kids|Isi Ulang",
                "600ml|600ml|600ml|1500ml|330ml|1.5L|750ml|220ml|19L|1100ml",
                P_DRINK + "|galon",
                weight=4.0,
            ),
            L(
                "Le Minerale|Leminerale|Le Mineral|LE MINERALE",
                "Air Mineral|Air Minum|Mineral Water|AMDK|Botol|Galon|",
                "||||Isi Ulang",
                "600ml|600ml|1500ml|330ml|1.5L|15L|1L",
                P_DRINK + "|galon",
                weight=2.5,
            ),
            L(
                "Club|Ades|Prima|Prim-A|Vit|Cleo|Nestle Pure Life|Crystalline|Pristine|Amidis|"
                "Oasis|"
                "Indomaret|Alfamart|Alfa|Total 8+|Equil",
                "Air Mineral|Air Minum|Mineral Water|Air Murni|Alkaline Water|AMDK|Sparkling Water|"
                "",
                "|||Natural|Alkaline|pH 8.6",
                "600ml|1500ml|330ml|220ml|500ml|1.5L|380ml|19L|240ml|400ml|750ml",
                P_DRINK + "|galon|cup|gelas",
                weight=3.0,
            ),
        ),
    ),
    Category(
        "Minuman Ringan",
        2.2,
        (
            L(
                "Coca-Cola|Coca Cola|Coke|Fanta|Sprite|Big Cola|A&W|Pepsi",
                "Minuman Bersoda|Soft Drink|Soda|Minuman Ringan|Kaleng|Botol|",
                "Original|Zero|Stroberi|Strawberry|Anggur|Grape|Jeruk|Orange|Lemon Lime|"
                "Melon Frosty|Zero Sugar|Sarsaparilla|Less Sugar|",
                "390ml|250ml|330ml|1.5L|1L|425ml|1500ml|600ml",
                P_DRINK,
                weight=3.0,
            ),
            L(
                "Pocari Sweat|Pocari|Mizone|Isoplus|Hydro Coco|Powerade|You C1000|Fatigon Hydro",
                "Minuman Isotonik|Ion Drink|Isotonic Drink|Minuman Vitamin|Vitamin C Drink|",
                "Original|Lychee Lemon|Apple Guava|Orange Lime|Passion Fruit|Lemon|Kelapa|"
                "Cranberry|Mood Up|Jeruk",
                "500ml|350ml|900ml|330ml|140ml|250ml|1.5L|2L",
                P_DRINK,
                weight=2.5,
            ),
            L(
                "Buavita|Minute Maid Pulpy|Floridina|Ale-Ale|Tebs|Ultra Sari Kacang Ijo|"
                "Sari Kacang Ijo|"
                "Cimory Fruit|Ultra Sari Asem|Country Choice|Berri",
                "Jus|Juice|Minuman Sari Buah|Sari Buah|Minuman Buah|Minuman|",
                "Jeruk|Orange|Mangga|Jambu|Apel|Anggur|Guava|Leci|Stroberi|Melon|Kacang Hijau|"
                "Sirsak|Original",
                "250ml|300ml|350ml|1L|200ml|330ml|245ml",
                P_DRINK,
                weight=2.5,
            ),
            L(
                "Marjan|ABC|Sirup ABC|Kurnia|Tjampolay|Indofood Freiss|Nutrisari|Pop Ice|"
                "Segar Sari",
                "Sirup|Syrup|Squash|Minuman Serbuk|Sirup Boudoin|Minuman Bubuk|Powder Drink|",
                "Cocopandan|Melon|Stroberi|Frambozen|Jeruk|Anggur|Leci|Mangga|Coklat|Es Teler|"
                "Jeruk Peras|Nanas|Taro",
                "460ml|525ml|485ml|1L|750ml|14g|25g|11g",
                "|btl|sachet|rtg|isi 10|dus|pouch",
                weight=2.0,
            ),
            L(
                "Kratingdaeng|Extra Joss|M-150|Hemaviton Energy Drink|Red Bull|Lasegar|"
                "Tebs Sparkling",
                "Minuman Energi|Energy Drink|Minuman Berenergi|Suplemen Energi|",
                "Original|Jeruk|Anggur|Lemon|Ginseng|Sugar Free|",
                "150ml|250ml|320ml|4.5g|6g",
                "|btl|klg|sachet|rtg|isi 6|dus",
                weight=1.2,
            ),
        ),
    ),
    Category(
        "Kopi",
        2.0,
        (
            L(
                "Kapal Api|KAPAL API|Kopi Kapal Api|Kapal Api Special",
                "Kopi Bubuk|Kopi Hitam|Kopi Sachet|Kopi Instan|Kopi|Ground Coffee|",
                "Special|Special Mix|Mantap|Grande|Kopi Susu|Original|Gula Aren|Mocha",
                "165g|380g|25g|24g|65g|25g|800g",
                P_SACHET + "|pouch|bag|box",
                weight=2.5,
            ),
            L(
                "Good Day|GOODDAY|Goodday|Good Day Coffee",
                "Kopi Instan|Kopi 3in1|Kopi Sachet|Coffee Drink|Kopi Botol|Kopi|",
                "Cappuccino|Mocacinno|Vanilla Latte|Freeze|Carrebian Nut|Chococinno|Tiramisu|"
                "Avocado Delight|Original|Coolin",
                "20g|25g|30g|250ml|200ml|10 x 20g",
                P_SACHET + "|btl|klg|bag",
                weight=2.2,
            ),
            L(
                "Nescafe|NESCAFE|Nescafe Classic|Nestle Nescafe",
                "Kopi Instan|Kopi|Kopi 3in1|Kopi Kaleng|Coffee|Kopi Hitam|",
                "Classic|Gold|Original|Latte|Cappuccino|Creamy Latte|Black|Ice Black|Mocha|"
                "Kopi Susu",
                "2g|50g|100g|200g|240ml|220ml|17.5g",
                P_SACHET + "|klg|jar|refill|pouch",
                weight=2.0,
            ),
            L(
                "Torabika|TORABIKA|Luwak White Koffie|Luwak|Top Coffee|Indocafe|Kopiko 78|Kopiko|"
                "Kopi ABC|ABC|Excelso|Golda|Tora Cafe|Caffino|Kopi Kenangan|Fore",
                "Kopi Instan|Kopi Susu|Kopi Sachet|Kopi 3in1|Coffeemix|Brown Coffee|Kopi Botol|"
                "Kopi Siap Minum|Kopi|",
                "Cappuccino|Duo|Creamy Latte|Original|Less Sugar|Kopi Susu|Mocca|Gula Aren|Susu|"
                "Moka|Caramel|Brown Coffee|Black",
                "20g|25g|31g|28g|240ml|220ml|200ml|180ml|150ml",
                P_SACHET + "|btl|bag",
                weight=3.0,
            ),
            L(
                "Kopi Liong Bulan|Kopi Cap Singa|Kopi Aceh Gayo|Kopi Toraja|Kopi Bali|Kopi Lampung",
                "Kopi Bubuk|Biji Kopi|Kopi Robusta|Kopi Arabika|Coffee Beans|Kopi",
                "Robusta|Arabika|Original|Premium|Fine Grind",
                "200g|250g|500g|1kg|100g",
                "|bag|pouch|bks",
                weight=0.8,
            ),
        ),
    ),
    Category(
        "Teh",
        1.5,
        (
            L(
                "Sariwangi|SARIWANGI|Sari Wangi|Sosro|Tong Tji|Teh Tong Tji|2Tang|Teh Poci|"
                "Teh Villa|"
                "Teh Upet|Lipton|Dilmah|Tjap Djenggot|Teh Gopek",
                "Teh Celup|Teh Tubruk|Teh Bubuk|Teh Hitam|Teh Hijau|Tea Bag|Teh Melati|Teh|",
                "Asli|Original|Melati|Jasmine|Green Tea|Hitam|Wangi|Premium|Vanila|Lemon|Apel|"
                "Tawar",
                "25s|isi 25|50s|isi 30|40g|50g|100g|25 x 2g|15s",
                "|box|bks|pak|dus",
                weight=2.5,
            ),
            L(
                "Teh Pucuk Harum|Teh Pucuk|Pucuk Harum|Ichi Ocha|Frestea|Teh Gelas|Teh Kotak|"
                "Teh Kotak Ultra|"
                "Teh Javana|Nu Green Tea|Nu|Teh Botol Sosro|S-Tee|Joy Tea|Zestea",
                "Teh|Minuman Teh|Teh Siap Minum|Tea Drink|Teh Manis|Teh Hijau|",
                "Melati|Jasmine|Original|Less Sugar|Apel|Leci|Green Tea|Madu|Lemon|Honey|"
                "Tawar|Kurang Manis|",
                "350ml|450ml|500ml|250ml|200ml|1L|300ml|330ml|180ml",
                P_DRINK,
                weight=2.5,
            ),
            L(
                "Max Tea|Teh Tarik|Nestea|Sariwangi|Teh Sisri|Teh Hijau Kepala Djenggot",
                "Teh Tarik|Teh Instan|Teh Serbuk|Minuman Teh Bubuk|Lemon Tea|",
                "Original|Lemon|Tarik|Leci|Madu|",
                "25g|21g|10 x 25g|14g",
                P_SACHET,
                weight=1.0,
            ),
        ),
    ),
    Category(
        "Makanan Ringan",
        2.4,
        (
            L(
                "Chitato|CHITATO|Lays|Lay's|Potabee|Pringles|Japota|Happytos|Chitato Lite",
                "Keripik Kentang|Potato Chips|Kripik Kentang|Snack Kentang|Snack|",
                "Sapi Panggang|Ayam Bumbu|Rumput Laut|Original|Keju|BBQ|Beef BBQ|Salted Egg|"
                "Sour Cream|Extra Hot|Cheese|Honey Butter|Balado|Seaweed",
                "68g|35g|15g|120g|55g|160g|75g|107g|40g",
                P_SNACK,
                weight=3.0,
            ),
            L(
                "Taro|TARO|Qtela|Cheetos|JetZ|Chiki Balls|Chiki|Piattos|Twistko|Oishi|Richeese Ahh|"
                "Momogi|Kusuka|Maicih|Mr. Hotto",
                "Snack|Net|Keripik|Keripik Singkong|Tempe|Jagung|Stick|Snack Jagung|Cemilan|",
                "Seaweed|Rumput Laut|Keju|Cheese|Jagung Bakar|Sweet Corn|Jagung Manis|Barbeque|"
                "Singkong Balado|Tempe Original|Coklat|Pedas|Level 5|Ayam Bawang|Original",
                "65g|36g|15g|185g|120g|40g|70g|10g|100g|160g",
                P_SNACK,
                weight=3.5,
            ),
            L(
                "Garuda|Dua Kelinci|Kacang Garuda|Rosta|Sukro|Tic Tac|Garuda Pilus|Pilus|"
                "Kacang Mete",
                "Kacang Kulit|Kacang Atom|Kacang Sukro|Pilus|Kacang Panggang|Kacang Telur|Snack|"
                "Kacang|Kacang Mete",
                "Original|Bawang|Pedas|Rasa Sapi|Balado|Madu|Manis|Ayam|Tortilla|Kribo",
                "60g|100g|150g|250g|400g|20g|70g|135g",
                P_SNACK + "|toples",
                weight=2.0,
            ),
            L(
                "Finna|Kerupuk Udang|Emping Melinjo|Keripik Pisang|Krupuk Kulit|Makaroni Ngehe|"
                "Basreng",
                "Kerupuk|Krupuk|Keripik|Emping|Makaroni Pedas|Basreng Pedas|Cemilan",
                "Udang|Bawang|Original|Balado|Pedas|Manis|Coklat|Daun Jeruk",
                "100g|250g|500g|200g|50g",
                P_SNACK,
                weight=1.0,
            ),
        ),
    ),
    Category(
        "Biskuit & Wafer",
        2.2,
        (
            L(
                "Oreo|OREO|Oreo Original",
                "Biskuit|Biskuit Sandwich|Cookies|Biscuit|Wafer|Thins|",
                "Vanila|Vanilla|Coklat|Chocolate|Stroberi|Strawberry|Red Velvet|Double Delight|"
                "Blueberry|Peanut Butter|Choco|Original",
                "133g|137g|266g|36g|29.4g|123.5g|28.5g",
                P_SNACK + "|*6",
                weight=2.5,
            ),
            L(
                "Roma|ROMA|Roma Malkist|Slai Olai|Better|Sari Gandum|Roma Kelapa",
                "Biskuit|Biscuit|Crackers|Malkist|Wafer|Sandwich|Biskuit Kelapa|",
                "Kelapa|Kelapa Kopyor|Abon|Cokelat|Coklat|Susu|Marie Susu|Keju|Original|"
                "Stroberi|Nanas|Sandwich Coklat|Gandum",
                "300g|115g|135g|240g|190g|320g|230g|45g",
                P_SNACK,
                weight=2.5,
            ),
            L(
                "Khong Guan|KHONG GUAN|Monde|Nissin|Hatari|Marie Regal|Regal|Danisa|Julie's|"
                "Selamat|Good Time|Biskuat|Hello Panda|Fullo|Gery Saluut",
                "Biskuit|Biscuit|Assorted|Butter Cookies|Crackers|Cookies|Kaleng Merah|"
                "Biskuit Marie|Wafer|",
                "Assorted|Original|Butter|Coconut|Coklat|Chocochips|Susu|Kacang|Keju|Bolu|"
                "Peanut Butter|Double Choc|Stroberi|Vanila",
                "1.6kg|650g|300g|454g|250g|120g|76g|72g|22g|400g",
                P_SNACK + "|kaleng|tin|klg",
                weight=3.0,
            ),
            L(
                "Tango|TANGO|Nabati|Richeese Nabati|Richoco|Siip|Superstar|Kokola|Timtam|Tim Tam|"
                "Selamat Wafer",
                "Wafer|Wafer Roll|Wafer Stick|Wafer Krim|Waffle|Biskuit|",
                "Coklat|Chocolate|Vanilla Milk|Vanila|Stroberi|Keju|Cheese|Susu|Long|Double Choco|"
                "Original|Pandan",
                "176g|130g|47g|145g|50g|20g|300g|8g",
                P_SNACK + "|*10",
                weight=2.5,
            ),
        ),
    ),
    Category(
        "Cokelat & Permen",
        1.8,
        (
            L(
                "SilverQueen|Silver Queen|SILVERQUEEN|Cadbury|Cadbury Dairy Milk|Dairy Milk|Delfi|"
                "Toblerone|Ferrero Rocher|Kinder Joy|Kinder Bueno|Cha Cha|Van Houten|Dark Choco",
                "Cokelat|Coklat|Chocolate|Cokelat Batang|Chocolate Bar|Coklat Batang|",
                "Almond|Cashew|Fruit & Nut|Chunky Bar|Very Berry|Hazelnut|Milk|Dark|Original|"
                "Susu|Oreo|Roast Almond|Caramel|Stroberi|Matcha",
                "62g|30g|58g|65g|120g|100g|160g|20g|90g|25g",
                P_PIECE + "|box isi 12|isi 24",
                weight=3.0,
            ),
            L(
                "Alpenliebe|Relaxa|Kopiko|Mentos|Yupi|Fox's|Sugus|Milkita|Tic Tac|Frozz|Happydent|"
                "Big Babol|Lotte Xylitol|Golia|Blaster|Kis|Chupa Chups|Sugus|Kopiko Candy|Tamarin",
                "Permen|Candy|Permen Lunak|Permen Karet|Lolipop|Gummy|Jelly|Permen Susu|Mints|",
                "Caramel|Stroberi|Strawberry|Mint|Jeruk|Anggur|Kopi|Susu|Melon|Buah|Original|"
                "Cappuccino|Rainbow|Crystal Clear|Fruit|Susu Stroberi|Coklat|Asam",
                "120g|135g|150g|12g|3.8g|100g|24g|37.5g|isi 50|isi 100|90g",
                P_PIECE + "|toples|bag|rtg|isi 50|roll|stick",
                weight=3.0,
            ),
        ),
    ),
    Category(
        "Roti & Kue",
        1.1,
        (
            L(
                "Sari Roti|SARI ROTI|Sariroti|Aoka|Mr. Bread|Breadlife|Holland Bakery|Roti O|"
                "Roti Gembong|"
                "Indomaret|Alfamart",
                "Roti Tawar|Roti|Roti Sobek|Sandwich|Roti Isi|Roti Manis|Bread|Roti Kupas|"
                "Roti Panggang|"
                "Chiffon|Roti Bun|",
                "Spesial|Kupas|Coklat|Cokelat|Keju|Srikaya|Pandan|Susu|Coklat Keju|Double Soft|"
                "Durian|"
                "Stroberi|Blueberry|Choco Bun|Gandum|Kismis|Original|Tawar|Susu Coklat|"
                "Selai Kacang",
                "200g|370g|350g|60g|72g|90g|400g|50g|",
                P_PIECE,
                weight=4.0,
            ),
            L(
                "Amanda|Lapis Legit|Bakpia Pathok 25|Bolu|Donat|Kue Lapis|Brownies|Roti Unyil|"
                "Bolu Kukus",
                "Brownies|Kue|Bolu|Bakpia|Kue Basah|Cake|Donat|Lapis",
                "Coklat|Keju|Pandan|Original|Kacang Hijau|Keju Coklat|Pisang|Stroberi|Tiramisu|"
                "Gula",
                "1pcs|isi 6|isi 10|isi 20|300g|500g|",
                P_PIECE + "|box|dus",
                weight=1.5,
            ),
        ),
    ),
    Category(
        "Minyak Goreng",
        1.1,
        (
            L(
                "Bimoli|BIMOLI|Filma|FILMA|Sania|SANIA|Tropical|SunCo|Sunco|Fortune|Sovia|"
                "Kunci Mas|"
                "Minyakita|Rose Brand|Fraiswell|Hemart|Camar|Indomaret|Alfamart|Sanco",
                "Minyak Goreng|Minyak Goreng|Minyak|Minyak Goreng Sawit|Cooking Oil|Minyak Sayur|",
                "|||Klasik|Spesial|Premium|Pouch|Refill|Botol|Jerigen|Kelapa Sawit",
                "1L|2L|1.8L|5L|900ml|620ml|250ml|1000ml|2000ml|2L",
                P_OIL,
                weight=5.0,
            ),
            L(
                "Barco|Minyak Kelapa|Minyak Curah|Tropicana Slim|Mazola|Filippo Berio|Borges",
                "Minyak Kelapa|Minyak Goreng Kelapa|Minyak Jagung|Minyak Zaitun|Olive Oil|"
                "Canola Oil|"
                "Minyak Curah|Minyak Goreng",
                "Original|Extra Virgin|Pomace|Murni|Premium|",
                "1L|500ml|250ml|2L|1kg",
                P_OIL,
                weight=1.0,
            ),
        ),
    ),
    Category(
        "Gula & Pemanis",
        1.0,
        (
            L(
                "Gulaku|GULAKU|Rose Brand|Gula Pasir|Indomaret|Alfamart|Sugar Cane|Gula Kristal|"
                "Gula Asli|PSM|Sweet Sugar",
                "Gula Pasir|Gula|Gula Kristal Putih|Gula Tebu|Sugar|Gula Putih|Gula Premium|",
                "|Premium|Tebu|Kuning|Hijau|Curah|Kemasan|Putih|Murni",
                "1kg|1kg|500g|250g|2kg|1 kg|5kg",
                P_BAG + "|karung|sak",
                weight=4.0,
            ),
            L(
                "Tropicana Slim|Diabetasol|Equal|Stevia|Tropicana Slim Stevia|Flavor Sweet|"
                "Sweetener",
                "Pemanis|Sweetener|Gula Rendah Kalori|Pemanis Buatan|Gula Diet|Pemanis Stevia",
                "Classic|Stevia|Original|Sucralose|Gold|Diabetes|",
                "50 sachet|isi 25|isi 100|25 x 2.5g|100 sachet|125ml",
                "|box|sachet|dus",
                weight=1.5,
            ),
            L(
                "Gula Aren|Gula Jawa|Gula Merah|Gula Batu|Gula Semut|Palm Sugar|Gula Palem|"
                "Gula Halus",
                "Gula Aren|Gula Merah|Gula Batu|Gula Semut|Gula Halus|Palm Sugar|Gula",
                "Asli|Cair|Organik|Bubuk|Kristal|Premium|Cetak|",
                "250g|500g|1kg|200g|300g|250ml",
                P_BAG + "|toples|btl",
                weight=1.5,
            ),
        ),
    ),
    Category(
        "Bumbu & Penyedap",
        1.6,
        (
            L(
                "Masako|MASAKO|Royco|ROYCO|Sasa|SASA|Ajinomoto|Miwon|Totole|Maggi",
                "Penyedap Rasa|Kaldu Bubuk|Bumbu Penyedap|Penyedap|MSG|Micin|Kaldu|Vetsin|Bumbu|",
                "Ayam|Sapi|Jamur|Ayam Bawang|Original|Kaldu Ayam|Kaldu Sapi|Non MSG|Jamur Organik",
                "8g|100g|250g|500g|1kg|40g|230g|9g|11g",
                P_SACHET + "|pouch|bag",
                weight=3.5,
            ),
            L(
                "Indofood|Bamboe|Sajiku|Royco|Bumbu Racik|Kokita|Munik|Desaku|Ladaku|Koepoe Koepoe",
                "Bumbu Racik|Bumbu Instan|Bumbu|Bumbu Dasar|Merica Bubuk|Ketumbar Bubuk|"
                "Kunyit Bubuk|"
                "Bumbu Nasi Goreng|Lada Bubuk|Bumbu Masak",
                "Nasi Goreng|Rendang|Soto Ayam|Opor Ayam|Ayam Goreng|Rawon|Gulai|Tumis|Sop|Kari|"
                "Ikan Goreng|Original|Pedas|Tongseng|Sayur Asem",
                "20g|30g|45g|36g|54g|15g|25g|100g",
                P_SACHET,
                weight=3.0,
            ),
            L(
                "Refina|Garam Dolpin|Garam Cap Kapal|Garam Meja|Garam|Kara|Sasa Santan|Kara Santan",
                "Garam|Garam Beryodium|Garam Halus|Santan|Santan Kelapa|Coconut Cream|Garam Dapur",
                "Halus|Beryodium|Original|Kental|Cair|Kemasan|",
                "250g|500g|1kg|65ml|200ml|1L|150g",
                P_SACHET + "|pouch|box|pak",
                weight=2.0,
            ),
        ),
    ),
    Category(
        "Saus & Kecap",
        1.5,
        (
            L(
                "Bango|BANGO|Kecap Bango|ABC|Indofood|Sedaap|Kecap Sedaap|Kecap Nasional|"
                "Kecap Cap Ikan"
                "|Kecap Manis ABC|Kecap Bangau|Cap Orang Jual Sate",
                "Kecap Manis|Kecap|Kecap Asin|Kecap Manis Kedelai Hitam|Soy Sauce|"
                "Kecap Manis Refill|",
                "Original|Kedelai Hitam|Manis|Asin|Pedas|Premium|Spesial|Gurih",
                "135ml|275ml|520ml|600ml|220ml|550ml|1kg|5.7kg|9ml|60ml",
                P_BOTTLE + "|jrgn|sachet|rtg",
                weight=3.0,
            ),
            L(
                "ABC|Sambal ABC|Indofood|Del Monte|Delmonte|Heinz|Finna|Uleg|Belibis|Sasa|Jawara|"
                "Sambal Bu Rudy",
                "Sambal|Saus Sambal|Saus Tomat|Saus Cabai|Chilli Sauce|Tomato Ketchup|Ketchup|"
                "Sambal Terasi|Saus|Sambal Bawang",
                "Asli|Extra Pedas|Original|Pedas Manis|Terasi|Bawang|Hot|Pedas|Ayam Goreng|Manis",
                "135ml|340ml|335ml|275ml|1kg|9g|5.7kg|200ml|1L",
                P_BOTTLE + "|jrgn|sachet|rtg|sch",
                weight=3.0,
            ),
            L(
                "Saori|Lee Kum Kee|Maestro|Mayumi|Kewpie|Belibis|Del Monte|Bango",
                "Saus Tiram|Oyster Sauce|Teriyaki|Saus Lada Hitam|Mayonaise|Mayonnaise|"
                "Saus Barbeque|"
                "Saus Inggris|Saus Bulgogi|Saus",
                "Original|Lada Hitam|Pedas|Premium|Manis|Light|",
                "133ml|270ml|100g|200g|1kg|300ml|23ml|510ml",
                P_BOTTLE + "|sachet|rtg",
                weight=2.0,
            ),
        ),
    ),
    Category(
        "Beras & Tepung",
        1.1,
        (
            L(
                "Topi Koki|Cap Bunga|Sania|Si Pulen|Maknyuss|Raja Platinum|Anak Raja|Fortune|"
                "Indomaret|"
                "Alfamart|Sania Royale|Beras Lahap|",
                "Beras|Beras Premium|Beras Medium|Beras Putih|Rice|Beras Pulen|",
                "Pandan Wangi|Rojolele|Setra Ramos|IR 64|Beras Merah|Ketan|Ketan Hitam|Premium|"
                "Pulen|Wangi|Cianjur|Organik",
                "5kg|10kg|25kg|2.5kg|1kg|20kg|5kg",
                "|karung|sak|bag|pouch|",
                weight=3.5,
            ),
            L(
                "Segitiga Biru|Kunci Biru|Cakra Kembar|Bogasari|Rose Brand|Maizena|Maizenaku|"
                "Tapioka|"
                "Pondan|Rose Brand Tepung|Indomaret|Alfamart|Gunung Agung",
                "Tepung Terigu|Tepung|Terigu|Tepung Beras|Tepung Ketan|Tepung Tapioka|"
                "Tepung Maizena|"
                "Tepung Jagung|Tepung Sagu|Flour|Cake Mix|Pancake Mix",
                "Protein Sedang|Protein Tinggi|Protein Rendah|Serbaguna|Putih|Original|Premium|"
                "Chiffon|Pandan|Coklat",
                "1kg|500g|250g|25kg|1 kg|150g|400g",
                P_BAG + "|sak|karung|box",
                weight=3.0,
            ),
        ),
    ),
    Category(
        "Makanan Kaleng",
        1.0,
        (
            L(
                "ABC|ABC Sardines|Botan|Maya|King's Fisher|Kingsfisher|Gaga|Ayam Brand|Pronas|Cip|"
                "Hemart",
                "Sarden|Sardines|Ikan Kaleng|Mackerel|Tuna Kaleng|Kornet|Corned Beef|Kornet Sapi|"
                "Kornet Ayam|Daging Kaleng|Makanan Kaleng|",
                "Saus Tomat|Saus Cabai|Tomat|Cabai|Original|Pedas|Minyak|Sapi|Ayam|Extra Pedas|"
                "Tuna Mayo|Rendang",
                "155g|425g|198g|340g|150g|185g|200g|300g",
                P_CAN,
                weight=4.0,
            ),
            L(
                "Del Monte|Delmonte|Hosen|Bonduelle|Dole|Fiesta|Pronas|Gaga|Heinz",
                "Fruit Cocktail|Buah Kaleng|Peaches|Leci Kaleng|Lychee|Longan|Jagung Manis Kaleng|"
                "Kacang Polong|Baked Beans|Jamur Kaleng|Buah Dalam Kaleng",
                "Original|Dalam Sirup|Light Syrup|Sweet Corn|Champignon|Sirup|",
                "425g|565g|825g|230g|400g|3kg|420g",
                P_CAN,
                weight=1.8,
            ),
        ),
    ),
    Category(
        "Daging & Frozen Food",
        1.3,
        (
            L(
                "So Good|SO GOOD|Fiesta|FIESTA|Kanzler|Champ|Belfoods|Bernardi|Shifa|Vigo|Kimbo|"
                "Sunny Gold|Minaku|Cedea|Ayam Kita",
                "Chicken Nugget|Nugget|Nugget Ayam|Sosis|Sosis Ayam|Sosis Sapi|Bakso|Bakso Sapi|"
                "Karage|Chicken Wings|Fish Dumpling|Bakso Ikan|Frozen Food|Frozen|Chikuwa|Dimsum",
                "Original|Spicy|Cheese|Keju|Dino|Stick|Bockwurst|Cocktail|Frankfurter|Crispy|"
                "Pedas|Stikie|Bratwurst|Coin|Salted Egg|Jumbo",
                "250g|500g|400g|1kg|210g|300g|900g|375g|550g|360g|200g",
                "|pack|bag|pouch|*2|isi 10|isi 20",
                weight=5.0,
            ),
            L(
                "Daging Ayam|Ayam Potong|Daging Sapi|Ayam Fillet|Dada Ayam|Paha Ayam|Daging Giling|"
                "Sapi Has Dalam|Ikan Dori|Udang Kupas|Telur Ayam",
                "Daging|Fillet|Segar|Frozen|Beku|Giling|Potong|Ayam Negeri|Has Dalam|Sayap|",
                "Fresh|Frozen|Premium|Tanpa Tulang|Boneless|Halal|",
                "500g|1kg|250g|1 kg|10 butir|isi 10|1/2 kg",
                "|pack|tray|bag|",
                weight=1.5,
            ),
        ),
    ),
    Category(
        "Es Krim",
        1.2,
        (
            L(
                "Walls|WALLS|Wall's|Magnum|Paddle Pop|Cornetto|Feast|Viennetta|Populaire|"
                "Walls Selection",
                "Es Krim|Ice Cream|Eskrim|Es Krim Stick|Es Krim Cone|Es Krim Cup|",
                "Classic|Almond|Truffle|Rainbow|Choco Magma|Disc Coklat|Coklat|Vanila|Vanilla|"
                "Neapolitan|Cookies & Cream|Stroberi|Mini|Black Forest|Matcha|Double Chocolate",
                "65ml|70ml|80ml|700ml|750ml|1.5L|110ml|60ml|90ml|400ml",
                "|pcs|box|tub|isi 6|multipack",
                weight=3.0,
            ),
            L(
                "Aice|AICE|Campina|Glico Wings|Glico|Diamond|Indoeskrim|Joyday|Haagen-Dazs|"
                "Baskin Robbins",
                "Es Krim|Ice Cream|Eskrim|Es Krim Stick|Es Krim Cup|Ice Cream Cone|Mochi|",
                "Mochi|Chocolate Crispy|Semangka|Milk Melon|Sweet Corn|Mango Slush|"
                "Strawberry Crispy|"
                "Concerto|Hula Hula|Bazooka|Vanila Coklat|Susu|Coklat|Kacang Hijau|Durian|Stroberi",
                "65ml|70ml|45g|700ml|750ml|1.5L|500ml|60ml|120ml|8L|1.5L",
                "|pcs|box|tub|isi 6|isi 5",
                weight=3.0,
            ),
        ),
    ),
    Category(
        "Produk Susu Olahan",
        1.1,
        (
            L(
                "Kraft|KRAFT|Prochiz|Meg|Kraft Quick Melt|Greenfields|Emina|Cheddy|"
                "Mozzarella Cimory",
                "Keju|Keju Cheddar|Cheese|Keju Slice|Keju Spready|Cheddar|Keju Lembaran|Mozzarella",
                "Cheddar|Singles|Quick Melt|Gold|Slice|Spready|Original|Lite|Block|Parut",
                "170g|165g|160g|200g|1kg|2kg|150g|250g",
                "|box|pack|klg|bks",
                weight=3.0,
            ),
            L(
                "Blue Band|Blueband|Palmia|Anchor|Orchid|Wijsman|Forvita|Simas|Elle & Vire",
                "Margarin|Mentega|Butter|Margarine|Whipping Cream|Krim|Butter Blend",
                "Serbaguna|Cake & Cookie|Unsalted|Salted|Original|Royal|Butter Mix|Sachet",
                "200g|250g|1kg|2kg|227g|500g|100g|1L|15kg",
                "|sachet|klg|tub|box|pouch",
                weight=3.0,
            ),
            L(
                "Cimory|Heavenly Blush|Biokul|Greenfields|Yoplait|Elle & Vire|Diamond",
                "Yogurt|Yoghurt|Greek Yogurt|Yogurt Drink|Yogurt Stick|Squeeze Yogurt|Set Yogurt",
                "Plain|Stroberi|Blueberry|Mangga|Original|Lychee|Peach|Low Fat|Coklat|Leci|"
                "Mixed Berry",
                "250ml|70ml|100g|120g|500g|1L|200ml|150ml|1kg",
                "|btl|cup|pack 4|isi 4|*4",
                weight=2.5,
            ),
        ),
    ),
    Category(
        "Perawatan Rambut",
        1.6,
        (
            L(
                "Pantene|PANTENE|Sunsilk|SUNSILK|Clear|CLEAR|Head & Shoulders|Head and Shoulders|"
                "Dove|Lifebuoy|Emeron|Zinc|Rejoice|Tresemme|Natur|Garnier Fructis|Makarizo|Metal",
                "Shampoo|Shampo|Sampo|Shampoo|Conditioner|Hair Tonic|Hair Mask|Serum Rambut|"
                "Kondisioner|Hair Mist|Shampoo Anti Ketombe",
                "Anti Ketombe|Hair Fall Control|Total Damage Care|Hitam Berkilau|Lurus Sempurna|"
                "Soft & Smooth|Cool Sport Menthol|Ice Cool Menthol|Men|Lemon Fresh|Aloe Vera|"
                "Ginseng|Nutritive|Anti Hair Fall|Strong & Shiny|Smooth Silky|Keratin|Lidah Buaya",
                "170ml|160ml|340ml|70ml|10ml|300ml|680ml|135ml|450ml|280ml|6 x 10ml",
                "|sachet|rtg|btl|pump|refill|pouch|*2|isi 12",
                weight=5.0,
            ),
            L(
                "Gatsby|Brylcreem|Urang Aring|Minyak Rambut Urang Aring|Makarizo|Miranda|Bigen",
                "Pomade|Hair Gel|Minyak Rambut|Hair Cream|Cat Rambut|Semir Rambut|Hair Color|"
                "Styling Wax",
                "Water Gloss|Hard|Super Hard|Original|Hitam|Coklat|Natural Black|Cool|",
                "75g|150g|30g|100ml|80ml|60ml|50g",
                "|pcs|sachet|jar|btl|pump",
                weight=1.5,
            ),
        ),
    ),
    Category(
        "Perawatan Gigi & Mulut",
        1.2,
        (
            L(
                "Pepsodent|PEPSODENT|Ciptadent|Formula|Sensodyne|Close Up|Closeup|Enzim|Darlie|"
                "Kodomo|Systema|Colgate|Smile Up",
                "Pasta Gigi|Pasta Gigi|Odol|Toothpaste|Pasta Gigi Anak|Gel Gigi|",
                "Pencegah Gigi Berlubang|Herbal|White|Whitening|Siwak|Complete 8|Action 123|"
                "Sensitive|Fresh Mint|Repair & Protect|Menthol Fresh|Fire Freeze|Charcoal|"
                "Anak Stroberi|Jeruk|Anggur|Double Action|Original|Kids",
                "190g|120g|75g|225g|160g|100g|45g|50g|150g",
                "|pcs|tube|*2|twin pack|pack 3|isi 3|box",
                weight=4.0,
            ),
            L(
                "Pepsodent|Formula|Oral-B|Oral B|Ciptadent|Kodomo|Systema|Sensodyne|Colgate",
                "Sikat Gigi|Toothbrush|Sikat Gigi Anak|Sikat Gigi Dewasa",
                "Soft|Medium|Extra Soft|Silent Pro|Junior|Double Care|Slim Soft|Charcoal|Kids",
                "1pcs|2pcs|3pcs|isi 3|isi 2|",
                "|pcs|pack|*2|isi 3|bonus 1",
                weight=1.5,
            ),
            L(
                "Listerine|Pepsodent|Enkasari|Total Care|Betadine Kumur|Close Up",
                "Obat Kumur|Mouthwash|Mouth Wash|Pencuci Mulut|Benang Gigi|Dental Floss|"
                "Penyegar Mulut",
                "Cool Mint|Total Care|Original|Fresh Burst|Green Tea|Zero Alcohol|Natural",
                "250ml|500ml|100ml|80ml|1L|50m",
                "|btl|pcs|*2",
                weight=1.2,
            ),
        ),
    ),
    Category(
        "Sabun Mandi",
        1.7,
        (
            L(
                "Lifebuoy|LIFEBUOY|Lux|LUX|Nuvo|Giv|GIV|Shinzui|Biore|Citra|Dove|Harmony|Cussons|"
                "Lifebuoy Total 10|Medicare|Detol|Dettol",
                "Sabun Mandi|Sabun Batang|Body Wash|Sabun Cair|Body Foam|Shower Gel|Bar Soap|Sabun|"
                "Sabun Mandi Cair|Sabun Antibakteri",
                "Total 10|Mild Care|Lemon Fresh|Cool Fresh|Original|Pepaya|Bengkoang|Sakura|Rose|"
                "Soft Rose|Magical Spell|Lavender|Antibakteri|Charcoal|Greentea|Beras|Matsu|Kirei|"
                "Susu Kambing|Zaitun|Family",
                "75g|110g|100g|85g|250ml|400ml|450ml|825ml|180ml|4 x 75g|900ml",
                "|refill|pouch|pump|btl|pack 3|isi 4|*3|*4",
                weight=5.0,
            ),
            L(
                "Lifebuoy|Dettol|Nuvo|Biore|Antis|Carex|Giv|Citra|Cussons",
                "Hand Wash|Sabun Cuci Tangan|Handwash|Hand Soap|Sabun Tangan Cair",
                "Total 10|Mild Care|Lemon Fresh|Original|Antibakteri|Sakura|Jeruk Nipis|Aloe Vera|",
                "180ml|200ml|450ml|180ml|400ml|250ml|1.8L",
                "|refill|pouch|pump|btl|*2",
                weight=1.5,
            ),
        ),
    ),
    Category(
        "Perawatan Kulit",
        1.5,
        (
            L(
                "Nivea|NIVEA|Vaseline|Citra|Marina|Wardah|Pond's|Ponds|Garnier|Biore|Emina|"
                "Scarlett|"
                "Emeron|Viva|Sariayu|Hazeline|Glow & Lovely|Nivea Men|Somethinc|Azarine",
                "Body Lotion|Hand Body|Hand & Body Lotion|Lotion|Face Wash|Facial Foam|Sabun Muka|"
                "Pembersih Wajah|Sunscreen|Krim Wajah|Serum|Pelembab|Micellar Water|"
                "Petroleum Jelly|"
                "Day Cream|Night Cream|Toner|Face Mist",
                "Sakura|Bengkoang|Aloe Vera|UV White|Extra White|Acne|Oil Control|Bright|SPF 30|"
                "SPF 50|Healthy Bright|Pearly White|Men|Cool|Vitamin C|Niacinamide|Hyaluron|"
                "Lightening|Original|Soft Creme|Deep Moisture|Madu",
                "100ml|200ml|400ml|50ml|45ml|100g|50g|30ml|20g|40ml|180ml|60ml",
                "|btl|tube|pump|jar|pouch|*2|twin pack|sachet",
                weight=5.0,
            ),
            L(
                "Rexona|Nivea|Gillette|Posh|Casablanca|Axe|Rexona Men|Natur-E|Gatsby|Marina|"
                "Vaseline",
                "Deodorant|Deodoran|Roll On|Body Spray|Body Mist|Pisau Cukur|Shaving Foam|"
                "Foam Cukur|Lip Balm|Bedak|Minyak Zaitun|Vitamin E",
                "Men|Women|Invisible|Extra Dry|Cool|Goal II|Blue3|Mach3|Powder Dry|Citrus|"
                "Original|Passion|Fresh",
                "50ml|45ml|150ml|100ml|2pcs|isi 2|200ml|25g|4.8g|100g",
                "|pcs|btl|can|*2|pack",
                weight=2.0,
            ),
        ),
    ),
    Category(
        "Popok & Perlengkapan Bayi",
        1.3,
        (
            L(
                "Pampers|PAMPERS|MamyPoko|Mamy Poko|MAMYPOKO|Sweety|SWEETY|Merries|Huggies|Goon|"
                "Baby Happy|Fitti|Mamypoko Royal Soft|Certainty|Confidence",
                "Popok|Popok Bayi|Popok Celana|Pants|Diapers|Popok Perekat|Popok Dewasa|Ppk Celana|"
                "",
                "M 34|L 30|XL 26|S 40|M50|L44|XL 38|XXL 24|NB 52|M 20|L 18|XL 16|Pants M|Pants L|"
                "Pants XL|Silver|Gold|Bronze|Premium Care|Extra Dry|Royal Soft|Standar",
                "",
                "|pack|bag|isi|jumbo pack|*2|1 dus",
                weight=5.0,
            ),
            L(
                "Zwitsal|Cussons Baby|My Baby|Konicare|Johnson's Baby|Johnsons|Telon Lang|"
                "Sleek Baby|"
                "Pigeon|Kodomo|Mustela",
                "Minyak Telon|Baby Powder|Bedak Bayi|Baby Oil|Baby Cream|Sabun Bayi|Baby Bath|"
                "Hair Lotion|Sabun Cuci Botol|Botol Susu|Dot Bayi|Baby Cologne|Minyak Telon Plus",
                "Natural|Original|Soft & Smooth|Aloe Vera|Fresh|Lavender|Classic|Milk|Extra Care|"
                "Kayu Putih|Plus|Soft",
                "100ml|150ml|200ml|60ml|120g|100g|300g|240ml|50ml|90ml|450ml",
                "|btl|pouch|refill|*2|pcs|box",
                weight=3.0,
            ),
            L(
                "SUN|Milna|Promina|Cerelac Bayi|Nestle Cerelac|Gerber|Sun Bubur Bayi",
                "Bubur Bayi|Bubur Susu|Biskuit Bayi|Makanan Bayi|MPASI|Puffs|Nasi Tim",
                "Beras Merah|Kacang Hijau|Ayam Kampung|Pisang|Original|Apel|Sayur|Tim Ayam|6+|8+",
                "120g|100g|130g|40g|20g|150g",
                "|box|sachet|pouch",
                weight=1.5,
            ),
        ),
    ),
    Category(
        "Pembalut & Kewanitaan",
        1.0,
        (
            L(
                "Kotex|KOTEX|Laurier|LAURIER|Charm|CHARM|Softex|SOFTEX|Hers Protex|Avail|Whisper|"
                "Natur Pads|Sofy",
                "Pembalut|Pembalut Wanita|Pantyliner|Sanitary Napkin|Pads|Pembalut Malam|"
                "Pembalut Wing|",
                "Wing 23cm|Non Wing|Overnight 35cm|Maxi|Slim|Day|Night 29cm|Extra Maxi Wing|"
                "Daun Sirih|Panty Liner|Soft & Smooth|Super Maxi|Relax Night|Active Day|Safe Night|"
                "Cooling Fresh|Comfort Slim|Herbal",
                "isi 8|isi 16|10 pads|20 pcs|isi 14|8s|isi 10|isi 40|isi 6",
                "|pack|bks|*2|*3|jumbo pack",
                weight=5.0,
            ),
            L(
                "Lactacyd|Betadine Feminine|Resik V|Sumber Ayu|Kiranti|Manjakani|Nyonya Meneer",
                "Sabun Kewanitaan|Feminine Wash|Pembersih Kewanitaan|Jamu Haid|Cairan Kewanitaan|"
                "Tisu Kewanitaan|Feminine Hygiene",
                "Herbal|Daun Sirih|Original|Fresh|Odor Control|Sirih Merah|Kunyit Asam|Manjakani",
                "60ml|100ml|150ml|150ml|250ml|15 sheets|isi 10",
                "|btl|pcs|pouch|*2",
                weight=1.5,
            ),
        ),
    ),
    Category(
        "Deterjen & Pelembut",
        1.8,
        (
            L(
                "Rinso|RINSO|Rinso|So Klin|SoKlin|So Klin Softergent|Attack|Daia|DAIA|Surf|Total|"
                "Boom|Attack Easy|Rinso Matic|Wings|Total Almeera",
                "Deterjen|Detergent|Deterjen Bubuk|Deterjen Cair|Sabun Cuci|Sabun Cuci Baju|"
                "Laundry|"
                "Detergen|Sabun Cuci Pakaian|",
                "Anti Noda|Matic|Rose Fresh|Lavender|Bunga|Lemon|Classic|Putih|Putih Bersih|Molto|"
                "Pewangi|Fresh|Biru|Top Load|Front Load|Softergent|Jaz1|Plus Softener|Sakura",
                "800g|800g|770g|1.8kg|900g|450g|1kg|3kg|44g|400ml|750ml|1.5L|800ml|1.6L|4L|700g|"
                "35g|520g",
                "|pouch|refill|sachet|rtg|bag|jrgn|box|*2|pack 2",
                weight=5.0,
            ),
            L(
                "Downy|DOWNY|Molto|MOLTO|So Klin Pewangi|Royale|Kispray|Rapika|Vanish|Proclin|"
                "So Klin Pelembut|Attack Softener",
                "Pewangi Pakaian|Pelembut Pakaian|Softener|Pewangi|Pelembut|Pelicin Pakaian|"
                "Penghilang Noda|Pemutih Pakaian|Parfum Laundry|Pewangi & Pelembut",
                "Mystique|Sunrise Fresh|Passion|Antibak|Sekali Bilas|Pink|Ultra|Blue|Lavender|"
                "Floral|Amoris|Garden Bloom|Fresh Bouquet|Putih|Biru",
                "900ml|800ml|1.8L|20ml|720ml|1.5L|450ml|300ml|21ml|3.8L",
                "|pouch|refill|sachet|rtg|btl|jrgn|*2|isi 12",
                weight=3.5,
            ),
        ),
    ),
    Category(
        "Pembersih Rumah",
        1.6,
        (
            L(
                "Sunlight|SUNLIGHT|Mama Lemon|Ekonomi|Cream Ekonomi|Mama Lime|Sunlight Extra|"
                "Joy|Indomaret|Alfamart|Attack Piring",
                "Sabun Cuci Piring|Sabun Cuci Piring|Dishwash|Pencuci Piring|Krim Cuci Piring|"
                "Sabun Colek|Dishwashing Liquid|Cuci Piring",
                "Jeruk Nipis|Lemon|Lime|Extra Power|Anti Bau|Green Tea|Original|Jeruk|"
                "Habbatussauda|"
                "Korea Lime|Apel",
                "800ml|755ml|400ml|200ml|780ml|450ml|1.6L|430ml|700ml|500g|350g",
                "|pouch|refill|btl|jrgn|*2|pack 2|sachet|rtg",
                weight=3.5,
            ),
            L(
                "Wipol|WIPOL|Vixal|Super Pell|SuperPell|So Klin Lantai|Harpic|Bayclin|Domestos|"
                "Mr. Muscle|Cling|Yuri Porstex|Porstex|Kispray Lantai",
                "Pembersih Lantai|Karbol|Karbol Wangi|Pembersih Toilet|Pembersih Porselen|"
                "Pembersih Kaca|Pembersih Kamar Mandi|Disinfektan|Cairan Pembersih",
                "Cemara|Lemon|Sereh|Lavender|Cherry Blossom|Fresh Apple|Kuat Harum|Ocean|Pine|"
                "Original|"
                "Jeruk|Fresh|Anti Kuman|Biru",
                "800ml|780ml|400ml|1.6L|450ml|500ml|700ml|4L|1L|200ml",
                "|pouch|refill|btl|jrgn|*2",
                weight=3.0,
            ),
            L(
                "Baygon|BAYGON|Hit|HIT|Vape|Domestos Nomos|Force Magic|Autan|Soffell|Fumakilla",
                "Obat Nyamuk|Anti Nyamuk|Obat Nyamuk Bakar|Obat Nyamuk Elektrik|Insektisida|"
                "Aerosol|"
                "Liquid Elektrik|Semprot Nyamuk|Spray",
                "Lavender|Jeruk|Original|Flower Garden|Kapur Barus|Zesty Orange|Eucalyptus|"
                "Citrus|Refill|Mat|Lemon",
                "600ml|675ml|200ml|30 malam|10 lingkar|isi 10|45 malam|400ml",
                "|klg|can|box|refill|*2",
                weight=2.0,
            ),
            L(
                "Stella|STELLA|Bayfresh|Glade|Ambi Pur|Kamper Bagus|Bagus|Swallow|Stella Matic|"
                "Anti Ngengat",
                "Pengharum Ruangan|Air Freshener|Pengharum Mobil|Kapur Barus|Kamper|"
                "Pewangi Ruangan|"
                "Pengharum Lemari|Gel Pengharum",
                "Lavender|Jasmine|Apel|Jeruk|Coffee|Kopi|Green Tea|Ocean|Sakura|Lemon|Original|"
                "Fresh",
                "225ml|400ml|70g|42g|75ml|200ml|isi 6|isi 12|300g",
                "|can|refill|box|pcs|*2|pack",
                weight=2.0,
            ),
        ),
    ),
    Category(
        "Obat & Kesehatan",
        1.6,
        (
            L(
                "Tolak Angin|TOLAK ANGIN|Antangin|Antangin JRG|Sido Muncul|Sidomuncul|Tolak Linu|"
                "Komix|Woods|OBH Combi|Konidin|Vicks|Vicks Formula 44|Laserin|Siladex|Bisolvon",
                "Obat Masuk Angin|Jamu|Obat Batuk|Sirup|Obat Herbal|Herbal Cair|Obat Batuk Sirup|"
                "Permen Obat|Obat Flu|Sirup Batuk",
                "Cair|Anak|Madu|Mint|Original|Plus|Jahe|Jeruk|Batuk Berdahak|Batuk Kering|"
                "Herbal|Flu|Bebas Gula",
                "15ml|30ml|60ml|100ml|120ml|7ml|isi 5|5 sachet|isi 12|12 sachet",
                P_SMALL,
                weight=4.0,
            ),
            L(
                "Promag|PROMAG|Bodrex|Panadol|Paramex|Mixagrip|Oskadon|Decolgen|Ultraflu|Neozep|"
                "Diapet|Entrostop|Mylanta|Polysilane|Inza|Procold|Sanmol|Fatigon",
                "Obat Maag|Obat Sakit Kepala|Obat Flu|Tablet|Kaplet|Obat Demam|Obat Diare|"
                "Pereda Nyeri|Obat|",
                "Biru|Extra|Cold & Flu|Migra|Flu & Batuk|Anak|Forte|Tablet|Kaplet|Cair|Original|"
                "Menthol|Suspensi",
                "4 tablet|isi 4|isi 10|10 kaplet|12 tablet|isi 12|6 strip|isi 20|60ml|50ml",
                P_SMALL,
                weight=3.5,
            ),
            L(
                "Betadine|Hansaplast|Minyak Kayu Putih Cap Lang|Cap Lang|Counterpain|Salonpas|"
                "Freshcare|Insto|Rohto|Geliga|Balsem Lang|Kalpanax|Minyak Angin Cap Kapak|"
                "Neo Hormoviton|Sensi|Oxycan|Dr. P",
                "Antiseptik|Plester|Koyo|Minyak Kayu Putih|Minyak Angin|Balsem|Tetes Mata|"
                "Salep|Masker|Obat Luka|Minyak Gosok|Krim Otot",
                "Original|Aromaterapi|Hot|Roll On|Lavender|Citrus|Strong|Kain|Elastis|Fresh|"
                "Regular|Plus|Anak",
                "15ml|30ml|60ml|120ml|210ml|10 lembar|isi 10|20pcs|isi 20|36g|20g|10ml|50 pcs",
                P_SMALL + "|btl|roll",
                weight=3.5,
            ),
            L(
                "Enervon-C|Redoxon|Imboost|Sangobion|Neurobion|Cerebrofort|Scott's Emulsion|"
                "Becomzet|"
                "Holisticare Ester C|Blackmores|Vitacimin|Stimuno|Curcuma Plus",
                "Vitamin|Vitamin C|Multivitamin|Suplemen|Tablet Effervescent|Vitamin Anak|"
                "Suplemen Daya Tahan Tubuh|Tablet Tambah Darah",
                "Plus|Forte|Jeruk|Original|Anak|Dewasa|Kids|1000mg|500mg|Orange|Madu",
                "isi 10|isi 4|30 tablet|10 tablet|60ml|200ml|isi 30|4 kaplet",
                P_SMALL + "|btl|tube",
                weight=2.5,
            ),
        ),
    ),
    Category(
        "Rokok",
        1.0,
        (
            L(
                "Gudang Garam|GG|Surya|Sampoerna|A Mild|Sampoerna Mild|Dji Sam Soe|Djarum|"
                "Djarum Super|"
                "LA Lights|LA Bold|Marlboro|Class Mild|U Mild|Esse|Magnum|Wismilak|Bentoel|Camel|"
                "Djarum 76|Gudang Garam Merah|Sampoerna Hijau|Lucky Strike",
                "Rokok|Rokok Kretek|Rokok Filter|Kretek|Kretek Filter|Cigarette|Mild|Filter|",
                "Filter|Mild|Super|International|Signature|Kretek|Magnum|Red|Ice Burst|Change|"
                "Berry Pop|Coklat|Menthol|Black|Pro|Bold|Original|Hitam|Biru|Filter Black",
                "12 btg|16 btg|isi 12|isi 16|20 btg|12s|16s|isi 20|10 btg",
                "|bks|slop|1 slop|pak|1 bks|bungkus",
                weight=5.0,
            ),
        ),
    ),
    Category(
        "Tisu & Perlengkapan Dapur",
        1.0,
        (
            L(
                "Paseo|PASEO|Nice|NICE|Tessa|TESSA|Multi|See-U|Jolly|Livi|Indomaret|Alfamart|"
                "Passeo",
                "Tisu|Tissue|Facial Tissue|Tisu Wajah|Tisu Gulung|Toilet Roll|Tisu Toilet|"
                "Tisu Makan|"
                "Tisu Dapur|Kitchen Towel|Tisu Travel|Tisu Saku",
                "Smart|Soft Pack|Travel Pack|2 Ply|3 Ply|Elegant|Box|Original|Non Parfum|Embossed|"
                "Soft|Premium|",
                "250 lembar|200s|isi 10 roll|50s|250 sheets|isi 4 roll|600g|900 gr|isi 2|"
                "180 lembar",
                "|pack|box|*2|*3|isi 6|bal|1 bal",
                weight=4.0,
            ),
            L(
                "Klin Pak|Total Wrap|Bagus|Scotch-Brite|Scotch Brite|Lion Star|Claris|Tokai|Mitu|"
                "Kantong Plastik|Cling Wrap|Paseo",
                "Plastik Wrap|Aluminium Foil|Kantong Sampah|Plastik Sampah|Spons Cuci Piring|Sabut|"
                "Wadah Plastik|Sedotan|Korek Api|Plastik Klip|Kertas Roti|Baking Paper|Tisu Basah|"
                "Wet Tissue|Sarung Tangan Plastik",
                "30cm x 5m|30cm x 10m|Besar|Kecil|Sedang|Hitam|Original|Anti Bakteri|Jumbo|60x100|"
                "Putih|Hijau|",
                "isi 10|isi 20|isi 3|isi 50|1 roll|isi 100|50s|isi 5|1pcs",
                "|pack|box|*2|roll|pcs",
                weight=3.0,
            ),
        ),
    ),
)

# Products whose category depends on the shop: each is generated under every
# label it lists, so the same kind of name carries conflicting labels.
AMBIGUOUS: tuple[Ambiguous, ...] = (
    Ambiguous(
        ("Susu", "Minuman Ringan"),
        L(
            "Milo|MILO|Nestle Milo",
            "Activ-Go|Susu Coklat|Minuman Coklat|UHT|3in1|Kotak|Kaleng|Minuman Susu Cokelat|",
            "Coklat|Original|Less Sugar|Cokelat Malt|",
            "180ml|190ml|22g|35g|240ml|1kg|300g|110ml",
            P_DRINK + "|sachet|rtg",
        ),
    ),
    Ambiguous(
        ("Teh", "Minuman Ringan"),
        L(
            "Teh Botol Sosro|Teh Botol|Sosro Fruit Tea|Fruit Tea|Teh Kotak|Teh Pucuk Harum",
            "Teh|Minuman|Minuman Teh|Tea|Kotak|Botol",
            "Original|Less Sugar|Blackcurrant|Apel|Stroberi|Melati|",
            "250ml|350ml|450ml|200ml|1L|330ml|500ml",
            P_DRINK,
        ),
    ),
    Ambiguous(
        ("Produk Susu Olahan", "Minuman Ringan", "Susu"),
        L(
            "Yakult|YAKULT|Cimory Yogurt Drink|Yogurt Drink|Calpico|Vitacharm",
            "Minuman Probiotik|Susu Fermentasi|Minuman Susu Fermentasi|Yogurt Drink|",
            "Original|Light|Stroberi|Blueberry|Leci|Plain|",
            "65ml|80ml|250ml|200ml|5 x 65ml|isi 5|330ml",
            "|pack|isi 5|*5|btl|1 pack",
        ),
    ),
    Ambiguous(
        ("Cokelat & Permen", "Biskuit & Wafer"),
        L(
            "Beng-Beng|Beng Beng|BENG BENG|Chocolatos|KitKat|Kit Kat|Astor|Pocky|Top Delfi|"
            "Superstar",
            "Wafer Coklat|Coklat|Wafer|Chocolate Wafer|Wafer Stick|Biskuit Stick|Snack Coklat|",
            "Coklat|Original|Stroberi|Matcha|Share It|Max|Double Chocolate|Cookies & Cream|4F|2F",
            "20g|25g|32g|47g|95g|17g|150g|40g",
            P_SNACK + "|box isi 20|isi 24",
        ),
    ),
    Ambiguous(
        ("Obat & Kesehatan", "Sabun Mandi", "Pembersih Rumah"),
        L(
            "Dettol|DETTOL|Dettol Antiseptik|Lifebuoy|Antis",
            "Antiseptik Cair|Cairan Antiseptik|Antiseptic Liquid|Disinfektan|Hand Sanitizer|"
            "Antiseptik",
            "Original|Pine|Lemon|Cool|Multi Use|",
            "95ml|245ml|500ml|750ml|1L|50ml|60ml",
            P_BOTTLE,
        ),
    ),
    Ambiguous(
        ("Bumbu & Penyedap", "Beras & Tepung"),
        L(
            "Sajiku|SAJIKU|Kobe|KOBE|Sasa|Kentucky Kobe|Bumbu Racik Tepung",
            "Tepung Bumbu|Tepung Bumbu Serbaguna|Tepung Serbaguna|Tepung Ayam Goreng|"
            "Tepung Bumbu Pedas|"
            "Tepung Kentucky",
            "Original|Pedas|Serbaguna|Ayam Goreng|Crispy|Hot & Spicy|Extra Crispy",
            "80g|210g|70g|225g|1kg|75g|250g",
            "|bks|sachet|pouch|rtg|*2",
        ),
    ),
    Ambiguous(
        ("Gula & Pemanis", "Obat & Kesehatan"),
        L(
            "Madu TJ|Madurasa|Madu Nusantara|Madu Al Shifa|Madu Sumbawa|Madu Hutan|Madu Murni",
            "Madu|Madu Murni|Honey|Madu Asli|Madu Sachet",
            "Original|Murni|Jeruk Nipis|Kurma|Anak|Hutan|Super|",
            "150g|250g|500g|350ml|12g|20ml|650ml",
            "|btl|sachet|rtg|isi 12|*2",
        ),
    ),
    Ambiguous(
        ("Cokelat & Permen", "Obat & Kesehatan"),
        L(
            "Hexos|HEXOS|Fisherman's Friend|Woods Lozenges|Permen Jahe Sidomuncul|Vicks Permen|"
            "Strepsils|Degirol",
            "Permen|Permen Pelega Tenggorokan|Lozenges|Permen Jahe|Permen Mint|Tablet Hisap",
            "Mint|Lemon|Original|Extra Strong|Madu Lemon|Jahe|Honey|Menthol",
            "isi 6|25g|20g|isi 8|40g|isi 16|100g",
            "|rtg|box|pcs|bks|isi 12",
        ),
    ),
    Ambiguous(
        ("Susu", "Popok & Perlengkapan Bayi"),
        L(
            "SGM Eksplor|Cerelac|Nestle Cerelac|SUN|Bebelove|Dancow Bayi|Lactogen 1|Nutribaby",
            "Bubur Susu|Susu Formula Bayi|Bubur Bayi Susu|Susu Bayi|Sereal Bayi|Susu Bubuk Bayi",
            "Beras Merah|Vanila|Original|Madu|Pisang|0-6 Bulan|6-12 Bulan|1-3 Tahun",
            "120g|400g|150g|900g|200g|800g",
            "|box|pouch|kaleng|sachet",
        ),
    ),
    Ambiguous(
        ("Popok & Perlengkapan Bayi", "Perawatan Rambut"),
        L(
            "Zwitsal|Cussons Kids|Johnson's Baby|My Baby|Cussons Baby",
            "Baby Shampoo|Shampoo Bayi|Sampo Anak|Kids Shampoo|Shampoo & Conditioner",
            "Natural|Aloe Vera|Stroberi|Original|Anti Lepek|Lavender|",
            "100ml|200ml|300ml|180ml|50ml",
            "|btl|pouch|refill|pump|*2",
        ),
    ),
    Ambiguous(
        ("Minuman Ringan", "Obat & Kesehatan"),
        L(
            "Kuku Bima Energi|Kuku Bima Ener-G|Extra Joss|Adem Sari|Larutan Cap Kaki Tiga|"
            "Cap Kaki Tiga|Hemaviton|Larutan Penyegar|Panther",
            "Minuman Energi|Larutan Penyegar|Minuman Kesehatan|Serbuk Minuman|Jamu Sachet|Minuman",
            "Anggur|Original|Jeruk|Leci|Jambu|Rasa Jeruk|Ching Ku|Nanas|Melon",
            "6g|7g|200ml|320ml|500ml|isi 6|isi 12|4g",
            "|sachet|rtg|btl|klg|box|isi 6",
        ),
    ),
    Ambiguous(
        ("Makanan Kaleng", "Minuman Ringan"),
        L(
            "Nata de Coco|Wong Coco|Inaco|Okky Jelly Drink|Nutrijell|Cocopandan Nata",
            "Nata de Coco|Jelly Drink|Minuman Jelly|Nata de Coco Cup|Nata de Coco Pouch",
            "Leci|Melon|Stroberi|Jeruk|Anggur|Original|Kelapa|Mangga",
            "1kg|360g|150ml|200ml|220g|1L|120ml",
            "|pouch|klg|cup|pack|isi 6|*6",
        ),
    ),
    Ambiguous(
        ("Deterjen & Pelembut", "Pembersih Rumah"),
        L(
            "Bayclin|BAYCLIN|Proclin|So Klin Pemutih|Kispray|Downy Antibak",
            "Pemutih|Pemutih Pakaian|Pembersih Serbaguna|Bleach|Disinfektan|Pemutih & Pembersih",
            "Original|Lemon|Lavender|Fresh|Serbaguna|Biru|",
            "200ml|500ml|1L|2L|4L|600ml|1.5L",
            P_BOTTLE + "|jrgn",
        ),
    ),
    Ambiguous(
        ("Tisu & Perlengkapan Dapur", "Popok & Perlengkapan Bayi"),
        L(
            "Mitu|Mitu Baby|Sweety Wipes|Cussons Baby Wipes|Paseo Baby|Pigeon Wipes|Huggies Wipes",
            "Tisu Basah|Baby Wipes|Wet Wipes|Tisu Basah Bayi|Wet Tissue",
            "Non Alkohol|Aloe Vera|Fresh|Original|Antiseptic|Unscented|Pink|Biru",
            "isi 50|50s|isi 80|80 sheets|isi 10|isi 60|isi 20",
            "|pack|*2|*3|buy 1 get 1|isi 3",
        ),
    ),
    Ambiguous(
        ("Bumbu & Penyedap", "Makanan Kaleng"),
        L(
            "Kara|KARA|Sasa Santan|Kara Santan|Santan Kara|Kara Coconut Cream",
            "Santan|Santan Kelapa|Coconut Cream|Coconut Milk|Santan Cair|Santan Kaleng",
            "Original|Kental|Cair|Kemasan Kotak|Instan|",
            "65ml|200ml|1L|400ml|270ml|330ml",
            "|klg|pack|isi 6|box|*3",
        ),
    ),
    Ambiguous(
        ("Daging & Frozen Food", "Roti & Kue", "Makanan Ringan"),
        L(
            "Roti Maryam|Kanzler Singles|Sonice|Sosis Sonice|Sosis Champ Snack|Bernardi Burger|"
            "Champ Sosis",
            "Roti Maryam|Sosis Siap Makan|Sosis Snack|Roti Canai|Burger|Sosis Ayam Stick|Paratha",
            "Original|Keju|Cheese|Coklat|Pedas|Hot|Ayam|Sapi|",
            "65g|350g|400g|20g|25g|isi 5|isi 10|250g",
            "|pack|pcs|bks|*5|rtg|box",
        ),
    ),
    Ambiguous(
        ("Obat & Kesehatan", "Perawatan Gigi & Mulut"),
        L(
            "Betadine|Enkasari|Listerine Total Care|Mycoral|Aloclair",
            "Obat Kumur|Obat Sariawan|Kumur Antiseptik|Gargle|Mouthwash Antiseptik",
            "Original|Mint|Herbal|Antiseptik|Plus|",
            "100ml|190ml|250ml|60ml|120ml|8ml",
            "|btl|pcs|*2",
        ),
    ),
    Ambiguous(
        ("Pembalut & Kewanitaan", "Sabun Mandi"),
        L(
            "Resik V|Resik-V|Sumber Ayu|Nuvo Lady|Betadine Feminine Wash",
            "Sabun Sirih|Sabun Kewanitaan|Sabun Manjakani|Sabun Mandi Sirih|Feminine Wash",
            "Sirih|Manjakani|Herbal|Daun Sirih|Original|Fresh",
            "50ml|70g|100ml|150ml|60ml|75g",
            "|btl|pcs|*2|pouch",
        ),
    ),
)

# Abbreviations that receipts and hurried typists use; longer phrases first.
ABBREVIATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("minyak goreng", ("mny grg", "myk grg", "minyak grg", "mnyk goreng", "mygor")),
    ("susu kental manis", ("skm", "ss kental mns", "susu kntl mns")),
    ("kental manis", ("kntl mns", "km")),
    ("pasta gigi", ("pst gigi", "pasta gg", "p.gigi", "pst gg")),
    ("sikat gigi", ("skt gigi", "sikat gg")),
    ("sabun cuci piring", ("sbn cuci piring", "sbn cc piring", "sbn cc prg")),
    ("sabun cuci", ("sbn cuci", "sbn cc")),
    ("sabun mandi", ("sbn mandi", "sbn mnd")),
    ("sabun", ("sbn",)),
    ("deterjen", ("dtrgn", "det", "detergen", "deterjent")),
    ("shampoo", ("shmp", "shampo", "sampo", "shamp")),
    ("conditioner", ("cond", "condtnr")),
    ("indomie", ("ind mie", "indomi", "idm")),
    ("mie goreng", ("mi grg", "mie grg")),
    ("goreng", ("grg",)),
    ("coklat", ("cklt", "coklt", "choco")),
    ("cokelat", ("cklt", "coklat")),
    ("chocolate", ("choco", "choc")),
    ("stroberi", ("strw", "strawbery", "strwb", "strobery")),
    ("strawberry", ("strw", "straw", "strwbry")),
    ("vanila", ("van", "vanilla", "vnl")),
    ("original", ("ori", "orig", "org")),
    ("full cream", ("fc", "f.cream", "fullcream", "full crm")),
    ("low fat", ("lf", "lowfat")),
    ("less sugar", ("ls", "less sgr")),
    ("ayam bawang", ("aym bwg", "ayam bwg")),
    ("ayam", ("aym",)),
    ("bawang", ("bwg",)),
    ("pedas", ("pds",)),
    ("kecap manis", ("kcp manis", "kcp mns", "kecap mns")),
    ("kecap", ("kcp",)),
    ("sambal", ("smbl", "sambel")),
    ("saus", ("sos", "sauce")),
    ("tomat", ("tmt", "tomato")),
    ("tepung terigu", ("tpg terigu", "tpg trg")),
    ("tepung", ("tpg", "tpng")),
    ("beras", ("brs",)),
    ("gula pasir", ("gl psr", "gula psr")),
    ("minuman", ("mnm", "minum")),
    ("air mineral", ("air min", "amdk", "air mnrl")),
    ("biskuit", ("bisk", "biscuit", "bskt")),
    ("wafer", ("wfr",)),
    ("pewangi", ("pwg", "pwngi")),
    ("pelembut", ("plmbt", "pelembt")),
    ("pakaian", ("pkn", "pkaian")),
    ("pembersih", ("pmbrsh", "pembrsh")),
    ("lantai", ("lnt",)),
    ("pembalut", ("pmblt", "pembalt")),
    ("popok", ("ppk",)),
    ("celana", ("cln",)),
    ("sosis", ("sss",)),
    ("nugget", ("nuget", "ngt")),
    ("kornet", ("krnt", "corned")),
    ("sarden", ("sardn", "sardines")),
    ("keju", ("kj",)),
    ("kacang", ("kcg", "kcng")),
    ("kentang", ("ktg",)),
    ("rumput laut", ("rmpt laut", "seaweed")),
    ("jeruk", ("jrk",)),
    ("anggur", ("angr",)),
    ("instan", ("inst", "instant")),
    ("bubuk", ("bbk",)),
    ("teh celup", ("teh clp", "tea bag")),
    ("refill", ("rfl", "reff", "rf")),
    ("pouch", ("pch",)),
    ("sachet", ("sct", "sach", "sch")),
    ("botol", ("btl",)),
    ("kaleng", ("klg",)),
    ("renteng", ("rtg",)),
    ("jerigen", ("jrgn", "jrg")),
    ("karton", ("ctn", "krt")),
    ("bungkus", ("bks",)),
    ("tablet", ("tab", "tbl")),
    ("sirup", ("syr", "syrup")),
    ("tissue", ("tisu", "tiss")),
    ("lembar", ("lbr", "sheets")),
    ("pembersih", ("pmbrsh",)),
    ("perekat", ("prkt",)),
)
_ABBREVIATION_PATTERNS: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = tuple(
    (re.compile(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", re.IGNORECASE), reps)
    for phrase, reps in ABBREVIATIONS
)

PROMO_PREFIXES = (
    "PROMO",
    "[READY STOCK]",
    "NEW",
    "Termurah!",
    "[PROMO]",
    "BELI 2 GRATIS 1",
    "Flash Sale",
    "ORIGINAL",
    "Grosir",
    "HEMAT",
    "[BPOM]",
    "Best Seller",
    "READY",
)
PROMO_SUFFIXES = (
    "Free Ongkir",
    "- Termurah",
    "BELI 2 GRATIS 1",
    "Bisa COD",
    "Original 100%",
    "Ready Stock",
    "(Promo)",
    "Harga Grosir",
    "Halal",
    "ED Lama",
    "Murah",
    "Hemat",
    "[NEW]",
    "Kirim Cepat",
)

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)(ml|l|g|kg)$")
_VOWELS = "aiueo"


def _num(value: float, comma: bool) -> str:
    """Format 1.0 as "1" and 1.5 as "1.5" (or "1,5")."""
    text = f"{value:g}"
    return text.replace(".", ",") if comma else text


def format_size(size: str, rng: random.Random) -> str:
    """Write a canonical size ("250ml", "1.5L", "800g") the way some receipt or listing would."""
    match = _SIZE.match(size.lower())
    if not match:
        return size
    value, unit = float(match.group(1)), match.group(2)
    comma = rng.random() < 0.3
    if unit in ("l", "ml"):
        ml = value * 1000 if unit == "l" else value
        if ml >= 1000 and ml % 100 == 0:
            litres = _num(ml / 1000, comma)
            options = [
                f"{litres}L",
                f"{litres} L",
                f"{litres}ltr",
                f"{litres} ltr",
                f"{litres} liter",
                f"{litres}lt",
                f"{litres} Liter",
            ]
            if ml <= 2000:
                options += [f"{ml:g}ml", f"{ml:g} ml"]
            return rng.choice(options)
        n = f"{ml:g}"
        return rng.choice([f"{n}ml", f"{n}ml", f"{n} ml", f"{n}ML", f"{n} mL", f"{n}Ml"])
    grams = value * 1000 if unit == "kg" else value
    if grams >= 1000 and grams % 100 == 0:
        kilos = _num(grams / 1000, comma)
        options = [f"{kilos}kg", f"{kilos} kg", f"{kilos}KG", f"{kilos} Kg", f"{kilos} kilo"]
        if grams <= 2000:
            options += [f"{grams:g}gr", f"{grams:g}g"]
        return rng.choice(options)
    n = _num(grams, comma)
    options = [f"{n}g", f"{n}gr", f"{n} gr", f"{n} g", f"{n} gram", f"{n}gram", f"{n}grm", f"{n}G"]
    if grams == 500:
        options += ["1/2 kg", "0.5kg", "0,5 kg"]
    elif grams == 250:
        options += ["1/4 kg"]
    return rng.choice(options)


def _choose(rng: random.Random, options: Sequence[str]) -> str:
    return options[rng.randrange(len(options))]


def _title(text: str) -> str:
    """Capitalise each word's first letter without touching the rest ("250ml" stays)."""
    return " ".join(word[:1].upper() + word[1:] for word in text.split(" "))


def abbreviate(text: str, rng: random.Random, rate: float) -> str:
    """Replace known words with receipt abbreviations, each with probability ``rate``."""
    for pattern, replacements in _ABBREVIATION_PATTERNS:
        if pattern.search(text) and rng.random() < rate:
            text = pattern.sub(_choose(rng, replacements), text, count=1)
    return text


def add_typo(text: str, rng: random.Random) -> str:
    """Introduce one keyboard-style typo into one alphabetic word of five letters or more."""
    words = text.split(" ")
    candidates = [i for i, word in enumerate(words) if len(word) >= 5 and word.isalpha()]
    if not candidates:
        return text
    index = _choose_index(rng, candidates)
    word = words[index]
    pos = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:  # swap two neighbours
        word = word[:pos] + word[pos + 1] + word[pos] + word[pos + 2 :]
    elif kind == 1:  # drop a letter
        word = word[:pos] + word[pos + 1 :]
    elif kind == 2:  # double a letter
        word = word[:pos] + word[pos] + word[pos:]
    else:  # wrong vowel, or a dropped one
        vowels = [i for i, ch in enumerate(word) if ch.lower() in _VOWELS and i > 0]
        if vowels:
            at = _choose_index(rng, vowels)
            replacement = _choose(rng, [v for v in _VOWELS if v != word[at].lower()])
            if word[at].isupper():
                replacement = replacement.upper()
            word = word[:at] + replacement + word[at + 1 :]
    words[index] = word
    return " ".join(words)


def _choose_index(rng: random.Random, indices: Sequence[int]) -> int:
    return indices[rng.randrange(len(indices))]


def _pick_brand(rng: random.Random, brands: Sequence[str]) -> str:
    """The first spelling is the usual one: half the rows use it."""
    if len(brands) == 1 or rng.random() < 0.5:
        return brands[0]
    return _choose(rng, brands[1:])


def _pack_and_size(rng: random.Random, line: Line, pack_rate: float) -> tuple[str, str]:
    size = format_size(_choose(rng, line.sizes), rng)
    pack = _choose(rng, line.packs) if rng.random() < pack_rate else ""
    if pack.startswith("*"):
        count = pack[1:]
        if not size:
            return "", f"x {count}"
        form = rng.randrange(4)
        if form == 0:
            return f"{count}x{size}", ""
        if form == 1:
            return f"{count} x {size}", ""
        if form == 2:
            return size, f"x {count}"
        return size, f"isi {count}"
    return size, pack


def _join(parts: Sequence[str]) -> str:
    return " ".join(" ".join(part for part in parts if part).split())


def render(line: Line, rng: random.Random) -> str:
    """Write one product of ``line`` as a receipt, listing or casual search string."""
    brand = _pick_brand(rng, line.brands)
    kind = _choose(rng, line.kinds)
    variant = _choose(rng, line.variants)
    style = rng.random()
    if style < 0.45:  # marketplace listing
        size, pack = _pack_and_size(rng, line, 0.4)
        if pack and rng.random() < 0.3:
            pack = _choose(rng, (f"({pack})", f"[{pack}]", f"- {pack}"))
        order = rng.randrange(5)
        if order == 0:
            parts = [kind, brand, variant, size, pack]
        elif order == 1:
            parts = [brand, kind, variant, size, pack]
        elif order == 2:
            parts = [brand, variant, kind, size, pack]
        elif order == 3:
            parts = [brand, kind, variant, "-", size, pack]
        else:
            parts = [kind, brand, size, variant, pack]
        text = _join(parts)
        if rng.random() < 0.1:
            text = abbreviate(text, rng, 0.3)
        case = rng.random()
        if case < 0.5:
            text = _title(text)
        elif case < 0.6:
            text = text.upper()
        if rng.random() < 0.18:
            if rng.random() < 0.5:
                text = f"{_choose(rng, PROMO_PREFIXES)} {text}"
            else:
                text = f"{text} {_choose(rng, PROMO_SUFFIXES)}"
    elif style < 0.8:  # store receipt
        size, pack = _pack_and_size(rng, line, 0.2)
        if rng.random() < 0.45:
            kind = ""
        parts = (
            [brand, kind, variant, size, pack]
            if rng.random() < 0.8
            else [kind, brand, variant, size]
        )
        text = abbreviate(_join(parts), rng, 0.6).upper()
        if rng.random() < 0.12:
            width = rng.randint(18, 30)
            if len(text) > width:
                text = text[:width].rstrip()
    else:  # what a person types into a search box
        size, _ = _pack_and_size(rng, line, 0.0)
        if rng.random() < 0.35:
            size = ""
        if rng.random() < 0.5:
            kind = ""
        if rng.random() < 0.25:
            variant = ""
        short_brand = brand.split(" ")[0] if rng.random() < 0.3 else brand
        parts = (
            [short_brand, kind, variant, size]
            if rng.random() < 0.6
            else [kind, short_brand, variant, size]
        )
        text = abbreviate(_join(parts), rng, 0.25).lower()
    if rng.random() < 0.05:
        text = add_typo(text, rng)
    return _join([text])


def dedupe_key(name: str) -> str:
    """Names equal up to case, spacing and punctuation count as duplicates."""
    return "".join(ch for ch in name.casefold() if ch.isalnum())


def class_targets(rows: int) -> dict[str, int]:
    """Split ``rows`` over the categories by weight (largest remainder, ties by order)."""
    total = sum(cat.weight for cat in CATEGORIES)
    exact = [rows * cat.weight / total for cat in CATEGORIES]
    counts = [int(value) for value in exact]
    by_remainder = sorted(range(len(CATEGORIES)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: rows - sum(counts)]:
        counts[i] += 1
    return {cat.name: count for cat, count in zip(CATEGORIES, counts, strict=True)}


@dataclass(frozen=True)
class Row:
    product_name: str
    category: str
    ambiguous: bool


def _weighted_line(rng: random.Random, lines: Sequence[Line]) -> Line:
    total = sum(line.weight for line in lines)
    point = rng.random() * total
    for line in lines:
        point -= line.weight
        if point < 0:
            return line
    return lines[-1]


def generate_category(category: Category, count: int, seed: int) -> list[Row]:
    """The first ``count`` distinct rows of ``category``'s own deterministic stream."""
    rng = random.Random(f"{seed}:{category.name}")
    ambiguous = [amb.line for amb in AMBIGUOUS if category.name in amb.labels]
    rows: list[Row] = []
    seen: set[str] = set()
    attempts = 0
    while len(rows) < count:
        attempts += 1
        if attempts > MAX_ATTEMPTS_PER_ROW * max(count, 1):
            raise RuntimeError(f"cannot make {count} distinct rows for {category.name!r}")
        is_ambiguous = bool(ambiguous) and rng.random() < AMBIGUOUS_RATE
        line = _choose_line(rng, ambiguous) if is_ambiguous else _weighted_line(rng, category.lines)
        name = render(line, rng)
        key = dedupe_key(name)
        if len(key) < 3 or key in seen:
            continue
        seen.add(key)
        rows.append(Row(name, category.name, is_ambiguous))
    return rows


def _choose_line(rng: random.Random, lines: Sequence[Line]) -> Line:
    return lines[rng.randrange(len(lines))]


def generate(rows: int, seed: int) -> tuple[list[Row], dict[str, list[Row]]]:
    """All rows in a seeded shuffled order, plus each category's rows in stream order."""
    per_category = {
        cat.name: generate_category(cat, count, seed)
        for cat, count in zip(CATEGORIES, class_targets(rows).values(), strict=True)
    }
    all_rows = [row for cat_rows in per_category.values() for row in cat_rows]
    random.Random(seed).shuffle(all_rows)
    return all_rows, per_category


def tiny_rows(seed: int) -> list[Row]:
    """The first ``TINY_ROWS_PER_CATEGORY`` unambiguous rows of each tiny category, shuffled."""
    selected: list[Row] = []
    categories = {cat.name: cat for cat in CATEGORIES}
    for name in TINY_CATEGORIES:
        stream = generate_category(categories[name], 4 * TINY_ROWS_PER_CATEGORY, seed)
        selected += [row for row in stream if not row.ambiguous][:TINY_ROWS_PER_CATEGORY]
    random.Random(f"{seed}:tiny").shuffle(selected)
    return selected


def write_csv(path: Path, rows: Sequence[Row]) -> None:
    """Write ``product_name,category`` rows as UTF-8 with ``\\n`` line endings."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows((row.product_name, row.category) for row in rows)


def summary(rows: Sequence[Row]) -> str:
    """Row count, ambiguous share and per-category counts, largest first."""
    counts = Counter(row.category for row in rows)
    ambiguous = sum(row.ambiguous for row in rows)
    lines = [
        f"rows: {len(rows)}",
        f"categories: {len(counts)}",
        f"ambiguous rows: {ambiguous} ({ambiguous / max(len(rows), 1):.1%})",
    ]
    width = max((len(name) for name in counts), default=0)
    for name, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        lines.append(f"  {name:<{width}}  {count:>5}  {count / len(rows):6.2%}")
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Generate Garoupa's synthetic Indonesian product-name training data "
            "(product_name,category CSV) deterministically from a seed."
        ),
        epilog="Regenerate the shipped files with: python scripts/generate_products.py",
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=DEFAULT_ROWS,
        help=f"number of data rows to write (default: {DEFAULT_ROWS})",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default: {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="CSV to write (default: data/products.csv)",
    )
    parser.add_argument(
        "--tiny-output",
        type=Path,
        default=DEFAULT_TINY_OUTPUT,
        help=(
            f"also write the small test fixture here: {TINY_ROWS_PER_CATEGORY} rows of each of "
            f"{len(TINY_CATEGORIES)} categories, identical for any --rows "
            "(default: tests/data/tiny.csv)"
        ),
    )
    parser.add_argument("--no-tiny", action="store_true", help="do not write the tiny test fixture")
    args = parser.parse_args(argv)
    if args.rows < 4 * len(CATEGORIES):
        parser.error(f"--rows must be at least {4 * len(CATEGORIES)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rows, _ = generate(args.rows, args.seed)
    write_csv(args.output, rows)
    sys.stdout.write(f"wrote {args.output}\n{summary(rows)}")
    if not args.no_tiny:
        tiny = tiny_rows(args.seed)
        write_csv(args.tiny_output, tiny)
        sys.stdout.write(f"wrote {args.tiny_output}: {len(tiny)} rows\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
