"""A small, strict parser of the Prometheus text exposition format 0.0.4, for tests.

It checks what a scraper relies on: metric and label names, label value escapes
(only ``\\\\``, ``\\"`` and ``\\n``), values Go's ParseFloat accepts, one ``# HELP``
and one ``# TYPE`` per family and before its samples, samples of a family grouped
together, no duplicate series. It raises ``ValueError`` naming the line otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


@dataclass
class Family:
    name: str
    type: str = "untyped"
    help: str | None = None
    typed: bool = False
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def value(self, **labels: str) -> float:
        """The value of the one sample with exactly these labels."""
        found = [v for ls, v in self.samples if ls == labels]
        if len(found) != 1:
            raise KeyError(f"{self.name}{labels}: {len(found)} samples")
        return found[0]

    def by(self, label: str) -> dict[str, float]:
        return {ls[label]: v for ls, v in self.samples}


def _value(text: str, where: str) -> float:
    if text in ("NaN", "+Inf", "-Inf", "Inf"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
        raise ValueError(f"{where}: bad value {text!r}")
    return float(text)


def _labels(text: str, where: str) -> tuple[dict[str, str], str]:
    """Parse ``{a="b",...}`` at the start of ``text``; return (labels, rest)."""
    assert text.startswith("{")
    labels: dict[str, str] = {}
    i = 1
    while True:
        if text[i] == "}":
            return labels, text[i + 1 :]
        match = LABEL_NAME.match(text, i)
        if not match:
            raise ValueError(f"{where}: bad label name at {text[i:]!r}")
        name = match.group()
        i = match.end()
        if text[i : i + 2] != '="':
            raise ValueError(f'{where}: expected =" after label {name}')
        i += 2
        value = []
        while text[i] != '"':
            if text[i] == "\\":
                escaped = text[i + 1]
                if escaped not in _ESCAPES:
                    raise ValueError(f"{where}: bad escape \\{escaped} in label {name}")
                value.append(_ESCAPES[escaped])
                i += 2
            elif text[i] == "\n":
                raise ValueError(f"{where}: raw newline in label {name}")
            else:
                value.append(text[i])
                i += 1
        i += 1
        if name in labels:
            raise ValueError(f"{where}: duplicate label {name}")
        labels[name] = "".join(value)
        if text[i] == ",":
            i += 1
        elif text[i] != "}":
            raise ValueError(f"{where}: expected , or }} after label {name}")


def parse(text: str) -> dict[str, Family]:
    """Families by name; raises ValueError at the first violation."""
    if text and not text.endswith("\n"):
        raise ValueError("the exposition must end with a newline")
    families: dict[str, Family] = {}
    finished: set[str] = set()
    current: str | None = None
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for number, line in enumerate(text.split("\n")[:-1], 1):
        where = f"line {number}"
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not METRIC_NAME.fullmatch(name):
                    raise ValueError(f"{where}: bad metric name {name!r}")
                family = families.setdefault(name, Family(name))
                if family.samples:
                    raise ValueError(f"{where}: # {parts[1]} {name} after its samples")
                if parts[1] == "HELP":
                    if family.help is not None:
                        raise ValueError(f"{where}: second # HELP for {name}")
                    raw = parts[3] if len(parts) > 3 else ""
                    family.help = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], m[0]), raw)
                else:
                    if len(parts) != 4 or parts[3] not in TYPES:
                        raise ValueError(f"{where}: bad # TYPE line")
                    if family.typed:
                        raise ValueError(f"{where}: second # TYPE for {name}")
                    family.type, family.typed = parts[3], True
            continue
        match = METRIC_NAME.match(line)
        if not match:
            raise ValueError(f"{where}: bad sample {line!r}")
        name, rest = match.group(), line[match.end() :]
        labels: dict[str, str] = {}
        if rest.startswith("{"):
            labels, rest = _labels(rest, where)
        fields = rest.split()
        if not rest.startswith(" ") or len(fields) not in (1, 2):
            raise ValueError(f"{where}: expected 'name{{labels}} value [timestamp]'")
        value = _value(fields[0], where)
        if name in finished and name != current:
            raise ValueError(f"{where}: samples of {name} are not grouped together")
        if current is not None and current != name:
            finished.add(current)
        current = name
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            raise ValueError(f"{where}: duplicate series {name}{labels}")
        seen.add(key)
        families.setdefault(name, Family(name)).samples.append((labels, value))
    return families
