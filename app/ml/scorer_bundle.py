"""A version's fast scorer stored as plain arrays: memory-mapped, shared, loaded without pickle.

A bundle is a directory beside the version's joblib pipeline::

    v1.0.3.scorer/
        manifest.json      shapes, classes, head, feature blocks, the scope
                           test, the SHA-256 of every other file, and check rows
        weights.npy        (n_features, n_outputs) float64, or float32 when the
                           version was saved with SCORER_PRECISION=float32;
                           every linear stage folded
        bias.npy           (n_outputs,)
        idf-<i>.npy        one per feature block that uses idf
        vocabulary-<i>.json  the block's terms in column order
        check-proba.npy    the pipeline's own predict_proba on the check rows

The registry records the manifest's SHA-256, so every byte a worker serves from
is checked. Arrays are opened with ``mmap_mode="r"``: the operating system keeps
one copy of the weights in its page cache for every worker on the machine, and
a worker never holds the fitted pipeline (scikit-learn is not even imported).
At load, the scorer re-scores the check rows and must reproduce the pipeline's
probabilities within the tolerance of its weights' precision (`TOLERANCES`),
which proves, in this process with its numpy, what `fast_path_check` proved at
training time.

Only pipelines whose text functions are named below can be stored; anything
else keeps serving from the pickled pipeline, as before bundles existed.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.ml.dataset import atomic_write_bytes
from app.ml.fast_features import (
    Block,
    CharNgrams,
    CharWbNgrams,
    Featurizer,
    NgramCounter,
    WordNgrams,
)
from app.ml.fast_heads import head_from_spec
from app.ml.fast_path import FAST_PATH_TOLERANCE, FLOAT32_TOLERANCE, FastScorer, ScorerParts
from app.ml.preprocessing import normalize_product_name, split_tokens, tokenize
from app.ml.scope import ScopeModel

__all__ = [
    "BUNDLE_FORMAT",
    "BundleError",
    "FAST_PATH_TOLERANCE",
    "TOLERANCES",
    "bundle_dir_name",
    "load_bundle",
    "write_bundle",
]

BUNDLE_FORMAT = 1
MANIFEST = "manifest.json"

# Text functions a bundle may name, by the name it stores. `tokenize` is served by
# `split_tokens`, its NLTK-free equal: importing NLTK loads scikit-learn and SciPy.
_PREPROCESSORS: dict[str, Callable[[str], str]] = {"normalize_product_name": normalize_product_name}
_TOKENIZERS: dict[str, Callable[[str], list[str]]] = {"tokenize": split_tokens}
_PREPROCESSOR_NAMES = {id(normalize_product_name): "normalize_product_name"}
# A compiled pipeline already holds `split_tokens` in place of `tokenize`.
_TOKENIZER_NAMES = {id(tokenize): "tokenize", id(split_tokens): "tokenize"}
_ANALYZERS: dict[str, type[NgramCounter]] = {
    "word": WordNgrams,
    "char": CharNgrams,
    "char_wb": CharWbNgrams,
}
_NORMS = (None, "l1", "l2")
# How far a stored scorer may stray from the pipeline, by the dtype of its weights.
# The dtype comes from the manifest, which the registry's hash vouches for; still,
# only these two are accepted, and the tolerance is this code's, never the file's.
TOLERANCES: dict[str, float] = {"float64": FAST_PATH_TOLERANCE, "float32": FLOAT32_TOLERANCE}


class BundleError(ValueError):
    """A bundle that cannot be written for this pipeline, or must not be served."""


def bundle_dir_name(version: str) -> str:
    """The bundle directory's name for `version`, relative to the model directory."""
    return f"{version}.scorer"


@dataclass(frozen=True)
class WrittenBundle:
    """Where a bundle was written (relative to the model directory) and its manifest's hash."""

    manifest_file: str
    manifest_sha256: str


