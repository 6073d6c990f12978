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

from bot import lexicon
from bot import vocabulary as vocab_module
from bot.periods import find_period
from bot.vocabulary import Vocabulary, has_cjk, normalize, pinyin

RECEIVABLES = "receivables"
STOCK = "stock"
ORDERS = "orders"
PENDING = "approvals.pending"
DECIDE = "approvals.decide"
STATUS = "approvals.status"
HELP = "help"
UNKNOWN = "unknown"
CLARIFY = "clarify"  # ambiguous: the bot asks which one instead of guessing
INTENTS = (RECEIVABLES, STOCK, ORDERS, PENDING, DECIDE, STATUS, HELP, UNKNOWN, CLARIFY)


@dataclass
class Parsed:
    intent: str
    entities: dict[str, Any] = field(default_factory=dict)
    followup: bool = False  # no intent words of its own, or "那…呢": may continue the last question
    marker: bool = False  # an explicit follow-up ("那…呢", "what about")
    near: list[tuple[str, str]] = field(default_factory=list)  # closest names, for "did you mean"
    spans: list[tuple[int, int]] = field(default_factory=list)
    typed: dict[str, str] = field(default_factory=dict)  # kind -> the words the asker typed for it
    asking: bool = False  # a question (吗/没/是否/?/has it…): never a decision
    bare_decision: str = ""  # "approve it", "驳回": an outcome aimed at no document of its own
    comment: str = ""  # the marked comment of a bare decision ("驳回它, 备注: …")
    vague: bool = False  # "how much?", "状态?": no subject of its own
    ref_kind: str = ""  # what a number fragment ("0043", "order 816") names: document, order or ""
    pinyin: bool = False  # typed (partly) in pinyin


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
        (_rx(r"应收|收款|回款|欠款|拖欠|拖款|拖账|赖账|开票|开了多少(?:发)?票|欠(?:了|我们|多少|钱|账)|账款|逾期|超期|过期未付|发票|未收|还款|付款|到账|收回|催收|催款",
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
        (_rx(r"订单|销售单|单子.{0,3}(?:发|到|交)|发了没|发出了|发货|出货|发出|到哪(?:了|里|儿)?|物流|快递|交货|交期",
             r"送达|签收|配送|运输|延误|延期"), 2.5),
        (_rx(r"\borders?\b|\bship(?:ped|ping|ment|ments|s)?\b|deliver(?:y|ed|ies)?|dispatch(?:ed)?|tracking",
             r"\beta\b|\bdelayed\b"), 2.5),
    ],
    PENDING: [
        (_rx(r"待审批|待我审|待审核|待审|待批|要批|要审批|需要我批|需要我审|等我批|等我审|审批单|我的审批|待办|待处理",
             r"需要审批|要我批|要我审|单子没审|单子没批|哪些.{0,4}没(?:审|批)|等我(?:审|批)"), 3.0),
        (_rx(r"pending\s*approvals?|approvals?\s*(?:pending|waiting|queue|inbox)|to\s*approve|awaiting\s*my",
             r"my\s*approvals?|need(?:s|ing)?\s*my\s*(?:approval|sign)|waiting\s*(?:for|on)\s*me|sign\s*off"), 3.0),
        (_rx(r"审批|批|approv\w*|\bpending\b"), 1.5),
    ],
}
_HELP = _rx(r"帮助|你能做什么|你会什么|你能干|能干嘛|干什么的|怎么用|如何使用|使用说明|功能|菜单|指令|命令",
            r"(?:你|您)(?:都|还)?(?:会|能|可以)(?:干|做|查|问|回答)?(?:些|点)?(?:啥|嘛|什么)",
            r"\bhelp\b|what\s*can\s*(?:you|u|ya)\b|what\s*(?:questions?\s*|else\s*)?can\s*i\s*ask|what\s*do\s*(?:you|u)\s*do\b|how\s*(?:do\s*i\s*)?use|commands?|\bmenu\b|\busage\b|^\s*[?？]+\s*$",
            r"^\s*(?:你好|您好|hi|hello|hey|在吗)\s*(?:there|bot)?\s*[!！?？]*\s*$")
