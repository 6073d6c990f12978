"""The rule-and-grammar parser: text -> intent and entities. Deterministic, no network, no model.

Steps: normalise (NFKC, lower case, drop the @mention) -> document/order/SKU numbers by pattern ->
period -> names from the vocabulary (exact, then fuzzy by characters and by pinyin, pinyin
initials, partial item names from jieba tokens) -> English typos corrected against the keyword list
-> intent by weighted keywords plus what the entities imply.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz, process

from im.bot import vocabulary as vocab_module
from im.bot.periods import find_period
from im.bot.vocabulary import Vocabulary, has_cjk, normalize, pinyin

RECEIVABLES = "receivables"
STOCK = "stock"
ORDERS = "orders"
PENDING = "approvals.pending"
DECIDE = "approvals.decide"
STATUS = "approvals.status"
HELP = "help"
UNKNOWN = "unknown"
INTENTS = (RECEIVABLES, STOCK, ORDERS, PENDING, DECIDE, STATUS, HELP, UNKNOWN)


@dataclass
class Parsed:
    intent: str
    entities: dict[str, Any] = field(default_factory=dict)
    followup: bool = False  # no intent words of its own, or "那…呢": may continue the last question
    marker: bool = False  # an explicit follow-up ("那…呢", "what about")
    near: list[tuple[str, str]] = field(default_factory=list)  # closest names, for "did you mean"
    spans: list[tuple[int, int]] = field(default_factory=list)


def _rx(*parts: str) -> re.Pattern[str]:
    return re.compile("|".join(parts))


_MENTION = re.compile(r"^\s*@\s*(bot|机器人|小助手|助手)\b[:,，]?\s*|@\s*(bot|机器人)\s*")
_DOCUMENT = re.compile(r"(?<![a-z0-9])(pr|ec)\s*[-_#]?\s*(\d{4})\s*[-_]?\s*(\d{1,4})(?!\d)")
_ORDER = re.compile(r"(?<![a-z0-9])so\s*[-_#]?\s*(\d{4})\s*[-_]?\s*(\d{1,4})(?!\d)")
_INVOICE = re.compile(r"(?<![a-z0-9])inv\s*[-_#]?\s*(\d{4})\s*[-_]?\s*(\d{1,4})(?!\d)")
_SKU = re.compile(r"(?<![a-z0-9])sku\s*[-_#]?\s*(\d{2,6})(?!\d)")

# Keyword groups with weights. Strong words name the subject; weak ones ("有多少") only lean.
KEYWORDS: dict[str, list[tuple[re.Pattern[str], float]]] = {
    RECEIVABLES: [
        (_rx(r"应收|收款|回款|欠款|欠(?:了|我们|多少|钱|账)|账款|逾期|超期|过期未付|发票|未收|还款|付款|到账|收回|催收|催款",
             r"账龄|款项|尾款|结清|欠费|没付|未付|回笼|收到多少|收了多少|还差多少"), 2.5),
        (_rx(r"receivables?|\bowe[sd]?\b|\bowing\b|outstanding|overdue|past\s*due|invoices?|payments?",
             r"collect(?:ed|ions?)?|unpaid|\bpaid\b|ag(?:e)?ing|\bar\b|debts?|balance|cash\s*in|\bdues?\b"), 2.5),
        (_rx(r"多少钱|钱|money|how\s*much"), 1.0),
    ],
    STOCK: [
        (_rx(r"库存|存货|存量|现货|在库|缺货|安全库存|安全线|补货|备货|断货|库里|仓里|仓库里|低于安全"), 3.0),
        (_rx(r"\bstock|inventory|on\s*hand|in\s*stock|safety|low\s*stock|running\s*low|shortage|reorder",
             r"\bwarehouses?\b|\bqty\b|quantity|units?\s*left|\bleft\b"), 3.0),
        (_rx(r"还有多少|剩(?:余|下)?多少|有多少|还剩|多少(?:台|个|根|盒|件)|how\s*many|available|below"), 1.0),
    ],
    ORDERS: [
        (_rx(r"订单|销售单|发货|出货|发出|到哪(?:了|里|儿)?|物流|快递|交货|交期|送达|签收|配送|运输|延误|延期"), 2.5),
        (_rx(r"\borders?\b|\bship(?:ped|ping|ment|ments|s)?\b|deliver(?:y|ed|ies)?|dispatch(?:ed)?|tracking",
             r"\beta\b|\bdelayed\b"), 2.5),
    ],
    PENDING: [
        (_rx(r"待审批|待我审|待审核|待审|待批|要批|要审批|需要我批|需要我审|等我批|等我审|审批单|我的审批|待办|待处理",
             r"需要审批|要我批|要我审"), 3.0),
        (_rx(r"pending\s*approvals?|approvals?\s*(?:pending|waiting|queue|inbox)|to\s*approve|awaiting\s*my",
             r"my\s*approvals?|need(?:s|ing)?\s*my\s*(?:approval|sign)|waiting\s*(?:for|on)\s*me|sign\s*off"), 3.0),
        (_rx(r"审批|批|approv\w*|\bpending\b"), 1.5),
    ],
}
_HELP = _rx(r"帮助|你能做什么|你会什么|你能干|能干嘛|干什么的|怎么用|如何使用|使用说明|功能|菜单|指令|命令",
            r"\bhelp\b|what\s*can\s*you|how\s*(?:do\s*i\s*)?use|commands?|\bmenu\b|\busage\b|^\s*[?？]+\s*$",
            r"^\s*(?:你好|您好|hi|hello|hey|在吗)\s*[!！?？]*\s*$")
_STATUS_WORDS = _rx(r"谁|还没|没批|没审|未批|进度|状态|到哪|卡在|哪一步|审批人|流程|批了吗|审了吗|怎么样",
                    r"\bwho\b|approvers|status|progress|stuck|waiting\s*on|where\s*is|still\s*need|has\s*not|hasn't|not\s*yet")
_QUESTION = _rx(r"[?？]\s*$|吗\s*$|了没有?\s*$|^\s*(?:is|has|was|did|does|are|have)\b|\byet\b")
_REJECT = _rx(r"不同意|驳回|拒绝|否决|不批|不通过|退回|打回", r"\breject\w*|\bdecline\w*|\bdeny|\brefuse\w*")
_APPROVE = _rx(r"批准|同意|通过|准了|批了|审批通过|核准|签批|\bapprov\w*|\baccept\w*|\bok(?:ay)?\b|\blgtm\b")
_OVERDUE = _rx(r"逾期|超期|过期|到期未|拖欠|overdue|past\s*due|\blate\b")
_COLLECTED = _rx(r"回款|到账|收回|收到|收了|回笼|collect\w*|received|came\s*in|payments?\s*(?:in|received)|cash\s*in")
_BELOW = _rx(r"安全库存|安全线|低于|不足|缺货|断货|补货",
             r"below|low\s*stock|running\s*low|shortage|reorder|under\s*safety")
_MINE = _rx(r"我的|我负责|我跟的|\bmy\b|\bmine\b")
_ORDER_STATUS = [
    ("delayed", _rx(r"延误|延期|延迟|晚了|delay\w*|\blate\b")),
    ("delivered", _rx(r"送达|签收|已交付|已到货|delivered")),
    ("shipped", _rx(r"发货|已发|出货|发出|ship(?:ped|ping|ment)?|dispatch\w*")),
    ("confirmed", _rx(r"已确认|待发货|confirmed")),
]
_FOLLOWUP = _rx(r"^(?:那|那么|还有|再看看?|换成|and\b|what\s*about|how\s*about|and\s*for)", r"呢\s*[?？]?\s*$")

# English words worth correcting when misspelt ("recievables", "inventroy").
_ENGLISH = [
    "receivables", "receivable", "overdue", "outstanding", "invoice", "invoices", "payments", "payment",
    "collected", "stock", "inventory", "warehouse", "safety", "approve", "approval", "approvals", "pending",
    "reject", "orders", "order", "shipped", "delivered", "delayed", "status", "customer", "project", "help",
    "quarter", "month", "week", "below", "shanghai", "suzhou", "servo", "motor", "bearing", "shortage",
]
_ENGLISH_STOP = {"other", "older", "store", "story", "stack", "stuck", "shape", "share", "sheet", "about", "where",
                 "there", "these", "those", "which", "mouth", "worth", "north", "ready", "still", "stick", "slow",
                 "hello", "helps", "month", "months", "weeks", "waiting", "approach", "order", "orders"}


def _clean(text: str) -> str:
    text = normalize(text)
    text = _MENTION.sub(" ", text)
    return text.strip()


def _correct_english(text: str) -> str:
    def fix(m: re.Match[str]) -> str:
        word = m.group(0)
        if len(word) < 4 or word in _ENGLISH or word in _ENGLISH_STOP:
            return word
        if any(word.startswith(known) or known.startswith(word) for known in _ENGLISH):
            return word  # "approvers", "shipments": a form of a known word, not a typo
        best = process.extractOne(word, _ENGLISH, scorer=fuzz.ratio)
        if best and best[1] >= (85 if len(word) == 4 else 80):
            return best[0]
        return word

    return re.sub(r"[a-z]+", fix, text)


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for start, end in spans:
        for i in range(start, end):
            chars[i] = " "
    return "".join(chars)


def _ascii_ok(text: str, start: int, end: int) -> bool:
    """An ASCII alias must stand alone: "sh" is not the start of "shipped"."""
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    return not (before.isascii() and before.isalnum()) and not (after.isascii() and after.isalnum())


_KEYWORD_TEXTS: set[str] = set()


def _find_names(text: str, vocab: Vocabulary, taken: list[tuple[int, int]]) -> tuple[dict[str, str], list]:
    """Names in ``text``: exact aliases, then fuzzy ones; returns {kind: value} and the spans used."""
    found: dict[str, tuple[float, str]] = {}
    spans = list(taken)
    masked = _mask(text, spans)

    def claim(kind: str, value: str, span: tuple[int, int], score: float) -> None:
        nonlocal masked
        if kind not in found or found[kind][0] < score:
            found[kind] = (score, value)
        spans.append(span)
        masked = _mask(masked, [span])

    for alias in vocab.aliases:
        start = masked.find(alias.text)
        while start >= 0:
            end = start + len(alias.text)
            if has_cjk(alias.text) or _ascii_ok(masked, start, end):
                claim(alias.kind, alias.value, (start, end), 100 + len(alias.text))
                break
            start = masked.find(alias.text, start + 1)
    # Fuzzy: windows of the alias's length (±1) over what is left, by characters and by pinyin,
    # so "伺服电击" (a homophone typo) and "华东点子" still find their names.
    for alias in vocab.aliases:
        if not alias.fuzzy or alias.kind in found:
            continue
        cjk = has_cjk(alias.text)
        if (cjk and len(alias.text) < 4) or (not cjk and len(alias.text) < 5):
            continue
        alias_pinyin = pinyin(alias.text) if cjk else ""
        best: tuple[float, tuple[int, int]] | None = None
        n = len(alias.text)
        for size in (n - 1, n, n + 1):
            for start in range(0, max(len(masked) - size + 1, 0)):
                window = masked[start:start + size]
                if window.strip() != window or "  " in window:
                    continue
                if not cjk and not _ascii_ok(masked, start, start + size):
                    continue
                score = fuzz.ratio(alias.text, window)
                if cjk and has_cjk(window) and score >= 50:
                    score = max(score, fuzz.ratio(alias_pinyin, pinyin(window)) - 2)
                if best is None or score > best[0]:
                    best = (score, (start, start + size))
        if best and best[0] >= (75 if cjk else 84):
            claim(alias.kind, alias.value, best[1], best[0])
    # Pinyin initials typed in Latin letters: "hddz" for 华东电子, "sfdj" for 伺服电机.
    for m in re.finditer(r"[a-z]{3,8}", masked):
        hit = vocab.initials.get(m.group(0))
        if hit and hit[0] not in found and m.group(0) not in _ENGLISH:
            claim(hit[0], hit[1], m.span(), 90)
    return {kind: value for kind, (_score, value) in found.items()}, spans


def _partial_item(text: str, vocab: Vocabulary) -> tuple[str, list[str]] | None:
    """A part of an item's name ("轴承", "bearing", "伺服"): the SKUs whose names contain it."""
    tokens = [t for t in _tokens(text) if t.strip()]
    for token in tokens:
        token = token.strip()
        if has_cjk(token) and len(token) < 2:
            continue
        if not has_cjk(token):
            if len(token) < 4 or token in _ENGLISH_STOP:
                continue
            token = token[:-1] if token.endswith("s") and len(token) > 4 else token
        if _is_keyword(token):
            continue
        skus = [sku for sku, names in vocab.item_names.items()
                if re.search(r"(?<![a-z])" + re.escape(token) if not has_cjk(token) else re.escape(token), names)]
        if skus:
            return token, sorted(skus)
    return None


