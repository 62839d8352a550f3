"""Sources and ingestion jobs of an assistant (manage access).

Adding a source or uploading files answers ``202`` with the job at once; the ingestion runs in
the background (threads of this process, or ``assistant worker`` processes when Redis is
configured) and ``GET .../jobs/{job_id}`` follows it. Uploads are streamed to the data dir in
chunks, each file refused with ``413`` past ASSISTANT_MAX_FILE_BYTES and with ``415`` when its
content is not a kind of document we read, before any job is queued.
"""

from __future__ import annotations

import re
import shutil
import unicodedata
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, Depends, Query, Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from assistant.api.deps import CoreDep, ManageAccess
from assistant.api.problems import error_responses
from assistant.api.sources_schemas import (
    JobList,
    JobPublic,
    SourceCreate,
    SourceList,
    SourceRemoved,
    SourceSummaryPublic,
)
from assistant.core import Assistant
from assistant.database.models import new_id
from assistant.errors import (
    BlockedURLError,
    FetchError,
    InvalidInputError,
    NotFoundError,
    TooLargeError,
    UnsupportedContentError,
)
from assistant.jobs.queue import JobQueue, open_job_queue
from assistant.jobs.runner import upload_dir
from assistant.jobs.store import JobSpec, JobStore
from connectors.files import sniff_kind
from connectors.netguard import check_url, parse_http_url
from connectors.sources import source_key

__all__ = ["MAX_UPLOAD_FILES", "get_job_queue", "router", "safe_file_name"]

MAX_UPLOAD_FILES = 100
"""Files accepted in one upload."""

_UNSAFE_CHARACTERS = re.compile(r"[^\w.\- ]+")
_MAX_NAME_CHARACTERS = 120
_SITEMAP_NAME = re.compile(r"sitemap[^/]*\.xml(?:\.gz)?$", re.IGNORECASE)
_UNBOUNDED_BODY = 1 << 50
_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "files": {"type": "array", "items": {"type": "string", "format": "binary"}}
                },
                "required": ["files"],
            }
        }
    },
}

# Past this an offset would skip every job any assistant could hold; the bound keeps the
# value within what the database's integers take.
_MAX_OFFSET = 1_000_000

router = APIRouter(
    prefix="/api/assistants/{name}",
    tags=["sources"],
    responses=error_responses(401, 403, 404, 422, 429, 503),
)


async def get_job_queue(request: Request) -> JobQueue:
    """The application's job queue (``app.state.job_queue``, set up by the lifespan); opened
    here, with the jobs a previous process left unfinished put back, if it was not."""
    state = request.app.state
    queue: JobQueue | None = getattr(state, "job_queue", None)
    if queue is None:
        queue = open_job_queue(state.core)
        state.job_queue = queue  # before the first await, so concurrent requests share it
        await queue.recover()
    return queue


QueueDep = Annotated[JobQueue, Depends(get_job_queue)]


@router.post("/sources", status_code=202, responses=error_responses(400, 413))
async def add_source(
    name: str, body: SourceCreate, _caller: ManageAccess, core: CoreDep, queue: QueueDep
) -> JobPublic:
    """Ingest a page, a sitemap or a site (crawl) in the background."""
    url = source_key(body.url)
    if body.kind == "sitemap" and not _SITEMAP_NAME.search(PurePosixPath(url.split("?")[0]).name):
        raise InvalidInputError(
            "a sitemap's file name must contain 'sitemap' and end in .xml or .xml.gz "
            "(e.g. https://example.com/sitemap.xml)"
        )
    await run_in_threadpool(_check_reachable, url, core)
    spec = JobSpec(
        sources=(url,),
        crawl=body.kind == "crawl",
        max_pages=body.max_pages,
        max_depth=body.max_depth if body.max_depth is not None else 3,
    )
    job = await run_in_threadpool(JobStore(core.database).create, name, body.kind, spec)
    await queue.enqueue(job.id)
    return JobPublic.of(job)