_STATUS_WORDS = _rx(r"谁|还没|没批|没审|未批|进度|状态|到哪|卡在|哪一步|审批人|流程|批了吗|审了吗|怎么样",
                    r"\bwho\b|approvers|status|progress|stuck|waiting\s*on|where\s*is|still\s*need|has\s*not|hasn't|not\s*yet")
_QUESTION = _rx(r"[?？]\s*$|吗\s*$|了没有?\s*$|^\s*(?:is|has|was|did|does|are|have)\b|\byet\b")
_REJECT = _rx(r"不同意|驳回|拒绝|否决|不批|不通过|退回|打回", r"\breject\w*|\bdecline\w*|\bdeny|\brefuse\w*")
_APPROVE = _rx(r"批准|同意|通过|准了|批了|审批通过|核准|签批|批一下|帮我批|给批了?|批掉",
               r"\bapprov\w*|\baccept\w*|\bok(?:ay)?\b|\blgtm\b")
_OVERDUE = _rx(r"逾期|超期|过期|到期未|拖欠|拖款|拖账|拖着不?(?:付|给|还)|赖账|迟迟不?(?:付|给)",
               r"overdue|past\s*due|\blate\b", r"behind\s*on\s*(?:payments?|paying)")
_COLLECTED = _rx(r"回款|到账|收回|收到|收了|回笼|collect\w*|received|came\s*in|payments?\s*(?:in|received)|cash\s*in")
_BELOW = _rx(r"安全库存|安全线|低于|不足|缺货|断货|补货",
             r"below|low\s*stock|running\s*low|shortage|reorder|under\s*safety")
_MINE = _rx(r"我的|我负责|我跟的|我(?!们)[^,，。的]{0,6}的",
            r"\bmy\b|\bmine\b|\bi\s+(?:raised|filed|submitted|created|shipped)")
_ORDER_STATUS = [
    ("delayed", _rx(r"延误|延期|延迟|晚了|delay\w*|\blate\b")),
    ("delivered", _rx(r"送达|签收|已交付|已到货|delivered")),
    ("shipped", _rx(r"发货|已发|出货|发出|ship(?:ped|ping|ment)?|dispatch\w*")),
    ("confirmed", _rx(r"已确认|待发货|confirmed")),
]
_FOLLOWUP = _rx(r"^(?:那|那么|还有|再看看?|换成|and\b|what\s*about|how\s*about|and\s*for)", r"呢\s*[?？]?\s*$")

# A question is never a decision: 吗/没/了没有/是否/能不能/?, "has it", "did it", "was it", "should I".
_ASKING = _rx(r"[?？]", r"吗|是否|有没有|能不能|能否|可不可以|可否|要不要|该不该|了没有?|过没有?|没有?\s*$",
              r"(?:批|审|核|过|意|回|绝|发|到|收|付)\s*了?\s*没", r"是谁|谁批|谁审",
              r"^\s*(?:is|has|have|was|were|did|does|do|are|can|could|should|will|would|shall)\b", r"\byet\b",
              r"\b(?:who|what|where|when|why|how|whether)\b")
# Only marked text is written to the ERP as the comment: after 意见/备注/comment/because…, or quoted.
_MARKED_COMMENT = re.compile(r"(?:意见|备注|批注|留言|原因|理由|附言|comments?|notes?|remarks?|because|reason|due\s+to)"
                             r"\s*(?:是|为|:|：|-|=)?\s*(.+)$")
_QUOTED = re.compile(r"[\"“”'‘’「『]([^\"“”‘’「」『』]+?)[\"“”'‘’」』]")
# A domain word used outside the domain: a share price is not stock on hand.
_OUT_OF_SCOPE = _rx(r"股价|股票|股市|行情|市值|涨停|跌停|share\s*prices?|stock\s*prices?|\bshares?\b|stock\s*market",
                    r"外卖|午饭|晚饭|午餐|\bpizza\b|\blunch\b|\bdinner\b|\bcoffee\b",
                    r"market\s*cap|\bticker\b|nasdaq|dow\s*jones")
