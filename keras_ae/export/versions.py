"""TF Serving's layout, `export_base/model_name/version/`, written atomically.

TF Serving polls `export_base/model_name` and loads numeric folders as
versions. An export is assembled in a hidden, non-numeric folder beside the
version (which the server ignores) and renamed into place only when complete,
so a server never sees a half-written version.
"""

import os
import shutil
import uuid


class VersionError(Exception):
    """The version folder cannot be written; the message says how to fix it."""


def next_version(model_base):
    """One past the highest numeric version in `model_base` (1 if none)."""
    if not os.path.isdir(model_base):
        return 1
    versions = [int(name) for name in os.listdir(model_base) if name.isdigit()]
    return max(versions, default=0) + 1


def target(export_base, model_name, version=None, overwrite=False):
    """The version folder to write: `export_base/model_name/version`.

    Checked before any work is done: `export_base` must be a directory (or not
    exist yet), and an existing version is refused unless `overwrite`.
    """
    if os.path.exists(export_base) and not os.path.isdir(export_base):
        raise VersionError(f"export base {export_base} is a file; pass a directory")
    model_base = os.path.join(export_base, model_name)
    if version is None:
        version = next_version(model_base)
    path = os.path.join(model_base, str(version))
    if os.path.exists(path) and not overwrite:
        raise VersionError(
            f"version {version} already exists at {path}; choose another version "
            "(--version), or replace it (--overwrite)"
        )
    return path


def staging_dir(path):
    """A new empty folder beside `path` to assemble its contents in."""
    parent, version = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    staging = os.path.join(parent, f".staging-{version}-{uuid.uuid4().hex}")
    os.mkdir(staging)
    return staging


def publish(staging, path, overwrite=False):
    """Renames the complete `staging` folder to `path`.

    With `overwrite`, an existing `path` is first moved aside and deleted after
    the rename: the old version disappears for the moment between two renames,
    but neither is ever seen half-written.
    """
    replaced = None
    if os.path.exists(path):
        if not overwrite:
            raise VersionError(
                f"{path} appeared while exporting (another export running?); "
                "export again for the next version"
            )
        replaced = f"{staging}.replaced"
        os.rename(path, replaced)
    try:
        os.rename(staging, path)
    except OSError as e:  # e.g. created by another process between the checks
        if replaced:
            os.rename(replaced, path)
        raise VersionError(f"could not move the export into {path}: {e}") from e
    if replaced:
        shutil.rmtree(replaced)
