"""Runs a Dockerfile's steps on this machine, without a Docker engine: each stage gets a
directory standing for its file system, WORKDIR/COPY map into it, RUN commands run there with
the stage's ARG/ENV values, and the last stage's ENTRYPOINT can be started as its USER.

Package installation (`apt-get update/install`, clearing apt lists) is checked instead of run:
every package named must already be installed here (scripts/install-deps.sh installs them).
`useradd` is recorded, not run; the entrypoint is started with that uid through `setpriv`."""

import glob
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path


def instructions(path):
    """The Dockerfile's instructions as (KEYWORD, text) pairs, continuations joined."""
    result, pending = [], ""
    for raw in Path(path).read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def substitute(text, values, keep_unknown=False):
    """Docker's `${NAME}`/`$NAME` expansion; with `keep_unknown`, names that are no ARG or ENV
    stay for the shell (a RUN command's own variables)."""
    def value(match):
        name = match.group(1) or match.group(2)
        return values.get(name, match.group(0) if keep_unknown else "")

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, text)


def lint(path):
    """What is wrong with a function image's Dockerfile, as a list of messages (empty: fine)."""
    steps = instructions(path)
    problems = []
    stages = [i for i, (keyword, _) in enumerate(steps) if keyword == "FROM"]
    if len(stages) < 2:
        problems.append("not multi-stage: the build stage's toolchain would ship in the image")
    final = steps[stages[-1]:] if stages else steps
    keywords = [keyword for keyword, _ in final]
    users = [text for keyword, text in final if keyword == "USER"]
    if not users or users[-1] in ("0", "root"):
        problems.append("the final stage runs as root: add USER with a non-root uid")
    exposed = " ".join(text for keyword, text in final if keyword == "EXPOSE").split()
    for port in ("50051", "50052"):
        if port not in exposed:
            problems.append(f"EXPOSE {port} missing")
    health = [text for keyword, text in final if keyword == "HEALTHCHECK"]
    if not health or "[ -e /tmp/.lock ]" not in health[-1]:
        problems.append("HEALTHCHECK must test the lock file: CMD [ -e /tmp/.lock ]")
    entry = [text for keyword, text in final if keyword == "ENTRYPOINT"]
    if not entry or not entry[-1].startswith("["):
        problems.append("ENTRYPOINT must be in exec form so the watcher gets SIGTERM")
    if "CMD" in keywords and "ENTRYPOINT" not in keywords:
        problems.append("use ENTRYPOINT, not CMD alone")
    builds = [text for keyword, text in steps[:stages[-1]] if keyword == "RUN" and "swift build" in text]
    if not builds:
        problems.append("no `swift build` in a build stage")
    else:
        # `-c release`, or `-c ${NAME}` with `ARG NAME=release`; `--static-swift-stdlib`, or
        # `${NAME}` with `ARG NAME=--static-swift-stdlib`.
        def given(text, pattern):
            return text in builds[-1] or any(("ARG", f"{name}={text}") in steps
                                             for name in re.findall(pattern, builds[-1]))

        release = given("release", r"-c \$\{(\w+)\}")
        if not (release and given("--static-swift-stdlib", r"\$\{(\w+)\}")):
            problems.append("the watcher must be built with -c release --static-swift-stdlib")
    if not any(keyword == "ARG" for keyword, _ in steps):
        problems.append("no build arguments (ARG) for the handler")
    if not any(keyword == "COPY" and text.startswith("--from=") for keyword, text in final):
        problems.append("the final stage copies nothing from the build stage")
    return problems


class Image:
    """The result of running a Dockerfile's steps: the final stage's directory and metadata."""

    def __init__(self, root, env, user, entrypoint, healthcheck, exposed):
        self.root, self.env, self.user = root, env, user
        self.entrypoint, self.healthcheck, self.exposed = entrypoint, healthcheck, exposed

    def host_path(self, path):
        return self.root / path.lstrip("/")

    def start(self, env_overrides, stdout, stderr):
        """Starts the ENTRYPOINT (its path mapped into the image's directory) with the image's
        ENV plus `env_overrides` (as `docker run -e`), as the image's USER when we are root."""
        command = [str(self.host_path(self.entrypoint[0])), *self.entrypoint[1:]]
        env = {"PATH": os.environ.get("PATH", ""), **self.env, **env_overrides}
        if os.geteuid() == 0 and self.user and self.user.isdigit() and self.user != "0":
            command = ["setpriv", f"--reuid={self.user}", f"--regid={self.user}", "--clear-groups", *command]
        return subprocess.Popen(command, env=env, stdout=stdout, stderr=stderr)

    def healthy(self):
        """Runs the HEALTHCHECK's CMD as a shell command; whether it passes."""
        command = self.healthcheck.split(" CMD ", 1)[1] if " CMD " in self.healthcheck else self.healthcheck
        return subprocess.run(["sh", "-c", command]).returncode == 0


