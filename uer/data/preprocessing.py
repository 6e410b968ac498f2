"""What preprocess.py does: split the corpus, run worker processes that build instances into shards,
merge the shards into one dataset file.

* The corpus is cut into ``processes_num`` byte ranges on line boundaries; for the document formats
  (bert, albert: blank line between documents) the cuts snap to document starts, so no document is
  split. Worker i reads only its range and writes shard i; shards are merged in order.
* Workers are real processes (``spawn``: the same behaviour on every OS, no inherited state). Each
  rebuilds its tokenizer from paths and seeds its RNGs from ``(seed, worker index)``: the output is
  deterministic for a given ``--seed`` and ``--processes_num``.
* Memory per worker is bounded by ``--docs_buffer_size`` documents (see uer.data.pretrain_instances), whatever
  the corpus size.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterator

from uer.data.dataset import DatasetWriter, merge_shards
from uer.data.instances_base import DocumentBuffer, InstanceBuilder, InstanceConfig
from uer.data.instances_lm import parse_labelled_line
from uer.data.pretrain_instances import str2instances
from uer.data.instances_ernie import CORPUS_FORMATS, ERNIE_LINE_TARGETS, ErnieLineInstances
from uer.data.masking import MaskingConfig
from uer.utils.cleanup import remove_stale_temp_files
from uer.errors import UserError
from uer.utils.io import UTF8_BOM, decode_utf8, line_number_at

PROGRESS_SECONDS = 10.0  # between plain progress lines (UER_PROGRESS_SECONDS overrides)


class PreprocessError(UserError, RuntimeError):
    """A user-facing problem (bad corpus, no instances); preprocess.py prints its message."""


@dataclass(frozen=True)
class PreprocessOptions:
    """Everything a preprocessing run needs (the preprocess.py flags, validated)."""

    corpus_path: str
    dataset_path: str
    target: str
    tokenizer: str = "bert"
    vocab_path: str | None = None
    spm_model_path: str | None = None
    do_lower_case: bool | None = None  # None: from the vocabulary
    merges_path: str | None = None
    processes_num: int = 1
    docs_buffer_size: int = 100000
    seq_length: int = 128
    dup_factor: int = 5
    short_seq_prob: float = 0.1
    full_sentences: bool = False
    seed: int = 7
    dynamic_masking: bool = False
    span_masking: bool = False
    span_geo_prob: float = 0.2
    span_max_length: int = 10
    whole_word_masking: bool = False
    entity_masking: bool = False
    segmenter: str = "jieba"
    entity_dict_path: str | None = None
    sr_max_segments: int = 3
    replace_invalid_utf8: bool = False  # decode bad bytes as U+FFFD instead of stopping (the lines are counted)
    corpus_format: str = "text"  # "ernie": ERNIE 1.0's tokenised lines (uer.data.instances_ernie)

    @property
    def knowledge_masking(self) -> str | None:
        """"entity", "word" or None: the units masking takes whole (uer.text.segment)."""
        return "entity" if self.entity_masking else "word" if self.whole_word_masking else None

    def __post_init__(self) -> None:
        if self.target not in str2instances:
            raise ValueError(f"unknown target {self.target!r}; choose one of {sorted(str2instances)}")
        if self.processes_num < 1:
            raise ValueError(f"processes_num must be >= 1, got {self.processes_num}")
        if self.docs_buffer_size < 1:
            raise ValueError(f"docs_buffer_size must be >= 1, got {self.docs_buffer_size}")
        if not 5 <= self.seq_length <= 65535:
            raise ValueError(f"seq_length must be in [5, 65535], got {self.seq_length}")
        if self.dup_factor < 1:
            raise ValueError(f"dup_factor must be >= 1, got {self.dup_factor}")
        if not 0.0 <= self.short_seq_prob <= 1.0:
            raise ValueError(f"short_seq_prob must be in [0, 1], got {self.short_seq_prob}")
        if self.span_masking and not 0.0 < self.span_geo_prob <= 1.0:
            raise ValueError(f"span_geo_prob must be in (0, 1], got {self.span_geo_prob}")
        if self.span_masking and self.span_max_length < 1:
            raise ValueError(f"span_max_length must be >= 1, got {self.span_max_length}")
        if self.knowledge_masking and self.span_masking:
            raise ValueError("--span_masking and --whole_word_masking/--entity_masking choose different mask units; "
                             "give one of them")
        if self.entity_dict_path and not self.entity_masking:
            raise ValueError("--entity_dict_path lists phrases for --entity_masking; add --entity_masking")
        if self.entity_dict_path and not os.path.isfile(self.entity_dict_path):
            raise ValueError(f"--entity_dict_path: file not found: {self.entity_dict_path}")
        if self.corpus_format not in CORPUS_FORMATS:
            raise ValueError(f"--corpus_format must be one of {', '.join(CORPUS_FORMATS)}, got {self.corpus_format!r}")
        if self.corpus_format == "ernie" and self.target not in ERNIE_LINE_TARGETS:
            raise ValueError(f"--corpus_format ernie writes instances as they are (mlm + sentence-pair label): "
                             f"--target must be one of {', '.join(ERNIE_LINE_TARGETS)}, got {self.target!r}")
        if self.corpus_format == "ernie" and (self.knowledge_masking or self.span_masking):
            raise ValueError("--corpus_format ernie masks whole words by the lines' seg_labels: "
                             "--whole_word_masking/--entity_masking/--span_masking do not apply")
        if not 1 <= self.sr_max_segments <= 4:
            raise ValueError(f"--sr_max_segments must be in [1, 4] (33 orders at 4), got {self.sr_max_segments}")


@dataclass(frozen=True)
class WorkerJob:
    """One worker's share: a byte range of the corpus and where its shard goes (picklable)."""

    options: PreprocessOptions
    masking: MaskingConfig
    worker: int
    start: int
    end: int
    shard_path: str


