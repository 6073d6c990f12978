"""Evaluation of the chat bot on the demo data, and the latency of ``ask()``.

    .venv/bin/python bench/bot.py [--file F ...] [--failures] [--json OUT]

Without ``--file`` it scores the tuning set (``bench/bot_eval.jsonl``, which the parser and the
intent classifier were tuned on), the first small held-out set (``bot_eval_holdout.jsonl``) and the
frozen held-out set (``bot_eval_holdout2.jsonl``: 184 utterances written and labelled before the bot
was run on them and before any tuning; its SHA-256 is checked below and the run refuses a changed
file) and the outside sweep's frozen set (``bot_eval_holdout3.jsonl``, 66, checked the same way),
each reported separately.

Each line is one utterance with its expected intent and entities; optional fields: ``user`` (who
asks, default wang.wu), ``noise`` (clean, typo, pinyin, emoji, mixed, colloquial), ``context`` (the
question asked before it in the same conversation: a follow-up) and ``forbidden`` (strings that
must appear nowhere in the reply: answer, card or ``entities``). Every utterance goes through
``bot.services.ask()`` on a fresh SQLite database with the demo world. Figures per set:

- intent %, entities % (exact match of all entities, nothing missing, nothing extra),
- clarify-correct %: of the utterances labelled ``clarify`` (ambiguous) or ``unknown`` (out of
  scope), those the bot answered by asking or by saying so, not with data,
- questions turned into decisions (a reply of intent approvals.decide, or a prepared decision, for an
  utterance not labelled approvals.decide): must be 0,
- leaks (a ``forbidden`` string in the reply): must be 0,
- answer language %: an English question answered in English, a Chinese one in Chinese (the demo
  profiles have no language set),
- p50/p99 latency of ``ask()`` (after one warm-up question), then every fourth utterance of the
  last set the whole way through the dev inbox (phone form -> ask() -> outbox -> card stored).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import percentile, setup_django  # noqa: E402

# Frozen before any tuning (see docs/architecture.md, "Bot"): the set is never edited after this.
HOLDOUT2 = ROOT / "bench" / "bot_eval_holdout2.jsonl"
HOLDOUT2_SHA256 = "7e42a02374c625f8600b2cff38763c548665a8c098a1fb19d8508d6d2d3959d6"
# The outside sweep's set (66: phrasing nobody tuned to), frozen before the bot was first run on it.
HOLDOUT3 = ROOT / "bench" / "bot_eval_holdout3.jsonl"
HOLDOUT3_SHA256 = "923ff7db94d4178951f04005a86936150e819f511c8eaecc9f90549321984a0e"
FROZEN = {HOLDOUT2.name: HOLDOUT2_SHA256, HOLDOUT3.name: HOLDOUT3_SHA256}
DEFAULT_FILES = [ROOT / "bench" / "bot_eval.jsonl", ROOT / "bench" / "bot_eval_holdout.jsonl", HOLDOUT2, HOLDOUT3]
NOT_DATA = ("clarify", "unknown")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_LATIN_WORD = re.compile(r"\b(?:the|of|for|is|no|you|your|not|that|waiting|stock|orders?|receivables|which|"
                         r"document|approve|reject|what|could|find|invoiced|collected|requisitions|claims|"
                         r"answer|sorry|below|safety|mean|my)\b", re.IGNORECASE)


def _same_entities(got: dict, expected: dict) -> bool:
    if set(got) != set(expected):
        return False
    for key, value in expected.items():
        if key == "unknown":  # the name as typed: case and spacing are not the point
            if str(got[key]).strip().lower() != str(value).strip().lower():
                return False
        elif got[key] != value:
            return False
    return True


def answer_language(reply) -> str:
    """The language the answer is written in, from its title and note: English label words make it
    English (names and quoted examples may be Chinese in both), otherwise Chinese characters Chinese."""
    card = reply.card
    words = " ".join([card.title, card.note] if card else [reply.text])
    words = re.sub(r"“[^”]*”|\([^)]*\)", " ", words)
    if _LATIN_WORD.search(words):
        return "en"
    return "zh" if _CJK.search(words) else "?"


def score(cases: list[dict], users: dict, ask) -> dict:
    groups: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    latencies: list[float] = []
    failures = []
    decisions: list[str] = []
    leaks: list[str] = []
    clarify: list[bool] = []
    language: list[bool] = []
    for i, case in enumerate(cases):
        user = users[case.get("user", "wang.wu")]
        conversation = f"eval-{id(cases)}-{i}"
        if case.get("context"):
            ask(user, case["context"], conversation=conversation)
        started = time.perf_counter()
        reply = ask(user, case["text"], conversation=conversation)
        latencies.append(time.perf_counter() - started)
        intent_ok = reply.intent == case["intent"]
        entities_ok = intent_ok and _same_entities(reply.entities, case["entities"])
        names = ["all", f"lang:{case['lang']}", f"intent:{case['intent']}"]
        if case.get("noise"):
            names.append(f"noise:{case['noise']}")
        if case.get("context"):
            names.append("follow-ups")
        for name in names:
            groups[name].append((intent_ok, entities_ok))
        if not entities_ok:
            failures.append((case, reply.intent, reply.entities))
        if case["intent"] != "approvals.decide" and (
                reply.intent == "approvals.decide" or any(a.id == "confirm" for a in reply.card.actions)):
            decisions.append(case["text"])
        if case.get("forbidden"):
            blob = json.dumps(reply.as_dict(), ensure_ascii=False)
            if any(word in blob for word in case["forbidden"]):
                leaks.append(case["text"])
        if case["intent"] in NOT_DATA:
            clarify.append(reply.intent == case["intent"])
        if case["lang"] in ("zh", "en"):
            language.append(answer_language(reply) == case["lang"])
    return {"groups": groups, "latencies": latencies, "failures": failures, "decisions": decisions,
            "leaks": leaks, "clarify": clarify, "language": language}


def pct(values: list[bool]) -> float:
    return sum(values) / len(values) * 100 if values else float("nan")


def report(name: str, result: dict, show_failures: bool) -> dict:
    groups = result["groups"]
    print(f"== {name}")
    print(f"{'group':<30}{'n':>5}{'intent':>10}{'entities':>10}")
    for group in sorted(groups, key=lambda g: (g != "all", g)):
        rows = groups[group]
        print(f"{group:<30}{len(rows):>5}{pct([ok for ok, _ in rows]):>9.1f}%{pct([ok for _, ok in rows]):>9.1f}%")
    lat = result["latencies"]
    figures = {
        "utterances": len(groups["all"]),
        "intent_accuracy": pct([ok for ok, _ in groups["all"]]),
        "entity_accuracy": pct([ok for _, ok in groups["all"]]),
        "clarify_correct": pct(result["clarify"]),
        "questions_to_decisions": len(result["decisions"]),
        "leaks": len(result["leaks"]),
        "answer_language": pct(result["language"]),
        "ask_p50": statistics.median(lat) * 1000, "ask_p99": percentile(lat, 99) * 1000,
    }
    print(f"clarify-correct {figures['clarify_correct']:.1f}% (n={len(result['clarify'])}), "
          f"questions turned into decisions {figures['questions_to_decisions']}, leaks {figures['leaks']}, "
          f"answer language {figures['answer_language']:.1f}%")
    print(f"ask() latency over {len(lat)} questions: p50 {figures['ask_p50']:.1f} ms, "
          f"p99 {figures['ask_p99']:.1f} ms, max {max(lat) * 1000:.1f} ms")
    for text in result["decisions"]:
        print(f"  DECISION from a question: {text!r}")
    for text in result["leaks"]:
        print(f"  LEAK: {text!r}")
    if show_failures:
        for case, intent, entities in result["failures"]:
            print(f"  - {case['text']!r} ({case.get('user', 'wang.wu')}): expected {case['intent']} "
                  f"{case['entities']}, got {intent} {entities}")
    print()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", action="append", help="score only these files (repeatable)")
    parser.add_argument("--failures", action="store_true", help="list every utterance that missed")
    parser.add_argument("--json", help="also write the figures to this file (bench/run.py's table)")
    args = parser.parse_args()
    files = [Path(f) for f in args.file] if args.file else DEFAULT_FILES
    for path in files:
        frozen = FROZEN.get(path.name) if path.resolve().parent == HOLDOUT2.parent else None
        if frozen:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest != frozen:
                sys.exit(f"{path} changed since it was frozen (sha256 {digest}); the held-out set is never edited")

    with tempfile.TemporaryDirectory() as tmp:
        setup_django(tmp)
        from django.contrib.auth import get_user_model

        from bot.services import ask
        from portal.demo import setup_demo

        setup_demo()
        users = {u.username: u for u in get_user_model().objects.all()}
        ask(users["wang.wu"], "help", conversation="warm-up")

        all_figures = {}
        last_cases: list[dict] = []
        for path in files:
            cases = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            all_figures[path.name] = report(path.name, score(cases, users, ask), args.failures)
            last_cases = cases

        # The whole way on the dev inbox: POST from a phone -> ask() -> outbox -> card on the phone.
        from django.test import Client
        from django.test.utils import setup_test_environment

        from im.platforms.devinbox.models import DevInboxMessage

        setup_test_environment()  # ALLOWED_HOSTS=testserver
        client = Client()
        inbox: list[float] = []
        user = users["wang.wu"]
        # A phone acts only for the person signed in to it (the demo users' password is "demo").
        assert client.post(f"/dev/inbox/phone/{user.pk}/unlock/", {"password": "demo"}).status_code == 302
        for case in last_cases[::4]:
            before = DevInboxMessage.objects.count()
            started = time.perf_counter()
            client.post(f"/dev/inbox/phone/{user.pk}/ask/", {"text": case["text"]}, headers={"HX-Request": "true"})
            inbox.append(time.perf_counter() - started)
            assert DevInboxMessage.objects.count() == before + 1, "the reply card did not arrive"

    print(f"dev inbox, message in -> reply card stored ({len(inbox)} questions): "
          f"p50 {statistics.median(inbox) * 1000:.1f} ms, p99 {percentile(inbox, 99) * 1000:.1f} ms")
    print("targets on the frozen held-out set: intent >= 95 %, entities >= 95 %, clarify-correct >= 90 %, "
          "0 decisions from questions, 0 leaks, p99 < 300 ms")
    if args.json:
        main_set = all_figures.get(HOLDOUT2.name) or next(iter(all_figures.values()))
        Path(args.json).write_text(json.dumps({
            **main_set, "sets": all_figures,
            "e2e_p50": statistics.median(inbox) * 1000, "e2e_p99": percentile(inbox, 99) * 1000,
        }))


if __name__ == "__main__":
    main()
