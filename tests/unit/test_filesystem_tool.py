"""Filesystem tools: round trips, atomic writes, confinement, limits, shapes."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import pytest

from agent.tools import ToolError, build_registry, resolve_path

MAX = 1000


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def reg(tmp_path: Path, root: Path):
    return build_registry(["filesystem"], fs_root=root, analytics_root=tmp_path / "an", max_bytes=MAX)


def _err(reg, name, args) -> ToolError:
    with pytest.raises(ToolError) as ei:
        reg.call(name, args)
    return ei.value


def test_root_created(reg, root):
    assert root.is_dir()
    assert reg.call("list_directory", {}) == {"path": ".", "entries": [], "truncated": False, "skipped": 0}


def test_text_round_trip(reg, root):
    text = "héllo\nwörld ✓\n"
    out = reg.call("write_file", {"path": "notes/a.txt", "content": text})
    assert out == {"path": "notes/a.txt", "size": len(text.encode())}
    assert (root / "notes" / "a.txt").read_text("utf-8") == text
    got = reg.call("read_file", {"path": "notes/a.txt"})
    assert got == {"path": "notes/a.txt", "content": text, "encoding": "utf-8", "size": len(text.encode())}


def test_binary_round_trip(reg, root):
    data = bytes(range(256))
    b64 = base64.b64encode(data).decode()
    assert reg.call("write_file", {"path": "bin.dat", "content": b64, "encoding": "base64"})["size"] == 256
    assert (root / "bin.dat").read_bytes() == data
    got = reg.call("read_file", {"path": "bin.dat", "encoding": "base64"})
    assert base64.b64decode(got["content"]) == data
    assert got["size"] == 256 and got["encoding"] == "base64"


def test_invalid_utf8_suggests_base64(reg, root):
    (root / "b").write_bytes(b"\xff\xfe\x00")
    e = _err(reg, "read_file", {"path": "b"})
    assert e.code == "invalid_arguments" and "base64" in e.message


def test_invalid_base64_content(reg):
    e = _err(reg, "write_file", {"path": "x", "content": "not base64!", "encoding": "base64"})
    assert e.code == "invalid_arguments"


def test_overwrite_is_atomic_and_leaves_no_temp_files(reg, root):
    for i in range(5):
        reg.call("write_file", {"path": "d/f.txt", "content": f"version {i}"})
    assert sorted(os.listdir(root / "d")) == ["f.txt"]
    assert (root / "d" / "f.txt").read_text() == "version 4"


def test_failed_write_leaves_no_temp_files(reg, root, monkeypatch):
    (root / "f.txt").write_text("old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device", str(dst))

    monkeypatch.setattr(os, "replace", broken_replace)
    e = _err(reg, "write_file", {"path": "f.txt", "content": "new"})
    assert e.code == "tool_failed" and "No space left on device" in e.message
    assert str(root) not in e.message
    assert os.listdir(root) == ["f.txt"]
    assert (root / "f.txt").read_text() == "old"


def test_write_keeps_existing_mode(reg, root):
    f = root / "script.sh"
    f.write_text("old")
    f.chmod(0o750)
    reg.call("write_file", {"path": "script.sh", "content": "new"})
    assert (f.stat().st_mode & 0o777) == 0o750


def test_create_dirs_false(reg):
    e = _err(reg, "write_file", {"path": "missing/x.txt", "content": "x", "create_dirs": False})
    assert e.code == "not_found"


def test_write_onto_directory_refused(reg, root):
    (root / "dir").mkdir()
    e = _err(reg, "write_file", {"path": "dir", "content": "x"})
    assert e.code == "invalid_arguments"
    assert (root / "dir").is_dir()


def test_write_through_symlink_refused(reg, root):
    (root / "real.txt").write_text("original")
    (root / "link.txt").symlink_to("real.txt")
    e = _err(reg, "write_file", {"path": "link.txt", "content": "x"})
    assert e.code == "forbidden"
    assert (root / "real.txt").read_text() == "original"
    assert (root / "link.txt").is_symlink()


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a/../../x", "..", "./../root/x", "a\x00b"])
@pytest.mark.parametrize("tool", ["read_file", "write_file", "list_directory", "file_info"])
def test_traversal_refused(reg, tool, path):
    args = {"path": path, "content": "x"} if tool == "write_file" else {"path": path}
    e = _err(reg, tool, args)
    assert e.code == "forbidden", e.message


def test_outside_message(reg):
    e = _err(reg, "read_file", {"path": "../secret"})
    assert e.message == "path '../secret' resolves outside the tool root"


def test_dotdot_inside_root_allowed(reg, root):
    (root / "a").mkdir()
    (root / "b.txt").write_text("ok")
    assert reg.call("read_file", {"path": "a/../b.txt"})["path"] == "b.txt"


def test_symlink_pointing_outside_refused(reg, root, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    (root / "escape").symlink_to(secret)
    for tool, extra in [("read_file", {}), ("file_info", {}), ("write_file", {"content": "pwned"})]:
        e = _err(reg, tool, {"path": "escape", **extra})
        assert e.code == "forbidden", tool
    assert secret.read_text() == "top secret"


def test_symlinked_intermediate_directory_refused(reg, root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f.txt").write_text("outside")
    (root / "sub").symlink_to(outside, target_is_directory=True)
    assert _err(reg, "read_file", {"path": "sub/f.txt"}).code == "forbidden"
    assert _err(reg, "list_directory", {"path": "sub"}).code == "forbidden"
    assert _err(reg, "write_file", {"path": "sub/new.txt", "content": "x"}).code == "forbidden"
    assert _err(reg, "write_file", {"path": "sub/deeper/new.txt", "content": "x"}).code == "forbidden"
    assert sorted(os.listdir(outside)) == ["f.txt"]


def test_symlink_inside_root_is_followed_for_reads(reg, root):
    (root / "d").mkdir()
    (root / "d" / "f.txt").write_text("inside")
    (root / "alias").symlink_to("d", target_is_directory=True)
    assert reg.call("read_file", {"path": "alias/f.txt"})["content"] == "inside"


def test_symlink_loop_refused(reg, root):
    (root / "loop").symlink_to("loop")
    e = _err(reg, "read_file", {"path": "loop"})
    assert e.code == "forbidden"


def test_root_itself_behind_symlink(tmp_path):
    real = tmp_path / "real_root"
    real.mkdir()
    (real / "f.txt").write_text("x")
    link = tmp_path / "link_root"
    link.symlink_to(real, target_is_directory=True)
    reg = build_registry(["filesystem"], fs_root=link, analytics_root=tmp_path, max_bytes=MAX)
    assert reg.call("read_file", {"path": "f.txt"})["content"] == "x"
    assert resolve_path(link, "f.txt").rel == "f.txt"


def test_read_too_large(reg, root):
    (root / "big").write_bytes(b"x" * (MAX + 1))
    e = _err(reg, "read_file", {"path": "big"})
    assert e.code == "too_large"
    assert str(MAX + 1) in e.message and str(MAX) in e.message
    (root / "ok").write_bytes(b"x" * MAX)
    assert reg.call("read_file", {"path": "ok"})["size"] == MAX


def test_write_too_large(reg, root):
    e = _err(reg, "write_file", {"path": "big", "content": "é" * MAX})  # 2 bytes each
    assert e.code == "too_large"
    assert str(2 * MAX) in e.message and str(MAX) in e.message
    assert not (root / "big").exists()
    assert os.listdir(root) == []


def test_not_found(reg):
    assert _err(reg, "read_file", {"path": "nope.txt"}).code == "not_found"
    assert _err(reg, "file_info", {"path": "nope/deeper"}).code == "not_found"
    assert _err(reg, "list_directory", {"path": "nope"}).code == "not_found"


def test_read_directory_and_list_file(reg, root):
    (root / "d").mkdir()
    (root / "f").write_text("x")
    assert _err(reg, "read_file", {"path": "d"}).code == "invalid_arguments"
    assert _err(reg, "list_directory", {"path": "f"}).code == "invalid_arguments"


def test_read_fifo_does_not_hang(reg, root):
    os.mkfifo(root / "pipe")
    assert _err(reg, "read_file", {"path": "pipe"}).code == "invalid_arguments"


def test_list_directory_shape(reg, root):
    (root / "d").mkdir()
    (root / "d" / "b.txt").write_text("12345")
    (root / "d" / "a").mkdir()
    (root / "d" / "c").symlink_to("b.txt")
    os.mkfifo(root / "d" / "p")
    out = reg.call("list_directory", {"path": "d/"})
    assert out == {
        "path": "d",
        "entries": [
            {"name": "a", "type": "directory", "size": 0},
            {"name": "b.txt", "type": "file", "size": 5},
            {"name": "c", "type": "symlink", "size": 0},
            {"name": "p", "type": "other", "size": 0},
        ],
        "truncated": False,
        "skipped": 0,
    }


def test_file_info_shape(reg, root):
    (root / "f.txt").write_text("abc")
    os.utime(root / "f.txt", (0, 86400))
    info = reg.call("file_info", {"path": "./f.txt"})
    assert info == {"path": "f.txt", "type": "file", "size": 3, "modified": "1970-01-02T00:00:00Z"}
    (root / "d").mkdir()
    d = reg.call("file_info", {"path": "d"})
    assert d["type"] == "directory" and d["size"] == 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", d["modified"])
    (root / "l").symlink_to("f.txt")
    assert reg.call("file_info", {"path": "l"})["type"] == "symlink"


def test_schema_errors(reg):
    assert _err(reg, "read_file", {"path": "x", "encoding": "latin-1"}).code == "invalid_arguments"
    assert _err(reg, "read_file", {}).code == "invalid_arguments"
    assert _err(reg, "write_file", {"path": "x"}).code == "invalid_arguments"
    assert _err(reg, "read_file", {"path": ""}).code == "invalid_arguments"


# --- issue 8: names that are not UTF-8, over-long names, answers over the limit --


def test_write_non_utf8_path_refused_and_nothing_created(reg, root):
    e = _err(reg, "write_file", {"path": "latin1-\udce9.txt", "content": "x"})
    assert e.code == "invalid_arguments" and "not valid UTF-8" in e.message
    e.message.encode("utf-8")  # the message itself must be sendable
    assert os.listdir(root) == []
    e = _err(reg, "write_file", {"path": "sub\udcff/x.txt", "content": "x"})
    assert e.code == "invalid_arguments"
    assert os.listdir(root) == []  # not even the parent directory


@pytest.mark.parametrize("name", ["read_file", "file_info", "list_directory"])
def test_other_tools_refuse_non_utf8_path(reg, name):
    assert _err(reg, name, {"path": "x\udce9"}).code == "invalid_arguments"


def test_non_utf8_names_on_disk_are_skipped_and_counted(reg, root):
    (root / "d").mkdir()
    (root / "d" / "ok.txt").write_text("1")
    bad = os.path.join(os.fsencode(root / "d"), b"latin1-\xe9.txt")
    with open(bad, "wb") as fh:
        fh.write(b"x")
    os.mkdir(os.path.join(os.fsencode(root / "d"), b"dir-\xff"))
    out = reg.call("list_directory", {"path": "d"})
    assert out == {
        "path": "d",
        "entries": [{"name": "ok.txt", "type": "file", "size": 1}],
        "truncated": False,
        "skipped": 2,
    }
    json.dumps(out, ensure_ascii=False).encode("utf-8")  # what the API does with it
    info = reg.call("file_info", {"path": "d"})
    assert info["type"] == "directory"
    json.dumps(info, ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize("path", ["a" * 256, "sub/" + "é" * 128, "x" * 300 + "/f.txt"])
def test_overlong_name_refused_without_local_path(reg, root, path):
    e = _err(reg, "write_file", {"path": path, "content": "x"})
    assert e.code == "invalid_arguments" and "255 bytes" in e.message
    assert str(root) not in e.message and str(root.parent) not in e.message
    assert os.listdir(root) == []
    assert _err(reg, "file_info", {"path": path}).code == "invalid_arguments"


def test_name_of_255_bytes_still_works(reg):
    assert reg.call("write_file", {"path": "a" * 255, "content": "x"})["size"] == 1


def test_read_too_large_once_encoded(reg, root):
    # Under the file limit on disk, over it as a JSON string / as base64.
    (root / "nl.txt").write_text("\n" * (MAX // 2 + 1))
    e = _err(reg, "read_file", {"path": "nl.txt"})
    assert e.code == "too_large" and "encoded" in e.message and str(root) not in e.message
    (root / "ctl.txt").write_text("\x01" * (MAX // 6 + 1))
    assert _err(reg, "read_file", {"path": "ctl.txt"}).code == "too_large"
    (root / "bin").write_bytes(b"\0" * (MAX * 3 // 4 + 3))
    e = _err(reg, "read_file", {"path": "bin", "encoding": "base64"})
    assert e.code == "too_large" and "base64" in e.message
    # just under the bound still reads
    (root / "fits.txt").write_text("\n" * (MAX // 2))
    assert reg.call("read_file", {"path": "fits.txt"})["size"] == MAX // 2
