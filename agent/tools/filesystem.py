"""Filesystem tools confined to one root directory.

Every ``path`` argument is relative to the tool root. :func:`resolve_path`
refuses absolute paths, NUL bytes, ``..`` that climbs above the root, and any
path whose real location (all symlinks followed, intermediate directories
included) is outside ``root.resolve()``. The analytics tools reuse it and
:func:`read_limited` for their file inputs.

Names must be UTF-8: answers are JSON text, so a path that is not valid UTF-8
(a lone surrogate such as ``"\udce9"``, which the OS would write as the raw
byte 0xE9) is refused before anything touches the disk, and
``list_directory`` leaves out entries whose names on disk are not valid UTF-8,
counting them in ``skipped`` (such a name could not be passed back to any
tool anyway).  Error messages name paths relative to the root only.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..constants import TOOL_MAX_LIST_ENTRIES
from ..errors import clip
from ._registry import FORBIDDEN, INVALID_ARGUMENTS, NOT_FOUND, TOO_LARGE, ToolContext, ToolError, tool

# Longest accepted path argument (Linux PATH_MAX).
MAX_PATH_CHARS = 4096
# Longest name of one path component, in bytes (Linux NAME_MAX); checked here so
# the OS's ENAMETOOLONG, whose text names the absolute path, never happens.
MAX_NAME_BYTES = 255

_PATH = {"type": "string", "minLength": 1, "maxLength": MAX_PATH_CHARS,
         "description": "Path relative to the tool root (POSIX separators)."}
_ENCODING = {"enum": ["utf-8", "base64"], "default": "utf-8"}


# --- confinement -------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedPath:
    rel: str  # normalised path relative to the root, POSIX, "." for the root
    lexical: Path  # root.resolve() / rel, symlinks not followed
    real: Path  # fully resolved, guaranteed inside root.resolve()


def _outside(path: str) -> ToolError:
    return ToolError(FORBIDDEN, f"path {path!r} resolves outside the tool root")


def resolve_path(root: Path, path: str) -> ResolvedPath:
    """Map a caller-supplied relative path onto ``root``, or raise
    ToolError("forbidden") if it is absolute, contains NUL, or leaves the root
    lexically or through symlinks."""
    if not isinstance(path, str):
        raise ToolError(INVALID_ARGUMENTS, f"path must be a string, got {type(path).__name__}")
    if "\x00" in path:
        raise ToolError(FORBIDDEN, f"path {path!r} contains a NUL byte")
    if path.startswith("/"):
        raise ToolError(FORBIDDEN, f"path {path!r} is absolute; paths are relative to the tool root")
    if not _is_utf8(path):
        raise ToolError(INVALID_ARGUMENTS, f"path {path!r} is not valid UTF-8 (it contains a lone surrogate)")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if len(part.encode("utf-8")) > MAX_NAME_BYTES:
            raise ToolError(
                INVALID_ARGUMENTS,
                f"path component {clip(part, 40)!r} is {len(part.encode('utf-8'))} bytes long, "
                f"over the limit of {MAX_NAME_BYTES} bytes per name",
            )
        if part == "..":
            if not parts:
                raise _outside(path)
            parts.pop()
        else:
            parts.append(part)
    root_real = Path(os.path.realpath(root))
    lexical = root_real.joinpath(*parts)
    real = Path(os.path.realpath(lexical))
    if real != root_real and not real.is_relative_to(root_real):
        raise _outside(path)
    if os.path.islink(real):  # realpath leaves a symlink in place only on a loop
        raise ToolError(FORBIDDEN, f"path {path!r} contains a symlink loop")
    return ResolvedPath(rel="/".join(parts) or ".", lexical=lexical, real=real)


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_limited(resolved: ResolvedPath, max_bytes: int) -> bytes:
    """Contents of a regular file, at most ``max_bytes`` (else too_large)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(resolved.real, flags)  # O_NONBLOCK: a FIFO must not hang us
    except (FileNotFoundError, NotADirectoryError):
        raise ToolError(NOT_FOUND, f"file {resolved.rel!r} does not exist") from None
    except OSError as exc:
        if exc.errno == getattr(os, "ELOOP", 40):  # swapped for a symlink since resolving
            raise _outside(resolved.rel) from None
        raise
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ToolError(INVALID_ARGUMENTS, f"{resolved.rel!r} is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise ToolError(INVALID_ARGUMENTS, f"{resolved.rel!r} is not a regular file")
        if st.st_size > max_bytes:
            raise _file_too_large(resolved.rel, st.st_size, max_bytes)
        chunks: list[bytes] = []
        total = 0
        while total <= max_bytes:  # the file may grow after fstat
            chunk = os.read(fd, max_bytes + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    if total > max_bytes:
        raise _file_too_large(resolved.rel, total, max_bytes)
    return b"".join(chunks)


def _file_too_large(rel: str, size: int, max_bytes: int) -> ToolError:
    return ToolError(TOO_LARGE, f"file {rel!r} is {size} bytes, over the limit of {max_bytes} bytes")


def _entry_type(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISREG(mode):
        return "file"
    return "other"


# --- tools -------------------------------------------------------------------


@tool(
    "read_file",
    "Read a file under the tool root. encoding 'utf-8' returns text, 'base64' returns "
    "the raw bytes base64-encoded (use it for binary files).",
    schema={
        "type": "object",
        "properties": {"path": _PATH, "encoding": _ENCODING},
        "required": ["path"],
        "additionalProperties": False,
    },
)
def read_file(ctx: ToolContext, /, *, path: str, encoding: str = "utf-8") -> dict[str, Any]:
    resolved = resolve_path(ctx.fs_root, path)
    data = read_limited(resolved, ctx.max_bytes)
    if encoding == "base64":
        content = base64.b64encode(data).decode("ascii")
    else:
        try:
            content = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ToolError(
                INVALID_ARGUMENTS,
                f"file {resolved.rel!r} is not valid UTF-8 (byte {exc.start}); read it with encoding 'base64'",
            ) from None
    # The answer travels as JSON: base64 grows by 4/3, and escaping (\n -> two
    # bytes, control characters -> six) can grow text as much; bound the content
    # as it will be sent, not as it sits on disk.
    encoded = len(content) if encoding == "base64" else _json_text_bytes(content)
    if encoded > ctx.max_bytes:
        raise ToolError(
            TOO_LARGE,
            f"file {resolved.rel!r} is {len(data)} bytes but {encoded} bytes once encoded as "
            f"{'base64' if encoding == 'base64' else 'a JSON string'}, over the limit of {ctx.max_bytes} bytes",
        )
    return {"path": resolved.rel, "content": content, "encoding": encoding, "size": len(data)}


def _json_text_bytes(text: str) -> int:
    """Bytes ``text`` takes as a JSON string in an answer (UTF-8, escapes included)."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8")) - 2


@tool(
    "write_file",
    "Write a file under the tool root atomically (temporary file + rename), replacing "
    "it if it exists. encoding 'base64' takes base64-encoded bytes. create_dirs creates "
    "missing parent directories. Refuses to write through a symlink or onto a directory.",
    schema={
        "type": "object",
        "properties": {
            "path": _PATH,
            "content": {"type": "string"},
            "encoding": _ENCODING,
            "create_dirs": {"type": "boolean", "default": True},
        },
        "required": ["path", "content"],
        "additionalProperties": False,
    },
)
def write_file(
    ctx: ToolContext, /, *, path: str, content: str, encoding: str = "utf-8", create_dirs: bool = True
) -> dict[str, Any]:
    resolved = resolve_path(ctx.fs_root, path)
    if os.path.islink(resolved.lexical):
        raise ToolError(FORBIDDEN, f"path {resolved.rel!r} is a symlink; refusing to write through it")
    if resolved.rel == "." or os.path.isdir(resolved.real):
        raise ToolError(INVALID_ARGUMENTS, f"{resolved.rel!r} is a directory; refusing to write onto it")
    if encoding == "base64":
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ToolError(INVALID_ARGUMENTS, f"content is not valid base64: {exc}") from None
    else:
        try:
            data = content.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ToolError(INVALID_ARGUMENTS, f"content cannot be encoded as UTF-8: {exc.reason}") from None
    if len(data) > ctx.max_bytes:
        raise ToolError(TOO_LARGE, f"content is {len(data)} bytes, over the limit of {ctx.max_bytes} bytes")

    target = resolved.real
    parent = target.parent
    if not parent.is_dir():
        if parent.exists():
            raise ToolError(INVALID_ARGUMENTS, f"a parent of {resolved.rel!r} is not a directory")
        if not create_dirs:
            raise ToolError(NOT_FOUND, f"parent directory of {resolved.rel!r} does not exist")
        try:
            parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ToolError(INVALID_ARGUMENTS, f"a parent of {resolved.rel!r} is not a directory") from None

    try:
        mode = stat.S_IMODE(os.stat(target, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        mode = 0o644
    fd, tmp_name = tempfile.mkstemp(dir=parent, prefix=f".{target.name[:64]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    return {"path": resolved.rel, "size": len(data)}


@tool(
    "list_directory",
    "List a directory under the tool root, sorted by name. Each entry has name, type "
    "(file, directory, symlink, other) and size (bytes for files, 0 otherwise; symlinks "
    f"are not followed). At most {TOOL_MAX_LIST_ENTRIES} entries; 'truncated' says if more exist. "
    "Names that are not valid UTF-8 are left out and counted in 'skipped'.",
    schema={
        "type": "object",
        "properties": {"path": {**_PATH, "default": "."}},
        "additionalProperties": False,
    },
)
def list_directory(ctx: ToolContext, /, *, path: str = ".") -> dict[str, Any]:
    resolved = resolve_path(ctx.fs_root, path)
    try:
        with os.scandir(resolved.real) as it:
            raw = list(it)
    except FileNotFoundError:
        raise ToolError(NOT_FOUND, f"directory {resolved.rel!r} does not exist") from None
    except NotADirectoryError:
        raise ToolError(INVALID_ARGUMENTS, f"{resolved.rel!r} is not a directory") from None
    # A name that is not valid UTF-8 cannot go into a JSON answer, nor be
    # passed back to a tool: leave it out and say how many were left out.
    named = [e for e in raw if _is_utf8(e.name)]
    skipped = len(raw) - len(named)
    named.sort(key=lambda e: e.name)
    entries = []
    for entry in named[:TOOL_MAX_LIST_ENTRIES]:
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # removed while listing
            continue
        kind = _entry_type(st.st_mode)
        entries.append({"name": entry.name, "type": kind, "size": st.st_size if kind == "file" else 0})
    return {
        "path": resolved.rel,
        "entries": entries,
        "truncated": len(named) > TOOL_MAX_LIST_ENTRIES,
        "skipped": skipped,
    }


@tool(
    "file_info",
    "Type (file, directory, symlink, other; a final symlink is not followed), size "
    "(bytes for files, 0 otherwise) and last modification time (ISO-8601, UTC) of a "
    "path under the tool root.",
    schema={
        "type": "object",
        "properties": {"path": _PATH},
        "required": ["path"],
        "additionalProperties": False,
    },
)
def file_info(ctx: ToolContext, /, *, path: str) -> dict[str, Any]:
    resolved = resolve_path(ctx.fs_root, path)
    try:
        st = os.lstat(resolved.lexical)
    except (FileNotFoundError, NotADirectoryError):
        raise ToolError(NOT_FOUND, f"{resolved.rel!r} does not exist") from None
    modified = datetime.fromtimestamp(st.st_mtime, tz=timezone.utc).isoformat().replace("+00:00", "Z")
    kind = _entry_type(st.st_mode)
    size = st.st_size if kind == "file" else 0
    return {"path": resolved.rel, "type": kind, "size": size, "modified": modified}