def split_corpus(path: str | os.PathLike, parts: int, documents: bool) -> list[tuple[int, int]]:
    """Cut a file into ``parts`` byte ranges that start at line starts (document starts if ``documents``).

    Ranges can be empty on small files; together they cover the file exactly once.
    """
    size = os.path.getsize(path)
    cuts = [0]
    with open(path, "rb") as f:
        for i in range(1, parts):
            target = max(size * i // parts, cuts[-1])
            if target >= size:
                cuts.append(size)
                continue
            f.seek(max(target - 1, 0))
            if target > 0:
                f.readline()  # to the first line start >= target
            if documents:
                # To the line after the next blank line: a document start.
                while True:
                    line = f.readline()
                    if not line or not line.strip():
                        break
            cuts.append(max(min(f.tell(), size), cuts[-1]))
    cuts.append(size)
    return [(cuts[i], cuts[i + 1]) for i in range(parts)]


def iter_buffers(path: str | os.PathLike, start: int, end: int, corpus_format: str, encode: Callable[[str], list[int]],
                 docs_buffer_size: int, on_invalid_utf8: Callable[[int], None] | None = None,
                 read: Callable[[int], None] | None = None) -> Iterator[DocumentBuffer]:
    """Tokenized documents of bytes [start, end) of the corpus, ``docs_buffer_size`` documents at a time.

    "documents": one sentence per line, blank line between documents; "lines": one document per line;
    "labelled_lines": ``label<TAB>text`` per line (a ``label<TAB>...`` header line is skipped); "records": one
    record a line (ERNIE's tokenised lines, query-title and query-response TSV), ``encode`` being the kind's line
    parser (uer.data.instances_ernie: a Record of one or two sentences and a label, or None for a header line).
    Sentences and documents without tokens are skipped. A leading UTF-8 byte-order mark is skipped; bytes that
    are not UTF-8 are an error naming the file, line and byte offset (UER-py stopped with a traceback), or,
    with ``on_invalid_utf8``, decoded as U+FFFD after calling it with the line's byte offset. ``read(bytes)``
    is told how far the reading got before each buffer is handed out (progress).
    """
    buf = DocumentBuffer()
    with open(path, "rb") as f:
        f.seek(start)
        pos = start
        for raw in f:
            if pos >= end:
                break
            line_start = pos
            pos += len(raw)
            if line_start == 0 and raw.startswith(UTF8_BOM):  # Excel/Notepad exports begin with one
                raw, line_start = raw[len(UTF8_BOM):], len(UTF8_BOM)
            if on_invalid_utf8 is None:
                text = decode_utf8(raw, path, offset=line_start).strip()
            else:
                try:
                    text = raw.decode("utf-8").strip()
                except UnicodeDecodeError:
                    on_invalid_utf8(line_start)
                    text = raw.decode("utf-8", errors="replace").strip()
            if corpus_format == "lines":
                if text:
                    buf.add_document(encode(text))
            elif corpus_format == "records":
                if text:
                    try:
                        parsed = encode(text)
                    except ValueError as err:
                        raise PreprocessError(str(err), path, line_number_at(path, line_start)) from None
                    if parsed is None:  # a header line
                        continue
                    buf.add_sentence(parsed.a)
                    if parsed.b is not None:
                        buf.add_sentence(parsed.b)
                    buf.add_document([], label=parsed.label)
            elif corpus_format == "labelled_lines":
                if text:
                    try:
                        parsed = parse_labelled_line(text)
                    except ValueError as err:
                        raise PreprocessError(str(err), path, line_number_at(path, line_start)) from None
                    if parsed is not None:
                        buf.add_document(encode(parsed[1]), label=parsed[0])
            elif text:
                buf.add_sentence(encode(text))
                continue
            else:
                buf.end_document()
            if len(buf) >= docs_buffer_size:
                if read is not None:
                    read(pos - start)
                yield buf
                buf = DocumentBuffer()
    buf.end_document()
    if read is not None:
        read(end - start)
    yield buf  # possibly empty: the builder may still hold carried-over tokens


_progress: Any = None  # shared counters: instances of each piece, then bytes read of each (set in each worker)


def _init_worker(progress: Any) -> None:
    global _progress
    _progress = progress


def run_worker(job: WorkerJob, report: Callable[[int], None] | None = None,
               read: Callable[[int], None] | None = None) -> int:
    """Build the instances of one byte range into ``job.shard_path``; returns how many were written."""
    from uer.text.tokenizers import build_tokenizer

    o = job.options
    tokenizer = build_tokenizer(o.tokenizer, vocab_path=o.vocab_path, spm_model_path=o.spm_model_path,
                                do_lower_case=o.do_lower_case, merges_path=o.merges_path)
    builder_cls = str2instances[o.target]
    cfg = InstanceConfig(seq_length=o.seq_length, masking=job.masking, dup_factor=o.dup_factor,
                         short_seq_prob=o.short_seq_prob, full_sentences=o.full_sentences,
                         dynamic_masking=o.dynamic_masking, sr_max_segments=o.sr_max_segments)
    builder: InstanceBuilder
    if o.corpus_format == "ernie":  # ERNIE's lines are instances as they are, written as the --target kind
        builder = ErnieLineInstances(cfg, seed=o.seed, worker=job.worker, with_label=builder_cls.has_label)
    else:
        builder = builder_cls(cfg, seed=o.seed, worker=job.worker)
    encode = tokenizer.encode
    if o.knowledge_masking and builder.uses_masking:
        from uer.text.segment import Segmenter, segmented_encoder

        encode = segmented_encoder(tokenizer.encode, Segmenter(o.segmenter, entities=o.entity_masking,
                                                                entity_dict_path=o.entity_dict_path))
    encode = builder.text_encoder(encode, tokenizer.vocab)
    if report is None and _progress is not None:
        def report(n: int) -> None:
            _progress[job.worker] = n

        def read(n: int) -> None:
            _progress[len(_progress) // 2 + job.worker] = n
    replaced: list[int] = []  # byte offsets of the lines decoded with U+FFFD (--replace_invalid_utf8)
    with DatasetWriter(job.shard_path) as writer:
        if job.end > job.start:
            buffers = iter_buffers(o.corpus_path, job.start, job.end, builder.corpus_format, encode,
                                   o.docs_buffer_size, replaced.append if o.replace_invalid_utf8 else None, read)
            pending = next(buffers)
            for nxt in buffers:  # look one ahead so the builder knows which buffer is the last
                _write(builder, writer, pending, False, report)
                pending = nxt
            _write(builder, writer, pending, True, report)
        if replaced:
            print(f"{o.corpus_path}: {len(replaced)} line(s) with bytes that are not UTF-8 were read with U+FFFD "
                  f"(--replace_invalid_utf8), the first at line {line_number_at(o.corpus_path, replaced[0])}",
                  flush=True)
        return writer.instances


def _write(builder: InstanceBuilder, writer: DatasetWriter, buf: DocumentBuffer, final: bool,
           report: Callable[[int], None] | None) -> None:
    for arrays, n in builder.blocks(buf, final):
        writer.write(arrays, n)
        if report is not None:
            report(writer.instances)


def _log(msg: str) -> None:
    print(msg, flush=True)


def build_dataset(options: PreprocessOptions, log: Callable[[str], None] = _log) -> dict[str, Any]:
    """Run preprocessing end to end; returns the dataset header. Raises PreprocessError on bad input."""
    from uer.text.tokenizers import build_tokenizer

    o = options
    corpus = Path(o.corpus_path)
    if not corpus.is_file():
        raise PreprocessError(f"corpus file not found: {corpus}")
    if corpus.stat().st_size == 0:
        raise PreprocessError(f"corpus file is empty: {corpus}")
    out_path = Path(o.dataset_path)
    if out_path.parent and not out_path.parent.exists():
        raise PreprocessError(f"directory of --dataset_path does not exist: {out_path.parent}")
    tokenizer = build_tokenizer(o.tokenizer, vocab_path=o.vocab_path, spm_model_path=o.spm_model_path,
                                do_lower_case=o.do_lower_case, merges_path=o.merges_path)
    vocab = tokenizer.vocab
    masking = MaskingConfig.from_vocab(vocab, span_masking=o.span_masking, span_geo_prob=o.span_geo_prob,
                                       span_max_length=o.span_max_length)
    builder_cls = str2instances[o.target]
    if not builder_cls.uses_masking and (o.dynamic_masking or o.span_masking):
        log(f"--target {o.target} has no masks: --dynamic_masking/--span_masking do not apply.")
    if o.dynamic_masking and builder_cls.uses_masking and o.dup_factor != 1:
        log(f"--dynamic_masking: masks are drawn by the data loader at training time, so --dup_factor "
            f"{o.dup_factor} is ignored (one copy stored), as in UER-py.")
    if o.knowledge_masking and not builder_cls.uses_masking:
        log(f"--target {o.target} has no masks: --whole_word_masking/--entity_masking do not apply.")
    if o.knowledge_masking and builder_cls.uses_masking and o.segmenter == "jieba":
        from uer.text.segment import _import_jieba

        try:
            _import_jieba()  # fail here, once, rather than in every worker
        except ImportError as err:
            raise PreprocessError(str(err)) from None
    if o.dynamic_masking and o.span_masking and builder_cls.uses_masking:
        log("--dynamic_masking with --span_masking: the span options are recorded in the dataset, but "
            "pass --span_masking to pretrain.py, which draws the masks.")

    remove_stale_temp_files(out_path, log)
    ranges = split_corpus(corpus, o.processes_num,
                          documents=builder_cls.corpus_format == "documents" and o.corpus_format == "text")
    shard_paths = [str(out_path.with_name(f".{out_path.name}.shard-{i}-{os.getpid()}")) for i in range(len(ranges))]
    jobs = [WorkerJob(o, masking, i, s, e, shard_paths[i]) for i, (s, e) in enumerate(ranges)]
    log(f"Building {o.target} instances from {corpus} with {o.processes_num} worker(s) ...")
    t0 = time.perf_counter()
    try:
        counts = _run_jobs(jobs, log)
        total = sum(counts)
        built = [path for path, job in zip(shard_paths, jobs) if job.end > job.start]  # empty parts: no shard
        if total == 0:
            raise PreprocessError(f"no instances could be built from {corpus} (no text, or documents too short "
                                  f"for --target {o.target}); check the corpus format")
        header_fields = {
            "target": o.target,
            "seq_length": o.seq_length,
            "vocab_size": len(vocab),
            "vocab_sha256": vocab.fingerprint(),
            "dynamic_masking": o.dynamic_masking and builder_cls.uses_masking,
            "span_masking": {"enabled": o.span_masking, "geo_prob": o.span_geo_prob,
                             "max_length": o.span_max_length},
            "knowledge_masking": ({"units": o.knowledge_masking, "segmenter": o.segmenter,
                                   "entity_dict_path": o.entity_dict_path}
                                  if o.knowledge_masking and builder_cls.uses_masking else
                                  {"units": "word", "segmenter": "ernie seg_labels", "entity_dict_path": None}
                                  if o.corpus_format == "ernie" else None),
            "corpus_format": o.corpus_format,
            "tokenizer": {"name": o.tokenizer, "vocab_path": o.vocab_path, "spm_model_path": o.spm_model_path,
                          "do_lower_case": tokenizer.do_lower_case},
            "special_ids": {"pad": vocab.pad_id, "unk": vocab.unk_id, "cls": vocab.cls_id, "sep": vocab.sep_id,
                            "mask": vocab.mask_id},
            "dup_factor": 1 if o.dynamic_masking or not builder_cls.uses_masking else o.dup_factor,
            "short_seq_prob": o.short_seq_prob,
            "full_sentences": o.full_sentences,
            **({"sr_max_segments": o.sr_max_segments} if o.target == "sr" else {}),
            "seed": o.seed,
            "processes_num": o.processes_num,
            "docs_buffer_size": o.docs_buffer_size,
            "corpus_path": str(corpus),
            "created_by": "preprocess.py",
        }
        header = merge_shards(built, out_path, header_fields)
    finally:
        for p in shard_paths:  # merge_shards removes them; this covers failures before the merge
            if os.path.exists(p):
                os.remove(p)
    elapsed = time.perf_counter() - t0
    log(f"Wrote {header['instances_num']} instances to {out_path} ({out_path.stat().st_size / 2**20:.1f} MiB) "
        f"in {elapsed:.2f} s ({header['instances_num'] / max(elapsed, 1e-9):,.0f} instances/s).")
    return header


def available_cores() -> int:
    """CPU cores this process may run on (the affinity mask, which containers and taskset narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def plan_processes(jobs: list[WorkerJob], requested: int, cores: int) -> list[list[WorkerJob]]:
    """The pieces each process runs: never more processes than pieces holding text, nor than cores.

    The corpus is still cut into ``--processes_num`` pieces, each built with its own worker seed, so the
    dataset is the same whatever the number of processes that run them; empty pieces are skipped (they
    hold nothing). Pieces are dealt round-robin.
    """
    pieces = [job for job in jobs if job.end > job.start]
    count = max(1, min(len(pieces), cores, requested))
    return [pieces[i::count] for i in range(count)]


def _process_main(jobs: list[WorkerJob], progress: Any, results: Any) -> None:
    """A worker process: builds its pieces, reports ``(piece, count)`` or ``(piece, error)``."""
    from uer.utils.cleanup import die_with_parent

    die_with_parent()
    _init_worker(progress)
    for job in jobs:
        try:
            results.put((job.worker, run_worker(job), None))
        except BaseException as err:  # reported to the parent, which stops the others
            try:
                import pickle

                pickle.dumps(err)
            except Exception:
                err = RuntimeError(f"worker {job.worker}: {type(err).__name__}: {err}")
            results.put((job.worker, 0, err))
            return


def _run_jobs(jobs: list[WorkerJob], log: Callable[[str], None]) -> list[int]:
    """Run the pieces with progress over the corpus bytes read (a bar for the whole corpus and one per process
    on a terminal, else a plain line every PROGRESS_SECONDS, uer.utils.progress); returns each piece's
    instance count (in order).

    The first process's share runs in this process while the others run in spawned processes: the main
    process would otherwise sit idle, and its tokenizer is already loaded while a spawned worker needs
    ~0.3 s to start. Workers die with this process (SIGKILL included) and are stopped when it is
    interrupted or a piece fails.
    """
    from uer.utils.progress import Progress, plain_interval

    cores = available_cores()
    plan = plan_processes(jobs, len(jobs), cores)
    pieces = sum(len(group) for group in plan)
    if len(plan) < len(jobs):
        log(f"--processes_num {len(jobs)}: running {len(plan)} process(es) ({pieces} of the {len(jobs)} parts of "
            f"the corpus hold text, {cores} CPU core(s)); the dataset is the same as with {len(jobs)} processes.")
    counts = [0] * len(jobs)
    n = len(jobs)
    ctx = get_context("spawn")
    # instances built of each piece, then bytes read of each (written by the workers, read here)
    shared: Any = [0] * (2 * n) if len(plan) == 1 else ctx.Array("q", 2 * n, lock=False)
    sizes = [sum(j.end - j.start for j in group) for group in plan]

    def read_of(group: list[WorkerJob]) -> int:
        return sum(shared[n + j.worker] for j in group)

    def plain_line(line: str) -> None:
        parts = " ".join(f"{100.0 * read_of(g) / max(1, size):.0f}%" for g, size in zip(plan, sizes))
        log(f"  {line}; {sum(shared[:n]):,} instances" + (f"; workers {parts}" if len(plan) > 1 else ""))

    merged = Progress(sum(sizes), "preprocessing", unit="B", interval=plain_interval(PROGRESS_SECONDS),
                      write=plain_line)
    bars = [Progress(size, f"worker {i}", unit="B", position=i + 1)
            for i, size in enumerate(sizes)] if merged.terminal and len(plan) > 1 else []

    def progress_line(_: int = 0) -> None:
        merged.set(sum(shared[n:]))
        for bar, group in zip(bars, plan):
            bar.set(read_of(group))

    try:
        return _run_planned(jobs, plan, shared, counts, progress_line, ctx)
    finally:
        for bar in bars[::-1]:
            bar.close()
        merged.close()


def _run_planned(jobs: list[WorkerJob], plan: list[list[WorkerJob]], shared: Any, counts: list[int],
                 progress_line: Callable[..., None], ctx: Any) -> list[int]:
    """The processes of :func:`_run_jobs`: ``plan[0]`` here, the other groups in spawned processes."""
    n = len(jobs)

    def reporters(piece: int) -> tuple[Callable[[int], None], Callable[[int], None]]:
        def report_main(k: int) -> None:
            shared[piece] = k
            progress_line()

        def read_main(k: int) -> None:
            shared[n + piece] = k
            progress_line()

        return report_main, read_main

    if len(plan) == 1:
        for job in plan[0]:
            report, read = reporters(job.worker)
            counts[job.worker] = run_worker(job, report=report, read=read)
        return counts
    results = ctx.SimpleQueue()
    processes = [ctx.Process(target=_process_main, args=(group, shared, results), daemon=True,
                             name=f"preprocess-worker-{i}") for i, group in enumerate(plan[1:], start=1)]
    try:
        for process in processes:
            process.start()
        for job in plan[0]:
            report, read = reporters(job.worker)
            counts[job.worker] = run_worker(job, report=report, read=read)
        remaining = {job.worker for group in plan[1:] for job in group}
        while remaining:
            while not results.empty():
                piece, count, err = results.get()
                if err is not None:
                    raise err
                counts[piece] = count
                remaining.discard(piece)
            dead = [p for p in processes if p.exitcode not in (None, 0)]
            if dead and results.empty():
                raise PreprocessError(f"a worker process died (exit code {dead[0].exitcode}; killed, or out of "
                                      "memory?) before finishing its part of the corpus")
            if remaining:
                time.sleep(0.05)
                progress_line()
        progress_line()  # the last counters (100%)
        return counts
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join()


def options_from_args(args: Any) -> PreprocessOptions:
    """PreprocessOptions from the argparse namespace of :func:`uer.opts.add_preprocess_options`."""
    fields = PreprocessOptions.__dataclass_fields__
    return PreprocessOptions(**{k: v for k, v in vars(args).items() if k in fields})


__all__ = ["PreprocessError", "PreprocessOptions", "WorkerJob", "build_dataset", "iter_buffers", "options_from_args",
           "run_worker", "split_corpus"]
