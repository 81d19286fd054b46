"""Who owns a finished job's output folder on the host: the notebook's owner.

A job runs as an unprivileged UID; when the tool itself runs as root (CI, some servers)
that UID is not the user's, and root made the folders around the outputs. Once the job
has ended, everything in its output folder (the executed notebook, the files it wrote
next to it, metrics) and the folders root created for it beside the notebook
(``<notebook>.jc-jobs``) are given to the owner of the notebook file. Without root
nothing needs doing: the job ran as the host user.
"""

from __future__ import annotations

import os
from pathlib import Path


def give_outputs_to_notebook_owner(output_dir: Path, notebook: Path) -> None:
    """``chown`` the output folder's tree (and root-made folders up to the notebook's) to the notebook's owner."""
    if os.geteuid() != 0:
        return
    try:
        owner = os.stat(notebook)
        out = output_dir.resolve()
        if not out.is_dir():
            return
    except OSError:
        return
    paths = [out]
    for dirpath, dirnames, filenames in os.walk(out):
        paths += [Path(dirpath, name) for name in (*dirnames, *filenames)]
    nb_dir = notebook.resolve().parent
    for parent in out.parents:
        if parent == nb_dir or nb_dir not in parent.parents:
            break
        if _owned_by(parent, 0):
            paths.append(parent)
    for path in paths:
        if not _owned_by(path, owner.st_uid, owner.st_gid):
            try:
                os.lchown(path, owner.st_uid, owner.st_gid)  # never through a link the job left
            except OSError:
                continue


def _owned_by(path: Path, uid: int, gid: int | None = None) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return True  # gone: nothing to give
    return st.st_uid == uid and (gid is None or st.st_gid == gid)
