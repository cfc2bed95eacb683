"""Where files may be read and written: the one place that decides, so every tool and the CLI agree.

On stdio the server runs as the user on their own machine, so it may read any regular file they name (what
they could open themselves). Over HTTP the server is not on the user's disk and a path names the server's
files: reading is off unless an operator sets an import folder, and then a path is confined to it by the
rules the exports folder follows (no '..', nothing that resolves outside it, symbolic links included).
Directories, devices, FIFOs and sockets are refused by name: reading a FIFO would hang the call and a device
never ends. Output goes to the exports folder under a plain name claimed exclusively (never an existing
file), or on stdio to a path the user names.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from io import BufferedReader
from pathlib import Path, PurePath

from databar_mcp.core.files.export_writing import UnsafeName, claim_new_file, export_stem
from databar_mcp.core.files.formats import EXTENSIONS, FileFormat
from databar_mcp.core.files.problems import FileRefused

IMPORT_DIR_VAR = "DATABAR_MCP_IMPORT_DIR"
UNSAFE_STEM_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder, not a file: name a file inside it"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO), not a file"
    if stat.S_ISSOCK(mode):
        return "a socket, not a file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not a file"
    return "not a regular file"


def _regular_file(path: Path, shown: str) -> Path:
    """`path` resolved, when it is an existing regular file this process may read."""
    try:
        resolved = path.resolve(strict=True)
        mode = resolved.stat().st_mode
    except FileNotFoundError:
        raise FileRefused(f"No file at {shown} ({path}).") from None
    except (OSError, ValueError) as exc:  # a loop of links, a name too long, a NUL byte
        raise FileRefused(f"{shown} cannot be opened: {getattr(exc, 'strerror', None) or exc}.") from None
    if (kind := _kind(mode)) is not None:
        raise FileRefused(f"{shown} is {kind}.")
    if not os.access(resolved, os.R_OK):
        raise FileRefused(f"{shown} cannot be read by the server: permission denied.")
    return resolved


def _inside_import_dir(requested: str, import_dir: Path) -> Path:
    root = import_dir.expanduser().resolve()
    given = PurePath(requested)
    if ".." in given.parts:
        raise FileRefused(f"{requested}: '..' is not allowed; name a file inside the import folder.")
    if requested.startswith("~"):
        raise FileRefused(f"{requested}: '~' means nothing on the server; name a file inside the import folder.")
    if given.is_absolute():
        # an absolute path must already point inside the folder (as configured, or as it resolves)
        for base in (import_dir.expanduser().absolute(), root):
            if given.is_relative_to(base):
                given = given.relative_to(base)
                break
        else:
            raise FileRefused(f"{requested} is outside the import folder; name a file inside it, such as leads.csv.")
    resolved = _regular_file(root / given, requested)
    if not resolved.is_relative_to(root):
        raise FileRefused(f"{requested} leads outside the import folder (a symbolic link?): it cannot be read.")
    return resolved


def input_path(requested: str, *, local: bool, import_dir: Path | None) -> Path:
    """The resolved file to read, or FileRefused saying why not.

    `local`: the server runs on the user's machine (stdio): any regular file, `~` expanded, a relative path
    taken from the working directory. Otherwise only a file inside `import_dir`, named relative to it.
    """
    if not requested.strip():
        raise FileRefused("input_file is empty: name the file to read.")
    if local:
        return _regular_file(Path(requested).expanduser().absolute(), requested)
    if import_dir is None:
        raise FileRefused(
            "This server runs over HTTP, away from your files, and reading files is off: its operator can set "
            f"{IMPORT_DIR_VAR} to a folder whose files it may read. Otherwise pass the rows in the call.",
            details={"setting": IMPORT_DIR_VAR},
        )
    return _inside_import_dir(requested, import_dir)


def open_regular(path: Path) -> BufferedReader:
    """Open for reading, refusing (even now, after the checks) a symbolic link or anything but a regular file.

    O_NONBLOCK keeps a FIFO swapped in after the check from hanging the open; the file is blocking again
    once it is known to be regular.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise FileRefused(f"{path.name} cannot be opened: {exc.strerror or type(exc).__name__}.") from None
    try:
        if (kind := _kind(os.fstat(fd).st_mode)) is not None:
            raise FileRefused(f"{path.name} is {kind}.")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@dataclass(frozen=True)
class OutputPlace:
    path: Path
    format: FileFormat
    claimed: bool  # an empty file created for this output in the exports folder: remove it if writing fails


def output_format(requested: str | None, input_format: FileFormat) -> FileFormat:
    """The format the output name asks for by its extension; else the input's own."""
    if requested is not None and (suffix := PurePath(requested).suffix.lower()) in EXTENSIONS:
        return EXTENSIONS[suffix]
    return input_format


def default_output_stem(input_file: Path) -> str:
    """leads.csv -> leads-enriched: a plain name the exports folder accepts."""
    stem = UNSAFE_STEM_CHARS.sub("_", input_file.stem).strip("._-")[:80] or "input"
    return f"{stem}-enriched"


def _extension(name: str, fmt: FileFormat) -> str:
    """The name's own extension when it is one of `fmt`'s (leads.tsv stays .tsv), else the format's."""
    suffix = PurePath(name).suffix.lower()
    return suffix[1:] if EXTENSIONS.get(suffix) == fmt and suffix != ".xlsm" else fmt


def _plain_name(requested: str) -> bool:
    return PurePath(requested).name == requested and not requested.startswith("~")


def output_path(
    requested: str | None,
    *,
    local: bool,
    exports_dir: Path,
    input_file: Path,
    input_format: FileFormat,
    overwrite: bool = False,
) -> OutputPlace:
    """Where the output goes: a plain name (or none) is a new file in the exports folder, claimed so no two
    outputs share it; on stdio a path with a folder (`~/out.csv`, `/tmp/out.xlsx`) is taken as the user's
    choice, refused when it exists (unless `overwrite`) or is the input itself."""
    fmt = output_format(requested, input_format)
    if requested is None or _plain_name(requested):
        ext = _extension(requested or input_file.name, fmt)
        try:
            stem = export_stem(default_output_stem(input_file), requested, ext)
        except UnsafeName as exc:
            raise FileRefused(f"output_file: {exc}.") from None
        return OutputPlace(claim_new_file(exports_dir, stem, ext), fmt, claimed=True)
    if not local:
        raise FileRefused(
            "output_file must be a plain file name here (the server writes into its exports folder), "
            "such as leads_enriched.csv."
        )
    path = Path(requested).expanduser().absolute()
    if not path.parent.is_dir():
        raise FileRefused(f"output_file {requested}: the folder {path.parent} does not exist.")
    if path.exists() or path.is_symlink():
        kind = _kind(path.lstat().st_mode) if not path.is_symlink() else "a symbolic link"
        if kind is not None:
            raise FileRefused(f"output_file {requested} is {kind}.")
        if path.resolve() == input_file.resolve():
            raise FileRefused(f"output_file {requested} is the input file: name another file.")
        if not overwrite:
            raise FileRefused(f"output_file {requested} already exists: name another file, or remove it first.")
    if not os.access(path.parent, os.W_OK):
        raise FileRefused(f"output_file {requested}: the folder {path.parent} is not writable by the server.")
    return OutputPlace(path, fmt, claimed=False)
