"""The optional official layer: requests (and, for tests, answers) checked against VTEX's own
OpenAPI files with openapi-core.

Invariant: the layer is on only where both openapi-core and VTEX's files are present, and this
module imports neither openapi-core nor werkzeug until ``load()`` runs, so the emulator (and
``ledger demo``) work on a plain install, where only the project's own description applies.
VTEX's files are VTEX's, never copied into the repository: they are read from
``$LEDGER_VTEX_SPECS`` (a directory) or ``../shared/specs/vtex/`` beside the repository root.

openapi-core's public ``validate_request`` stops at the first problem and re-checks the headers
of every request; the emulator needs every problem, and the same headers arrive thousands of
times in a benchmark. So ``_validate`` calls the request validator's private steps
(``_find_path``, ``_get_security``, ``_get_parameters``, ``_get_body``) of openapi-core 0.23,
the pinned version; ``tests/integration/test_vtex_emulator.py`` fails loudly if they change.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from adapters.vtex_emulator.description import (
    APP_KEY_HEADER,
    APP_TOKEN_HEADER,
    OPERATIONS,
    Operation,
)

SPECS_ENV = "LEDGER_VTEX_SPECS"
SPEC_FILES = {"logistics": "logistics-api.json", "orders": "orders-api.json"}
# Any host matching the files' server template "https://{accountName}.{environment}.com.br":
# openapi-core insists on a server match before it looks at the path.
_SPEC_HOST = "https://emulator.vtexcommercestable.com.br"
_VOLATILE_HEADERS = frozenset({"content-length"})


def default_specs_dir() -> Path:
    """``shared/specs/vtex`` in the folder that holds the repository (its root's parent)."""
    return Path(__file__).resolve().parents[3] / "shared" / "specs" / "vtex"


def specs_dir() -> Path:
    return Path(os.environ.get(SPECS_ENV) or default_specs_dir())


@dataclass(frozen=True)
class Availability:
    on: bool
    detail: str  # why it is off, or where the files are read from
    directory: Path


def availability() -> Availability:
    """Whether the official layer can load here, and a sentence saying why (not)."""
    directory = specs_dir()
    missing = [name for name in SPEC_FILES.values() if not (directory / name).is_file()]
    if missing:
        return Availability(
            False,
            f"VTEX's {' and '.join(missing)} not found in {directory} "
            f"(set {SPECS_ENV} to the directory holding them)",
            directory,
        )
    if importlib.util.find_spec("openapi_core") is None:
        return Availability(
            False, "openapi-core is not installed (pip install -e '.[test]')", directory
        )
    return Availability(True, f"VTEX's OpenAPI files in {directory}", directory)


@dataclass
class _Spec:
    api: Any  # openapi_core.OpenAPI
    operations: dict[tuple[str, str], dict[str, Any]]
    # openapi-core keeps lazy caches whose thread safety is not documented; validation is
    # pure CPU under the GIL anyway, so serialising it costs no throughput.
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Security and parameter verdicts, by the exact values they depend on: a benchmark sends
    # the same headers thousands of times, and checking them was most of the emulator's CPU.
    verdicts: dict[tuple[Any, ...], list[Exception]] = field(default_factory=dict)


@dataclass
class _Request:
    """openapi-core's ``Request`` protocol, plus ``path_pattern`` so that it validates against
    the very operation the emulator's router chose."""

    host_url: str
    path: str
    method: str
    body: bytes | None
    content_type: str
    parameters: Any  # openapi_core.datatypes.RequestParameters
    path_pattern: str | None = None


@dataclass
class _Response:
    status_code: int
    content_type: str
    headers: Any  # werkzeug Headers
    data: bytes | None


class OfficialSchemas:
    """VTEX's two files, loaded once; ``request_problems`` and ``response_problems`` say how a
    request or an answer breaks them (empty when it conforms)."""

    def __init__(self, directory: Path) -> None:
        from openapi_core import Config, OpenAPI

        self.directory = directory
        self._specs: dict[str, _Spec] = {}
        for name, filename in SPEC_FILES.items():
            path = directory / filename
            try:
                data = json.loads(path.read_bytes())
            except ValueError as error:
                raise ValueError(f"VTEX's {path} does not read as JSON: {error}") from None
            # Checking the files themselves takes ~0.8 s; PROVENANCE.md beside them records
            # that they pass openapi-spec-validator.
            api = OpenAPI.from_dict(data, config=Config(spec_validator_cls=None))
            operations = {
                (method.upper(), pattern): operation
                for pattern, item in data["paths"].items()
                for method, operation in item.items()
                if isinstance(operation, dict)
            }
            self._specs[name] = _Spec(api, operations)
        for op in OPERATIONS:
            if (op.method, op.pattern) not in self._specs[op.spec].operations:
                raise RuntimeError(f"{op.spec} spec in {directory} lacks {op.method} {op.pattern}")
        # The first validations through openapi-core cost ~25 ms of lazy set-up; pay it here.
        warm = Message()
        for name, value in (
            (APP_KEY_HEADER, "k"),
            (APP_TOKEN_HEADER, "t"),
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        ):
            warm[name] = value
        for op in OPERATIONS:
            self.request_problems(op, op.pattern, {}, "maxlot=1", warm, b"{}")

    def request_problems(
        self,
        operation: Operation,
        raw_path: str,
        params: dict[str, str],
        query_string: str,
        headers: Message,
        body: bytes,
    ) -> list[dict[str, Any]]:
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        spec = self._specs[operation.spec]
        header_items = list(headers.items())
        request = _Request(
            host_url=_SPEC_HOST,
            path=raw_path,
            method=operation.method.lower(),
            body=body or None,
            content_type=(headers.get("Content-Type") or "").lower(),
            parameters=RequestParameters(
                query=ImmutableMultiDict(parse_qsl(query_string, keep_blank_values=True)),
                header=Headers(header_items),
                path=dict(params),
            ),
            path_pattern=operation.pattern,
        )
        key = (
            operation.method,
            operation.pattern,
            tuple(sorted(params.items())),
            query_string,
            tuple(
                sorted(
                    (k.lower(), v) for k, v in header_items if k.lower() not in _VOLATILE_HEADERS
                )
            ),
        )
        with spec.lock:
            errors = _validate(spec, request, key)
        return [detail for error in errors for detail in _describe(error)]

    def response_problems(
        self,
        method: str,
        path: str,
        status: int,
        body: bytes | None,
        content_type: str = "application/json",
    ) -> list[dict[str, Any]]:
        """Check an answer against the official response schema of ``method path`` (a concrete
        path, e.g. ``/api/oms/pvt/orders/1-01``). For the emulator's contract tests."""
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers

        spec = self._specs["logistics" if path.startswith("/api/logistics") else "orders"]
        request = _Request(
            host_url=_SPEC_HOST,
            path=path,
            method=method.lower(),
            body=None,
            content_type="",
            parameters=RequestParameters(),
        )
        response = _Response(status, content_type, Headers({"Content-Type": content_type}), body)
        with spec.lock:
            errors = list(spec.api.response_validator.iter_errors(request, response))
        return [detail for error in errors for detail in _describe(error)]


def _validate(spec: _Spec, request: _Request, key: tuple[Any, ...]) -> list[Exception]:
    """openapi-core's own request validation (security, then parameters, then body, as its
    ``iter_errors`` does), with the first two remembered by the values they read."""
    from openapi_core.templating.paths.exceptions import PathError
    from openapi_core.validation.request.exceptions import (
        MissingRequestBody,
        ParametersError,
        RequestBodyValidationError,
        SecurityValidationError,
    )

    validator = spec.api.request_validator
    try:
        path, operation, _, _, _ = validator._find_path(request)
    except PathError as error:
        return [error]
    verdict = spec.verdicts.get(key)
    if verdict is None:
        verdict = []
        try:
            validator._get_security(request.parameters, operation)
        except SecurityValidationError as error:
            verdict = [error]
        else:
            try:
                validator._get_parameters(request.parameters, operation, path)
            except ParametersError as error:
                verdict = list(error.errors)
        if len(spec.verdicts) > 50_000:
            spec.verdicts.clear()
        spec.verdicts[key] = verdict
    if verdict and isinstance(verdict[0], SecurityValidationError):
        return verdict
    errors = list(verdict)
    try:
        validator._get_body(request.body, request.content_type, operation)
    except MissingRequestBody:
        pass
    except RequestBodyValidationError as error:
        errors.append(error)
    return errors


def _describe(error: Exception) -> list[dict[str, Any]]:
    """openapi-core's exception as short, JSON-able explanations."""
    base: dict[str, Any] = {"layer": "official", "in": getattr(error, "location", None) or "body"}
    name = getattr(error, "name", None)
    if name:
        base["name"] = name
    schema_errors = getattr(error.__cause__, "schema_errors", None)
    if schema_errors:
        return [
            {
                **base,
                "path": "/".join(str(p) for p in getattr(e, "absolute_path", ())),
                "message": getattr(e, "message", str(e)),
            }
            for e in schema_errors
        ]
    return [{**base, "message": str(error)[:300]}]


_LOADED: dict[Path, OfficialSchemas] = {}
_LOADED_LOCK = threading.Lock()


def load(directory: Path | None = None) -> OfficialSchemas:
    """VTEX's files in ``directory`` (default: ``specs_dir()``), loaded once per process
    (about 50 ms plus a warm-up). Needs openapi-core; call ``availability()`` first."""
    resolved = (directory or specs_dir()).resolve()
    with _LOADED_LOCK:
        if resolved not in _LOADED:
            _LOADED[resolved] = OfficialSchemas(resolved)
        return _LOADED[resolved]
