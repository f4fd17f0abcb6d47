"""The scheduler's tick on the real RabbitMQ, Redis and PostgreSQL: what it puts
in the queue, in which order. One tenant with thousands of receipts due has
only its share in the queue, so another tenant's single receipt is never more
than one round behind; syncs follow their interval, across a change of leader."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from kombu.exceptions import OperationalError
from sqlmodel import col, select
from test_fleet_rig import (
    Deployment,
    due_receipts,
    fleet_db,  # noqa: F401 - a fixture
    needs_pg,
    needs_rabbit,
    needs_redis,
    offline_connection,
    tenant_name,
)

from pouracquit.core.credit import PARIS
from pouracquit.core.tenants import Tenants
from pouracquit.fleet.celery_app import make_app
from pouracquit.fleet.daily import DUNNING_TASK, RECONCILE_TASK, paused_key
from pouracquit.fleet.dispatch import Dispatcher
from pouracquit.fleet.inflight import QUEUED_SECONDS, redis_client
from pouracquit.fleet.tasks import SYNC_TASK, WORK_TASK, sync_gate
from pouracquit.state.tables import Receipt

pytestmark = [needs_pg, needs_redis, needs_rabbit]


def queued(app: Celery) -> list[tuple[str, list[Any]]]:
    """The messages waiting in the fleet's queue, in order (taken off it): (task, args)."""
    out = []
    with app.connection_for_read() as conn:
        from kombu import Queue

        queue = Queue(app.conf.task_default_queue, channel=conn.default_channel)
        while (message := queue.get(no_ack=True)) is not None:
            out.append((message.headers["task"], json.loads(message.body)[0]))
    return out


@pytest.fixture
def fleet(tmp_path: Path, fleet_db: str) -> Iterator[tuple[Deployment, Tenants, Celery]]:  # noqa: F811
    deployment = Deployment(tmp_path, fleet_db, fleet={"tenant_inflight": 20, "batch_size": 10})
    deployment.write()
    settings = deployment.settings()
    tenants = Tenants.open(settings)
    app = make_app(settings)
    yield deployment, tenants, app
    with app.connection_for_write() as conn:
        conn.default_channel.queue_delete(app.conf.task_default_queue)
    tenants.close()
    deployment.forget()


def _done(tenants: Tenants, tenant: str, ids: list[str]) -> None:
    """What a worker does with a batch: the receipts finish."""
    with tenants.service(tenant).store.session() as session:
        for row in session.exec(select(Receipt).where(col(Receipt.id).in_(ids))):
            row.status = "done"
            session.add(row)
        session.commit()


def test_a_noisy_tenant_leaves_another_one_round_behind_at_most(fleet: tuple[Deployment, Tenants, Celery]) -> None:
    deployment, tenants, app = fleet
    noisy, quiet, mid = tenant_name("noisy"), tenant_name("quiet"), tenant_name("mid")
    for name in (noisy, quiet, mid):
        deployment.add_tenant(name, offline_connection())
    tenants.refresh()
    due_receipts(tenants.service(noisy).store, "crm", 3000, "n")
    due_receipts(tenants.service(mid).store, "crm", 15, "m")
    due_receipts(tenants.service(quiet).store, "crm", 1, "q")
    redis = redis_client(deployment.settings().fleet.redis)
    dispatcher = Dispatcher(app, tenants, redis, deployment.settings())

    first = dispatcher.tick()
    assert (first.receipts(noisy), first.receipts(mid), first.receipts(quiet)) == (20, 15, 1)
    assert sorted(first.syncs) == sorted((name, "crm") for name in (noisy, quiet, mid))
    messages = queued(app)
    assert [m for m in messages if m[0] == SYNC_TASK] == [(SYNC_TASK, list(s)) for s in first.syncs]
    work = [args for task, args in messages if task == WORK_TASK]
    assert work == [list(batch) for batch in first.batches]
    assert _ahead_of(work, quiet, noisy) <= 20  # behind one share of the noisy tenant at most, not its 3000
    assert dispatcher.tick().batches == []  # every share is in flight: nothing more until some finish

    batches = first.batches
    for round_ in range(6):  # the workers finish what was sent; the quiet tenant gets a new receipt each round
        for name, _, ids in batches:
            dispatcher.inflight.remove(name, ids)
            _done(tenants, name, ids)
        due_receipts(tenants.service(quiet).store, "crm", 1, f"q{round_}-")
        tick = dispatcher.tick()
        assert (tick.receipts(noisy), tick.receipts(quiet)) == (20, 1)
        assert _ahead_of([args for task, args in queued(app) if task == WORK_TASK], quiet, noisy) <= 20
        batches = tick.batches


