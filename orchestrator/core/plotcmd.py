"""The one command builder: a plotter's argv from a jinja2 template.

Each plotter has a template in templates/<plotter>.j2; an inventory host (or
group) may replace it with `plotter_command`, a template string.  A template
renders to one shell-like line which is split with shlex, so every value goes
through the one quoting filter `q` (shlex.quote) and a path with spaces stays
one argument.  Templates see the host's merged inventory vars, overridden by
its validated fields (k, threads, buckets, buffer_mib, farmer_key, pool_key,
pool_contract, bladebit_mode, plotter, count, ...) and tmp_dir, tmp2_dir, dst_dir,
host (the name), `exe`: the plotter's program (its `executable`, else
the PLOTTERS table's name: bladebit_cuda for cudaplot, cuda_plot_k<k> for
Gigahorse), and `f`: the plotter's flags by field (`{{ f.tmp_dir }}` is
bladebit's `-t1`), from the same table the agent reads a running job's argv
with (agent/vocab/plotters/).  Undefined names are errors (StrictUndefined).
"""
from __future__ import annotations

import os
import shlex
from functools import lru_cache
from typing import Optional, Tuple

import jinja2

from orchestrator.errors import InventoryError, UserError
from agent.vocab.plotters import PLOTTERS
from orchestrator.core.state import Host

_TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")

# Host fields a template may use, on top of the raw merged vars.
_FIELDS = ("k", "threads", "buckets", "buffer_mib", "farmer_key", "pool_key",
           "pool_contract", "bladebit_mode", "plotter", "tmp_dirs", "dst_dirs", "log_dir",
           "compress", "cuda_device", "cuda_devices", "disk_128", "disk_16", "nobitfield",
           "exclude_final_dir", "n_buckets3", "rmulti2", "count", "strength")


def _q(value) -> str:
    return shlex.quote(str(value))


def _dirslash(value) -> str:
    value = str(value)
    return value if value.endswith("/") else value + "/"


@lru_cache(maxsize=None)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES),
                             undefined=jinja2.StrictUndefined, autoescape=False,
                             keep_trailing_newline=False)
    env.filters["q"] = _q
    env.filters["dirslash"] = _dirslash
    return env


@lru_cache(maxsize=256)
def _compiled(source: str) -> jinja2.Template:
    return _env().from_string(source)


def _override_error(host: Host, e: Exception) -> UserError:
    msg = getattr(e, "message", None) or str(e)
    line = getattr(e, "lineno", None)
    where = f" (line {line})" if line else ""
    return UserError(f"{host.source}: host {host.name}: plotter_command: {msg}{where}")


def program(host: Host) -> Optional[str]:
    """The binary a host's jobs run: its `executable`, else the plotter's own."""
    if host.executable:
        return host.executable
    p = PLOTTERS.get(host.plotter)
    if p is None or p.executable is None:
        return None
    if host.plotter == "bladebit" and host.bladebit_mode == "cudaplot":
        return "bladebit_cuda"      # plain bladebit has no cudaplot
    return p.executable.format(k=host.k)


class _Flags:
    """`f.<field>` in a template: the flag that sets that field."""

    def __init__(self, spec):
        self._spec = spec

    def __getattr__(self, name):
        if name.startswith("_") or self._spec is None:
            raise AttributeError(name)
        try:
            return self._spec.flag(name)
        except KeyError as e:
            raise AttributeError(str(e)) from None


def _context(host: Host, tmp_dir: str, dst_dir: str, tmp2_dir: Optional[str]) -> dict:
    ctx = dict(host.vars)
    for name in _FIELDS:
        ctx[name] = getattr(host, name)
    ctx["exe"] = program(host)
    ctx["f"] = _Flags(PLOTTERS.get(host.plotter))
    ctx.update(host=host.name, tmp_dir=tmp_dir, dst_dir=dst_dir, tmp2_dir=tmp2_dir)
    return ctx


def _check_keys(host: Host) -> None:
    """madmax and bladebit cannot run without a farmer key and a pool key or contract."""
    p = PLOTTERS.get(host.plotter)
    if p is None or not p.needs_keys:
        return
    if not host.farmer_key:
        raise InventoryError(host.source, host.name, "farmer_key",
                             f"is required by plotter {host.plotter}")
    if not (host.pool_key or host.pool_contract):
        raise InventoryError(host.source, host.name, "pool_key",
                             f"or pool_contract is required by plotter {host.plotter}")


def build_argv(host: Host, tmp_dir: str, dst_dir: str,
               tmp2_dir: Optional[str] = None) -> Tuple[str, ...]:
    """The argv that plots one plot on `host` in tmp_dir -> dst_dir.

    tmp2_dir defaults to the host's `tmp2_dir`.  Raises UserError (one line
    naming inventory file, host and key) for a broken template or missing keys.
    """
    tmp2 = tmp2_dir if tmp2_dir is not None else host.tmp2_dir
    ctx = _context(host, tmp_dir, dst_dir, tmp2)
    if host.plotter_command:
        try:
            text = _compiled(host.plotter_command).render(ctx)
        except jinja2.TemplateError as e:
            raise _override_error(host, e) from None
        what = "plotter_command"
    else:
        if host.plotter not in PLOTTERS:
            raise InventoryError(host.source, host.name, "plotter",
                                 f"must be one of {', '.join(PLOTTERS)}, got {host.plotter!r}")
        _check_keys(host)
        text = _env().get_template(f"{host.plotter}.j2").render(ctx)
        what = f"plotter {host.plotter}"
    try:
        argv = tuple(shlex.split(text))
    except ValueError as e:     # e.g. an unbalanced quote written into an override
        raise UserError(f"{host.source}: host {host.name}: {what}: {e}") from None
    if not argv:
        raise UserError(f"{host.source}: host {host.name}: {what}: renders to an empty command")
    return argv


def validate(host: Host) -> None:
    """Render a plotter's command once, so a broken template fails at inventory
    load (before any host is touched) rather than in the middle of a pass."""
    if host.is_plotter and host.tmp_dirs and host.dst_dirs:
        build_argv(host, host.tmp_dirs[0], host.dst_dirs[0])
