"""The names the bot recognises: customers, projects, items and warehouses, read from the mirrored
ERP data (all of it: resolving a name reveals nothing; every answer goes through the selectors, and
suggestions are filtered by what the asker may see), with aliases: 简称, English names, pinyin and
pinyin initials, model numbers.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache

from django.db.models import Count, Max

KINDS = ("customer", "project", "sku", "warehouse")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_SUFFIXES = re.compile(r"(股份)?有限(责任)?公司$|公司$|集团$|\s*(corp(oration)?|inc|ltd|co|llc|gmbh|ab)\.?$")


def normalize(text: str) -> str:
    """Full-width to half-width, lower case, one space."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text).lower()).strip()


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


# pypinyin is imported where it is used: its dictionaries take ~55 MiB, which only processes that
# answer questions should pay (not every Daphne and worker at start).
@lru_cache(maxsize=32768)  # the fuzzy matcher asks for the same short windows again and again
def pinyin(text: str) -> str:
    from pypinyin import lazy_pinyin

    return "".join(lazy_pinyin(text)) if has_cjk(text) else ""


def initials(text: str) -> set[str]:
    """Every reading's initials: 伺服 is "sf" (伺 as sì), though pypinyin reads 伺 alone as cì."""
    from pypinyin import Style
    from pypinyin import pinyin as pypinyin_all

    combos = [""]
    for readings in pypinyin_all(text, style=Style.FIRST_LETTER, heteronym=True):
        letters = sorted({r[0] for r in readings if r and r[0].isalpha()}) or [""]
        combos = [c + letter for c in combos for letter in letters][:32]
    return set(combos)


@dataclass(frozen=True)
class Alias:
    kind: str
    value: str  # canonical: customer name, project name, SKU, warehouse code
    text: str  # normalised alias
    fuzzy: bool = True  # short or generic aliases match exactly only


@dataclass
class Vocabulary:
    aliases: list[Alias] = field(default_factory=list)
    initials: dict[str, tuple[str, str]] = field(default_factory=dict)  # "hddz" -> (kind, value)
    item_names: dict[str, str] = field(default_factory=dict)  # SKU -> name (CJK and English, normalised)
    labels: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, value) -> display name

    def add(self, kind: str, value: str, alias: str, *, fuzzy: bool = True) -> None:
        alias = normalize(alias)
        if alias:
            self.aliases.append(Alias(kind, value, alias, fuzzy))


def _demo_english() -> dict[str, str]:
    """English names of the demo ERP's data (the mirrors carry the Chinese names only)."""
    try:
        from erp.connectors.demo import seed
    except ImportError:  # pragma: no cover - the demo connector is always in the tree today
        return {}
    names = {}
    for rows in (seed.CUSTOMERS, seed.PROJECTS, seed.WAREHOUSES):
        names.update({name: english for _code, name, english in rows})
    names.update({sku: english for sku, _name, english, *_rest in seed.ITEMS})
    names.update({name: code for code, name, _english in seed.PROJECTS})  # "项目A" -> "PRJ-A"
    return names


def build() -> Vocabulary:
    """The names the apps registered (``bot.intents.register_names``), with their aliases."""
    from bot.intents import names_of

    english = _demo_english()
    vocab = Vocabulary()
    customers = {value for value, _label in names_of("customer")}
    for name in sorted(customers):
        vocab.labels[("customer", name)] = name
        vocab.add("customer", name, name)
        short = _SUFFIXES.sub("", normalize(name)).strip()
        if short != normalize(name):
            vocab.add("customer", name, short)
        if has_cjk(name):
            vocab.add("customer", name, pinyin(name))
            vocab.initials.update(dict.fromkeys(initials(name), ("customer", name)))
            if len(name) >= 4:
                vocab.add("customer", name, name[:2], fuzzy=False)  # 简称: 华东, 深圳
                vocab.add("customer", name, name[:4], fuzzy=False)  # 深圳创新
        if name in english:
            vocab.add("customer", name, english[name])
            first = english[name].split()[0]
            vocab.add("customer", name, first, fuzzy=len(first) >= 6)  # "ACME", "Shenzhen"
    projects = {value for value, _label in names_of("project")}
    for name in sorted(projects):
        vocab.labels[("project", name)] = name
        vocab.add("project", name, name, fuzzy=False)
        m = re.fullmatch(r"项目\s*(\w+)", normalize(name))
        if m:
            letter = m.group(1)
            for alias in (f"{letter}项目", f"project {letter}", f"proj {letter}", f"project-{letter}"):
                vocab.add("project", name, alias, fuzzy=False)
        if name in english:
            vocab.add("project", name, english[name], fuzzy=False)
    for sku, name in names_of("sku"):
        vocab.labels[("sku", sku)] = f"{name} ({sku})"
        vocab.add("sku", sku, sku, fuzzy=False)
        vocab.add("sku", sku, name)
        names = [normalize(name)]
        base = re.sub(r"\s*[a-z]*\d+[a-z\d]*\s*", " ", normalize(name)).strip()  # "深沟球轴承 6205" -> "深沟球轴承"
        if base and base != normalize(name):
            vocab.add("sku", sku, base)
        for model in re.findall(r"[a-z]*\d+[a-z\d]*|plc", normalize(name)):
            if len(model) >= 3:
                vocab.add("sku", sku, model, fuzzy=False)  # model numbers: 6205, hgr20, plc
        if has_cjk(name):
            vocab.add("sku", sku, pinyin(base or name))
            vocab.initials.update(dict.fromkeys(initials(base or name), ("sku", sku)))
        if sku in english:
            vocab.add("sku", sku, english[sku])
            names.append(normalize(english[sku]))
        vocab.item_names[sku] = " | ".join(names)
    for code, name in names_of("warehouse"):
        vocab.labels[("warehouse", code)] = name
        vocab.add("warehouse", code, code, fuzzy=False)
        if name:
            vocab.add("warehouse", code, name, fuzzy=False)
            short = re.sub(r"(仓库?|库)$", "", name)
            if short != name:
                vocab.add("warehouse", code, short, fuzzy=False)  # 上海
                vocab.add("warehouse", code, f"{code}仓", fuzzy=False)
                vocab.add("warehouse", code, pinyin(short), fuzzy=False)  # shanghai
        if name in english:
            vocab.add("warehouse", code, english[name], fuzzy=False)
    # Longest first, so that "伺服电机" wins over "伺服" and "上海仓" over "上海".
    vocab.aliases.sort(key=lambda a: -len(a.text))
    return vocab


_lock = threading.Lock()
_cache: dict[str, object] = {}


def _signature() -> tuple:
    """Cheap fingerprint of the mirrors: the vocabulary is rebuilt only when they change."""
    from bot.intents import name_models

    return tuple(
        tuple(model.objects.aggregate(n=Count("pk"), last=Max("pk")).values()) for model in name_models()
    )


def current() -> Vocabulary:
    signature = _signature()
    with _lock:
        if _cache.get("signature") != signature:
            _cache["vocabulary"] = build()
            _cache["signature"] = signature
            _cache.pop("index", None)
        return _cache["vocabulary"]  # type: ignore[return-value]


def by_kind(vocab: Vocabulary) -> dict[str, list[Alias]]:
    grouped: dict[str, list[Alias]] = defaultdict(list)
    for alias in vocab.aliases:
        grouped[alias.kind].append(alias)
    return grouped