def _ahead_of(work: list[list[Any]], tenant: str, other: str) -> int:
    """How many of ``other``'s receipts are queued before ``tenant``'s first batch."""
    ahead = 0
    for name, _, ids in work:
        if name == tenant:
            return ahead
        ahead += len(ids) if name == other else 0
    raise AssertionError(f"no batch of {tenant} queued")


def test_tenants_take_turns_and_expired_claims_are_sent_again(fleet: tuple[Deployment, Tenants, Celery]) -> None:
    deployment, tenants, app = fleet
    first, second = sorted([tenant_name("a"), tenant_name("b")])
    for name in (first, second):
        deployment.add_tenant(name, offline_connection())
    tenants.refresh()
    for name in (first, second):
        due_receipts(tenants.service(name).store, "crm", 60, name[:1])
    now = [datetime.now(UTC).timestamp()]
    redis = redis_client(deployment.settings().fleet.redis)
    dispatcher = Dispatcher(app, tenants, redis, deployment.settings(), clock=lambda: now[0])
    one = dispatcher.tick()
    assert [b[0] for b in one.batches] == [first, first, second, second]
    for name, _, ids in one.batches:
        dispatcher.inflight.remove(name, ids)
        _done(tenants, name, ids)
    two = dispatcher.tick()
    assert [b[0] for b in two.batches] == [second, second, first, first]  # the other tenant goes first now
    assert dispatcher.tick().batches == []
    now[0] += QUEUED_SECONDS + 1  # nobody took them (the workers are gone): claimed no more
    again = dispatcher.tick()
    assert [b[0] for b in again.batches] == [second, second, first, first]
    assert again.batches == two.batches  # the same receipts, sent again
    queued(app)


def test_syncs_follow_their_interval_and_a_new_leader_knows_them(fleet: tuple[Deployment, Tenants, Celery]) -> None:
    deployment, tenants, app = fleet
    name = tenant_name("acme")
    deployment.add_tenant(name, offline_connection(interval=60))
    now = [datetime.now(UTC).timestamp()]
    redis = redis_client(deployment.settings().fleet.redis)
    leader = Dispatcher(app, tenants, redis, deployment.settings(), clock=lambda: now[0])
    assert leader.tick().syncs == [(name, "crm")]
    assert leader.tick().syncs == []
    successor = Dispatcher(app, tenants, redis, deployment.settings(), clock=lambda: now[0])
    assert successor.tick().syncs == []  # the last leader's schedule is in Redis
    now[0] += 61
    assert successor.tick().syncs == []  # the sync sent a minute ago has not run yet: no second one behind it
    redis.delete(sync_gate(app.conf.task_default_queue, name, "crm"))  # what the sync task does as it ends
    assert successor.tick().syncs == []  # its next turn is an interval after the one it let pass
    now[0] += 61
    assert successor.tick().syncs == [(name, "crm")]
    assert [m for m in queued(app) if m[0] == SYNC_TASK] == [(SYNC_TASK, [name, "crm"])] * 2


