"""Snapshots: real RDB files, one per shard, under the learner's state directory."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from helpers.aws.controlplane import atrest
from helpers.aws.controlplane import engineops as ops
from helpers.aws.controlplane.errors import (
    ApiError,
    already_exists,
    invalid_combination,
    invalid_state,
    invalid_value,
)
from helpers.aws.controlplane.models.base import Backend, arn, check_id, now
from helpers.aws.controlplane.models.cluster_record import CacheCluster
from helpers.aws.controlplane.models.replication_record import ReplicationGroup
from helpers.runtime import services, state


@dataclass(frozen=True)
class NodeSnapshot:
    """One node's RDB file in a snapshot (of a replication group: one per node group)."""

    node_id: str
    size: int | None  # bytes (None while the snapshot is being taken: CacheSize "")
    node_created: datetime
    cluster_id: str | None = None  # the member cluster it was taken from (replication groups)
    node_group_id: str | None = None
    created: datetime | None = field(default_factory=now)  # None until taken (no SnapshotCreateTime yet)


@dataclass
class Snapshot:
    """A snapshot of a cache cluster or of a replication group: its RDB files and a copy of its source."""

    name: str
    cluster: CacheCluster | None = None  # a copy of the source as it was when the snapshot was taken
    group: ReplicationGroup | None = None
    files: list[str] = field(default_factory=list)  # one RDB file per shard, under the state dir
    status: str = "creating"
    node_snapshots: list[NodeSnapshot] = field(default_factory=list)
    created: datetime = field(default_factory=now)

    @property
    def arn(self) -> str:
        return arn("snapshot", self.name)


