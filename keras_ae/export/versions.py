"""TF Serving's layout, `export_base/model_name/version/`, written atomically.

TF Serving polls `export_base/model_name` and loads numeric folders as
versions. An export is assembled in a hidden, non-numeric folder beside the
version (which the server ignores) and renamed into place only when complete,
so a server never sees a half-written version.
"""

import os
import re
import shutil
import socket
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
    """A new empty folder beside `path` to assemble its contents in.

    Its name holds this host and process, so that the folders of an export that
    was killed can be recognised and removed (`remove_abandoned`).
    """
    parent, version = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    remove_abandoned(parent)
    staging = os.path.join(
        parent, f".staging-{version}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex}"
    )
    os.mkdir(staging)
    return staging


_STAGING = re.compile(r"\.staging-(\d+)-(.+)-(\d+)-[0-9a-f]{32}(\.replaced)?")


def remove_abandoned(model_base):
    """Cleans up after exports killed on this host: deletes their staging
    folders, and puts back a version an `overwrite` had moved aside but not
    yet replaced."""
    for name in os.listdir(model_base):
        match = _STAGING.fullmatch(name)
        if not match or match[2] != socket.gethostname() or _alive(int(match[3])):
            continue
        folder, version = os.path.join(model_base, name), os.path.join(model_base, match[1])
        if match[4] and not os.path.exists(version):
            os.rename(folder, version)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


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
