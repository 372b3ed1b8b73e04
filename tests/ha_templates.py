#!/usr/bin/env python3
"""Renders every template of linkymon's Home Assistant discovery configs with Jinja2, the
engine Home Assistant uses, against real MQTT messages, and checks each result is a state
of the entity's kind, the way Home Assistant's MQTT sensor would take it.

Usage: ha_templates.py [--silent-ok REGEX] CASE.json...

A case is one JSON object:
  {"configs":  {"<discovery topic>": "<config payload>" or {config object}, ...},
   "messages": [["<topic>", "<payload>"], ...]}   (in the order they were published)

For each config, every message on its `state_topic` is rendered through `value_template`
(the raw payload when there is none), and `last_reset_value_template` /
`json_attributes_template` likewise; availability topics must carry the declared payloads,
and each must have had a message: Home Assistant holds an entity unavailable until every
topic of `availability_mode: all` said it is available.
A config whose state topic got no message fails, unless its object id matches --silent-ok.
Exit status 0 when every check holds, 1 otherwise, each failure on its own line.

Home Assistant's template additions are implemented here as Home Assistant defines them
(homeassistant/helpers/template.py): `float`, `int`, `as_datetime`, `as_local`,
`is_defined`, `iif`; an unknown filter or function is an error, so a template that starts
using another one fails here until it is added. Undefined variables render as Home Assistant
renders them (empty, with a warning), and the warning is a failure: Home Assistant logs it.
The local time zone is Europe/Paris, the meters' own.
"""

import json
import re
import sys
from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

import jinja2
import jinja2.filters
from jinja2.sandbox import ImmutableSandboxedEnvironment

LOCAL_TZ = ZoneInfo("Europe/Paris")
_SENTINEL = object()
PAYLOAD_NONE = "None"  # what Home Assistant's MQTT sensor reads as "no value" (unknown)
MAX_STATE_LENGTH = 255  # Home Assistant refuses longer states
NON_NUMERIC_CLASSES = {None, "enum", "timestamp", "date"}

warnings = []  # undefined variables met while rendering, as Home Assistant would log them


class LoggingUndefined(jinja2.Undefined):
    """Home Assistant's non-strict undefined: renders empty and logs a warning."""

    def _warn(self):
        warnings.append(f"undefined: {self._undefined_message}")

    def __str__(self):
        self._warn()
        return super().__str__()

    def __iter__(self):
        self._warn()
        return super().__iter__()

    def __bool__(self):
        self._warn()
        return super().__bool__()


def raise_no_default(function, value):
    raise ValueError(f"Template error: {function} got invalid input '{value}' when rendering "
                     f"template but no default was specified")


def forgiving_float(value, default=_SENTINEL):
    try:
        return float(value)
    except (ValueError, TypeError):
        if default is _SENTINEL:
            raise_no_default("float", value)
        return default


def forgiving_int(value, default=_SENTINEL, base=10):
    result = jinja2.filters.do_int(value, default=default, base=base)
    if result is _SENTINEL:
        raise_no_default("int", value)
    return result


def parse_datetime(text, raise_on_error=False):
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        if raise_on_error:
            raise
        return None


def as_datetime(value, default=_SENTINEL):
    if type(value) is datetime:
        return value
    if type(value) is date:
        return datetime.combine(value, time(0, 0, 0))
    try:
        return datetime.fromtimestamp(float(value), timezone.utc)
    except (ValueError, TypeError):
        try:
            return parse_datetime(value, raise_on_error=True)
        except (ValueError, TypeError):
            if default is _SENTINEL:
                if isinstance(value, str):  # Home Assistant's compatibility with 2024.1
                    return None
                raise_no_default("as_datetime", value)
            return default


def as_local(value):
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_TZ)
    return value.astimezone(LOCAL_TZ)


def is_defined(value):
    if isinstance(value, jinja2.Undefined):
        value()
    return value


def iif(value, if_true=True, if_false=False, if_none=_SENTINEL):
    if value is None and if_none is not _SENTINEL:
        return if_none
    if bool(value):
        return if_true
    return if_false


def environment():
    env = ImmutableSandboxedEnvironment(undefined=LoggingUndefined)
    for name, f in [("float", forgiving_float), ("int", forgiving_int),
                    ("as_datetime", as_datetime), ("as_local", as_local),
                    ("is_defined", is_defined), ("iif", iif)]:
        env.filters[name] = f
        env.globals[name] = f
    return env


ENV = environment()


def render(template, payload):
    """What Home Assistant's MQTT entity gets from a template and a payload: a string."""
    variables = {"value": payload}
    try:
        variables["value_json"] = json.loads(payload)
    except ValueError:
        pass
    return ENV.from_string(template).render(variables).strip()


def referenced_keys(template):
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_+\-]*", template))