# Requisitions and claims: their questions are approval-status questions.
_REQUISITION = _rx(r"采购申请|请购|申请单?|报销单?|采购单",
                   r"\bprs?\b|purchase\s*req\w*|requisitions?|expense\s*claims?", r"\bclaims?\b|\brequests?\b")
_ORDER_WORDS = _rx(r"订单|单子|销售单|\borders?\b|\bso\b")
# A number fragment: "0043", "PR 42", "order 816", "#107" (not a quantity or a date).
_FRAGMENT = re.compile(r"(?<![a-z0-9.\-])(?:(pr|ec|so)\s*[-#]?\s*)?#?\s*(\d{2,4})(?![0-9a-z.\-])"
                       r"(?!\s*(?:月|日|号|天|个|台|根|盒|件|元|块|%|days?|units?|pcs|x\b))")
_INVOICED = _rx(r"开票|开了多少(?:发)?票|开具|开出|发票总额|开的票|开了.{0,6}发票|\binvoiced\b|\bbill(?:ed)?\b",
                r"total\s*invoic\w*",
                r"invoic\w*\s*total")
_NOT_COLLECTED = _rx(r"没收回|未收回|没回来|没收|未收|没到账|未到账|还差|还欠|剩.{0,4}没",
                     r"left\s*to\s*collect|to\s*be\s*collected",
                     r"still\s*to\s*collect|uncollected|not\s*(?:yet\s*)?(?:paid|collected|received)|still\s*owe")
_COLLECTED_MORE = _rx(r"回了|已回|收回了|已收|收到了|付了我们|(?<!应)收款(?:多少|总额|额|金额)|收了多少",
                      r"paid\s*us|pay\s*us",
                      r"have\s*we\s*(?:collected|received|been\s*paid)|did\s*we\s*(?:collect|receive|get\s*paid)",
                      r"we\s*(?:got|received)|been\s*paid")
# What may stand around a decision word in a bare decision ("approve it", "驳回吧", "pls reject this 🙏").
_BARE_FILLER = re.compile(
    r"\b(?:it|this|that|one|the|doc(?:ument)?|please|pls|plz|thx|thanks|thank\s*you|now|then|ok|okay|go|ahead|"
    r"has|have|been|was|is|did|does|do|yet|already|just|you|can|could|should|i)\b|"
    r"它|这个|那个|这张|那张|这单|那单|该单|单据|一下|吧|了|呢|吗|请|帮我|麻烦|就|先|给|嗯|好的|好|啊|呀|掉|[^\w\s]|_")
_BULK = _rx(r"全部|所有|一键|都批|全批|\ball\b|\beverything\b|\bevery\b")
_VAGUE = re.compile(r"^(?:how\s*much|how\s*many|多少钱?|几个|多少个|status|state|progress|状态|进度|怎么样了?|如何|"
                    r"情况|"
                    r"what(?:'s|\s*is)?\s*the\s*(?:status|amount|total)|total|总共|一共|合计)$")
_VAGUE_FILLER = re.compile(r"\b(?:so|and|the|then|well|um|uh|now)\b|那|呢|吗|了|的|啊|呀|嗯|现在|[^\w\s']|_")

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


def _correct_english(text: str, extra: tuple[str, ...] = ()) -> str:
    known_words = [*_ENGLISH, *extra]

    def fix(m: re.Match[str]) -> str:
        word = m.group(0)
        if len(word) < 4 or word in known_words or word in _ENGLISH_STOP:
            return word
        if any(word.startswith(known) or known.startswith(word) for known in known_words):
            return word  # "approvers", "shipments": a form of a known word, not a typo
        best = process.extractOne(word, known_words, scorer=fuzz.ratio)
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


def _find_names(text: str, vocab: Vocabulary, taken: list[tuple[int, int]]
                ) -> tuple[dict[str, str], list, dict[str, str], dict[str, list[tuple[int, int]]]]:
    """Names in ``text``: exact aliases, then fuzzy ones; returns {kind: value}, the spans used,
    {kind: the words as typed} (what an answer may echo when the asker may not see the name) and
    {kind: its spans}."""
    found: dict[str, tuple[float, str]] = {}
    typed: dict[str, str] = {}
    spans = list(taken)
    kind_spans: dict[str, list[tuple[int, int]]] = {}
    masked = _mask(text, spans)

    def claim(kind: str, value: str, span: tuple[int, int], score: float) -> None:
        nonlocal masked
        if kind not in found or found[kind][0] < score:
            found[kind] = (score, value)
            typed[kind] = _typed_phrase(text, span)
        spans.append(span)
        kind_spans.setdefault(kind, []).append(span)
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
    return {kind: value for kind, (_score, value) in found.items()}, spans, typed, kind_spans


