"""The agent's protocol: each op declared once, at its handler.

    @op(wire.StartJobReply)
    def start_job(agent, config: wire.Config, argv: list, tmp_dir: str, dst_dir: str,
                  plotter: Optional[str] = None, ...):

The op's name is the function's; its arguments are the parameters after
`agent`, each with its type from the annotation (str, int, float: any
number, bool, list, dict, or one of wire.py's keyed dicts); a parameter with
a default may be left out or null, one without is required.  A request with
an argument the op does not take, without one it needs, or with one of the
wrong type is refused (code bad_request) before anything is done; nothing is
dropped silently.  So are unknown keys in the keyed dicts (`config`,
`limits`, `ssh`): a typo there would quietly turn off a check.  The reply
type is wire.py's dataclass the controller reads the answer as.

Every module of agent/ops/ is imported by `declared()`: an op is added by
writing its decorated handler there.  The controller checks
PROTOCOL_VERSION in the hello at connect; a mismatch redeploys the agent.
"""
import importlib
import inspect
import os
import pkgutil
import typing
from dataclasses import is_dataclass

PROTOCOL_VERSION = 7

_TYPES = {"str": (str,), "int": (int,), "num": (int, float), "bool": (bool,),
          "list": (list,), "dict": (dict,)}
_KINDS = {str: "str", int: "int", float: "num", bool: "bool", list: "list", dict: "dict"}


class Arg:
    __slots__ = ("kind", "required", "keys")

    def __init__(self, kind, required=True, keys=None):
        self.kind, self.required, self.keys = kind, required, keys

    def problem(self, name, value):
        """Why `value` is not a good `name`, or None."""
        if value is None:
            return None if not self.required else "%s is required" % name
        ok = isinstance(value, _TYPES[self.kind])
        if self.kind in ("int", "num") and isinstance(value, bool):
            ok = False
        if not ok:
            return "%s must be %s, got %s" % (name, self.kind, type(value).__name__)
        if self.keys is not None:
            unknown = sorted(set(value) - self.keys)
            if unknown:
                return "%s has unknown keys: %s" % (name, ", ".join(unknown))
        return None


class Op:
    """One declared op: its name, handler, arguments ({name: Arg}) and reply type."""
    __slots__ = ("name", "handler", "args", "reply", "signature")

    def __init__(self, name, handler, args, reply, signature):
        self.name, self.handler, self.args, self.reply = name, handler, args, reply
        self.signature = signature      # the handler's, without `agent`

    def check(self, args):
        """One line saying what is wrong with these arguments, or None."""
        unknown = sorted(set(args) - set(self.args))
        if unknown:
            return "%s takes no argument %s" % (self.name, ", ".join(unknown))
        for name, arg in self.args.items():
            why = arg.problem(name, args.get(name))
            if why:
                return "%s: %s" % (self.name, why)
        return None


OPS = {}    # name -> Op, filled by @op as agent/ops/ is imported (declared())


def _arg(fn, param, hint):
    where = "%s(%s)" % (fn.__name__, param.name)
    if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
        raise TypeError("%s: an op takes named arguments only" % where)
    if hint is None:
        raise TypeError("%s: every argument of an op needs its type" % where)
    args = getattr(hint, "__args__", None) or ()
    if getattr(hint, "__origin__", None) is typing.Union:      # Optional[X]
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            raise TypeError("%s: one type per argument, got %r" % (where, hint))
        hint = rest[0]
    required = param.default is param.empty
    if getattr(hint, "__total__", None) is not None:            # a keyed dict (TypedDict)
        return Arg("dict", required, frozenset(hint.__annotations__))
    kind = _KINDS.get(hint)
    if kind is None:
        raise TypeError("%s: %r is not a wire type (str, int, float, bool, list, dict, "
                        "or a keyed dict of wire.py)" % (where, hint))
    return Arg(kind, required)


def declare(fn, reply, registry):
    """Enter `fn` into `registry` as an op (what @op does)."""
    if not (is_dataclass(reply) and isinstance(reply, type)):
        raise TypeError("%s: the reply must be a dataclass of wire.py" % fn.__name__)
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    if not params or params[0].name != "agent":
        raise TypeError("%s: an op's first parameter is `agent`" % fn.__name__)
    hints = typing.get_type_hints(fn)
    args = {p.name: _arg(fn, p, hints.get(p.name)) for p in params[1:]}
    if fn.__name__ in registry:
        raise TypeError("op %s declared twice" % fn.__name__)
    registry[fn.__name__] = Op(fn.__name__, fn, args, reply, sig.replace(parameters=params[1:]))
    return fn


def op(reply, registry=None):
    """Declare the decorated handler an op answering `reply` (see above)."""
    def wrap(fn):
        return declare(fn, reply, OPS if registry is None else registry)
    return wrap


def declared():
    """Every op, with every module of agent/ops/ imported."""
    pkg = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ops")
    for m in pkgutil.iter_modules([pkg]):
        importlib.import_module("%s.ops.%s" % (__package__, m.name))
    return OPS


def check(op_name, args):
    """One line saying what is wrong with these arguments for `op_name`, or None."""
    return OPS[op_name].check(args)