def copy_if_changed(source, destination):
    """Copies a file unless the same bytes are there (so a kept build stays incremental)."""
    source, destination = Path(source), Path(destination)
    if not destination.exists() or destination.read_bytes() != source.read_bytes():
        shutil.copy2(source, destination)
    return destination


def prune_deleted(source, target):
    """Removes what an earlier COPY of `source` left in the kept `target` and `source` no longer
    has (a deleted Swift file would otherwise still be compiled), within the directories that
    `source` has: what RUN steps made beside them (`.build`, `staging`) stays."""
    source, target = Path(source), Path(target)
    for top in (entry for entry in source.iterdir() if entry.is_dir() and not entry.is_symlink()):
        kept = target / top.name
        for path in sorted(kept.rglob("*"), reverse=True) if kept.is_dir() else []:
            if not (source / path.relative_to(target)).exists() and not path.is_symlink():
                path.unlink() if not path.is_dir() else shutil.rmtree(path)


def build(dockerfile, context, scratch, final_root, build_args=None, log=None):
    """Runs every stage of `dockerfile` with `context` as the build context; stages before the
    last live under `scratch` (kept between runs, so builds are incremental), the last one in
    `final_root`. Returns the Image."""
    steps = instructions(dockerfile)
    args = dict(build_args or {})
    global_args, stages, names = {}, [], {}
    root = workdir = None
    values = {}
    env, user, entrypoint, healthcheck, exposed = {}, None, None, None, []
    final_index = sum(1 for keyword, _ in steps if keyword == "FROM") - 1

    def run(command):
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=workdir,
                                env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root"),
                                     **values}, stdout=log, stderr=subprocess.STDOUT if log else None)
        if result.returncode != 0:
            raise AssertionError(f"RUN failed ({result.returncode}): {command}")

    for keyword, text in steps:
        if keyword == "ARG":
            name, _, default = text.partition("=")
            value = args.get(name, substitute(default, values if root else global_args))
            (values if root else global_args)[name] = value
        elif keyword == "FROM":
            index = len(stages)
            root = Path(final_root) if index == final_index else Path(scratch) / f"stage{index}"
            root.mkdir(parents=True, exist_ok=True)
            stages.append(root)
            parts = text.split()
            if len(parts) >= 3 and parts[-2].upper() == "AS":
                names[parts[-1]] = root
            names[str(index)] = root
            workdir, values = root, {}
            env, user, entrypoint, healthcheck, exposed = {}, None, None, None, []
        elif keyword == "WORKDIR":
            workdir = root / substitute(text, values).lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif keyword == "ENV":
            for pair in shlex.split(text):
                name, _, value = pair.partition("=")
                env[name] = values[name] = substitute(value, values)
        elif keyword == "COPY":
            parts = shlex.split(substitute(text, values))
            source_root = Path(context)
            if parts[0].startswith("--from="):
                source_root = names[parts.pop(0).split("=", 1)[1]]
            *sources, destination = parts
            target = (root / destination.lstrip("/")) if destination.startswith("/") else workdir / destination
            for source in sources:
                matches = glob.glob(str(source_root / source.lstrip("/")))
                assert matches, f"COPY: nothing matches {source}"
                for match in map(Path, matches):
                    if match.is_dir():  # as Docker: the directory's contents
                        shutil.copytree(match, target, dirs_exist_ok=True, copy_function=copy_if_changed)
                        prune_deleted(match, target)
                    else:
                        file = target / match.name if destination.endswith("/") else target
                        file.parent.mkdir(parents=True, exist_ok=True)
                        copy_if_changed(match, file)
        elif keyword == "RUN":
            remaining = []
            for segment in substitute(text, values, keep_unknown=True).split("&&"):
                words = segment.split()
                if words[:2] == ["apt-get", "update"] or words[:3] == ["rm", "-rf", "/var/lib/apt/lists/*"]:
                    continue
                if words[:2] == ["apt-get", "install"]:
                    for package in (w for w in words[2:] if not w.startswith("-")):
                        status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True,
                                                text=True).stdout
                        assert "ok installed" in status, f"the image needs Debian package {package}, not installed here"
                    continue
                if words[:1] == ["useradd"]:
                    continue
                remaining.append(segment.strip())
            if remaining:
                run(" && ".join(remaining))
        elif keyword == "USER":
            user = substitute(text, values)
        elif keyword == "EXPOSE":
            exposed += text.split()
        elif keyword == "HEALTHCHECK":
            healthcheck = text
        elif keyword == "ENTRYPOINT":
            entrypoint = [substitute(part, values) for part in json.loads(text)]  # exec form: a JSON list
        elif keyword == "CMD" and entrypoint is None:
            entrypoint = [substitute(part, values) for part in json.loads(text)]
    return Image(Path(final_root), env, user, entrypoint, healthcheck, exposed)