def write_bundle(
    parts: ScorerParts, model_dir: Path, version: str, check_texts: Sequence[str], check_proba: Any
) -> WrittenBundle:
    """Store `parts` under `model_dir` for `version`; BundleError if they cannot be named.

    `check_proba` is the pipeline's own ``predict_proba(check_texts)``: the rows
    every load must reproduce. Files are written into a temporary directory that
    is renamed into place, so a reader sees a whole bundle or none.
    """
    blocks = [_block_spec(i, block) for i, block in enumerate(parts.features.blocks)]
    final = model_dir / bundle_dir_name(version)
    staging = model_dir / f".{final.name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        files: dict[str, str] = {}

        def put(name: str, data: bytes) -> None:
            atomic_write_bytes(staging / name, data)
            files[name] = hashlib.sha256(data).hexdigest()

        dtype = str(parts.weights.dtype)
        if dtype not in TOLERANCES:
            raise BundleError(f"weights of dtype {dtype} cannot be stored")
        put("weights.npy", _npy(np.ascontiguousarray(parts.weights)))
        put("bias.npy", _npy(np.asarray(parts.bias, dtype=np.float64)))
        for i, block in enumerate(parts.features.blocks):
            terms = sorted(block.count.vocabulary, key=block.count.vocabulary.__getitem__)
            put(f"vocabulary-{i}.json", json.dumps(terms, ensure_ascii=False).encode())
            if block.idf is not None:
                put(f"idf-{i}.npy", _npy(np.asarray(block.idf, dtype=np.float64)))
        put("check-proba.npy", _npy(np.asarray(check_proba, dtype=np.float64)))
        manifest = {
            "format": BUNDLE_FORMAT,
            "version": version,
            "n_features": int(parts.weights.shape[0]),
            "n_outputs": int(parts.weights.shape[1]),
            "weights_dtype": dtype,
            "classes": [str(c) for c in parts.classes],
            "head": parts.head.spec(),
            "blocks": blocks,
            "scope": None if parts.scope is None else parts.scope.spec(),
            "check_texts": list(check_texts),
            "files": files,
        }
        data = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
        atomic_write_bytes(staging / MANIFEST, data)
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return WrittenBundle(f"{final.name}/{MANIFEST}", hashlib.sha256(data).hexdigest())


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _block_spec(index: int, block: Block) -> dict[str, Any]:
    preprocessor = _PREPROCESSOR_NAMES.get(id(block.preprocess))
    if preprocessor is None:
        raise BundleError(f"feature block {index}: its preprocessor cannot be stored by name")
    count = block.count
    analyzer = next((name for name, kind in _ANALYZERS.items() if type(count) is kind), None)
    if analyzer is None:
        raise BundleError(f"feature block {index}: unknown analyzer {type(count).__name__}")
    tokenizer = None
    if isinstance(count, WordNgrams):
        tokenizer = _TOKENIZER_NAMES.get(id(count.tokenize))
        if tokenizer is None:
            raise BundleError(f"feature block {index}: its tokenizer cannot be stored by name")
    return {
        "analyzer": analyzer,
        "preprocessor": preprocessor,
        "tokenizer": tokenizer,
        "ngram_range": [count.min_n, count.max_n],
        "offset": block.offset,
        "size": len(count.vocabulary),
        "use_idf": block.idf is not None,
        "sublinear_tf": block.sublinear_tf,
        "binary": block.binary,
        "norm": block.norm,
        "weight": block.weight,
    }


def load_bundle(model_dir: Path, manifest_file: str, manifest_sha256: str) -> FastScorer:
    """Open a stored scorer, verify every file and the check rows; BundleError otherwise."""
    directory = _confined(model_dir, manifest_file).parent
    manifest_path = directory / MANIFEST
    try:
        data = manifest_path.read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read {manifest_file}: {exc.strerror or exc}") from None
    if hashlib.sha256(data).hexdigest() != manifest_sha256:
        raise BundleError(f"{manifest_file} does not match its recorded SHA-256")
    try:
        manifest = json.loads(data)
        scorer, check_texts, check_proba = _open(directory, manifest)
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise BundleError(f"{manifest_file} cannot be served: {exc}") from None
    tolerance = TOLERANCES[str(scorer.parts.weights.dtype)]
    worst = float(np.abs(scorer.predict_proba_many(check_texts) - check_proba).max(initial=0.0))
    if not check_texts or not worst <= tolerance:
        raise BundleError(
            f"{manifest_file}: the stored scorer strays {worst:.3g} from the pipeline "
            f"on {len(check_texts)} check rows (tolerance {tolerance:g})"
        )
    return scorer


def _confined(model_dir: Path, relative: str) -> Path:
    # The path comes from the registry; still, it must name a file inside model_dir.
    path = (model_dir / relative).resolve()
    if not path.is_relative_to(model_dir.resolve()) or path.name != MANIFEST:
        raise BundleError(f"{relative!r} is not a bundle manifest inside the model directory")
    return path


