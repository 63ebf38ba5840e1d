"""The registry: workflow definitions by name, built from a list of workflow classes (tests build their own)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from workflows.authoring import WorkflowDefinition, definition_of
from workflows.errors import DefinitionError, UnknownWorkflow


class Registry:
    """Workflows by name; every class is validated again as it is registered."""

    def __init__(self, classes: Iterable[type[Any]] = ()) -> None:
        self._specs: dict[str, WorkflowDefinition] = {}
        for cls in classes:
            self.add(cls)

    def add(self, cls: type[Any]) -> WorkflowDefinition:
        spec = definition_of(cls)
        if spec.name in self._specs:
            raise DefinitionError(f"workflow {spec.name!r} is registered twice")
        self._specs[spec.name] = spec
        return spec

    def get(self, name: str) -> WorkflowDefinition:
        try:
            return self._specs[name]
        except KeyError:
            known = ", ".join(sorted(self._specs)) or "none"
            raise UnknownWorkflow(f"unknown workflow {name!r}; known workflows: {known}") from None

    def __iter__(self) -> Iterator[WorkflowDefinition]:
        return iter(sorted(self._specs.values(), key=lambda s: s.name))

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __len__(self) -> int:
        return len(self._specs)
