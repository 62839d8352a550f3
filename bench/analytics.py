"""Analytics at volume: N synthetic turns over M conversations in a real database.

Turns are written in bulk (their questions drawn from 40 topics x 5 phrasings, a quarter of
them declined, some rated); then the per-turn insights are computed once (question vectors,
groundedness, pages) -- or, with ``--synthetic-vectors``, written directly with synthetic
question vectors -- and the questions are clustered fully. 1,000 more turns arrive, their
insights are computed and they join the stored clusters incrementally; the background refresh
(``bring_up_to_date``) builds the hourly and daily totals. Each dashboard endpoint is timed as
its route computes it (``build_report`` without drill-down ids, then the JSON body or the CSV),
``--runs`` times, p50 and p99. The cost recording adds to a chat turn is
``ConversationStore.record`` with a realistic trace (20 candidates, 5 sources) against the same
turn without its trace, alternated in one run.

    python bench/analytics.py [--turns 2000 --conversations 200] [--database-url URL] [--json FILE]
    python bench/analytics.py --turns 100000 --conversations 10000 --synthetic-vectors
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from rich.console import Console
from sqlalchemy import func, insert, select, update

from assistant.analytics import InsightEncoders, build_report, gaps_csv, refresh_insights
from assistant.analytics.insights import mark_reasked, question_hash
from assistant.analytics.period import Period, period_from
from assistant.analytics.report import AnalyticsOptions, bring_up_to_date
from assistant.analytics.stored_clusters import update_clusters
from assistant.api.analytics_schemas import AnalyticsPublic
from assistant.chat.conversations import ConversationStore, NewTurn
from assistant.chat.events import Citation, Source, Usage
from assistant.database.analytics_models import TurnInsightRow, TurnPageRow
from assistant.database.engine import Database
from assistant.database.models import ConversationRow, FeedbackRow, TurnRow
from assistant.database.rollup_models import invalidate_assistant
from assistant.database.unresolved import recount_unresolved
from assistant.knowledge.encoder import TransformerEncoder
from bench.common import machine_facts, percentile, table, write_json

SUBJECTS = [
    "refunds",
    "passwords",
    "invoices",
    "single sign-on",
    "data export",
    "API limits",
    "team seats",
    "billing dates",
    "two-factor login",
    "webhooks",
    "custom domains",
    "file uploads",
    "audit logs",
    "mobile app",
    "dark mode",
    "integrations with Slack",
    "student discounts",
    "account deletion",
    "GDPR requests",
    "language settings",
    "email notifications",
    "calendar sync",
    "offline mode",
    "keyboard shortcuts",
    "browser support",
    "backups",
    "uptime",
    "support hours",
    "trial length",
    "plan upgrades",
    "plan downgrades",
    "VAT",
    "receipts",
    "guest users",
    "permissions",
    "templates",
    "search filters",
    "import from CSV",
    "time zones",
    "printing",
]
PHRASINGS = [
    "How do {s} work?",
    "Can you explain {s}?",
    "I have a question about {s}",
    "Where do I find {s} in the app?",
    "What are the rules for {s}?",
]


def _source(subject: str, n: int) -> Source:
    text = f"This page explains {subject}. Everything about {subject} is configured in Settings."
    return Source(
        n,
        f"{subject}-{n}",
        subject.title(),
        f"https://help.example.com/{subject.replace(' ', '-')}",
        (),
        text,
        0.7,
    )


def _trace(subject: str) -> dict[str, object]:
    return {
        "candidates": [
            {
                "chunk_id": f"c{i}",
                "url": f"https://help.example.com/{subject.replace(' ', '-')}/{i}",
                "dense_rank": i + 1,
                "dense_score": 0.5,
                "late_interaction_rank": i + 1,
                "late_interaction_score": 0.6 - i * 0.01,
                "lexical_rank": None,
                "lexical_score": None,
                "rank": i + 1,
                "score": 0.6 - i * 0.01,
            }
            for i in range(20)
        ],
        "timings_ms": {"encode": 8.0, "recall": 4.0, "rerank": 6.0},
    }


def populate(
    database: Database, turns: int, conversations: int, period: Period, *, first: int = 0
) -> None:
    """Write ``turns`` turns over ``conversations`` new conversations in bulk, across
    ``period`` (conversation ids numbered from ``first``)."""
    generator = random.Random(first)
    span = period.length.total_seconds()
    conversation_ids = [f"{first + index:032x}" for index in range(conversations)]
    with database.session() as session:
        session.add_all(
            ConversationRow(
                id=cid, assistant="bench", visitor=f"visitor-{i % (conversations // 2 + 1)}"
            )
            for i, cid in enumerate(conversation_ids)
        )
    positions = dict.fromkeys(conversation_ids, 0)
    batch: list[TurnRow] = []
    for index in range(turns):
        subject = SUBJECTS[generator.randrange(len(SUBJECTS))]
        question = PHRASINGS[generator.randrange(len(PHRASINGS))].format(s=subject)
        declined = generator.random() < 0.25
        conversation = conversation_ids[index % conversations]
        positions[conversation] += 1
        sources = [] if declined else [_source(subject, 1)]
        batch.append(
            TurnRow(
                conversation_id=conversation,
                assistant="bench",
                position=positions[conversation],
                question=question,
                standalone_question=question,
                answer="" if declined else f"This page explains {subject}. [1]",
                sources=[s.__dict__ | {"heading_path": []} for s in sources]
                if False
                else [
                    {
                        "n": s.n,
                        "chunk_id": s.chunk_id,
                        "title": s.title,
                        "url": s.url,
                        "heading_path": [],
                        "text": s.text,
                        "score": s.score,
                        "chunk_ids": [],
                    }
                    for s in sources
                ],
                citations=[
                    {"n": 1, "title": s.title, "url": s.url, "quote": s.text[:30]} for s in sources
                ],
                trace=_trace(subject),
                provider="openai",
                model="gpt-4o-mini",
                input_tokens=900,
                output_tokens=120,
                cost_usd=0.0002,
                timings_ms={
                    "search": generator.uniform(20, 60),
                    "answer": generator.uniform(300, 900),
                },
                outcome="no_answer" if declined else "answered",
                top_score=0.3 if declined else 0.7,
                created_at=period.since + timedelta(seconds=generator.random() * span),
            )
        )
        if len(batch) == 5000 or index == turns - 1:
            with database.session() as session:
                session.add_all(batch)
                session.flush()
                session.add_all(
                    FeedbackRow(turn_id=row.id, assistant="bench", rating=1 if row.id % 2 else -1)
                    for row in batch
                    if row.id % 10 == 0
                )
            batch = []
    _after_bulk_write(database, conversation_ids)


def _after_bulk_write(database: Database, conversation_ids: list[str]) -> None:
    """What the conversation store keeps as it stores turns one by one: each conversation's
    start and unresolved turns; and the analytics totals to build again."""
    started = (
        select(func.min(TurnRow.created_at))
        .where(TurnRow.conversation_id == ConversationRow.id)
        .correlate(ConversationRow)
        .scalar_subquery()
    )
    with database.session() as session:
        for start in range(0, len(conversation_ids), 500):
            chunk = conversation_ids[start : start + 500]
            session.execute(
                update(ConversationRow)
                .where(ConversationRow.id.in_(chunk))
                .values(started_at=started)
            )
        recount_unresolved(session, conversation_ids)
        invalidate_assistant(session, "bench")


def recording_ms(database: Database, samples: int = 100) -> tuple[float, float]:
    """p50 of storing one turn through the conversation store, with the retrieval trace that
    analytics reads (20 candidates, 5 sources) and without it, alternated in one run: the
    difference is what recording for analytics adds to a chat turn."""
    store = ConversationStore(database)
    conversation = store.start("bench-record")
    sources = tuple(_source(subject, n + 1) for n, subject in enumerate(SUBJECTS[:5]))
    times: dict[bool, list[float]] = {True: [], False: []}
    for index in range(samples):
        for traced in (index % 2 == 0, index % 2 == 1):
            turn = NewTurn(
                question=f"question {index}",
                standalone_question=f"question {index}",
                answer="answer [1]",
                sources=sources,
                citations=(Citation(1, "t", sources[0].url, "q"),),
                trace=_trace("refunds") if traced else {},
                provider="openai",
                model="gpt-4o-mini",
                usage=Usage(900, 120),
                cost_usd=0.0002,
                timings_ms={"search": 30.0},
                outcome="answered",
                top_score=0.7,
            )
            started = time.perf_counter()
            store.record("bench-record", conversation, turn)
            times[traced].append((time.perf_counter() - started) * 1000)
    return percentile(times[True], 50), percentile(times[False], 50)


def synthetic_insights(database: Database, model_id: str) -> int:
    """Insight rows written directly: each question's vector is its subject's direction plus
    its phrasing's and some noise (unit norm), its pages are its sources and the top of its
    trace. Stands in for the encoder where 100k questions would take too long to embed."""
    generator = np.random.default_rng(0)
    dimension = 384
    subjects = {s: generator.normal(size=dimension) for s in SUBJECTS}
    phrasings = [generator.normal(size=dimension) * 0.35 for _ in PHRASINGS]
    with database.session() as session:
        known = set(session.scalars(select(TurnInsightRow.turn_id)).all())
        rows = session.execute(
            select(
                TurnRow.id,
                TurnRow.question,
                TurnRow.conversation_id,
                TurnRow.position,
                TurnRow.created_at,
                TurnRow.outcome,
            ).where(TurnRow.assistant == "bench")
        ).all()
    insights, pages = [], []
    for row in rows:
        if row.id in known:
            continue
        subject = next(s for s in SUBJECTS if s in row.question)
        phrasing = next(i for i, p in enumerate(PHRASINGS) if p.split("{s}")[0] in row.question)
        vector = subjects[subject] + phrasings[phrasing] + generator.normal(size=dimension) * 0.2
        vector /= np.linalg.norm(vector)
        url = f"https://help.example.com/{subject.replace(' ', '-')}"
        answered = row.outcome == "answered"
        insights.append(
            {
                "turn_id": row.id,
                "assistant": "bench",
                "question_hash": question_hash(row.question),
                "model_id": model_id,
                "question_vector": vector.astype(np.float16).tobytes(),
                "groundedness": 1.0 if answered else None,
                "sentences": 1 if answered else 0,
                "context_pages": [[url, subject.title()]] if answered else [],
                "cited_urls": [url] if answered else [],
                "computed_at": row.created_at,
                "turn_created_at": row.created_at,
                "conversation_id": row.conversation_id,
                "position": row.position,
                "reasked": False,
                "cluster": None,
                "clustering_version": None,
            }
        )
        if answered:
            pages.append(
                {
                    "turn_id": row.id,
                    "url": url,
                    "title": subject.title(),
                    "in_context": True,
                    "cited": True,
                    "nearest_score": None,
                }
            )
        pages.extend(
            {
                "turn_id": row.id,
                "url": f"{url}/{i}",
                "title": "",
                "in_context": False,
                "cited": False,
                "nearest_score": 0.6 - i * 0.01,
            }
            for i in range(3)
        )
    for start in range(0, len(insights), 5000):
        with database.session() as session:
            session.execute(insert(TurnInsightRow), insights[start : start + 5000])
    for start in range(0, len(pages), 10000):
        with database.session() as session:
            session.execute(insert(TurnPageRow), pages[start : start + 10000])
    conversations = {row["conversation_id"] for row in insights}
    mark_reasked(database, "bench", conversations)
    _after_bulk_write(database, sorted(conversations))
    return len(insights)


def endpoint_timings(
    database: Database, encoders: InsightEncoders, period: Period, runs: int
) -> dict[str, list[float]]:
    """Milliseconds per run of what each dashboard endpoint computes (as the routes do: no
    drill-down ids), insights and totals already stored: the report as JSON, the content
    gaps as CSV."""
    options = AnalyticsOptions(turn_ids=0)
    endpoints = {
        "analytics_json": lambda report: AnalyticsPublic.from_report(report).model_dump_json(),
        "gaps_csv": lambda report: gaps_csv(report.content_gaps),
    }
    timings: dict[str, list[float]] = {name: [] for name in endpoints}
    for _ in range(runs):
        for name, render in endpoints.items():
            started = time.perf_counter()
            render(build_report(database, "bench", period, encoders=encoders, options=options))
            timings[name].append((time.perf_counter() - started) * 1000)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument(
        "--database-url", help="a PostgreSQL URL (default: a temporary SQLite file)"
    )
    parser.add_argument("--runs", type=int, default=20, help="runs to time per endpoint")
    parser.add_argument(
        "--synthetic-vectors",
        action="store_true",
        help="write the insight rows with synthetic question vectors instead of encoding",
    )
    parser.add_argument("--json", type=Path, dest="json_file")
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as scratch:
        url = args.database_url or f"sqlite:///{scratch}/bench.sqlite3"
        database = Database.open(url)
        period = period_from("30d")
        both = Period(period.previous().since, period.until)
        started = time.perf_counter()
        populate(database, args.turns, args.conversations, period)
        write_s = time.perf_counter() - started
        encoder = TransformerEncoder()
        encoders = InsightEncoders(encoder, encoder)

        def analyse() -> int:
            if args.synthetic_vectors:
                return synthetic_insights(database, encoder.model_id)
            return refresh_insights(database, "bench", both, encoders)

        started = time.perf_counter()
        refreshed = analyse()
        insights_s = time.perf_counter() - started
        full = update_clusters(database, "bench", encoder.model_id, full=True)
        # 1,000 new turns (100 new conversations): their insights, then their clusters.
        populate(database, 1000, 100, period, first=args.conversations)
        started = time.perf_counter()
        new_insights = analyse()
        new_insights_s = time.perf_counter() - started
        joined = update_clusters(database, "bench", encoder.model_id)
        # The background refresh builds the hourly and daily totals the report sums.
        started = time.perf_counter()
        bring_up_to_date(database, "bench", both, encoders)
        totals_s = time.perf_counter() - started
        timings = endpoint_timings(database, encoders, period, args.runs)
        report = build_report(database, "bench", period, encoders=encoders)
        record_ms, untraced_ms = recording_ms(database)
        database.close()
    results = {
        "turns": args.turns,
        "conversations": args.conversations,
        "database": "postgresql" if args.database_url else "sqlite",
        "question_vectors": "synthetic" if args.synthetic_vectors else encoder.model_id,
        "write_s": round(write_s, 2),
        "insights_s": round(insights_s, 2),
        "insights_turns": refreshed,
        "clustering_full_s": round(full.seconds, 3),
        "clusters": full.clusters,
        "new_turns": new_insights,
        "new_insights_s": round(new_insights_s, 2),
        "clustering_incremental_s": round(joined.seconds, 3),
        "incremental_was_full": joined.full,
        "totals_build_s": round(totals_s, 2),
        **{
            f"{name}_{quantile}_ms": round(percentile(times, int(quantile[1:])), 1)
            for name, times in timings.items()
            for quantile in ("p50", "p99")
        },
        "report_runs": args.runs,
        "report_clusters": len(report.top_questions),
        "report_gaps": len(report.content_gaps),
        "report_pending_turns": report.pending_turns,
        "record_turn_p50_ms": round(record_ms, 2),
        "record_turn_without_trace_p50_ms": round(untraced_ms, 2),
        "record_trace_added_ms": round(record_ms - untraced_ms, 2),
        "machine": machine_facts(),
    }
    rows = [[key, str(value)] for key, value in results.items() if key != "machine"]
    console.print(table("analytics", ["measure", "value"], rows))
    if args.json_file:
        write_json(args.json_file, results)


if __name__ == "__main__":
    main()