def test_daily_jobs_go_once_a_day_at_their_minute(fleet: tuple[Deployment, Tenants, Celery]) -> None:
    deployment, tenants, app = fleet
    name = tenant_name("acme")
    deployment.add_tenant(name, offline_connection(), dunning={"enabled": True, "hour": 9, "minute": 0},
                          email={"enabled": True, "host": "127.0.0.1", "security": "none"})
    at = [datetime(2026, 12, 1, 5, 29, 50, tzinfo=PARIS)]
    redis = redis_client(deployment.settings().fleet.redis)
    leader = Dispatcher(app, tenants, redis, deployment.settings(), clock=lambda: at[0].timestamp())

    def sent(when: datetime, dispatcher: Dispatcher = leader) -> list[tuple[str, tuple[str, ...]]]:
        at[0] = when
        return dispatcher.tick().daily

    assert sent(at[0]) == []
    assert sent(datetime(2026, 12, 1, 5, 30, 5, tzinfo=PARIS)) == [(RECONCILE_TASK, (name, "crm"))]
    assert sent(datetime(2026, 12, 1, 5, 31, tzinfo=PARIS)) == []
    successor = Dispatcher(app, tenants, redis, deployment.settings(), clock=lambda: at[0].timestamp())
    assert sent(datetime(2026, 12, 1, 5, 40, tzinfo=PARIS), successor) == []  # the day is kept in Redis
    assert sent(datetime(2026, 12, 1, 9, 0, 1, tzinfo=PARIS), successor) == [(DUNNING_TASK, (name,))]
    # the next day no scheduler led at 05:30: the reconciliation waits a day, the reminders go late within an hour
    assert sent(datetime(2026, 12, 2, 7, 0, tzinfo=PARIS), successor) == []
    assert sent(datetime(2026, 12, 2, 9, 45, tzinfo=PARIS), successor) == [(DUNNING_TASK, (name,))]
    messages = [m for m in queued(app) if m[0] in (DUNNING_TASK, RECONCILE_TASK)]
    assert messages == [(RECONCILE_TASK, [name, "crm"]), (DUNNING_TASK, [name]), (DUNNING_TASK, [name])]


def test_a_connection_being_reconciled_gets_no_receipts(fleet: tuple[Deployment, Tenants, Celery]) -> None:
    deployment, tenants, app = fleet
    name = tenant_name("acme")
    deployment.add_tenant(name, offline_connection())
    tenants.refresh()
    due_receipts(tenants.service(name).store, "crm", 5, "p")
    redis = redis_client(deployment.settings().fleet.redis)
    dispatcher = Dispatcher(app, tenants, redis, deployment.settings())
    redis.hset(paused_key(app.conf.task_default_queue), f"{name}/crm", datetime.now(UTC).timestamp() + 60)
    assert dispatcher.tick().batches == []
    redis.hdel(paused_key(app.conf.task_default_queue), f"{name}/crm")
    assert dispatcher.tick().receipts(name) == 5
    queued(app)


def test_what_could_not_be_sent_is_sent_at_the_next_tick(fleet: tuple[Deployment, Tenants, Celery]) -> None:
    deployment, tenants, app = fleet
    name = tenant_name("acme")
    deployment.add_tenant(name, offline_connection())
    at = datetime(2026, 12, 1, 5, 30, 5, tzinfo=PARIS).timestamp()
    redis = redis_client(deployment.settings().fleet.redis)
    broken = make_app(deployment.settings())
    broken.conf.broker_url = "amqp://guest:guest@127.0.0.1:1//"  # the broker is down
    queue = app.conf.task_default_queue
    with pytest.raises(OperationalError):  # the sync first
        Dispatcher(broken, tenants, redis, deployment.settings(), clock=lambda: at).tick()
    assert not redis.exists(sync_gate(queue, name, "crm"))
    redis.hset(f"{queue}:sync:next", f"{name}/crm", at + 3600)
    with pytest.raises(OperationalError):  # then, the sync not due, the reconciliation
        Dispatcher(broken, tenants, redis, deployment.settings(), clock=lambda: at).tick()
    assert not redis.hgetall(f"{queue}:daily")
    redis.delete(f"{queue}:sync:next")
    tick = Dispatcher(app, tenants, redis, deployment.settings(), clock=lambda: at).tick()
    assert tick.syncs == [(name, "crm")]
    assert tick.daily == [(RECONCILE_TASK, (name, "crm"))]  # not lost for the day either
    queued(app)
