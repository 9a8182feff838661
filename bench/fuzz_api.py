"""Fuzz the HTTP API from its own OpenAPI document with schemathesis, in process (ASGI).

    .venv/bin/python bench/fuzz_api.py [--cases 5000] [--model PATH] [--index DIR] [--api-key KEY]
                                       [--rate-limit N] [--negative-share 0.4]

Every operation in /openapi.json gets generated requests: schema-valid ones (positive) and,
for operations that take input, schema-breaking ones (negative). Each reply must pass
schemathesis' checks: no 5xx, a documented status, content type and headers, a body that matches
the documented schema, invalid input refused with a 4xx, and (our variant of "valid input is
accepted") a schema-valid question refused only when nothing is left of it once cleaned.

--cases is the total aimed at; it is shared among the operations that take input (one without
input has exactly one distinct request). Without --index, a keyword-only index is built from
seeds/ into a temporary folder, so no model is needed; --model builds a hybrid one with it.
tests/bot/test_api_fuzz.py runs this script three times, about 1,450 cases in all, and checks what it
prints; run longer here.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import schemathesis  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

from newsqa.index.text import nfc  # noqa: E402

BLANK_QUESTION = "The question is empty"


@dataclass
class FuzzReport:
    cases: collections.Counter[str] = field(default_factory=collections.Counter)  # "POST /ask positive" → n
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    failures: dict[str, str] = field(default_factory=dict)  # one report per distinct kind of failure
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.cases.values())

    def table(self) -> str:
        width = max((len(k) for k in self.cases), default=10)
        lines = [f"{'operation / mode':<{width}}  cases"]
        lines += [f"{name:<{width}}  {n:>5}" for name, n in sorted(self.cases.items())]
        lines.append(f"{'total':<{width}}  {self.total:>5}   in {self.seconds:.1f} s")
        lines.append("statuses: " + ", ".join(f"{s}×{n}" for s, n in sorted(self.statuses.items())))
        lines.append(f"failures: {len(self.failures)}")
        return "\n".join(lines)


def _question_of(case: Any) -> object:
    if isinstance(case.body, dict):
        return case.body.get("question")
    return (case.query or {}).get("q")


def refused_only_when_blank(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schema-valid input is answered, except a question that is empty once cleaned (the schema
    cannot say "not only spaces, control or zero-width characters"), which is a readable 422."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code not in (400, 422):
        return None
    question = _question_of(case)
    error = str((response.json() or {}).get("error", ""))
    if isinstance(question, str) and not nfc(question).split() and error.startswith(BLANK_QUESTION):
        return None
    raise AssertionError(f"Schema-valid request refused with {response.status_code}: {error}")


def _takes_input(operation: Any) -> bool:
    return bool(list(operation.iter_parameters())) or bool(operation.body)


def _run(operation: Any, mode: GenerationMode, examples: int, report: FuzzReport) -> bool:
    """Run up to `examples` cases; False when no case of this mode exists for the operation."""
    label = f"{operation.label} {mode.value}"

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def one(case: Any) -> None:
        report.cases[label] += 1
        response = case.call()
        report.statuses[response.status_code] += 1
        try:
            case.validate_response(
                response,
                excluded_checks=[positive_data_acceptance],
                additional_checks=[refused_only_when_blank],
            )
        except BaseException as exc:  # FailureGroup is a BaseExceptionGroup
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            kinds = ",".join(sorted({type(e).__name__ for e in getattr(exc, "exceptions", [exc])}))
            report.failures.setdefault(f"{label}: {kinds}", str(exc)[:3000])

    try:
        # Quiet: hypothesis prints a reproduction seed when it gives up, which here is expected.
        with contextlib.redirect_stdout(io.StringIO()):
            one()
    except Unsatisfiable:
        return False  # no schema-breaking request exists (e.g. a free-form path segment)
    return True


def use_api_key(schema: Any, api_key: str) -> None:
    """Send the right key with every case, except those generated to lack or break it."""

    @schema.auth(refresh_interval=None)
    class Bearer:
        def get(self, case: Any, context: Any) -> str:
            return api_key

        def set(self, case: Any, data: str, context: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def fuzz(app: Any, cases: int = 1000, negative_share: float = 0.4, api_key: str | None = None) -> FuzzReport:
    """Fuzz every operation of `app` (an ASGI app serving /openapi.json); about `cases` requests."""
    started = time.perf_counter()
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    if api_key:
        use_api_key(schema, api_key)
    operations = [result.ok() for result in schema.get_all_operations()]
    with_input = [op for op in operations if _takes_input(op)] or operations
    per_operation = max(1, cases // len(with_input))
    negative = round(per_operation * negative_share)
    report = FuzzReport()
    for operation in operations:
        if operation in with_input:
            # Negative first: where none can exist, the positive run gets its share.
            ran = bool(negative) and _run(operation, GenerationMode.NEGATIVE, negative, report)
            _run(operation, GenerationMode.POSITIVE, per_operation - (negative if ran else 0), report)
        else:
            _run(operation, GenerationMode.POSITIVE, 5, report)
    report.seconds = time.perf_counter() - started
    return report


def _service(index: Path | None, model: str | None) -> Any:
    from newsqa.index.build import build_index
    from newsqa.retrieval.service import QAService, ServiceConfig

    if index is None:
        index = Path(tempfile.mkdtemp(prefix="newsqa-fuzz-")) / "index"
        embedder = None
        if model:
            from newsqa.index.embedding.embedder import SentenceTransformerEmbedder

            embedder = SentenceTransformerEmbedder(model)
        build_index(REPO / "seeds", index, embedder)
    service = QAService(ServiceConfig(index_dir=index, model=model or "none"))
    service.warm_up()
    return service


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=5000, help="requests to generate in all")
    parser.add_argument("--negative-share", type=float, default=0.4, help="share of schema-breaking requests")
    parser.add_argument("--index", type=Path, help="an index root to serve (default: build one from seeds/)")
    parser.add_argument("--model", help="embedding model for a hybrid index (default: keyword-only)")
    parser.add_argument("--api-key", help="serve with this API key and send it with every request")
    parser.add_argument("--rate-limit", type=int, default=0, help="NEWSQA_HTTP_RATE_LIMIT for the app (0 = off)")
    args = parser.parse_args()

    from newsqa.bot.http import create_app
    from newsqa.bot.settings import Settings

    settings_ = Settings(
        api_key=args.api_key,
        reload_interval=0,
        telegram_webhook_path=None,
        http_rate_limit=args.rate_limit,
    )
    app = create_app(settings_, _service(args.index, args.model))
    report = fuzz(app, args.cases, args.negative_share, args.api_key)
    print(report.table())
    for kind, text in report.failures.items():
        print(f"\n=== {kind}\n{text}")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
