"""Global names and pg from synchronous code (``erldist.cluster``) against a real
``erl`` node (OTP 25 and 28)."""

from __future__ import annotations

import pytest

from erldist import cluster
from erldist.errors import (
    GlobalNameNotRegistered,
    LookupNotFound,
    RegistryAlreadyExists,
    RegistryInvalidArgument,
    RegistryNotFound,
    RegistryNotOwned,
)
from erldist.term.types import Atom
from tests.support.otp import EpmdProcess, ErlNode, unique_name, wait_until

pytestmark = [pytest.mark.interop, pytest.mark.usefixtures("fresh_facade")]

COOKIE = "clusternames"


def test_names_and_groups_from_sync_code(release: str, epmd: EpmdProcess) -> None:
    with ErlNode(release, name=f"{unique_name('e')}@127.0.0.1", cookie=COOKIE,
                 epmd_port=epmd.port) as erl:
        erl.eval("{ok, _} = pg:start(pg), ok.")
        me = f"{unique_name('s')}@127.0.0.1"
        cluster.start_node(me, COOKIE, epmd_port=epmd.port)
        cluster.connect(erl.name)
        wait_until(lambda: erl.eval("global:sync().") == "ok", what="global sync")
        proc = cluster.process()
        assert cluster.register_name("sync.svc", proc.pid) is True
        assert cluster.whereis_name("sync.svc") == proc.pid
        assert erl.eval("node(global:whereis_name(<<\"sync.svc\">>)).") == f"'{me}'"
        erl.eval("global:send(<<\"sync.svc\">>, hello).")
        assert proc.receive(timeout=10) == Atom("hello")
        erl.eval("EP = spawn(fun() -> receive stop -> ok end end), "
                 "yes = global:register_name(erl_sync, EP).")
        wait_until(lambda: cluster.whereis_name(Atom("erl_sync")) is not None,
                   what="erl_sync in python")
        with pytest.raises(GlobalNameNotRegistered):
            cluster.send_name(Atom("no_such_name"), Atom("x"))
        cluster.unregister_name("sync.svc")
        assert erl.eval("global:whereis_name(<<\"sync.svc\">>).") == "undefined"

        # The seed's registry, from sync code.
        cluster.registry_register("reg.sync", proc.pid)
        assert cluster.registry_lookup("reg.sync") == proc.pid
        with pytest.raises(RegistryAlreadyExists):
            cluster.registry_register("reg.sync", cluster.process().pid)
        with pytest.raises(RegistryInvalidArgument):
            cluster.registry_register("no way", proc.pid)
        erl.eval("RP = spawn(fun() -> receive stop -> ok end end), "
                 "yes = global:register_name(<<\"reg.erl\">>, RP).")
        assert str(cluster.registry_lookup_with_timeout("reg.erl", 10_000, 20).node) \
            == erl.name
        with pytest.raises(RegistryNotOwned):
            cluster.registry_unregister("reg.erl")
        cluster.registry_unregister("reg.sync")
        with pytest.raises(RegistryNotFound):
            cluster.registry_lookup("reg.sync")
        with pytest.raises(LookupNotFound):
            cluster.registry_lookup_with_timeout("reg.never", 100, 20)

        cluster.pg_join(Atom("sync_group"), proc.pid)
        wait_until(lambda: erl.eval("length(pg:get_members(sync_group)).") == "1",
                   what="the python member on erl")
        erl.eval("pg:join(sync_group, EP).")
        wait_until(lambda: len(cluster.pg_members(Atom("sync_group"))) == 2,
                   what="the erl member in python")
        assert cluster.pg_local_members(Atom("sync_group")) == [proc.pid]
        assert cluster.pg_which_groups() == [Atom("sync_group")]
        assert cluster.pg_leave(Atom("sync_group"), proc.pid) is True
        wait_until(lambda: erl.eval("length(pg:get_members(sync_group)).") == "1",
                   what="the python member gone on erl")
