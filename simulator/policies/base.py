"""Policies as plug-ins: each family (keep-alive, idle selection, arrival process) is a base
class; a scenario names a built-in (`policy: fixed`) or a user's subclass by import path
(`policy: mypolicies:TwiceLastGap`), with the class's own fields as its parameters.

A scenario file is data from anyone, so naming a class never imports code by itself: a module
that is not imported yet is imported only when the user opted in (`--allow-import` on the
command line, `allow_import=True` in Python); a module the user's program already imported is
trusted. The class must subclass the family's base. A Python caller may also give the class
itself (`{"policy": TwiceLastGap, ...}`): it is recorded by its import path.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import GetCoreSchemaHandler, ValidationError, ValidationInfo
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

from ..model import Model
from .timing import timed


class Policy(Model):
    """Base of every plug-in family. Parameters are pydantic fields (validated, frozen);
    runtime state lives in attributes named with a leading underscore, set in `start`."""

    #: The YAML key that names the class ("policy" or "process"); set by each family.
    tag: ClassVar[str] = "policy"
    #: How errors name the family ("keep-alive policy", ...), and its public base class.
    family: ClassVar[str] = "policy"
    public_name: ClassVar[str] = "Policy"
    #: Methods a plug-in class must define (the base's raise NotImplementedError).
    required: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def import_path(cls) -> str:
        return f"{cls.__module__}:{cls.__qualname__}"

    @classmethod
    def builtin(cls) -> bool:
        """One of coldsim's own classes (trusted: its answers are not checked at run time)."""
        return cls.__module__.split(".")[0] == "coldsim"

    def _bind(self, **methods) -> None:
        """Replace methods of this copy by closures. Built-ins on the engine's hot path do so
        at `start`: reading an attribute of a pydantic model costs about three times a plain
        object's, and a closure reads its state from cells."""
        for name, function in methods.items():
            object.__setattr__(self, name, function)


class PolicyError(RuntimeError):
    """A plug-in policy failed or broke its interface's contract during a run."""


def guarded(policy: Policy, method: str, function):
    """function (a user's policy method, or a wrapper of it), with any exception it raises
    turned into a PolicyError naming the policy, the method and the failing line; its calls
    and time counted on the running engine's plug-in clock (see `timing`)."""
    import traceback

    hooked = timed(type(policy).import_path(), method, function)

    def call(*args):
        try:
            return hooked(*args)
        except PolicyError:
            raise
        except Exception as err:
            frame = traceback.extract_tb(err.__traceback__)[-1]
            raise PolicyError(
                f"{policy.family} {getattr(policy, policy.tag)}: {method} raised "
                f"{type(err).__name__}: {err} ({frame.filename}:{frame.lineno})"
            ) from err

    return call


class PluginError(ValueError):
    """A plug-in class cannot be resolved (unknown name, module not importable, wrong base)."""


#: Classes a Python caller gave directly, by their recorded import path: found again without
#: importing, even where the path cannot be imported (a class defined in a function).
_GIVEN: dict[str, type] = {}


def resolve(
    base: type[Policy], builtins: dict[str, type], name: Any, context: dict | None = None
) -> type:
    """The class named `name`: a built-in's name, or `module:Class` (see the module docstring)."""
    if isinstance(name, type):
        cls = name
    elif not isinstance(name, str):
        raise PluginError(f"must be a name, got {name!r}")
    elif name in builtins:
        return builtins[name]
    elif ":" not in name:
        raise PluginError(
            f"unknown {base.tag} {name!r} (allowed: {', '.join(map(repr, builtins))}, "
            "or a plug-in class as 'module:Class')"
        )
    elif name in _GIVEN:
        cls = _GIVEN[name]
    else:
        cls = _import_class(name, context or {})
    shown = name if isinstance(name, str) else cls.import_path() if _is_policy(cls) else cls
    label = repr(shown)
    if not (isinstance(cls, type) and issubclass(cls, base)) or cls is base:
        article = "an" if base.family[0] in "aeiou" else "a"
        raise PluginError(
            f"{label} is not {article} {base.family} (a subclass of coldsim.{base.public_name})"
        )
    missing = [  # "a|b": one of them
        m for m in base.required
        if all(getattr(cls, one) is getattr(base, one) for one in m.split("|"))
    ]  # fmt: skip
    if missing:
        wanted = ", ".join(m.replace("|", " or ") for m in missing)
        raise PluginError(f"{label} does not define {wanted} (see docs/policies.md)")
    if isinstance(name, type):
        _GIVEN[cls.import_path()] = cls
    return cls


def as_data(value: Any) -> Any:
    """value with the plug-in classes in it (in mappings and lists too) replaced by their
    import paths, which find them again without importing (as a class given to a scenario)."""
    if _is_policy(value) and value is not Policy:
        _GIVEN[value.import_path()] = value
        return value.import_path()
    if isinstance(value, Mapping):
        return {k: as_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_data(v) for v in value]
    return value


def _is_policy(cls: object) -> bool:
    return isinstance(cls, type) and issubclass(cls, Policy)


