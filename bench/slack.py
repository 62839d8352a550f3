"""Slack bot latency: from a signed event reaching the app to its acknowledgement, and to the
first answer text in the thread.

The real app (``create_app`` under uvicorn, Slack's events at ``/slack/events``) answers mentions
about the bundled help centre with the extractive provider; Slack's Web API is played by a
local server that timestamps every call it receives. Events are sent one after another, each
in its own channel, and each answer is awaited before the next event, so the numbers are a
single conversation's, not a load test's. Slack retries an event not acknowledged within 3 s;
the goal for the acknowledgement is 300 ms at p99.

    python bench/slack.py [--events 50] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from rich.console import Console  # noqa: E402
from slack_sdk.signature import SignatureVerifier  # noqa: E402

from assistant.api import create_app  # noqa: E402
from assistant.core import Assistant  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from bench.common import Latency, load_average, machine_facts, table, write_json  # noqa: E402
from tests.api.conftest import HELP_CENTRE_PAGES, serving  # noqa: E402
from tests.slack.fake_slack import BOT_USER, TEAM, FakeSlackServer  # noqa: E402

SECRET = "bench-signing-secret"
QUESTIONS = (
    "Which plans include the Slack integration?",
    "How do I reset my password?",
    "How do refunds work?",
    "How do I invite my team?",
    "Is my data encrypted?",
)
ACK_GOAL_MS = 300.0

console = Console()


def _signed_event(channel: str, text: str, ts: str, number: int) -> tuple[str, dict[str, str]]:
    body = json.dumps(
        {
            "team_id": TEAM,
            "api_app_id": "A0APP",
            "type": "event_callback",
            "event_id": f"EvBENCH{number:06d}{int(time.time())}",
            "event_time": int(time.time()),
            "event": {
                "type": "app_mention",
                "user": "U0ASKER",
                "text": f"<@{BOT_USER}> {text}",
                "ts": ts,
                "channel": channel,
            },
        }
    )
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(
            timestamp=stamp, body=body
        ),
    }
    return body, headers


def run(events: int) -> dict[str, object]:
    """Send ``events`` mentions; returns the acknowledgement and first-text latencies."""
    with tempfile.TemporaryDirectory() as data, FakeSlackServer() as slack:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            data_dir=Path(data),
            slack_api_url=slack.url,
            slack_assistant="harbor",
            **{
                "SLACK_BOT_TOKEN": SecretStr("xoxb-bench"),
                "SLACK_SIGNING_SECRET": SecretStr(SECRET),
            },
        )
        core = Assistant(settings)
        try:
            core.ingest([str(path) for path in HELP_CENTRE_PAGES], kb="harbor")
            core.ask(QUESTIONS[0], kb="harbor")  # load the model before timing
            ack_ms: list[float] = []
            first_text_ms: list[float] = []
            finished_ms: list[float] = []
            with serving(create_app(settings, core=core)) as url, httpx.Client() as client:
                for number in range(events):
                    channel = f"CBENCH{number:04d}"
                    body, headers = _signed_event(
                        channel, QUESTIONS[number % len(QUESTIONS)], f"{time.time():.6f}", number
                    )
                    started = time.monotonic()
                    response = client.post(f"{url}/slack/events", content=body, headers=headers)
                    acknowledged = time.monotonic()
                    assert response.status_code == 200, response.text
                    slack.wait_for(
                        lambda s, c=channel: any(
                            call.method == "chat.update" or call.blocks
                            for call in s.calls(channel=c)
                        )
                    )
                    posts = slack.calls("chat.postMessage", channel=channel)
                    finished = max(call.at for call in slack.calls(channel=channel))
                    ack_ms.append((acknowledged - started) * 1000)
                    first_text_ms.append((posts[0].at - started) * 1000)
                    finished_ms.append((finished - started) * 1000)
        finally:
            core.close()
    ack = Latency.of(ack_ms)
    return {
        "events": events,
        "acknowledgement": asdict(ack),
        "first_text": asdict(Latency.of(first_text_ms)),
        "finished": asdict(Latency.of(finished_ms)),
        "ack_goal_ms": ACK_GOAL_MS,
        "ack_goal_met": ack.p99_ms <= ACK_GOAL_MS,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print (and optionally write) its results."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=50, help="mentions to send (default 50)")
    parser.add_argument("--json", type=Path, help="write the results to this file")
    args = parser.parse_args(argv)
    load_before = load_average()
    results = run(args.events)
    results["machine"] = machine_facts()
    results["load_average"] = {"before": load_before, "after": load_average()}
    rows = []
    for name in ("acknowledgement", "first_text", "finished"):
        latency = results[name]
        assert isinstance(latency, dict)
        rows.append(
            (
                name.replace("_", " "),
                f"{latency['p50_ms']:.1f}",
                f"{latency['p99_ms']:.1f}",
                f"{latency['max_ms']:.1f}",
            )
        )
    console.print(
        table(
            f"Slack: {args.events} mentions",
            ("from the event to", "p50 ms", "p99 ms", "max ms"),
            rows,
        )
    )
    verdict = "met" if results["ack_goal_met"] else "MISSED"
    console.print(f"acknowledgement goal (p99 ≤ {ACK_GOAL_MS:.0f} ms): {verdict}")
    if args.json:
        write_json(args.json, results)
        console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
