"""How people really type, turned into the words the parser knows: pinyin of ordinary domain words
("kucun" -> 库存, "dingdan 0815 fahuo le ma" -> 订单 0815 发货了吗), everyday words for an item
category (螺丝 -> 螺栓, screws -> bolts) and homophone typos of item names (轴成 -> 轴承, by pinyin).

Nothing here knows the demo data: the names of customers, projects and items come from the
vocabulary (``bot.vocabulary``), which this module only reads through the pinyin of its aliases.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

from bot.vocabulary import Vocabulary, has_cjk, pinyin

# Ordinary words of the domain, as people would write them in Chinese; their pinyin (without tones,
# with or without spaces between syllables) is read back to these characters.
DOMAIN_WORDS = [
    "应收", "应收款", "应收账款", "收款", "回款", "欠款", "欠", "欠钱", "欠多少", "还欠", "逾期", "超期",
    "发票", "开票", "到账", "付款", "未付", "没付", "款", "账", "钱", "多少钱", "多少", "还有多少",
    "还有", "还剩", "剩余", "库存", "存货", "缺货", "补货", "安全库存", "不足", "低于", "仓", "仓库",
    "货", "有货", "没货", "订单", "单子", "发货", "出货", "交货", "到货", "物流", "延期", "延误", "送达",
    "签收", "审批", "审核", "待审批", "待我审批", "待办", "批准", "同意", "通过", "驳回", "拒绝", "采购",
    "采购申请", "申请", "报销", "报销单", "状态", "进度", "哪一步", "谁", "帮助", "帮忙", "怎么用", "项目",
    "客户", "哪些", "什么", "多久", "什么时候", "今天", "本月", "上个月", "这个月", "本周", "上周", "这周",
    "本季度", "我的", "情况", "查询", "查", "看看", "一下", "了没", "了吗", "没有", "还没",
]
# Single syllables read as Chinese only inside a run that already holds a domain word ("fahuo le ma").
PARTICLES = {"le": "了", "ma": "吗", "de": "的", "ne": "呢", "wo": "我", "dai": "待", "you": "有", "hai": "还",
             "na": "那", "zhe": "这", "ge": "个", "mei": "没", "bu": "不", "shi": "是", "qian": "欠"}

# Everyday words for an item or its category, mapped to a word of the item master's names.
EVERYDAY = [
    (r"螺丝钉?|螺钉|螺丝杆|螺杆", "螺栓"),
    (r"垫圈|垫子|介子|华司", "垫片"),
    (r"马达", "电机"),
    (r"网络交换机|交换器|网口交换机", "交换机"),
    (r"滑轨|导轨条", "导轨"),
    (r"\bscrews?\b", "bolt"),
    (r"\bbolts\b", "bolt"),
    (r"\bmotors\b", "motor"),
    (r"\bbearings\b", "bearing"),
    (r"\bwashers\b", "washer"),
    (r"\bswitches\b", "switch"),
    (r"\bplcs\b", "plc"),
    (r"\brails\b", "rail"),
]
_EVERYDAY = [(re.compile(pattern), word) for pattern, word in EVERYDAY]
_LATIN_RUN = re.compile(r"[a-z]+(?:\s+[a-z]+)*")
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _domain_pinyin() -> dict[str, str]:
    return {pinyin(word): word for word in sorted(DOMAIN_WORDS, key=len)}  # longer words win a clash


def _name_pinyin(vocab: Vocabulary) -> dict[str, str]:
    """Pinyin of every Chinese alias of the vocabulary ("huadongdianzi" -> 华东电子), kept on the
    vocabulary itself so that a rebuilt vocabulary never reads a stale map."""
    with _lock:
        cached = vocab.__dict__.get("_name_pinyin")
        if cached is None:
            cached = {pinyin(a.text): a.text for a in vocab.aliases
                      if len(a.text) >= 2 and re.fullmatch(r"[\u4e00-\u9fff]+", a.text)}
            # Words inside item names too ("jiaohuanji" -> 交换机 of 工业以太网交换机).
            for item in vocab.item_names.values():
                for run in re.findall(r"[\u4e00-\u9fff]+", item):
                    for size in (2, 3, 4):
                        for start in range(len(run) - size + 1):
                            cached.setdefault(pinyin(run[start:start + size]), run[start:start + size])
            vocab.__dict__["_name_pinyin"] = cached
        return cached


def from_pinyin(text: str, vocab: Vocabulary) -> tuple[str, bool]:
    """Runs of Latin words that spell domain words or names in pinyin, rewritten in characters.

    Returns the text and whether anything was rewritten (the question was typed in pinyin). A run
    is rewritten only when it holds a word of two syllables or more that the domain or the
    vocabulary knows, so English ("how many", "you") stays English."""
    words = {**_domain_pinyin(), **_name_pinyin(vocab)}
    changed = False

    def run(m: re.Match[str]) -> str:
        nonlocal changed
        tokens = m.group(0).split()
        out: list[str] = []
        i = 0
        known = False
        while i < len(tokens):
            for j in range(min(len(tokens), i + 4), i, -1):
                joined = "".join(tokens[i:j])
                if joined in words and (j - i > 1 or len(joined) >= 5 or _syllables(joined) >= 2):
                    out.append(words[joined])
                    known = True
                    i = j
                    break
            else:
                out.append(tokens[i])
                i += 1
        if not known:
            return m.group(0)
        changed = True
        # Inside a run that is pinyin, single syllables are words too ("suzhou cang kucun").
        out = [words.get(t, PARTICLES.get(t, t)) if t.isascii() else t for t in out]
        result = ""
        for piece in out:
            # Characters join without spaces ("了吗", "项目a"); English words keep theirs.
            if result and piece.isascii() and len(piece) > 1 and result[-1].isascii():
                result += " "
            result += piece
        return result

    return _LATIN_RUN.sub(run, text), changed


_SYLLABLE = re.compile(
    r"(?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?(?:iang|iong|uang|ang|eng|ing|ong|uai|ian|iao|uan|ai|ei|ao|ou|an|en|in|un"
    r"|ia|ie|iu|ua|uo|ue|ui|er|a|e|i|o|u|v)")


def _syllables(word: str) -> int:
    """How many pinyin syllables ``word`` reads as (0 when it is not pinyin)."""
    count = 0
    pos = 0
    while pos < len(word):
        m = _SYLLABLE.match(word, pos)
        if not m or m.end() == pos:
            return 0
        pos = m.end()
        count += 1
    return count


def everyday(text: str) -> str:
    for pattern, word in _EVERYDAY:
        text = pattern.sub(word, text)
    return text


def homophone_item(token: str, vocab: Vocabulary) -> str | None:
    """An item whose name holds a word read like ``token`` (轴成 -> 深沟球轴承): one SKU or None."""
    if not has_cjk(token) or len(token) < 2:
        return None
    sound = pinyin(token)
    hits = set()
    for sku, names in vocab.item_names.items():
        cjk = "".join(re.findall(r"[\u4e00-\u9fff]+", names.split("|")[0]))
        for start in range(len(cjk) - len(token) + 1):
            if pinyin(cjk[start:start + len(token)]) == sound:
                hits.add(sku)
    return hits.pop() if len(hits) == 1 else None