def _check_reachable(url: str, core: Assistant) -> None:
    """Refuse a malformed URL or one the address guard blocks; a host that does not resolve
    now is left to the job, which reports it."""
    parse_http_url(url)
    try:
        check_url(url, core.settings.fetch_policy())
    except BlockedURLError:
        raise
    except FetchError:
        pass


@router.post(
    "/sources/upload",
    status_code=202,
    responses=error_responses(400, 413, 415),
    openapi_extra={"requestBody": _UPLOAD_BODY},
    # The application's limit is for JSON bodies; this route counts and limits its own bytes
    # (per file, and in all) as they stream in.
    max_body_size=_UNBOUNDED_BODY,
)
async def upload_sources(
    name: str, request: Request, _caller: ManageAccess, core: CoreDep, queue: QueueDep
) -> JobPublic:
    """Ingest uploaded files (PDF, Word .docx, Markdown, HTML, text) in the background.

    Send them as ``multipart/form-data`` file fields (any field name, e.g. ``files``).
    """
    job_id = new_id()
    folder = upload_dir(core.settings.data_dir, job_id)
    try:
        names = await _receive_files(request, folder, core.settings.max_file_bytes)
        await run_in_threadpool(_check_kinds, folder, names)
        job = await run_in_threadpool(
            JobStore(core.database).create,
            name,
            "upload",
            JobSpec(files=tuple(names)),
            job_id=job_id,
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    await queue.enqueue(job.id)
    return JobPublic.of(job)


@router.get("/sources")
async def list_sources(name: str, _caller: ManageAccess, core: CoreDep) -> SourceList:
    """What has been ingested, by source."""
    return SourceList(sources=await run_in_threadpool(_sources, core, name))


def _sources(core: Assistant, name: str) -> list[SourceSummaryPublic]:
    try:
        summaries = core.sources(kb=name)
    except NotFoundError:
        if core.registry.exists(name):
            return []  # an assistant with nothing ingested yet
        raise
    return [SourceSummaryPublic.of(summary) for summary in summaries]


@router.delete("/sources")
async def delete_source(
    name: str,
    _caller: ManageAccess,
    core: CoreDep,
    source: Annotated[str, Query(min_length=1, max_length=4096)],
) -> SourceRemoved:
    """Remove a source (or one document, by its URL) and its chunks."""
    removed = await run_in_threadpool(lambda: core.forget(source, kb=name))
    return SourceRemoved(removed_chunks=removed)


@router.post("/sources/resync", status_code=202)
async def resync_sources(
    name: str, _caller: ManageAccess, core: CoreDep, queue: QueueDep
) -> JobPublic:
    """Fetch every known source again; unchanged pages are skipped, changed ones replaced and
    vanished ones removed."""
    await run_in_threadpool(lambda: core.sources(kb=name))  # 404 for an unknown assistant
    job = await run_in_threadpool(JobStore(core.database).create, name, "resync", JobSpec())
    await queue.enqueue(job.id)
    return JobPublic.of(job)


@router.get("/jobs")
async def list_jobs(
    name: str,
    _caller: ManageAccess,
    core: CoreDep,
    _queue: QueueDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=_MAX_OFFSET)] = 0,
) -> JobList:
    """The assistant's ingestion jobs, newest first."""
    jobs = await run_in_threadpool(
        lambda: JobStore(core.database).list_jobs(name, limit=limit, offset=offset)
    )
    return JobList(jobs=[JobPublic.of(job) for job in jobs])


@router.get("/jobs/{job_id}")
async def get_job(
    name: str, job_id: str, _caller: ManageAccess, core: CoreDep, _queue: QueueDep
) -> JobPublic:
    """One job: status, progress and, once finished, the outcome of every document."""
    job = await run_in_threadpool(JobStore(core.database).get, name, job_id)
    return JobPublic.of(job)


@router.delete("/jobs/{job_id}", responses=error_responses(409))
async def cancel_job(
    name: str, job_id: str, _caller: ManageAccess, core: CoreDep, _queue: QueueDep
) -> JobPublic:
    """Cancel a queued or running job (``409 conflict`` once it has finished).

    A queued job never starts; a running one stops at its next document. What it ingested
    before stays: cancelling removes nothing (delete the source for that).
    """
    job = await run_in_threadpool(JobStore(core.database).cancel, name, job_id)
    return JobPublic.of(job)