def _typed_phrase(text: str, span: tuple[int, int]) -> str:
    """The name as typed, with the Latin words that follow it and are no keywords ("east" + " china")."""
    start, end = span
    if text[start:end].isascii():
        for m in re.finditer(r"\s+([a-z][a-z0-9&.\-]*)", text[end:]):
            if m.start() != 0 and text[end:end + m.start()].strip():
                break
            word = m.group(1)
            if _is_keyword(word) or word in _ENGLISH or word in _ENGLISH_STOP or find_period(word):
                break
            end += m.end()
            break
    return text[start:end].strip()


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
    for token in tokens:
        # A one-character typo that sounds the same ("轴成" for 轴承, "电极" for 电机).
        sku = lexicon.homophone_item(token.strip(), vocab)
        if sku and not _is_keyword(token.strip()):
            return token.strip(), [sku]
    return None


def _item_words(vocab: Vocabulary) -> tuple[str, ...]:
    """English words of the item names, for typo correction ("moter" -> "motor")."""
    words = set()
    for names in vocab.item_names.values():
        words.update(w for w in re.findall(r"[a-z]{4,}", names))
    return tuple(sorted(words))


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


# Words that make a bare place a question about its warehouse ("苏州仓", "what's low in Suzhou").
_STOCKISH = _rx(r"仓|库|货|不够|缺|少", r"warehouse|\bcang\b|\blow\b|\bleft\b|\bhave\b|\bgot\b|\bwhat'?s\s+in\b")


def marker_of(text: str) -> bool:
    """Whether ``text`` says it continues the last question ("那B呢", "and bearings?")."""
    return bool(_FOLLOWUP.search(text))


def _pending_strong(text: str) -> bool:
    return any(pattern.search(text) for pattern, weight in KEYWORDS[PENDING] if weight >= 3)


def marked_comment(text: str) -> str:
    """The comment the person marked as such (after 意见/备注/comment/because…, or in quotes); "" if none.
    Leftover words (particles, "lgtm", fragments of the question) are never a comment."""
    marked = _MARKED_COMMENT.search(text)
    if marked:
        comment = marked.group(1)
        quoted = _QUOTED.search(comment)
        comment = quoted.group(1) if quoted else comment
    else:
        quoted = _QUOTED.search(text)
        comment = quoted.group(1) if quoted else ""
    return re.sub(r"\s+", " ", comment).strip(" \"“”'‘’「」『』,，。.:：;；!！、")


def _is_bare(text: str) -> bool:
    """Nothing but a decision word and filler ("approve it", "驳回吧", "👍 同意")."""
    rest = _REJECT.sub(" ", text)
    rest = _APPROVE.sub(" ", rest)
    return not _BARE_FILLER.sub(" ", rest).strip()


def _is_vague(text: str) -> bool:
    """"how much?", "多少钱", "状态?": a measure or a state with no subject."""
    rest = re.sub(r"\s+", " ", _VAGUE_FILLER.sub(" ", text)).strip()
    return bool(rest) and bool(_VAGUE.fullmatch(rest))


_UNKNOWN_ZH = re.compile(r"(?:^|[\s,，])([\u4e00-\u9fff]{2,8}?)"
                         r"(?=的|那边|那里|还欠|欠|这个客户|公司的|有没有|有多少|目前)")
_UNKNOWN_PROJECT = re.compile(r"项目\s*([a-z0-9]{1,3}|[\u4e00-\u9fff]{1,4}?)(?=的|$|\s|回款|应收|欠|订单|那|收|开|逾期)"
                              r"|\bproject\s+([a-z0-9]{1,3})\b|\b([a-z])\s*项目")
