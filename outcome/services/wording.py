"""Licensed wording installed by upload (issue 17): the checks of ``outcome instruments
install``, for a file an admin uploads in the browser.

:func:`check_upload` checks a file (a definition, or an overlay with a built-in's
licensed wording) exactly as the command does, and then the clinic's whole folder with
it, as the site will load it at start-up: a file that would stop the site is refused.
:func:`install_upload` checks again and writes it into the clinic's instruments folder
(mode 0600 in a 0700 folder, atomically, through :mod:`outcome.private_files`).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from outcome.core.instruments import Instrument
from outcome.private_files import make_private_dir
from outcome.private_files import write_private_bytes
from questionnaires.loader import DefinitionError
from questionnaires.loader import check_file
from questionnaires.loader import load_library

MAX_BYTES = 256 * 1024
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")


@dataclass(frozen=True)
class UploadProblem:
    where: str  # a field path in the file ("items/3/text"), or "file"
    what: str


class UploadError(ValueError):
    """The upload cannot be installed; ``problems`` say where and what."""

    def __init__(self, problems: list[UploadProblem]) -> None:
        super().__init__("; ".join(f"{p.where}: {p.what}" for p in problems))
        self.problems = problems


def file_name(raw: str) -> str:
    """The name the file is installed under: its own base name, ending in ``.yaml``."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1].strip()
    stem = name.rsplit(".", 1)[0] if name.lower().endswith((".yaml", ".yml")) else ""
    if not stem or not _NAME.fullmatch(stem) or stem.startswith("."):
        raise UploadError([UploadProblem("file", "the file must be a .yaml or .yml file "
                                         "whose name uses letters, digits, '-', '_' or '.'")])
    return f"{stem}.yaml"


def check_upload(name: str, content: bytes, clinic_dir: Path) -> Instrument:
    """The instrument the file defines or completes; raises :class:`UploadError`."""
    target = file_name(name)
    if not content:
        raise UploadError([UploadProblem("file", "the file is empty")])
    if len(content) > MAX_BYTES:
        raise UploadError([UploadProblem("file", f"the file is larger than "
                                         f"{MAX_BYTES // 1024} KiB")])
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        raise UploadError([UploadProblem("file", "the file is not UTF-8 text")]) from None
    with tempfile.TemporaryDirectory(prefix="outcome-wording-") as temp:
        folder = Path(temp)
        path = folder / target
        path.write_bytes(content)
        try:
            instrument = check_file(path)
        except DefinitionError as exc:
            raise UploadError([UploadProblem(where, what) for where, what in exc.problems]
                              ) from None
        # The clinic's folder with this file in it, as the site loads it at start-up.
        if clinic_dir.is_dir():
            for existing in clinic_dir.glob("*.yaml"):
                if existing.name != target:
                    shutil.copyfile(existing, folder / existing.name)
        try:
            load_library(folder)
        except DefinitionError as exc:
            file = Path(exc.file).name
            raise UploadError([UploadProblem(
                where if file == target else f"{file}: {where}", what)
                for where, what in exc.problems]) from None
    return instrument


def install_upload(name: str, content: bytes, clinic_dir: Path) -> tuple[Instrument, Path]:
    """Check the file again and write it into the clinic's folder; returns the
    instrument and the path written (a file of the same name is replaced)."""
    instrument = check_upload(name, content, clinic_dir)
    folder = make_private_dir(clinic_dir)
    target = folder / file_name(name)
    write_private_bytes(target, content)
    return instrument, target