# Uploads -------------------------------------------------------------------------------------


def safe_file_name(raw: str) -> str:
    """A file name safe to create: no folders, no hidden or odd characters, bounded length.

    >>> safe_file_name("../../etc/passwd")
    'passwd'
    >>> safe_file_name("C:\\\\Users\\\\me\\\\Price list (2024).md")
    'Price list _2024_.md'
    """
    base = unicodedata.normalize("NFKC", raw.replace("\\", "/").rsplit("/", 1)[-1])
    base = _UNSAFE_CHARACTERS.sub("_", base).strip(" .")
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    suffix = suffix[:16]
    stem = stem[: _MAX_NAME_CHARACTERS - len(suffix) - 1].strip(" .") or "upload"
    return f"{stem}.{suffix}" if suffix else stem


async def _receive_files(request: Request, folder: Path, max_file_bytes: int) -> list[str]:
    """Stream the multipart body's files into ``folder``; return their (safe) names."""
    media_type, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise UnsupportedContentError(
            "request", "send the files as multipart/form-data file fields"
        )
    limit = MAX_UPLOAD_FILES * (max_file_bytes + 4096)
    too_large = TooLargeError("request", "the upload is larger than the limit for one request")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    receiver = _FileReceiver(folder, max_file_bytes)
    received = 0
    try:
        parser = MultipartParser(boundary, receiver.callbacks())
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise too_large
            if chunk:
                await run_in_threadpool(parser.write, chunk)
        parser.finalize()
    except FormParserError as exc:
        raise InvalidInputError(f"the multipart body is malformed: {exc}") from exc
    finally:
        receiver.close()
    if not receiver.complete:
        raise InvalidInputError("the multipart body ends before its closing boundary")
    if not receiver.names:
        raise InvalidInputError("no files in the upload; send them as multipart file fields")
    return receiver.names


def _check_kinds(folder: Path, names: list[str]) -> None:
    """Refuse an empty file or one whose content is not a document kind we read."""
    for file_name in names:
        data = (folder / file_name).read_bytes()
        if not data.strip():
            raise InvalidInputError(f"{file_name} is empty")
        sniff_kind(data, name_hint=file_name, source=file_name)


class _FileReceiver:
    """Multipart callbacks that write each file part to disk as it arrives."""

    def __init__(self, folder: Path, max_file_bytes: int) -> None:
        self.folder = folder
        self.max_file_bytes = max_file_bytes
        self.names: list[str] = []
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self._file: BinaryIO | None = None
        self._size = 0
        self.complete = False

    def callbacks(self) -> Any:
        """The callbacks, by the names the parser calls them."""
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self.close,
            "on_end": self._end,
        }

    def _end(self) -> None:
        self.complete = True

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.strip().lower()] = self._value.strip()
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition"))
        raw_name = options.get(b"filename")
        if raw_name is None:
            return  # a plain form field: not a file, ignored
        if len(self.names) >= MAX_UPLOAD_FILES:
            raise InvalidInputError(f"at most {MAX_UPLOAD_FILES} files per upload")
        file_name = self._unique(safe_file_name(raw_name.decode("utf-8", "replace")))
        self.folder.mkdir(parents=True, exist_ok=True)
        self._file = (self.folder / file_name).open("xb")
        self._size = 0
        self.names.append(file_name)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is None:
            return
        self._size += end - start
        if self._size > self.max_file_bytes:
            raise TooLargeError(
                self.names[-1],
                f"the file is over the {self.max_file_bytes}-byte limit (ASSISTANT_MAX_FILE_BYTES)",
            )
        self._file.write(data[start:end])

    def close(self) -> None:
        """Close the file being written, if any."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _unique(self, file_name: str) -> str:
        stem, dot, suffix = file_name.rpartition(".")
        if not dot:
            stem, suffix = file_name, ""
        candidate, number = file_name, 1
        while candidate in self.names:
            number += 1
            candidate = f"{stem}-{number}.{suffix}" if suffix else f"{stem}-{number}"
        return candidate
