"""Patches to moto's CloudFormation: generated physical names that survive a restart.

A resource without a name of its own gets one CloudFormation makes up
(`<stack>-<LogicalId>-<suffix>`); moto drew the suffix at random, so a stack made again at
start (stack_store.py) renamed its roles, queues and nested stacks, and whatever had been
handed their old names lost them. Each stack now draws its suffixes from a seed, new for
every stack created (as AWS's are new), kept by the stack store and given back at restore:
the same stack, made again, names its resources as before.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import hashlib
import uuid

# the seed names are drawn from while a stack is created or updated (nested stacks inherit it)
_SEED: contextvars.ContextVar = contextvars.ContextVar("stack_name_seed", default=None)
# the seed being given back while a kept stack is made again
_RESTORING: contextvars.ContextVar = contextvars.ContextVar("restoring_seed", default=None)
# (account, region, stack name) -> the seed of that live stack
_SEEDS: dict[tuple[str, str, str], str] = {}
# (seed, logical id) while moto generates one resource's name
_NAMING: contextvars.ContextVar = contextvars.ContextVar("naming", default=None)


def seed_of(account: str, region: str, stack_name: str) -> str | None:
    """The seed a live stack's names were drawn from (the stack store keeps it)."""
    return _SEEDS.get((account, region, stack_name))


@contextlib.contextmanager
def restoring(seed: str | None):
    """Make a kept stack again with the names it had (its seed, as the store kept it)."""
    token = _RESTORING.set(seed)
    try:
        yield
    finally:
        _RESTORING.reset(token)


def name_generated_resources_from_a_seed() -> None:
    from moto.cloudformation import parsing
    from moto.cloudformation.models import CloudFormationBackend

    upstream_generate = parsing.parse_resource_and_generate_name
    upstream_suffix = parsing.random_suffix
    if getattr(upstream_generate, "__wrapped__", None) is not None:
        return  # already applied

    def parse_resource_and_generate_name(logical_id, resource_json, resources_map):
        seed = _SEED.get()
        stack_name = resources_map._parsed_resources.get("AWS::StackName", "")
        token = _NAMING.set((f"{seed}/{stack_name}", logical_id) if seed else None)
        try:
            return upstream_generate(logical_id, resource_json, resources_map)
        finally:
            _NAMING.reset(token)

    def random_suffix() -> str:
        naming = _NAMING.get()
        if naming is None:
            return upstream_suffix()
        digest = hashlib.sha256("\0".join(naming).encode()).digest()
        return base64.b32encode(digest).decode()[:12]  # as moto's: 12 of A-Z and digits

    def seeded(backend, stack_name: str, new: bool):
        """The seed for a change to `stack_name`: inherited inside a parent's change; else
        the restored one, a new one for a new stack, or the stack's own."""
        if _SEED.get() is not None:
            return contextlib.nullcontext()
        key = (backend.account_id, backend.region_name, stack_name)
        restored = _RESTORING.get()
        if restored or new or key not in _SEEDS:
            _SEEDS[key] = restored or uuid.uuid4().hex
        return _seeded(_SEEDS[key])

    upstream_create = CloudFormationBackend.create_stack
    upstream_update = CloudFormationBackend.update_stack
    upstream_execute = CloudFormationBackend.execute_change_set

    def create_stack(backend, name, *args, **kwargs):
        with seeded(backend, name, new=True):
            return upstream_create(backend, name, *args, **kwargs)

    def update_stack(backend, name, *args, **kwargs):
        stack_name = backend.get_stack(name).name
        with seeded(backend, stack_name, new=False):
            return upstream_update(backend, name, *args, **kwargs)

    def execute_change_set(backend, change_set_name, stack_name=None):
        from harness.emulator.patches.cloudformation.change_sets import change_set_of

        try:
            change_set = change_set_of(backend, change_set_name, stack_name)
        except Exception:  # moto's ValidationError: upstream answers it
            return upstream_execute(backend, change_set_name, stack_name)
        new = change_set.change_set_type == "CREATE"
        with seeded(backend, change_set.stack.name, new=new):
            return upstream_execute(backend, change_set_name, stack_name)

    for wrapper, upstream in (
        (parse_resource_and_generate_name, upstream_generate),
        (random_suffix, upstream_suffix),
        (create_stack, upstream_create),
        (update_stack, upstream_update),
        (execute_change_set, upstream_execute),
    ):
        wrapper.__wrapped__ = upstream
    parsing.parse_resource_and_generate_name = parse_resource_and_generate_name
    parsing.random_suffix = random_suffix
    CloudFormationBackend.create_stack = create_stack
    CloudFormationBackend.update_stack = update_stack
    CloudFormationBackend.execute_change_set = execute_change_set


@contextlib.contextmanager
def _seeded(seed: str):
    token = _SEED.set(seed)
    try:
        yield
    finally:
        _SEED.reset(token)
