"""Evaluation of the chat bot's parser on the demo data, and the latency of ``ask()``.

    .venv/bin/python bench/bot.py [--file bench/bot_eval.jsonl] [--user wang.wu] [--failures]

Each line of the file is one utterance (zh-Hans, en or mixed, typos included) with its expected
intent and entities; a line with "context" is a follow-up, asked after that question in the same
conversation. Every utterance goes through ``im.bot.services.ask()`` (parser, follow-up context,
selectors, answer, log row) on a fresh SQLite database with the demo world, and the table gives
intent accuracy, entity exact-match (all entities equal, nothing missing, nothing extra) and the
latency of ``ask()`` (p50/p99, after one warm-up question that loads jieba's dictionary), then every
fourth utterance the whole way through the dev inbox (phone form -> ask() -> outbox -> card stored).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(db_dir: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings_test")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{db_dir}/bench.sqlite3")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", default=str(ROOT / "bench" / "bot_eval.jsonl"))
    parser.add_argument("--user", default="wang.wu")
    parser.add_argument("--failures", action="store_true", help="list every utterance that missed")
    parser.add_argument("--json", help="also write the figures to this file (bench/run.py's table)")
    args = parser.parse_args()
    cases = [json.loads(line) for line in Path(args.file).read_text(encoding="utf-8").splitlines() if line.strip()]

    with tempfile.TemporaryDirectory() as tmp:
        setup_django(tmp)
        from django.contrib.auth import get_user_model

        from im.bot.services import ask
        from portal.demo import setup_demo

        setup_demo()
        user = get_user_model().objects.get(username=args.user)
        ask(user, "help", conversation="warm-up")

        by_group: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
        latencies: list[float] = []
        failures = []
        for i, case in enumerate(cases):
            conversation = f"eval-{i}"
            if case.get("context"):
                ask(user, case["context"], conversation=conversation)
            started = time.perf_counter()
            reply = ask(user, case["text"], conversation=conversation)
            latencies.append(time.perf_counter() - started)
            intent_ok = reply.intent == case["intent"]
            entities_ok = intent_ok and reply.entities == case["entities"]
            for group in ("all", f"lang:{case['lang']}", f"intent:{case['intent']}"):
                by_group[group].append((intent_ok, entities_ok))
            if case.get("context"):
                by_group["follow-ups"].append((intent_ok, entities_ok))
            if not entities_ok:
                failures.append((case, reply.intent, reply.entities))

        # The whole way on the dev inbox: POST from a phone -> ask() -> outbox -> card on the phone.
        from django.test import Client
        from django.test.utils import setup_test_environment

        from im.adapters.devinbox.models import DevInboxMessage

        setup_test_environment()  # ALLOWED_HOSTS=testserver
        client = Client()
        inbox: list[float] = []
        for case in cases[::4]:
            before = DevInboxMessage.objects.count()
            started = time.perf_counter()
            client.post(f"/dev/inbox/phone/{user.pk}/ask/", {"text": case["text"]}, headers={"HX-Request": "true"})
            inbox.append(time.perf_counter() - started)
            assert DevInboxMessage.objects.count() == before + 1, "the reply card did not arrive"

    print(f"{'set':<28}{'n':>5}{'intent':>10}{'entities':>10}")
    for group in sorted(by_group, key=lambda g: (g != "all", g)):
        results = by_group[group]
        n = len(results)
        intent = sum(ok for ok, _ in results) / n * 100
        entities = sum(ok for _, ok in results) / n * 100
        print(f"{group:<28}{n:>5}{intent:>9.1f}%{entities:>9.1f}%")
    print()
    print(f"ask() latency over {len(latencies)} questions: p50 {statistics.median(latencies) * 1000:.1f} ms, "
          f"p99 {percentile(latencies, 99) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms")
    print(f"dev inbox, message in -> reply card stored ({len(inbox)} questions): "
          f"p50 {statistics.median(inbox) * 1000:.1f} ms, p99 {percentile(inbox, 99) * 1000:.1f} ms")
    print("targets: intent >= 95 %, entities >= 90 %, p99 < 300 ms")
    if args.json:
        overall = by_group["all"]
        Path(args.json).write_text(json.dumps({
            "utterances": len(overall),
            "intent_accuracy": sum(ok for ok, _ in overall) / len(overall) * 100,
            "entity_accuracy": sum(ok for _, ok in overall) / len(overall) * 100,
            "ask_p50": statistics.median(latencies) * 1000, "ask_p99": percentile(latencies, 99) * 1000,
            "e2e_p50": statistics.median(inbox) * 1000, "e2e_p99": percentile(inbox, 99) * 1000,
        }))
    if args.failures:
        print()
        for case, intent, entities in failures:
            print(f"- {case['text']!r}: expected {case['intent']} {case['entities']}, got {intent} {entities}")


if __name__ == "__main__":
    main()