_UNKNOWN_EN = re.compile(r"\b(?:for|from|of|by|does|did|has|is)\s+([a-z][a-z0-9&.\-]*(?:\s+[a-z][a-z0-9&.\-]*){0,2}?)"
                         r"(?:'s|’s)?(?=\s*(?:$|[?？.!,]|\b(?:orders?|receivables?|owe\w*|invoices?|pay\w*|this|last|next|"
                         r"overdue|outstanding|balance|still|have|had|been)\b))"
                         r"|^\s*([a-z][a-z0-9&.\-]*(?:\s+[a-z][a-z0-9&.\-]*)?)(?:'s|’s)?\s+"
                         r"(?:orders?|receivables?|invoices?|owe\w*)\b"
                         r"|^\s*([a-z][a-z0-9&.\-]*(?:\s+[a-z][a-z0-9&.\-]*)?)\s*(?=的|欠|还欠|那边|这个客户)")
_NOT_A_NAME = re.compile(
    r"^(?:我们?|你们?|他们?|公司|客户|哪些|哪个|有哪些|所有|全部|这个|那个|现在|目前|总共|一共|本月|上月|这个月|上个月|今年|去年|"
    r"us|we|me|my|our|all|any|the|a|an|this|that|these|those|customers?|clients?|everyone|anyone|them|it|you|"
    r"which|what|who|much|many|me\s+\w+|each|every|total|project|company)$")


# Characters of question words, verbs and particles: "看看", "到期", "最多的" are no company names.
_NOT_IN_A_NAME = r"[我你他她它哪这那谁多少几看查帮到期最有没的了吗呢要想请问该]"
_COMMON_ENGLISH = {
    "show", "list", "get", "give", "check", "see", "tell", "find", "any", "all", "some", "every", "total", "my",
    "our", "your", "their", "his", "her", "late", "early", "open", "unpaid", "paid", "due", "big", "biggest",
    "largest", "top", "new", "old", "recent", "current", "latest", "lunch", "dinner", "me", "us", "them", "what",
    "which", "who", "whose", "how", "much", "many", "please", "pls", "thanks", "just", "only", "also", "still",
    "now", "then", "here", "there", "today", "week", "month", "year", "quarter", "customer", "customers", "client",
    "clients", "company", "companies", "project", "projects", "item", "items", "order", "orders",
}


def _unknown_name(text: str, intent: str) -> str:
    """A name the asker typed that is no customer or project we know ("项目D", "天津重工", "Globex"):
    it is answered "找不到…", never by silently widening the query."""
    m = _UNKNOWN_PROJECT.search(text)
    if m:
        if m.group(1):
            return f"项目{m.group(1).upper() if m.group(1).isascii() else m.group(1)}"
        if m.group(2):
            return f"project {m.group(2)}"
        return f"{m.group(3)}项目"
    if intent not in (RECEIVABLES, ORDERS):
        return ""
    for pattern in (_UNKNOWN_ZH, _UNKNOWN_EN):
        for m in pattern.finditer(text):
            name = next((g for g in m.groups() if g), "").strip()
            if not name or _NOT_A_NAME.match(name) or _is_keyword(name) or find_period(name):
                continue
            if any(_is_keyword(word) or word in _ENGLISH or word in _ENGLISH_STOP for word in name.split()):
                continue
            if has_cjk(name) and (len(name) < 3 or _ASKING.search(name) or re.search(_NOT_IN_A_NAME, name)):
                continue
            if not has_cjk(name) and any(word in _COMMON_ENGLISH for word in name.split()):
                continue
            return name
    return ""


def _as_typed(name: str, typed_text: str) -> str:
    """``name`` as it was typed: the spelling corrector may have turned a word of an unknown name into
    a known one ("Stark Industries" -> "stark industrial"), and an answer echoes what was asked."""
    if name in typed_text or not name.isascii():
        return name
    words = [re.escape(w) if re.search(rf"\b{re.escape(w)}\b", typed_text) else r"[a-z][a-z0-9&.\-]*"
             for w in name.split()]
    m = re.search(r"\b" + r"\s+".join(words) + r"\b", typed_text)
    return m.group(0) if m else name