def _open(directory: Path, manifest: dict[str, Any]) -> tuple[FastScorer, list[str], np.ndarray]:
    if manifest.get("format") != BUNDLE_FORMAT:
        raise ValueError(f"unsupported bundle format {manifest.get('format')!r}")
    files: dict[str, str] = manifest["files"]

    def array(name: str, shape: tuple[int, ...], dtype: str = "float64") -> np.ndarray:
        path = directory / name
        if name not in files or path.parent != directory:
            raise ValueError(f"{name} is not listed in the manifest")
        with path.open("rb") as handle:
            if hashlib.file_digest(handle, "sha256").hexdigest() != files[name]:
                raise ValueError(f"{name} does not match the manifest's SHA-256")
        loaded = np.load(path, mmap_mode="r", allow_pickle=False)
        if loaded.dtype != np.dtype(dtype) or loaded.shape != shape:
            raise ValueError(
                f"{name} has shape {loaded.shape} {loaded.dtype}, expected {shape} {dtype}"
            )
        # A plain ndarray view of the same pages: np.memmap's subclass hooks would
        # otherwise run on every slice the scorer takes.
        return np.asarray(loaded)

    n_features, n_outputs = int(manifest["n_features"]), int(manifest["n_outputs"])
    # Bundles written before float32 existed name no dtype: they are float64.
    weights_dtype = manifest.get("weights_dtype", "float64")
    if weights_dtype not in TOLERANCES:
        raise ValueError(f"unsupported weights dtype {weights_dtype!r}")
    classes = np.asarray([str(c) for c in manifest["classes"]], dtype=str)
    blocks = []
    for i, spec in enumerate(manifest["blocks"]):
        name = f"vocabulary-{i}.json"
        raw = (directory / name).read_bytes()
        if hashlib.sha256(raw).hexdigest() != files.get(name):
            raise ValueError(f"{name} does not match the manifest's SHA-256")
        terms = json.loads(raw)
        size, offset = int(spec["size"]), int(spec["offset"])
        if len(terms) != size or offset < 0 or offset + size > n_features:
            raise ValueError(f"feature block {i} does not fit the weights")
        idf = array(f"idf-{i}.npy", (size,)) if spec["use_idf"] else None
        blocks.append(_block(spec, {term: offset + j for j, term in enumerate(terms)}, idf))
    check_texts = [str(t) for t in manifest["check_texts"]]
    scorer = FastScorer(
        ScorerParts(
            features=Featurizer(blocks),
            weights=array("weights.npy", (n_features, n_outputs), weights_dtype),
            bias=array("bias.npy", (n_outputs,)),
            head=head_from_spec(manifest["head"], n_outputs, classes.shape[0]),
            classes=classes,
            scope=_scope(manifest.get("scope")),
        )
    )
    return scorer, check_texts, array("check-proba.npy", (len(check_texts), classes.shape[0]))


def _block(spec: dict[str, Any], vocabulary: dict[str, int], idf: np.ndarray | None) -> Block:
    min_n, max_n = (int(n) for n in spec["ngram_range"])
    if not 1 <= min_n <= max_n or spec["norm"] not in _NORMS:
        raise ValueError("a feature block has an invalid n-gram range or norm")
    analyzer = _ANALYZERS[spec["analyzer"]]
    count: NgramCounter
    if analyzer is WordNgrams:
        count = WordNgrams(_TOKENIZERS[spec["tokenizer"]], vocabulary, min_n, max_n)
    else:
        count = analyzer(vocabulary, min_n, max_n)  # type: ignore[call-arg]
    return Block(
        preprocess=_PREPROCESSORS[spec["preprocessor"]],
        count=count,
        offset=int(spec["offset"]),
        # A private copy: idf is small, and numpy ops on a memory map return memory maps.
        idf=None if idf is None else np.array(idf),
        sublinear_tf=bool(spec["sublinear_tf"]),
        binary=bool(spec["binary"]),
        norm=spec["norm"],
        weight=float(spec["weight"]),
    )


def _scope(spec: Any) -> ScopeModel | None:
    # Bundles written before the scope test existed name none.
    return None if spec is None else ScopeModel.from_spec(spec)