def _is_keyword(token: str) -> bool:
    return any(p.search(token) for groups in KEYWORDS.values() for p, _w in groups) or bool(
        _HELP.search(token) or _BELOW.search(token) or _ORDER_STATUS[2][1].search(token))


_jieba = None


def _tokens(text: str) -> list[str]:
    global _jieba
    if _jieba is None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _jieba = jieba
    return _jieba.lcut(text)


def _decision(text: str) -> tuple[str, str] | None:
    """"批准 PR-2026-0042 同意" -> ("approved", "同意"): the first decision word is the command, the
    rest (without the number) is the comment."""
    reject, approve = _REJECT.search(text), _APPROVE.search(text)
    if not reject and not approve:
        return None
    # "不同意" contains "同意": a reject word at the same place or earlier is the command.
    command = reject if reject and (not approve or reject.start() <= approve.start()) else approve
    assert command is not None
    outcome = "rejected" if command is reject else "approved"
    rest = _mask(text, [command.span()])  # the number is masked already
    rest = re.sub(r"^[\s,，。.:：;；!！、]*(?:请|please|pls|帮我|麻烦)?[\s,，。.:：;；!！、]*", "", rest)
    rest = re.sub(r"\s+", " ", rest).strip(" ,，。.:：;；!！、")
    rest = re.sub(r"^(?:it|this|the|单据|这个|这张|一下)\s*", "", rest).strip(" ,，。.:：;；!！、")
    return outcome, rest