def _fragment(text: str) -> tuple[str, str] | None:
    """A number fragment and what its prefix says it is: ("0043", "document"), ("816", "order"), ("42", "")."""
    for m in _FRAGMENT.finditer(text):
        prefix, digits = m.group(1), m.group(2)
        if len(digits) == 4 and digits.startswith("20") and not prefix:
            continue  # a year
        kind = {"pr": "document", "ec": "document", "so": "order"}.get(prefix or "", "")
        return digits, kind
    return None


def parse(text: str, *, vocab: Vocabulary | None = None) -> Parsed:
    vocab = vocab or vocab_module.current()
    raw = _clean(text)
    converted, typed_pinyin = lexicon.from_pinyin(raw, vocab)
    clean = lexicon.everyday(converted)
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

    numbers_masked = _correct_english(_mask(clean, spans), _item_words(vocab))
    asking = bool(_ASKING.search(numbers_masked))
    if _OUT_OF_SCOPE.search(clean) and not (doc or order or invoice or sku):
        return Parsed(UNKNOWN, {}, asking=asking, pinyin=typed_pinyin)

    if "document" in entities:
        assert doc is not None
        rest = numbers_masked
        # A question ("PR-2026-0043 批了吗", "通过了没有, …", "has PR-… been approved?") asks for the
        # status; only an imperative aimed at the document prepares a decision.
        if not asking and not _STATUS_WORDS.search(rest):
            decision = _decision(rest)
            if decision:
                entities["outcome"] = decision[0]
                entities.pop("period", None)  # "本周内下单" in a comment is no period of the question
                comment = marked_comment(raw)
                if comment:
                    entities["comment"] = comment
                return Parsed(DECIDE, entities, spans=spans, pinyin=typed_pinyin)
        entities.pop("period", None)
        return Parsed(STATUS, entities, spans=spans, asking=True, pinyin=typed_pinyin)

    corrected = numbers_masked
    # "approve it", "驳回, 备注: 重复" after a question about one document; "approve" alone asks which.
    has_decision_word = bool(_REJECT.search(corrected) or _APPROVE.search(corrected))
    if has_decision_word and not _pending_strong(corrected) and not entities:
        without_comment = _MARKED_COMMENT.sub(" ", _QUOTED.sub(" ", corrected))
        if _BULK.search(corrected):
            return Parsed(CLARIFY, {}, asking=asking, pinyin=typed_pinyin)
        if _is_bare(without_comment):
            decision = _decision(without_comment)
            assert decision is not None
            return Parsed(CLARIFY, {}, followup=True, asking=asking, bare_decision=decision[0],
                          comment=marked_comment(raw), pinyin=typed_pinyin)
    if not entities and _is_vague(corrected):
        return Parsed(CLARIFY, {}, followup=True, vague=True, asking=asking, pinyin=typed_pinyin)

    names, spans, typed, kind_spans = _find_names(corrected, vocab, [])  # numbers and period are blanked
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
                typed["sku"] = token
            else:
                entities["item"] = token
    if (set(entities) - {"period"} == {"warehouse"} and not marker_of(clean) and not _STOCKISH.search(corrected)
            and not any(_scores(corrected, {}).values())):
        # A city alone ("帮我订去上海的票", "a flight to Shanghai") is no question about its warehouse.
        del entities["warehouse"]
        spans = [span for span in spans if span not in kind_spans.pop("warehouse", [])]

    marker = marker_of(clean)
    scores = _scores(corrected, entities)
    requisition = _REQUISITION.search(_mask(corrected, spans))
    if requisition and not _pending_strong(corrected) and not _ORDER_WORDS.search(corrected):
        scores[STATUS] = scores.get(STATUS, 0.0) + 6
    keyword_hit = any(scores.values())
    fragment = _fragment(_mask(corrected, spans))
    ref_kind = ""
    if fragment:
        ref_kind = fragment[1] or ("document" if requisition else "order" if _ORDER_WORDS.search(corrected) else "")
        if ref_kind or marker or not keyword_hit:
            entities["ref"] = fragment[0]
            if ref_kind == "order":
                scores[ORDERS] += 6
            elif ref_kind == "document":
                scores[STATUS] = scores.get(STATUS, 0.0) + 6
    worded = dict(scores)  # what the words say, before what the names imply
    for intent, extra in _entity_bonus(entities).items():
        scores[intent] += extra
    best = max(scores.values())
    if best <= 0 or (not keyword_hit and _HELP.search(corrected)):
        intent = HELP if _HELP.search(corrected) else UNKNOWN
    else:
        # Ties: a subject the words name before one only a (maybe fuzzy) name implies ("receivables of
        # Stark Industries" is no stock question because "industries" is like "Industrial switch");
        # then the more specific subject first.
        order_of = [ORDERS, STATUS, STOCK, RECEIVABLES, PENDING]
        tied = [i for i in order_of if scores.get(i, 0.0) == best]
        intent = next((i for i in tied if worded.get(i, 0.0) > 0), tied[0])
    if intent in (RECEIVABLES, ORDERS):
        # Money and orders are not asked per item or warehouse: such a name is a misread of another
        # word, and its words may be the name asked about ("Stark Industries").
        for kind in ("sku", "item", "warehouse"):
            entities.pop(kind, None)
            typed.pop(kind, None)
            spans = [span for span in spans if span not in kind_spans.get(kind, [])]
    followup = marker or not keyword_hit
    if marker and intent == UNKNOWN:
        # "那B呢", "and C?": a bare letter names a project when one is called so.
        letter = re.fullmatch(r"(?:那么?|and|what\s*about|how\s*about)?\s*([a-z])\s*(?:呢)?\s*[?？]?",
                              _mask(clean, spans).strip())
        if letter:
            for alias in vocab.aliases:
                if alias.kind == "project" and alias.text in (f"项目{letter.group(1)}", f"project {letter.group(1)}"):
                    entities["project"] = alias.value
                    typed["project"] = letter.group(1)
                    break

    # Flags that refine an intent.
    if intent == RECEIVABLES:
        if _OVERDUE.search(corrected):
            entities["overdue"] = True
        if _INVOICED.search(corrected):
            entities["invoiced"] = True
        elif (_COLLECTED.search(corrected) or _COLLECTED_MORE.search(corrected)) and not _NOT_COLLECTED.search(
                corrected):
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
        if asking and ("customer" in entities or "ref" in entities) and entities.get("status") != "delayed":
            # "has ACME's order shipped?" asks for that order's state; it is no filter on the state.
            entities.pop("status", None)
    elif intent == STATUS:
        for kind in ("customer", "project", "warehouse", "period", "item"):
            entities.pop(kind, None)
        if _MINE.search(corrected) and "ref" not in entities and "sku" not in entities:
            entities["mine"] = True
    if intent in (RECEIVABLES, ORDERS) and not ({"customer", "project", "invoice", "order", "ref"} & entities.keys()):
        unknown = _unknown_name(_mask(corrected, spans), intent)
        if unknown:
            entities["unknown"] = _as_typed(unknown, clean)
    if "order" in entities or "ref" in entities and intent == ORDERS:
        for key in ("status", "mine", "period"):  # the number names the order; the rest is how it was asked
            entities.pop(key, None)
    if intent == HELP:
        entities.clear()
    elif intent == UNKNOWN and not marker:
        for kind in ("customer", "project", "sku", "warehouse", "item"):
            entities.pop(kind, None)  # a period may still continue the last question ("上个月呢?")
    parsed = Parsed(intent, entities, followup=followup and intent != HELP, marker=marker, spans=spans,
                    typed=typed, asking=asking, ref_kind=ref_kind, pinyin=typed_pinyin)
    if intent == UNKNOWN:
        parsed.near = nearest(corrected, vocab)
    elif "unknown" in entities:
        parsed.near = nearest(entities["unknown"], vocab)
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
_GROUPS = [{"project", "customer", "unknown"}, {"sku", "item"}, {"order", "ref"}, {"document", "ref"}, {"invoice"},
           {"collected", "invoiced"}]


def merge_followup(previous: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    merged = dict(previous)
    for group in _GROUPS:
        if group & new.keys():
            for key in group:
                merged.pop(key, None)
    merged.update(new)
    return merged