def none_allowed(config, payload):
    """Whether the data the entity shows is absent from this message, so unknown is right."""
    template = config.get("value_template", "")
    if payload == "":
        return True  # the empty retained payload that clears a label gone from the frames
    try:
        message = json.loads(payload)
    except ValueError:
        message = None
    if isinstance(message, dict) and isinstance(message.get("values"), dict):
        present = {k for k, v in message["values"].items() if v is not None}
        present |= {k for k, v in (message.get("derived") or {}).items() if v is not None}
        return not (referenced_keys(template) & present)
    if isinstance(message, dict):
        # A leaf's own JSON (`next_change`, `tempo_tomorrow`): the keys the template quotes
        # are all absent or null.
        quoted = set(re.findall(r"'([A-Za-z_][A-Za-z0-9_]*)'", template))
        return bool(quoted) and all(message.get(k) is None for k in quoted)
    if config.get("device_class") == "enum":
        # A mapping {'RAW': 'shown', ...}: a raw value it does not list is "not announced".
        raw = set(re.findall(r"'([^']*)'\s*:", template))
        return payload.strip() not in raw
    return False


def check_state(config, result, payload):
    """The failures of one rendered state, as Home Assistant's sensor would see them."""
    if "<" in result and ("method" in result or "function" in result):
        return [f"renders a Python object: {result!r}"]
    if config.get("component") == "binary_sensor":
        on, off = config.get("payload_on", "ON"), config.get("payload_off", "OFF")
        return [] if result in (on, off) else [f"{result!r} is neither {on!r} nor {off!r}"]
    if result == PAYLOAD_NONE:
        return [] if none_allowed(config, payload) else ["unknown (None) though the data is there"]
    if result == "":
        return ["renders empty"]
    if len(result) > MAX_STATE_LENGTH:
        return [f"longer than {MAX_STATE_LENGTH} characters"]
    device_class = config.get("device_class")
    if device_class == "timestamp":
        try:
            when = datetime.fromisoformat(result)
        except ValueError:
            return [f"{result!r} is not an ISO 8601 timestamp"]
        return [] if when.tzinfo is not None else [f"{result!r} has no time zone"]
    if device_class == "enum":
        options = config.get("options", [])
        return [] if result in options else [f"{result!r} is not one of {options}"]
    numeric = (device_class not in NON_NUMERIC_CLASSES or "unit_of_measurement" in config
               or "state_class" in config)
    if numeric:
        try:
            float(result)
        except ValueError:
            return [f"{result!r} is not a number"]
    return []


def check_case(case, silent_ok):
    failures = []
    rendered = 0
    configs = {}
    for topic, payload in case["configs"].items():
        config = json.loads(payload) if isinstance(payload, str) else payload
        if not config:
            continue  # an empty retained config removes an entity
        config["component"] = topic.split("/")[-4]
        configs[topic] = config
    by_topic = {}
    for topic, payload in case["messages"]:
        by_topic.setdefault(topic, []).append(payload)
    for topic, config in sorted(configs.items()):
        object_id = topic.split("/")[-2]
        where = f"{object_id} ({topic})"
        payloads = by_topic.get(config["state_topic"], [])
        if not payloads:
            if not (silent_ok and re.fullmatch(silent_ok, object_id)):
                failures.append(f"{where}: no message on {config['state_topic']} to render")
            continue
        for payload in payloads:
            for key in ("value_template", "last_reset_value_template",
                        "json_attributes_template"):
                template = config.get(key)
                if key != "value_template" and template is None:
                    continue
                del warnings[:]
                try:
                    result = render(template, payload) if template else payload.strip()
                except Exception as e:  # a render error is what Home Assistant logs
                    failures.append(f"{where}: {key} fails: {type(e).__name__}: {e}")
                    continue
                rendered += 1
                problems = [w for w in warnings]
                if key == "value_template":
                    problems += check_state(config, result, payload)
                elif key == "last_reset_value_template":
                    try:
                        datetime.fromisoformat(result)
                    except ValueError:
                        problems.append(f"last reset {result!r} is not a datetime")
                elif key == "json_attributes_template":
                    try:
                        if not isinstance(json.loads(result), dict):
                            problems.append("attributes are not a JSON object")
                    except ValueError:
                        problems.append(f"attributes {result!r} are not JSON")
                for p in problems:
                    failures.append(f"{where}: {key} on {payload[:60]!r} -> {result[:80]!r}: {p}")
        availability = [(config["availability_topic"], config.get("payload_available", "online"),
                         config.get("payload_not_available", "offline"))] \
            if "availability_topic" in config else []
        for a in config.get("availability", []):
            availability.append((a["topic"], a.get("payload_available", "online"),
                                 a.get("payload_not_available", "offline")))
        for a_topic, up, down in availability:
            if not by_topic.get(a_topic):
                failures.append(f"{where}: no message on the availability topic {a_topic}: "
                                f"unavailable for ever")
            for payload in by_topic.get(a_topic, []):
                if payload not in (up, down):
                    failures.append(f"{where}: availability {payload!r} is neither {up!r} nor {down!r}")
    return failures, rendered


def main(argv):
    silent_ok = None
    if len(argv) >= 2 and argv[0] == "--silent-ok":
        silent_ok, argv = argv[1], argv[2:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    failed = False
    for path in argv:
        with open(path, encoding="utf-8") as f:
            case = json.load(f)
        failures, rendered = check_case(case, silent_ok)
        print(f"{path}: {len(case['configs'])} configs, {rendered} renders, "
              f"{len(failures)} failures")
        for line in failures:
            print(f"  {line}")
        failed |= bool(failures) or rendered == 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
