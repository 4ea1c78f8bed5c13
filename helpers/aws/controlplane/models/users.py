"""Users and user groups (RBAC): real ACL users on the engines of the replication groups using them."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from helpers.aws.controlplane import engineops as ops
from helpers.aws.controlplane.errors import (
    ApiError,
    already_exists,
    invalid_combination,
    invalid_state,
    invalid_value,
)
from helpers.aws.controlplane.models.base import ADMIN_USER, Backend, arn, check_id
from helpers.aws.controlplane.models.replication_record import ReplicationGroup

AUTH_STRATEGIES = ("ROTATE", "SET", "DELETE")
# ACL categories of Redis OSS 7 / Valkey (ACL CAT).
ACL_CATEGORIES = frozenset("admin bitmap blocking connection dangerous fast geo hash hyperloglog keyspace list pubsub "
                           "read scripting set slow sortedset stream string transaction write".split())
_KEYWORDS = frozenset({"on", "off", "allkeys", "allchannels", "allcommands", "nocommands", "resetkeys",
                       "resetchannels"})


@functools.cache
def _commands() -> frozenset[str]:
    """Command names (and command|subcommand) the engine knows: data/redis_commands.txt."""
    from helpers.aws import catalogue

    path = catalogue.data_dir() / "redis_commands.txt"
    return frozenset(line.strip() for line in path.read_text().splitlines() if line.strip()
                     and not line.startswith("#"))


def check_access_string(access: str) -> None:
    """Raise InvalidParameterValue unless every rule of the access string is one the engine accepts.

    ElastiCache's syntax is Redis ACL rules: on/off, key patterns (~*, %R~, %W~, %RW~, allkeys),
    channel patterns (&*, allchannels), commands and categories (+get, -@dangerous, +config|get,
    allcommands, nocommands). Passwords are not part of it (use Passwords), nor are reset/nopass.
    """
    tokens = access.split()
    if not tokens:
        raise invalid_value("Access string must not be empty.")
    for token in tokens:
        low = token.lower()
        if low in _KEYWORDS or re.fullmatch(r"(~|%R~|%W~|%RW~)\S+", token) or re.fullmatch(r"&\S+", token):
            continue
        m = re.fullmatch(r"([+-])(@?)([a-z0-9_|-]+)", low)
        if m:
            _, at, name = m.groups()
            if at and name in ACL_CATEGORIES | {"all"}:
                continue
            if not at and name.split("|", 1)[0] in _commands():
                continue
        raise invalid_value(f"Invalid access string: {access!r}. Unknown command or category name in ACL rule "
                            f"{token!r}.")


@dataclass
class User:
    user_id: str
    user_name: str
    engine: str
    access_string: str
    passwords: list[str]
    no_password: bool
    status: str = "active"

    @property
    def arn(self) -> str:
        return arn("user", self.user_id)


@dataclass
class UserGroup:
    group_id: str
    engine: str
    user_ids: list[str]
    status: str = "active"
    pending: dict[str, list[str]] = field(default_factory=dict)  # PendingChanges (UserIdsToAdd/-Remove)

    @property
    def arn(self) -> str:
        return arn("usergroup", self.group_id)


class Users(Backend):
    def __init__(self) -> None:
        super().__init__()
        # The `default` user every account has (AWS's: on ~* +@all, no password)
        self.users: dict[str, User] = {"default": User("default", "default", "redis", "on ~* +@all", [], True)}
        self.user_groups: dict[str, UserGroup] = {}

    # --- AUTH tokens (ModifyCacheCluster / ModifyReplicationGroup AuthTokenUpdateStrategy) -------------
    def check_auth_change(self, engine: str, tls: bool, current: str | None, token: str | None,
                          strategy: str | None, rbac: bool, adding_user_groups: bool = False,
                          rotating: bool = False) -> str | None:
        """The strategy a modify call applies (None: no AUTH change), with AWS's preconditions.

        ROTATE (the default) adds the new token and keeps the current one valid; SET is allowed only
        after ROTATE and leaves the given token as the only one; DELETE (without AuthToken) is allowed
        only when moving to RBAC, i.e. with UserGroupIdsToAdd. Every case needs encryption in transit.
        """
        if strategy is None and token is None:
            return None
        strategy = (strategy or "ROTATE").upper()
        if strategy not in AUTH_STRATEGIES:
            raise invalid_value(f"Invalid value for AuthTokenUpdateStrategy: {strategy}. Valid values: "
                                "SET, ROTATE, DELETE.")
        if engine == "memcached":
            raise invalid_combination("AuthToken is only for Redis OSS / Valkey.")
        if not tls:
            raise invalid_combination("The AUTH token is only supported when encryption in transit is enabled "
                                      "(TransitEncryptionEnabled).")
        if strategy == "DELETE":
            if token is not None:
                raise invalid_combination("AuthToken must not be given with AuthTokenUpdateStrategy DELETE.")
            if not current:
                raise invalid_combination("There is no AUTH token to delete.")
            if not (rbac and adding_user_groups):
                raise invalid_combination("AuthTokenUpdateStrategy DELETE is allowed only when moving to RBAC: "
                                          "give UserGroupIdsToAdd in the same call (replication groups only).")
            return strategy
        if token is None:
            raise invalid_value("AuthToken must be specified with AuthTokenUpdateStrategy " + strategy + ".")
        self.check_token(token, engine, True)
        if strategy == "SET" and not rotating:
            raise invalid_combination("AuthTokenUpdateStrategy SET is allowed only after ROTATE.")
        return strategy

    def apply_auth_change(self, resource: Any, conns: list[Any], token: str | None, strategy: str,
                          internal: str | None = None) -> None:
        """Make every node's default user accept exactly the tokens the strategy leaves (plus the
        control plane's internal password, which replication and Sentinel use)."""
        if strategy == "ROTATE":
            valid = [t for t in (resource.auth_token, token) if t]
            resource.previous_token = resource.auth_token or ""  # not None: SET may follow
        elif strategy == "SET":
            valid = [token]
            resource.previous_token = None
        else:
            valid = []
            resource.previous_token = None
        rules = ["resetpass", *[f">{t}" for t in dict.fromkeys([*([internal] if internal else []), *valid]) if t]]
        if not internal and not valid:
            rules.append("nopass")
        for conn in conns:
            ops.acl_setuser(conn, "default", rules)
        resource.auth_token = token if strategy != "DELETE" else None
        kind = "cache-cluster" if hasattr(resource, "cluster_id") else "replication-group"
        ident = getattr(resource, "cluster_id", None) or resource.group_id
        self.event(ident, kind, f"AUTH token updated ({strategy})")

    def create_user(self, user_id: str | None, user_name: str | None, engine: str | None,
                    access_string: str | None, passwords: list[str] | None = None,
                    no_password_required: bool | None = None, auth_type: str | None = None,
                    auth_passwords: list[str] | None = None, tags: dict[str, str] | None = None) -> User:
        uid = check_id(user_id, "UserId", 40)
        if not user_name:
            raise invalid_value("The parameter UserName must be provided.")
        engine = (engine or "").lower()
        if engine not in ("redis", "valkey"):
            raise invalid_value("Engine must be redis or valkey for a user.")
        if not access_string:
            raise invalid_value("The parameter AccessString must be provided.")
        passwords, nopass = self._passwords(passwords, no_password_required, auth_type, auth_passwords)
        self._check_access_string(access_string)
        with self.lock:
            if uid in self.users:
                raise already_exists("User", uid)
            # Two users may share a user name (describe-users.rst lists user1 and user2, both "myUser");
            # a user group may not hold two of them (DuplicateUserName, see _check_members).
            u = User(uid, user_name, engine, access_string, passwords, nopass)
            self.users[uid] = u
        self.add_tags(u.arn, tags)
        return u

    @staticmethod
    def _passwords(passwords: list[str] | None, nopass: bool | None, auth_type: str | None,
                   auth_passwords: list[str] | None) -> tuple[list[str], bool]:
        """The passwords given directly or in AuthenticationMode (not both), and NoPasswordRequired."""
        passwords = list(passwords or [])
        if auth_passwords and passwords:
            raise invalid_combination("Passwords provided via multiple arguments. Use only one argument")
        passwords = passwords or list(auth_passwords or [])
        if auth_type == "no-password-required":
            nopass = True
        elif auth_type == "iam":
            raise invalid_value("IAM authentication is not available on the local endpoint.")
        if nopass and passwords:
            raise invalid_combination("NoPasswordRequired cannot be combined with passwords.")
        if not nopass and not passwords:
            raise invalid_value("No password was provided. If you want to create/update the user without password, "
                                "please use the NoPasswordRequired flag.")
        if len(passwords) > 2:
            raise invalid_value("A user has at most two passwords.")
        for pw in passwords:
            if not 16 <= len(pw) <= 128:
                raise invalid_value("Passwords length must be between 16-128 characters.")
        return passwords, bool(nopass)

    @staticmethod
    def _check_access_string(access: str) -> None:
        """Parse an access string as ElastiCache does before accepting it (see check_access_string)."""
        check_access_string(access)

    def get_user(self, uid: Any) -> User:
        return self._lookup(self.users, uid, "User")

    def user_groups_of(self, uid: str) -> list[str]:
        return [g.group_id for g in self.user_groups.values() if uid in g.user_ids]

    def modify_user(self, user_id: str | None, access_string: str | None = None,
                    append_access_string: str | None = None, passwords: list[str] | None = None,
                    no_password_required: bool | None = None, auth_type: str | None = None,
                    auth_passwords: list[str] | None = None) -> User:
        """The user as the call leaves it: `modifying` (modify-user.rst) until every engine of the groups
        using it has the new rules, then `active`."""
        u = self.get_user(user_id)
        if u.user_id == "default":
            raise invalid_value("The default user cannot be modified; create another user named default.")
        if u.status != "active":
            raise invalid_state("User", u.user_id, u.status, "active")
        if access_string:
            self._check_access_string(access_string)
        if append_access_string:
            self._check_access_string(append_access_string)
        if passwords or no_password_required is not None or auth_type or auth_passwords:
            u.passwords, u.no_password = self._passwords(passwords, no_password_required, auth_type, auth_passwords)
        if access_string:
            u.access_string = access_string
        if append_access_string:
            u.access_string = appended_access_string(u.access_string, append_access_string)
        u.status = "modifying"
        answer = dataclasses.replace(u)

        def work() -> None:
            self._reapply_for_user(u.user_id)
            u.status = "active"

        def failed(msg: str) -> None:
            u.status = "active"
            self.event(u.user_id, "user", f"Applying the user failed: {msg}")

        self.background(f"user-{u.user_id}", work, failed)
        return answer

    def delete_user(self, user_id: str | None) -> User:
        """The user, now `deleting` (delete-user.rst: a user of a user group, still listed in it): it leaves
        its user groups and their engines, then is gone."""
        u = self.get_user(user_id)
        if u.user_id == "default":
            raise invalid_value("The default user cannot be deleted.")
        if u.status != "active":
            raise invalid_state("User", u.user_id, u.status, "active")
        groups = [self.user_groups[g] for g in self.user_groups_of(u.user_id)]
        if u.user_name == "default" and groups:
            raise ApiError(f"User {u.user_id} is the default user of user group(s) "
                           f"{', '.join(g.group_id for g in groups)}.", "DefaultUserAssociatedToUserGroup")
        u.status = "deleting"
        answer = dataclasses.replace(u)

        def work() -> None:
            for ug in groups:
                ug.user_ids = [x for x in ug.user_ids if x != u.user_id]
                for g in self.groups_using(ug.group_id):
                    self._apply_user_groups(g)
            with self.lock:
                self.users.pop(u.user_id, None)
                self.tags.pop(u.arn, None)

        def failed(msg: str) -> None:
            u.status = "active"
            self.event(u.user_id, "user", f"Deleting the user failed: {msg}")

        self.background(f"delete-user-{u.user_id}", work, failed)
        return answer

    def describe_users(self, user_id: str | None = None) -> list[User]:
        return self._describe(user_id, self.get_user, self.users)

    def create_user_group(self, group_id: str | None, engine: str | None, user_ids: list[str] | None = None,
                          tags: dict[str, str] | None = None) -> UserGroup:
        gid = check_id(group_id, "UserGroupId", 40)
        engine = (engine or "").lower()
        if engine not in ("redis", "valkey"):
            raise invalid_value("Engine must be redis or valkey for a user group.")
        ids = list(dict.fromkeys(user_ids or []))
        self._check_members(ids, engine)
        with self.lock:
            if gid in self.user_groups:
                raise already_exists("UserGroup", gid)
            ug = UserGroup(gid, engine, ids, status="creating")  # create-user-group.rst: "creating"
            self.user_groups[gid] = ug
        self.add_tags(ug.arn, tags)
        answer = dataclasses.replace(ug)

        def work() -> None:
            ug.status = "active"

        self.background(f"usergroup-{gid}", work, lambda msg: setattr(ug, "status", "active"))
        return answer

    def _check_members(self, ids: list[str], engine: str, creating: bool = True) -> None:
        """The users a user group holds: each exists, one named default (Redis OSS), no user name twice."""
        users = [self.get_user(u) for u in ids]
        if engine == "redis" and not any(u.user_name == "default" for u in users):
            raise ApiError(f"A user group must {'contain' if creating else 'keep'} a user with the user name "
                           "default.", "DefaultUserRequired")
        names = [u.user_name for u in users]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ApiError(f"A user group cannot hold two users with the same user name: {', '.join(twice)}.",
                           "DuplicateUserName")

    def get_user_group(self, gid: Any) -> UserGroup:
        return self._lookup(self.user_groups, gid, "UserGroup", lower=True)

    def groups_using(self, ug_id: str) -> list[ReplicationGroup]:
        return [g for g in self.groups.values() if ug_id in g.user_group_ids]

    def modify_user_group(self, group_id: str | None, add: list[str] | None = None,
                          remove: list[str] | None = None) -> UserGroup:
        """Returns the user group as the call leaves it (modifying); the engines follow in the background."""
        ug = self.get_user_group(group_id)
        if ug.status != "active":
            raise invalid_state("UserGroup", ug.group_id, ug.status, "active")
        add, remove = list(dict.fromkeys(add or [])), list(dict.fromkeys(remove or []))
        for u in add + remove:
            self.get_user(u)
        ids = [u for u in ug.user_ids if u not in remove] + [u for u in add if u not in ug.user_ids]
        self._check_members(ids, ug.engine, creating=False)
        # modify-user-group.rst: UserIds as they are, the change in PendingChanges until it is applied
        ug.pending = {k: v for k, v in (("UserIdsToAdd", [u for u in add if u not in ug.user_ids]),
                                        ("UserIdsToRemove", [u for u in remove if u in ug.user_ids])) if v}
        ug.status = "modifying"
        rgs = self.groups_using(ug.group_id)
        answer = dataclasses.replace(ug, user_ids=list(ug.user_ids), pending=dict(ug.pending))

        def work() -> None:
            ug.user_ids = ids
            for g in rgs:
                self._apply_user_groups(g)
            ug.pending = {}
            ug.status = "active"

        def failed(msg: str) -> None:
            ug.pending = {}
            ug.status = "active"
            self.event(ug.group_id, "user-group", f"Applying the user group failed: {msg}")

        self.background(f"usergroup-{ug.group_id}", work, failed)
        return answer

    def delete_user_group(self, group_id: str | None) -> UserGroup:
        ug = self.get_user_group(group_id)
        using = self.groups_using(ug.group_id)
        if using:
            raise invalid_state("UserGroup", ug.group_id, f"in use by {', '.join(g.group_id for g in using)}",
                                "detached")
        ug.status = "deleting"
        with self.lock:
            self.user_groups.pop(ug.group_id, None)
        return ug

    def describe_user_groups(self, group_id: str | None = None) -> list[UserGroup]:
        return self._describe(group_id, self.get_user_group, self.user_groups)

    def _reapply_for_user(self, uid: str) -> None:
        for ug in self.user_groups.values():
            if uid in ug.user_ids:
                for g in self.groups_using(ug.group_id):
                    self._apply_user_groups(g)

    def _apply_user_groups(self, g: ReplicationGroup) -> None:
        """Make the engines' ACL match the group's user groups (ACL SETUSER/DELUSER on every node).

        The control plane keeps its own ACL user, and replication and Sentinel use it, so the
        learner's `default` user can be switched off as AWS recommends.
        """
        svc = self.group_service(g)
        wanted: dict[str, User] = {}
        for ug_id in g.user_group_ids:
            ug = self.user_groups.get(ug_id)
            for uid in ug.user_ids if ug else []:
                u = self.users[uid]
                wanted[u.user_name] = u
        if not g.admin_password:
            g.admin_password = svc.password() or secrets.token_urlsafe(24)
            for node in ops.data_nodes(svc):
                conn = ops.redis_conn(node.host, node.port, password=svc.password() or g.auth_token, tls=g.tls)
                ops.acl_setuser(conn, ADMIN_USER, ["reset", "on", f">{g.admin_password}", "~*", "&*", "+@all"])
                conn.config_set("masteruser", ADMIN_USER)
                conn.config_set("masterauth", g.admin_password)
            if g.topology == "replicated":
                from helpers.runtime import topologies

                for s in svc.nodes_by(role="sentinel"):
                    c = topologies.sentinel_node_client(svc, s)
                    with contextlib.suppress(*ops.ENGINE_ERRORS, KeyError):
                        c.execute_command("SENTINEL", "SET", svc.meta["master_name"], "auth-user", ADMIN_USER)
                        c.execute_command("SENTINEL", "SET", svc.meta["master_name"], "auth-pass", g.admin_password)
        for node in ops.data_nodes(svc):
            conn = self._admin(g, svc, node)
            for name, u in wanted.items():
                rules = ops.acl_rules(u.access_string, u.passwords, u.no_password)
                ops.acl_setuser(conn, name, rules)
            for name in g.applied_users - set(wanted) - {"default", ADMIN_USER}:
                ops.acl_deluser(conn, name)
            if "default" not in wanted:  # no user group any more: back to an open default user
                ops.acl_setuser(conn, "default", ["reset", "on", "nopass", "~*", "&*", "+@all"])
        g.applied_users = set(wanted)
        self.event(g.group_id, "replication-group",
                   f"User group(s) {', '.join(g.user_group_ids) or '(none)'} applied: users {', '.join(sorted(wanted))}")

    def _secure_new_nodes(self, g: ReplicationGroup) -> None:
        """Nodes added by scaling get the same AUTH token / ACL users as the others."""
        if g.auth_token:
            svc = self.group_service(g)
            for node in ops.data_nodes(svc):
                with contextlib.suppress(*ops.ENGINE_ERRORS):
                    conn = ops.redis_conn(node.host, node.port, password=svc.password(), tls=g.tls)
                    ops.acl_setuser(conn, "default", [f">{g.auth_token}"])
        if g.user_group_ids:
            saved = g.admin_password
            svc = self.group_service(g)
            for node in ops.data_nodes(svc):
                conn = ops.redis_conn(node.host, node.port, password=svc.password(), tls=g.tls)
                with contextlib.suppress(*ops.ENGINE_ERRORS):
                    if conn.ping():  # a new node still has the internal password on default
                        ops.acl_setuser(conn, ADMIN_USER, ["reset", "on", f">{saved}", "~*", "&*", "+@all"])
                        conn.config_set("masteruser", ADMIN_USER)
                        conn.config_set("masterauth", saved)
            self._apply_user_groups(g)


# Rules that reset what earlier rules of the same kind said (ACL SETUSER applies them in order).
_RESETS = {
    "state": ({"on", "off"}, lambda t: t in ("on", "off")),
    "keys": ({"~*", "allkeys", "resetkeys"}, lambda t: t.startswith(("~", "%")) or t in ("allkeys", "resetkeys")),
    "channels": ({"&*", "allchannels", "resetchannels"},
                 lambda t: t.startswith("&") or t in ("allchannels", "resetchannels")),
    "commands": ({"+@all", "-@all", "allcommands", "nocommands"},
                 lambda t: t[:1] in "+-" or t in ("allcommands", "nocommands")),
}


def appended_access_string(current: str, appended: str) -> str:
    """The access string a user has after --append-access-string: the rules appended, after the current
    ones that they do not override. ACL rules apply in order, so `+@all` after any command rules allows
    every command and `~*` after key patterns allows every key: modify-user.rst appends "on ~* +@all" to
    user2's "on ~app::* -@all +@read ..." and answers "on ~* +@all"."""
    new = appended.split()
    keep = current.split()
    for resets, of_kind in _RESETS.values():
        if any(t.lower() in resets for t in new):
            keep = [t for t in keep if not of_kind(t.lower())]
    return " ".join(keep + new)

