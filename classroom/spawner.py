"""JupyterHub's LocalProcessSpawner, with each learner's server in a network namespace of its own.

Everything a learner starts (the engines, the ElastiCache API's endpoints, the local AWS endpoint)
listens on 127.0.0.1 *of that namespace*, which no other user can reach: the labs run unchanged.
classroom/isolate.py does the work; this class only puts it in front of the single-user command:

    hub's proxy --> 127.0.0.1:<port> (host)  ==isolate.py==>  127.0.0.1:8888 (learner's namespace)
    single-user --> 127.0.0.1:<hub port> (namespace)  ==isolate.py==>  the hub's API (host)

The server on the host's port checks the hub's OAuth token on every request, as with any spawner.
When the server stops, the learner's lab services are stopped (`python -m helpers stop`) and any
process left in the namespace is ended.

It also prepares the learner's folder on each start: ~/elasticache-lab with a copy of the labs
(theirs to edit; an existing copy is never overwritten) and links to the course's README, docs
and data, installed once for everyone.
"""

from __future__ import annotations

import os
import pwd
import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

from jupyterhub.spawner import LocalProcessSpawner
from jupyterhub.utils import random_port
from traitlets import Integer, List, Unicode

HERE = Path(__file__).resolve().parent


class IsolatedSpawner(LocalProcessSpawner):
    inner_port = Integer(8888, config=True, help="The single-user server's port inside the namespace.")
    isolate_command = List([sys.executable, str(HERE / "isolate.py")], config=True,
                           help="The command that runs the server in a namespace of its own (as root).")
    course_dir = Unicode(str(HERE.parent), config=True, help="The course, installed once (read-only for learners).")
    workspace = Unicode("elasticache-lab", config=True, help="The learner's folder, under their home.")
    stop_command = Unicode("", config=True,
                           help="Run as the learner in the namespace once the server exits (python -m helpers stop).")

    def make_preexec_fn(self, name):  # isolate.py becomes the learner after creating the namespace
        return None

    def get_env(self):
        env = super().get_env()
        base = self.server.base_url if self.server else "/"
        env["JUPYTERHUB_SERVICE_URL"] = f"http://127.0.0.1:{self.inner_port}{base}"
        return env

    def prepare_workspace(self) -> Path:
        user = pwd.getpwnam(self.user.name)
        course = Path(self.course_dir)
        root = Path(user.pw_dir) / self.workspace
        made = []
        if not root.exists():
            root.mkdir(mode=0o700)
            made.append(root)
        os.chmod(root, 0o700)  # a learner's notebooks are theirs alone, whatever the home's mode
        labs = root / "labs"
        if not labs.exists():
            shutil.copytree(course / "labs", labs, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
            made += [labs, *labs.rglob("*")]
        for name in ("README.md", "docs", "data"):
            link = root / name
            if not link.exists() and not link.is_symlink() and (course / name).exists():
                link.symlink_to(course / name)
                made.append(link)
        for path in made:
            os.lchown(path, user.pw_uid, user.pw_gid)
        return root

    async def start(self):
        root = self.prepare_workspace()
        self.notebook_dir = str(root)
        if self.port == 0:
            self.port = random_port()
        hub = urlsplit(self.hub.api_url)
        hub_port = hub.port or 80
        plain = list(self.cmd)
        wrapper = [*self.isolate_command, "--user", self.user.name,
                   "--publish", f"127.0.0.1:{self.port}:{self.inner_port}",
                   "--reach", f"{hub_port}:{hub.hostname}:{hub_port}"]
        if self.stop_command:
            wrapper += ["--stop-command", self.stop_command]
        self.cmd = [*wrapper, "--", *plain]
        try:
            return await super().start()
        finally:
            self.cmd = plain