class Snapshots(Backend):
    def __init__(self) -> None:
        super().__init__()
        self.snapshots: dict[str, Snapshot] = {}

    def _check_new_snapshot(self, name: str | None, engine: str) -> None:
        if engine == "memcached":
            raise ApiError("Snapshots are not supported for memcached.", "SnapshotFeatureNotSupportedFault")
        check_id(name, "SnapshotName", 255)
        with self.lock:
            if name in self.snapshots:
                raise already_exists("Snapshot", str(name))

    def snapshot_dir(self, name: str) -> Path:
        return state.home() / "aws-snapshots" / name

    def create_snapshot(self, name: str | None, cluster_id: str | None = None, group_id: str | None = None,
                        tags: dict[str, str] | None = None) -> Snapshot:
        if not name:
            raise invalid_value("The parameter SnapshotName must be provided.")
        if cluster_id and group_id:
            raise invalid_combination("Only one of CacheClusterId or ReplicationGroupId can be provided.")
        if group_id:
            g = self.get_group(group_id)
            self._require_available(g)
            self._check_new_snapshot(name, g.engine)
            snap = self._new_snapshot(name, group=g)
            snap.node_snapshots = [NodeSnapshot("0001", None, g.created, cluster_id=m.cluster_id, node_group_id=ng,
                                                created=None) for ng, m in self._snapshot_sources(g)]
            g.status = "snapshotting"

            def work() -> None:
                self._snapshot_group(g, name, snap)
                g.status = "available"

            self.background(f"snapshot-{name}", work, lambda msg: self._snapshot_failed(snap, msg, group=g))
        elif cluster_id:
            cid = str(cluster_id).lower()
            member = next((g for g in self.groups.values() if cid in g.member_ids.values()), None)
            if member:  # a member of a replication group: AWS snapshots the whole group
                return self.create_snapshot(name, group_id=member.group_id, tags=tags)
            cc = self.get_cluster(cid)
            self._check_new_snapshot(name, cc.engine)
            if cc.status != "available":
                raise invalid_state("CacheCluster", cc.cluster_id, cc.status)
            snap = self._new_snapshot(name, cluster=cc)
            snap.node_snapshots = [NodeSnapshot("0001", None, cc.created, created=None)]  # create-snapshot.rst
            cc.status = "snapshotting"

            def work() -> None:
                self._snapshot_cluster(cc, name, snap)
                cc.status = "available"

            self.background(f"snapshot-{name}", work, lambda msg: self._snapshot_failed(snap, msg, cluster=cc))
        else:
            raise invalid_value("One of CacheClusterId or ReplicationGroupId must be provided.")
        self.add_tags(snap.arn, tags)
        return snap

    def _new_snapshot(self, name: str, cluster: CacheCluster | None = None,
                      group: ReplicationGroup | None = None) -> Snapshot:
        """A snapshot keeps a copy of its source as it is now (describe shows the source's settings)."""
        with self.lock:
            if name in self.snapshots:
                raise already_exists("Snapshot", name)
            snap = Snapshot(name, cluster=copy.copy(cluster), group=copy.copy(group))
            self.snapshots[name] = snap
        return snap

    def _snapshot_failed(self, snap: Snapshot, msg: str, group: ReplicationGroup | None = None,
                         cluster: CacheCluster | None = None) -> None:
        snap.status = "failed"
        if group:
            group.status = "available"
        if cluster:
            cluster.status = "available"
        self.event(snap.name, "snapshot", f"Snapshot failed: {msg}")

    def _snapshot_cluster(self, cc: CacheCluster, name: str, snap: Snapshot | None = None) -> None:
        if snap is None:
            snap = self._new_snapshot(name, cluster=cc)
        svc = services.get(cc.service_name())
        if svc is None:
            raise RuntimeError(f"cache cluster {cc.cluster_id} has no running engine")
        target = self.snapshot_dir(name) / "0001.rdb"
        size = ops.bgsave_to(self._cluster_conn(cc, svc.nodes[0]), target)
        snap.files = [str(target)]
        snap.node_snapshots = [NodeSnapshot("0001", size, cc.created)]
        snap.status = "available"
        self.event(cc.cluster_id, "cache-cluster", f"Snapshot succeeded for snapshot with ID '{name}' of cache "
                   f"cluster with ID '{cc.cluster_id}'")

    def _snapshot_group(self, g: ReplicationGroup, name: str, snap: Snapshot | None = None,
                        from_primary: bool = False) -> None:
        """One RDB per node group: from a replica when there is one (the lab's choice, which spares the
        primary's fork; AWS's pages do not say which node a backup of a group uses), or from each primary
        with `from_primary` (a final backup: DeleteReplicationGroup's FinalSnapshotIdentifier "creates the
        snapshot from the primary node... to ensure that it captures the freshest data")."""
        if snap is None:
            snap = self._new_snapshot(name, group=g)
        svc = self.group_service(g)
        files, nodes = [], []
        for ng, pick in self._snapshot_sources(g, from_primary):
            target = self.snapshot_dir(name) / f"{ng}.rdb"
            conn = self._admin(g, svc, pick.node)
            if pick.role == "replica":  # let the replica catch up with the primary first
                with contextlib.suppress(*ops.ENGINE_ERRORS):
                    conn.execute_command("WAIT", 0, 0)
                time.sleep(0.2)
            size = ops.bgsave_to(conn, target)
            if g.at_rest_encryption:  # written encrypted under a data key from the local KMS
                atrest.encrypt_file(target)
            files.append(str(target))
            nodes.append(NodeSnapshot("0001", size, g.created, cluster_id=pick.cluster_id, node_group_id=ng))
        snap.files, snap.node_snapshots = files, nodes
        snap.status = "available"
        self.event(g.group_id, "replication-group",
                   f"Snapshot succeeded for snapshot with ID '{name}' of replication group with ID '{g.group_id}'")

    def _snapshot_sources(self, g: ReplicationGroup, from_primary: bool = False) -> list[tuple[str, Any]]:
        """(node group, the member its RDB is taken from): a replica when there is one (or the primary)."""
        members = self.group_members(g)
        out = []
        for ng in sorted({m.node_group for m in members}):
            mine = [m for m in members if m.node_group == ng]
            wanted = "primary" if from_primary else "replica"
            out.append((ng, next((m for m in mine if m.role == wanted), None) or mine[0]))
        return out

    def get_snapshot(self, name: object) -> Snapshot:
        return self._lookup(self.snapshots, name, "Snapshot")

    def snapshot_to_restore(self, name: str | None) -> Snapshot | None:
        """The snapshot a new cluster or group starts from (None: start empty)."""
        if not name:
            return None
        snap = self.get_snapshot(name)
        if snap.status != "available":
            raise invalid_state("Snapshot", snap.name, snap.status)
        return snap

    def describe_snapshots(self, name: str | None = None, cluster_id: str | None = None,
                           group_id: str | None = None, source: str | None = None) -> list[Snapshot]:
        if name:
            return [self.get_snapshot(name)]
        if cluster_id and group_id:
            raise invalid_combination("Only one of CacheClusterId or ReplicationGroupId can be provided.")
        out = []
        for s in list(self.snapshots.values()):
            if cluster_id and (s.cluster.cluster_id if s.cluster else None) != str(cluster_id).lower():
                continue
            if group_id and (s.group.group_id if s.group else None) != str(group_id).lower():
                continue
            if source not in (None, "user", "manual"):
                continue
            out.append(s)
        return out

    def delete_snapshot(self, name: str | None) -> Snapshot:
        snap = self.get_snapshot(name)
        if snap.status == "creating":
            raise invalid_state("Snapshot", snap.name, "creating")
        snap.status = "deleting"
        with self.lock:
            self.snapshots.pop(snap.name, None)
            self.tags.pop(snap.arn, None)
        shutil.rmtree(self.snapshot_dir(snap.name), ignore_errors=True)
        return snap

    def copy_snapshot(self, source_name: str | None, target_name: str | None, target_bucket: str | None = None,
                      tags: dict[str, str] | None = None) -> Snapshot:
        src = self.get_snapshot(source_name)
        if src.status != "available":
            raise invalid_state("Snapshot", src.name, src.status)
        if target_bucket:
            raise invalid_value("Exporting snapshots to S3 is not available on the local endpoint.")
        self._check_new_snapshot(target_name, "redis")
        name = str(target_name)
        snap = self._new_snapshot(name, cluster=src.cluster, group=src.group)
        # copy-snapshot.rst answers "SnapshotStatus": "creating": available once the files are copied
        # ...its node snapshots keep the source's SnapshotCreateTime (copy-snapshot.rst shows it while creating)
        snap.node_snapshots = [dataclasses.replace(n, size=None) for n in src.node_snapshots]
        self.add_tags(snap.arn, tags)
        answer = dataclasses.replace(snap, node_snapshots=list(snap.node_snapshots))

        def work() -> None:
            files = []
            for f in src.files:
                target = self.snapshot_dir(name) / Path(f).name
                target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                shutil.copyfile(f, target)
                files.append(str(target))
            snap.files = files
            snap.node_snapshots = [dataclasses.replace(n) for n in src.node_snapshots]
            snap.status = "available"
            self.event(name, "snapshot", f"Snapshot {src.name} copied to {name}")

        self.background(f"copy-snapshot-{name}", work, lambda msg: self._snapshot_failed(snap, msg))
        return answer