def _import_class(path: str, context: dict) -> type:
    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname:
        raise PluginError(f"{path!r}: expected 'module:Class'")
    module = sys.modules.get(module_name)
    if module is None:
        if not context.get("allow_import"):
            raise PluginError(
                f"{path!r} names module {module_name!r}, which is not imported; coldsim imports "
                "code named in a scenario only when you allow it: `--allow-import` on the "
                "command line, or allow_import=True in Python (or import the module yourself)"
            )
        # A user's policy module sits beside the scenario or in the working directory. They
        # join the search path for this import only (worker processes get the module's folder
        # from the sweep that sends them work).
        folders = [str(Path(f).resolve()) for f in (context.get("base_dir"), Path.cwd()) if f]
        added = [f for f in dict.fromkeys(folders) if f not in sys.path]
        sys.path.extend(added)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            raise PluginError(f"{path!r}: cannot import module {module_name!r} ({err})") from None
        except Exception as err:  # the user's module failed while importing
            raise PluginError(
                f"{path!r}: importing {module_name!r} failed: {type(err).__name__}: {err}"
            ) from None
        finally:
            for folder in added:
                sys.path.remove(folder)
    obj: Any = module
    for part in qualname.split("."):
        # Static lookups: a module's lazy __getattr__ could import more code.
        obj = inspect.getattr_static(obj, part, None)
        if obj is None:
            raise PluginError(f"{path!r}: module {module_name!r} has no {qualname!r}")
    return obj


class PluginField:
    """The pydantic type of a plug-in field: `Annotated[Base, PluginField(Base, builtins)]`.
    Validation resolves the class and validates the mapping with it (errors keep their field
    paths); serialisation writes the instance's own fields; the JSON schema lists the
    built-ins. With `shorthand`, a bare name stands for `{tag: name}`."""

    def __init__(self, base: type[Policy], builtins: dict[str, type], shorthand: bool = False):
        self.base, self.builtins, self.shorthand = base, builtins, shorthand

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler):
        from typing import Annotated, Union

        from pydantic import Field

        members = tuple(self.builtins.values())
        union = Annotated[Union[members], Field(discriminator=self.base.tag)]  # noqa: UP007
        schema = handler.generate_schema(union)
        if self.shorthand:
            names = core_schema.literal_schema(list(self.builtins))
            schema = core_schema.union_schema([names, schema])
        return core_schema.with_info_wrap_validator_function(
            self._validate,
            schema,
            serialization=core_schema.plain_serializer_function_ser_schema(
                self._dump, info_arg=True
            ),
        )

    def _validate(self, value: Any, handler, info: ValidationInfo) -> Any:
        base, tag = self.base, self.base.tag
        if isinstance(value, base):
            return value
        if isinstance(value, type) or self.shorthand and isinstance(value, str):
            value = {tag: value}
        if not isinstance(value, dict):
            raise PydanticCustomError(
                "plugin_type",
                "must be a mapping with `{tag}:` naming the {family}",
                {"tag": tag, "family": base.family},
            )
        if tag not in value:
            raise _line_error(
                tag,
                None,
                f"required field is missing (one of: {', '.join(map(repr, self.builtins))}, "
                "or a plug-in class as 'module:Class')",
            )
        name = value[tag]
        try:
            cls = resolve(base, self.builtins, name, info.context)
        except PluginError as err:
            raise _line_error(tag, name, str(err)) from None
        if isinstance(name, type):
            value = {**value, tag: cls.import_path()}
        return cls.model_validate(value, context=info.context)

    def _dump(self, value: Any, info) -> Any:
        if not isinstance(value, Model):
            return value
        data = value.model_dump(mode=info.mode, by_alias=True)
        if self.shorthand and list(data) == [self.base.tag]:
            return data[self.base.tag]  # a bare name, as the user would write it
        return data


def _line_error(field: str, value: Any, message: str) -> ValidationError:
    details = InitErrorDetails(
        type="value_error", loc=(field,), input=value, ctx={"error": PluginError(message)}
    )
    return ValidationError.from_exception_data("plugin", [details])


def concrete(base: Any, node: Any) -> Any:
    """For error wording: the class a plug-in field's data names, if it resolves without
    importing anything; else `base`."""
    field = next((m for m in getattr(base, "__metadata__", ()) if isinstance(m, PluginField)), None)
    if field is None or not isinstance(node, dict):
        return base
    try:
        return resolve(field.base, field.builtins, node.get(field.base.tag), {})
    except PluginError:
        return field.base


def plugin_files(data: Any) -> Iterator[str]:
    """Source files of the plug-in modules a scenario's plain data names (`module:Class`
    values of `policy` or `process`) among the modules imported."""
    for key, value in string_leaves(data):
        if key in ("policy", "process") and ":" in value:
            source = getattr(sys.modules.get(value.partition(":")[0]), "__file__", None)
            if source and Path(source).is_file():
                yield source


def plugin_folders(data: Any) -> list[str]:
    """The folders of those files: where a worker process imports the plug-ins from."""
    return sorted({str(Path(f).parent) for f in plugin_files(data)})


def string_leaves(data: Any, key: Any = None) -> Iterator[tuple[Any, str]]:
    """(key, value) for every string value in nested mappings and lists."""
    if isinstance(data, Mapping):
        for k, value in data.items():
            yield from string_leaves(value, k)
    elif isinstance(data, list):
        for value in data:
            yield from string_leaves(value, key)
    elif isinstance(data, str):
        yield key, data