def _scores(text: str, entities: dict[str, Any]) -> dict[str, float]:
    scores = {intent: 0.0 for intent in KEYWORDS}
    for intent, groups in KEYWORDS.items():
        for pattern, weight in groups:
            if pattern.search(text):
                scores[intent] += weight
    return scores


def _entity_bonus(entities: dict[str, Any]) -> dict[str, float]:
    bonus = {intent: 0.0 for intent in KEYWORDS}
    if "order" in entities:
        bonus[ORDERS] += 6
    if "invoice" in entities:
        bonus[RECEIVABLES] += 6
    for key in ("sku", "item", "warehouse"):
        if key in entities:
            bonus[STOCK] += 2.5
    for key in ("customer", "project"):
        if key in entities:
            bonus[RECEIVABLES] += 1.5
    if "customer" in entities:
        bonus[ORDERS] += 0.5
    return bonus


def parse(text: str, *, vocab: Vocabulary | None = None) -> Parsed:
    vocab = vocab or vocab_module.current()
    clean = _clean(text)
    entities: dict[str, Any] = {}
    spans: list[tuple[int, int]] = []

    doc = _DOCUMENT.search(clean)
    if doc:
        entities["document"] = f"{doc.group(1).upper()}-{doc.group(2)}-{int(doc.group(3)):04d}"
        spans.append(doc.span())
    order = _ORDER.search(clean)
    if order:
        entities["order"] = f"SO-{order.group(1)}-{int(order.group(2)):04d}"
        spans.append(order.span())
    invoice = _INVOICE.search(clean)
    if invoice:
        entities["invoice"] = f"INV-{invoice.group(1)}-{int(invoice.group(2)):04d}"
        spans.append(invoice.span())
    sku = _SKU.search(clean)
    if sku:
        entities["sku"] = f"SKU-{sku.group(1)}"
        spans.append(sku.span())
    period = find_period(clean)
    if period:
        entities["period"] = period[0]
        spans.append(period[1])

    if "document" in entities:
        assert doc is not None
        rest = _correct_english(_mask(clean, [doc.span()]))
        # A question ("PR-2026-0043 批了吗", "is PR-2026-0043 approved yet?") asks for the status; only a
        # command prepares a decision.
        if not _STATUS_WORDS.search(rest) and not _QUESTION.search(rest):
            decision = _decision(rest)
            if decision:
                entities["outcome"], comment = decision
                if comment:
                    entities["comment"] = comment
                return Parsed(DECIDE, entities, spans=spans)
        return Parsed(STATUS, entities, spans=spans)

    corrected = _correct_english(_mask(clean, spans))
    names, spans = _find_names(corrected, vocab, [])  # numbers and period are blanked in ``corrected``
    for kind, value in names.items():
        if kind == "sku" and "sku" in entities:
            continue
        entities[kind] = value
    if "sku" not in entities:
        partial = _partial_item(_mask(corrected, spans), vocab)
        if partial:
            token, skus = partial
            if len(skus) == 1:
                entities["sku"] = skus[0]
            else:
                entities["item"] = token

    scores = _scores(corrected, entities)
    keyword_hit = any(scores.values())
    for intent, extra in _entity_bonus(entities).items():
        scores[intent] += extra
    best = max(scores.values())
    if best <= 0 or (not keyword_hit and _HELP.search(corrected)):
        intent = HELP if _HELP.search(corrected) else UNKNOWN
    else:
        # Ties: the more specific subject first.
        order_of = [ORDERS, STOCK, RECEIVABLES, PENDING]
        intent = next(i for i in order_of if scores[i] == best)
    marker = bool(_FOLLOWUP.search(clean))
    followup = marker or not keyword_hit

    # Flags that refine an intent.
    if intent == RECEIVABLES:
        if _OVERDUE.search(corrected):
            entities["overdue"] = True
        if _COLLECTED.search(corrected):
            entities["collected"] = True
    elif intent == STOCK:
        if _BELOW.search(corrected):
            entities["below_safety"] = True
    elif intent == ORDERS:
        if _MINE.search(corrected):
            entities["mine"] = True
        for status, pattern in _ORDER_STATUS:
            if pattern.search(corrected):
                entities["status"] = status
                break
    if "order" in entities:
        for key in ("status", "mine", "period"):  # the number names the order; the rest is how it was asked
            entities.pop(key, None)
    if intent == HELP:
        entities.clear()
    elif intent == UNKNOWN:
        for kind in ("customer", "project", "sku", "warehouse", "item"):
            entities.pop(kind, None)  # a period may still continue the last question ("上个月呢?")
    parsed = Parsed(intent, entities, followup=followup and intent != HELP, marker=marker, spans=spans)
    if intent == UNKNOWN:
        parsed.near = nearest(corrected, vocab)
    return parsed


def nearest(text: str, vocab: Vocabulary, limit: int = 3) -> list[tuple[str, str]]:
    """The names closest to ``text`` (for "did you mean"), best first."""
    choices = {i: a.text for i, a in enumerate(vocab.aliases) if len(a.text) >= 2}
    hits = process.extract(text, choices, scorer=fuzz.partial_ratio, limit=limit * 4)
    result: list[tuple[str, str]] = []
    for _alias, score, index in hits:
        alias = vocab.aliases[index]
        key = (alias.kind, alias.value)
        if score >= 60 and key not in result:
            result.append(key)
    return result[:limit]


# Entities that replace each other in a follow-up: "那项目B呢?" after a question about 华东电子.
_GROUPS = [{"project", "customer"}, {"sku", "item"}, {"order"}, {"document"}, {"invoice"}]


def merge_followup(previous: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    merged = dict(previous)
    for group in _GROUPS:
        if group & new.keys():
            for key in group:
                merged.pop(key, None)
    merged.update(new)
    return merged
