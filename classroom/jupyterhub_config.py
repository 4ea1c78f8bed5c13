"""JupyterHub for a class on one Linux server: one Unix user per learner, the course installed once,
each learner's server in a private network namespace (classroom/spawner.py). docs/classroom.md
says how to set it up; `make classroom-test` runs it with four learners.

Settings come from the environment, so the same file serves the real server and the test:
  ELASTICACHE_LAB_COURSE          the course checkout (default: this file's repository)
  ELASTICACHE_LAB_COURSE_PYTHON   the course's Python, with jupyterhub installed in it (default: <course>/.venv/bin/python)
  ELASTICACHE_LAB_COURSE_PYTHONPATH  added to the learners' PYTHONPATH (the test uses it; a server does not need it)
  ELASTICACHE_LAB_LEARNERS_GROUP  the Unix group whose members may log in (default: elasticache-learners)
  ELASTICACHE_LAB_INSTRUCTORS     comma-separated admin users (default: none)
  ELASTICACHE_LAB_CLASS_DIR       the drop box of shared progress (default: /srv/elasticache-lab/class-progress)
  ELASTICACHE_LAB_HUB_PORT, ELASTICACHE_LAB_HUB_API_PORT, ELASTICACHE_LAB_PROXY_API_PORT, ELASTICACHE_LAB_HUB_STATE
  ELASTICACHE_LAB_CHP             the configurable-http-proxy command (default: on PATH)
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from spawner import IsolatedSpawner  # noqa: E402

c = get_config()  # noqa: F821 (JupyterHub's config loader provides it)
env = os.environ.get
course = Path(env("ELASTICACHE_LAB_COURSE", str(HERE.parent)))
course_python = env("ELASTICACHE_LAB_COURSE_PYTHON", str(course / ".venv" / "bin" / "python"))
state = Path(env("ELASTICACHE_LAB_HUB_STATE", "/srv/elasticache-lab/hub"))
state.mkdir(parents=True, exist_ok=True, mode=0o700)

c.JupyterHub.bind_url = f"http://{env('ELASTICACHE_LAB_HUB_IP', '127.0.0.1')}:{env('ELASTICACHE_LAB_HUB_PORT', '8000')}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(env("ELASTICACHE_LAB_HUB_API_PORT", "8081"))
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{env('ELASTICACHE_LAB_PROXY_API_PORT', '8001')}"
c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
if env("ELASTICACHE_LAB_CHP"):
    c.ConfigurableHTTPProxy.command = [env("ELASTICACHE_LAB_CHP")]

# Who: the Unix users of a group log in with their password (PAM); instructors are admins.
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_groups = {env("ELASTICACHE_LAB_LEARNERS_GROUP", "elasticache-learners")}
c.Authenticator.admin_users = {u for u in env("ELASTICACHE_LAB_INSTRUCTORS", "").split(",") if u}

# What each learner runs: the course's JupyterLab, from the course's Python, in their own namespace.
c.JupyterHub.spawner_class = IsolatedSpawner
c.IsolatedSpawner.course_dir = str(course)
c.Spawner.cmd = [course_python, "-m", "jupyterhub.singleuser"]
c.IsolatedSpawner.stop_command = f"{course_python} -m helpers stop"
c.Spawner.default_url = "/lab/tree/labs/00_welcome.ipynb"
pythonpath = ":".join(p for p in (str(course), env("ELASTICACHE_LAB_COURSE_PYTHONPATH", "")) if p)
c.Spawner.environment = {
    "PATH": f"{Path(course_python).parent}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
    "PYTHONPATH": pythonpath,
    # no news prompt, terminals in the lab's environment, idle kernels culled; the light python3 kernel
    "JUPYTER_CONFIG_PATH": str(course / "helpers" / "tools" / "jupyter_config"),
    "JUPYTER_PATH": str(course / "helpers" / "tools" / "jupyter_data"),
    "MALLOC_ARENA_MAX": "2",
    "ELASTICACHE_LAB_CLASS_DIR": env("ELASTICACHE_LAB_CLASS_DIR", "/srv/elasticache-lab/class-progress"),
}
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 90
# Per learner: the measured need is in docs/instructor-guide.md ("A class on one server").
c.Spawner.mem_limit = env("ELASTICACHE_LAB_MEM_LIMIT") or None

# An idle learner's server (and with it their engines) is stopped after an hour: `pip install
# jupyterhub-idle-culler` and uncomment.
# c.JupyterHub.services = [{"name": "idle-culler", "command": [sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=3600"]}]
# c.JupyterHub.load_roles = [{"name": "idle-culler", "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"], "services": ["idle-culler"]}]

# The test's admin service (its token comes from the environment, never from a command line).
if env("ELASTICACHE_LAB_TEST_SERVICE_TOKEN"):
    c.JupyterHub.services = [{"name": "classroom-test", "api_token": env("ELASTICACHE_LAB_TEST_SERVICE_TOKEN")}]
    c.JupyterHub.load_roles = [{"name": "classroom-test", "services": ["classroom-test"],
                                "scopes": ["admin:users", "admin:servers", "tokens", "access:servers",
                                           "list:users", "read:users"]}]
    c.Authenticator.allowed_users = {u for u in env("ELASTICACHE_LAB_TEST_USERS", "").split(",") if u}
extra = Path(env("ELASTICACHE_LAB_HUB_EXTRA_CONFIG", str(state / "extra_config.py")))
if extra.is_file():
    load_subconfig(str(extra))  # noqa: F821
