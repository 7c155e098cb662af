"""Files: written so that readers see them complete or not at all, and
walked in one fixed order."""

import contextlib
import json
import os
import uuid


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path`; renames it to `path` on success.

    The temporary name ends with the whole name, so it keeps every extension
    (Keras and matplotlib choose the format by it: `.keras`, `.weights.h5`,
    `.png`). On an exception the temporary file is removed and `path` is left
    as it was.
    """
    directory, name = os.path.split(os.path.abspath(path))
    # Not created here, so the writer creates it with the usual permissions.
    tmp = os.path.join(directory, f".tmp-{uuid.uuid4().hex}-{name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path, value):
    """Writes `value` as indented JSON, atomically."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(json.dumps(value, indent=2, sort_keys=True) + "\n")


def beside(path, name):
    """The path of `name` in the folder that holds `path` (a folder's path,
    local or a URL such as gs://...)."""
    return f"{path.rstrip('/').rpartition('/')[0] or '.'}/{name}"


def walk_sorted(walk):
    """`(folder, name)` of each file that `walk` (`os.walk(...)`, or
    `tf.io.gfile.walk(...)`) finds, its subfolders and names in sorted
    order: the order the folder reader takes images in."""
    for root, dirs, names in walk:
        dirs.sort()  # in place: the walk descends in this order
        for name in sorted(names):
            yield root, name
